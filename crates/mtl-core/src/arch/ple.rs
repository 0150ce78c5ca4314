//! Progressive Layered Extraction (PLE): Tang, Liu, Zhao & Gong, "Progressive Layered
//! Extraction (PLE): A Novel Multi-Task Learning (MTL) Model for Personalized
//! Recommendations", RecSys 2020, section 4.3.
//!
//! `L` extraction layers, each a CGC layer (see [`Cgc`](super::Cgc)) whose input is the
//! previous layer's output; every layer but the last also has a shared gate over all
//! experts (every task's and the shared ones) that produces the next layer's shared
//! input:
//!
//! ```text
//! x_k⁰ = x_s⁰ = x
//! layer j  x_k^{j+1} = Σ_i g_k^j(x_k^j)_i · [E_k^j(x_k^j), S^j(x_s^j)]_i           (each task)
//!          x_s^{j+1} = Σ_i g_s^j(x_s^j)_i · [E_1^j(x_1^j), …, E_K^j(x_K^j), S^j(x_s^j)]_i
//! task k   h_k = x_k^L
//! ```
//!
//! Parameter ownership follows which task losses depend on a parameter, not the
//! paper's naming: a "task-specific" expert of a non-final layer feeds the shared gate
//! and so every task, and is split as shared (named `experts_of_task<k>`); likewise a
//! task gate two or more layers below the top. The last layer's task experts and gates,
//! and the second-to-last layer's task gates, are task `k`'s own.
//!
//! `TaskFeatures::shared` is, for `L ≥ 2`, the concatenation of the last layer's task
//! inputs `x_k^{L−1}` and its flattened shared-expert outputs (`[B, K·D + m_s·D]`): the
//! last layer reads its inputs back from slices of it, so every shared parameter
//! reaches the task features only through it. For `L = 1` (CGC) it is the stacked
//! shared-expert outputs.

use super::builder::BackboneBuilder;
use super::cgc::{ExtractionLayer, LayerPlan};
use super::{check_input_width, Architecture, TaskFeatures};
use crate::init::Init;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// Configuration of a [`Ple`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PleConfig {
    /// Input width.
    pub in_dim: i64,
    /// Number of tasks.
    pub num_tasks: usize,
    /// Number of extraction layers `L` (2 by default, as in the paper's experiments).
    pub num_layers: usize,
    /// Experts of each task per layer.
    pub task_experts: usize,
    /// Shared experts per layer.
    pub shared_experts: usize,
    /// How the gates' linear layers start (PyTorch's `nn.Linear` default, as LibMTL's
    /// gates, unless set).
    #[serde(default)]
    pub gate_init: Init,
}

impl PleConfig {
    /// Two layers, one expert per task and one shared expert in each.
    pub fn new(in_dim: i64, num_tasks: usize) -> Self {
        PleConfig {
            in_dim,
            num_tasks,
            num_layers: 2,
            task_experts: 1,
            shared_experts: 1,
            gate_init: Init::default(),
        }
    }
    /// Sets the number of extraction layers.
    pub fn num_layers(mut self, n: usize) -> Self {
        self.num_layers = n;
        self
    }
    /// Sets the number of experts of each task per layer.
    pub fn task_experts(mut self, n: usize) -> Self {
        self.task_experts = n;
        self
    }
    /// Sets the number of shared experts per layer.
    pub fn shared_experts(mut self, n: usize) -> Self {
        self.shared_experts = n;
        self
    }
    /// Sets how the gates start.
    pub fn gate_init(mut self, init: Init) -> Self {
        self.gate_init = init;
        self
    }

    /// Builds layer `j` under `path/layer<j>`, every expert with `expert`, called with
    /// the input width of its layer (the data width for layer 0, the expert width
    /// after).
    pub fn build(&self, path: &nn::Path, expert: &dyn BackboneBuilder) -> Result<Ple> {
        if self.num_layers == 0 {
            return Err(Error::config("ple needs at least one extraction layer"));
        }
        let last = self.num_layers - 1;
        let mut layers = Vec::with_capacity(self.num_layers);
        let mut in_dim = self.in_dim;
        for j in 0..self.num_layers {
            let plan = LayerPlan {
                label: format!("ple layer {j}"),
                in_dim,
                num_tasks: self.num_tasks,
                task_experts: self.task_experts,
                shared_experts: self.shared_experts,
                shared_gate: j < last,
                experts_task_owned: j == last,
                gates_task_owned: j + 1 >= last,
                gate_init: self.gate_init,
            };
            let layer = ExtractionLayer::build(&(path / format!("layer{j}")), &plan, expert)?;
            in_dim = layer.width();
            layers.push(layer);
        }
        Ok(Ple {
            layers,
            in_dim: self.in_dim,
            num_tasks: self.num_tasks,
        })
    }
}

/// The PLE architecture built by [`PleConfig::build`].
#[derive(Debug)]
pub struct Ple {
    layers: Vec<ExtractionLayer>,
    in_dim: i64,
    num_tasks: usize,
}

impl Architecture for Ple {
    fn num_tasks(&self) -> usize {
        self.num_tasks
    }
    fn feature_dims(&self) -> Vec<i64> {
        let w = self.layers.last().map_or(0, ExtractionLayer::width);
        vec![w; self.num_tasks]
    }
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<TaskFeatures> {
        check_input_width("ple input", xs, self.in_dim)?;
        let (last, below) = self
            .layers
            .split_last()
            .ok_or_else(|| Error::config("ple has no layers"))?;
        let mut tasks: Vec<Tensor> = (0..self.num_tasks).map(|_| xs.shallow_clone()).collect();
        let mut shared_in = xs.shallow_clone();
        for layer in below {
            let stack = layer.shared_stack(&shared_in, train)?;
            let out = layer.finish(&tasks, &shared_in, &stack, train)?;
            tasks = out.tasks;
            shared_in = out
                .shared
                .ok_or_else(|| Error::config("ple: a non-final layer has no shared gate"))?;
        }
        let stack = last.shared_stack(&shared_in, train)?;
        if below.is_empty() {
            let out = last.finish(&tasks, &shared_in, &stack, train)?;
            return Ok(TaskFeatures::new(Some(stack), out.tasks));
        }
        // Route the last layer's inputs through one tensor, the representation every
        // shared parameter reaches the task features through (for rep-grad). Each
        // part is flattened to `[B, n]` and read back in its own shape, so vectors and
        // feature maps go through alike.
        let b = xs.size()[0];
        let mut parts: Vec<Tensor> = tasks;
        parts.push(stack);
        let shapes: Vec<Vec<i64>> = parts.iter().map(Tensor::size).collect();
        let flat = parts
            .iter()
            .map(|p| p.f_reshape([b, -1]))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let z = Tensor::f_cat(&flat, 1)?;
        let mut offset = 0;
        let mut views = Vec::with_capacity(shapes.len());
        for s in &shapes {
            let n: i64 = s[1..].iter().product();
            views.push(z.f_narrow(1, offset, n)?.f_reshape(s.as_slice())?);
            offset += n;
        }
        let stack_in = views
            .pop()
            .ok_or_else(|| Error::config("ple: no shared expert stack"))?;
        let task_in = views;
        let out = last.finish(&task_in, &shared_in, &stack_in, train)?;
        Ok(TaskFeatures::new(Some(z), out.tasks))
    }
    fn name(&self) -> &'static str {
        "ple"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::MlpBuilder;
    use crate::ParamGroups;
    use tch::{Device, Kind};

    fn x() -> Tensor {
        Tensor::randn([4, 6], (Kind::Float, Device::Cpu))
    }

    #[test]
    fn two_layers_shapes_and_split() {
        // Tests draw from libtorch's process-wide generator (initialisation, randn):
        // the lock keeps parallel tests from taking each other's seeded draws.
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let ple = PleConfig::new(6, 2)
            .shared_experts(2)
            .build(&(vs.root() / "ple"), &MlpBuilder::new([5]))
            .unwrap();
        let f = ple.forward_t(&x(), true).unwrap();
        assert_eq!(ple.feature_dims(), vec![5, 5]);
        assert_eq!(f.per_task[1].size(), vec![4, 5]);
        // K·D task inputs + m_s·D shared-expert outputs.
        assert_eq!(f.shared.unwrap().size(), vec![4, 2 * 5 + 2 * 5]);
        let vars = vs.variables();
        // Layer 0's shared gate weighs 2 tasks × 1 expert + 2 shared experts.
        assert_eq!(vars["ple.layer0.shared_gate.weight"].size(), vec![4, 6]);
        assert!(!vars.contains_key("ple.layer1.shared_gate.weight"));
        let g = ParamGroups::from_var_store(&vs, 2).unwrap();
        for (k, own) in g.task.iter().enumerate() {
            let mut names: Vec<&str> = own.iter().map(|p| p.name.as_str()).collect();
            names.sort();
            assert_eq!(
                names,
                [
                    format!("ple.layer0.task{k}.gate.bias"),
                    format!("ple.layer0.task{k}.gate.weight"),
                    format!("ple.layer1.task{k}.experts.expert0.0.bias"),
                    format!("ple.layer1.task{k}.experts.expert0.0.weight"),
                    format!("ple.layer1.task{k}.gate.bias"),
                    format!("ple.layer1.task{k}.gate.weight"),
                ]
            );
        }
        // Layer 0's task experts feed the shared gate, hence every task: shared.
        assert!(g
            .shared
            .iter()
            .any(|p| p.name == "ple.layer0.experts_of_task1.expert0.0.weight"));
    }

    #[test]
    fn every_shared_parameter_reaches_the_tasks_through_the_representation() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let ple = PleConfig::new(6, 2)
            .num_layers(3)
            .build(&vs.root(), &MlpBuilder::new([3]))
            .unwrap();
        let f = ple.forward_t(&x(), true).unwrap();
        let z = f.shared.unwrap();
        let loss = f.per_task[0].sum(Kind::Float) + f.per_task[1].square().sum(Kind::Float);
        let g = ParamGroups::from_var_store(&vs, 2).unwrap();
        let shared = g.shared_tensors();
        let direct = Tensor::run_backward(&[&loss], &shared, true, false);
        // Chain rule through z alone must give the same shared-parameter gradient.
        let dz = Tensor::run_backward(&[&loss], &[&z], true, false)
            .pop()
            .unwrap();
        let via_z = Tensor::run_backward(&[(&z * &dz).sum(Kind::Float)], &shared, false, false);
        for (a, b) in direct.iter().zip(&via_z) {
            assert!(a.allclose(b, 1e-5, 1e-6, false));
        }
    }

    #[test]
    fn one_layer_is_cgc_and_errors_are_typed() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let ple = PleConfig::new(6, 3)
            .num_layers(1)
            .build(&vs.root(), &MlpBuilder::new([2]))
            .unwrap();
        let f = ple.forward_t(&x(), false).unwrap();
        assert_eq!(f.shared.unwrap().size(), vec![4, 1, 2]);
        assert!(!vs.variables().keys().any(|n| n.contains("shared_gate")));
        let err = ple
            .forward_t(&Tensor::zeros([2, 7], (Kind::Float, Device::Cpu)), false)
            .unwrap_err();
        assert!(err.to_string().contains("ple input"), "{err}");
        assert!(PleConfig::new(6, 2)
            .num_layers(0)
            .build(&vs.root(), &MlpBuilder::new([2]))
            .is_err());
        // A fixed-width expert cannot serve the second layer.
        let err = PleConfig::new(6, 2)
            .build(&(vs.root() / "fixed"), &crate::arch::MlpConfig::new([6, 3]))
            .unwrap_err();
        assert!(err.to_string().contains("layer1"), "{err}");
    }
}
