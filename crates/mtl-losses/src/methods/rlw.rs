//! Random Loss Weighting (RLW): a fresh random convex combination of the task losses at
//! every step.
//!
//! Reference: Baijiong Lin, Feiyang Ye, Yu Zhang and Ivor W. Tsang, "Reasonable
//! Effectiveness of Random Weighting: A Litmus Test for Multi-Task Learning", TMLR 2022
//! (arXiv:2111.10603), Algorithm 1 with the normal distribution.
//!
//! Update rule: at every step draw z ~ N(0, I_K) and use
//!
//! ```text
//! w = softmax(z),     L = Σₖ wₖ Lₖ
//! ```
//!
//! The draws come from the method's own generator, derived from the run seed, so a run
//! is reproducible; [`Rlw::combine_with_normals`] is the same step with given draws (for
//! replaying recorded ones). The gradient-level twin is [`crate::methods::Random`].
//!
//! Defaults: no hyper-parameters (the paper's recommended normal distribution).
//!
//! # Example
//!
//! ```
//! use mtl_losses::methods::Rlw;
//! use tch::Tensor;
//!
//! let losses = Tensor::from_slice(&[1.0f64, 3.0]);
//! let total = Rlw::combine_with_normals(&losses, &[0.0, 0.0]).unwrap();
//! assert!((total.double_value(&[]) - 2.0).abs() < 1e-12);
//! ```

use super::random::Random;
use super::static_weights::checked_losses;
use crate::state;
use crate::{StepContext, Weighting};
use mtl_core::{derive_rng, Error, Result, SeededRng};
use rand_distr::{Distribution, StandardNormal};
use tch::Tensor;

/// Random Loss Weighting (Lin et al., TMLR 2022).
#[derive(Debug, Clone)]
pub struct Rlw {
    num_tasks: usize,
    rng: SeededRng,
    last_weights: Vec<f64>,
}

impl Rlw {
    /// For `num_tasks` tasks, drawing from a generator derived from `seed`.
    pub fn new(num_tasks: usize, seed: u64) -> Self {
        Rlw {
            num_tasks,
            rng: derive_rng(seed, "rlw"),
            last_weights: vec![1.0 / num_tasks.max(1) as f64; num_tasks],
        }
    }

    /// softmax(z): the weights of one step given its normal draws.
    pub fn weights_from_normals(z: &[f64]) -> Vec<f64> {
        Random::weights_from_normals(z)
    }

    /// Σₖ softmax(z)ₖ Lₖ for `losses` (`[K]`, with its graph) and the draws `z` (length
    /// K, finite).
    pub fn combine_with_normals(losses: &Tensor, z: &[f64]) -> Result<Tensor> {
        let flat = checked_losses(losses, z.len(), "rlw", 0)?;
        if let Some((task, v)) = z.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "rlw normal draw".into(),
                task: Some(task),
                step: None,
                value: v.to_string(),
            });
        }
        weighted_sum(&flat, &Self::weights_from_normals(z))
    }
}

/// Σₖ wₖ Lₖ in the losses' dtype and device.
fn weighted_sum(flat: &Tensor, weights: &[f64]) -> Result<Tensor> {
    let w = Tensor::from_slice(weights)
        .f_to_kind(flat.kind())?
        .f_to_device(flat.device())?;
    Ok(flat.f_mul(&w)?.f_sum(flat.kind())?)
}

impl Weighting for Rlw {
    fn name(&self) -> &'static str {
        "rlw"
    }
    fn num_tasks(&self) -> Option<usize> {
        Some(self.num_tasks)
    }

    fn combine(&mut self, losses: &Tensor, ctx: &StepContext) -> Result<Tensor> {
        let flat = checked_losses(losses, self.num_tasks, "rlw", ctx.step)?;
        let z: Vec<f64> = (0..self.num_tasks)
            .map(|_| StandardNormal.sample(&mut self.rng))
            .collect();
        let weights = Self::weights_from_normals(&z);
        let total = weighted_sum(&flat, &weights)?;
        self.last_weights = weights;
        Ok(total)
    }

    fn weights(&self) -> Vec<f64> {
        self.last_weights.clone()
    }

    /// The generator's position.
    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "rng": mtl_core::checkpoint::rng_state(&self.rng) })
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        self.rng = state::rng("rlw", state)?;
        Ok(())
    }
}
