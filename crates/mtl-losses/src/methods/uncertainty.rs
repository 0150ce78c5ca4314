//! Uncertainty weighting (UW): each task's loss is scaled by a learned homoscedastic
//! uncertainty.
//!
//! Reference: Alex Kendall, Yarin Gal and Roberto Cipolla, "Multi-Task Learning Using
//! Uncertainty to Weigh Losses for Scene Geometry and Semantics", CVPR 2018
//! (arXiv:1705.07115).
//!
//! Update rule: one learnable scalar sₖ per task (a log-variance, sₖ = log σₖ²), trained
//! jointly with the model by the trainer's optimiser:
//!
//! ```text
//! L = Σₖ ( Lₖ / (2·exp(sₖ)) + sₖ / 2 )
//! ∂L/∂Lₖ = 1 / (2·exp(sₖ))                 (the reported weight)
//! ∂L/∂sₖ = 1/2 − Lₖ / (2·exp(sₖ))          (sₖ settles where exp(sₖ) = Lₖ)
//! ```
//!
//! The paper writes the regression form 1/(2σₖ²)·Lₖ + log σₖ; with sₖ = log σₖ² this
//! is the expression above. The classification form (1/σₖ² without the ½) differs
//! only by a constant rescaling of the loss, and we follow LibMTL's single form for every
//! task, as most re-implementations do.
//!
//! Defaults: sₖ initialised to −0.5 (LibMTL's `loss_scale` init; the paper does not
//! fix one), so every initial weight is 1/(2·e^−0.5) ≈ 0.824.
//!
//! # Example
//!
//! ```
//! use mtl_losses::methods::UncertaintyWeighting;
//! use mtl_losses::{StepContext, Weighting};
//! use tch::Tensor;
//!
//! let mut uw = UncertaintyWeighting::new(2);
//! let losses = Tensor::from_slice(&[1.0f32, 2.0]);
//! let total = uw.combine(&losses, &StepContext::default()).unwrap();
//! total.backward();
//! // d total / d s_k = 1/2 − L_k/(2 e^{s_k}): the larger loss pulls its s_k up harder.
//! let g = Vec::<f32>::try_from(uw.parameters()[0].grad()).unwrap();
//! assert!(g[1] < g[0] && g[0] < 0.0);
//! ```

use super::log_scale::{default_log_scales, log_scales};
use super::static_weights::checked_losses;
use crate::{StepContext, Weighting};
use mtl_core::{Error, Result};
use tch::{Device, Kind, Tensor};

/// Uncertainty weighting: L = Σₖ Lₖ/(2·exp(sₖ)) + sₖ/2 with learnable sₖ.
#[derive(Debug)]
pub struct UncertaintyWeighting {
    num_tasks: usize,
    /// The `[K]` learnable log-variances s (requires grad).
    loss_scale: Tensor,
    /// 1/(2·exp(sₖ)) at the last `combine` (or at construction).
    last_weights: Vec<f64>,
}

impl UncertaintyWeighting {
    /// LibMTL's initial value of every sₖ.
    pub const DEFAULT_INIT: f64 = -0.5;

    /// For `num_tasks` tasks, sₖ = −0.5, stored as f32 on the CPU. `combine` moves it
    /// to the losses' dtype and device inside the graph, so the gradient still reaches
    /// this tensor; use [`UncertaintyWeighting::with_init`] to store it elsewhere.
    pub fn new(num_tasks: usize) -> Self {
        let loss_scale = default_log_scales(num_tasks, Self::DEFAULT_INIT);
        UncertaintyWeighting {
            num_tasks,
            loss_scale,
            last_weights: vec![weight_of(Self::DEFAULT_INIT); num_tasks],
        }
    }

    /// For `num_tasks` (≥ 1) tasks with every sₖ = `init` (finite), stored with the
    /// given dtype (a floating kind) and device.
    pub fn with_init(num_tasks: usize, init: f64, kind: Kind, device: Device) -> Result<Self> {
        let loss_scale = log_scales(
            "uw",
            ["initial log-variance", "the log-variances"],
            num_tasks,
            init,
            kind,
            device,
        )?;
        Ok(UncertaintyWeighting {
            num_tasks,
            loss_scale,
            last_weights: vec![weight_of(init); num_tasks],
        })
    }

    /// The current log-variances sₖ (LibMTL's `loss_scale`).
    pub fn loss_scale(&self) -> Result<Vec<f64>> {
        Ok(Vec::<f64>::try_from(
            self.loss_scale.f_detach()?.f_to_kind(Kind::Double)?,
        )?)
    }
}

/// The loss weight 1/(2·exp(s)) of a log-variance s.
fn weight_of(s: f64) -> f64 {
    0.5 * (-s).exp()
}

impl Weighting for UncertaintyWeighting {
    fn name(&self) -> &'static str {
        "uw"
    }
    fn num_tasks(&self) -> Option<usize> {
        Some(self.num_tasks)
    }
    fn combine(&mut self, losses: &Tensor, ctx: &StepContext) -> Result<Tensor> {
        let flat = checked_losses(losses, self.num_tasks, "uw", ctx.step)?;
        let s = self
            .loss_scale
            .f_to_kind(flat.kind())?
            .f_to_device(flat.device())?;
        // exp(−s)/2 rather than 1/(2·exp(s)): same value, one op fewer in the graph.
        let w = s.f_neg()?.f_exp()?.f_mul_scalar(0.5)?;
        let total = flat
            .f_mul(&w)?
            .f_add(&s.f_mul_scalar(0.5)?)?
            .f_sum(flat.kind())?;
        self.last_weights = self.loss_scale()?.into_iter().map(weight_of).collect();
        if let Some((task, w)) = self
            .last_weights
            .iter()
            .enumerate()
            .find(|(_, w)| !w.is_finite())
        {
            return Err(Error::NonFinite {
                what: "uw loss weight 1/(2·exp(s))".into(),
                task: Some(task),
                step: Some(ctx.step),
                value: w.to_string(),
            });
        }
        Ok(total)
    }
    fn weights(&self) -> Vec<f64> {
        self.last_weights.clone()
    }
    fn parameters(&self) -> Vec<Tensor> {
        vec![self.loss_scale.shallow_clone()]
    }
}
