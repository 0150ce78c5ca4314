//! Task towers: a task-specific backbone between an architecture's features and the
//! head, as in the "towers" of MMoE (Ma et al., KDD 2018) and PLE (Tang et al., RecSys
//! 2020).
//!
//! Forward computation: `per_task[k] = tower_k(inner.per_task[k])`; the inner
//! architecture's shared representation and auxiliary loss pass through unchanged.
//! Towers are built under `task_path(path, k)/tower`, so they count as task `k`'s
//! parameters.

use super::builder::BackboneBuilder;
use super::{check_input_width, Architecture, Backbone, TaskFeatures};
use crate::{task_path, Result};
use tch::{nn, Tensor};

/// Any architecture with one tower per task on top.
#[derive(Debug)]
pub struct TaskTowers<A> {
    inner: A,
    towers: Vec<Box<dyn Backbone>>,
}

impl<A: Architecture> TaskTowers<A> {
    /// Builds tower `k` with `tower` under `task_path(path, k)/tower`, reading task `k`'s
    /// features of `inner`.
    pub fn build(inner: A, path: &nn::Path, tower: &dyn BackboneBuilder) -> Result<Self> {
        let towers = inner
            .feature_dims()
            .iter()
            .enumerate()
            .map(|(k, &d)| tower.build(&(task_path(path, k) / "tower"), d))
            .collect::<Result<Vec<_>>>()?;
        Ok(TaskTowers { inner, towers })
    }

    /// The wrapped architecture.
    pub fn inner(&self) -> &A {
        &self.inner
    }
}

impl<A: Architecture> Architecture for TaskTowers<A> {
    fn num_tasks(&self) -> usize {
        self.towers.len()
    }
    fn feature_dims(&self) -> Vec<i64> {
        self.towers.iter().map(|t| t.out_dim()).collect()
    }
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<TaskFeatures> {
        let inner = self.inner.forward_t(xs, train)?;
        let per_task = inner
            .per_task
            .iter()
            .zip(&self.towers)
            .enumerate()
            .map(|(k, (f, t))| {
                if let Some(w) = t.in_dim() {
                    check_input_width(&format!("tower of task {k} input"), f, w)?;
                }
                t.forward_t(f, train)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TaskFeatures {
            shared: inner.shared,
            per_task,
            auxiliary_loss: inner.auxiliary_loss,
        })
    }
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn start_epoch(&mut self, epoch: usize, epochs: usize) -> Result<()> {
        self.inner.start_epoch(epoch, epochs)
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        self.inner.as_any()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{MlpBuilder, MmoeConfig};
    use crate::ParamGroups;
    use tch::{Device, Kind};

    #[test]
    fn towers_are_task_parameters() {
        // Tests draw from libtorch's process-wide generator (initialisation, randn):
        // the lock keeps parallel tests from taking each other's seeded draws.
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let mmoe = MmoeConfig::new(4, 2, 3)
            .build(&(&root / "mmoe"), &MlpBuilder::new([6]))
            .unwrap();
        let arch = TaskTowers::build(mmoe, &root, &MlpBuilder::new([5, 2])).unwrap();
        let x = Tensor::randn([7, 4], (Kind::Float, Device::Cpu));
        let f = arch.forward_t(&x, false).unwrap();
        assert_eq!(arch.feature_dims(), vec![2, 2, 2]);
        assert_eq!(f.per_task[2].size(), vec![7, 2]);
        assert_eq!(f.shared.unwrap().size(), vec![7, 2, 6]);
        let g = ParamGroups::from_var_store(&vs, 3).unwrap();
        // 2 experts × (w, b) shared; gate (w, b) + tower 2 × (w, b) per task.
        assert_eq!(g.shared.len(), 4);
        assert!(g.task.iter().all(|t| t.len() == 6));
        assert!(g.task[1].iter().any(|p| p.name == "task1.tower.1.weight"));
    }
}
