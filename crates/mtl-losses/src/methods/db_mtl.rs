//! DB-MTL: dual balancing — balance the loss scales with a logarithm and the gradient
//! magnitudes by rescaling every task's (averaged) gradient to the largest norm.
//!
//! Reference: Baijiong Lin, Weisen Jiang, Feiyang Ye, Yu Zhang, Pengguang Chen, Ying-Cong
//! Chen, Shu Liu and James T. Kwok, "Dual-Balancing for Multi-Task Learning",
//! arXiv:2308.12029, 2023 (Algorithm 1); LibMTL's `DB_MTL`.
//!
//! Update rule, at step t = 1, 2, … with task gradients gₖ = ∇Lₖ (the Jacobian rows):
//!
//! ```text
//! ĝₖ = ∇ log(Lₖ + ε) = gₖ / (Lₖ + ε)                     (loss-scale balancing, ε = 1e-8)
//! mₖ ← ĝₖ + (β / t^σ)·(mₖ − ĝₖ)                          (EMA, m₀ = 0)
//! αₖ = maxⱼ ‖mⱼ‖ / (‖mₖ‖ + ε)                             (gradient-magnitude balancing)
//! output = Σₖ αₖ mₖ
//! ```
//!
//! Every task's contribution has the norm of the largest one, so no task is drowned by
//! another's gradient scale, and the log makes the method invariant to a rescaling of any
//! loss. The log-loss gradient needs no extra backward pass: ∇ log Lₖ = ∇Lₖ/Lₖ, so the
//! rows are scaled by the loss values of [`StepContext::losses`] (which must be K finite
//! values with Lₖ + ε > 0). The output combines the EMA buffer, not the current rows
//! alone, so [`Aggregation::weights`] is `None`; the last αₖ are in
//! [`DbMtl::last_scales`]. The buffer is K × d and lives on the Jacobian's device.
//!
//! Defaults: β = 0.9, σ = 0 (LibMTL's `DB_beta`, `DB_beta_sigma`; σ > 0 lets the EMA
//! forget its start faster).
//!
//! # Example
//!
//! ```
//! use mtl_losses::methods::DbMtl;
//! use mtl_losses::{Aggregator, StepContext};
//! use tch::Tensor;
//!
//! let mut db = DbMtl::new(2);
//! // Gradients of norms 1 and 10, losses 1 and 10: log-scaling equalises them already.
//! let j = Tensor::from_slice(&[1.0f64, 0.0, 0.0, 10.0]).view([2, 2]);
//! let ctx = StepContext { step: 0, epoch: 0, losses: &[1.0, 10.0] };
//! let out = db.aggregate(&j, &ctx).unwrap();
//! let g = Vec::<f64>::try_from(out.gradient).unwrap();
//! assert!((g[0] - g[1]).abs() < 1e-6);
//! ```

use crate::gram::{self, check_jacobian_shape};
use crate::solvers::check_task_count;
use crate::state;
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{Error, Result};
use tch::{Device, Kind, Tensor};

/// ε in log(L + ε) and in the norm ratio (LibMTL's).
const EPS: f64 = 1e-8;

/// DB-MTL (Lin et al., 2023).
#[derive(Debug)]
pub struct DbMtl {
    num_tasks: usize,
    beta: f64,
    beta_sigma: f64,
    step: u64,
    /// The K × d EMA of the log-loss gradients (None before the first step).
    buffer: Option<Tensor>,
    /// The buffer of the step before, reused as the next step's output (not state).
    spare: Option<Tensor>,
    last_scales: Vec<f64>,
}

impl DbMtl {
    /// For `num_tasks` tasks with β = 0.9, σ = 0.
    pub fn new(num_tasks: usize) -> Self {
        DbMtl {
            num_tasks,
            beta: 0.9,
            beta_sigma: 0.0,
            step: 0,
            buffer: None,
            spare: None,
            last_scales: vec![1.0; num_tasks],
        }
    }

    /// For `num_tasks` (≥ 1) tasks with EMA factor `beta` ∈ [0, 1) and decay exponent
    /// `beta_sigma` ≥ 0 (the factor at step t is β/t^σ).
    pub fn with_config(num_tasks: usize, beta: f64, beta_sigma: f64) -> Result<Self> {
        if num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "db_mtl".into(),
                expected: 0,
                got: 0,
            });
        }
        if !(0.0..1.0).contains(&beta) {
            return Err(Error::config(format!(
                "db_mtl: beta must be in [0, 1), got {beta}"
            )));
        }
        if !beta_sigma.is_finite() || beta_sigma < 0.0 {
            return Err(Error::config(format!(
                "db_mtl: beta_sigma must be finite and >= 0, got {beta_sigma}"
            )));
        }
        Ok(DbMtl {
            beta,
            beta_sigma,
            ..DbMtl::new(num_tasks)
        })
    }

    /// The αₖ of the last step (ones before the first).
    pub fn last_scales(&self) -> &[f64] {
        &self.last_scales
    }

    /// The EMA buffer mₖ (K × d), once a step has run.
    pub fn buffer(&self) -> Option<&Tensor> {
        self.buffer.as_ref()
    }
}

/// The K loss values of the context: finite, K of them. Shared by the aggregators that
/// read the losses.
pub(super) fn context_losses<'a>(
    method: &str,
    ctx: &StepContext<'a>,
    k: usize,
) -> Result<&'a [f64]> {
    if ctx.losses.len() != k {
        return Err(Error::TaskCount {
            context: format!("{method} losses (StepContext::losses)"),
            expected: k,
            got: ctx.losses.len(),
        });
    }
    if let Some((task, v)) = ctx.losses.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: format!("{method} loss"),
            task: Some(task),
            step: Some(ctx.step),
            value: v.to_string(),
        });
    }
    Ok(ctx.losses)
}

impl Aggregator for DbMtl {
    fn name(&self) -> &'static str {
        "db_mtl"
    }
    fn num_tasks(&self) -> Option<usize> {
        Some(self.num_tasks)
    }

    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        check_jacobian_shape(jacobian)?;
        let k = jacobian.size()[0] as usize;
        check_task_count("db_mtl", Some(self.num_tasks), k)?;
        let losses = context_losses("db_mtl", ctx, k)?;
        if let Some((task, v)) = losses.iter().enumerate().find(|(_, v)| **v + EPS <= 0.0) {
            return Err(Error::config(format!(
                "db_mtl: the loss of task {task} is {v} at step {}; DB-MTL takes \
                 log(L + 1e-8), so losses must be > -1e-8",
                ctx.step
            )));
        }
        let (kind, device) = (jacobian.kind(), jacobian.device());
        if let Some(m) = self.buffer.as_ref().filter(|m| m.size() != jacobian.size()) {
            return Err(Error::shape(
                "db_mtl gradient buffer",
                format!("{:?} (the earlier Jacobians)", m.size()),
                format!("{:?}", jacobian.size()),
            ));
        }
        let inv: Vec<f64> = losses.iter().map(|l| 1.0 / (l + EPS)).collect();
        let inv = Tensor::from_slice(&inv)
            .f_to_kind(kind)?
            .f_to_device(device)?
            .f_unsqueeze(1)?;
        // The new buffer is written into the spare one (the buffer before last), so a
        // step allocates no K×d tensor, and the current buffer is left as it was until
        // the step has succeeded.
        let mut next = match self.spare.take() {
            Some(s) if s.size() == jacobian.size() && s.kind() == kind && s.device() == device => {
                jacobian.f_mul_out(&s, &inv)?
            }
            _ => jacobian.f_mul(&inv)?,
        };
        let step = self.step + 1;
        let factor = self.beta / (step as f64).powf(self.beta_sigma);
        match &self.buffer {
            None => {
                let _ = next.f_mul_scalar_(1.0 - factor)?;
            }
            Some(m) => {
                let m = m.f_to_kind(kind)?.f_to_device(device)?;
                // factor·m + (1 − factor)·scaled in one kernel, in place.
                let _ = next.f_lerp_(&m, factor)?;
            }
        }
        let norms = Vec::<f64>::try_from(
            next.f_norm_scalaropt_dim(2, [1i64].as_slice(), false)?
                .f_to_kind(Kind::Double)?
                .f_to_device(Device::Cpu)?,
        )?;
        if let Some((task, n)) = norms.iter().enumerate().find(|(_, n)| !n.is_finite()) {
            // These norms are also the Jacobian's finiteness check: a NaN or Inf in
            // row k makes row k of the new buffer, and so its norm, non-finite (ĝ is g
            // times a factor in [0, ∞], with ∞·0 = NaN, and the EMA's weights on ĝ are
            // > 0). Only then is J scanned, to report its row.
            mtl_core::first_non_finite_row(jacobian, Some(ctx.step))?;
            // Finite rows divided by a tiny loss can overflow the dtype.
            return Err(Error::NonFinite {
                what: "db_mtl log-loss gradient buffer norm (overflow)".into(),
                task: Some(task),
                step: Some(ctx.step),
                value: n.to_string(),
            });
        }
        let max = norms.iter().copied().fold(0.0f64, f64::max);
        let scales: Vec<f64> = norms.iter().map(|n| max / (n + EPS)).collect();
        let gradient = gram::combine(&scales, &next)?;
        self.step = step;
        self.spare = self.buffer.replace(next);
        self.last_scales = scales;
        Ok(Aggregation {
            gradient,
            weights: None,
        })
    }

    /// The step count, the EMA buffer and the last scales.
    fn state(&self) -> serde_json::Value {
        serde_json::json!({
            "step": self.step,
            "buffer": self.buffer.as_ref().map(state::tensor_to_json),
            "last_scales": self.last_scales,
        })
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        let step = state::step("db_mtl", state)?;
        let buffer = state::optional_tensor("db_mtl", state, "buffer", self.num_tasks)?;
        let scales = state::task_vector("db_mtl", state, "last_scales", self.num_tasks)?;
        self.step = step;
        self.buffer = buffer;
        self.spare = None;
        self.last_scales = scales;
        Ok(())
    }
}
