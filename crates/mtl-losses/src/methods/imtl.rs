//! IMTL: impartial multi-task learning, the loss balance (IMTL-L) and the gradient
//! balance (IMTL-G) in the same step, as the paper's full method and LibMTL's `IMTL`.
//!
//! Reference: Liyang Liu, Yi Li, Zhanghui Kuang, Jing-Hao Xue, Yimin Chen, Wenming Yang,
//! Qingmin Liao and Wayne Zhang, "Towards Impartial Multi-task Learning", ICLR 2021
//! (Algorithm 1, "IMTL"). The halves alone are [`crate::methods::ImtlL`] (loss level)
//! and [`crate::methods::ImtlG`] (gradient level).
//!
//! Update rule, with one log-scale sₖ per task (init 0) and the step's losses Lₖ:
//!
//! ```text
//! scaled losses    L̃ₖ = e^{sₖ} Lₖ − sₖ,   so ∇L̃ₖ = e^{sₖ} gₖ  (rows of J scaled)
//! IMTL-G on them   α = IMTL-G weights of the rows e^{sₖ} gₖ   (Σ α = 1)
//! output           g = Σₖ αₖ e^{sₖ} gₖ                       (reported weights αₖ e^{sₖ})
//! then             sₖ ← sₖ − η (e^{sₖ} Lₖ − 1)                (∂L̃ₖ/∂sₖ, one SGD step)
//! ```
//!
//! The direction of g does not depend on the scales (IMTL-G equalises the projections
//! on the *unit* gradients); the scales set its length through Σ αₖ = 1 on the scaled
//! rows, and drive every scaled loss e^{sₖ}Lₖ towards 1.
//!
//! Departures from LibMTL's `IMTL`, which makes s a parameter of the model:
//! * LibMTL optimises s with the model's optimiser; an [`Aggregator`] sees only the
//!   Jacobian and the loss values, so the gradient e^{sₖ}Lₖ − 1 (exact, no autograd
//!   needed) is applied here by plain gradient descent with rate η = `scale_lr`.
//!   There is no paper value for η (the paper trains s with the network); the default
//!   0.025 is GradNorm's weight rate in this crate.
//! * LibMTL's task heads receive e^{sₖ}∇Lₖ (they are behind the scaled losses); the
//!   engine gives each head ∇Lₖ from the Jacobian pass, so here the scales act on the
//!   shared gradient only.
//!
//! IMTL-G's form is the pseudo-inverse one by default (defined for dependent rows;
//! equal to LibMTL's closed form when the rows are independent); [`Imtl::libmtl`]
//! selects the closed form. At s = 0 the first step equals LibMTL's `IMTL` output
//! (golden `libmtl_IMTL.json`).
//!
//! Defaults: s = 0, `scale_lr` = 0.025, pseudo-inverse form. Reads the step's losses
//! ([`StepContext::losses`]; finite).

use super::imtl_g::{ImtlG, ImtlGForm};
use crate::gram::Gram;
use crate::solvers::{checked_gram, kind_eps, weighted};
use crate::state;
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{Error, Result};
use tch::Tensor;

/// IMTL (IMTL-L scales and IMTL-G weights in one step).
#[derive(Debug, Clone)]
pub struct Imtl {
    num_tasks: usize,
    scale_lr: f64,
    form: ImtlGForm,
    /// The log-scales s.
    scales: Vec<f64>,
    step: u64,
}

impl Imtl {
    /// The default learning rate η of the log-scales.
    pub const DEFAULT_SCALE_LR: f64 = 0.025;

    /// For `num_tasks` (≥ 1) tasks with s = 0, η = 0.025 and the pseudo-inverse form.
    pub fn new(num_tasks: usize) -> Result<Self> {
        Imtl::with_scale_lr(num_tasks, Self::DEFAULT_SCALE_LR)
    }

    /// For `num_tasks` (≥ 1) tasks with the learning rate η (finite, ≥ 0; 0 keeps the
    /// scales fixed, which is IMTL-G on the scaled rows).
    pub fn with_scale_lr(num_tasks: usize, scale_lr: f64) -> Result<Self> {
        if num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "imtl".into(),
                expected: 0,
                got: 0,
            });
        }
        if !(scale_lr.is_finite() && scale_lr >= 0.0) {
            return Err(Error::config(format!(
                "imtl: scale_lr must be finite and >= 0, got {scale_lr}"
            )));
        }
        Ok(Imtl {
            num_tasks,
            scale_lr,
            form: ImtlGForm::PseudoInverse,
            scales: vec![0.0; num_tasks],
            step: 0,
        })
    }

    /// LibMTL's configuration: the closed form of IMTL-G (errors on dependent rows).
    pub fn libmtl(num_tasks: usize) -> Result<Self> {
        Ok(Imtl::new(num_tasks)?.with_form(ImtlGForm::ClosedForm))
    }

    /// Sets IMTL-G's formula.
    pub fn with_form(mut self, form: ImtlGForm) -> Self {
        self.form = form;
        self
    }

    /// Sets the log-scales (K finite values), e.g. to resume from elsewhere.
    pub fn with_scales(mut self, scales: Vec<f64>) -> Result<Self> {
        crate::solvers::check_vector("imtl log-scales", &scales, Some(self.num_tasks))?;
        self.scales = scales;
        Ok(self)
    }

    /// The current log-scales s (those the next step uses).
    pub fn scales(&self) -> &[f64] {
        &self.scales
    }

    /// The effective weights on the raw rows, αₖ e^{sₖ}, for the Gram matrix `gram`
    /// of the raw rows and log-scales `scales`.
    pub fn weights(&self, gram: &Gram, scales: &[f64], eps: f64) -> Result<Vec<f64>> {
        let k = gram.k();
        let e: Vec<f64> = scales.iter().map(|s| s.exp()).collect();
        let scaled = Gram::from_vec(
            k,
            (0..k * k)
                .map(|idx| gram.as_slice()[idx] * e[idx / k] * e[idx % k])
                .collect(),
        )?;
        let alpha = ImtlG::new().with_form(self.form).weights(&scaled, eps)?;
        Ok(alpha.iter().zip(&e).map(|(a, e)| a * e).collect())
    }
}

impl Aggregator for Imtl {
    fn name(&self) -> &'static str {
        "imtl"
    }
    fn num_tasks(&self) -> Option<usize> {
        Some(self.num_tasks)
    }

    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        let gram = checked_gram("imtl", jacobian, ctx, Some(self.num_tasks))?;
        let losses = ctx.losses;
        crate::solvers::check_vector("imtl step losses", losses, Some(self.num_tasks))
            .map_err(|e| e.at_step(ctx.step))?;
        if let Some((task, s)) = self
            .scales
            .iter()
            .enumerate()
            .find(|(_, s)| !s.exp().is_finite() || s.exp() == 0.0)
        {
            return Err(Error::NonFinite {
                what: "imtl loss scale exp(s) (overflow or underflow)".into(),
                task: Some(task),
                step: Some(ctx.step),
                value: s.to_string(),
            });
        }
        let w = self
            .weights(&gram, &self.scales, kind_eps(jacobian.kind()))
            .map_err(|e| e.at_step(ctx.step))?;
        let next: Vec<f64> = self
            .scales
            .iter()
            .zip(losses)
            .map(|(s, l)| s - self.scale_lr * (s.exp() * l - 1.0))
            .collect();
        if let Some((task, s)) = next.iter().enumerate().find(|(_, s)| !s.is_finite()) {
            return Err(Error::NonFinite {
                what: "imtl log-scale after its update".into(),
                task: Some(task),
                step: Some(ctx.step),
                value: s.to_string(),
            });
        }
        let out = weighted(w, jacobian)?;
        self.scales = next;
        self.step += 1;
        Ok(out)
    }

    /// The log-scales and the step count.
    fn state(&self) -> serde_json::Value {
        state::step_and_vector_json(self.step, "scales", &self.scales)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        (self.step, self.scales) = state::step_and_vector("imtl", state, "scales", self.num_tasks)?;
        Ok(())
    }
}
