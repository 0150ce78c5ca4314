//! Cross-stitch networks: Misra, Shrivastava, Gupta & Hebert, "Cross-stitch Networks for
//! Multi-task Learning", CVPR 2016.
//!
//! One tower per task, split into stages; after every stage a learned `K × K`
//! cross-stitch unit mixes the towers' activations:
//!
//! ```text
//! h_k⁰ = x
//! stage l   o_k = T_k^l(h_k^l)                      (task k's stage, its own parameters)
//!           h_k^{l+1} = Σ_j α^l_kj · o_j              (α^l: shared parameters)
//! task k    features = h_k^L
//! ```
//!
//! The units start near the identity, as in the paper: `α_kk = 0.9` (configurable) and
//! `α_kj = (1 − α_kk)/(K − 1)` elsewhere, so each row sums to one (with one task, `α = 1`).
//! LibMTL's `Cross_stitch` starts every entry at 1 instead, which sums the K towers
//! (K times the scale after each stage; it sits between ResNet blocks with batch norm,
//! which undo that). [`CrossStitchConfig::libmtl_units`] starts there.
//! Tower stages are built under `task_path(path, k)/stage<l>`, the units under
//! `path/stitch<l>`; only the units are shared. There is no single shared representation
//! (`TaskFeatures::shared` is `None`), so gradient methods use parameter mode.

use super::builder::BackboneBuilder;
use super::{check_input_width, Architecture, Backbone, TaskFeatures};
use crate::{task_path, Error, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

/// Configuration of a [`CrossStitch`] network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossStitchConfig {
    /// Input width.
    pub in_dim: i64,
    /// Number of tasks (towers).
    pub num_tasks: usize,
    /// Initial weight of a task's own activations in each unit (0.9 by default).
    pub alpha_self: f64,
    /// Initial weight of another task's activations; `None` (the default) for
    /// `(1 − α_self)/(K − 1)`, so that each row sums to one.
    #[serde(default)]
    pub alpha_other: Option<f64>,
}

impl CrossStitchConfig {
    /// `num_tasks` towers reading `in_dim`-wide inputs, `α_self = 0.9`.
    pub fn new(in_dim: i64, num_tasks: usize) -> Self {
        CrossStitchConfig {
            in_dim,
            num_tasks,
            alpha_self: 0.9,
            alpha_other: None,
        }
    }
    /// Sets the initial self weight `α_self`.
    pub fn alpha_self(mut self, a: f64) -> Self {
        self.alpha_self = a;
        self
    }
    /// Sets the initial weight of the other tasks' activations.
    pub fn alpha_other(mut self, a: f64) -> Self {
        self.alpha_other = Some(a);
        self
    }
    /// Units that start at all ones, as LibMTL's `Cross_stitch` (`α_self = 1`,
    /// `α_other = 1`).
    pub fn libmtl_units(self) -> Self {
        self.alpha_self(1.0).alpha_other(1.0)
    }

    /// The initial `K × K` unit.
    fn initial_unit(&self) -> Tensor {
        let k = self.num_tasks as i64;
        let (diag, off) = match self.alpha_other {
            _ if k == 1 => (1.0, 0.0),
            Some(other) => (self.alpha_self, other),
            None => (self.alpha_self, (1.0 - self.alpha_self) / (k - 1) as f64),
        };
        let eye = Tensor::eye(k, (Kind::Float, tch::Device::Cpu));
        eye.shallow_clone() * diag + (eye.ones_like() - eye) * off
    }

    /// Builds every task's tower, stage `l` with `stages[l]` (called with the previous
    /// stage's width), and one cross-stitch unit after each stage.
    pub fn build(&self, path: &nn::Path, stages: &[&dyn BackboneBuilder]) -> Result<CrossStitch> {
        if self.num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "cross_stitch".into(),
                expected: 0,
                got: 0,
            });
        }
        let other_ok = self.alpha_other.is_none_or(f64::is_finite);
        if stages.is_empty()
            || self.in_dim <= 0
            || !(0.0..=1.0).contains(&self.alpha_self)
            || !other_ok
        {
            return Err(Error::config(format!(
                "cross_stitch needs at least one stage, a positive input width, α_self in \
                 [0, 1] and a finite α_other, got {} stages, {self:?}",
                stages.len()
            )));
        }
        let unit = self.initial_unit().to_device(path.device());
        let mut towers: Vec<Vec<Box<dyn Backbone>>> =
            (0..self.num_tasks).map(|_| Vec::new()).collect();
        let mut units = Vec::with_capacity(stages.len());
        let mut width = self.in_dim;
        for (l, stage) in stages.iter().enumerate() {
            let mut out = None;
            for (k, tower) in towers.iter_mut().enumerate() {
                let m = stage.build(&(task_path(path, k) / format!("stage{l}")), width)?;
                match out {
                    None => out = Some(m.out_dim()),
                    Some(w) if w != m.out_dim() => {
                        return Err(Error::shape(
                            format!("cross_stitch stage {l} output of task {k}"),
                            format!("width {w} (as task 0's, to be mixed with it)"),
                            format!("width {}", m.out_dim()),
                        ))
                    }
                    Some(_) => {}
                }
                tower.push(m);
            }
            units.push(path.f_var_copy(&format!("stitch{l}"), &unit)?);
            width = out.unwrap_or(width);
        }
        Ok(CrossStitch {
            towers,
            units,
            in_dim: self.in_dim,
            width,
        })
    }
}

/// The cross-stitch network built by [`CrossStitchConfig::build`].
#[derive(Debug)]
pub struct CrossStitch {
    towers: Vec<Vec<Box<dyn Backbone>>>,
    units: Vec<Tensor>,
    in_dim: i64,
    width: i64,
}

impl CrossStitch {
    /// The cross-stitch units `α^l` (`K × K` each), in stage order.
    pub fn units(&self) -> &[Tensor] {
        &self.units
    }
}

impl Architecture for CrossStitch {
    fn num_tasks(&self) -> usize {
        self.towers.len()
    }
    fn feature_dims(&self) -> Vec<i64> {
        vec![self.width; self.towers.len()]
    }
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<TaskFeatures> {
        check_input_width("cross_stitch input", xs, self.in_dim)?;
        let k = self.towers.len() as i64;
        let mut h: Vec<Tensor> = self.towers.iter().map(|_| xs.shallow_clone()).collect();
        for (l, unit) in self.units.iter().enumerate() {
            let outs = self
                .towers
                .iter()
                .zip(&h)
                .map(|(tower, x)| tower[l].forward_t(x, train))
                .collect::<Result<Vec<_>>>()?;
            // [K, B, D] viewed as [K, B·D], so one matmul applies the unit to every
            // activation.
            let stacked = Tensor::f_stack(&outs, 0)?;
            let size = stacked.size();
            let mixed = unit
                .f_matmul(&stacked.f_reshape([k, -1])?)?
                .f_reshape(size.as_slice())?;
            h = (0..k).map(|t| mixed.select(0, t)).collect();
        }
        Ok(TaskFeatures::new(None, h))
    }
    fn name(&self) -> &'static str {
        "cross_stitch"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::MlpBuilder;
    use crate::ParamGroups;
    use tch::Device;

    fn build(vs: &nn::VarStore, k: usize) -> CrossStitch {
        let s0 = MlpBuilder::new([6]);
        let s1 = MlpBuilder::new([3]);
        CrossStitchConfig::new(4, k)
            .build(&(vs.root() / "cs"), &[&s0, &s1])
            .unwrap()
    }

    #[test]
    fn units_start_at_the_papers_init() {
        // Tests draw from libtorch's process-wide generator (initialisation, randn):
        // the lock keeps parallel tests from taking each other's seeded draws.
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let cs = build(&vs, 3);
        let expect = Tensor::from_slice(&[0.9f32, 0.05, 0.05, 0.05, 0.9, 0.05, 0.05, 0.05, 0.9])
            .view([3, 3]);
        assert_eq!(cs.units().len(), 2);
        for u in cs.units() {
            assert!(u.allclose(&expect, 1e-6, 1e-7, false), "{u}");
            assert!(u.requires_grad());
        }
        let one = build(&nn::VarStore::new(Device::Cpu), 1);
        assert_eq!(one.units()[0].double_value(&[0, 0]), 1.0);
    }

    #[test]
    fn libmtl_units_start_at_ones() {
        let vs = nn::VarStore::new(Device::Cpu);
        let s0 = MlpBuilder::new([3]);
        let cs = CrossStitchConfig::new(4, 3)
            .libmtl_units()
            .build(&vs.root(), &[&s0])
            .unwrap();
        assert!(cs.units()[0].equal(&Tensor::ones([3, 3], (Kind::Float, Device::Cpu))));
        let bad = CrossStitchConfig::new(4, 2).alpha_other(f64::NAN);
        assert!(bad.build(&vs.root(), &[&s0]).is_err());
    }

    #[test]
    fn shapes_split_and_mixing() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let cs = build(&vs, 2);
        let x = Tensor::randn([5, 4], (Kind::Float, Device::Cpu));
        let f = cs.forward_t(&x, true).unwrap();
        assert!(f.shared.is_none());
        assert_eq!(f.per_task[1].size(), vec![5, 3]);
        let g = ParamGroups::from_var_store(&vs, 2).unwrap();
        let shared: Vec<&str> = g.shared.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(shared, ["cs.stitch0", "cs.stitch1"]);
        assert!(g.task.iter().all(|t| t.len() == 4));
        // With identity units the towers are independent: task 0's features do not
        // change when task 1's tower changes.
        tch::no_grad(|| {
            for u in cs.units() {
                u.shallow_clone()
                    .copy_(&Tensor::eye(2, (Kind::Float, Device::Cpu)));
            }
        });
        let before = cs.forward_t(&x, false).unwrap().per_task;
        tch::no_grad(|| {
            for p in &g.task[1] {
                let _ = p.tensor.shallow_clone().fill_(0.3);
            }
        });
        let after = cs.forward_t(&x, false).unwrap();
        assert!(after.per_task[0].allclose(&before[0], 1e-6, 1e-7, false));
        assert!(!after.per_task[1].allclose(&before[1], 1e-3, 1e-3, false));
    }

    #[test]
    fn typed_errors_name_the_layer() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let cs = build(&vs, 2);
        let err = cs
            .forward_t(&Tensor::zeros([2, 3], (Kind::Float, Device::Cpu)), true)
            .unwrap_err();
        assert!(err.to_string().contains("cross_stitch input"), "{err}");
        let uneven = |p: &nn::Path, d: i64| -> Result<Box<dyn Backbone>> {
            let w = if p.components().any(|c| c == "task1") {
                2
            } else {
                3
            };
            Ok(Box::new(crate::arch::MlpConfig::new([d, w]).build(p)?))
        };
        let err = CrossStitchConfig::new(4, 2)
            .build(&(vs.root() / "u"), &[&uneven])
            .unwrap_err();
        assert!(
            err.to_string().contains("stage 0 output of task 1"),
            "{err}"
        );
        assert!(CrossStitchConfig::new(4, 2).build(&vs.root(), &[]).is_err());
    }
}
