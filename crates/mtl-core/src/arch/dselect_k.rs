//! DSelect-k: Hazimeh, Zhao, Chowdhery, Sathiamoorthy, Chen, Mazumder, Hong & Chi,
//! "DSelect-k: Differentiable Selection in the Mixture of Experts with Applications to
//! Multi-Task Learning", NeurIPS 2021 (the per-example gate, section 3).
//!
//! `n` shared experts as in MMoE, but each task's gate is k-sparse once trained. With
//! `m = ⌈log₂ n⌉`, task `t`'s gate holds `k` single-expert selectors, each `m` logits
//! `z_i(x)`, and `k` selector weights `α(x)`:
//!
//! ```text
//! smooth step   S(u) = 0 (u ≤ −γ/2),  1 (u ≥ γ/2),  −2u³/γ³ + 3u/(2γ) + 1/2 otherwise
//! selector i    r_i(x)_j = Π_l  S(z_il(x))      if bit l of j is 1
//!                               1 − S(z_il(x))  otherwise             (j = 0 … n−1)
//! gate          w_t(x) = Σ_i softmax(A_t x + a_t)_i · r_i(x),   z_i(x) = W_ti x + b_ti
//! task t        h_t = Σ_j w_t(x)_j · f_j(x)
//! ```
//!
//! Once every `|z_il| ≥ γ/2` the smooth step is 0 or 1, each selector is a one-hot
//! "binary encoding" of one expert, and `w_t` has at most `k` non-zeros. When `n` is not
//! a power of two the codes `n … 2^m − 1` name no expert; their mass is renormalised
//! away (exact when `n = 2^m`). The paper's entropy regulariser, which pushes each
//! selector towards one-hot, is optional: with `entropy_weight λ > 0` the architecture
//! returns `λ · mean_x Σ_t Σ_i H(r_ti(x))` as its auxiliary loss.
//!
//! The selector logits start uniform in `±γ/100`, near the middle of the smooth step,
//! and the selector-weight logits uniform in `±0.05` (weights and biases both), as in
//! LibMTL's `DSelect_k`; the latter is [`DSelectKConfig::weights_init`].
//! Experts are shared (`path/expert<j>`), task `t`'s gate is its own
//! (`task_path(path, t)/gate`), and `TaskFeatures::shared` is the stacked expert
//! outputs.

use super::builder::{build_group, BackboneBuilder};
use super::gate::mix;
use super::mmoe::stack_experts;
use super::{check_input_width, Architecture, Backbone, TaskFeatures};
use crate::init::{self, Init};
use crate::{task_path, Error, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

/// Configuration of a [`DSelectK`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DSelectKConfig {
    /// Input width.
    pub in_dim: i64,
    /// Number of shared experts `n`.
    pub num_experts: usize,
    /// Number of tasks (one gate each).
    pub num_tasks: usize,
    /// Experts each gate may select, `k` (2 by default).
    pub k: usize,
    /// Width of the smooth step's transition, `γ` (1.0 by default).
    pub gamma: f64,
    /// Weight of the selectors' entropy regulariser (0 turns it off, the default).
    pub entropy_weight: f64,
    /// How the selector-weight logits' layer starts (`U(±0.05)`, LibMTL's, by default).
    #[serde(default = "default_weights_init")]
    pub weights_init: Init,
}

fn default_weights_init() -> Init {
    Init::Uniform { bound: 0.05 }
}

impl DSelectKConfig {
    /// `num_tasks` 2-sparse gates over `num_experts` experts, `γ = 1`, no entropy term.
    pub fn new(in_dim: i64, num_experts: usize, num_tasks: usize) -> Self {
        DSelectKConfig {
            in_dim,
            num_experts,
            num_tasks,
            k: 2,
            gamma: 1.0,
            entropy_weight: 0.0,
            weights_init: default_weights_init(),
        }
    }
    /// Sets `k`.
    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }
    /// Sets `γ`.
    pub fn gamma(mut self, gamma: f64) -> Self {
        self.gamma = gamma;
        self
    }
    /// Sets the entropy regulariser's weight.
    pub fn entropy_weight(mut self, w: f64) -> Self {
        self.entropy_weight = w;
        self
    }
    /// Sets how the selector-weight logits' layer starts.
    pub fn weights_init(mut self, init: Init) -> Self {
        self.weights_init = init;
        self
    }

    /// Builds the experts (shared, `path/expert<j>`) with `expert` and the gates
    /// (`task_path(path, t)/gate/{selectors,weights}`).
    pub fn build(&self, path: &nn::Path, expert: &dyn BackboneBuilder) -> Result<DSelectK> {
        if self.num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "dselect_k".into(),
                expected: 0,
                got: 0,
            });
        }
        if self.num_experts == 0 || self.k == 0 || self.in_dim <= 0 {
            return Err(Error::config(format!(
                "dselect_k needs at least one expert, k ≥ 1 and a positive input width, \
                 got {self:?}"
            )));
        }
        if !(self.gamma > 0.0 && self.gamma.is_finite()) {
            return Err(Error::config(format!(
                "dselect_k: γ must be positive, got {}",
                self.gamma
            )));
        }
        if !(self.entropy_weight >= 0.0 && self.entropy_weight.is_finite()) {
            return Err(Error::config(format!(
                "dselect_k: the entropy weight must be non-negative, got {}",
                self.entropy_weight
            )));
        }
        let (experts, width) = build_group(
            expert,
            path,
            "expert",
            self.num_experts,
            self.in_dim,
            "dselect_k expert",
        )?;
        let bits = code_bits(self.num_experts);
        let k = self.k as i64;
        // Selector logits start near the middle of the smooth step: a saturated
        // selector has zero gradient and would never move.
        let selector_init = Init::Uniform {
            bound: self.gamma / 100.0,
        };
        let gates = (0..self.num_tasks)
            .map(|t| {
                let p = task_path(path, t) / "gate";
                Ok(SelectorGate {
                    selectors: init::linear(
                        &(&p / "selectors"),
                        self.in_dim,
                        k * bits,
                        selector_init,
                    )?,
                    weights: init::linear(&(&p / "weights"), self.in_dim, k, self.weights_init)?,
                })
            })
            .collect::<Result<_>>()?;
        let codes = binary_codes(self.num_experts, bits, path.device());
        Ok(DSelectK {
            experts,
            gates,
            codes,
            cfg: self.clone(),
            bits,
            width,
        })
    }
}

/// `m = ⌈log₂ n⌉`, at least one bit.
fn code_bits(n: usize) -> i64 {
    let mut m = 0;
    while (1usize << m) < n {
        m += 1;
    }
    m.max(1)
}

/// `[n, m]`: row `j` holds the bits of `j`, least significant first.
fn binary_codes(n: usize, bits: i64, device: tch::Device) -> Tensor {
    let flat: Vec<f32> = (0..n)
        .flat_map(|j| (0..bits).map(move |l| ((j >> l) & 1) as f32))
        .collect();
    Tensor::from_slice(&flat)
        .view([n as i64, bits])
        .to_device(device)
}

/// The smooth-step function `S` of width `gamma`, elementwise.
pub fn smooth_step(u: &Tensor, gamma: f64) -> Result<Tensor> {
    let t = u.f_clamp(-gamma / 2.0, gamma / 2.0)?;
    let cubic = t
        .f_pow_tensor_scalar(3)?
        .f_mul_scalar(-2.0 / gamma.powi(3))?;
    Ok(cubic
        .f_add(&t.f_mul_scalar(1.5 / gamma)?)?
        .f_add_scalar(0.5)?)
}

#[derive(Debug)]
struct SelectorGate {
    selectors: nn::Linear,
    weights: nn::Linear,
}

/// The DSelect-k architecture built by [`DSelectKConfig::build`].
#[derive(Debug)]
pub struct DSelectK {
    experts: Vec<Box<dyn Backbone>>,
    gates: Vec<SelectorGate>,
    codes: Tensor,
    cfg: DSelectKConfig,
    bits: i64,
    width: i64,
}

impl DSelectK {
    /// Task `t`'s single-expert selectors `[B, k, n]` and its gate weights `[B, n]`.
    fn gate(&self, t: usize, xs: &Tensor) -> Result<(Tensor, Tensor)> {
        let g = &self.gates[t];
        let k = self.cfg.k as i64;
        // A feature map is read through global average pooling, as MMoE's gates do.
        let xs = &super::pooled(xs)?;
        let z = xs
            .f_linear(&g.selectors.ws, g.selectors.bs.as_ref())?
            .f_view([-1, k, 1, self.bits])?;
        let s = smooth_step(&z, self.cfg.gamma)?;
        // [B, k, n, m]: the factor of bit l for expert j, then the product over bits.
        let codes = self.codes.f_to_device(xs.device())?;
        let one_minus_codes = codes.f_neg()?.f_add_scalar(1.0)?;
        let one_minus_s = s.f_neg()?.f_add_scalar(1.0)?;
        let factors = s
            .f_mul(&codes)?
            .f_add(&one_minus_s.f_mul(&one_minus_codes)?)?;
        let mut r = factors.f_prod_dim_int(-1, false, Kind::Float)?;
        if (1usize << self.bits) != self.cfg.num_experts {
            let total = r
                .f_sum_dim_intlist(-1, true, Kind::Float)?
                .f_clamp_min(1e-12)?;
            r = r.f_div(&total)?;
        }
        let alpha = xs
            .f_linear(&g.weights.ws, g.weights.bs.as_ref())?
            .f_softmax(-1, Kind::Float)?;
        let w = alpha
            .f_unsqueeze(-1)?
            .f_mul(&r)?
            .f_sum_dim_intlist(1, false, Kind::Float)?;
        Ok((r, w))
    }

    /// `[B, K, n]`: every task's gate weights for `xs`.
    pub fn gate_weights(&self, xs: &Tensor) -> Result<Tensor> {
        check_input_width("dselect_k input", xs, self.cfg.in_dim)?;
        let w = (0..self.gates.len())
            .map(|t| Ok(self.gate(t, xs)?.1))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::f_stack(&w, 1)?)
    }

    /// The entropy regulariser `mean_x Σ_t Σ_i H(r_ti(x))`, unweighted.
    pub fn selector_entropy(&self, xs: &Tensor) -> Result<Tensor> {
        check_input_width("dselect_k input", xs, self.cfg.in_dim)?;
        let mut total: Option<Tensor> = None;
        for t in 0..self.gates.len() {
            let h = entropy(&self.gate(t, xs)?.0)?;
            total = Some(match total {
                Some(acc) => acc.f_add(&h)?,
                None => h,
            });
        }
        total.ok_or_else(|| Error::config("dselect_k has no gates"))
    }
}

/// `mean_b Σ_i H(r[b, i, :])` for selectors `r` of shape `[B, k, n]`.
fn entropy(r: &Tensor) -> Result<Tensor> {
    // 0 · log 0 = 0: clamping inside the log keeps saturated selectors finite.
    let plogp = r.f_mul(&r.f_clamp_min(1e-12)?.f_log()?)?;
    Ok(plogp
        .f_sum_dim_intlist([1, 2].as_slice(), false, Kind::Float)?
        .f_mean(Kind::Float)?
        .f_neg()?)
}

impl Architecture for DSelectK {
    fn num_tasks(&self) -> usize {
        self.gates.len()
    }
    fn feature_dims(&self) -> Vec<i64> {
        vec![self.width; self.gates.len()]
    }
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<TaskFeatures> {
        check_input_width("dselect_k input", xs, self.cfg.in_dim)?;
        let stacked = stack_experts(&self.experts, xs, train)?;
        let mut per_task = Vec::with_capacity(self.gates.len());
        let mut reg: Option<Tensor> = None;
        for t in 0..self.gates.len() {
            let (r, w) = self.gate(t, xs)?;
            per_task.push(mix(&w, &stacked)?);
            if self.cfg.entropy_weight > 0.0 {
                let h = entropy(&r)?;
                reg = Some(match reg {
                    Some(acc) => acc.f_add(&h)?,
                    None => h,
                });
            }
        }
        let auxiliary_loss = reg
            .map(|h| h.f_mul_scalar(self.cfg.entropy_weight))
            .transpose()?;
        Ok(TaskFeatures {
            shared: Some(stacked),
            per_task,
            auxiliary_loss,
        })
    }
    fn name(&self) -> &'static str {
        "dselect_k"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::MlpBuilder;
    use crate::ParamGroups;
    use tch::Device;

    fn build(vs: &nn::VarStore, n: usize, k: usize, entropy: f64) -> DSelectK {
        DSelectKConfig::new(4, n, 2)
            .k(k)
            .entropy_weight(entropy)
            .build(&(vs.root() / "ds"), &MlpBuilder::new([3]))
            .unwrap()
    }

    fn nonzeros_per_row(w: &Tensor) -> Vec<i64> {
        let counts = w
            .gt(0.0)
            .sum_dim_intlist(-1, false, Kind::Int64)
            .reshape([-1]);
        Vec::<i64>::try_from(counts).unwrap()
    }

    #[test]
    fn smooth_step_is_the_papers_cubic() {
        let u = Tensor::from_slice(&[-2.0f32, -0.5, -0.25, 0.0, 0.25, 0.5, 2.0]);
        let s = Vec::<f32>::try_from(smooth_step(&u, 1.0).unwrap()).unwrap();
        let expect = [0.0, 0.0, 0.15625, 0.5, 0.84375, 1.0, 1.0];
        for (a, b) in s.iter().zip(expect) {
            assert!((a - b).abs() < 1e-6, "{s:?}");
        }
    }

    #[test]
    fn shapes_split_and_gates_are_distributions() {
        // Tests draw from libtorch's process-wide generator (initialisation, randn):
        // the lock keeps parallel tests from taking each other's seeded draws.
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let ds = build(&vs, 5, 2, 0.0);
        let x = Tensor::randn([6, 4], (Kind::Float, Device::Cpu));
        let f = ds.forward_t(&x, true).unwrap();
        assert_eq!(f.per_task[1].size(), vec![6, 3]);
        assert_eq!(f.shared.unwrap().size(), vec![6, 5, 3]);
        assert!(f.auxiliary_loss.is_none());
        let w = ds.gate_weights(&x).unwrap();
        let ones = Tensor::ones([6, 2], (Kind::Float, Device::Cpu));
        assert!(w
            .sum_dim_intlist(-1, false, Kind::Float)
            .allclose(&ones, 1e-5, 1e-5, false));
        let g = ParamGroups::from_var_store(&vs, 2).unwrap();
        assert!(g.shared.iter().all(|p| p.name.contains(".expert")));
        // ⌈log₂ 5⌉ = 3 bits per selector, k = 2 selectors.
        let sel = g.task[1]
            .iter()
            .find(|p| p.name == "ds.task1.gate.selectors.weight")
            .unwrap();
        assert_eq!(sel.tensor.size(), vec![6, 4]);
        assert_eq!(g.task[0].len(), 4);
    }

    #[test]
    fn saturated_selectors_pick_at_most_k_experts() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let ds = build(&vs, 8, 2, 0.0);
        let x = Tensor::randn([10, 4], (Kind::Float, Device::Cpu));
        // Unsaturated, every expert gets some weight.
        assert!(nonzeros_per_row(&ds.gate_weights(&x).unwrap())
            .iter()
            .all(|&c| c == 8));
        // Logits beyond ±γ/2: S is 0 or 1.
        tch::no_grad(|| {
            for g in &ds.gates {
                let _ = g.selectors.ws.shallow_clone().zero_();
                let signs = Tensor::from_slice(&[1.0f32, -1.0, 1.0, -1.0, 1.0, 1.0]);
                g.selectors
                    .bs
                    .as_ref()
                    .unwrap()
                    .shallow_clone()
                    .copy_(&signs);
            }
        });
        let w = ds.gate_weights(&x).unwrap();
        assert!(nonzeros_per_row(&w).iter().all(|&c| c <= 2), "{w}");
        // Selector 0 encodes 0b101 = 5, selector 1 encodes 0b110 = 6.
        let picked = w.select(1, 0).select(0, 0);
        let v = Vec::<f32>::try_from(picked).unwrap();
        assert!(v[5] > 0.0 && v[6] > 0.0);
    }

    #[test]
    fn entropy_regulariser_drives_gates_to_k_sparse() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let ds = build(&vs, 4, 2, 1.0);
        let x = Tensor::randn([32, 4], (Kind::Float, Device::Cpu));
        let mut opt = {
            use tch::nn::OptimizerConfig;
            tch::nn::Adam::default().build(&vs, 0.05).unwrap()
        };
        let h0 = ds.selector_entropy(&x).unwrap().double_value(&[]);
        // The lock keeps the start at seed 0's, which saturates in 400 steps here; a
        // machine whose kernels round differently follows another trajectory, so train
        // on (up to 2000 steps in all) while the selectors have not yet saturated,
        // rather than fail a slower one.
        let saturated = |h: f64| {
            let w = ds.gate_weights(&x).unwrap();
            h < 1e-6 && nonzeros_per_row(&w).iter().all(|&c| c <= 2)
        };
        let mut h1 = h0;
        for round in 0..40 {
            for _ in 0..50 {
                let aux = ds.forward_t(&x, true).unwrap().auxiliary_loss.unwrap();
                opt.backward_step(&aux);
            }
            h1 = ds.selector_entropy(&x).unwrap().double_value(&[]);
            if round >= 7 && saturated(h1) {
                break;
            }
        }
        assert!(h0 > 0.5 && h1 < 1e-6, "entropy {h0} -> {h1}");
        let w = ds.gate_weights(&x).unwrap();
        assert!(nonzeros_per_row(&w).iter().all(|&c| c <= 2), "{w}");
    }

    #[test]
    fn typed_errors() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let ds = build(&vs, 3, 1, 0.0);
        let err = ds
            .forward_t(&Tensor::zeros([2, 5], (Kind::Float, Device::Cpu)), true)
            .unwrap_err();
        assert!(err.to_string().contains("dselect_k input"), "{err}");
        let b = MlpBuilder::new([3]);
        assert!(DSelectKConfig::new(4, 3, 2)
            .k(0)
            .build(&vs.root(), &b)
            .is_err());
        assert!(DSelectKConfig::new(4, 3, 2)
            .gamma(0.0)
            .build(&vs.root(), &b)
            .is_err());
        assert!(matches!(
            DSelectKConfig::new(4, 3, 0).build(&vs.root(), &b),
            Err(Error::TaskCount { .. })
        ));
    }
}
