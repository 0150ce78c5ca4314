//! Multi-gate Mixture-of-Experts (MMoE): Ma, Zhao, Yi, Chen, Hong & Chi, "Modeling Task
//! Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts", KDD 2018.
//!
//! Forward computation for input `x` (`[B, in]`), `E` shared experts `f_e` and one
//! softmax gate per task:
//!
//! ```text
//! experts  F = [f_1(x), …, f_E(x)]              [B, E, D]   (shared parameters)
//! gate k   g_k(x) = softmax(W_k x + b_k)         [B, E]      (task k's parameters)
//! task k   h_k = Σ_e g_k(x)_e · f_e(x)           [B, D]
//! ```
//!
//! With [`MmoeConfig::shared_gate`] the model is the paper's one-gate baseline (OMoE,
//! its eq. 5 under task towers): a single shared gate `g(x)` mixes the experts once and
//! every task reads the same `h = Σ_e g(x)_e · f_e(x)`, so the tasks can only differ in
//! their towers.
//!
//! `TaskFeatures::shared` is the stacked expert outputs `F`, which every task feature
//! derives from. The paper's task towers are the task heads' job, or wrap the model in
//! [`TaskTowers`](super::TaskTowers) for a per-task tower backbone before the heads.

use super::builder::{build_group, BackboneBuilder};
use super::gate::SoftmaxGate;
use super::{check_input_width, Architecture, Backbone, TaskFeatures};
use crate::init::Init;
use crate::{task_path, Error, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// Configuration of an [`Mmoe`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MmoeConfig {
    /// Input width.
    pub in_dim: i64,
    /// Number of shared experts `E`.
    pub num_experts: usize,
    /// Number of tasks (one gate each).
    pub num_tasks: usize,
    /// How the gates' linear layers start (PyTorch's `nn.Linear` default, as LibMTL's
    /// gates, unless set).
    #[serde(default)]
    pub gate_init: Init,
    /// One gate shared by all tasks (OMoE, the paper's one-gate MoE baseline) instead of
    /// one gate per task.
    #[serde(default)]
    pub shared_gate: bool,
}

impl MmoeConfig {
    /// `num_tasks` gates over `num_experts` experts reading `in_dim`-wide inputs.
    pub fn new(in_dim: i64, num_experts: usize, num_tasks: usize) -> Self {
        MmoeConfig {
            in_dim,
            num_experts,
            num_tasks,
            gate_init: Init::default(),
            shared_gate: false,
        }
    }
    /// Sets the number of experts.
    pub fn num_experts(mut self, n: usize) -> Self {
        self.num_experts = n;
        self
    }
    /// Sets the number of tasks.
    pub fn num_tasks(mut self, n: usize) -> Self {
        self.num_tasks = n;
        self
    }
    /// Sets how the gates start.
    pub fn gate_init(mut self, init: Init) -> Self {
        self.gate_init = init;
        self
    }
    /// One gate for all tasks (OMoE) when `yes`, one per task (MMoE) otherwise.
    pub fn shared_gate(mut self, yes: bool) -> Self {
        self.shared_gate = yes;
        self
    }

    /// Builds the experts (`path/expert<e>`, shared) with `expert` and the gates
    /// (`task_path(path, k)/gate`, or one shared `path/gate` under
    /// [`shared_gate`](Self::shared_gate)).
    pub fn build(&self, path: &nn::Path, expert: &dyn BackboneBuilder) -> Result<Mmoe> {
        if self.num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "mmoe".into(),
                expected: 0,
                got: 0,
            });
        }
        if self.num_experts == 0 || self.in_dim <= 0 {
            return Err(Error::config(format!(
                "mmoe needs at least one expert and a positive input width, got {self:?}"
            )));
        }
        let (experts, width) = build_group(
            expert,
            path,
            "expert",
            self.num_experts,
            self.in_dim,
            "mmoe expert",
        )?;
        let gates = if self.shared_gate {
            vec![SoftmaxGate::new(
                &(path / "gate"),
                self.in_dim,
                self.num_experts,
                "omoe shared gate".to_string(),
                self.gate_init,
            )?]
        } else {
            (0..self.num_tasks)
                .map(|k| {
                    SoftmaxGate::new(
                        &(task_path(path, k) / "gate"),
                        self.in_dim,
                        self.num_experts,
                        format!("mmoe gate of task {k}"),
                        self.gate_init,
                    )
                })
                .collect::<Result<_>>()?
        };
        Ok(Mmoe {
            experts,
            gates,
            num_tasks: self.num_tasks,
            in_dim: self.in_dim,
            width,
        })
    }
}

/// The MMoE architecture built by [`MmoeConfig::build`].
#[derive(Debug)]
pub struct Mmoe {
    experts: Vec<Box<dyn Backbone>>,
    /// One per task, or a single one shared by all tasks (OMoE).
    gates: Vec<SoftmaxGate>,
    num_tasks: usize,
    in_dim: i64,
    width: i64,
}

impl Mmoe {
    /// `[B, K, E]`: every task's gate weights for `xs` (for inspecting which experts a
    /// task uses; the same for all tasks under a shared gate).
    pub fn gate_weights(&self, xs: &Tensor) -> Result<Tensor> {
        check_input_width("mmoe input", xs, self.in_dim)?;
        let w = (0..self.num_tasks)
            .map(|k| self.gate_of(k).weights(xs))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::f_stack(&w, 1)?)
    }

    /// Whether one gate serves every task (OMoE).
    pub fn is_shared_gate(&self) -> bool {
        self.gates.len() == 1 && self.num_tasks > 1
    }

    fn gate_of(&self, task: usize) -> &SoftmaxGate {
        &self.gates[task.min(self.gates.len() - 1)]
    }
}

/// `[B, E, D]`: the experts' outputs for `xs`, stacked along dimension 1.
pub(crate) fn stack_experts(
    experts: &[Box<dyn Backbone>],
    xs: &Tensor,
    train: bool,
) -> Result<Tensor> {
    let outs = experts
        .iter()
        .map(|e| e.forward_t(xs, train))
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::f_stack(&outs, 1)?)
}

impl Architecture for Mmoe {
    fn num_tasks(&self) -> usize {
        self.num_tasks
    }
    fn feature_dims(&self) -> Vec<i64> {
        vec![self.width; self.num_tasks]
    }
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<TaskFeatures> {
        check_input_width("mmoe input", xs, self.in_dim)?;
        let stacked = stack_experts(&self.experts, xs, train)?;
        let mixed = self
            .gates
            .iter()
            .map(|g| g.mix(xs, &stacked))
            .collect::<Result<Vec<_>>>()?;
        // A shared gate mixes once; every task then reads that one mixture.
        let per_task = (0..self.num_tasks)
            .map(|k| mixed[k.min(mixed.len() - 1)].shallow_clone())
            .collect();
        Ok(TaskFeatures::new(Some(stacked), per_task))
    }
    fn name(&self) -> &'static str {
        "mmoe"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::MlpBuilder;
    use crate::ParamGroups;
    use tch::{Device, Kind};

    fn build(vs: &nn::VarStore) -> Mmoe {
        MmoeConfig::new(6, 3, 2)
            .build(&(vs.root() / "mmoe"), &MlpBuilder::new([8, 4]))
            .unwrap()
    }

    #[test]
    fn shapes_and_gates() {
        // Tests draw from libtorch's process-wide generator (initialisation, randn):
        // the lock keeps parallel tests from taking each other's seeded draws.
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let m = build(&vs);
        let x = Tensor::randn([5, 6], (Kind::Float, Device::Cpu));
        let f = m.forward_t(&x, true).unwrap();
        assert_eq!(f.per_task.len(), 2);
        assert_eq!(f.per_task[1].size(), vec![5, 4]);
        assert_eq!(f.shared.as_ref().unwrap().size(), vec![5, 3, 4]);
        assert_eq!(m.feature_dims(), vec![4, 4]);
        let g = m.gate_weights(&x).unwrap();
        assert_eq!(g.size(), vec![5, 2, 3]);
        // Task k's features are its gate's weighting of the shared expert outputs.
        let manual = g
            .select(1, 1)
            .unsqueeze(-1)
            .g_mul(f.shared.as_ref().unwrap())
            .sum_dim_intlist(1, false, Kind::Float);
        assert!(manual.allclose(&f.per_task[1], 1e-5, 1e-6, false));
    }

    #[test]
    fn experts_are_shared_gates_belong_to_their_task() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let _m = build(&vs);
        let g = ParamGroups::from_var_store(&vs, 2).unwrap();
        assert_eq!(g.shared.len(), 3 * 4);
        assert!(g.shared.iter().all(|p| p.name.contains(".expert")));
        for (k, own) in g.task.iter().enumerate() {
            let names: Vec<&str> = own.iter().map(|p| p.name.as_str()).collect();
            assert_eq!(
                names,
                [
                    format!("mmoe.task{k}.gate.bias"),
                    format!("mmoe.task{k}.gate.weight")
                ]
            );
        }
    }

    #[test]
    fn one_shared_gate_gives_every_task_the_same_mixture() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let m = MmoeConfig::new(6, 3, 2)
            .shared_gate(true)
            .build(&(vs.root() / "omoe"), &MlpBuilder::new([4]))
            .unwrap();
        assert!(m.is_shared_gate());
        assert_eq!(m.num_tasks(), 2);
        // The one gate is shared: no task owns a parameter, so both tasks' gradients
        // reach it.
        let g = ParamGroups::from_var_store(&vs, 2).unwrap();
        assert!(g.task.iter().all(|own| own.is_empty()));
        let names: Vec<&str> = g.shared.iter().map(|p| p.name.as_str()).collect();
        assert!(names.contains(&"omoe.gate.weight"), "{names:?}");
        let x = Tensor::randn([5, 6], (Kind::Float, Device::Cpu));
        let f = m.forward_t(&x, false).unwrap();
        assert!(f.per_task[0].equal(&f.per_task[1]));
        let w = m.gate_weights(&x).unwrap();
        assert_eq!(w.size(), vec![5, 2, 3]);
        assert!(w.select(1, 0).equal(&w.select(1, 1)));
        // Per-task gates (MMoE) start apart, so the task mixtures differ.
        let vs2 = nn::VarStore::new(Device::Cpu);
        let mm = MmoeConfig::new(6, 3, 2)
            .build(&(vs2.root() / "mmoe"), &MlpBuilder::new([4]))
            .unwrap();
        assert!(!mm.is_shared_gate());
        let f2 = mm.forward_t(&x, false).unwrap();
        assert!(!f2.per_task[0].allclose(&f2.per_task[1], 1e-6, 1e-6, false));
    }

    #[test]
    fn typed_errors_name_the_layer() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let m = build(&vs);
        let err = m
            .forward_t(&Tensor::zeros([2, 5], (Kind::Float, Device::Cpu)), false)
            .unwrap_err();
        assert!(err.to_string().contains("mmoe input"), "{err}");
        let err = MmoeConfig::new(6, 2, 2)
            .build(&vs.root(), &crate::arch::MlpConfig::new([5, 4]))
            .unwrap_err();
        assert!(err.to_string().contains("expert0"), "{err}");
        assert!(matches!(
            MmoeConfig::new(6, 2, 0).build(&vs.root(), &MlpBuilder::new([4])),
            Err(Error::TaskCount { .. })
        ));
        assert!(MmoeConfig::new(6, 0, 2)
            .build(&vs.root(), &MlpBuilder::new([4]))
            .is_err());
    }
}
