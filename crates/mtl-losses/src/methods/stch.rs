//! Smooth Tchebycheff scalarisation (STCH): minimise a smooth maximum of the
//! normalised log-losses, so the worst-off task drives the update.
//!
//! Reference: Xi Lin, Xiaoyuan Zhang, Zhiyuan Yang, Fei Liu, Zhenkun Wang and Qingfu
//! Zhang, "Smooth Tchebycheff Scalarization for Multi-Objective Optimization", ICML 2024
//! (arXiv:2402.19078), in the multi-task form of the authors' code and LibMTL.
//!
//! Update rule: the paper's smooth Tchebycheff function of objectives fₖ with
//! preference λ, ideal point z* and smoothing μ is
//! g_μ(x | λ) = μ log Σₖ exp(λₖ(fₖ(x) − zₖ*)/μ). For multi-task learning the objectives
//! are the log-losses normalised by a nadir point ν (the mean losses of a warm-up epoch),
//! with z* = 0:
//!
//! ```text
//! epochs e < W:   L = Σₖ log(Lₖ + 1e-20)                       (warm-up)
//! epoch  e = W:   the same, and νₖ = mean of Lₖ over the epoch
//! epochs e > W:   lₖ = λₖ log(Lₖ/νₖ + 1e-20)
//!                 L = K · μ log Σₖ exp(lₖ/μ)
//!                 ∂L/∂Lₖ = K softmax(l/μ)ₖ · λₖ/(Lₖ + 1e-20·νₖ)   (the reported weight)
//! ```
//!
//! As μ → 0 the total tends to K·maxₖ lₖ (the classical Tchebycheff scalarisation); the
//! factor K keeps the gradient on the scale of a sum of K losses, as LibMTL does. The
//! log-sum-exp is evaluated stably around the largest term (held constant, so it does not
//! change the gradient; LibMTL drops that constant from the value, we keep it so the value
//! is the true g_μ). If the warm-up epoch was never seen (a resumed run without the
//! method's state, an epoch skipped), ν is taken from the first loss values after it.
//! Losses must be non-negative (their logarithm is taken).
//!
//! Defaults: μ = 1 and W = 4, so epochs 0–3 warm up and epoch 4 measures ν (LibMTL's
//! `STCH_mu = 1.0`, `STCH_warmup_epoch = 4`); λ = 1.
//!
//! # Example
//!
//! ```
//! use mtl_losses::methods::Stch;
//! use mtl_losses::{StepContext, Weighting};
//! use tch::Tensor;
//!
//! let mut stch = Stch::new(2).with_warmup_epochs(0);
//! let ctx = |epoch| StepContext { step: 0, epoch, losses: &[] };
//! // Epoch 0 measures the nadir point ν = (1, 2).
//! stch.combine(&Tensor::from_slice(&[1.0f64, 2.0]), &ctx(0)).unwrap();
//! // Later, task 0 is further above its nadir: it gets most of the weight.
//! stch.combine(&Tensor::from_slice(&[3.0f64, 2.0]), &ctx(1)).unwrap();
//! let w = stch.weights();
//! assert!(w[0] * 3.0 > w[1] * 2.0);
//! ```

use super::static_weights::checked_losses;
use crate::state;
use crate::{StepContext, Weighting};
use mtl_core::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// The ε inside the logarithms (LibMTL's).
const LOG_EPS: f64 = 1e-20;

/// Smooth Tchebycheff scalarisation (Lin et al., ICML 2024).
#[derive(Debug, Clone)]
pub struct Stch {
    num_tasks: usize,
    mu: f64,
    warmup_epochs: usize,
    preference: Vec<f64>,
    state: StchState,
    last_weights: Vec<f64>,
}

/// The nadir point and its accumulation (also the checkpoint state).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct StchState {
    /// Σ of the loss values seen in the measuring epoch.
    sums: Vec<f64>,
    /// How many steps they came from.
    count: u64,
    /// ν, fixed at the first step after the measuring epoch.
    nadir: Option<Vec<f64>>,
}

impl Stch {
    /// The paper's and LibMTL's smoothing μ.
    pub const DEFAULT_MU: f64 = 1.0;
    /// LibMTL's warm-up length in epochs.
    pub const DEFAULT_WARMUP_EPOCHS: usize = 4;

    /// For `num_tasks` tasks with μ = 1, 4 warm-up epochs and λ = 1.
    pub fn new(num_tasks: usize) -> Self {
        Stch {
            num_tasks,
            mu: Self::DEFAULT_MU,
            warmup_epochs: Self::DEFAULT_WARMUP_EPOCHS,
            preference: vec![1.0; num_tasks],
            state: StchState {
                sums: vec![0.0; num_tasks],
                ..StchState::default()
            },
            last_weights: vec![1.0; num_tasks],
        }
    }

    /// The same with `epochs` warm-up epochs (epoch `epochs` measures ν).
    pub fn with_warmup_epochs(mut self, epochs: usize) -> Self {
        self.warmup_epochs = epochs;
        self
    }

    /// The same with smoothing μ (finite, > 0).
    pub fn with_mu(mut self, mu: f64) -> Result<Self> {
        if !mu.is_finite() || mu <= 0.0 {
            return Err(Error::config(format!(
                "stch: mu must be finite and > 0, got {mu}"
            )));
        }
        self.mu = mu;
        Ok(self)
    }

    /// The same with preference λ (K finite positive values).
    pub fn with_preference(mut self, preference: Vec<f64>) -> Result<Self> {
        if preference.len() != self.num_tasks {
            return Err(Error::TaskCount {
                context: "stch preference".into(),
                expected: self.num_tasks,
                got: preference.len(),
            });
        }
        if let Some((k, v)) = preference
            .iter()
            .enumerate()
            .find(|(_, v)| !v.is_finite() || **v <= 0.0)
        {
            return Err(Error::config(format!(
                "stch: the preference of task {k} is {v}; it must be finite and > 0"
            )));
        }
        self.preference = preference;
        Ok(self)
    }

    /// μ.
    pub fn mu(&self) -> f64 {
        self.mu
    }

    /// The nadir point ν, once fixed.
    pub fn nadir(&self) -> Option<&[f64]> {
        self.state.nadir.as_deref()
    }

    /// The nadir point, fixing it from the measuring epoch (or `values`) if needed.
    fn nadir_or_fix(&mut self, values: &[f64], step: u64) -> Result<Vec<f64>> {
        if let Some(n) = &self.state.nadir {
            return Ok(n.clone());
        }
        let nadir: Vec<f64> = if self.state.count > 0 {
            let n = self.state.count as f64;
            self.state.sums.iter().map(|s| s / n).collect()
        } else {
            values.to_vec()
        };
        if let Some((task, v)) = nadir.iter().enumerate().find(|(_, v)| **v <= 0.0) {
            return Err(Error::config(format!(
                "stch: the nadir loss of task {task} is {v} at step {step}; the \
                 normalisation L/ν needs positive mean losses"
            )));
        }
        self.state.nadir = Some(nadir.clone());
        Ok(nadir)
    }
}

impl Weighting for Stch {
    fn name(&self) -> &'static str {
        "stch"
    }
    fn num_tasks(&self) -> Option<usize> {
        Some(self.num_tasks)
    }

    fn combine(&mut self, losses: &Tensor, ctx: &StepContext) -> Result<Tensor> {
        let flat = checked_losses(losses, self.num_tasks, "stch", ctx.step)?;
        let values = Vec::<f64>::try_from(
            flat.f_detach()?
                .f_to_kind(Kind::Double)?
                .f_to_device(Device::Cpu)?,
        )?;
        if let Some((task, v)) = values.iter().enumerate().find(|(_, v)| **v < 0.0) {
            return Err(Error::config(format!(
                "stch: the loss of task {task} is {v} at step {}; STCH takes the \
                 logarithm of the losses, which must be >= 0",
                ctx.step
            )));
        }
        let k = self.num_tasks as f64;
        if ctx.epoch <= self.warmup_epochs && self.state.nadir.is_none() {
            if ctx.epoch == self.warmup_epochs {
                for (s, v) in self.state.sums.iter_mut().zip(&values) {
                    *s += v;
                }
                self.state.count += 1;
            }
            self.last_weights = values.iter().map(|l| 1.0 / (l + LOG_EPS)).collect();
            return Ok(flat.f_add_scalar(LOG_EPS)?.f_log()?.f_sum(flat.kind())?);
        }
        let nadir = self.nadir_or_fix(&values, ctx.step)?;
        let l: Vec<f64> = values
            .iter()
            .zip(&nadir)
            .zip(&self.preference)
            .map(|((v, n), p)| p * (v / n + LOG_EPS).ln())
            .collect();
        let max = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = l.iter().map(|x| ((x - max) / self.mu).exp()).collect();
        let z: f64 = e.iter().sum();
        self.last_weights = (0..self.num_tasks)
            .map(|i| k * e[i] / z * self.preference[i] / (values[i] + LOG_EPS * nadir[i]))
            .collect();

        let to = |v: &[f64]| -> Result<Tensor> {
            Ok(Tensor::from_slice(v)
                .f_to_kind(flat.kind())?
                .f_to_device(flat.device())?)
        };
        let lt = flat
            .f_div(&to(&nadir)?)?
            .f_add_scalar(LOG_EPS)?
            .f_log()?
            .f_mul(&to(&self.preference)?)?;
        // max is a constant: it shifts the value back to g_μ without touching the
        // gradient, and keeps exp from overflowing.
        let total = lt
            .f_sub_scalar(max)?
            .f_div_scalar(self.mu)?
            .f_exp()?
            .f_sum(flat.kind())?
            .f_log()?
            .f_mul_scalar(self.mu)?
            .f_add_scalar(max)?
            .f_mul_scalar(k)?;
        Ok(total)
    }

    fn weights(&self) -> Vec<f64> {
        self.last_weights.clone()
    }

    /// The nadir point (once fixed) and its running sums.
    fn state(&self) -> serde_json::Value {
        state::to_json(&self.state)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        let parsed: StchState = state::from_json("stch", state)?;
        let k = self.num_tasks;
        for v in std::iter::once(&parsed.sums).chain(parsed.nadir.as_ref()) {
            state::check_len("stch", k, v)?;
        }
        if let Some(n) = &parsed.nadir {
            if let Some((task, v)) = n
                .iter()
                .enumerate()
                .find(|(_, v)| !v.is_finite() || **v <= 0.0)
            {
                return Err(Error::config(format!(
                    "stch state: the nadir loss of task {task} is {v}; it must be finite \
                     and > 0"
                )));
            }
        }
        self.state = parsed;
        Ok(())
    }
}
