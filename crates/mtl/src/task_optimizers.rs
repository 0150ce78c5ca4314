//! One optimiser for the shared parameters and one per task, so a step that draws only
//! some tasks updates only their own parameters. Gradients are kept allocated between
//! steps, so a single optimiser would move an absent task's head with its momentum and
//! weight decay; skipping the task's optimiser instead is PyTorch's behaviour for
//! parameters without a gradient, bias corrections included (each task's optimiser
//! counts its own steps).

use mtl_core::Optimizer;
use mtl_core::{OptimizerConfig, ParamGroups, Result};
use tch::Tensor;

/// The shared optimiser (shared parameters and any method parameters) and one per task.
#[derive(Debug)]
pub(crate) struct TaskOptimizers {
    shared: Optimizer,
    tasks: Vec<Optimizer>,
    all: Vec<Tensor>,
}

impl TaskOptimizers {
    /// Builds the optimisers over `groups`; `extra` (a weighting's parameters) join the
    /// shared ones.
    pub(crate) fn new(
        config: &OptimizerConfig,
        groups: &ParamGroups,
        extra: Vec<Tensor>,
    ) -> Result<Self> {
        let mut shared = groups.shared_tensors();
        shared.extend(extra);
        let tasks: Vec<Vec<Tensor>> = groups
            .task
            .iter()
            .map(|ps| ps.iter().map(|p| p.tensor.shallow_clone()).collect())
            .collect();
        let all = shared
            .iter()
            .chain(tasks.iter().flatten())
            .map(Tensor::shallow_clone)
            .collect();
        Ok(TaskOptimizers {
            shared: config.build(shared)?,
            tasks: tasks
                .into_iter()
                .map(|ps| config.build(ps))
                .collect::<Result<_>>()?,
            all,
        })
    }

    /// Every parameter, shared first.
    pub(crate) fn params(&self) -> &[Tensor] {
        &self.all
    }

    /// The learning rate.
    pub(crate) fn lr(&self) -> f64 {
        self.shared.lr()
    }

    /// Sets every optimiser's learning rate.
    pub(crate) fn set_lr(&mut self, lr: f64) {
        self.shared.set_lr(lr);
        for o in &mut self.tasks {
            o.set_lr(lr);
        }
    }

    /// Zeroes every gradient.
    pub(crate) fn zero_grad(&self) {
        self.shared.zero_grad();
        for o in &self.tasks {
            o.zero_grad();
        }
    }

    /// Updates the shared parameters and those of the tasks in `drawn`.
    pub(crate) fn step(&mut self, drawn: &[bool]) -> Result<()> {
        self.shared.step()?;
        for (o, _) in self.tasks.iter_mut().zip(drawn).filter(|(_, d)| **d) {
            o.step()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtl_core::task_path;
    use tch::{nn, Device};

    #[test]
    fn an_absent_task_keeps_its_weights_and_its_optimiser_state() {
        let vs = nn::VarStore::new(Device::Cpu);
        let shared = vs.root().ones("w", &[2]);
        let t0 = task_path(&vs.root(), 0).ones("w", &[2]);
        let t1 = task_path(&vs.root(), 1).ones("w", &[2]);
        let groups = ParamGroups::from_var_store(&vs, 2).unwrap();
        let mut opt = TaskOptimizers::new(&OptimizerConfig::adam(0.1), &groups, vec![]).unwrap();
        mtl_core::params::ensure_grads(opt.params()).unwrap();
        assert_eq!(opt.params().len(), 3);
        let set_grads = |v: f64| {
            tch::no_grad(|| {
                for p in [&shared, &t0, &t1] {
                    let _ = p.grad().fill_(v);
                }
            })
        };
        set_grads(1.0);
        opt.step(&[true, true]).unwrap();
        let t1_after_one = Vec::<f32>::try_from(&t1).unwrap();
        // Task 1 is absent: its gradient is zero, and Adam's momentum must not move it.
        opt.zero_grad();
        tch::no_grad(|| {
            let _ = shared.grad().fill_(1.0);
            let _ = t0.grad().fill_(1.0);
        });
        opt.step(&[true, false]).unwrap();
        assert_eq!(Vec::<f32>::try_from(&t1).unwrap(), t1_after_one);
        assert!(Vec::<f32>::try_from(&t0).unwrap()[0] < t1_after_one[0]);
        // Its next step is its optimiser's second: the same move as task 0's second.
        set_grads(1.0);
        opt.step(&[true, true]).unwrap();
        let second = t1_after_one[0] - Vec::<f32>::try_from(&t1).unwrap()[0];
        let first = 1.0 - t1_after_one[0];
        assert!((second - first).abs() < 1e-6, "{first} vs {second}");
    }
}
