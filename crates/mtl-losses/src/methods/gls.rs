//! Geometric Loss Strategy (GLS): minimise the geometric mean of the task losses.
//!
//! Reference: Sumanth Chennupati, Ganesh Sistu, Senthil Yogamani and Samir A. Rawashdeh,
//! "MultiNet++: Multi-Stream Feature Aggregation and Geometric Loss Strategy for
//! Multi-Task Learning", CVPR 2019 Workshops (arXiv:1904.08492).
//!
//! Update rule:
//!
//! ```text
//! L = (Πₖ Lₖ)^{1/K} = exp((1/K) Σₖ log Lₖ)
//! ∂L/∂Lₖ = L / (K·Lₖ)                      (the reported weight)
//! ```
//!
//! The gradient of each task is scaled by the inverse of its own loss, so tasks on
//! different loss scales contribute comparably, and the scale of L follows the losses.
//! The product is computed as the exponential of the mean log, which neither overflows
//! nor underflows for many tasks. Every loss must be positive: the geometric mean of a
//! zero loss has an infinite gradient and a negative one has none, so both are errors.
//!
//! Defaults: no hyper-parameters.
//!
//! # Example
//!
//! ```
//! use mtl_losses::methods::Gls;
//! use mtl_losses::{StepContext, Weighting};
//! use tch::Tensor;
//!
//! let mut gls = Gls::new(2);
//! let total = gls.combine(&Tensor::from_slice(&[1.0f64, 4.0]), &StepContext::default());
//! assert!((total.unwrap().double_value(&[]) - 2.0).abs() < 1e-12);
//! // ∂L/∂Lₖ = L/(K Lₖ): 1 and 1/4.
//! assert!((gls.weights()[1] - 0.25).abs() < 1e-12);
//! ```

use super::static_weights::checked_losses;
use crate::{StepContext, Weighting};
use mtl_core::{Error, Result};
use tch::{Device, Kind, Tensor};

/// Geometric Loss Strategy (Chennupati et al., CVPR-W 2019).
#[derive(Debug, Clone)]
pub struct Gls {
    num_tasks: usize,
    last_weights: Vec<f64>,
}

impl Gls {
    /// For `num_tasks` tasks.
    pub fn new(num_tasks: usize) -> Self {
        Gls {
            num_tasks,
            last_weights: vec![1.0 / num_tasks.max(1) as f64; num_tasks],
        }
    }

    /// ∂L/∂Lₖ = (Πⱼ Lⱼ)^{1/K} / (K·Lₖ) for positive finite losses.
    pub fn weights_for(losses: &[f64]) -> Result<Vec<f64>> {
        check_positive(losses, None)?;
        let k = losses.len() as f64;
        let total = (losses.iter().map(|l| l.ln()).sum::<f64>() / k).exp();
        Ok(losses.iter().map(|l| total / (k * l)).collect())
    }
}

/// Errors on an empty, non-finite or non-positive loss vector.
fn check_positive(losses: &[f64], step: Option<u64>) -> Result<()> {
    if losses.is_empty() {
        return Err(Error::TaskCount {
            context: "gls losses".into(),
            expected: 0,
            got: 0,
        });
    }
    for (task, &l) in losses.iter().enumerate() {
        if !l.is_finite() {
            return Err(Error::NonFinite {
                what: "gls loss".into(),
                task: Some(task),
                step,
                value: l.to_string(),
            });
        }
        if l <= 0.0 {
            return Err(Error::config(format!(
                "gls: the loss of task {task} is {l}{}; the geometric mean needs positive \
                 losses",
                step.map(|s| format!(" at step {s}")).unwrap_or_default()
            )));
        }
    }
    Ok(())
}

impl Weighting for Gls {
    fn name(&self) -> &'static str {
        "gls"
    }
    fn num_tasks(&self) -> Option<usize> {
        Some(self.num_tasks)
    }

    fn combine(&mut self, losses: &Tensor, ctx: &StepContext) -> Result<Tensor> {
        let flat = checked_losses(losses, self.num_tasks, "gls", ctx.step)?;
        let values = Vec::<f64>::try_from(
            flat.f_detach()?
                .f_to_kind(Kind::Double)?
                .f_to_device(Device::Cpu)?,
        )?;
        check_positive(&values, Some(ctx.step))?;
        let total = flat.f_log()?.f_mean(flat.kind())?.f_exp()?;
        self.last_weights = Self::weights_for(&values)?;
        Ok(total)
    }

    fn weights(&self) -> Vec<f64> {
        self.last_weights.clone()
    }
}
