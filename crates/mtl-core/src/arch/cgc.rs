//! Customized Gate Control (CGC): Tang, Liu, Zhao & Gong, "Progressive Layered
//! Extraction (PLE): A Novel Multi-Task Learning (MTL) Model for Personalized
//! Recommendations", RecSys 2020, section 4.2.
//!
//! Forward computation for input `x`, `m_t` experts of each task `k` (`E_k`), `m_s`
//! shared experts (`S`) and one softmax gate per task:
//!
//! ```text
//! task k   h_k = Σ_i g_k(x)_i · [E_k,1(x), …, E_k,m_t(x), S_1(x), …, S_m_s(x)]_i
//!          g_k(x) = softmax(W_k x + b_k)  over its own m_t + the m_s shared experts
//! ```
//!
//! Task `k`'s experts and gate are its own parameters (`task_path(path, k)`); the shared
//! experts are shared, and `TaskFeatures::shared` is their stacked output `[B, m_s, D]`.
//!
//! The same extraction layer, with a shared gate over all experts added, is stacked by
//! PLE ([`Ple`](super::Ple)).

use super::builder::{build_group, BackboneBuilder};
use super::gate::SoftmaxGate;
use super::mmoe::stack_experts;
use super::{check_input_width, Architecture, Backbone, TaskFeatures};
use crate::init::Init;
use crate::{task_path, Error, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// How one extraction layer is laid out.
#[derive(Debug, Clone)]
pub(crate) struct LayerPlan {
    /// Names the layer in errors ("cgc", "ple layer 1").
    pub label: String,
    pub in_dim: i64,
    pub num_tasks: usize,
    pub task_experts: usize,
    pub shared_experts: usize,
    /// Whether a shared gate over every expert produces the next layer's shared input.
    pub shared_gate: bool,
    /// Whether the task experts are task `k`'s parameters. Not so when a shared gate
    /// (here or further up) lets every task's loss depend on them.
    pub experts_task_owned: bool,
    /// Likewise for the task gates.
    pub gates_task_owned: bool,
    /// How the gates start.
    pub gate_init: Init,
}

/// One CGC / PLE extraction layer.
#[derive(Debug)]
pub(crate) struct ExtractionLayer {
    label: String,
    task_experts: Vec<Vec<Box<dyn Backbone>>>,
    shared_experts: Vec<Box<dyn Backbone>>,
    task_gates: Vec<SoftmaxGate>,
    shared_gate: Option<SoftmaxGate>,
    in_dim: i64,
    width: i64,
}

/// What a layer produced: each task's features and, with a shared gate, the shared
/// features for the next layer.
pub(crate) struct LayerOutput {
    pub tasks: Vec<Tensor>,
    pub shared: Option<Tensor>,
}

impl ExtractionLayer {
    pub(crate) fn build(
        path: &nn::Path,
        plan: &LayerPlan,
        expert: &dyn BackboneBuilder,
    ) -> Result<Self> {
        if plan.num_tasks == 0 {
            return Err(Error::TaskCount {
                context: plan.label.clone(),
                expected: 0,
                got: 0,
            });
        }
        if plan.task_experts == 0 || plan.shared_experts == 0 || plan.in_dim <= 0 {
            return Err(Error::config(format!(
                "{} needs at least one task expert and one shared expert and a positive \
                 input width, got {} task, {} shared experts, width {}",
                plan.label, plan.task_experts, plan.shared_experts, plan.in_dim
            )));
        }
        let (shared_experts, width) = build_group(
            expert,
            &(path / "shared"),
            "expert",
            plan.shared_experts,
            plan.in_dim,
            &format!("{} shared expert", plan.label),
        )?;
        let mut task_experts = Vec::with_capacity(plan.num_tasks);
        let mut task_gates = Vec::with_capacity(plan.num_tasks);
        let per_task_gate = plan.task_experts + plan.shared_experts;
        for k in 0..plan.num_tasks {
            // A component like `experts_of_task0` is not a `task<k>` component, so
            // these stay shared in the parameter split.
            let experts_path = if plan.experts_task_owned {
                task_path(path, k) / "experts"
            } else {
                path / format!("experts_of_task{k}")
            };
            let what = format!("{} expert of task {k}", plan.label);
            let (group, w) = build_group(
                expert,
                &experts_path,
                "expert",
                plan.task_experts,
                plan.in_dim,
                &what,
            )?;
            if w != width {
                return Err(Error::shape(
                    format!("{what} output"),
                    format!("width {width} (as the shared experts)"),
                    format!("width {w}"),
                ));
            }
            task_experts.push(group);
            let gate_path = if plan.gates_task_owned {
                task_path(path, k) / "gate"
            } else {
                path / format!("gate_of_task{k}")
            };
            task_gates.push(SoftmaxGate::new(
                &gate_path,
                plan.in_dim,
                per_task_gate,
                format!("{} gate of task {k}", plan.label),
                plan.gate_init,
            )?);
        }
        let shared_gate = plan
            .shared_gate
            .then(|| {
                SoftmaxGate::new(
                    &(path / "shared_gate"),
                    plan.in_dim,
                    plan.num_tasks * plan.task_experts + plan.shared_experts,
                    format!("{} shared gate", plan.label),
                    plan.gate_init,
                )
            })
            .transpose()?;
        Ok(ExtractionLayer {
            label: plan.label.clone(),
            task_experts,
            shared_experts,
            task_gates,
            shared_gate,
            in_dim: plan.in_dim,
            width,
        })
    }

    /// The experts' output width.
    pub(crate) fn width(&self) -> i64 {
        self.width
    }

    /// `[B, m_s, D]`: the shared experts on the shared input.
    pub(crate) fn shared_stack(&self, shared_input: &Tensor, train: bool) -> Result<Tensor> {
        check_input_width(
            &format!("{} shared input", self.label),
            shared_input,
            self.in_dim,
        )?;
        stack_experts(&self.shared_experts, shared_input, train)
    }

    /// The gated outputs, given each task's input, the shared input and the shared
    /// experts' stacked output on it.
    pub(crate) fn finish(
        &self,
        task_inputs: &[Tensor],
        shared_input: &Tensor,
        shared_stack: &Tensor,
        train: bool,
    ) -> Result<LayerOutput> {
        if task_inputs.len() != self.task_experts.len() {
            return Err(Error::TaskCount {
                context: format!("{} task inputs", self.label),
                expected: self.task_experts.len(),
                got: task_inputs.len(),
            });
        }
        let mut task_stacks = Vec::with_capacity(task_inputs.len());
        let mut tasks = Vec::with_capacity(task_inputs.len());
        for (k, ((x, experts), gate)) in task_inputs
            .iter()
            .zip(&self.task_experts)
            .zip(&self.task_gates)
            .enumerate()
        {
            check_input_width(&format!("{} input of task {k}", self.label), x, self.in_dim)?;
            let own = stack_experts(experts, x, train)?;
            let candidates = Tensor::f_cat(&[&own, shared_stack], 1)?;
            tasks.push(gate.mix(x, &candidates)?);
            task_stacks.push(own);
        }
        let shared = match &self.shared_gate {
            Some(g) => {
                let mut all: Vec<&Tensor> = task_stacks.iter().collect();
                all.push(shared_stack);
                Some(g.mix(shared_input, &Tensor::f_cat(&all, 1)?)?)
            }
            None => None,
        };
        Ok(LayerOutput { tasks, shared })
    }
}

/// Configuration of a [`Cgc`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CgcConfig {
    /// Input width.
    pub in_dim: i64,
    /// Number of tasks.
    pub num_tasks: usize,
    /// Experts of each task, `m_t` (at least one).
    pub task_experts: usize,
    /// Shared experts, `m_s` (at least one).
    pub shared_experts: usize,
    /// How the gates' linear layers start (PyTorch's `nn.Linear` default, as LibMTL's
    /// gates, unless set).
    #[serde(default)]
    pub gate_init: Init,
}

impl CgcConfig {
    /// One task expert per task and one shared expert.
    pub fn new(in_dim: i64, num_tasks: usize) -> Self {
        CgcConfig {
            in_dim,
            num_tasks,
            task_experts: 1,
            shared_experts: 1,
            gate_init: Init::default(),
        }
    }
    /// Sets the number of experts of each task.
    pub fn task_experts(mut self, n: usize) -> Self {
        self.task_experts = n;
        self
    }
    /// Sets the number of shared experts.
    pub fn shared_experts(mut self, n: usize) -> Self {
        self.shared_experts = n;
        self
    }
    /// Sets how the gates start.
    pub fn gate_init(mut self, init: Init) -> Self {
        self.gate_init = init;
        self
    }

    /// Builds the shared experts (`path/shared/expert<i>`), task `k`'s experts and gate
    /// (`task_path(path, k)/experts/expert<i>`, `task_path(path, k)/gate`), every expert
    /// with `expert`.
    pub fn build(&self, path: &nn::Path, expert: &dyn BackboneBuilder) -> Result<Cgc> {
        let plan = LayerPlan {
            label: "cgc".into(),
            in_dim: self.in_dim,
            num_tasks: self.num_tasks,
            task_experts: self.task_experts,
            shared_experts: self.shared_experts,
            shared_gate: false,
            experts_task_owned: true,
            gates_task_owned: true,
            gate_init: self.gate_init,
        };
        Ok(Cgc {
            layer: ExtractionLayer::build(path, &plan, expert)?,
            num_tasks: self.num_tasks,
        })
    }
}

/// The CGC architecture built by [`CgcConfig::build`].
#[derive(Debug)]
pub struct Cgc {
    layer: ExtractionLayer,
    num_tasks: usize,
}

impl Architecture for Cgc {
    fn num_tasks(&self) -> usize {
        self.num_tasks
    }
    fn feature_dims(&self) -> Vec<i64> {
        vec![self.layer.width(); self.num_tasks]
    }
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<TaskFeatures> {
        check_input_width("cgc input", xs, self.layer.in_dim)?;
        let stack = self.layer.shared_stack(xs, train)?;
        let inputs: Vec<Tensor> = (0..self.num_tasks).map(|_| xs.shallow_clone()).collect();
        let out = self.layer.finish(&inputs, xs, &stack, train)?;
        Ok(TaskFeatures::new(Some(stack), out.tasks))
    }
    fn name(&self) -> &'static str {
        "cgc"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::MlpBuilder;
    use crate::ParamGroups;
    use tch::{Device, Kind};

    #[test]
    fn shapes_and_parameter_split() {
        // Tests draw from libtorch's process-wide generator (initialisation, randn):
        // the lock keeps parallel tests from taking each other's seeded draws.
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let cgc = CgcConfig::new(5, 2)
            .task_experts(2)
            .shared_experts(3)
            .build(&(vs.root() / "cgc"), &MlpBuilder::new([4]))
            .unwrap();
        let x = Tensor::randn([6, 5], (Kind::Float, Device::Cpu));
        let f = cgc.forward_t(&x, true).unwrap();
        assert_eq!(f.per_task[0].size(), vec![6, 4]);
        assert_eq!(f.shared.unwrap().size(), vec![6, 3, 4]);
        let g = ParamGroups::from_var_store(&vs, 2).unwrap();
        assert_eq!(g.shared.len(), 3 * 2);
        assert!(g.shared.iter().all(|p| p.name.starts_with("cgc.shared.")));
        for (k, own) in g.task.iter().enumerate() {
            // 2 experts × (w, b) + gate (w, b)
            assert_eq!(own.len(), 6);
            let gate = own
                .iter()
                .find(|p| p.name.ends_with("gate.weight"))
                .unwrap();
            assert_eq!(gate.name, format!("cgc.task{k}.gate.weight"));
            // Each task gate weighs its own 2 experts and the 3 shared ones.
            assert_eq!(gate.tensor.size(), vec![5, 5]);
        }
    }

    #[test]
    fn typed_errors_name_the_layer() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let cgc = CgcConfig::new(5, 2)
            .build(&vs.root(), &MlpBuilder::new([4]))
            .unwrap();
        let err = cgc
            .forward_t(&Tensor::zeros([2, 3], (Kind::Float, Device::Cpu)), true)
            .unwrap_err();
        assert!(err.to_string().contains("cgc input"), "{err}");
        assert!(CgcConfig::new(5, 2)
            .shared_experts(0)
            .build(&vs.root(), &MlpBuilder::new([4]))
            .is_err());
        // Task and shared experts must agree on their width.
        let uneven = |p: &nn::Path, d: i64| -> Result<Box<dyn Backbone>> {
            let shared = p.components().any(|c| c == "shared");
            let w = if shared { 4 } else { 3 };
            Ok(Box::new(crate::arch::MlpConfig::new([d, w]).build(p)?))
        };
        let err = CgcConfig::new(5, 2)
            .build(&(vs.root() / "u"), &uneven)
            .unwrap_err();
        assert!(
            err.to_string().contains("cgc expert of task 0 output"),
            "{err}"
        );
    }
}
