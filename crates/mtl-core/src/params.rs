//! The split of a model's parameters into shared and task-specific groups.
//!
//! Convention: a variable whose var-store path has a component `task<k>` (see
//! [`task_path`]) belongs to task `k`; every other trainable variable is shared. Heads
//! and task towers are built under `task_path(root, k)`, so the split needs no
//! bookkeeping by the architecture.

use crate::{Error, Result};
use tch::{nn, Tensor};

/// The var-store path for everything specific to task `k`.
pub fn task_path<'a>(p: &nn::Path<'a>, k: usize) -> nn::Path<'a> {
    p / format!("task{k}")
}

/// One named parameter.
#[derive(Debug)]
pub struct Param {
    /// Its var-store name.
    pub name: String,
    /// The tensor (shares storage with the var store).
    pub tensor: Tensor,
}

/// A model's trainable parameters split into shared and per-task groups, in a stable
/// (name-sorted) order so flattened vectors are reproducible.
#[derive(Debug)]
pub struct ParamGroups {
    /// Parameters every task's loss depends on.
    pub shared: Vec<Param>,
    /// `task[k]`: parameters only task `k`'s loss depends on.
    pub task: Vec<Vec<Param>>,
}

fn owner(name: &str, num_tasks: usize) -> Option<usize> {
    name.split('.')
        .filter_map(|c| c.strip_prefix("task")?.parse::<usize>().ok())
        .find(|&k| k < num_tasks)
}

impl ParamGroups {
    /// Splits the trainable variables of `vs` for a model with `num_tasks` tasks.
    pub fn from_var_store(vs: &nn::VarStore, num_tasks: usize) -> Result<Self> {
        if num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "ParamGroups".into(),
                expected: 0,
                got: 0,
            });
        }
        let mut vars: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let mut shared = Vec::new();
        let mut task: Vec<Vec<Param>> = (0..num_tasks).map(|_| Vec::new()).collect();
        for (name, tensor) in vars {
            let p = Param { name, tensor };
            match owner(&p.name, num_tasks) {
                Some(k) => task[k].push(p),
                None => shared.push(p),
            }
        }
        Ok(ParamGroups { shared, task })
    }

    /// The number of tasks.
    pub fn num_tasks(&self) -> usize {
        self.task.len()
    }

    /// The shared tensors, in order.
    pub fn shared_tensors(&self) -> Vec<Tensor> {
        self.shared
            .iter()
            .map(|p| p.tensor.shallow_clone())
            .collect()
    }

    /// Every trainable tensor, shared first, then task by task.
    pub fn all_tensors(&self) -> Vec<Tensor> {
        self.shared
            .iter()
            .chain(self.task.iter().flatten())
            .map(|p| p.tensor.shallow_clone())
            .collect()
    }

    /// The total number of shared scalars, `d` of the task Jacobian.
    pub fn shared_numel(&self) -> i64 {
        self.shared.iter().map(|p| p.tensor.numel() as i64).sum()
    }
}

/// Makes sure every tensor has a defined `.grad()`, so gradients can be written in
/// place. Runs one backward pass of zeros; cheap, and done once per model.
pub fn ensure_grads(params: &[Tensor]) -> Result<()> {
    let missing: Vec<&Tensor> = params.iter().filter(|p| !p.grad().defined()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let zero = missing
        .iter()
        .map(|p| (*p * 0.0).sum(p.kind()))
        .reduce(|a, b| a + b)
        .expect("non-empty");
    zero.f_backward()?;
    Ok(())
}

/// Sets every gradient to zero (keeping it defined).
pub fn zero_grads(params: &[Tensor]) {
    tch::no_grad(|| {
        for p in params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    });
}

/// Concatenates the gradients of `params` into one flat vector (zeros where undefined).
pub fn flat_grad(params: &[Tensor]) -> Tensor {
    let parts: Vec<Tensor> = params
        .iter()
        .map(|p| {
            let g = p.grad();
            if g.defined() {
                g.reshape([-1])
            } else {
                p.zeros_like().reshape([-1])
            }
        })
        .collect();
    Tensor::cat(&parts, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn split_by_task_component() {
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let _ = root.zeros("trunk_w", &[2, 3]);
        let _ = task_path(&root, 0).zeros("w", &[3]);
        let _ = task_path(&root, 1).zeros("w", &[4]);
        let _ = task_path(&root, 7).zeros("w", &[5]); // not a task of a 2-task model
        let g = ParamGroups::from_var_store(&vs, 2).unwrap();
        assert_eq!(g.shared.len(), 2);
        assert_eq!(g.shared_numel(), 11);
        assert_eq!(g.task[0][0].name, "task0.w");
        assert_eq!(g.task[1][0].tensor.numel(), 4);
    }

    #[test]
    fn zero_tasks_is_an_error() {
        let vs = nn::VarStore::new(Device::Cpu);
        assert!(matches!(
            ParamGroups::from_var_store(&vs, 0),
            Err(Error::TaskCount { .. })
        ));
    }

    #[test]
    fn flat_grad_concatenates_with_zeros_for_missing() {
        let a = Tensor::zeros([2, 2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let b = Tensor::zeros([3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        (&a * Tensor::arange(4, (Kind::Float, Device::Cpu)).view([2, 2]))
            .sum(Kind::Float)
            .backward();
        let g = flat_grad(&[a, b]);
        let expect = Tensor::from_slice(&[0.0f32, 1.0, 2.0, 3.0, 0.0, 0.0, 0.0]);
        assert!(g.equal(&expect));
    }
}
