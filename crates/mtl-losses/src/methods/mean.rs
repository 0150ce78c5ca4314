//! Mean: the average of the task gradients.
//!
//! Update rule: g = (1/K) Σₖ gₖ, i.e. weights wₖ = 1/K. No hyper-parameters. The
//! gradient-level form of equal weighting (up to the factor 1/K); TorchJD's `Mean`
//! (Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", 2024, uses it as
//! its baseline aggregator).

use crate::solvers::{checked_shape, weighted_checked};
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::Result;
use tch::Tensor;

/// The mean of the rows: wₖ = 1/K.
#[derive(Debug, Clone, Default)]
pub struct Mean {
    num_tasks: Option<usize>,
}

impl Mean {
    /// Accepts any number of tasks.
    pub fn new() -> Self {
        Mean { num_tasks: None }
    }
    /// Accepts exactly `num_tasks` rows (a different K is an error).
    pub fn for_tasks(num_tasks: usize) -> Self {
        Mean {
            num_tasks: Some(num_tasks),
        }
    }
    /// The weights for K tasks.
    pub fn weights(k: usize) -> Vec<f64> {
        vec![1.0 / k as f64; k]
    }
}

impl Aggregator for Mean {
    fn name(&self) -> &'static str {
        "mean"
    }
    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        let k = checked_shape("mean", jacobian, self.num_tasks)?;
        weighted_checked("mean", Mean::weights(k), jacobian, ctx)
    }
}
