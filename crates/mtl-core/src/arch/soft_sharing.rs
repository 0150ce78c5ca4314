//! Soft parameter sharing: one tower per task, tied by an L2 penalty on the distance
//! between corresponding parameters. Duong, Cohn, Bird & Cook, "Low Resource Dependency
//! Parsing: Cross-lingual Parameter Sharing in a Neural Network Parser", ACL 2015 (see
//! also Ruder, "An Overview of Multi-Task Learning in Deep Neural Networks", 2017).
//!
//! Forward computation: `per_task[k] = T_k(x)`, with `T_k` task `k`'s tower, all built
//! by the same builder. The objective is
//!
//! ```text
//! J = Σ_k L_k + λ Σ_k ‖θ_k‖² + γ Σ_{i<j} ‖θ_i − θ_j‖²
//! ```
//!
//! over the towers' corresponding parameters `θ_k` (every tensor of the tower, biases
//! included); the last two terms are this architecture's auxiliary loss (absent when
//! `λ = γ = 0`). Towers are built under `task_path(path, k)/tower`, so there are no
//! shared parameters and no shared representation: tasks interact only through the
//! penalty, which the trainer adds outside the task weighting.
//!
//! Corresponding parameters are found by name. A `Backbone` does not list its
//! parameters, so the builder is first run once in a scratch var store to learn the
//! tower's parameter names (this draws from the global RNG like any initialisation);
//! every real tower must then hold the same names with the same shapes.

use super::builder::BackboneBuilder;
use super::{check_input_width, Architecture, Backbone, TaskFeatures};
use crate::{task_path, Error, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

/// Configuration of a [`SoftSharing`] architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftSharingConfig {
    /// Input width.
    pub in_dim: i64,
    /// Number of tasks (towers).
    pub num_tasks: usize,
    /// Weight `γ` of the pairwise distance penalty (0.01 by default).
    pub gamma: f64,
    /// Weight `λ` of the L2 penalty on each tower (0 by default).
    pub lambda: f64,
}

impl SoftSharingConfig {
    /// `num_tasks` towers reading `in_dim`-wide inputs, `γ = 0.01`, `λ = 0`.
    pub fn new(in_dim: i64, num_tasks: usize) -> Self {
        SoftSharingConfig {
            in_dim,
            num_tasks,
            gamma: 0.01,
            lambda: 0.0,
        }
    }
    /// Sets `γ`.
    pub fn gamma(mut self, gamma: f64) -> Self {
        self.gamma = gamma;
        self
    }
    /// Sets `λ`.
    pub fn lambda(mut self, lambda: f64) -> Self {
        self.lambda = lambda;
        self
    }

    /// Builds task `k`'s tower with `tower` under `task_path(path, k)/tower`.
    pub fn build(&self, path: &nn::Path, tower: &dyn BackboneBuilder) -> Result<SoftSharing> {
        if self.num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "soft_sharing".into(),
                expected: 0,
                got: 0,
            });
        }
        for (name, v) in [("γ", self.gamma), ("λ", self.lambda)] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(Error::config(format!(
                    "soft_sharing: {name} must be non-negative, got {v}"
                )));
            }
        }
        let names = {
            let scratch = nn::VarStore::new(tch::Device::Cpu);
            tower.build(&scratch.root(), self.in_dim)?;
            let mut vars: Vec<(String, Vec<i64>)> = scratch
                .variables()
                .into_iter()
                .filter(|(_, t)| t.requires_grad())
                .map(|(n, t)| (n, t.size()))
                .collect();
            vars.sort();
            vars
        };
        let mut towers = Vec::with_capacity(self.num_tasks);
        let mut params = Vec::with_capacity(self.num_tasks);
        for k in 0..self.num_tasks {
            let p = task_path(path, k) / "tower";
            let t = tower.build(&p, self.in_dim)?;
            let mut own = Vec::with_capacity(names.len());
            for (name, shape) in &names {
                let v = lookup(&p, name).ok_or_else(|| {
                    Error::config(format!(
                        "soft_sharing: tower of task {k} has no parameter `{name}` (towers \
                         must be built alike)"
                    ))
                })?;
                if &v.size() != shape {
                    return Err(Error::shape(
                        format!("soft_sharing tower of task {k} parameter `{name}`"),
                        format!("{shape:?}"),
                        format!("{:?}", v.size()),
                    ));
                }
                own.push(v);
            }
            if let Some(w) = towers.first().map(Backbone::out_dim) {
                if t.out_dim() != w {
                    return Err(Error::shape(
                        format!("soft_sharing tower of task {k} output"),
                        format!("width {w}"),
                        format!("width {}", t.out_dim()),
                    ));
                }
            }
            towers.push(t);
            params.push(own);
        }
        Ok(SoftSharing {
            towers,
            params,
            cfg: self.clone(),
        })
    }
}

/// The variable `a.b.c` under `p`: `Path::get` takes one name component, so walk down.
fn lookup(p: &nn::Path, dotted: &str) -> Option<Tensor> {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let last = parts.pop()?;
    let mut sub = p.clone();
    for c in parts {
        sub = sub / c;
    }
    sub.get(last)
}

/// The soft-sharing architecture built by [`SoftSharingConfig::build`].
#[derive(Debug)]
pub struct SoftSharing {
    towers: Vec<Box<dyn Backbone>>,
    /// `params[k][p]`: tower `k`'s `p`-th parameter, in the same (name) order for all.
    params: Vec<Vec<Tensor>>,
    cfg: SoftSharingConfig,
}

impl SoftSharing {
    /// `λ Σ_k ‖θ_k‖² + γ Σ_{i<j} ‖θ_i − θ_j‖²` for the current weights.
    pub fn penalty(&self) -> Result<Tensor> {
        let device = self
            .params
            .first()
            .and_then(|p| p.first())
            .map_or(tch::Device::Cpu, Tensor::device);
        let mut total = Tensor::f_zeros([], (Kind::Float, device))?;
        if self.cfg.lambda > 0.0 {
            for p in self.params.iter().flatten() {
                total = total.f_add(
                    &p.f_square()?
                        .f_sum(Kind::Float)?
                        .f_mul_scalar(self.cfg.lambda)?,
                )?;
            }
        }
        if self.cfg.gamma > 0.0 {
            for i in 0..self.params.len() {
                for j in i + 1..self.params.len() {
                    for (a, b) in self.params[i].iter().zip(&self.params[j]) {
                        let d = a.f_sub(b)?.f_square()?.f_sum(Kind::Float)?;
                        total = total.f_add(&d.f_mul_scalar(self.cfg.gamma)?)?;
                    }
                }
            }
        }
        Ok(total)
    }
}

impl Architecture for SoftSharing {
    fn num_tasks(&self) -> usize {
        self.towers.len()
    }
    fn feature_dims(&self) -> Vec<i64> {
        self.towers.iter().map(|t| t.out_dim()).collect()
    }
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<TaskFeatures> {
        check_input_width("soft_sharing input", xs, self.cfg.in_dim)?;
        let per_task = self
            .towers
            .iter()
            .map(|t| t.forward_t(xs, train))
            .collect::<Result<_>>()?;
        let auxiliary_loss = if self.cfg.lambda > 0.0 || self.cfg.gamma > 0.0 {
            Some(self.penalty()?)
        } else {
            None
        };
        Ok(TaskFeatures {
            shared: None,
            per_task,
            auxiliary_loss,
        })
    }
    fn name(&self) -> &'static str {
        "soft_sharing"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::MlpBuilder;
    use crate::ParamGroups;
    use tch::Device;

    #[test]
    fn towers_are_task_parameters_with_no_shared_ones() {
        // Tests draw from libtorch's process-wide generator (initialisation, randn):
        // the lock keeps parallel tests from taking each other's seeded draws.
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let soft = SoftSharingConfig::new(4, 3)
            .build(&(vs.root() / "soft"), &MlpBuilder::new([5, 2]))
            .unwrap();
        let x = Tensor::randn([6, 4], (Kind::Float, Device::Cpu));
        let f = soft.forward_t(&x, true).unwrap();
        assert_eq!(f.per_task[2].size(), vec![6, 2]);
        assert!(f.shared.is_none());
        let g = ParamGroups::from_var_store(&vs, 3).unwrap();
        assert!(g.shared.is_empty());
        assert!(g.task.iter().all(|t| t.len() == 4));
        assert_eq!(soft.params[1].len(), 4);
    }

    #[test]
    fn penalty_is_the_j_formulation() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let soft = SoftSharingConfig::new(2, 3)
            .gamma(0.5)
            .lambda(0.1)
            .build(&vs.root(), &MlpBuilder::new([1]))
            .unwrap();
        // Tower k: weight [[k, k]], bias [k]: ‖θ_k‖² = 3k², ‖θ_i − θ_j‖² = 3(i − j)².
        tch::no_grad(|| {
            for (k, own) in soft.params.iter().enumerate() {
                for p in own {
                    let _ = p.shallow_clone().fill_(k as f64);
                }
            }
        });
        let l2 = 3.0 * (0.0 + 1.0 + 4.0);
        let pairs = 3.0 * (1.0 + 4.0 + 1.0);
        let got = soft.penalty().unwrap().double_value(&[]);
        assert!((got - (0.1 * l2 + 0.5 * pairs)).abs() < 1e-5, "{got}");
        let x = Tensor::zeros([1, 2], (Kind::Float, Device::Cpu));
        let aux = soft.forward_t(&x, false).unwrap().auxiliary_loss.unwrap();
        assert!((aux.double_value(&[]) - got).abs() < 1e-9);
        // The penalty pulls the towers together: its gradient on tower 0 points
        // towards the others.
        aux.backward();
        let g0 = soft.params[0][0].grad().sum(Kind::Float).double_value(&[]);
        assert!(g0 < 0.0, "{g0}");
        let none = SoftSharingConfig::new(2, 2)
            .gamma(0.0)
            .build(&(vs.root() / "n"), &MlpBuilder::new([1]))
            .unwrap();
        assert!(none.forward_t(&x, false).unwrap().auxiliary_loss.is_none());
    }

    #[test]
    fn typed_errors() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let soft = SoftSharingConfig::new(4, 2)
            .build(&vs.root(), &MlpBuilder::new([2]))
            .unwrap();
        let err = soft
            .forward_t(&Tensor::zeros([1, 3], (Kind::Float, Device::Cpu)), true)
            .unwrap_err();
        assert!(err.to_string().contains("soft_sharing input"), "{err}");
        // Towers that differ per task cannot be tied.
        let uneven = |p: &nn::Path, d: i64| -> Result<Box<dyn Backbone>> {
            let w = if p.components().any(|c| c == "task1") {
                3
            } else {
                2
            };
            Ok(Box::new(crate::arch::MlpConfig::new([d, w]).build(p)?))
        };
        let err = SoftSharingConfig::new(4, 2)
            .build(&(vs.root() / "u"), &uneven)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("tower of task 1 parameter `0.bias`"),
            "{err}"
        );
        assert!(SoftSharingConfig::new(4, 2)
            .gamma(-1.0)
            .build(&vs.root(), &MlpBuilder::new([2]))
            .is_err());
    }
}
