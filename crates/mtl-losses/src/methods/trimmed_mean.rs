//! Trimmed mean: the coordinate-wise mean after dropping the extreme values.
//!
//! Yin, Chen, Kannan & Bartlett, "Byzantine-Robust Distributed Learning: Towards
//! Optimal Statistical Rates", ICML 2018 (TorchJD's `TrimmedMean`).
//!
//! Update rule: for each coordinate j, sort the K values gₖⱼ, drop the `trim_number`
//! = t largest and t smallest, and average the remaining K − 2t. Not a combination wᵀJ
//! (each coordinate keeps different tasks), so this method works on the d-sized
//! Jacobian directly, in its dtype and on its device. Needs K ≥ 2t + 1. Default: t = 1.
//!
//! A contiguous f32/f64 Jacobian on the CPU is trimmed by a column kernel
//! ([`super::columns::trimmed_mean`]) in one read of J and without sorting (a full sort
//! along the K rows, with its K×d int64 indices, took 125 times as long as reading J at
//! K = 40, d = 10⁶). For t = 1 it finds each coordinate's largest and smallest value and
//! sums the values between them (plus any further copies of the two); for larger t, t
//! rounds drop the largest remaining value and t rounds the smallest. The kept values
//! are the sort's, so the result differs from the sort's mean only by the order of the
//! additions. A sum of every value minus the extremes would be cheaper still, but it
//! cancels catastrophically on exactly the outliers the method exists to remove. Other
//! devices and dtypes take the libtorch sort.

use super::columns::{self, host_rows, Real};
use crate::gram::check_jacobian_shape;
use crate::solvers::{check_task_count, checked_rows};
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{Error, Result};
use tch::{Kind, Tensor};

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

    /// The trimmed mean of the rows of a `[K, d]` Jacobian (assumed finite: see
    /// [`Aggregator::aggregate`] for the checked call).
    pub fn trimmed(&self, jacobian: &Tensor) -> Result<Tensor> {
        check_jacobian_shape(jacobian)?;
        let k = jacobian.size()[0] as usize;
        self.check_k(k)?;
        match self.kernel(jacobian)? {
            Some(Some(out)) => Ok(out),
            // A non-finite entry: the sort's mean of it, as this call always gave.
            Some(None) | None => self.sorted(jacobian),
        }
    }

    /// The column kernel's trimmed mean: `None` when J is not a contiguous f32/f64 CPU
    /// tensor, `Some(None)` when it has a non-finite entry.
    fn kernel(&self, jacobian: &Tensor) -> Result<Option<Option<Tensor>>> {
        fn run<T: Real>(j: &Tensor, trim: usize) -> Result<Option<Option<Tensor>>> {
            let size = j.size();
            let (k, d) = (size[0] as usize, size[1] as usize);
            match host_rows::<T>(j) {
                Some(rows) => Ok(Some(columns::trimmed_mean(rows, k, d, trim)?)),
                None => Ok(None),
            }
        }
        match jacobian.kind() {
            Kind::Float => run::<f32>(jacobian, self.trim_number),
            Kind::Double => run::<f64>(jacobian, self.trim_number),
            _ => Ok(None),
        }
    }

    /// The libtorch path: sort every column, average the middle K − 2t values.
    fn sorted(&self, jacobian: &Tensor) -> Result<Tensor> {
        let k = jacobian.size()[0] as usize;
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
        check_jacobian_shape(jacobian)?;
        check_task_count("trimmed_mean", self.num_tasks, jacobian.size()[0] as usize)?;
        self.check_k(jacobian.size()[0] as usize)?;
        let gradient = match self.kernel(jacobian)? {
            Some(Some(out)) => out,
            // The kernel met a NaN or Inf (the exact check names its row), or J is not
            // one it reads.
            Some(None) | None => {
                checked_rows("trimmed_mean", jacobian, ctx, self.num_tasks)?;
                self.sorted(jacobian)?
            }
        };
        Ok(Aggregation {
            gradient,
            weights: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// The column kernel keeps what the sort keeps: random columns with many ties and
    /// far outliers, every trim that fits, both dtypes, widths around a block.
    #[test]
    fn kernel_matches_the_sort() {
        tch::manual_seed(3);
        for kind in [Kind::Float, Kind::Double] {
            for (k, d) in [(3, 1), (4, 63), (5, 64), (7, 65), (12, 200), (41, 130)] {
                // Small integers (ties everywhere) plus a few huge outliers.
                let j = Tensor::randint(5, [k, d], (kind, Device::Cpu));
                let outliers = Tensor::rand([k, d], (kind, Device::Cpu)).lt(0.05);
                let j = j.where_self(&outliers.logical_not(), &(&j * 1e30 - 1e29));
                for trim in 0..=((k as usize - 1) / 2) {
                    let t = TrimmedMean::new(trim);
                    let fast = t.kernel(&j).unwrap().unwrap().unwrap();
                    let slow = t.sorted(&j).unwrap();
                    assert!(
                        fast.allclose(&slow, 1e-6, 0.0, false),
                        "{kind:?} k={k} d={d} trim={trim}: {fast:?} vs {slow:?}"
                    );
                }
            }
        }
        // A column of equal values, and the kernel refuses what it cannot read.
        let j = Tensor::ones([5, 3], (Kind::Float, Device::Cpu));
        let t = TrimmedMean::new(2);
        assert_eq!(
            Vec::<f32>::try_from(t.trimmed(&j).unwrap()).unwrap(),
            [1.0; 3]
        );
        assert!(t.kernel(&j.tr()).unwrap().is_none());
        assert!(t.kernel(&j.to_kind(Kind::Half)).unwrap().is_none());
        let j = j.tr().contiguous().tr();
        assert_eq!(
            Vec::<f32>::try_from(t.trimmed(&j).unwrap()).unwrap(),
            [1.0; 3]
        );
    }
}
