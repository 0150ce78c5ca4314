//! Learning to Branch (LTB): Guo, Lee & Ulbricht, "Learning to Branch for Multi-Task
//! Learning", ICML 2020 (PMLR 119, 3854–3863).
//!
//! Where should the tasks stop sharing layers? LTB learns it. The network is `L` layers
//! of nodes; every node is a user block (an MLP layer, a conv stage: any
//! [`BackboneBuilder`]) with its own parameters. Each node of layer `ℓ ≥ 1` reads the
//! output of *one* node of layer `ℓ − 1`, its parent, chosen by learnable branching
//! logits `θ^ℓ ∈ ℝ^{n_ℓ × n_{ℓ−1}}`; the last layer has one node per task, so following
//! parents from task `k`'s node back to layer 0 gives task `k`'s path, and tasks whose
//! paths meet share the layers below the meeting point: a tree. The discrete choice is
//! relaxed with the Gumbel-softmax (Jang et al., 2017), so the logits train with the
//! weights by back-propagation:
//!
//! ```text
//! layer 0     h⁰_i = B⁰_i(x)                                   (every node reads the input)
//! search      g ~ Gumbel(0, 1)^{n_ℓ × n_{ℓ−1}},  y = softmax((θ^ℓ + g) / τ) row-wise
//!             hard: w = onehot(argmax y) − sg(y) + y             (straight-through)
//!             h^ℓ_i = B^ℓ_i( Σ_j w_ij · h^{ℓ−1}_j )
//! warm-up     w_ij = 1 / n_{ℓ−1}  (all parents, LibMTL's all-ones α when `warmup_sum`;
//!             constants, so the warm-up trains the nodes and not the logits)
//! derived     p^ℓ_i = argmax_j θ^ℓ_ij,  h^ℓ_i = B^ℓ_i(h^{ℓ−1}_{p^ℓ_i})
//! task k      features = h^{L−1}_k
//! ```
//!
//! Defaults follow LibMTL's `LTB` (the paper's reference settings as LibMTL implements
//! them): `n_ℓ = K` nodes in every layer; hard (straight-through) samples; the first 1 %
//! of the epochs a warm-up that feeds every parent; afterwards a temperature
//! `τ(e) = τ₀ / √(e + 1)` at epoch `e` with `τ₀ = E / 20` for a run of `E` epochs (set
//! another with [`LtbConfig::temperature`]). Since a hard sample's forward value is
//! `argmax(θ + g)`, whatever τ, the temperature only shapes the gradient that reaches
//! the logits. The trainer drives the schedule through [`Architecture::start_epoch`].
//! LibMTL never fixes the tree; the paper derives it by argmax after the search and
//! trains it: call [`Ltb::fix_branches`] (or set [`LtbConfig::fix_at_epoch`]) and the
//! argmax tree is frozen into a buffer, so later forwards route each node through its
//! one parent only. Two deviations from LibMTL, both documented choices: the warm-up
//! averages the parents (LibMTL sums them, which its ResNet blocks' batch norm undoes;
//! an MLP block would see `n` times the scale) unless `warmup_sum` is set; and an
//! evaluation-mode forward during the search routes through the argmax tree (LibMTL
//! samples at evaluation too), so validation measures the tree that would be derived.
//!
//! Parameters: the nodes of layers below the last and the logits are shared (under
//! `path/layer<ℓ>/node<i>` and `path/branch<ℓ>`); task `k`'s last-layer node is built
//! under `task_path(path, k)/layer<L−1>`. The frozen tree is a non-trainable variable
//! `path/fixed` (−1 while searching), so checkpoints and saved weights carry the
//! logits and the derived tree. Gumbel noise is drawn from libtorch's generator, which
//! the trainer re-seeds from the run seed every epoch: same seed, same branches on CPU.
//! There is no single shared representation (`TaskFeatures::shared` is `None`), so
//! gradient methods use parameter mode.
//!
//! ```
//! use mtl_core::{Architecture, LtbConfig, MlpBuilder};
//! use tch::{nn, Device, Kind, Tensor};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let (l0, l1, l2) = (MlpBuilder::new([8]), MlpBuilder::new([8]), MlpBuilder::new([4]));
//! let ltb = LtbConfig::new(5, 3).build(&(vs.root() / "ltb"), &[&l0, &l1, &l2])?;
//! let f = ltb.forward_t(&Tensor::randn([2, 5], (Kind::Float, Device::Cpu)), true)?;
//! assert_eq!(f.per_task.len(), 3);
//! assert_eq!(f.per_task[2].size(), [2, 4]);
//! // After the search: freeze the argmax tree and print who shares what.
//! let tree = ltb.fix_branches()?;
//! assert_eq!(tree.num_tasks(), 3);
//! println!("{tree}");
//! # Ok::<(), mtl_core::Error>(())
//! ```

use super::builder::BackboneBuilder;
use super::{check_input_width, Architecture, Backbone, TaskFeatures};
use crate::{task_path, Error, Result};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::fmt;
use tch::{nn, Device, Kind, Tensor};

/// Configuration of an [`Ltb`] network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LtbConfig {
    /// Input width (channels for feature maps).
    pub in_dim: i64,
    /// Number of tasks `K` (nodes of the last layer).
    pub num_tasks: usize,
    /// Nodes per layer, one entry per layer, the last `K`; `None` (the default, as
    /// LibMTL) for `K` nodes in every layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<usize>>,
    /// The initial temperature `τ₀`; `None` (the default, LibMTL's) for `E / 20` in a
    /// run of `E` epochs (so, as a learning-rate schedule over the whole run, a resumed
    /// run reproduces an uninterrupted one only with the same `E`; give `τ₀` to be free
    /// of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// The fraction of the epochs that warm up with every parent fed (0.01, LibMTL's
    /// `epoch < epochs / 100`: the first epoch of any run under 100 epochs).
    #[serde(default = "default_warmup")]
    pub warmup_fraction: f64,
    /// Whether the warm-up sums the parents (LibMTL's all-ones α) instead of averaging
    /// them (the default here; see the module notes).
    #[serde(default)]
    pub warmup_sum: bool,
    /// Straight-through hard samples (true, as LibMTL's `hard=True`) or soft mixtures.
    #[serde(default = "yes")]
    pub hard: bool,
    /// The epoch at whose start the argmax tree is frozen ([`Ltb::fix_branches`]);
    /// `None` (the default, as LibMTL) searches throughout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix_at_epoch: Option<usize>,
}

fn default_warmup() -> f64 {
    0.01
}

fn yes() -> bool {
    true
}

impl LtbConfig {
    /// `num_tasks` tasks reading `in_dim`-wide inputs, with LibMTL's defaults.
    pub fn new(in_dim: i64, num_tasks: usize) -> Self {
        LtbConfig {
            in_dim,
            num_tasks,
            nodes: None,
            temperature: None,
            warmup_fraction: default_warmup(),
            warmup_sum: false,
            hard: true,
            fix_at_epoch: None,
        }
    }
    /// Sets the number of nodes of every layer (the last must be the task count).
    pub fn nodes(mut self, nodes: impl Into<Vec<usize>>) -> Self {
        self.nodes = Some(nodes.into());
        self
    }
    /// Sets the initial temperature `τ₀` (instead of `E / 20`).
    pub fn temperature(mut self, tau0: f64) -> Self {
        self.temperature = Some(tau0);
        self
    }
    /// Sets the warm-up fraction of the epochs.
    pub fn warmup_fraction(mut self, fraction: f64) -> Self {
        self.warmup_fraction = fraction;
        self
    }
    /// Sums the parents during the warm-up, as LibMTL.
    pub fn warmup_sum(mut self, sum: bool) -> Self {
        self.warmup_sum = sum;
        self
    }
    /// Hard (straight-through) or soft Gumbel-softmax samples.
    pub fn hard(mut self, hard: bool) -> Self {
        self.hard = hard;
        self
    }
    /// Freezes the argmax tree at the start of epoch `epoch`.
    pub fn fix_at_epoch(mut self, epoch: usize) -> Self {
        self.fix_at_epoch = Some(epoch);
        self
    }

    /// The nodes per layer for `layers` layers, checked.
    fn layer_nodes(&self, layers: usize) -> Result<Vec<usize>> {
        let nodes = self
            .nodes
            .clone()
            .unwrap_or_else(|| vec![self.num_tasks; layers]);
        if nodes.len() != layers {
            return Err(Error::config(format!(
                "ltb: `nodes` has {} entries but {layers} layer builders were given; give \
                 one node count per layer",
                nodes.len()
            )));
        }
        if let Some(l) = nodes.iter().position(|&n| n == 0) {
            return Err(Error::config(format!(
                "ltb: layer {l} has zero nodes; every layer needs at least one"
            )));
        }
        if nodes.last() != Some(&self.num_tasks) {
            return Err(Error::TaskCount {
                context: "ltb: nodes of the last layer (one per task)".into(),
                expected: self.num_tasks,
                got: nodes.last().copied().unwrap_or(0),
            });
        }
        Ok(nodes)
    }

    fn check(&self, layers: usize) -> Result<Vec<usize>> {
        if self.num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "ltb".into(),
                expected: 0,
                got: 0,
            });
        }
        if layers == 0 || self.in_dim <= 0 {
            return Err(Error::config(format!(
                "ltb needs at least one layer and a positive input width, got {layers} \
                 layers and in_dim {}",
                self.in_dim
            )));
        }
        if !(0.0..=1.0).contains(&self.warmup_fraction) {
            return Err(Error::config(format!(
                "ltb: warmup_fraction must lie in [0, 1], got {}",
                self.warmup_fraction
            )));
        }
        if let Some(t) = self.temperature {
            check_temperature(t)?;
        }
        self.layer_nodes(layers)
    }

    /// Builds the network: node `i` of layer `ℓ` with `layers[ℓ]` (called with the
    /// previous layer's width), the branching logits between consecutive layers (all
    /// zero: a uniform start, as LibMTL's all-ones logits) and the frozen-tree buffer.
    /// All nodes of a layer must have one output width, since any child may read any of
    /// them.
    pub fn build(&self, path: &nn::Path, layers: &[&dyn BackboneBuilder]) -> Result<Ltb> {
        let nodes = self.check(layers.len())?;
        let last = layers.len() - 1;
        let mut built: Vec<Vec<Box<dyn Backbone>>> = Vec::with_capacity(layers.len());
        let mut logits = Vec::with_capacity(last);
        let mut width = self.in_dim;
        for (l, (layer, &n)) in layers.iter().zip(&nodes).enumerate() {
            let mut row: Vec<Box<dyn Backbone>> = Vec::with_capacity(n);
            for i in 0..n {
                let p = if l == last {
                    task_path(path, i) / format!("layer{l}")
                } else {
                    path / format!("layer{l}") / format!("node{i}")
                };
                let m = layer.build(&p, width)?;
                if let Some(first) = row.first() {
                    if first.out_dim() != m.out_dim() {
                        return Err(Error::shape(
                            format!("ltb layer {l} output of node {i}"),
                            format!(
                                "width {} (as node 0's: any child may read either)",
                                first.out_dim()
                            ),
                            format!("width {}", m.out_dim()),
                        ));
                    }
                }
                row.push(m);
            }
            if l > 0 {
                let zeros = Tensor::zeros(
                    [n as i64, nodes[l - 1] as i64],
                    (Kind::Float, path.device()),
                );
                logits.push(path.f_var_copy(&format!("branch{l}"), &zeros)?);
            }
            width = row[0].out_dim();
            built.push(row);
        }
        let fixed = if last > 0 {
            let total: usize = nodes[1..].iter().sum();
            let buffer = path.f_zeros_no_train("fixed", &[total as i64])?;
            let _ = tch::no_grad(|| buffer.shallow_clone().f_fill_(-1.0))?;
            Some(buffer)
        } else {
            None
        };
        let tau = self.temperature.unwrap_or(1.0);
        Ok(Ltb {
            layers: built,
            logits,
            fixed,
            in_dim: self.in_dim,
            width,
            config: self.clone(),
            temperature: tau,
            warmup: false,
            last_sample: RefCell::new(Vec::new()),
        })
    }
}

fn check_temperature(t: f64) -> Result<()> {
    if !(t.is_finite() && t > 0.0) {
        return Err(Error::config(format!(
            "ltb: the Gumbel-softmax temperature must be positive and finite, got {t}"
        )));
    }
    Ok(())
}

/// The Learning-to-Branch network built by [`LtbConfig::build`].
#[derive(Debug)]
pub struct Ltb {
    /// `layers[ℓ][i]`: node `i` of layer `ℓ`.
    layers: Vec<Vec<Box<dyn Backbone>>>,
    /// `logits[ℓ − 1]`: θ^ℓ, `[n_ℓ, n_{ℓ−1}]`.
    logits: Vec<Tensor>,
    /// The frozen parents of the nodes of layers 1.., concatenated; −1 while searching.
    fixed: Option<Tensor>,
    in_dim: i64,
    width: i64,
    config: LtbConfig,
    temperature: f64,
    warmup: bool,
    /// The parent indices the last training forward sampled, one `[n_ℓ]` tensor per
    /// layer ℓ ≥ 1 (kept as tensors: reading them would synchronise a GPU every step).
    last_sample: RefCell<Vec<Tensor>>,
}

/// How a forward pass picks the parents of one layer.
enum Route {
    /// One parent per node (the frozen tree, or the argmax during an evaluation).
    Parents(Vec<usize>),
    /// A weighted sum of all parents, `[n_ℓ, n_{ℓ−1}]`.
    Mix(Tensor),
}

impl Ltb {
    /// The branching logits θ^ℓ (`[n_ℓ, n_{ℓ−1}]`), for layers 1.. in order.
    pub fn logits(&self) -> &[Tensor] {
        &self.logits
    }
    /// The nodes of every layer.
    pub fn nodes(&self) -> Vec<usize> {
        self.layers.iter().map(Vec::len).collect()
    }
    /// The configuration it was built from.
    pub fn config(&self) -> &LtbConfig {
        &self.config
    }
    /// The current Gumbel-softmax temperature.
    pub fn temperature(&self) -> f64 {
        self.temperature
    }
    /// Sets the temperature by hand (the trainer sets it every epoch).
    pub fn set_temperature(&mut self, tau: f64) -> Result<()> {
        check_temperature(tau)?;
        self.temperature = tau;
        Ok(())
    }
    /// Whether training forwards feed every parent (the warm-up).
    pub fn in_warmup(&self) -> bool {
        self.warmup
    }
    /// Switches the warm-up on or off by hand.
    pub fn set_warmup(&mut self, on: bool) {
        self.warmup = on;
    }

    /// The temperature and warm-up of epoch `epoch` of `epochs`: warm-up while
    /// `epoch < warmup_fraction · epochs`, then `τ₀ / √(epoch + 1)`.
    pub fn schedule(&self, epoch: usize, epochs: usize) -> (f64, bool) {
        let tau0 = self.config.temperature.unwrap_or(epochs as f64 / 20.0);
        let warm = (epoch as f64) < self.config.warmup_fraction * epochs as f64;
        (tau0 / ((epoch + 1) as f64).sqrt(), warm)
    }

    /// The frozen parents per layer 1.., or `None` while searching.
    fn frozen(&self) -> Result<Option<Vec<Vec<usize>>>> {
        let Some(buffer) = &self.fixed else {
            return Ok(None);
        };
        let flat = Vec::<f32>::try_from(buffer.f_to_device(Device::Cpu)?)?;
        if flat.first().is_none_or(|&v| v < 0.0) {
            return Ok(None);
        }
        let nodes = self.nodes();
        let mut out = Vec::with_capacity(nodes.len() - 1);
        let mut at = 0;
        for l in 1..nodes.len() {
            let mut row = Vec::with_capacity(nodes[l]);
            for &v in &flat[at..at + nodes[l]] {
                let p = v as i64;
                if p < 0 || p as usize >= nodes[l - 1] || v.fract() != 0.0 {
                    return Err(Error::config(format!(
                        "ltb: the frozen tree holds parent {v} for a node of layer {l}, \
                         which has parents 0..{}; the saved `fixed` buffer is corrupt",
                        nodes[l - 1]
                    )));
                }
                row.push(p as usize);
            }
            at += nodes[l];
            out.push(row);
        }
        Ok(Some(out))
    }

    /// The argmax of the logits: each node's most likely parent.
    fn argmax_parents(&self) -> Result<Vec<Vec<usize>>> {
        self.logits
            .iter()
            .map(|t| {
                let idx = t.f_argmax(-1, false)?.f_to_device(Device::Cpu)?;
                Ok(Vec::<i64>::try_from(idx)?
                    .into_iter()
                    .map(|i| i as usize)
                    .collect())
            })
            .collect()
    }

    /// Whether the tree is frozen.
    pub fn is_fixed(&self) -> Result<bool> {
        Ok(self.frozen()?.is_some())
    }

    /// The tree: the frozen one when fixed, else the argmax of the logits (what
    /// [`fix_branches`](Self::fix_branches) would freeze).
    pub fn derive(&self) -> Result<BranchTree> {
        let parents = match self.frozen()? {
            Some(p) => p,
            None => self.argmax_parents()?,
        };
        Ok(BranchTree {
            nodes: self.nodes(),
            parents,
        })
    }

    /// Freezes the argmax tree (a no-op on a tree already frozen, whose tree it
    /// returns): from now on each node reads its one parent, and the logits receive no
    /// gradient. The tree is saved with the weights.
    pub fn fix_branches(&self) -> Result<BranchTree> {
        let tree = self.derive()?;
        if let Some(buffer) = &self.fixed {
            let flat: Vec<f32> = tree.parents().iter().flatten().map(|&p| p as f32).collect();
            let values = Tensor::from_slice(&flat).f_to_device(buffer.device())?;
            tch::no_grad(|| buffer.shallow_clone().f_copy_(&values))?;
        }
        Ok(tree)
    }

    /// Returns to the search: the frozen tree is forgotten (the logits are kept).
    pub fn unfix_branches(&self) -> Result<()> {
        if let Some(buffer) = &self.fixed {
            let _ = tch::no_grad(|| buffer.shallow_clone().f_fill_(-1.0))?;
        }
        Ok(())
    }

    /// The parents the last training forward of the search sampled, per layer 1..
    /// (empty before one, during the warm-up or with a frozen tree).
    pub fn last_sample(&self) -> Result<Vec<Vec<usize>>> {
        self.last_sample
            .borrow()
            .iter()
            .map(|t| {
                Ok(Vec::<i64>::try_from(t.f_to_device(Device::Cpu)?)?
                    .into_iter()
                    .map(|i| i as usize)
                    .collect())
            })
            .collect()
    }

    /// The mixing weights of a Gumbel-softmax draw over `logits` (row-wise), and the
    /// sampled parents.
    fn sample(&self, logits: &Tensor) -> Result<(Tensor, Tensor)> {
        // U ~ (0, 1) kept off 0 and 1, so both logarithms stay finite.
        let u = logits
            .f_rand_like()?
            .f_clamp(f64::from(f32::MIN_POSITIVE), 1.0 - f64::from(f32::EPSILON))?;
        let gumbel = u.f_log()?.f_neg()?.f_log()?.f_neg()?;
        let soft = (logits + gumbel)
            .f_div_scalar(self.temperature)?
            .f_softmax(-1, Kind::Float)?;
        let index = soft.f_argmax(-1, false)?;
        if !self.config.hard {
            return Ok((soft, index));
        }
        let one_hot = soft
            .f_zeros_like()?
            .f_scatter_value(-1, &index.f_unsqueeze(-1)?, 1.0)?;
        let weights = one_hot - soft.f_detach()? + &soft;
        Ok((weights, index))
    }

    /// The route of every layer 1.. for this forward.
    fn routes(&self, train: bool) -> Result<Vec<Route>> {
        if let Some(parents) = self.frozen()? {
            self.last_sample.borrow_mut().clear();
            return Ok(parents.into_iter().map(Route::Parents).collect());
        }
        if self.warmup {
            self.last_sample.borrow_mut().clear();
            return self
                .logits
                .iter()
                .map(|t| {
                    let fill = if self.config.warmup_sum {
                        1.0
                    } else {
                        1.0 / t.size()[1] as f64
                    };
                    Ok(Route::Mix(t.f_full_like(fill)?))
                })
                .collect();
        }
        if !train {
            return Ok(self
                .argmax_parents()?
                .into_iter()
                .map(Route::Parents)
                .collect());
        }
        let mut sampled = Vec::with_capacity(self.logits.len());
        let mut routes = Vec::with_capacity(self.logits.len());
        for t in &self.logits {
            let (w, index) = self.sample(t)?;
            sampled.push(index);
            routes.push(Route::Mix(w));
        }
        *self.last_sample.borrow_mut() = sampled;
        Ok(routes)
    }

    /// Which nodes of each layer a forward along `routes` needs (all of them when a
    /// layer mixes its parents; else those on some task's path).
    fn needed(&self, routes: &[Route]) -> Vec<Vec<bool>> {
        let nodes = self.nodes();
        let mut need: Vec<Vec<bool>> = nodes.iter().map(|&n| vec![false; n]).collect();
        if let Some(last) = need.last_mut() {
            last.fill(true);
        }
        for l in (1..nodes.len()).rev() {
            match &routes[l - 1] {
                Route::Mix(_) => need[l - 1].fill(true),
                Route::Parents(p) => {
                    for i in 0..nodes[l] {
                        if need[l][i] {
                            need[l - 1][p[i]] = true;
                        }
                    }
                }
            }
        }
        need
    }
}

impl Architecture for Ltb {
    fn num_tasks(&self) -> usize {
        self.config.num_tasks
    }
    fn feature_dims(&self) -> Vec<i64> {
        vec![self.width; self.config.num_tasks]
    }
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<TaskFeatures> {
        check_input_width("ltb input", xs, self.in_dim)?;
        let routes = self.routes(train)?;
        let need = self.needed(&routes);
        let mut h: Vec<Option<Tensor>> = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            let inputs: Vec<Option<Tensor>> = if l == 0 {
                // Every node of layer 0 reads the input (those no task reaches, not at all).
                need[0]
                    .iter()
                    .map(|&n| n.then(|| xs.shallow_clone()))
                    .collect()
            } else {
                match &routes[l - 1] {
                    Route::Parents(p) => (0..layer.len())
                        .map(|i| {
                            need[l][i]
                                .then(|| h[p[i]].as_ref().map(Tensor::shallow_clone))
                                .flatten()
                        })
                        .collect(),
                    Route::Mix(w) => {
                        let parents = h
                            .iter()
                            .map(|t| {
                                t.as_ref().map(Tensor::shallow_clone).ok_or_else(|| {
                                    Error::config(format!("ltb: layer {} node missing", l - 1))
                                })
                            })
                            .collect::<Result<Vec<_>>>()?;
                        // [n_{ℓ−1}, B, …] viewed as [n_{ℓ−1}, B·…]: one matmul mixes
                        // every activation.
                        let stacked = Tensor::f_stack(&parents, 0)?;
                        let mut size = stacked.size();
                        size[0] = layer.len() as i64;
                        let mixed = w
                            .f_to_kind(stacked.kind())?
                            .f_matmul(&stacked.f_reshape([parents.len() as i64, -1])?)?
                            .f_reshape(size.as_slice())?;
                        (0..layer.len() as i64)
                            .map(|i| Some(mixed.select(0, i)))
                            .collect()
                    }
                }
            };
            h = layer
                .iter()
                .zip(inputs)
                .map(|(node, x)| x.map(|x| node.forward_t(&x, train)).transpose())
                .collect::<Result<Vec<_>>>()?;
        }
        let per_task = h
            .into_iter()
            .enumerate()
            .map(|(k, t)| {
                t.ok_or_else(|| Error::config(format!("ltb: task {k}'s node was not computed")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TaskFeatures::new(None, per_task))
    }
    fn name(&self) -> &'static str {
        "ltb"
    }
    fn start_epoch(&mut self, epoch: usize, epochs: usize) -> Result<()> {
        let (tau, warm) = self.schedule(epoch, epochs);
        self.temperature = tau.max(f64::from(f32::MIN_POSITIVE));
        self.warmup = warm;
        if self.config.fix_at_epoch.is_some_and(|f| epoch >= f) && !self.is_fixed()? {
            let tree = self.fix_branches()?;
            tracing::info!(epoch, "ltb: branches fixed:\n{tree}");
        }
        Ok(())
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// A derived LTB tree: each node's parent, and from them which tasks share which nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchTree {
    /// Nodes per layer.
    nodes: Vec<usize>,
    /// `parents[ℓ − 1][i]`: the parent (in layer `ℓ − 1`) of node `i` of layer `ℓ`.
    parents: Vec<Vec<usize>>,
}

impl BranchTree {
    /// A tree of `nodes[ℓ]` nodes per layer whose node `i` of layer `ℓ ≥ 1` reads node
    /// `parents[ℓ − 1][i]` of layer `ℓ − 1`; an [`Error::Config`] naming the first
    /// entry that does not fit.
    pub fn new(nodes: Vec<usize>, parents: Vec<Vec<usize>>) -> Result<Self> {
        let tree = BranchTree { nodes, parents };
        tree.check()?;
        Ok(tree)
    }

    fn check(&self) -> Result<()> {
        if self.nodes.is_empty() || self.parents.len() + 1 != self.nodes.len() {
            return Err(Error::config(format!(
                "branch tree: {} layers need {} parent lists, got {}",
                self.nodes.len(),
                self.nodes.len().saturating_sub(1),
                self.parents.len()
            )));
        }
        for (l, row) in self.parents.iter().enumerate() {
            if row.len() != self.nodes[l + 1] {
                return Err(Error::config(format!(
                    "branch tree: layer {} has {} nodes but {} parents",
                    l + 1,
                    self.nodes[l + 1],
                    row.len()
                )));
            }
            if let Some(i) = row.iter().position(|&p| p >= self.nodes[l]) {
                return Err(Error::config(format!(
                    "branch tree: node {i} of layer {} reads node {} of layer {l}, which has \
                     {} nodes",
                    l + 1,
                    row[i],
                    self.nodes[l]
                )));
            }
        }
        Ok(())
    }

    /// Nodes per layer.
    pub fn nodes(&self) -> &[usize] {
        &self.nodes
    }
    /// `parents()[ℓ − 1][i]`: the parent (in layer `ℓ − 1`) of node `i` of layer `ℓ`.
    pub fn parents(&self) -> &[Vec<usize>] {
        &self.parents
    }

    /// The number of tasks (nodes of the last layer).
    pub fn num_tasks(&self) -> usize {
        self.nodes.last().copied().unwrap_or(0)
    }

    /// Task `task`'s path: the node it runs through in every layer, layer 0 first;
    /// `None` for a task the tree does not have (or a tree read from a file that does
    /// not hold together).
    pub fn path(&self, task: usize) -> Option<Vec<usize>> {
        let layers = self.nodes.len();
        if task >= self.num_tasks() {
            return None;
        }
        let mut path = vec![0; layers];
        path[layers - 1] = task;
        for l in (1..layers).rev() {
            path[l - 1] = *self.parents.get(l - 1)?.get(path[l])?;
        }
        Some(path)
    }

    /// The nodes of layer `layer` some task runs through, each with its tasks, in node
    /// order (empty for a layer the tree does not have).
    pub fn groups(&self, layer: usize) -> Vec<(usize, Vec<usize>)> {
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        for k in 0..self.num_tasks() {
            let Some(&node) = self.path(k).as_ref().and_then(|p| p.get(layer)) else {
                continue;
            };
            match groups.iter_mut().find(|(n, _)| *n == node) {
                Some((_, tasks)) => tasks.push(k),
                None => groups.push((node, vec![k])),
            }
        }
        groups.sort_by_key(|(n, _)| *n);
        groups
    }

    /// How many layers, from the input, tasks `a` and `b` share (0: none); `None` for a
    /// task the tree does not have.
    pub fn shared_layers(&self, a: usize, b: usize) -> Option<usize> {
        let (pa, pb) = (self.path(a)?, self.path(b)?);
        Some(pa.iter().zip(&pb).take_while(|(x, y)| x == y).count())
    }
}

impl fmt::Display for BranchTree {
    /// One line per layer: each node in use and the tasks that run through it, e.g.
    /// `layer 1: node0 {task0, task1} | node2 {task2}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in 0..self.nodes.len() {
            let groups: Vec<String> = self
                .groups(l)
                .into_iter()
                .map(|(node, tasks)| {
                    let tasks: Vec<String> = tasks.iter().map(|k| format!("task{k}")).collect();
                    format!("node{node} {{{}}}", tasks.join(", "))
                })
                .collect();
            writeln!(f, "layer {l}: {}", groups.join(" | "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{MlpBuilder, MlpConfig};
    use crate::checkpoint::Checkpoint;
    use crate::ParamGroups;

    /// Three layers of `nodes` over 5 inputs for 3 tasks: 5 → 6 → 6 → 4.
    fn build(vs: &nn::VarStore, cfg: LtbConfig) -> Result<Ltb> {
        let (a, b, c) = (
            MlpBuilder::new([6]),
            MlpBuilder::new([6]),
            MlpBuilder::new([4]),
        );
        cfg.build(&(vs.root() / "ltb"), &[&a, &b, &c])
    }

    fn x() -> Tensor {
        Tensor::randn([7, 5], (Kind::Float, Device::Cpu))
    }

    /// Logits that pick `parents[ℓ−1][i]` for node `i` of layer `ℓ` by a wide margin.
    fn force(ltb: &Ltb, parents: &[Vec<usize>], margin: f64) {
        tch::no_grad(|| {
            for (t, row) in ltb.logits().iter().zip(parents) {
                let _ = t.shallow_clone().fill_(-margin);
                for (i, &p) in row.iter().enumerate() {
                    let _ = t.get(i as i64).get(p as i64).fill_(margin);
                }
            }
        });
    }

    #[test]
    fn shapes_and_parameter_split_for_k_tasks() {
        let _rng = crate::torch_rng_lock();
        for k in [1usize, 2, 4] {
            let vs = nn::VarStore::new(Device::Cpu);
            let ltb = build(&vs, LtbConfig::new(5, k)).unwrap();
            assert_eq!(ltb.num_tasks(), k);
            assert_eq!(ltb.nodes(), vec![k; 3]);
            assert_eq!(ltb.feature_dims(), vec![4; k]);
            for train in [true, false] {
                let f = ltb.forward_t(&x(), train).unwrap();
                assert!(f.shared.is_none());
                assert_eq!(f.per_task.len(), k);
                assert!(f.per_task.iter().all(|t| t.size() == [7, 4]));
            }
            let g = ParamGroups::from_var_store(&vs, k).unwrap();
            let shared: Vec<&str> = g.shared.iter().map(|p| p.name.as_str()).collect();
            // The logits of layers 1 and 2 and the nodes of layers 0 and 1 are shared;
            // the `fixed` buffer is no parameter at all.
            assert!(shared.contains(&"ltb.branch1") && shared.contains(&"ltb.branch2"));
            assert!(!shared.iter().any(|n| n.contains("fixed")));
            assert_eq!(shared.len(), 2 + 2 * 2 * k);
            assert!(g.task.iter().all(|t| t.len() == 2), "one linear layer each");
            assert_eq!(ltb.logits()[1].size(), [k as i64, k as i64]);
        }
        // Other node counts; sequences [B, T, d] mix the same way.
        let vs = nn::VarStore::new(Device::Cpu);
        let ltb = build(&vs, LtbConfig::new(5, 3).nodes([1, 2, 3])).unwrap();
        assert_eq!(ltb.logits()[0].size(), [2, 1]);
        let seq = Tensor::randn([2, 3, 5], (Kind::Float, Device::Cpu));
        let f = ltb.forward_t(&seq, true).unwrap();
        assert!(f.per_task.iter().all(|t| t.size() == [2, 3, 4]));
    }

    #[test]
    fn logits_receive_gradients_during_the_search_and_not_once_fixed() {
        let _rng = crate::torch_rng_lock();
        crate::seed_everything(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let ltb = build(&vs, LtbConfig::new(5, 3).temperature(1.0)).unwrap();
        let loss = |ltb: &Ltb| -> Tensor {
            let f = ltb.forward_t(&x(), true).unwrap();
            f.per_task
                .iter()
                .enumerate()
                .map(|(k, t)| (t * (k as f64 + 1.0)).pow_tensor_scalar(2).sum(Kind::Float))
                .fold(Tensor::zeros([], (Kind::Float, Device::Cpu)), |a, b| a + b)
        };
        loss(&ltb).backward();
        for (l, t) in ltb.logits().iter().enumerate() {
            let g = t.grad();
            assert!(g.defined(), "layer {}", l + 1);
            assert!(
                g.abs().sum(Kind::Float).double_value(&[]) > 0.0,
                "layer {}",
                l + 1
            );
        }
        // Soft samples too.
        let vs = nn::VarStore::new(Device::Cpu);
        let soft = build(&vs, LtbConfig::new(5, 3).hard(false)).unwrap();
        loss(&soft).backward();
        assert!(
            soft.logits()[0]
                .grad()
                .abs()
                .sum(Kind::Float)
                .double_value(&[])
                > 0.0
        );
        // A frozen tree no longer reads the logits.
        ltb.fix_branches().unwrap();
        for t in ltb.logits() {
            let _ = t.grad().zero_();
        }
        loss(&ltb).backward();
        for t in ltb.logits() {
            assert_eq!(t.grad().abs().sum(Kind::Float).double_value(&[]), 0.0);
        }
    }

    #[test]
    fn forced_hard_samples_equal_the_fixed_tree() {
        let _rng = crate::torch_rng_lock();
        crate::seed_everything(11);
        let vs = nn::VarStore::new(Device::Cpu);
        let ltb = build(&vs, LtbConfig::new(5, 3).temperature(0.5)).unwrap();
        let tree = vec![vec![0, 0, 2], vec![1, 1, 2]];
        force(&ltb, &tree, 1e3);
        let xs = x();
        let sampled = ltb.forward_t(&xs, true).unwrap().per_task;
        assert_eq!(ltb.last_sample().unwrap(), tree);
        let searched_eval = ltb.forward_t(&xs, false).unwrap().per_task;
        let derived = ltb.fix_branches().unwrap();
        assert_eq!(derived.parents(), tree);
        assert!(ltb.is_fixed().unwrap());
        // Scramble the logits: the frozen tree must not follow them.
        force(&ltb, &[vec![2, 2, 2], vec![0, 0, 0]], 1e3);
        let fixed = ltb.forward_t(&xs, true).unwrap().per_task;
        assert!(ltb.last_sample().unwrap().is_empty());
        // The frozen tree runs only the nodes on some task's path: node 0 of layer 1
        // (no task reads it) and node 1 of layer 0 (no node reads it) sit out.
        fixed
            .iter()
            .map(|t| t.sum(Kind::Float))
            .fold(Tensor::zeros([], (Kind::Float, Device::Cpu)), |a, b| a + b)
            .backward();
        let vars = vs.variables();
        let grad = |name: &str| vars[name].grad().defined();
        assert!(grad("ltb.layer0.node0.0.weight") && grad("ltb.layer0.node2.0.weight"));
        assert!(!grad("ltb.layer0.node1.0.weight") && !grad("ltb.layer1.node0.0.weight"));
        for k in 0..3 {
            assert!(
                sampled[k].allclose(&fixed[k], 1e-5, 1e-6, false),
                "task {k}"
            );
            assert!(searched_eval[k].allclose(&fixed[k], 1e-6, 1e-7, false));
        }
        // And by hand: task 1's last node reads node 1 of layer 1, which reads node 0.
        assert_eq!(derived.path(1), Some(vec![0, 1, 1]));
        ltb.unfix_branches().unwrap();
        assert!(!ltb.is_fixed().unwrap());
        assert_eq!(ltb.derive().unwrap().parents(), [[2, 2, 2], [0, 0, 0]]);
    }

    #[test]
    fn the_derived_tree_is_reported() {
        let tree = BranchTree::new(vec![3, 3, 3], vec![vec![0, 0, 2], vec![0, 0, 2]]).unwrap();
        assert_eq!(tree.num_tasks(), 3);
        assert_eq!(tree.path(0), Some(vec![0, 0, 0]));
        assert_eq!(tree.path(1), Some(vec![0, 0, 1]));
        assert_eq!(tree.path(2), Some(vec![2, 2, 2]));
        assert_eq!(tree.path(3), None);
        assert!(tree.groups(3).is_empty());
        assert_eq!(tree.groups(0), vec![(0, vec![0, 1]), (2, vec![2])]);
        assert_eq!(tree.groups(1), vec![(0, vec![0, 1]), (2, vec![2])]);
        assert_eq!(tree.shared_layers(0, 1), Some(2));
        assert_eq!(tree.shared_layers(0, 2), Some(0));
        assert_eq!(tree.shared_layers(0, 5), None);
        assert_eq!(
            tree.to_string(),
            "layer 0: node0 {task0, task1} | node2 {task2}\n\
             layer 1: node0 {task0, task1} | node2 {task2}\n\
             layer 2: node0 {task0} | node1 {task1} | node2 {task2}\n"
        );
        // A shared root: every task through node 0 of layer 0.
        let rooted = BranchTree::new(vec![1, 2, 3], vec![vec![0, 0], vec![0, 1, 1]]).unwrap();
        assert_eq!(rooted.groups(0), vec![(0, vec![0, 1, 2])]);
        assert_eq!(rooted.groups(1), vec![(0, vec![0]), (1, vec![1, 2])]);
        assert_eq!(rooted.shared_layers(1, 2), Some(2));
        let json = serde_json::to_string(&rooted).unwrap();
        assert_eq!(serde_json::from_str::<BranchTree>(&json).unwrap(), rooted);
        // Trees that do not hold together are refused, or read without panicking.
        for (nodes, parents) in [
            (vec![2, 2], vec![]),
            (vec![2, 2], vec![vec![0]]),
            (vec![2, 2], vec![vec![0, 2]]),
            (vec![], vec![]),
        ] {
            assert!(matches!(
                BranchTree::new(nodes, parents),
                Err(Error::Config(_))
            ));
        }
        let broken: BranchTree =
            serde_json::from_str(r#"{"nodes": [2, 2], "parents": [[0]]}"#).unwrap();
        assert_eq!(broken.path(1), None);
        assert_eq!(
            broken.to_string(),
            "layer 0: node0 {task0}\nlayer 1: node0 {task0}\n"
        );
    }

    #[test]
    fn same_seed_same_branches() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let ltb = build(&vs, LtbConfig::new(5, 3)).unwrap();
        let xs = x();
        let draw = |seed: u64| {
            crate::seed_everything(seed);
            let mut draws = Vec::new();
            let mut outs = Vec::new();
            for _ in 0..4 {
                outs.push(ltb.forward_t(&xs, true).unwrap().per_task);
                draws.push(ltb.last_sample().unwrap());
            }
            (draws, outs)
        };
        let (a, out_a) = draw(42);
        let (b, out_b) = draw(42);
        assert_eq!(a, b);
        for (x, y) in out_a.iter().flatten().zip(out_b.iter().flatten()) {
            assert!(x.equal(y));
        }
        assert_eq!(a[0].len(), 2);
        assert!(a.iter().flatten().flatten().all(|&p| p < 3));
        // Uniform logits: the four draws are not all alike, and another seed draws
        // other branches (checked for these seeds; the draws are deterministic).
        assert!(a.iter().any(|d| d != &a[0]));
        let (c, _) = draw(43);
        assert_ne!(a, c);
    }

    #[test]
    fn schedule_warmup_and_fixing_follow_the_epoch() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let mut ltb = build(&vs, LtbConfig::new(5, 3).fix_at_epoch(5)).unwrap();
        // LibMTL: warm-up while epoch < E/100, then τ = (E/20)/√(e+1).
        ltb.start_epoch(0, 200).unwrap();
        assert!(ltb.in_warmup());
        ltb.start_epoch(2, 200).unwrap();
        assert!(!ltb.in_warmup());
        assert!((ltb.temperature() - 10.0 / 3f64.sqrt()).abs() < 1e-12);
        ltb.start_epoch(0, 10).unwrap();
        assert!(ltb.in_warmup(), "the first epoch of a short run warms up");
        assert!((ltb.temperature() - 0.5).abs() < 1e-12);
        // Warm-up: parents averaged, nothing sampled; as in LibMTL the logits sit it
        // out (the mixing weights are constants) while the nodes train.
        let f = ltb.forward_t(&x(), true).unwrap();
        assert!(ltb.last_sample().unwrap().is_empty());
        f.per_task[0].sum(Kind::Float).backward();
        assert!(!ltb.logits()[0].grad().defined());
        let node = &vs.variables()["ltb.layer0.node2.0.weight"];
        assert!(node.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);
        ltb.start_epoch(4, 10).unwrap();
        assert!(!ltb.is_fixed().unwrap());
        force(&ltb, &[vec![1, 1, 1], vec![0, 1, 2]], 50.0);
        ltb.start_epoch(5, 10).unwrap();
        assert!(ltb.is_fixed().unwrap());
        assert_eq!(ltb.derive().unwrap().parents(), [[1, 1, 1], [0, 1, 2]]);
        let fixed = LtbConfig::new(5, 3).temperature(2.0);
        let mut ltb = build(&nn::VarStore::new(Device::Cpu), fixed).unwrap();
        ltb.start_epoch(3, 50).unwrap();
        assert!((ltb.temperature() - 1.0).abs() < 1e-12);
        assert!(ltb.set_temperature(0.0).is_err());
    }

    #[test]
    fn logits_and_the_frozen_tree_survive_a_checkpoint() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let ltb = build(&vs, LtbConfig::new(5, 3)).unwrap();
        force(&ltb, &[vec![2, 0, 2], vec![0, 0, 1]], 3.0);
        let tree = ltb.fix_branches().unwrap();
        let mut ck = Checkpoint::new(serde_json::json!({}));
        ck.extend(None, vs.variables());
        let bytes = ck.to_bytes().unwrap();
        let back = Checkpoint::from_bytes(&bytes, std::path::Path::new("mem")).unwrap();

        let vs2 = nn::VarStore::new(Device::Cpu);
        let ltb2 = build(&vs2, LtbConfig::new(5, 3)).unwrap();
        assert!(!ltb2.is_fixed().unwrap());
        let vars = vs2.variables();
        tch::no_grad(|| {
            for (name, t) in back.group(None) {
                vars[&name].shallow_clone().copy_(&t);
            }
        });
        assert!(ltb2.is_fixed().unwrap());
        assert_eq!(ltb2.derive().unwrap(), tree);
        for (a, b) in ltb.logits().iter().zip(ltb2.logits()) {
            assert!(a.equal(b));
        }
        let xs = x();
        let (a, b) = (
            ltb.forward_t(&xs, true).unwrap(),
            ltb2.forward_t(&xs, true).unwrap(),
        );
        for (p, q) in a.per_task.iter().zip(&b.per_task) {
            assert!(p.equal(q));
        }
    }

    #[test]
    fn bad_configs_are_typed_errors() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let task_count = |e: Error| matches!(e, Error::TaskCount { .. });
        assert!(task_count(build(&vs, LtbConfig::new(5, 0)).unwrap_err()));
        let e = build(&vs, LtbConfig::new(5, 3).nodes([3, 3])).unwrap_err();
        assert!(e.to_string().contains("2 entries but 3 layer"), "{e}");
        let e = build(&vs, LtbConfig::new(5, 3).nodes([3, 0, 3])).unwrap_err();
        assert!(e.to_string().contains("layer 1 has zero nodes"), "{e}");
        let e = build(&vs, LtbConfig::new(5, 3).nodes([3, 3, 2])).unwrap_err();
        assert!(task_count(e));
        for bad in [
            LtbConfig::new(0, 3),
            LtbConfig::new(5, 3).temperature(-1.0),
            LtbConfig::new(5, 3).temperature(f64::NAN),
            LtbConfig::new(5, 3).warmup_fraction(1.5),
        ] {
            assert!(matches!(build(&vs, bad).unwrap_err(), Error::Config(_)));
        }
        assert!(LtbConfig::new(5, 3).build(&vs.root(), &[]).is_err());
        // Nodes of one layer with different widths cannot be each other's parents.
        let uneven = |p: &nn::Path, d: i64| -> Result<Box<dyn Backbone>> {
            let w = if p.components().any(|c| c == "node1") {
                2
            } else {
                3
            };
            Ok(Box::new(MlpConfig::new([d, w]).build(p)?))
        };
        let last = MlpBuilder::new([4]);
        let e = LtbConfig::new(5, 2)
            .build(&(vs.root() / "u"), &[&uneven, &last])
            .unwrap_err();
        assert!(matches!(e, Error::Shape { .. }));
        assert!(e.to_string().contains("layer 0 output of node 1"), "{e}");
        // The wrong input width names the architecture.
        let ltb = build(&vs, LtbConfig::new(5, 2)).unwrap();
        let e = ltb
            .forward_t(&Tensor::zeros([2, 4], (Kind::Float, Device::Cpu)), true)
            .unwrap_err();
        assert!(e.to_string().contains("ltb input"), "{e}");
        // A corrupt frozen tree is refused, not indexed.
        tch::no_grad(|| {
            let _ = vs.variables()["ltb.fixed"].shallow_clone().fill_(7.0);
        });
        let e = ltb.forward_t(&x(), true).unwrap_err();
        assert!(e.to_string().contains("corrupt"), "{e}");
    }

    #[test]
    fn serde_round_trip_and_defaults() {
        let cfg = LtbConfig::new(5, 3).nodes([1, 2, 3]).fix_at_epoch(4);
        let json = serde_json::to_string(&cfg).unwrap();
        assert_eq!(serde_json::from_str::<LtbConfig>(&json).unwrap(), cfg);
        let min: LtbConfig = serde_json::from_str(r#"{"in_dim": 5, "num_tasks": 3}"#).unwrap();
        assert_eq!(min, LtbConfig::new(5, 3));
        assert!(min.hard && !min.warmup_sum && (min.warmup_fraction - 0.01).abs() < 1e-15);
    }
}
