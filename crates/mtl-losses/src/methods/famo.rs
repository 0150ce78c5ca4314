//! FAMO: Fast Adaptive Multitask Optimization — balance the tasks' log-loss decrease
//! with one backward pass per step, by learning the weights from how much each loss
//! actually fell.
//!
//! Reference: Bo Liu, Yihao Feng, Peter Stone and Qiang Liu, "FAMO: Fast Adaptive
//! Multitask Optimization", NeurIPS 2023 (arXiv:2306.03792), Algorithm 1.
//!
//! Update rule: logits ξ ∈ ℝᴷ (init 0), z = softmax(ξ), Dₖ = Lₖ − Lₖ* + ε with the
//! minimum losses L* (0 by default, [`Famo::with_min_losses`] otherwise) and ε = 1e-8:
//!
//! ```text
//! c = Σₖ zₖ / Dₖ                                   (held constant)
//! L = Σₖ zₖ log Dₖ / c,     ∂L/∂Lₖ = zₖ / (c Dₖ)    (the reported weights, Σ = 1)
//! after the model step, with the new losses L'ₖ:
//! δₖ = log Dₖ − log D'ₖ                            (each task's log-loss decrease)
//! gⱼ = zⱼ (δⱼ − Σₖ zₖ δₖ)                          (= (∂z/∂ξ)ᵀ δ)
//! ξ ← Adam(ξ, g + γ ξ; lr = β)                    (γ: weight decay)
//! ```
//!
//! Tasks whose log-loss fell less than the z-weighted average gain weight. The paper
//! and LibMTL re-evaluate the losses on the same batch after the model step to get L';
//! a [`Weighting`] sees one batch per step, so by default FAMO finishes step t's logit
//! update at the start of step t + 1, with that step's losses as L' (one extra forward
//! pass saved, at the price of L' coming from the next batch). A trainer that does
//! re-evaluate can call [`Famo::update_w`] itself after the model step; `combine` then
//! finds nothing pending. The Adam state is FAMO's own, not the trainer's optimiser.
//!
//! Defaults: β = 0.025 (`FAMO_w_lr`), γ = 1e-3 (`FAMO_w_gamma`), Adam's (0.9, 0.999)
//! and 1e-8, as in the paper's code and LibMTL. Losses must be ≥ L* (FAMO takes the
//! logarithm of their distance to it); the paper's code sets L* for objectives that go
//! negative, e.g. (−2.1, −21) on the two-objective toy problem, where it also uses
//! γ = 0.
//!
//! # Example
//!
//! ```
//! use mtl_losses::methods::Famo;
//! use mtl_losses::{StepContext, Weighting};
//! use tch::Tensor;
//!
//! let mut famo = Famo::new(2);
//! let ctx = StepContext::default();
//! famo.combine(&Tensor::from_slice(&[1.0f64, 1.0]), &ctx).unwrap();
//! // Task 0's loss halved, task 1's did not move: task 1's logit rises.
//! famo.update_w(&[0.5, 1.0]).unwrap();
//! assert!(famo.logits()[1] > famo.logits()[0]);
//! ```

use super::static_weights::checked_losses;
use crate::state;
use crate::{StepContext, Weighting};
use mtl_core::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// ε added to Lₖ − Lₖ* before the logarithm.
const EPS: f64 = 1e-8;
/// Adam's moment decays and ε (PyTorch's defaults, which FAMO uses).
const ADAM_BETAS: (f64, f64) = (0.9, 0.999);
const ADAM_EPS: f64 = 1e-8;

/// FAMO's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FamoConfig {
    /// β, Adam's learning rate on the logits (> 0).
    pub w_lr: f64,
    /// γ, Adam's (L2) weight decay on the logits (≥ 0).
    pub gamma: f64,
}

impl Default for FamoConfig {
    fn default() -> Self {
        FamoConfig {
            w_lr: 0.025,
            gamma: 1e-3,
        }
    }
}

/// FAMO (Liu et al., NeurIPS 2023).
#[derive(Debug, Clone)]
pub struct Famo {
    num_tasks: usize,
    config: FamoConfig,
    state: FamoState,
    /// L*, each task's lower bound on its loss.
    min_losses: Vec<f64>,
    last_weights: Vec<f64>,
}

/// The logits, their Adam moments and the losses awaiting their update (checkpoint
/// state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FamoState {
    logits: Vec<f64>,
    adam_m: Vec<f64>,
    adam_v: Vec<f64>,
    adam_t: u64,
    /// The losses of the last `combine`, until their update is done.
    pending: Option<Vec<f64>>,
}

impl Famo {
    /// For `num_tasks` tasks with the paper's defaults.
    pub fn new(num_tasks: usize) -> Self {
        Famo {
            num_tasks,
            config: FamoConfig::default(),
            state: FamoState {
                logits: vec![0.0; num_tasks],
                adam_m: vec![0.0; num_tasks],
                adam_v: vec![0.0; num_tasks],
                adam_t: 0,
                pending: None,
            },
            min_losses: vec![0.0; num_tasks],
            last_weights: vec![1.0 / num_tasks.max(1) as f64; num_tasks],
        }
    }

    /// For `num_tasks` (≥ 1) tasks with the given hyper-parameters.
    pub fn with_config(num_tasks: usize, config: FamoConfig) -> Result<Self> {
        if num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "famo".into(),
                expected: 0,
                got: 0,
            });
        }
        if !config.w_lr.is_finite() || config.w_lr <= 0.0 {
            return Err(Error::config(format!(
                "famo: w_lr must be finite and > 0, got {}",
                config.w_lr
            )));
        }
        if !config.gamma.is_finite() || config.gamma < 0.0 {
            return Err(Error::config(format!(
                "famo: gamma must be finite and >= 0, got {}",
                config.gamma
            )));
        }
        Ok(Famo {
            config,
            ..Famo::new(num_tasks)
        })
    }

    /// With the minimum losses L* (one finite value per task) in place of 0, as the
    /// paper's `set_min_losses`.
    pub fn with_min_losses(mut self, min_losses: Vec<f64>) -> Result<Self> {
        state::check_len("famo min_losses", self.num_tasks, &min_losses)?;
        if let Some((task, v)) = min_losses.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "famo min_losses".into(),
                task: Some(task),
                step: None,
                value: v.to_string(),
            });
        }
        self.min_losses = min_losses;
        Ok(self)
    }

    /// The minimum losses L*.
    pub fn min_losses(&self) -> &[f64] {
        &self.min_losses
    }

    /// The hyper-parameters.
    pub fn config(&self) -> FamoConfig {
        self.config
    }

    /// The logits ξ (the weights of the next `combine` are softmax(ξ)/(c D)).
    pub fn logits(&self) -> &[f64] {
        &self.state.logits
    }

    /// Whether a `combine` awaits its logit update.
    pub fn pending(&self) -> bool {
        self.state.pending.is_some()
    }

    /// Finishes the logit update of the last `combine` with the losses `curr_losses`
    /// measured after the model step (LibMTL's `update_w`). Errors when no `combine`
    /// is pending, on K mismatch, and on non-finite or negative losses; the state is
    /// unchanged on error.
    pub fn update_w(&mut self, curr_losses: &[f64]) -> Result<()> {
        let prev = self.state.pending.clone().ok_or_else(|| {
            Error::config("famo: update_w without a preceding combine (nothing pending)")
        })?;
        check_values(curr_losses, &self.min_losses, None)?;
        let z = softmax(&self.state.logits);
        let delta: Vec<f64> = prev
            .iter()
            .zip(curr_losses)
            .zip(&self.min_losses)
            .map(|((p, c), m)| (p - m + EPS).ln() - (c - m + EPS).ln())
            .collect();
        let zd: f64 = z.iter().zip(&delta).map(|(z, d)| z * d).sum();
        let mut next = self.state.clone();
        next.adam_t += 1;
        let t = next.adam_t as i32;
        let (b1, b2) = ADAM_BETAS;
        let bias1 = 1.0 - b1.powi(t);
        let bias2_sqrt = (1.0 - b2.powi(t)).sqrt();
        for j in 0..self.num_tasks {
            // L2 weight decay enters Adam through the gradient, as torch.optim.Adam does.
            let g = z[j] * (delta[j] - zd) + self.config.gamma * next.logits[j];
            next.adam_m[j] = b1 * next.adam_m[j] + (1.0 - b1) * g;
            next.adam_v[j] = b2 * next.adam_v[j] + (1.0 - b2) * g * g;
            let denom = next.adam_v[j].sqrt() / bias2_sqrt + ADAM_EPS;
            next.logits[j] -= self.config.w_lr / bias1 * next.adam_m[j] / denom;
        }
        if let Some((task, v)) = next.logits.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "famo logit after update".into(),
                task: Some(task),
                step: None,
                value: v.to_string(),
            });
        }
        next.pending = None;
        self.state = next;
        Ok(())
    }
}

/// K finite values, each ≥ its task's L* (FAMO takes the logarithm of the distance).
fn check_values(values: &[f64], min_losses: &[f64], step: Option<u64>) -> Result<()> {
    if values.len() != min_losses.len() {
        return Err(Error::TaskCount {
            context: "famo losses".into(),
            expected: min_losses.len(),
            got: values.len(),
        });
    }
    for (task, (&v, &m)) in values.iter().zip(min_losses).enumerate() {
        if !v.is_finite() {
            return Err(Error::NonFinite {
                what: "famo loss".into(),
                task: Some(task),
                step,
                value: v.to_string(),
            });
        }
        if v < m {
            return Err(Error::config(format!(
                "famo: the loss of task {task} is {v}, below its minimum loss L* = {m}; \
                 FAMO takes log(L − L* + ε), so set min_losses to a lower bound"
            )));
        }
    }
    Ok(())
}

/// A numerically stable softmax.
fn softmax(s: &[f64]) -> Vec<f64> {
    let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = s.iter().map(|x| (x - max).exp()).collect();
    let z: f64 = e.iter().sum();
    e.into_iter().map(|x| x / z).collect()
}

impl Weighting for Famo {
    fn name(&self) -> &'static str {
        "famo"
    }
    fn num_tasks(&self) -> Option<usize> {
        Some(self.num_tasks)
    }

    fn combine(&mut self, losses: &Tensor, ctx: &StepContext) -> Result<Tensor> {
        let flat = checked_losses(losses, self.num_tasks, "famo", ctx.step)?;
        let values = Vec::<f64>::try_from(
            flat.f_detach()?
                .f_to_kind(Kind::Double)?
                .f_to_device(Device::Cpu)?,
        )?;
        check_values(&values, &self.min_losses, Some(ctx.step))?;
        if self.state.pending.is_some() {
            // The previous step's update, with this step's losses as L' (see the
            // module docs).
            self.update_w(&values)?;
        }
        let z = softmax(&self.state.logits);
        let d: Vec<f64> = values
            .iter()
            .zip(&self.min_losses)
            .map(|(v, m)| v - m + EPS)
            .collect();
        let c: f64 = z.iter().zip(&d).map(|(z, d)| z / d).sum();
        let coef: Vec<f64> = z.iter().map(|z| z / c).collect();
        let coef_t = Tensor::from_slice(&coef)
            .f_to_kind(flat.kind())?
            .f_to_device(flat.device())?;
        let shift = Tensor::from_slice(&self.min_losses)
            .f_to_kind(flat.kind())?
            .f_to_device(flat.device())?;
        let total = flat
            .f_sub(&shift)?
            .f_add_scalar(EPS)?
            .f_log()?
            .f_mul(&coef_t)?
            .f_sum(flat.kind())?;
        self.last_weights = coef.iter().zip(&d).map(|(c, d)| c / d).collect();
        self.state.pending = Some(values);
        Ok(total)
    }

    fn weights(&self) -> Vec<f64> {
        self.last_weights.clone()
    }

    /// The logits, their Adam moments and step, and the losses awaiting their update.
    fn state(&self) -> serde_json::Value {
        state::to_json(&self.state)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        let parsed: FamoState = state::from_json("famo", state)?;
        let k = self.num_tasks;
        let vectors = [&parsed.logits, &parsed.adam_m, &parsed.adam_v];
        for v in vectors.into_iter().chain(parsed.pending.as_ref()) {
            state::check_len("famo", k, v)?;
            if let Some((task, x)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
                return Err(Error::NonFinite {
                    what: "famo state".into(),
                    task: Some(task),
                    step: None,
                    value: x.to_string(),
                });
            }
        }
        self.state = parsed;
        Ok(())
    }
}
