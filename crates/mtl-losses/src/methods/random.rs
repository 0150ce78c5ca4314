//! Random weights: a fresh random convex combination of the task gradients each step.
//!
//! Lin, Ye, Zhang & Tsang, "Reasonable Effectiveness of Random Weighting: A Litmus
//! Test for Multi-Task Learning", TMLR 2022 (Algorithm 2, RGW; TorchJD's `Random`).
//!
//! Update rule: draw z ~ N(0, I_K) and use w = softmax(z): g = Σₖ wₖ gₖ. The draws come
//! from the aggregator's own seeded generator; [`Random::weights_from_normals`] is the
//! pure map from the draws, for replaying recorded ones. No hyper-parameters.

use crate::solvers::{checked_shape, weighted_checked};
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{derive_rng, Result, SeededRng};
use rand_distr::{Distribution, StandardNormal};
use tch::Tensor;

/// Random (softmax of standard normal draws) weights.
#[derive(Debug, Clone)]
pub struct Random {
    rng: SeededRng,
    num_tasks: Option<usize>,
}

impl Random {
    /// Draws from a generator derived from `seed`; any K.
    pub fn new(seed: u64) -> Self {
        Random {
            rng: derive_rng(seed, "random"),
            num_tasks: None,
        }
    }
    /// Accepts exactly `num_tasks` rows.
    pub fn for_tasks(mut self, num_tasks: usize) -> Self {
        self.num_tasks = Some(num_tasks);
        self
    }
    /// softmax(z), computed stably.
    pub fn weights_from_normals(z: &[f64]) -> Vec<f64> {
        let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
        let total: f64 = e.iter().sum();
        e.iter().map(|v| v / total).collect()
    }
}

impl Aggregator for Random {
    fn name(&self) -> &'static str {
        "random"
    }
    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        let k = checked_shape("random", jacobian, self.num_tasks)?;
        // The draws are kept only when J is accepted, so a rejected step leaves the
        // generator where it was.
        let mut rng = self.rng.clone();
        let z: Vec<f64> = (0..k).map(|_| StandardNormal.sample(&mut rng)).collect();
        let aggregation =
            weighted_checked("random", Random::weights_from_normals(&z), jacobian, ctx)?;
        self.rng = rng;
        Ok(aggregation)
    }
}
