//! Equal weighting (EW): the plain sum of the task losses.
//!
//! Update rule: L = Σₖ Lₖ, so every task weight is 1. The baseline every MTL paper
//! compares with; LibMTL's `EW`.

use crate::{StepContext, Weighting};
use mtl_core::{Error, Result};
use tch::{Kind, Tensor};

/// Equal weighting: L = Σₖ Lₖ.
#[derive(Debug, Clone)]
pub struct EqualWeighting {
    num_tasks: usize,
}

impl EqualWeighting {
    /// For `num_tasks` tasks.
    pub fn new(num_tasks: usize) -> Self {
        EqualWeighting { num_tasks }
    }
}

impl Weighting for EqualWeighting {
    fn name(&self) -> &'static str {
        "ew"
    }
    fn num_tasks(&self) -> Option<usize> {
        Some(self.num_tasks)
    }
    fn combine(&mut self, losses: &Tensor, _ctx: &StepContext) -> Result<Tensor> {
        let k = losses.numel();
        if k != self.num_tasks {
            return Err(Error::TaskCount {
                context: "ew".into(),
                expected: self.num_tasks,
                got: k,
            });
        }
        Ok(losses.f_sum(Kind::Double)?.f_to_kind(losses.kind())?)
    }
    fn weights(&self) -> Vec<f64> {
        vec![1.0; self.num_tasks]
    }
}
