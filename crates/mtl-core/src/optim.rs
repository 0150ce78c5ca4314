//! Optimisers written over tensors, so their state (momenta, step count) is plain data
//! a checkpoint can save and restore exactly.
//!
//! The update rules follow `torch.optim.SGD` and `torch.optim.Adam`/`AdamW`.

mod flat;

use crate::{Error, Result};
use flat::FlatGroup;
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Which optimiser to use and its hyper-parameters. In configs only `kind` and `lr`
/// are required; the rest default to PyTorch's defaults (no momentum or weight decay,
/// β = (0.9, 0.999), ε = 1e-8).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// Stochastic gradient descent with optional (Nesterov) momentum.
    Sgd {
        /// Learning rate.
        lr: f64,
        /// Momentum factor (0 disables it).
        #[serde(default)]
        momentum: f64,
        /// Nesterov momentum.
        #[serde(default)]
        nesterov: bool,
        /// L2 penalty added to the gradient.
        #[serde(default)]
        weight_decay: f64,
    },
    /// Adam (Kingma & Ba 2015); with `decoupled_weight_decay`, AdamW (Loshchilov & Hutter 2019).
    Adam {
        /// Learning rate.
        lr: f64,
        /// β₁.
        #[serde(default = "default_beta1")]
        beta1: f64,
        /// β₂.
        #[serde(default = "default_beta2")]
        beta2: f64,
        /// ε.
        #[serde(default = "default_eps")]
        eps: f64,
        /// Weight decay.
        #[serde(default)]
        weight_decay: f64,
        /// Decay the weights directly (AdamW) instead of through the gradient.
        #[serde(default)]
        decoupled_weight_decay: bool,
    },
}

fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.999
}
fn default_eps() -> f64 {
    1e-8
}

impl OptimizerConfig {
    /// Plain SGD.
    pub fn sgd(lr: f64) -> Self {
        OptimizerConfig::Sgd {
            lr,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
    /// Adam with PyTorch's defaults (β = (0.9, 0.999), ε = 1e-8).
    pub fn adam(lr: f64) -> Self {
        OptimizerConfig::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
        }
    }
    /// AdamW with PyTorch's defaults (weight decay 0.01).
    pub fn adamw(lr: f64) -> Self {
        OptimizerConfig::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            decoupled_weight_decay: true,
        }
    }
    /// The learning rate.
    pub fn lr(&self) -> f64 {
        match *self {
            OptimizerConfig::Sgd { lr, .. } | OptimizerConfig::Adam { lr, .. } => lr,
        }
    }

    /// The L2 weight decay (added to the gradient by SGD and Adam, applied to the
    /// weights directly by AdamW).
    pub fn weight_decay(&self) -> f64 {
        match *self {
            OptimizerConfig::Sgd { weight_decay, .. }
            | OptimizerConfig::Adam { weight_decay, .. } => weight_decay,
        }
    }

    /// Checks the hyper-parameters: a positive learning rate, non-negative momentum and
    /// weight decay, Adam's betas in [0, 1) and a positive ε (all finite).
    pub fn check(&self) -> Result<()> {
        let lr = self.lr();
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::config(format!(
                "learning rate must be positive, got {lr}"
            )));
        }
        let non_negative = |what: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(Error::config(format!(
                    "optimizer {what} must be finite and non-negative, got {v}"
                )))
            }
        };
        match *self {
            OptimizerConfig::Sgd {
                momentum,
                weight_decay,
                ..
            } => {
                non_negative("momentum", momentum)?;
                non_negative("weight_decay", weight_decay)?;
            }
            OptimizerConfig::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
                ..
            } => {
                if !(0.0..1.0).contains(&beta1) || !(0.0..1.0).contains(&beta2) {
                    return Err(Error::config(format!(
                        "Adam betas must be in [0, 1), got ({beta1}, {beta2})"
                    )));
                }
                if !(eps.is_finite() && eps > 0.0) {
                    return Err(Error::config(format!(
                        "Adam eps must be positive, got {eps}"
                    )));
                }
                non_negative("weight_decay", weight_decay)?;
            }
        }
        Ok(())
    }

    /// Builds the optimiser over `params`.
    pub fn build(&self, params: Vec<Tensor>) -> Result<Optimizer> {
        self.check()?;
        let lr = self.lr();
        let adam = matches!(self, OptimizerConfig::Adam { .. });
        let Some(groups) = FlatGroup::build(&params)? else {
            let zeros = |ps: &[Tensor]| ps.iter().map(|p| p.zeros_like()).collect::<Vec<_>>();
            return Ok(Optimizer {
                cfg: *self,
                lr,
                first: zeros(&params),
                second: if adam { zeros(&params) } else { Vec::new() },
                flat: None,
                params,
                steps: 0,
            });
        };
        let mut first: Vec<Option<Tensor>> = params.iter().map(|_| None).collect();
        let mut second: Vec<Option<Tensor>> = params.iter().map(|_| None).collect();
        let flat = groups
            .into_iter()
            .map(|group| {
                Ok(Flat {
                    first: group.zeros_with_views(&mut first)?,
                    second: if adam {
                        Some(group.zeros_with_views(&mut second)?)
                    } else {
                        None
                    },
                    group,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let views = |v: Vec<Option<Tensor>>| v.into_iter().flatten().collect::<Vec<_>>();
        Ok(Optimizer {
            cfg: *self,
            lr,
            first: views(first),
            second: views(second),
            flat: Some(flat),
            params,
            steps: 0,
        })
    }
}

/// A flat group and its moments.
#[derive(Debug)]
struct Flat {
    group: FlatGroup,
    first: Tensor,
    second: Option<Tensor>,
}

/// An optimiser over a fixed list of parameters.
///
/// When it can, it moves the parameters' storage (and their gradients') into one flat
/// buffer per dtype and device and updates each buffer at once (see `optim/flat.rs`);
/// the parameters stay the same tensors. Parameters that cannot be moved (tied weights,
/// non-leaves) are updated one tensor at a time, with the same arithmetic.
#[derive(Debug)]
pub struct Optimizer {
    cfg: OptimizerConfig,
    lr: f64,
    params: Vec<Tensor>,
    /// SGD momentum buffers or Adam first moments, one per parameter (views into the
    /// flat buffers in flat mode).
    first: Vec<Tensor>,
    /// Adam second moments, likewise.
    second: Vec<Tensor>,
    /// The flat groups, when the parameters were moved.
    flat: Option<Vec<Flat>>,
    steps: u64,
}

impl Optimizer {
    /// The parameters it updates.
    pub fn params(&self) -> &[Tensor] {
        &self.params
    }
    /// The current learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }
    /// Sets the learning rate (for schedules).
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
    /// The number of steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &OptimizerConfig {
        &self.cfg
    }

    /// SGD's momentum factor and its momentum buffers, one per parameter in
    /// [`Optimizer::params`] order (zeros before the first step); `None` for Adam and for
    /// SGD without momentum. A look-ahead step (Auto-λ's virtual step) reads them.
    pub fn momentum_buffers(&self) -> Option<(f64, &[Tensor])> {
        match self.cfg {
            OptimizerConfig::Sgd { momentum, .. }
                if momentum != 0.0 && self.first.len() == self.params.len() =>
            {
                Some((momentum, &self.first))
            }
            _ => None,
        }
    }

    /// Zeroes every gradient, keeping it allocated.
    pub fn zero_grad(&self) {
        match &self.flat {
            Some(flat) if flat.iter().all(|f| f.group.all_aliased(&self.params)) => {
                tch::no_grad(|| {
                    for f in flat {
                        let _ = f.group.grad.shallow_clone().zero_();
                    }
                });
            }
            _ => crate::params::zero_grads(&self.params),
        }
    }

    /// One update from the parameters' current `.grad()`. Parameters without a gradient
    /// are skipped, as in PyTorch.
    pub fn step(&mut self) -> Result<()> {
        let (cfg, lr, t) = (self.cfg, self.lr, (self.steps + 1) as f64);
        if let Some(flat) = &self.flat {
            // Every group is checked before any is updated, so a refused step changes
            // nothing, the step count included.
            for f in flat {
                f.group.keep_aliased(&self.params)?;
            }
            for f in flat {
                update(
                    cfg,
                    lr,
                    t,
                    &f.group.param,
                    &f.group.grad,
                    &f.first,
                    f.second.as_ref(),
                )?;
            }
        } else {
            for (i, p) in self.params.iter().enumerate() {
                let g = p.grad();
                if g.defined() {
                    update(cfg, lr, t, p, &g, &self.first[i], self.second.get(i))?;
                }
            }
        }
        self.steps += 1;
        Ok(())
    }

    /// The optimiser's state tensors by name (for checkpoints), plus its step count.
    pub fn state(&self) -> (Vec<(String, Tensor)>, u64) {
        let mut out = Vec::new();
        for (i, m) in self.first.iter().enumerate() {
            out.push((format!("first.{i}"), m.shallow_clone()));
        }
        for (i, v) in self.second.iter().enumerate() {
            out.push((format!("second.{i}"), v.shallow_clone()));
        }
        (out, self.steps)
    }

    /// Restores state saved by [`Optimizer::state`]: every slot must be given, with its
    /// shape, so a checkpoint of another model or optimiser is an error.
    pub fn load_state(&mut self, tensors: &[(String, Tensor)], steps: u64) -> Result<()> {
        let slots = self.first.len() + self.second.len();
        let mut names: Vec<&str> = tensors.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        if names.len() != tensors.len() || tensors.len() != slots {
            return Err(Error::config(format!(
                "optimiser state has {} distinct tensors, this optimiser needs {slots}",
                names.len()
            )));
        }
        tch::no_grad(|| -> Result<()> {
            for (name, t) in tensors {
                let (which, idx) = name
                    .split_once('.')
                    .and_then(|(w, i)| Some((w, i.parse::<usize>().ok()?)))
                    .ok_or_else(|| Error::config(format!("bad optimiser state name `{name}`")))?;
                let slot = match which {
                    "first" => self.first.get_mut(idx),
                    "second" => self.second.get_mut(idx),
                    _ => None,
                }
                .ok_or_else(|| {
                    Error::config(format!(
                        "optimiser state `{name}` does not fit this optimiser"
                    ))
                })?;
                if slot.size() != t.size() {
                    return Err(Error::shape(
                        format!("optimiser state {name}"),
                        format!("{:?}", slot.size()),
                        format!("{:?}", t.size()),
                    ));
                }
                slot.f_copy_(t)?;
            }
            Ok(())
        })?;
        self.steps = steps;
        Ok(())
    }
}

/// One update of parameter `p` (a single tensor or a flat buffer) from gradient `g`,
/// with its first (momentum) and second moments, at step `t` (1-based).
fn update(
    cfg: OptimizerConfig,
    lr: f64,
    t: f64,
    p: &Tensor,
    g: &Tensor,
    first: &Tensor,
    second: Option<&Tensor>,
) -> Result<()> {
    let mut p = p.shallow_clone();
    let mut m = first.shallow_clone();
    tch::no_grad(|| -> Result<()> {
        match cfg {
            OptimizerConfig::Sgd {
                momentum,
                nesterov,
                weight_decay,
                ..
            } => {
                let mut d = if weight_decay != 0.0 {
                    g + &p * weight_decay
                } else {
                    g.shallow_clone()
                };
                if momentum != 0.0 {
                    if t == 1.0 {
                        m.f_copy_(&d)?;
                    } else {
                        let _ = m.f_mul_scalar_(momentum)?.f_add_(&d)?;
                    }
                    d = if nesterov { d + &m * momentum } else { m };
                }
                let _ = p.f_sub_(&(d * lr))?;
            }
            OptimizerConfig::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
                decoupled_weight_decay,
                ..
            } => {
                let mut v = second
                    .ok_or_else(|| Error::config("Adam without second moments"))?
                    .shallow_clone();
                let g = if weight_decay != 0.0 && !decoupled_weight_decay {
                    g + &p * weight_decay
                } else {
                    g.shallow_clone()
                };
                if weight_decay != 0.0 && decoupled_weight_decay {
                    let _ = p.f_mul_scalar_(1.0 - lr * weight_decay)?;
                }
                // In place, as torch.optim.Adam: m ← lerp(m, g, 1−β1),
                // v ← lerp(v, g², 1−β2), p ← p − (lr/bc1)·m / (√v/√bc2 + ε).
                // The step size and both bias corrections are folded into one
                // scale-and-shift of √v, so the update is seven kernels and two
                // temporaries; on small models the kernel count, not the
                // arithmetic, is the cost.
                let _ = m.f_lerp_(&g, 1.0 - beta1)?;
                let _ = v.f_lerp_(&g.f_square()?, 1.0 - beta2)?;
                let bc1 = 1.0 - beta1.powf(t);
                let bc2 = 1.0 - beta2.powf(t);
                let step_size = lr / bc1;
                if step_size == 0.0 {
                    // A warm-up at lr = 0 moves nothing (and the fold below would
                    // divide by zero).
                    return Ok(());
                }
                // denom = −(√v/√bc2 + ε)/step_size, so p + m/denom is the update.
                let mut denom = v.f_sqrt()?;
                let _ = denom
                    .f_mul_scalar_(-1.0 / (bc2.sqrt() * step_size))?
                    .f_add_scalar_(-eps / step_size)?;
                let _ = p.f_addcdiv_(&m, &denom)?;
            }
        }
        Ok(())
    })
}

/// Rescales the gradients of `params` in place so their global L2 norm (the norm of the
/// concatenation of every gradient) is at most `max_norm`, as
/// `torch.nn.utils.clip_grad_norm_` does (scale `max_norm / (norm + 1e-6)`, applied only
/// when below 1). Returns the norm before clipping; a non-finite norm is an error rather
/// than a silent rescaling of NaNs.
pub fn clip_grad_norm(params: &[Tensor], max_norm: f64) -> Result<f64> {
    if !(max_norm.is_finite() && max_norm > 0.0) {
        return Err(Error::config(format!(
            "gradient clipping norm must be positive, got {max_norm}"
        )));
    }
    let grads: Vec<Tensor> = params
        .iter()
        .map(Tensor::grad)
        .filter(Tensor::defined)
        .collect();
    if grads.is_empty() {
        return Ok(0.0);
    }
    let mut sq = 0.0;
    for g in &grads {
        let n = g.f_norm()?.f_double_value(&[])?;
        sq += n * n;
    }
    let norm = sq.sqrt();
    if !norm.is_finite() {
        return Err(Error::NonFinite {
            what: "global gradient norm".into(),
            task: None,
            step: None,
            value: norm.to_string(),
        });
    }
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        tch::no_grad(|| -> Result<()> {
            for g in &grads {
                let _ = g.shallow_clone().f_mul_scalar_(coef)?;
            }
            Ok(())
        })?;
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn quad_min(cfg: OptimizerConfig) -> f64 {
        let w = Tensor::from_slice(&[3.0f64, -2.0]).set_requires_grad(true);
        let mut opt = cfg.build(vec![w.shallow_clone()]).unwrap();
        crate::params::ensure_grads(&[w.shallow_clone()]).unwrap();
        for _ in 0..200 {
            opt.zero_grad();
            (&w * &w).sum(Kind::Double).backward();
            opt.step().unwrap();
        }
        w.abs().max().double_value(&[])
    }

    #[test]
    fn every_optimiser_minimises_a_quadratic() {
        assert!(quad_min(OptimizerConfig::sgd(0.1)) < 1e-6);
        let nesterov = OptimizerConfig::Sgd {
            lr: 0.05,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 0.0,
        };
        assert!(quad_min(nesterov) < 1e-3);
        assert!(quad_min(OptimizerConfig::adam(0.05)) < 1e-2);
        assert!(quad_min(OptimizerConfig::adamw(0.05)) < 1e-2);
    }

    #[test]
    fn adam_first_step_matches_torch() {
        // torch.optim.Adam(lr=0.1): the first step moves each weight by lr·sign(g).
        let w = Tensor::from_slice(&[1.0f64, -1.0]).set_requires_grad(true);
        let mut opt = OptimizerConfig::adam(0.1)
            .build(vec![w.shallow_clone()])
            .unwrap();
        (&w * &w).sum(Kind::Double).backward();
        opt.step().unwrap();
        let got: Vec<f64> = Vec::try_from(&w.detach()).unwrap();
        assert!(
            (got[0] - 0.9).abs() < 1e-7 && (got[1] + 0.9).abs() < 1e-7,
            "{got:?}"
        );
    }

    #[test]
    fn adam_follows_the_textbook_update_over_several_steps() {
        // Kingma & Ba, Algorithm 1 (with AdamW's decoupled decay), in plain f64.
        for (cfg, wd) in [
            (OptimizerConfig::adam(0.05), 0.0),
            (OptimizerConfig::adamw(0.05), 0.01),
        ] {
            let w = Tensor::from_slice(&[1.5f64, -0.7, 0.0]).set_requires_grad(true);
            let mut opt = cfg.build(vec![w.shallow_clone()]).unwrap();
            let (b1, b2, eps, lr) = (0.9f64, 0.999f64, 1e-8, 0.05);
            let mut x = vec![1.5f64, -0.7, 0.0];
            let (mut m, mut v) = (vec![0.0; 3], vec![0.0; 3]);
            for t in 1..=6 {
                opt.zero_grad();
                (&w * &w * &w + &w).sum(Kind::Double).backward();
                opt.step().unwrap();
                for i in 0..3 {
                    let g = 3.0 * x[i] * x[i] + 1.0;
                    x[i] *= 1.0 - lr * wd;
                    m[i] = b1 * m[i] + (1.0 - b1) * g;
                    v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                    let mh = m[i] / (1.0 - b1.powi(t));
                    let vh = v[i] / (1.0 - b2.powi(t));
                    x[i] -= lr * mh / (vh.sqrt() + eps);
                }
            }
            let got: Vec<f64> = Vec::try_from(&w.detach()).unwrap();
            for (a, b) in got.iter().zip(&x) {
                assert!((a - b).abs() < 1e-12, "{got:?} vs {x:?}");
            }
        }
    }

    /// Several parameters of two dtypes (two flat groups), against the same run of the
    /// per-tensor path (forced by listing `a` twice: shared storage is never moved). The
    /// arithmetic is elementwise, so the two agree on `b` and `c` (`a`, listed twice, is
    /// stepped twice in the per-tensor run) to rounding: libtorch's vectorised body and
    /// scalar tail may round differently (a fused multiply-add in one, say), and whether
    /// an element falls in one or the other depends on the buffer's length and on the
    /// machine's vector width, so bit-for-bit agreement would hold only on some
    /// machines.
    #[test]
    fn flat_and_per_tensor_updates_agree() {
        let run = |tied: bool| {
            let a = Tensor::from_slice(&[0.5f32, -1.0, 2.0]).set_requires_grad(true);
            let b = Tensor::from_slice(&[1.5f64, -0.25]).set_requires_grad(true);
            let c = Tensor::from_slice(&[0.1f32, 0.2, 0.3, 0.4])
                .view([2, 2])
                .set_requires_grad(true);
            let mut params = vec![a.shallow_clone(), b.shallow_clone(), c.shallow_clone()];
            if tied {
                params.push(a.shallow_clone());
            }
            let cfg = OptimizerConfig::Adam {
                lr: 0.03,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.01,
                decoupled_weight_decay: true,
            };
            let mut opt = cfg.build(params).unwrap();
            assert_eq!(opt.flat.is_some(), !tied);
            crate::params::ensure_grads(opt.params()).unwrap();
            for _ in 0..5 {
                opt.zero_grad();
                let loss = (&a * &a * &a).sum(Kind::Float).to_kind(Kind::Double)
                    + (&b * &b).sum(Kind::Double)
                    + c.exp().sum(Kind::Float).to_kind(Kind::Double);
                loss.backward();
                opt.step().unwrap();
            }
            (
                Vec::<f64>::try_from(&b.detach()).unwrap(),
                Vec::<f32>::try_from(&c.detach().view([-1])).unwrap(),
            )
        };
        let ((flat_b, flat_c), (tensor_b, tensor_c)) = (run(false), run(true));
        for (x, y) in flat_b.iter().zip(&tensor_b) {
            assert!(
                (x - y).abs() <= 1e-12 * y.abs().max(1.0),
                "{flat_b:?} vs {tensor_b:?}"
            );
        }
        for (x, y) in flat_c.iter().zip(&tensor_c) {
            assert!(
                (x - y).abs() <= 1e-6 * y.abs().max(1.0),
                "{flat_c:?} vs {tensor_c:?}"
            );
        }
    }

    /// The parameters keep their identity: a var store sees every update, and a
    /// parameter or gradient whose storage is swapped behind the optimiser is taken back
    /// with its current values.
    #[test]
    fn flat_storage_survives_swapped_tensors() {
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let w = vs.root().var("w", &[3], tch::nn::Init::Const(1.0));
        let mut opt = OptimizerConfig::sgd(0.5)
            .build(vec![w.shallow_clone()])
            .unwrap();
        (&w * 2.0).sum(Kind::Float).backward();
        opt.step().unwrap();
        let seen = Vec::<f32>::try_from(&vs.variables()["w"].detach()).unwrap();
        assert_eq!(seen, vec![0.0; 3]);
        // Swap the parameter's storage and drop its gradient.
        tch::no_grad(|| {
            w.shallow_clone()
                .set_data(&Tensor::from_slice(&[4.0f32, 5.0, 6.0]));
        });
        opt.zero_grad();
        (&w * &w).sum(Kind::Float).backward(); // gradient 2w
        opt.step().unwrap();
        let seen = Vec::<f32>::try_from(&vs.variables()["w"].detach()).unwrap();
        assert_eq!(seen, vec![0.0, 0.0, 0.0]); // w − 0.5·2w
        opt.zero_grad();
        assert_eq!(Vec::<f32>::try_from(&w.grad()).unwrap(), vec![0.0; 3]);
        // A conversion after the build is refused rather than undone.
        tch::no_grad(|| {
            w.shallow_clone()
                .set_data(&Tensor::from_slice(&[1.0f64, 2.0, 3.0]));
        });
        assert!(matches!(opt.step(), Err(Error::Config(_))));
        assert_eq!(opt.steps(), 2);
    }

    #[test]
    fn adam_at_zero_learning_rate_moves_nothing() {
        let w = Tensor::from_slice(&[1.0f64, -2.0]).set_requires_grad(true);
        let mut opt = OptimizerConfig::adam(0.1)
            .build(vec![w.shallow_clone()])
            .unwrap();
        opt.set_lr(0.0);
        (&w * &w).sum(Kind::Double).backward();
        opt.step().unwrap();
        assert_eq!(Vec::<f64>::try_from(&w.detach()).unwrap(), vec![1.0, -2.0]);
    }

    #[test]
    fn clipping_rescales_to_the_global_norm() {
        let a = Tensor::from_slice(&[3.0f64]).set_requires_grad(true);
        let b = Tensor::from_slice(&[4.0f64]).set_requires_grad(true);
        (&a * &a * 0.5 + &b * &b * 0.5).sum(Kind::Double).backward();
        let params = [a.shallow_clone(), b.shallow_clone()];
        // The gradients are (3, 4): global norm 5.
        assert_eq!(clip_grad_norm(&params, 10.0).unwrap(), 5.0);
        assert_eq!(a.grad().double_value(&[0]), 3.0);
        assert!((clip_grad_norm(&params, 1.0).unwrap() - 5.0).abs() < 1e-12);
        let ga = a.grad().double_value(&[0]);
        let gb = b.grad().double_value(&[0]);
        assert!(((ga * ga + gb * gb).sqrt() - 1.0).abs() < 1e-6, "{ga} {gb}");
        assert!((ga / gb - 0.75).abs() < 1e-12);
        assert!(clip_grad_norm(&params, 0.0).is_err());
    }

    #[test]
    fn state_round_trip_continues_identically() {
        let run = |split: Option<usize>| {
            let w = Tensor::from_slice(&[3.0f64, -2.0]).set_requires_grad(true);
            let mut opt = OptimizerConfig::adam(0.1)
                .build(vec![w.shallow_clone()])
                .unwrap();
            for i in 0..6 {
                if split == Some(i) {
                    let (state, steps) = opt.state();
                    let copies: Vec<(String, Tensor)> =
                        state.iter().map(|(n, t)| (n.clone(), t.copy())).collect();
                    opt = OptimizerConfig::adam(0.1)
                        .build(vec![w.shallow_clone()])
                        .unwrap();
                    opt.load_state(&copies, steps).unwrap();
                    assert!(opt.load_state(&copies[..1], steps).is_err());
                }
                opt.zero_grad();
                (&w * &w * &w).sum(Kind::Double).backward();
                opt.step().unwrap();
            }
            Vec::<f64>::try_from(&w.detach()).unwrap()
        };
        assert_eq!(run(None), run(Some(3)));
    }

    #[test]
    fn configs_need_only_kind_and_rate() {
        let adam: OptimizerConfig = serde_json::from_str(r#"{"kind":"adam","lr":0.01}"#).unwrap();
        assert_eq!(adam, OptimizerConfig::adam(0.01));
        let sgd: OptimizerConfig =
            serde_json::from_str(r#"{"kind":"sgd","lr":0.1,"momentum":0.9}"#).unwrap();
        assert!(
            matches!(sgd, OptimizerConfig::Sgd { momentum, nesterov: false, .. } if momentum == 0.9)
        );
    }

    /// A misspelt hyper-parameter (`momentm`) used to be dropped silently, training with
    /// the default instead.
    #[test]
    fn unknown_optimizer_fields_are_refused() {
        for (json, key) in [
            (r#"{"kind":"sgd","lr":0.1,"momentm":0.9}"#, "momentm"),
            (r#"{"kind":"adam","learning_rate":0.1}"#, "learning_rate"),
            (r#"{"kind":"adam","lr":0.1,"beta_1":0.8}"#, "beta_1"),
        ] {
            let err = serde_json::from_str::<OptimizerConfig>(json).unwrap_err();
            assert!(err.to_string().contains(key), "{json}: {err}");
        }
    }

    #[test]
    fn bad_learning_rate_is_rejected() {
        assert!(OptimizerConfig::sgd(0.0).build(vec![]).is_err());
        assert!(OptimizerConfig::sgd(f64::NAN).build(vec![]).is_err());
    }
}
