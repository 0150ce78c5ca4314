//! The trainer's optimisers. When every step trains every task, one optimiser holds
//! every parameter. When a step may draw only some tasks, there is one optimiser for
//! the shared parameters and one per task, so a step updates only the drawn tasks' own
//! parameters: gradients are kept allocated between steps, so a single optimiser would
//! move an absent task's head with its momentum and weight decay; skipping the task's
//! optimiser instead is PyTorch's behaviour for parameters without a gradient, bias
//! corrections included (each task's optimiser counts its own steps).

use mtl_core::{Error, Optimizer};
use mtl_core::{OptimizerConfig, ParamGroups, Result};
use tch::Tensor;

/// The shared optimiser (every parameter, or the shared ones and any method
/// parameters) and, for per-task steps, one per task.
#[derive(Debug)]
pub(crate) struct TaskOptimizers {
    shared: Optimizer,
    tasks: Vec<Optimizer>,
    all: Vec<Tensor>,
}

impl TaskOptimizers {
    /// Builds the optimisers over `groups`; `extra` (a weighting's parameters) join the
    /// shared ones. `per_task` splits off one optimiser per task.
    pub(crate) fn new(
        config: &OptimizerConfig,
        groups: &ParamGroups,
        extra: Vec<Tensor>,
        per_task: bool,
    ) -> Result<Self> {
        if !per_task {
            let mut all = groups.all_tensors();
            all.extend(extra);
            return Ok(TaskOptimizers {
                shared: config.build(all.iter().map(Tensor::shallow_clone).collect())?,
                tasks: Vec::new(),
                all,
            });
        }
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

    /// Every optimiser's state tensors, named `<optimiser>.<slot>` (`shared`, `task<k>`),
    /// and each one's step count, shared first.
    pub(crate) fn state(&self) -> (Vec<(String, Tensor)>, Vec<u64>) {
        let mut tensors = Vec::new();
        let mut steps = Vec::new();
        for (name, o) in self.named() {
            let (t, n) = o.state();
            tensors.extend(t.into_iter().map(|(slot, t)| (format!("{name}.{slot}"), t)));
            steps.push(n);
        }
        (tensors, steps)
    }

    /// Restores what [`TaskOptimizers::state`] returned.
    pub(crate) fn load_state(&mut self, tensors: &[(String, Tensor)], steps: &[u64]) -> Result<()> {
        if steps.len() != 1 + self.tasks.len() {
            return Err(Error::config(format!(
                "optimiser state for {} optimisers, the run has {}",
                steps.len(),
                1 + self.tasks.len()
            )));
        }
        let names: Vec<String> = self.named().map(|(n, _)| n).collect();
        let all = std::iter::once(&mut self.shared).chain(self.tasks.iter_mut());
        for ((name, o), &n) in names.iter().zip(all).zip(steps) {
            let prefix = format!("{name}.");
            let own: Vec<(String, Tensor)> = tensors
                .iter()
                .filter_map(|(k, t)| {
                    Some((k.strip_prefix(&prefix)?.to_string(), t.shallow_clone()))
                })
                .collect();
            o.load_state(&own, n)?;
        }
        Ok(())
    }

    fn named(&self) -> impl Iterator<Item = (String, &Optimizer)> {
        std::iter::once(("shared".to_string(), &self.shared)).chain(
            self.tasks
                .iter()
                .enumerate()
                .map(|(k, o)| (format!("task{k}"), o)),
        )
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
        let mut opt =
            TaskOptimizers::new(&OptimizerConfig::adam(0.1), &groups, vec![], true).unwrap();
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
