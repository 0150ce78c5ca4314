//! Static (fixed) loss weights: the hand-tuned linear scalarisation.
//!
//! Reference: the fixed weighted sum every MTL paper uses as its tuned baseline, and
//! what Keras calls `model.compile(loss_weights=[1, γ])` (Chollet et al., *Keras*,
//! 2015). Kendall, Gal & Cipolla (CVPR 2018) show how sensitive results are to these
//! weights, which is why the learnable schemes exist.
//!
//! Update rule: with fixed weights w ∈ ℝᴷ, wₖ ≥ 0, Σₖ wₖ > 0,
//!
//! ```text
//! L = Σₖ wₖ Lₖ,        ∂L/∂Lₖ = wₖ.
//! ```
//!
//! Defaults: none that are meaningful — the weights are the hyper-parameter. The
//! registry's `"static"` builds all-ones weights (equal weighting); configs pass the
//! weights explicitly through [`crate::registry::static_weights`].
//!
//! # Example
//!
//! ```
//! use mtl_losses::methods::StaticWeighting;
//! use mtl_losses::{StepContext, Weighting};
//! use tch::Tensor;
//!
//! let mut w = StaticWeighting::new(vec![1.0, 0.5]).unwrap();
//! let losses = Tensor::from_slice(&[2.0f64, 4.0]);
//! let total = w.combine(&losses, &StepContext::default()).unwrap();
//! assert_eq!(total.double_value(&[]), 4.0);
//! ```

use crate::{StepContext, Weighting};
use mtl_core::{Error, Result};
use tch::{Kind, Tensor};

/// Fixed loss weights: L = Σₖ wₖ Lₖ.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticWeighting {
    weights: Vec<f64>,
}

impl StaticWeighting {
    /// One weight per task (K = `weights.len()`). Every weight must be finite and
    /// non-negative, and at least one positive: an all-zero weighting trains nothing.
    pub fn new(weights: Vec<f64>) -> Result<Self> {
        if weights.is_empty() {
            return Err(Error::TaskCount {
                context: "static weights".into(),
                expected: 0,
                got: 0,
            });
        }
        if let Some((k, w)) = weights
            .iter()
            .enumerate()
            .find(|(_, w)| !w.is_finite() || **w < 0.0)
        {
            return Err(Error::config(format!(
                "static weights: the weight of task {k} is {w}; weights must be finite and >= 0"
            )));
        }
        if weights.iter().all(|w| *w == 0.0) {
            return Err(Error::config(
                "static weights: all weights are 0; at least one must be positive",
            ));
        }
        Ok(StaticWeighting { weights })
    }
}

/// Checks that `losses` holds K finite values and returns it flattened to `[K]`.
/// Shared by the loss-level methods of this crate.
pub(crate) fn checked_losses(
    losses: &Tensor,
    num_tasks: usize,
    method: &str,
    step: u64,
) -> Result<Tensor> {
    let k = losses.numel();
    if k != num_tasks {
        return Err(Error::TaskCount {
            context: format!("{method} losses"),
            expected: num_tasks,
            got: k,
        });
    }
    let flat = losses.f_reshape([-1])?;
    // One host sync for the common all-finite case; only a failure looks per task.
    if flat.f_isfinite()?.f_all()?.f_int64_value(&[])? == 0 {
        let values = Vec::<f64>::try_from(flat.f_detach()?.f_to_kind(Kind::Double)?)?;
        if let Some((task, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: format!("{method} loss"),
                task: Some(task),
                step: Some(step),
                value: v.to_string(),
            });
        }
    }
    Ok(flat)
}

impl Weighting for StaticWeighting {
    fn name(&self) -> &'static str {
        "static"
    }
    fn num_tasks(&self) -> Option<usize> {
        Some(self.weights.len())
    }
    fn combine(&mut self, losses: &Tensor, ctx: &StepContext) -> Result<Tensor> {
        let flat = checked_losses(losses, self.weights.len(), "static", ctx.step)?;
        let w = Tensor::from_slice(&self.weights)
            .f_to_kind(flat.kind())?
            .f_to_device(flat.device())?;
        Ok(flat.f_mul(&w)?.f_sum(flat.kind())?)
    }
    fn weights(&self) -> Vec<f64> {
        self.weights.clone()
    }
}
