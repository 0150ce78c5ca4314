//! Sum: the plain sum of the task gradients.
//!
//! Update rule: g = Σₖ gₖ, i.e. weights wₖ = 1. No hyper-parameters. The gradient of
//! the summed loss, so the gradient-level twin of equal weighting; TorchJD's `Sum`.

use crate::solvers::{checked_shape, weighted_checked};
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::Result;
use tch::Tensor;

/// The sum of the rows: wₖ = 1.
#[derive(Debug, Clone, Default)]
pub struct Sum {
    num_tasks: Option<usize>,
}

impl Sum {
    /// Accepts any number of tasks.
    pub fn new() -> Self {
        Sum { num_tasks: None }
    }
    /// Accepts exactly `num_tasks` rows (a different K is an error).
    pub fn for_tasks(num_tasks: usize) -> Self {
        Sum {
            num_tasks: Some(num_tasks),
        }
    }
}

impl Aggregator for Sum {
    fn name(&self) -> &'static str {
        "sum"
    }
    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        let k = checked_shape("sum", jacobian, self.num_tasks)?;
        weighted_checked("sum", vec![1.0; k], jacobian, ctx)
    }
}
