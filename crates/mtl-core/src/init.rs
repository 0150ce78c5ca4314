//! How layers start: PyTorch's initialisation by default, so a model built here starts
//! from the same distribution as the same model written with `torch.nn`.
//!
//! `tch`'s own `nn::linear` and `nn::conv2d` draw weights Kaiming-uniform with the ReLU
//! gain, `U(±√(6/fan_in))`, 2.45× wider than `torch.nn.Linear`/`Conv2d`, whose
//! `reset_parameters` is `kaiming_uniform_(a=√5)`: `U(±1/√fan_in)`. On targets of small
//! scale that difference alone costs 2–4× in error for the same training budget, and
//! results stop carrying over from PyTorch or LibMTL. So every layer `mtl` builds goes
//! through this module, and [`Init::Pytorch`] is the default.
//!
//! | [`Init`] | weight | bias |
//! |---|---|---|
//! | `Pytorch` (default) | `U(±1/√fan_in)`, PyTorch's `kaiming_uniform_(a=√5)` | `U(±1/√fan_in)` |
//! | `KaimingRelu` | `U(±√(6/fan_in))`, `tch`'s default | `U(±1/√fan_in)` (dense), `0` (convolution) |
//! | `XavierUniform` | `U(±√(6/(fan_in+fan_out)))` | `0` |
//! | `Zeros` | `0` | `0` |
//! | `Uniform { bound }` | `U(±bound)` | `U(±bound)` |
//!
//! `fan_in = in·k_h·k_w` and `fan_out = out·k_h·k_w` for a weight `[out, in, k_h, k_w]`
//! (`[out, in]` for a dense layer), as `torch.nn.init` computes them. The weight is drawn
//! before the bias and the bounds are computed with PyTorch's own floating-point steps,
//! so after `tch::manual_seed(s)` a layer built here holds the numbers
//! `torch.manual_seed(s); torch.nn.Linear(..)` holds.
//!
//! ```
//! use mtl_core::init::{self, Init};
//! use tch::{nn, Device};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let layer = init::linear(&(vs.root() / "fc"), 64, 10, Init::Pytorch)?;
//! let bound = 1.0 / 64f64.sqrt();
//! assert!(layer.ws.abs().max().double_value(&[]) <= bound);
//! assert!(layer.bs.as_ref().unwrap().abs().max().double_value(&[]) <= bound);
//! # Ok::<(), mtl_core::Error>(())
//! ```
//!
//! Embeddings and layer norms need nothing from here: `tch`'s `nn::embedding` draws
//! `N(0, 1)` and `nn::layer_norm` starts at weight 1, bias 0, as PyTorch's do.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// How a layer's weight and bias are initialised (see the [module](self) table). In
/// configs: `"pytorch"`, `"kaiming_relu"`, `"xavier_uniform"`, `"zeros"`, or
/// `{ uniform = { bound = 0.05 } }`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// `torch.nn.Linear`/`Conv2d`'s `reset_parameters`: weight and bias `U(±1/√fan_in)`.
    #[default]
    #[serde(alias = "pytorch_default")]
    Pytorch,
    /// `tch`'s `nn::linear`/`nn::conv2d` default (what `mtl` used before): weight
    /// `U(±√(6/fan_in))` (Kaiming-uniform, ReLU gain); bias `U(±1/√fan_in)` for a dense
    /// layer, zero for a convolution.
    KaimingRelu,
    /// Glorot & Bengio (2010): weight `U(±√(6/(fan_in+fan_out)))`, bias zero.
    XavierUniform,
    /// Weight and bias zero (for a last layer that should start at a zero output).
    Zeros,
    /// Weight and bias `U(±bound)` (LibMTL's DSelect-k gates).
    Uniform {
        /// The half-width of the interval; finite and non-negative.
        bound: f64,
    },
}

/// `(fan_in, fan_out)` of a weight of shape `[out, in, k…]`, as
/// `torch.nn.init._calculate_fan_in_and_fan_out` computes them.
pub fn fans(shape: &[i64]) -> Result<(i64, i64)> {
    if shape.len() < 2 || shape.iter().any(|&d| d < 1) {
        return Err(Error::config(format!(
            "a layer weight needs at least two positive dimensions, got {shape:?}"
        )));
    }
    let receptive: i64 = shape[2..].iter().product();
    Ok((shape[1] * receptive, shape[0] * receptive))
}

/// PyTorch's weight bound `gain·√(3/fan_in)` for `kaiming_uniform_(a=√5)`, with
/// `gain = √(2/(1+a²))`, in PyTorch's order of floating-point operations (so the drawn
/// numbers match bit for bit; mathematically it is `1/√fan_in`).
pub fn pytorch_weight_bound(fan_in: i64) -> f64 {
    let a = 5f64.sqrt();
    let gain = (2.0 / (1.0 + a.powi(2))).sqrt();
    let std = gain / (fan_in as f64).sqrt();
    3f64.sqrt() * std
}

/// PyTorch's bias bound `1/√fan_in`.
pub fn pytorch_bias_bound(fan_in: i64) -> f64 {
    1.0 / (fan_in as f64).sqrt()
}

fn uniform(bound: f64) -> nn::Init {
    nn::Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

impl Init {
    /// The name configs use.
    pub fn name(self) -> &'static str {
        match self {
            Init::Pytorch => "pytorch",
            Init::KaimingRelu => "kaiming_relu",
            Init::XavierUniform => "xavier_uniform",
            Init::Zeros => "zeros",
            Init::Uniform { .. } => "uniform",
        }
    }

    /// Fails with [`Error::Config`] for a `Uniform` bound that is negative or not finite.
    pub fn check(self) -> Result<()> {
        match self {
            Init::Uniform { bound } if !(bound.is_finite() && bound >= 0.0) => Err(Error::config(
                format!("uniform init needs a finite bound ≥ 0, got {bound}"),
            )),
            _ => Ok(()),
        }
    }

    /// The distribution of a weight of shape `shape` (`[out, in, k…]`).
    pub fn weight(self, shape: &[i64]) -> Result<nn::Init> {
        self.check()?;
        let (fan_in, fan_out) = fans(shape)?;
        Ok(match self {
            Init::Pytorch => uniform(pytorch_weight_bound(fan_in)),
            Init::KaimingRelu => uniform((6.0 / fan_in as f64).sqrt()),
            Init::XavierUniform => uniform((6.0 / (fan_in + fan_out) as f64).sqrt()),
            Init::Zeros => nn::Init::Const(0.0),
            Init::Uniform { bound } => uniform(bound),
        })
    }

    /// The distribution of the bias of a layer whose weight has shape `shape`; a
    /// weight of more than two dimensions is a convolution's.
    pub fn bias(self, shape: &[i64]) -> Result<nn::Init> {
        self.check()?;
        let (fan_in, _) = fans(shape)?;
        let conv = shape.len() > 2;
        Ok(match self {
            Init::Pytorch => uniform(pytorch_bias_bound(fan_in)),
            Init::KaimingRelu if conv => nn::Init::Const(0.0),
            Init::KaimingRelu => uniform(pytorch_bias_bound(fan_in)),
            Init::XavierUniform | Init::Zeros => nn::Init::Const(0.0),
            Init::Uniform { bound } => uniform(bound),
        })
    }
}

/// The `weight` (shape `shape`) and `bias` (`[shape[0]]`) variables of an affine layer
/// under `path`, drawn in that order, as PyTorch draws them.
pub fn weight_and_bias(path: &nn::Path, shape: &[i64], init: Init) -> Result<(Tensor, Tensor)> {
    let (w, b) = (init.weight(shape)?, init.bias(shape)?);
    let weight = path.f_var("weight", shape, w)?;
    let bias = path.f_var("bias", &shape[..1], b)?;
    Ok((weight, bias))
}

/// A dense layer `in_dim → out_dim` under `path` (variables `weight` `[out, in]` and
/// `bias` `[out]`, the names and layout of `torch.nn.Linear`).
pub fn linear(path: &nn::Path, in_dim: i64, out_dim: i64, init: Init) -> Result<nn::Linear> {
    let (ws, bs) = weight_and_bias(path, &[out_dim, in_dim], init)?;
    Ok(nn::Linear { ws, bs: Some(bs) })
}

/// A 2-d convolution `in_channels → out_channels` with a `kernel × kernel` kernel under
/// `path`, with `cfg`'s stride, padding, dilation and groups (its `ws_init` and
/// `bs_init` are replaced by `init`'s). It always has a bias, as `torch.nn.Conv2d`.
pub fn conv2d(
    path: &nn::Path,
    in_channels: i64,
    out_channels: i64,
    kernel: i64,
    cfg: nn::ConvConfig,
    init: Init,
) -> Result<nn::Conv2D> {
    if cfg.groups < 1 || in_channels % cfg.groups != 0 {
        return Err(Error::config(format!(
            "conv2d: {in_channels} input channels do not split into {} groups",
            cfg.groups
        )));
    }
    let shape = [out_channels, in_channels / cfg.groups, kernel, kernel];
    let (w, b) = (init.weight(&shape)?, init.bias(&shape)?);
    // `nn::conv2d` creates the bias before the weight; creating both at zero and drawing
    // them here, weight first, keeps PyTorch's order of draws.
    let conv = nn::conv2d(
        path,
        in_channels,
        out_channels,
        kernel,
        nn::ConvConfig {
            bias: true,
            ws_init: nn::Init::Const(0.0),
            bs_init: nn::Init::Const(0.0),
            ..cfg
        },
    );
    let bias = conv
        .bs
        .as_ref()
        .ok_or_else(|| Error::config("conv2d built without a bias"))?;
    tch::no_grad(|| -> Result<()> {
        fill(&conv.ws, w)?;
        fill(bias, b)
    })?;
    Ok(conv)
}

/// Draws `t`'s values in place from `dist` (a constant or a uniform).
fn fill(t: &Tensor, dist: nn::Init) -> Result<()> {
    let mut t = t.shallow_clone();
    match dist {
        nn::Init::Const(c) => {
            let _ = t.f_fill_(c)?;
        }
        nn::Init::Uniform { lo, up } => {
            let _ = t.f_uniform_(lo, up)?;
        }
        other => {
            return Err(Error::config(format!(
                "no in-place draw for {other:?} (only constants and uniforms)"
            )))
        }
    }
    Ok(())
}

/// Re-initialises, with `init`, every affine layer of `vs` whose weight's name passes
/// `keep`: each variable `….weight` of two or more dimensions that has a `….bias`
/// beside it, weight then bias, layers in name order. Returns how many layers it drew.
/// For what a constructor takes no init for, such as the heads:
///
/// ```
/// use mtl_core::init::{self, Init};
/// use tch::{nn, Device, Kind};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let _trunk = init::linear(&(vs.root() / "trunk"), 4, 8, Init::Pytorch)?;
/// let _head = init::linear(&(vs.root() / "task0" / "head"), 8, 1, Init::Pytorch)?;
/// let n = init::reinit(&vs, |name| name.ends_with(".head.weight"), Init::Zeros)?;
/// assert_eq!(n, 1);
/// let head = &vs.variables()["task0.head.weight"];
/// assert_eq!(head.abs().sum(Kind::Float).double_value(&[]), 0.0);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn reinit(vs: &nn::VarStore, keep: impl Fn(&str) -> bool, init: Init) -> Result<usize> {
    init.check()?;
    let vars = vs.variables();
    let mut names: Vec<&String> = vars
        .keys()
        .filter(|n| n.ends_with(".weight") || n.as_str() == "weight")
        .filter(|n| keep(n))
        .collect();
    names.sort();
    let mut drawn = 0;
    tch::no_grad(|| -> Result<()> {
        for name in names {
            let weight = &vars[name.as_str()];
            let shape = weight.size();
            let stem = &name[..name.len() - "weight".len()];
            let Some(bias) = vars.get(&format!("{stem}bias")) else {
                continue;
            };
            if shape.len() < 2 {
                continue;
            }
            fill(weight, init.weight(&shape)?)?;
            fill(bias, init.bias(&shape)?)?;
            drawn += 1;
        }
        Ok(())
    })?;
    Ok(drawn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn max_abs(t: &Tensor) -> f64 {
        t.abs().max().double_value(&[])
    }

    /// Bounds exact; mean and variance of a `U(±bound)` sample within 5 standard errors.
    fn assert_uniform(t: &Tensor, bound: f64) {
        let t = t.to_kind(Kind::Double).reshape([-1]);
        let n = t.size()[0] as f64;
        let max = max_abs(&t);
        let mean = t.mean(Kind::Double).double_value(&[]);
        let var = t.square().mean(Kind::Double).double_value(&[]) - mean * mean;
        assert!(max <= bound * (1.0 + 1e-6), "max {max} > bound {bound}");
        assert!(max > 0.9 * bound, "max {max} far inside bound {bound}");
        let sd_mean = bound / (3.0 * n).sqrt();
        assert!(mean.abs() < 5.0 * sd_mean, "mean {mean}");
        // U(±b) has variance b²/3; the sample variance has sd b²·√(4/45)/√n.
        let want = bound * bound / 3.0;
        let sd_var = bound * bound * (4.0f64 / 45.0).sqrt() / n.sqrt();
        assert!((var - want).abs() < 5.0 * sd_var, "var {var} vs {want}");
    }

    #[test]
    fn pytorch_bounds_are_one_over_root_fan_in() {
        for fan in [1, 3, 100, 720, 4096] {
            let b = pytorch_weight_bound(fan);
            assert!((b - 1.0 / (fan as f64).sqrt()).abs() < 1e-15, "{fan}");
        }
    }

    #[test]
    fn each_init_draws_its_distribution() {
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let l = linear(&(&root / "a"), 300, 200, Init::Pytorch).unwrap();
        assert_uniform(&l.ws, 1.0 / 300f64.sqrt());
        let c = conv2d(&(&root / "c"), 6, 64, 5, Default::default(), Init::Pytorch).unwrap();
        assert_eq!(c.ws.size(), [64, 6, 5, 5]);
        assert_uniform(&c.ws, 1.0 / 150f64.sqrt());
        let k = linear(&(&root / "k"), 300, 200, Init::KaimingRelu).unwrap();
        assert_uniform(&k.ws, (6.0f64 / 300.0).sqrt());
        let x = linear(&(&root / "x"), 300, 200, Init::XavierUniform).unwrap();
        assert_uniform(&x.ws, (6.0f64 / 500.0).sqrt());
        assert_eq!(max_abs(x.bs.as_ref().unwrap()), 0.0);
        let u = linear(&(&root / "u"), 300, 200, Init::Uniform { bound: 0.05 }).unwrap();
        assert_uniform(&u.ws, 0.05);
        let z = linear(&(&root / "z"), 3, 2, Init::Zeros).unwrap();
        assert_eq!(max_abs(&z.ws) + max_abs(z.bs.as_ref().unwrap()), 0.0);
        // Biases: U(±1/√fan_in) for dense layers and convolutions; tch's conv bias is 0.
        let biases: Vec<Tensor> = (0..40)
            .map(|i| {
                let l = linear(&(&root / format!("b{i}")), 49, 25, Init::Pytorch).unwrap();
                l.bs.unwrap()
            })
            .collect();
        assert_uniform(&Tensor::cat(&biases, 0), 1.0 / 7.0);
        let conv_biases: Vec<Tensor> = (0..40)
            .map(|i| {
                let p = &root / format!("cb{i}");
                let c = conv2d(&p, 2, 16, 3, Default::default(), Init::Pytorch).unwrap();
                c.bs.unwrap()
            })
            .collect();
        assert_uniform(&Tensor::cat(&conv_biases, 0), 1.0 / 18f64.sqrt());
        let kc = conv2d(
            &(&root / "kc"),
            2,
            3,
            3,
            Default::default(),
            Init::KaimingRelu,
        )
        .unwrap();
        assert_eq!(max_abs(kc.bs.as_ref().unwrap()), 0.0);
    }

    #[test]
    fn reinit_draws_matching_layers_only() {
        let vs = nn::VarStore::new(Device::Cpu);
        let a = linear(&(vs.root() / "a"), 10, 4, Init::Pytorch).unwrap();
        let b = linear(&(vs.root() / "b"), 10, 4, Init::Pytorch).unwrap();
        let before = a.ws.copy();
        let n = reinit(&vs, |n| n.starts_with("b."), Init::XavierUniform).unwrap();
        assert_eq!(n, 1);
        assert!(a.ws.equal(&before));
        assert_eq!(max_abs(b.bs.as_ref().unwrap()), 0.0);
        assert!(reinit(&vs, |_| true, Init::Uniform { bound: f64::NAN }).is_err());
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let vs = nn::VarStore::new(Device::Cpu);
        assert!(linear(&vs.root(), 0, 3, Init::Pytorch).is_err());
        assert!(linear(&vs.root(), 3, 3, Init::Uniform { bound: -1.0 }).is_err());
        let grouped = nn::ConvConfig {
            groups: 2,
            ..Default::default()
        };
        assert!(conv2d(&vs.root(), 3, 4, 3, grouped, Init::Pytorch).is_err());
        assert!(conv2d(&vs.root(), 3, 0, 3, Default::default(), Init::Pytorch).is_err());
        assert!(vs.variables().is_empty());
    }

    #[test]
    fn serde_names() {
        for (init, json) in [
            (Init::Pytorch, "\"pytorch\""),
            (Init::KaimingRelu, "\"kaiming_relu\""),
            (Init::XavierUniform, "\"xavier_uniform\""),
            (Init::Zeros, "\"zeros\""),
            (
                Init::Uniform { bound: 0.5 },
                "{\"uniform\":{\"bound\":0.5}}",
            ),
        ] {
            assert_eq!(serde_json::to_string(&init).unwrap(), json);
            assert_eq!(serde_json::from_str::<Init>(json).unwrap(), init);
            if !json.starts_with('{') {
                assert_eq!(format!("\"{}\"", init.name()), json);
            }
        }
        assert_eq!(
            serde_json::from_str::<Init>("\"pytorch_default\"").unwrap(),
            Init::Pytorch
        );
    }
}
