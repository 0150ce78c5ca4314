//! Dynamic Weight Average (DWA): weight each task by how slowly its loss has been
//! falling over the last two epochs.
//!
//! Reference: Shikun Liu, Edward Johns and Andrew J. Davison, "End-to-End Multi-Task
//! Learning with Attention", CVPR 2019 (arXiv:1803.10704).
//!
//! Update rule: with L̄ₖ(e) the mean training loss of task k over epoch e and temperature
//! T,
//!
//! ```text
//! rₖ(e) = L̄ₖ(e−1) / L̄ₖ(e−2)
//! wₖ(e) = K · exp(rₖ(e)/T) / Σⱼ exp(rⱼ(e)/T)         (wₖ = 1 for e ∈ {0, 1})
//! L     = Σₖ wₖ(e) Lₖ
//! ```
//!
//! A task whose loss stopped falling (r ≈ 1) gets more weight than one still dropping
//! fast (r < 1). The weights are constant within an epoch.
//!
//! The method accumulates L̄ₖ(e) itself from the loss values it is given at every step
//! (their detached values), keyed by [`StepContext::epoch`]; an epoch is complete once a
//! later epoch begins. [`Dwa::weights_from_buffer`] is the same rule as a pure function
//! of LibMTL's `train_loss_buffer` (K × epochs). Where epoch e−1 or e−2 was never seen
//! (a resumed run without the method's state), the weights fall back to 1 as in the
//! first two epochs. A task whose mean loss was exactly 0 in both epochs has r = 1 (its
//! loss did not change); 0 followed by a positive mean is an infinite ratio and an error.
//!
//! Defaults: T = 2 (the paper's and LibMTL's).
//!
//! # Example
//!
//! ```
//! use mtl_losses::methods::Dwa;
//!
//! // Task 0 went 1.0 → 0.5 (fast), task 1 went 1.0 → 0.9 (slow): task 1 weighs more.
//! let w = Dwa::weights_from_averages(&[0.5, 0.9], &[1.0, 1.0], 2.0).unwrap();
//! assert!(w[1] > 1.0 && w[0] < 1.0);
//! assert!((w[0] + w[1] - 2.0).abs() < 1e-12);
//! ```

use super::static_weights::checked_losses;
use crate::state;
use crate::{StepContext, Weighting};
use mtl_core::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// Dynamic Weight Average (Liu et al., CVPR 2019).
#[derive(Debug, Clone)]
pub struct Dwa {
    num_tasks: usize,
    temperature: f64,
    state: DwaState,
    /// The weights of the current epoch (d L / d Lₖ).
    last_weights: Vec<f64>,
}

/// What DWA remembers between steps (also its checkpoint state).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct DwaState {
    /// The epoch being accumulated (None before the first step).
    epoch: Option<usize>,
    /// Σ of the loss values seen in that epoch, per task.
    sums: Vec<f64>,
    /// How many steps they came from.
    count: u64,
    /// The mean losses of the last completed epochs, oldest first (at most two).
    completed: Vec<(usize, Vec<f64>)>,
}

impl Dwa {
    /// The paper's temperature.
    pub const DEFAULT_TEMPERATURE: f64 = 2.0;

    /// For `num_tasks` tasks with T = 2.
    pub fn new(num_tasks: usize) -> Self {
        Dwa {
            num_tasks,
            temperature: Self::DEFAULT_TEMPERATURE,
            state: DwaState {
                sums: vec![0.0; num_tasks],
                ..DwaState::default()
            },
            last_weights: vec![1.0; num_tasks],
        }
    }

    /// For `num_tasks` (≥ 1) tasks with temperature `temperature` (finite, > 0).
    pub fn with_temperature(num_tasks: usize, temperature: f64) -> Result<Self> {
        if num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "dwa".into(),
                expected: 0,
                got: 0,
            });
        }
        if !temperature.is_finite() || temperature <= 0.0 {
            return Err(Error::config(format!(
                "dwa: the temperature T must be finite and > 0, got {temperature}"
            )));
        }
        Ok(Dwa {
            temperature,
            ..Dwa::new(num_tasks)
        })
    }

    /// The temperature T.
    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    /// The weights K·softmax(r/T) from the mean losses of the previous epoch (`last`)
    /// and of the one before (`before_last`). Errors on mismatched lengths, non-finite
    /// means, or an infinite ratio (a mean of 0 followed by a non-zero one).
    pub fn weights_from_averages(
        last: &[f64],
        before_last: &[f64],
        temperature: f64,
    ) -> Result<Vec<f64>> {
        let k = last.len();
        if k == 0 || before_last.len() != k {
            return Err(Error::TaskCount {
                context: "dwa epoch means".into(),
                expected: k,
                got: before_last.len(),
            });
        }
        let mut ratios = Vec::with_capacity(k);
        for (task, (&now, &then)) in last.iter().zip(before_last).enumerate() {
            let r = if now == 0.0 && then == 0.0 {
                1.0
            } else {
                now / then
            };
            if !r.is_finite() {
                return Err(Error::NonFinite {
                    what: format!("dwa loss ratio L̄(e−1)/L̄(e−2) = {now}/{then}"),
                    task: Some(task),
                    step: None,
                    value: r.to_string(),
                });
            }
            ratios.push(r / temperature);
        }
        let max = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = ratios.iter().map(|r| (r - max).exp()).collect();
        let z: f64 = e.iter().sum();
        Ok(e.into_iter().map(|v| k as f64 * v / z).collect())
    }

    /// The weights of epoch `epoch` from LibMTL's `train_loss_buffer`: `buffer[k][e]` is
    /// the mean loss of task k in epoch e. Ones for `epoch` ≤ 1; otherwise columns
    /// `epoch − 1` and `epoch − 2`, which must exist.
    pub fn weights_from_buffer(
        buffer: &[Vec<f64>],
        epoch: usize,
        temperature: f64,
    ) -> Result<Vec<f64>> {
        if buffer.is_empty() {
            return Err(Error::TaskCount {
                context: "dwa train_loss_buffer".into(),
                expected: 0,
                got: 0,
            });
        }
        if epoch <= 1 {
            return Ok(vec![1.0; buffer.len()]);
        }
        let column = |e: usize| -> Result<Vec<f64>> {
            buffer
                .iter()
                .map(|row| {
                    row.get(e).copied().ok_or_else(|| {
                        Error::shape(
                            "dwa train_loss_buffer",
                            format!("at least {} epochs per task", epoch),
                            format!("{} epochs", row.len()),
                        )
                    })
                })
                .collect()
        };
        Self::weights_from_averages(&column(epoch - 1)?, &column(epoch - 2)?, temperature)
    }

    /// The mean losses of the completed epochs DWA still remembers (at most the last
    /// two), as (epoch, means).
    pub fn epoch_means(&self) -> &[(usize, Vec<f64>)] {
        &self.state.completed
    }

    /// Closes the epoch being accumulated, keeping the last two complete ones.
    fn close_epoch(&mut self) {
        if let Some(e) = self.state.epoch {
            if self.state.count > 0 {
                let n = self.state.count as f64;
                let means = self.state.sums.iter().map(|s| s / n).collect();
                self.state.completed.push((e, means));
                let extra = self.state.completed.len().saturating_sub(2);
                self.state.completed.drain(..extra);
            }
        }
        self.state.sums = vec![0.0; self.num_tasks];
        self.state.count = 0;
    }

    /// The weights for `epoch` from the remembered means (ones when either is missing).
    fn weights_for(&self, epoch: usize) -> Result<Vec<f64>> {
        if epoch <= 1 {
            return Ok(vec![1.0; self.num_tasks]);
        }
        let mean = |e: usize| {
            self.state
                .completed
                .iter()
                .find(|(c, _)| *c == e)
                .map(|(_, m)| m)
        };
        match (mean(epoch - 1), mean(epoch - 2)) {
            (Some(last), Some(before)) => {
                Self::weights_from_averages(last, before, self.temperature)
            }
            _ => Ok(vec![1.0; self.num_tasks]),
        }
    }
}

impl Weighting for Dwa {
    fn name(&self) -> &'static str {
        "dwa"
    }
    fn num_tasks(&self) -> Option<usize> {
        Some(self.num_tasks)
    }

    fn combine(&mut self, losses: &Tensor, ctx: &StepContext) -> Result<Tensor> {
        let flat = checked_losses(losses, self.num_tasks, "dwa", ctx.step)?;
        let values = Vec::<f64>::try_from(
            flat.f_detach()?
                .f_to_kind(Kind::Double)?
                .f_to_device(Device::Cpu)?,
        )?;
        match self.state.epoch {
            Some(e) if ctx.epoch < e => {
                return Err(Error::config(format!(
                    "dwa: epoch went back from {e} to {} at step {}",
                    ctx.epoch, ctx.step
                )))
            }
            Some(e) if ctx.epoch == e => {}
            _ => {
                // A new epoch: the weights change only here.
                let mut next = self.clone();
                next.close_epoch();
                next.state.epoch = Some(ctx.epoch);
                let weights = next
                    .weights_for(ctx.epoch)
                    .map_err(|e| e.at_step(ctx.step))?;
                next.last_weights = weights;
                *self = next;
            }
        }
        for (s, v) in self.state.sums.iter_mut().zip(&values) {
            *s += v;
        }
        self.state.count += 1;
        let w = Tensor::from_slice(&self.last_weights)
            .f_to_kind(flat.kind())?
            .f_to_device(flat.device())?;
        Ok(flat.f_mul(&w)?.f_sum(flat.kind())?)
    }

    fn weights(&self) -> Vec<f64> {
        self.last_weights.clone()
    }

    /// The epoch being accumulated, its running sums and the last two epoch means.
    fn state(&self) -> serde_json::Value {
        state::to_json(&self.state)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        let parsed: DwaState = state::from_json("dwa", state)?;
        let k = self.num_tasks;
        for v in std::iter::once(&parsed.sums).chain(parsed.completed.iter().map(|(_, m)| m)) {
            state::check_len("dwa", k, v)?;
        }
        let mut next = self.clone();
        next.state = parsed;
        next.last_weights = match next.state.epoch {
            Some(e) => next.weights_for(e)?,
            None => vec![1.0; k],
        };
        *self = next;
        Ok(())
    }
}
