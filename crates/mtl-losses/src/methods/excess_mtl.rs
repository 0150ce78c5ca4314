//! ExcessMTL: robust task weights from each task's *excess* risk (its distance to its
//! own optimum) rather than its loss, updated by multiplicative weights.
//!
//! Reference: Yifei He, Shiji Zhou, Guojun Zhang, Hyokun Yun, Yi Xu, Belinda Zeng,
//! Trishul Chilimbi and Han Zhao, "Robust Multi-Task Learning with Excess Risks",
//! ICML 2024 (arXiv:2402.02009), Algorithm 1; LibMTL's `ExcessMTL` (modified from the
//! authors' code) is the reference for the details below.
//!
//! Update rule, on the task Jacobian J (rows gₖ) at step t:
//!
//! ```text
//! Hₖ ← Hₖ + gₖ ⊙ gₖ                          (Adagrad's accumulated squared gradients)
//! eₖ = Σᵢ gₖᵢ² / √(Hₖᵢ + 1e-7)               (≈ gₖᵀ diag(Hₖ)^{-1/2} gₖ: the excess risk
//!                                             under a diagonal-Hessian approximation)
//! step 0:  e⁰ = e, w = 1                      (the first estimate normalises the rest)
//! t ≥ 1:   wₖ ← wₖ · exp(η eₖ / e⁰ₖ),  w ← K w / Σ w   (multiplicative weights)
//! output   Σₖ wₖ gₖ                           (the weights after this step's update)
//! ```
//!
//! Tasks whose excess risk is large relative to its start gain weight: unlike
//! loss-based robust methods, a task with irreducible noise (a high loss at its own
//! optimum) does not take over. A task whose first estimate e⁰ₖ is 0 (a zero gradient
//! at step 0) has no scale to compare with; its ratio counts as 0 (LibMTL divides by
//! zero there).
//!
//! Defaults: η = 0.01 (`robust_step_size`, LibMTL's), w = 1 initially (Σ w = K).
//! The accumulated Hₖ is K × d state, kept in f64 on the Jacobian's device and saved
//! in checkpoints.

use crate::solvers::{checked_rows, weighted};
use crate::state;
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{Error, Result};
use tch::{Kind, Tensor};

/// The ε under Adagrad's square root.
const EPS: f64 = 1e-7;

/// ExcessMTL (He et al., ICML 2024).
#[derive(Debug)]
pub struct ExcessMtl {
    num_tasks: usize,
    robust_step_size: f64,
    step: u64,
    /// Σ gₖ ⊙ gₖ so far (K × d, f64), once a step has run.
    grad_sum: Option<Tensor>,
    /// e⁰, the first step's excess-risk estimates.
    initial: Option<Vec<f64>>,
    weights: Vec<f64>,
}

impl ExcessMtl {
    /// LibMTL's default step size η.
    pub const DEFAULT_ROBUST_STEP_SIZE: f64 = 0.01;

    /// For `num_tasks` (≥ 1) tasks with η = 0.01.
    pub fn new(num_tasks: usize) -> Result<Self> {
        ExcessMtl::with_step_size(num_tasks, Self::DEFAULT_ROBUST_STEP_SIZE)
    }

    /// For `num_tasks` (≥ 1) tasks with the step size η (finite, ≥ 0).
    pub fn with_step_size(num_tasks: usize, robust_step_size: f64) -> Result<Self> {
        if num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "excess_mtl".into(),
                expected: 0,
                got: 0,
            });
        }
        if !(robust_step_size.is_finite() && robust_step_size >= 0.0) {
            return Err(Error::config(format!(
                "excess_mtl: robust_step_size must be finite and >= 0, got {robust_step_size}"
            )));
        }
        Ok(ExcessMtl {
            num_tasks,
            robust_step_size,
            step: 0,
            grad_sum: None,
            initial: None,
            weights: vec![1.0; num_tasks],
        })
    }

    /// The current task weights (Σ = K).
    pub fn current_weights(&self) -> &[f64] {
        &self.weights
    }

    /// The first step's excess-risk estimates e⁰, once a step has run.
    pub fn initial_excess(&self) -> Option<&[f64]> {
        self.initial.as_deref()
    }

    /// One multiplicative-weights update of `weights` with the estimates `excess`
    /// relative to `initial` and step size `eta`: wₖ e^{η eₖ/e⁰ₖ}, renormalised to
    /// Σ = K.
    pub fn update(weights: &[f64], excess: &[f64], initial: &[f64], eta: f64) -> Vec<f64> {
        let k = weights.len() as f64;
        let raw: Vec<f64> = weights
            .iter()
            .zip(excess.iter().zip(initial))
            .map(|(w, (e, e0))| {
                let ratio = if *e0 > 0.0 { e / e0 } else { 0.0 };
                w * (eta * ratio).exp()
            })
            .collect();
        let total: f64 = raw.iter().sum();
        raw.iter().map(|w| w / total * k).collect()
    }
}

impl Aggregator for ExcessMtl {
    fn name(&self) -> &'static str {
        "excess_mtl"
    }
    fn num_tasks(&self) -> Option<usize> {
        Some(self.num_tasks)
    }

    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        checked_rows("excess_mtl", jacobian, ctx, Some(self.num_tasks))?;
        let j = jacobian.f_detach()?.f_to_kind(Kind::Double)?;
        let sq = j.f_square()?;
        let sum = match &self.grad_sum {
            None => sq.shallow_clone(),
            Some(h) => {
                if h.size() != sq.size() {
                    return Err(Error::shape(
                        "excess_mtl Jacobian (against the accumulated squared gradients)",
                        format!("{:?}", h.size()),
                        format!("{:?}", sq.size()),
                    ));
                }
                h.f_to_device(sq.device())?.f_add(&sq)?
            }
        };
        let excess = Vec::<f64>::try_from(
            sq.f_div(&sum.f_add_scalar(EPS)?.f_sqrt()?)?
                .f_sum_dim_intlist(1, false, Kind::Double)?
                .f_to_device(tch::Device::Cpu)?,
        )?;
        let (initial, weights) = match &self.initial {
            None => (excess.clone(), self.weights.clone()),
            Some(e0) => {
                let w = ExcessMtl::update(&self.weights, &excess, e0, self.robust_step_size);
                (e0.clone(), w)
            }
        };
        if let Some((task, w)) = weights.iter().enumerate().find(|(_, w)| !w.is_finite()) {
            return Err(Error::NonFinite {
                what: "excess_mtl task weight (overflow of exp(eta e / e0))".into(),
                task: Some(task),
                step: Some(ctx.step),
                value: w.to_string(),
            });
        }
        let out = weighted(weights.clone(), jacobian)?;
        self.grad_sum = Some(sum);
        self.initial = Some(initial);
        self.weights = weights;
        self.step += 1;
        Ok(out)
    }

    /// The step count, the weights, e⁰ and the accumulated squared gradients.
    fn state(&self) -> serde_json::Value {
        serde_json::json!({
            "step": self.step,
            "weights": self.weights,
            "initial": self.initial,
            "grad_sum": self.grad_sum.as_ref().map(state::tensor_to_json),
        })
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        let method = "excess_mtl";
        let step = state::step(method, state)?;
        let weights = state::finite_task_vector(method, state, "weights", self.num_tasks)?;
        let initial = match state.get("initial") {
            None | Some(serde_json::Value::Null) => None,
            Some(_) => Some(state::finite_task_vector(
                method,
                state,
                "initial",
                self.num_tasks,
            )?),
        };
        let grad_sum = state::optional_tensor(method, state, "grad_sum", self.num_tasks)?;
        if initial.is_some() != grad_sum.is_some() {
            return Err(Error::config(format!(
                "excess_mtl state: `initial` and `grad_sum` must both be set or both null in \
                 {state}"
            )));
        }
        self.step = step;
        self.weights = weights;
        self.initial = initial;
        self.grad_sum = grad_sum;
        Ok(())
    }
}
