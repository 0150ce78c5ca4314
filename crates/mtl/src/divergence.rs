//! The divergence guard: a run whose task losses stay finite but grow by orders of
//! magnitude (a learning rate far too high, exploding gradients) is stopped with
//! [`Error::Diverged`] instead of training on and ending as if it had succeeded.
//!
//! The rule: a task's *reference* is the absolute value of its first positive, finite
//! loss in the run (the first step that trains it). The run has diverged when a task's
//! absolute loss exceeds `factor` × its reference on `patience` consecutive steps that
//! train it. The defaults (factor 10⁴, patience 3) leave room for the noise of
//! mini-batches and for a single outlier batch; a healthy run's loss falls from its
//! first value, it does not rise four orders of magnitude above it. Non-finite losses
//! are refused by the step itself, with or without the guard.

use mtl_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// When a fit counts as diverged (the rule: a task's loss above `factor` times its
/// first value on `patience` consecutive steps); on by default.
///
/// ```
/// use mtl::{DivergenceGuard, TrainerConfig};
/// let cfg = TrainerConfig::default().divergence(DivergenceGuard::default().factor(1e3));
/// assert!(cfg.check().is_ok());
/// let off = TrainerConfig::default().divergence(DivergenceGuard::off());
/// assert!(!off.divergence.enabled);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DivergenceGuard {
    /// Whether the guard watches the run.
    pub enabled: bool,
    /// How many times its reference a task's loss may reach (> 1; 10⁴ by default).
    pub factor: f64,
    /// Consecutive steps over the bound before the run stops (≥ 1; 3 by default), so a
    /// single outlier batch is not taken for a divergence.
    pub patience: u64,
}

impl Default for DivergenceGuard {
    fn default() -> Self {
        DivergenceGuard {
            enabled: true,
            factor: 1e4,
            patience: 3,
        }
    }
}

impl DivergenceGuard {
    /// No guard: a run trains on whatever its finite losses do.
    pub fn off() -> Self {
        DivergenceGuard {
            enabled: false,
            ..Self::default()
        }
    }
    /// Sets the growth factor.
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }
    /// Sets the patience in steps.
    pub fn patience(mut self, steps: u64) -> Self {
        self.patience = steps;
        self
    }

    pub(crate) fn check(&self) -> Result<()> {
        if !(self.factor.is_finite() && self.factor > 1.0) {
            return Err(Error::config(format!(
                "divergence.factor must be a finite number above 1, got {}",
                self.factor
            )));
        }
        if self.patience == 0 {
            return Err(Error::config("divergence.patience must be at least 1"));
        }
        Ok(())
    }
}

/// What the guard remembers between steps (saved in checkpoints, so a resumed run
/// watches exactly as an uninterrupted one would).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct DivergenceWatch {
    /// Per task: the reference loss, once a step has trained the task.
    reference: Vec<Option<f64>>,
    /// Per task: consecutive steps over the bound.
    streak: Vec<u64>,
}

impl DivergenceWatch {
    /// Observes step `step`'s task losses (`trained[t]`: whether the step trained task
    /// `t`); [`Error::Diverged`] once a task has been over the bound for `patience` steps.
    pub(crate) fn observe(
        &mut self,
        guard: &DivergenceGuard,
        losses: &[f64],
        trained: &[bool],
        step: u64,
        name: impl Fn(usize) -> String,
    ) -> Result<()> {
        if !guard.enabled {
            return Ok(());
        }
        let k = losses.len();
        self.reference.resize(k, None);
        self.streak.resize(k, 0);
        for (t, loss) in losses.iter().enumerate() {
            let loss = loss.abs();
            if !trained.get(t).copied().unwrap_or(false) || !loss.is_finite() {
                continue;
            }
            let Some(reference) = self.reference[t] else {
                // A task without labelled rows in its first batch has a zero loss: the
                // reference waits for a loss that says something.
                if loss > 0.0 {
                    self.reference[t] = Some(loss);
                }
                continue;
            };
            if loss > guard.factor * reference {
                self.streak[t] += 1;
                if self.streak[t] >= guard.patience {
                    return Err(Error::Diverged {
                        task: t,
                        name: name(t),
                        step,
                        loss,
                        reference,
                        factor: guard.factor,
                        steps: guard.patience,
                    });
                }
            } else {
                self.streak[t] = 0;
            }
        }
        Ok(())
    }

    /// The state is consistent with `k` tasks (empty before the first step).
    pub(crate) fn check(&self, k: usize) -> std::result::Result<(), String> {
        let ok = |n: usize| n == 0 || n == k;
        let bad_reference = self
            .reference
            .iter()
            .flatten()
            .any(|r| !(r.is_finite() && *r > 0.0));
        if !ok(self.reference.len()) || self.streak.len() != self.reference.len() || bad_reference {
            return Err(format!(
                "the divergence guard's state does not fit {k} tasks: {self:?}"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(t: usize) -> String {
        format!("task{t}")
    }

    #[test]
    fn a_loss_over_the_bound_for_patience_steps_diverges() {
        let guard = DivergenceGuard::default().factor(100.0).patience(2);
        let mut w = DivergenceWatch::default();
        let both = [true, true];
        w.observe(&guard, &[0.0, 2.0], &both, 0, names).unwrap();
        // Task 0 had no loss yet: its reference is 1.0 from step 1.
        w.observe(&guard, &[1.0, 1.0], &both, 1, names).unwrap();
        // One outlier step is forgiven, and the streak starts over.
        w.observe(&guard, &[500.0, 1.0], &both, 2, names).unwrap();
        w.observe(&guard, &[50.0, 1.0], &both, 3, names).unwrap();
        w.observe(&guard, &[500.0, 1.0], &both, 4, names).unwrap();
        // A task the step did not train is not judged.
        w.observe(&guard, &[0.0, 1.0], &[false, true], 5, names)
            .unwrap();
        match w.observe(&guard, &[-1e6, 1.0], &both, 6, names) {
            Err(Error::Diverged {
                task: 0,
                name,
                step: 6,
                reference,
                ..
            }) => {
                assert_eq!(name, "task0");
                assert_eq!(reference, 1.0);
            }
            other => panic!("{other:?}"),
        }
        assert!(w.check(2).is_ok());
        assert!(w.check(3).is_err());
    }

    #[test]
    fn a_disabled_guard_never_stops_and_bad_settings_are_refused() {
        let mut w = DivergenceWatch::default();
        for step in 0..10 {
            let loss = 10f64.powi(step as i32 * 3);
            w.observe(&DivergenceGuard::off(), &[loss], &[true], step, names)
                .unwrap();
        }
        assert!(DivergenceGuard::default().factor(1.0).check().is_err());
        assert!(DivergenceGuard::default()
            .factor(f64::INFINITY)
            .check()
            .is_err());
        assert!(DivergenceGuard::default().patience(0).check().is_err());
        assert!(DivergenceGuard::default().check().is_ok());
    }
}
