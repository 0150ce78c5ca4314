//! IMTL-L: the loss-balance half of Impartial Multi-Task Learning, a learnable scale per
//! task that drives every scaled loss towards the same value.
//!
//! Reference: Liyang Liu, Yi Li, Zhanghui Kuang, Jing-Hao Xue, Yimin Chen, Wenming Yang,
//! Qingmin Liao and Wayne Zhang, "Towards Impartial Multi-task Learning", ICLR 2021,
//! the loss-balance part (IMTL-L). The gradient half, IMTL-G, is
//! [`crate::methods::ImtlG`].
//!
//! Update rule: one learnable scalar sₖ per task, trained jointly with the model by the
//! trainer's optimiser:
//!
//! ```text
//! L = Σₖ ( e^{sₖ} Lₖ − sₖ )
//! ∂L/∂Lₖ = e^{sₖ}                  (the reported weight)
//! ∂L/∂sₖ = e^{sₖ} Lₖ − 1           (sₖ settles where the scaled loss e^{sₖ}Lₖ = 1)
//! ```
//!
//! The −sₖ term keeps the scales from collapsing to zero; at the stationary point every
//! task's scaled loss equals 1, so no task dominates through its loss scale. Unlike
//! uncertainty weighting (Kendall et al., 2018) there is no ½ and no variance
//! interpretation: the paper derives it as the minimiser of the scaled-loss imbalance.
//!
//! Defaults: sₖ = 0 at initialisation (LibMTL's `loss_scale`; every weight starts at 1).
//!
//! # Example
//!
//! ```
//! use mtl_losses::methods::ImtlL;
//! use mtl_losses::{StepContext, Weighting};
//! use tch::Tensor;
//!
//! let mut imtl = ImtlL::new(2);
//! let total = imtl.combine(&Tensor::from_slice(&[0.5f32, 2.0]), &StepContext::default());
//! total.unwrap().backward();
//! // ∂L/∂sₖ = Lₖ − 1 at s = 0: the small loss pushes its scale up, the large one down.
//! let g = Vec::<f32>::try_from(imtl.parameters()[0].grad()).unwrap();
//! assert!((g[0] + 0.5).abs() < 1e-6 && (g[1] - 1.0).abs() < 1e-6);
//! ```

use super::log_scale::{default_log_scales, log_scales};
use super::static_weights::checked_losses;
use crate::{StepContext, Weighting};
use mtl_core::{Error, Result};
use tch::{Device, Kind, Tensor};

/// IMTL-L (Liu et al., ICLR 2021): L = Σₖ e^{sₖ} Lₖ − sₖ with learnable sₖ.
#[derive(Debug)]
pub struct ImtlL {
    num_tasks: usize,
    /// The `[K]` learnable log-scales s (requires grad).
    loss_scale: Tensor,
    /// e^{sₖ} at the last `combine` (or at construction).
    last_weights: Vec<f64>,
}

impl ImtlL {
    /// The initial value of every sₖ (LibMTL's).
    pub const DEFAULT_INIT: f64 = 0.0;

    /// For `num_tasks` tasks, sₖ = 0, stored as f32 on the CPU; `combine` moves it to
    /// the losses' dtype and device inside the graph, so the gradient still reaches it.
    pub fn new(num_tasks: usize) -> Self {
        let loss_scale = default_log_scales(num_tasks, Self::DEFAULT_INIT);
        ImtlL {
            num_tasks,
            loss_scale,
            last_weights: vec![Self::DEFAULT_INIT.exp(); num_tasks],
        }
    }

    /// For `num_tasks` (≥ 1) tasks with every sₖ = `init` (finite), stored with the
    /// given floating dtype and device.
    pub fn with_init(num_tasks: usize, init: f64, kind: Kind, device: Device) -> Result<Self> {
        let loss_scale = log_scales(
            "imtl_l",
            ["the initial log-scale", "the log-scales"],
            num_tasks,
            init,
            kind,
            device,
        )?;
        Ok(ImtlL {
            num_tasks,
            loss_scale,
            last_weights: vec![init.exp(); num_tasks],
        })
    }

    /// The current log-scales sₖ.
    pub fn loss_scale(&self) -> Result<Vec<f64>> {
        Ok(Vec::<f64>::try_from(
            self.loss_scale
                .f_detach()?
                .f_to_kind(Kind::Double)?
                .f_to_device(Device::Cpu)?,
        )?)
    }
}

impl Weighting for ImtlL {
    fn name(&self) -> &'static str {
        "imtl_l"
    }
    fn num_tasks(&self) -> Option<usize> {
        Some(self.num_tasks)
    }

    fn combine(&mut self, losses: &Tensor, ctx: &StepContext) -> Result<Tensor> {
        let flat = checked_losses(losses, self.num_tasks, "imtl_l", ctx.step)?;
        let weights: Vec<f64> = self.loss_scale()?.into_iter().map(f64::exp).collect();
        // A scale the optimiser drove to overflow would turn the total into Inf or NaN.
        if let Some((task, w)) = weights.iter().enumerate().find(|(_, w)| !w.is_finite()) {
            return Err(Error::NonFinite {
                what: "imtl_l loss weight exp(s)".into(),
                task: Some(task),
                step: Some(ctx.step),
                value: w.to_string(),
            });
        }
        let s = self
            .loss_scale
            .f_to_kind(flat.kind())?
            .f_to_device(flat.device())?;
        let total = s.f_exp()?.f_mul(&flat)?.f_sub(&s)?.f_sum(flat.kind())?;
        self.last_weights = weights;
        Ok(total)
    }

    fn weights(&self) -> Vec<f64> {
        self.last_weights.clone()
    }

    fn parameters(&self) -> Vec<Tensor> {
        vec![self.loss_scale.shallow_clone()]
    }
}
