//! MoCo: multi-objective gradient correction — track every task's gradient with a
//! momentum estimate and descend along the min-norm-seeking combination of the
//! estimates.
//!
//! Reference: Heshan Fernando, Han Shen, Miao Liu, Subhajit Chaudhury, Keerthiram
//! Murugesan and Tianyi Chen, "Mitigating Gradient Bias in Multi-objective Learning: A
//! Provably Convergent Approach", ICLR 2023 (Algorithm 1), in the multi-task form of the
//! authors' code as shipped by LibMTL's `MoCo`.
//!
//! Update rule, at step t = 1, 2, … with task gradients gₖ and losses Lₖ:
//!
//! ```text
//! ĝₖ = gₖ / (‖gₖ‖ + ε) · Lₖ                        (loss-scaled unit gradient, ε = 1e-8)
//! βₜ = β / t^σ_β,   γₜ = γ / t^σ_γ
//! Y ← Y − βₜ (Y − Ĝ)                               (tracking: rows yₖ, Y₀ = 0)
//! λ ← P(λ − γₜ (Y Yᵀ + ρ I) λ)                     (λ₀ = 1/K)
//! output = Yᵀλ
//! ```
//!
//! The tracked Y removes the bias that a min-norm combination of stochastic gradients
//! has; λ takes a projected gradient step on ½λᵀ(YYᵀ + ρI)λ, the MGDA objective. P is
//! the map back to the simplex: the softmax of the stepped vector in LibMTL and the
//! authors' code ([`MocoSimplex::Softmax`], the default), or the Euclidean projection
//! of the paper's analysis ([`MocoSimplex::Projection`]). The output combines the
//! tracked Y, not the current rows, so [`Aggregation::weights`] is `None`; λ is
//! [`MoCo::lambda`]. The losses come from [`StepContext::losses`] and must be ≥ 0 (they
//! scale the unit gradients). Y is K × d on the Jacobian's device.
//!
//! Defaults: β = 0.5, σ_β = 0.5, γ = 0.1, σ_γ = 0.5, ρ = 0 (LibMTL's `MoCo_*`).
//!
//! # Example
//!
//! ```
//! use mtl_losses::methods::MoCo;
//! use mtl_losses::{Aggregator, StepContext};
//! use tch::Tensor;
//!
//! let mut moco = MoCo::new(2);
//! let j = Tensor::from_slice(&[1.0f64, 0.0, 0.0, 3.0]).view([2, 2]);
//! let ctx = StepContext { step: 0, epoch: 0, losses: &[1.0, 1.0] };
//! let out = moco.aggregate(&j, &ctx).unwrap();
//! // Y = ½ (unit rows): the step keeps λ uniform by symmetry.
//! let g = Vec::<f64>::try_from(out.gradient).unwrap();
//! assert!((g[0] - 0.25).abs() < 1e-6 && (g[1] - 0.25).abs() < 1e-6);
//! ```

use super::db_mtl::context_losses;
use crate::gram::{self, check_jacobian_shape, Gram};
use crate::solvers::check_task_count;
use crate::state;
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{Error, Result};
use tch::{Device, Kind, Tensor};

/// How λ is brought back to the simplex after its gradient step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MocoSimplex {
    /// softmax(λ − γₜ∇), as LibMTL and the authors' code do.
    Softmax,
    /// The Euclidean projection onto the simplex, as in the paper's algorithm.
    Projection,
}

/// MoCo's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MocoConfig {
    /// β, the tracking step (in (0, 1]).
    pub beta: f64,
    /// σ_β, its decay exponent (≥ 0).
    pub beta_sigma: f64,
    /// γ, the λ step (> 0).
    pub gamma: f64,
    /// σ_γ, its decay exponent (≥ 0).
    pub gamma_sigma: f64,
    /// ρ, the ℓ2 regularisation of the λ problem (≥ 0).
    pub rho: f64,
    /// The map back to the simplex.
    pub simplex: MocoSimplex,
}

impl Default for MocoConfig {
    fn default() -> Self {
        MocoConfig {
            beta: 0.5,
            beta_sigma: 0.5,
            gamma: 0.1,
            gamma_sigma: 0.5,
            rho: 0.0,
            simplex: MocoSimplex::Softmax,
        }
    }
}

/// MoCo (Fernando et al., ICLR 2023).
#[derive(Debug)]
pub struct MoCo {
    num_tasks: usize,
    config: MocoConfig,
    step: u64,
    /// The tracked gradients Y (K × d), once a step has run.
    tracked: Option<Tensor>,
    /// The Y of the step before, reused as the next step's output (not state).
    spare: Option<Tensor>,
    lambda: Vec<f64>,
}

impl MoCo {
    /// For `num_tasks` tasks with the defaults.
    pub fn new(num_tasks: usize) -> Self {
        MoCo {
            num_tasks,
            config: MocoConfig::default(),
            step: 0,
            tracked: None,
            spare: None,
            lambda: vec![1.0 / num_tasks.max(1) as f64; num_tasks],
        }
    }

    /// For `num_tasks` (≥ 1) tasks with the given hyper-parameters.
    pub fn with_config(num_tasks: usize, config: MocoConfig) -> Result<Self> {
        if num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "moco".into(),
                expected: 0,
                got: 0,
            });
        }
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        if !(config.beta > 0.0 && config.beta <= 1.0) {
            return Err(Error::config(format!(
                "moco: beta must be in (0, 1], got {}",
                config.beta
            )));
        }
        if !(ok(config.gamma) && config.gamma > 0.0) {
            return Err(Error::config(format!(
                "moco: gamma must be finite and > 0, got {}",
                config.gamma
            )));
        }
        for (what, v) in [
            ("beta_sigma", config.beta_sigma),
            ("gamma_sigma", config.gamma_sigma),
            ("rho", config.rho),
        ] {
            if !ok(v) {
                return Err(Error::config(format!(
                    "moco: {what} must be finite and >= 0, got {v}"
                )));
            }
        }
        Ok(MoCo {
            config,
            ..MoCo::new(num_tasks)
        })
    }

    /// λ after the last step (1/K before the first).
    pub fn lambda(&self) -> &[f64] {
        &self.lambda
    }

    /// The tracked gradients Y (K × d), once a step has run.
    pub fn tracked(&self) -> Option<&Tensor> {
        self.tracked.as_ref()
    }

    /// One λ step: P(λ − γ (YYᵀ + ρI) λ) for the Gram matrix `yy` of the tracked
    /// gradients.
    pub fn lambda_step(
        lambda: &[f64],
        yy: &Gram,
        gamma: f64,
        rho: f64,
        simplex: MocoSimplex,
    ) -> Vec<f64> {
        let k = lambda.len();
        let stepped: Vec<f64> = (0..k)
            .map(|i| {
                let grad = (0..k).map(|j| yy.get(i, j) * lambda[j]).sum::<f64>() + rho * lambda[i];
                lambda[i] - gamma * grad
            })
            .collect();
        match simplex {
            MocoSimplex::Softmax => {
                let max = stepped.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = stepped.iter().map(|v| (v - max).exp()).collect();
                let z: f64 = e.iter().sum();
                e.into_iter().map(|v| v / z).collect()
            }
            MocoSimplex::Projection => project_to_simplex(&stepped),
        }
    }
}

/// The Euclidean projection of v onto {x ≥ 0, Σx = 1} (sort-based; Held, Wolfe &
/// Crowder 1974, Duchi et al. 2008).
fn project_to_simplex(v: &[f64]) -> Vec<f64> {
    let mut u = v.to_vec();
    u.sort_by(|a, b| b.total_cmp(a));
    let mut cumulative = 0.0;
    let mut theta = 0.0;
    for (i, &x) in u.iter().enumerate() {
        cumulative += x;
        let t = (cumulative - 1.0) / (i + 1) as f64;
        if x - t > 0.0 {
            theta = t;
        }
    }
    v.iter().map(|x| (x - theta).max(0.0)).collect()
}

impl Aggregator for MoCo {
    fn name(&self) -> &'static str {
        "moco"
    }
    fn num_tasks(&self) -> Option<usize> {
        Some(self.num_tasks)
    }

    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        check_jacobian_shape(jacobian)?;
        let k = jacobian.size()[0] as usize;
        check_task_count("moco", Some(self.num_tasks), k)?;
        let losses = context_losses("moco", ctx, k)?;
        if let Some((task, v)) = losses.iter().enumerate().find(|(_, v)| **v < 0.0) {
            return Err(Error::config(format!(
                "moco: the loss of task {task} is {v} at step {}; MoCo scales the unit \
                 gradients by the losses, which must be >= 0",
                ctx.step
            )));
        }
        if let Some(y) = self
            .tracked
            .as_ref()
            .filter(|y| y.size() != jacobian.size())
        {
            return Err(Error::shape(
                "moco tracked gradients",
                format!("{:?} (the earlier Jacobians)", y.size()),
                format!("{:?}", jacobian.size()),
            ));
        }
        let (kind, device) = (jacobian.kind(), jacobian.device());
        let norms = Vec::<f64>::try_from(
            jacobian
                .f_norm_scalaropt_dim(2, [1i64].as_slice(), false)?
                .f_to_kind(Kind::Double)?
                .f_to_device(Device::Cpu)?,
        )?;
        if let Some((task, n)) = norms.iter().enumerate().find(|(_, n)| !n.is_finite()) {
            // The row norms are also the Jacobian's finiteness check (a NaN or Inf
            // makes its row's norm non-finite); only then is J scanned for the row.
            mtl_core::first_non_finite_row(jacobian, Some(ctx.step))?;
            return Err(Error::NonFinite {
                what: "moco gradient norm (overflow)".into(),
                task: Some(task),
                step: Some(ctx.step),
                value: n.to_string(),
            });
        }
        let factors: Vec<f64> = norms
            .iter()
            .zip(losses)
            .map(|(n, l)| l / (n + 1e-8))
            .collect();
        let factors = Tensor::from_slice(&factors)
            .f_to_kind(kind)?
            .f_to_device(device)?
            .f_unsqueeze(1)?;
        // Ĝ and then the new Y are written into the spare K×d tensor (the Y before
        // last), so a step allocates none, and Y is left as it was until the step has
        // succeeded.
        let mut next = match self.spare.take() {
            Some(s) if s.size() == jacobian.size() && s.kind() == kind && s.device() == device => {
                jacobian.f_mul_out(&s, &factors)?
            }
            _ => jacobian.f_mul(&factors)?,
        };
        let step = self.step + 1;
        let c = &self.config;
        let beta = c.beta / (step as f64).powf(c.beta_sigma);
        let gamma = c.gamma / (step as f64).powf(c.gamma_sigma);
        match &self.tracked {
            None => {
                let _ = next.f_mul_scalar_(beta)?;
            }
            Some(y) => {
                let y = y.f_to_kind(kind)?.f_to_device(device)?;
                // Y − β(Y − Ĝ) as one lerp from Y towards Ĝ, written over Ĝ: the same
                // value up to rounding (libtorch fuses it into a multiply-add).
                let _ = y.f_lerp_scalar_out(&next, &next, beta)?;
            }
        }
        let yy = Gram::of(&next)?;
        let lambda = Self::lambda_step(&self.lambda, &yy, gamma, c.rho, c.simplex);
        if let Some((task, v)) = lambda.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "moco lambda".into(),
                task: Some(task),
                step: Some(ctx.step),
                value: v.to_string(),
            });
        }
        let gradient = gram::combine(&lambda, &next)?;
        self.step = step;
        self.spare = self.tracked.replace(next);
        self.lambda = lambda;
        Ok(Aggregation {
            gradient,
            weights: None,
        })
    }

    /// The step count, the tracked gradients and λ.
    fn state(&self) -> serde_json::Value {
        serde_json::json!({
            "step": self.step,
            "tracked": self.tracked.as_ref().map(state::tensor_to_json),
            "lambda": self.lambda,
        })
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        let step = state::step("moco", state)?;
        let tracked = state::optional_tensor("moco", state, "tracked", self.num_tasks)?;
        let lambda = state::finite_task_vector("moco", state, "lambda", self.num_tasks)?;
        self.step = step;
        self.tracked = tracked;
        self.spare = None;
        self.lambda = lambda;
        Ok(())
    }
}
