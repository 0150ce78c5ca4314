//! The trainer's optimisers. When every step trains every task, one optimiser holds
//! every parameter. When a step may draw only some tasks, there is one optimiser for
//! the shared parameters and one per task, so a step updates only the drawn tasks' own
//! parameters: gradients are kept allocated between steps, so a single optimiser would
//! move an absent task's head with its momentum and weight decay; skipping the task's
//! optimiser instead is PyTorch's behaviour for parameters without a gradient, bias
//! corrections included (each task's optimiser counts its own steps).

use mtl_core::params::Param;
use mtl_core::{Error, Optimizer};
use mtl_core::{OptimizerConfig, ParamGroups, Result};
use mtl_losses::bilevel::VirtualStep;
use tch::Tensor;

/// The optimisers of one cohort: every parameter, or the shared ones and any method
/// parameters, and, for per-task steps, one per task.
#[derive(Debug)]
struct Cohort {
    /// The epoch its parameters started training (0, or an unfreeze epoch).
    from_epoch: usize,
    shared: Optimizer,
    tasks: Vec<Optimizer>,
}

impl Cohort {
    fn new(
        config: &OptimizerConfig,
        groups: &ParamGroups,
        extra: Vec<Tensor>,
        per_task: bool,
        from_epoch: usize,
    ) -> Result<(Self, Vec<Tensor>)> {
        if !per_task {
            let mut all = groups.all_tensors();
            all.extend(extra);
            let shared = config.build(all.iter().map(Tensor::shallow_clone).collect())?;
            let cohort = Cohort {
                from_epoch,
                shared,
                tasks: Vec::new(),
            };
            return Ok((cohort, all));
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
        let cohort = Cohort {
            from_epoch,
            shared: config.build(shared)?,
            tasks: tasks
                .into_iter()
                .map(|ps| config.build(ps))
                .collect::<Result<_>>()?,
        };
        Ok((cohort, all))
    }

    fn all(&self) -> impl Iterator<Item = &Optimizer> {
        std::iter::once(&self.shared).chain(&self.tasks)
    }

    /// Its optimisers' names in checkpoints: `shared`, `task<k>`, and for a cohort
    /// unfrozen at epoch e `from<e>.shared`, `from<e>.task<k>` (so a run without an
    /// unfreeze schedule names its state as before there were any).
    fn names(&self) -> Vec<String> {
        let prefix = match self.from_epoch {
            0 => String::new(),
            e => format!("from{e}."),
        };
        std::iter::once(format!("{prefix}shared"))
            .chain((0..self.tasks.len()).map(|k| format!("{prefix}task{k}")))
            .collect()
    }
}

/// The trainer's optimisers, in cohorts: the parameters trained from the first epoch,
/// then those each unfreeze epoch of
/// [`TrainerConfig::unfreeze`](crate::TrainerConfig::unfreeze) adds. A cohort's
/// optimisers are built when its parameters start training, with zero moments and
/// their own step count, as `torch.optim` starts a parameter's state at its first
/// gradient: frozen parameters have no moments to move, and their first update is a
/// first step, bias corrections included.
#[derive(Debug)]
pub(crate) struct TaskOptimizers {
    cohorts: Vec<Cohort>,
    all: Vec<Tensor>,
    /// The var-store names of the parameters held, so a later cohort takes only new ones.
    held: std::collections::HashSet<String>,
    config: OptimizerConfig,
    per_task: bool,
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
        let (cohort, all) = Cohort::new(config, groups, extra, per_task, 0)?;
        Ok(TaskOptimizers {
            cohorts: vec![cohort],
            all,
            held: names(groups).collect(),
            config: *config,
            per_task,
        })
    }

    /// Adds a cohort for the parameters of `groups` that no optimiser holds yet (those
    /// unfrozen at `from_epoch`), at the current learning rate. Returns whether there
    /// were any.
    pub(crate) fn add_unfrozen(&mut self, groups: &ParamGroups, from_epoch: usize) -> Result<bool> {
        let held = &self.held;
        let keep = |ps: &[Param]| -> Vec<Param> {
            ps.iter()
                .filter(|p| !held.contains(&p.name))
                .map(|p| Param {
                    name: p.name.clone(),
                    tensor: p.tensor.shallow_clone(),
                })
                .collect()
        };
        let new = ParamGroups {
            shared: keep(&groups.shared),
            task: groups.task.iter().map(|ps| keep(ps)).collect(),
        };
        if new.shared.is_empty() && new.task.iter().all(Vec::is_empty) {
            return Ok(false);
        }
        let (mut cohort, all) =
            Cohort::new(&self.config, &new, Vec::new(), self.per_task, from_epoch)?;
        let lr = self.lr();
        cohort.shared.set_lr(lr);
        for o in &mut cohort.tasks {
            o.set_lr(lr);
        }
        self.held.extend(names(&new));
        self.all.extend(all);
        self.cohorts.push(cohort);
        Ok(true)
    }

    /// Every parameter, shared first (cohort by cohort).
    pub(crate) fn params(&self) -> &[Tensor] {
        &self.all
    }

    /// The learning rate.
    pub(crate) fn lr(&self) -> f64 {
        self.cohorts
            .first()
            .map_or(self.config.lr(), |c| c.shared.lr())
    }

    /// Sets every optimiser's learning rate.
    pub(crate) fn set_lr(&mut self, lr: f64) {
        for c in &mut self.cohorts {
            c.shared.set_lr(lr);
            for o in &mut c.tasks {
                o.set_lr(lr);
            }
        }
    }

    /// What a virtual step of these optimisers reads (Auto-λ's look-ahead): every
    /// parameter, its SGD momentum buffer (none for Adam or SGD without momentum) and
    /// the step's terms at the current learning rate.
    pub(crate) fn virtual_step(&self) -> (Vec<Tensor>, Vec<Tensor>, VirtualStep) {
        let mut params = Vec::new();
        let mut buffers = Vec::new();
        let mut momentum = 0.0;
        for o in self.cohorts.iter().flat_map(Cohort::all) {
            params.extend(o.params().iter().map(Tensor::shallow_clone));
            if let Some((mu, b)) = o.momentum_buffers() {
                momentum = mu;
                buffers.extend(b.iter().map(Tensor::shallow_clone));
            }
        }
        if buffers.len() != params.len() {
            buffers.clear();
            momentum = 0.0;
        }
        let step = VirtualStep {
            lr: self.lr(),
            weight_decay: self.config.weight_decay(),
            momentum,
        };
        (params, buffers, step)
    }

    /// Zeroes every gradient.
    pub(crate) fn zero_grad(&self) {
        for o in self.cohorts.iter().flat_map(Cohort::all) {
            o.zero_grad();
        }
    }

    /// Updates the shared parameters and those of the tasks in `drawn`.
    pub(crate) fn step(&mut self, drawn: &[bool]) -> Result<()> {
        for c in &mut self.cohorts {
            c.shared.step()?;
            for (o, _) in c.tasks.iter_mut().zip(drawn).filter(|(_, d)| **d) {
                o.step()?;
            }
        }
        Ok(())
    }

    /// Every optimiser's state tensors, named `<optimiser>.<slot>` (`shared`, `task<k>`,
    /// `from<e>.shared`...), and each one's step count, cohort by cohort, shared first.
    pub(crate) fn state(&self) -> (Vec<(String, Tensor)>, Vec<u64>) {
        let mut tensors = Vec::new();
        let mut steps = Vec::new();
        for c in &self.cohorts {
            for (name, o) in c.names().into_iter().zip(c.all()) {
                let (t, n) = o.state();
                tensors.extend(t.into_iter().map(|(slot, t)| (format!("{name}.{slot}"), t)));
                steps.push(n);
            }
        }
        (tensors, steps)
    }

    /// Restores what [`TaskOptimizers::state`] returned.
    pub(crate) fn load_state(&mut self, tensors: &[(String, Tensor)], steps: &[u64]) -> Result<()> {
        let count: usize = self.cohorts.iter().map(|c| 1 + c.tasks.len()).sum();
        if steps.len() != count {
            return Err(Error::config(format!(
                "optimiser state for {} optimisers, the run has {count} at this epoch",
                steps.len(),
            )));
        }
        let mut steps = steps.iter();
        for c in &mut self.cohorts {
            let names = c.names();
            let all = std::iter::once(&mut c.shared).chain(c.tasks.iter_mut());
            for (name, o) in names.iter().zip(all) {
                let prefix = format!("{name}.");
                let own: Vec<(String, Tensor)> = tensors
                    .iter()
                    .filter_map(|(k, t)| {
                        Some((k.strip_prefix(&prefix)?.to_string(), t.shallow_clone()))
                    })
                    .collect();
                let n = steps.next().copied().unwrap_or_default();
                o.load_state(&own, n)?;
            }
        }
        Ok(())
    }
}

fn names(groups: &ParamGroups) -> impl Iterator<Item = String> + '_ {
    groups
        .shared
        .iter()
        .chain(groups.task.iter().flatten())
        .map(|p| p.name.clone())
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
