//! Auto-λ: task weights learned as meta-parameters, by the gradient of a validation
//! loss taken through one virtual training step.
//!
//! Reference: Shikun Liu, Stephen James, Andrew J. Davison and Edward Johns,
//! "Auto-Lambda: Disentangling Dynamic Task Relationships", TMLR 2022
//! (arXiv:2202.03091); reference implementation github.com/lorenmt/auto-lambda.
//!
//! Update rule: the training loss is Σₖ λₖ Lₖ with unconstrained weights λ. Before each
//! training step, on a validation batch, with α the model optimiser's learning rate
//! and pₖ = 1 for a primary task (every task in multi-task mode, only the tasks one
//! cares about in auxiliary-learning mode) and 0 otherwise:
//!
//! ```text
//! θ'   = θ − α ∇θ Σₖ λₖ Lₖ(θ)                      (one virtual step, see bilevel)
//! gₖ   = ∂/∂λₖ Σⱼ pⱼ Lⱼ^val(θ')
//!      ≈ −α [Lₖ(θ + εv) − Lₖ(θ − εv)] / (2ε),  v = ∇θ' L^val,  ε = 0.01/‖v‖
//! λ    ← Adam(λ, g)                                (lr 1e-4, β = (0.9, 0.999), ε = 1e-8)
//! ```
//!
//! then the model takes its ordinary step on Σₖ λₖ Lₖ. [`crate::bilevel::meta_gradient`]
//! computes g for any model; the `mtl` trainer draws the validation batch and calls it
//! when a method has a [`MetaWeighting`] side. A task that helps the primary tasks'
//! validation loss (its gradient aligned with v) sees gₖ < 0 and its λₖ grows; a
//! harmful one shrinks.
//!
//! As in the reference, λ is neither clamped nor normalised (it may go negative), and
//! λ is learned by its own Adam, not by the model's optimiser. The reference draws the
//! "validation" batch from a second shuffled pass over the training set; here it comes
//! from whatever validation data the caller gives (the training set again reproduces
//! the reference).
//!
//! Without a meta update for a step, [`Weighting::combine`] refuses it with
//! [`Error::Config`] naming the missing validation data, so a caller that has none
//! cannot silently train with the initial weights.
//!
//! Defaults (the reference trainers): λₖ initialised to 0.1 (`autol_init`), meta
//! learning rate 1e-4 (`autol_lr` of the dense-prediction trainer; its CIFAR trainer
//! uses 3e-4), every task primary.

use super::static_weights::checked_losses;
use crate::state;
use crate::{MetaWeighting, StepContext, Weighting};
use mtl_core::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// The hyper-parameters of [`AutoLambda`].
#[derive(Debug, Clone, PartialEq)]
pub struct AutoLambdaConfig {
    /// The initial value of every λₖ (`autol_init`).
    pub init: f64,
    /// The learning rate of the Adam optimising λ (`autol_lr`).
    pub lr: f64,
    /// Each task's weight in the validation loss (`pri_tasks` as 1/0); `None`: every
    /// task is primary.
    pub primary: Option<Vec<f64>>,
}

impl Default for AutoLambdaConfig {
    fn default() -> Self {
        AutoLambdaConfig {
            init: AutoLambda::DEFAULT_INIT,
            lr: AutoLambda::DEFAULT_LR,
            primary: None,
        }
    }
}

/// Auto-λ (Liu et al., TMLR 2022).
#[derive(Debug, Clone)]
pub struct AutoLambda {
    num_tasks: usize,
    lr: f64,
    primary: Vec<f64>,
    state: AutoLambdaState,
}

/// What Auto-λ learns and remembers (also its checkpoint state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AutoLambdaState {
    /// λ.
    lambdas: Vec<f64>,
    /// Adam's first and second moments of λ.
    m: Vec<f64>,
    v: Vec<f64>,
    /// Adam steps taken.
    meta_steps: u64,
    /// The training step the last meta update was made for.
    updated_for: Option<u64>,
}

impl AutoLambda {
    /// The reference's initial λ (`autol_init`).
    pub const DEFAULT_INIT: f64 = 0.1;
    /// The reference's meta learning rate (`autol_lr`, dense-prediction trainer).
    pub const DEFAULT_LR: f64 = 1e-4;
    /// Adam's β₁, β₂ and ε (PyTorch's defaults, which the reference uses).
    pub const ADAM: (f64, f64, f64) = (0.9, 0.999, 1e-8);

    /// For `num_tasks` tasks with the reference defaults.
    pub fn new(num_tasks: usize) -> Result<Self> {
        Self::with_config(num_tasks, AutoLambdaConfig::default())
    }

    /// For `num_tasks` (≥ 1) tasks: `init` and `lr` finite (lr > 0), `primary` K
    /// finite non-negative weights, not all zero.
    pub fn with_config(num_tasks: usize, config: AutoLambdaConfig) -> Result<Self> {
        if num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "auto_lambda".into(),
                expected: 1,
                got: 0,
            });
        }
        if !config.init.is_finite() {
            return Err(Error::config(format!(
                "auto_lambda: init must be finite, got {}",
                config.init
            )));
        }
        if !(config.lr.is_finite() && config.lr > 0.0) {
            return Err(Error::config(format!(
                "auto_lambda: lr must be finite and > 0, got {}",
                config.lr
            )));
        }
        let primary = config.primary.unwrap_or_else(|| vec![1.0; num_tasks]);
        state::check_len("auto_lambda primary", num_tasks, &primary)?;
        if primary.iter().any(|p| !(p.is_finite() && *p >= 0.0))
            || primary.iter().all(|p| *p == 0.0)
        {
            return Err(Error::config(format!(
                "auto_lambda: primary must be finite non-negative task weights, not all 0 \
                 (1 for a primary task, 0 for an auxiliary one), got {primary:?}"
            )));
        }
        Ok(AutoLambda {
            num_tasks,
            lr: config.lr,
            primary,
            state: AutoLambdaState {
                lambdas: vec![config.init; num_tasks],
                m: vec![0.0; num_tasks],
                v: vec![0.0; num_tasks],
                meta_steps: 0,
                updated_for: None,
            },
        })
    }

    /// The current λ.
    pub fn lambdas(&self) -> &[f64] {
        &self.state.lambdas
    }

    /// The meta learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// The number of meta updates made.
    pub fn meta_steps(&self) -> u64 {
        self.state.meta_steps
    }
}

impl MetaWeighting for AutoLambda {
    fn lambdas(&self) -> Vec<f64> {
        self.state.lambdas.clone()
    }

    fn validation_weights(&self) -> Vec<f64> {
        self.primary.clone()
    }

    /// One step of Adam (PyTorch's update, bias-corrected) on λ with gradient `gradient`.
    fn meta_update(&mut self, gradient: &[f64], step: u64) -> Result<()> {
        state::check_len("auto_lambda meta-gradient", self.num_tasks, gradient)?;
        if let Some(task) = gradient.iter().position(|g| !g.is_finite()) {
            return Err(Error::NonFinite {
                what: "auto_lambda meta-gradient".into(),
                task: Some(task),
                step: Some(step),
                value: gradient[task].to_string(),
            });
        }
        let (b1, b2, eps) = Self::ADAM;
        let s = &mut self.state;
        let t = (s.meta_steps + 1) as f64;
        let (c1, c2) = (1.0 - b1.powf(t), 1.0 - b2.powf(t));
        for (k, &g) in gradient.iter().enumerate() {
            s.m[k] = b1 * s.m[k] + (1.0 - b1) * g;
            s.v[k] = b2 * s.v[k] + (1.0 - b2) * g * g;
            let denom = (s.v[k].sqrt() / c2.sqrt()) + eps;
            s.lambdas[k] -= self.lr / c1 * s.m[k] / denom;
        }
        s.meta_steps += 1;
        s.updated_for = Some(step);
        Ok(())
    }
}

impl Weighting for AutoLambda {
    fn name(&self) -> &'static str {
        "auto_lambda"
    }

    fn num_tasks(&self) -> Option<usize> {
        Some(self.num_tasks)
    }

    fn combine(&mut self, losses: &Tensor, ctx: &StepContext) -> Result<Tensor> {
        let flat = checked_losses(losses, self.num_tasks, "auto_lambda", ctx.step)?;
        if self.state.updated_for != Some(ctx.step) {
            return Err(Error::config(format!(
                "auto_lambda: step {} has no meta update of λ; Auto-λ needs validation data \
                 (a validation batch every step): give Trainer::fit a validation set, or \
                 call mtl_losses::bilevel::meta_gradient and MetaWeighting::meta_update \
                 before the step",
                ctx.step
            )));
        }
        let w = Tensor::from_slice(&self.state.lambdas)
            .f_to_kind(flat.kind())?
            .f_to_device(flat.device())?;
        Ok(flat.f_mul(&w)?.f_sum(flat.kind())?)
    }

    fn weights(&self) -> Vec<f64> {
        self.state.lambdas.clone()
    }

    /// λ, its Adam moments and step count, and the step last updated for.
    fn state(&self) -> serde_json::Value {
        state::to_json(&self.state)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        let parsed: AutoLambdaState = state::from_json("auto_lambda", state)?;
        for v in [&parsed.lambdas, &parsed.m, &parsed.v] {
            state::check_len("auto_lambda", self.num_tasks, v)?;
            if v.iter().any(|x| !x.is_finite()) {
                return Err(Error::config(format!(
                    "auto_lambda state: non-finite value in {state}"
                )));
            }
        }
        self.state = parsed;
        Ok(())
    }

    fn meta(&self) -> Option<&dyn MetaWeighting> {
        Some(self)
    }

    fn meta_mut(&mut self) -> Option<&mut dyn MetaWeighting> {
        Some(self)
    }
}
