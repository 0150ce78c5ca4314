//! Constant: a fixed linear combination of the task gradients.
//!
//! Update rule: g = Σₖ wₖ gₖ for weights w chosen up front (a fixed scalarisation at the
//! gradient level). TorchJD's `Constant(weights)`. Default (registry): wₖ = 1/K, i.e.
//! [`Mean`](super::Mean); configs pass their own weights to [`Constant::new`].

use crate::solvers::{check_vector, checked_shape, weighted_checked};
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{Error, Result};
use tch::Tensor;

/// g = Σₖ wₖ gₖ with fixed weights; K is the number of weights.
#[derive(Debug, Clone)]
pub struct Constant {
    weights: Vec<f64>,
}

impl Constant {
    /// With the given weights (any finite values, one per task).
    pub fn new(weights: Vec<f64>) -> Result<Self> {
        if weights.is_empty() {
            return Err(Error::config("constant: at least one weight is needed"));
        }
        check_vector("constant weights", &weights, None)?;
        Ok(Constant { weights })
    }
    /// The weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }
}

impl Aggregator for Constant {
    fn name(&self) -> &'static str {
        "constant"
    }
    fn num_tasks(&self) -> Option<usize> {
        Some(self.weights.len())
    }
    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        checked_shape("constant", jacobian, Some(self.weights.len()))?;
        weighted_checked("constant", self.weights.clone(), jacobian, ctx)
    }
}
