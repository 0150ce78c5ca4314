//! Hard parameter sharing (Caruana 1997): one trunk, its output read by every head.

use super::{check_input_width, Architecture, Backbone, TaskFeatures};
use crate::{Error, Result};
use tch::Tensor;

/// Hard parameter sharing: `per_task[k] = trunk(x)` for every task.
#[derive(Debug)]
pub struct HardSharing {
    trunk: Box<dyn Backbone>,
    num_tasks: usize,
}

impl HardSharing {
    /// Shares `trunk` between `num_tasks` tasks.
    pub fn new(trunk: impl Backbone + 'static, num_tasks: usize) -> Result<Self> {
        if num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "HardSharing".into(),
                expected: 0,
                got: 0,
            });
        }
        Ok(HardSharing {
            trunk: Box::new(trunk),
            num_tasks,
        })
    }
}

impl Architecture for HardSharing {
    fn num_tasks(&self) -> usize {
        self.num_tasks
    }
    fn feature_dims(&self) -> Vec<i64> {
        vec![self.trunk.out_dim(); self.num_tasks]
    }
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<TaskFeatures> {
        if let Some(w) = self.trunk.in_dim() {
            check_input_width("hard-sharing trunk input", xs, w)?;
        }
        let z = self.trunk.forward_t(xs, train)?;
        let per_task = (0..self.num_tasks).map(|_| z.shallow_clone()).collect();
        Ok(TaskFeatures::new(Some(z), per_task))
    }
    fn name(&self) -> &'static str {
        "hps"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::MlpConfig;
    use tch::{nn, Device, Kind};

    #[test]
    fn every_task_reads_the_trunk() {
        // Tests draw from libtorch's process-wide generator (initialisation, randn):
        // the lock keeps parallel tests from taking each other's seeded draws.
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let trunk = MlpConfig::new([4, 8, 3])
            .dropout(0.1)
            .build(&(vs.root() / "trunk"))
            .unwrap();
        let arch = HardSharing::new(trunk, 2).unwrap();
        let x = Tensor::randn([5, 4], (Kind::Float, Device::Cpu));
        let f = arch.forward_t(&x, false).unwrap();
        assert_eq!(f.per_task.len(), 2);
        assert_eq!(f.per_task[1].size(), vec![5, 3]);
        assert_eq!(arch.feature_dims(), vec![3, 3]);
    }

    #[test]
    fn wrong_width_names_the_layer() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let trunk = MlpConfig::new([4, 3]).build(&vs.root()).unwrap();
        let arch = HardSharing::new(trunk, 1).unwrap();
        let err = arch
            .forward_t(&Tensor::zeros([2, 5], (Kind::Float, Device::Cpu)), true)
            .unwrap_err();
        assert!(
            err.to_string().contains("hard-sharing trunk input"),
            "{err}"
        );
        assert!(MlpConfig::new([4]).build(&vs.root()).is_err());
    }
}
