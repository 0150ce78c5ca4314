//! Trimmed mean: the coordinate-wise mean after dropping the extreme values.
//!
//! Yin, Chen, Kannan & Bartlett, "Byzantine-Robust Distributed Learning: Towards
//! Optimal Statistical Rates", ICML 2018 (TorchJD's `TrimmedMean`).
//!
//! Update rule: for each coordinate j, sort the K values gₖⱼ, drop the `trim_number`
//! = t largest and t smallest, and average the remaining K − 2t. Not a combination wᵀJ
//! (each coordinate keeps different tasks), so this method works on the d-sized
//! Jacobian directly, in its dtype and on its device. Needs K ≥ 2t + 1. Default: t = 1.

use crate::solvers::checked_rows;
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{Error, Result};
use tch::Tensor;

/// The coordinate-wise trimmed mean.
#[derive(Debug, Clone)]
pub struct TrimmedMean {
    trim_number: usize,
    num_tasks: Option<usize>,
}

impl Default for TrimmedMean {
    fn default() -> Self {
        TrimmedMean {
            trim_number: 1,
            num_tasks: None,
        }
    }
}

impl TrimmedMean {
    /// Drops `trim_number` values at each end of every coordinate; any K ≥ 2t + 1.
    pub fn new(trim_number: usize) -> Self {
        TrimmedMean {
            trim_number,
            num_tasks: None,
        }
    }
    /// Accepts exactly `num_tasks` rows; errors when that K is below 2t + 1.
    pub fn for_tasks(mut self, num_tasks: usize) -> Result<Self> {
        self.check_k(num_tasks)?;
        self.num_tasks = Some(num_tasks);
        Ok(self)
    }

    fn check_k(&self, k: usize) -> Result<()> {
        if k < 2 * self.trim_number + 1 {
            return Err(Error::config(format!(
                "trimmed_mean with trim_number = {} needs at least {} tasks, got {k}",
                self.trim_number,
                2 * self.trim_number + 1
            )));
        }
        Ok(())
    }

    /// The trimmed mean of the rows of a `[K, d]` Jacobian.
    pub fn trimmed(&self, jacobian: &Tensor) -> Result<Tensor> {
        let k = jacobian.size()[0] as usize;
        self.check_k(k)?;
        let (sorted, _) = jacobian.f_sort(0, false)?;
        let kept = sorted.f_narrow(
            0,
            self.trim_number as i64,
            (k - 2 * self.trim_number) as i64,
        )?;
        Ok(kept.f_mean_dim(Some([0i64].as_slice()), false, jacobian.kind())?)
    }
}

impl Aggregator for TrimmedMean {
    fn name(&self) -> &'static str {
        "trimmed_mean"
    }
    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        checked_rows("trimmed_mean", jacobian, ctx, self.num_tasks)?;
        Ok(Aggregation {
            gradient: self.trimmed(jacobian)?,
            weights: None,
        })
    }
}
