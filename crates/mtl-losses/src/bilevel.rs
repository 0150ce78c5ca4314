//! The meta-gradient of a bilevel task weighting (Auto-λ): how the validation loss,
//! measured after one virtual training step, changes with the task weights λ.
//!
//! With training losses Lₖ(θ), weights λ, the optimiser's learning rate α and a
//! validation loss L_val = Σₖ pₖ Lₖ^val (pₖ = 1 for a primary task), Auto-λ (Liu, Johns
//! & Davison, TMLR 2022) differentiates through one unrolled step:
//!
//! ```text
//! θ'          = θ − α (μ·b + ∇θ Σₖ λₖ Lₖ(θ) + ω·θ)         (b: SGD momentum buffer, μ its factor, ω: weight decay)
//! v           = ∇θ' L_val(θ')
//! ∂L_val/∂λₖ  = −α ∇²_{λₖ,θ} (Σⱼ λⱼ Lⱼ) · v = −α ∇θ Lₖ(θ) · v
//!             ≈ −α [Lₖ(θ + εv) − Lₖ(θ − εv)] / (2ε),       ε = 0.01 / ‖v‖
//! ```
//!
//! The last line is the finite-difference Hessian–vector product of DARTS that the
//! reference implementation (`auto_lambda.py`, `compute_hessian`) uses, so one meta
//! step costs three training forwards, one training backward, one validation forward
//! and backward, whatever K. The momentum and weight-decay terms of θ' are the
//! reference's (it reads them from the model's optimiser; Adam contributes no momentum
//! term there either).
//!
//! [`meta_gradient`] runs this for any `tch` model: the caller gives the parameters θ
//! and two closures that compute the K training and validation losses at the current
//! parameter values. The parameters are moved in place to θ', θ + εv and θ − εv and
//! copied back from a saved copy on every exit path, errors included, so they end
//! bit-identical to where they started; their `.grad()` is never touched (gradients are
//! taken with `autograd.grad`, not accumulated).
//!
//! Where the validation loss does not depend on the parameters (v = 0) the meta-gradient
//! is exactly zero, rather than the reference's division by ‖v‖ = 0.

use mtl_core::{Error, Result};
use tch::{Kind, Tensor};

/// The optimiser's terms in the virtual step θ' = θ − α (μ·b + g + ω·θ).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VirtualStep {
    /// α, the model optimiser's current learning rate.
    pub lr: f64,
    /// ω, the optimiser's (L2) weight decay.
    pub weight_decay: f64,
    /// μ, the SGD momentum factor (0 without momentum buffers).
    pub momentum: f64,
}

impl VirtualStep {
    /// A plain gradient step of size `lr`.
    pub fn sgd(lr: f64) -> Self {
        VirtualStep {
            lr,
            weight_decay: 0.0,
            momentum: 0.0,
        }
    }
}

/// What one meta step differentiates.
#[derive(Debug)]
pub struct MetaProblem<'a> {
    /// θ: every trained parameter (each requiring grad).
    pub parameters: &'a [Tensor],
    /// The SGD momentum buffer of each parameter (same order), or empty for none.
    pub momentum_buffers: &'a [Tensor],
    /// The optimiser's terms.
    pub step: VirtualStep,
    /// λ, the current task weights.
    pub lambdas: &'a [f64],
    /// pₖ, each task's weight in the validation loss.
    pub validation_weights: &'a [f64],
}

/// The training losses at the current parameters.
#[derive(Debug)]
pub struct TrainLosses {
    /// Lₖ, one scalar per task, with a graph to the parameters.
    pub losses: Vec<Tensor>,
    /// A term outside the weighting (an architecture's own loss), added to the virtual
    /// step's objective as the real step adds it.
    pub auxiliary: Option<Tensor>,
}

/// The result of a meta step.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaGradient {
    /// ∂L_val/∂λₖ, one per task.
    pub gradient: Vec<f64>,
    /// L_val(θ'), the validation loss after the virtual step.
    pub validation_loss: f64,
    /// ε of the finite difference (0 where v = 0).
    pub epsilon: f64,
}

/// Computes the Auto-λ meta-gradient ∂L_val/∂λ (see the module documentation) and
/// leaves the parameters exactly as it found them. `train` and `validation` are
/// called at the parameters' current values: `train` three times (at θ, θ + εv and
/// θ − εv, the last two under `no_grad`), `validation` once (at θ').
///
/// Errors: mismatched lengths ([`Error::TaskCount`]), a parameter not requiring grad, a
/// non-scalar or non-finite loss ([`Error::NonFinite`], naming the task), a non-finite
/// step.
pub fn meta_gradient(
    problem: &MetaProblem<'_>,
    train: &mut dyn FnMut() -> Result<TrainLosses>,
    validation: &mut dyn FnMut() -> Result<Vec<Tensor>>,
) -> Result<MetaGradient> {
    check(problem)?;
    let saved: Vec<Tensor> = tch::no_grad(|| {
        problem
            .parameters
            .iter()
            .map(|p| {
                let mut copy = p.f_detach()?.f_zeros_like()?;
                copy.f_copy_(p)?;
                Ok(copy)
            })
            .collect::<Result<_>>()
    })?;
    let result = unrolled(problem, &saved, train, validation);
    // Back to θ bit for bit, whatever happened.
    let restored = set_parameters(problem.parameters, |i| Ok(saved[i].shallow_clone()));
    let out = result?;
    restored?;
    Ok(out)
}

/// The arguments' shapes agree and the step is finite.
fn check(problem: &MetaProblem<'_>) -> Result<()> {
    let k = problem.lambdas.len();
    if k == 0 || problem.validation_weights.len() != k {
        return Err(Error::TaskCount {
            context: "auto-λ meta step: validation weights vs λ".into(),
            expected: k,
            got: problem.validation_weights.len(),
        });
    }
    let b = problem.momentum_buffers.len();
    if b != 0 && b != problem.parameters.len() {
        return Err(Error::config(format!(
            "auto-λ meta step: {b} momentum buffers for {} parameters",
            problem.parameters.len()
        )));
    }
    if let Some(i) = problem.parameters.iter().position(|p| !p.requires_grad()) {
        return Err(Error::config(format!(
            "auto-λ meta step: parameter {i} does not require grad"
        )));
    }
    let s = problem.step;
    for (what, v) in [
        ("learning rate", s.lr),
        ("weight decay", s.weight_decay),
        ("momentum", s.momentum),
    ] {
        if !v.is_finite() {
            return Err(Error::NonFinite {
                what: format!("auto-λ virtual step {what}"),
                task: None,
                step: None,
                value: v.to_string(),
            });
        }
    }
    for (what, v) in [
        ("λ", problem.lambdas),
        ("validation weight", problem.validation_weights),
    ] {
        if let Some(task) = v.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFinite {
                what: format!("auto-λ {what}"),
                task: Some(task),
                step: None,
                value: v[task].to_string(),
            });
        }
    }
    Ok(())
}

/// The three stages between saving θ and restoring it.
fn unrolled(
    problem: &MetaProblem<'_>,
    saved: &[Tensor],
    train: &mut dyn FnMut() -> Result<TrainLosses>,
    validation: &mut dyn FnMut() -> Result<Vec<Tensor>>,
) -> Result<MetaGradient> {
    let params = problem.parameters;
    let k = problem.lambdas.len();
    let s = problem.step;

    // θ' = θ − α (μ·b + ∇θ Σ λₖ Lₖ + ω·θ).
    let at_theta = train()?;
    let losses = stacked(&at_theta.losses, k, "training")?;
    let mut objective = weighted(&losses, problem.lambdas)?;
    if let Some(aux) = &at_theta.auxiliary {
        objective = objective.f_add(&aux.f_to_kind(objective.kind())?)?;
    }
    let g = gradients(&objective, params)?;
    set_parameters(params, |i| {
        let theta = &saved[i];
        let mut d = g[i].f_to_kind(theta.kind())?;
        if s.weight_decay != 0.0 {
            d = d.f_add(&theta.f_mul_scalar(s.weight_decay)?)?;
        }
        if s.momentum != 0.0 {
            if let Some(b) = problem.momentum_buffers.get(i) {
                d = d.f_add(&b.f_mul_scalar(s.momentum)?)?;
            }
        }
        Ok(theta.f_sub(&d.f_mul_scalar(s.lr)?)?)
    })?;

    // v = ∇θ' L_val(θ').
    let val = validation()?;
    let val = stacked(&val, k, "validation")?;
    let val_loss = weighted(&val, problem.validation_weights)?;
    let validation_loss = val_loss.f_double_value(&[])?;
    let v = gradients(&val_loss, params)?;
    let mut sq = 0.0;
    for vi in &v {
        sq += vi
            .f_to_kind(Kind::Double)?
            .f_square()?
            .f_sum(Kind::Double)?
            .f_double_value(&[])?;
    }
    let norm = sq.sqrt();
    if !norm.is_finite() {
        return Err(Error::NonFinite {
            what: "auto-λ validation gradient norm".into(),
            task: None,
            step: None,
            value: norm.to_string(),
        });
    }
    if norm == 0.0 {
        return Ok(MetaGradient {
            gradient: vec![0.0; k],
            validation_loss,
            epsilon: 0.0,
        });
    }

    // Lₖ(θ ± εv), the finite difference of ∇θ Lₖ · v.
    let eps = 0.01 / norm;
    let mut at = |sign: f64| -> Result<Vec<f64>> {
        set_parameters(params, |i| {
            let step = v[i].f_to_kind(saved[i].kind())?.f_mul_scalar(sign * eps)?;
            Ok(saved[i].f_add(&step)?)
        })?;
        let out = tch::no_grad(&mut *train)?;
        let l = stacked(&out.losses, k, "training")?;
        Ok(Vec::<f64>::try_from(l.f_to_kind(Kind::Double)?)?)
    };
    let plus = at(1.0)?;
    let minus = at(-1.0)?;
    let gradient = plus
        .iter()
        .zip(&minus)
        .map(|(p, m)| -s.lr * (p - m) / (2.0 * eps))
        .collect();
    Ok(MetaGradient {
        gradient,
        validation_loss,
        epsilon: eps,
    })
}

/// The K losses as one `[K]` tensor, each a finite scalar.
fn stacked(losses: &[Tensor], k: usize, what: &str) -> Result<Tensor> {
    if losses.len() != k {
        return Err(Error::TaskCount {
            context: format!("auto-λ meta step: {what} losses"),
            expected: k,
            got: losses.len(),
        });
    }
    let flat: Vec<Tensor> = losses
        .iter()
        .map(|l| l.f_reshape([-1]))
        .collect::<std::result::Result<_, _>>()?;
    let t = Tensor::f_cat(&flat, 0)?;
    if t.numel() != k {
        return Err(Error::shape(
            format!("auto-λ meta step: {what} losses"),
            format!("{k} scalars"),
            format!("{} values", t.numel()),
        ));
    }
    let values = Vec::<f64>::try_from(t.f_detach()?.f_to_kind(Kind::Double)?)?;
    if let Some(task) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: format!("auto-λ {what} loss"),
            task: Some(task),
            step: None,
            value: values[task].to_string(),
        });
    }
    Ok(t)
}

/// Σₖ wₖ lₖ in the losses' dtype.
fn weighted(losses: &Tensor, w: &[f64]) -> Result<Tensor> {
    let w = Tensor::from_slice(w)
        .f_to_kind(losses.kind())?
        .f_to_device(losses.device())?;
    Ok(losses.f_mul(&w)?.f_sum(losses.kind())?)
}

/// ∇ of `scalar` with respect to each parameter (zeros for one it does not reach),
/// without touching `.grad()`.
fn gradients(scalar: &Tensor, params: &[Tensor]) -> Result<Vec<Tensor>> {
    if !scalar.requires_grad() {
        return params
            .iter()
            .map(|p| Ok(p.f_zeros_like()?))
            .collect::<Result<_>>();
    }
    let g = Tensor::f_run_backward(&[scalar], params, false, false)?;
    g.into_iter()
        .zip(params)
        .map(|(g, p)| {
            if g.defined() {
                Ok(g)
            } else {
                Ok(p.f_zeros_like()?)
            }
        })
        .collect()
}

/// Writes `value(i)` into parameter `i`, in place and outside the graph.
fn set_parameters(params: &[Tensor], value: impl Fn(usize) -> Result<Tensor>) -> Result<()> {
    tch::no_grad(|| {
        for (i, p) in params.iter().enumerate() {
            let v = value(i)?;
            p.shallow_clone().f_copy_(&v)?;
        }
        Ok(())
    })
}
