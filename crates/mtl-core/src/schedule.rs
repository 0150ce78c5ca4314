//! Learning-rate schedules: a factor of the base learning rate as a function of the
//! optimiser step, following `torch.optim.lr_scheduler` (`StepLR`, `CosineAnnealingLR`,
//! `LinearLR`) and composable, so a linear warm-up can lead into any other schedule.
//!
//! A schedule is plain data (serialisable into configs and reports) and stateless: the
//! factor depends only on the step and the run's total number of steps, so a resumed run
//! recomputes it from the checkpointed step count.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// How the learning rate changes over a run, as a factor of the optimiser's base rate.
///
/// ```
/// use mtl_core::schedule::LrSchedule;
/// // 10 warm-up steps from 0.1×, then cosine annealing to 0 over the remaining 90.
/// let s = LrSchedule::warmup_cosine(10, 0.0);
/// assert!((s.factor(0, 100) - 0.1).abs() < 1e-12);
/// assert!((s.factor(10, 100) - 1.0).abs() < 1e-12);
/// assert!(s.factor(99, 100) < 0.01);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LrSchedule {
    /// The base rate throughout.
    #[default]
    Constant,
    /// Multiply by `gamma` every `every` steps (`StepLR`): factor = γ^⌊t / every⌋.
    Step {
        /// Steps between decays (> 0).
        every: u64,
        /// The decay factor (> 0).
        gamma: f64,
    },
    /// Cosine annealing from 1 to `min_factor` over the steps the schedule covers
    /// (`CosineAnnealingLR` with `T_max` = those steps, `eta_min` = `min_factor` × base).
    Cosine {
        /// The final factor, in [0, 1].
        min_factor: f64,
    },
    /// Linear change from 1 to `end_factor` over the steps the schedule covers.
    Linear {
        /// The final factor (≥ 0).
        end_factor: f64,
    },
    /// A linear warm-up from `start_factor` to 1 over `steps` steps (`LinearLR`: the
    /// first step uses `start_factor`), then `then` over the remaining steps, which it
    /// sees as starting from step 0.
    Warmup {
        /// The warm-up length in steps.
        steps: u64,
        /// The factor of the first step, in [0, 1].
        start_factor: f64,
        /// The schedule after the warm-up.
        then: Box<LrSchedule>,
    },
}

impl LrSchedule {
    /// Decay by `gamma` every `every` steps.
    pub fn step(every: u64, gamma: f64) -> Self {
        LrSchedule::Step { every, gamma }
    }
    /// Cosine annealing to `min_factor` × the base rate.
    pub fn cosine(min_factor: f64) -> Self {
        LrSchedule::Cosine { min_factor }
    }
    /// Linear decay to `end_factor` × the base rate.
    pub fn linear(end_factor: f64) -> Self {
        LrSchedule::Linear { end_factor }
    }
    /// A linear warm-up over `steps` steps, starting at `start_factor` × the base rate,
    /// in front of `self`.
    pub fn after_warmup(self, steps: u64, start_factor: f64) -> Self {
        LrSchedule::Warmup {
            steps,
            start_factor,
            then: Box::new(self),
        }
    }
    /// The common recipe: a linear warm-up over `warmup_steps` starting at
    /// 1/`warmup_steps` of the base rate, then cosine annealing to `min_factor`.
    pub fn warmup_cosine(warmup_steps: u64, min_factor: f64) -> Self {
        let start = if warmup_steps == 0 {
            1.0
        } else {
            1.0 / warmup_steps as f64
        };
        LrSchedule::cosine(min_factor).after_warmup(warmup_steps, start)
    }

    /// Rejects values that would give a negative, infinite or NaN learning rate.
    pub fn check(&self) -> Result<()> {
        let bad = |what: &str, v: f64| {
            Err(Error::config(format!(
                "learning-rate schedule: {what} out of range, got {v}"
            )))
        };
        match self {
            LrSchedule::Constant => Ok(()),
            LrSchedule::Step { every, gamma } => {
                if *every == 0 {
                    return bad("`every`", 0.0);
                }
                if !(gamma.is_finite() && *gamma > 0.0) {
                    return bad("`gamma`", *gamma);
                }
                Ok(())
            }
            LrSchedule::Cosine { min_factor } => {
                if !(0.0..=1.0).contains(min_factor) {
                    return bad("`min_factor`", *min_factor);
                }
                Ok(())
            }
            LrSchedule::Linear { end_factor } => {
                if !(end_factor.is_finite() && *end_factor >= 0.0) {
                    return bad("`end_factor`", *end_factor);
                }
                Ok(())
            }
            LrSchedule::Warmup {
                start_factor, then, ..
            } => {
                if !(0.0..=1.0).contains(start_factor) {
                    return bad("`start_factor`", *start_factor);
                }
                then.check()
            }
        }
    }

    /// Whether the factor depends on the run's total step count (cosine and linear
    /// schedules spread over it), so that a run resumed with another number of epochs
    /// would follow another curve.
    ///
    /// ```
    /// use mtl_core::schedule::LrSchedule;
    /// assert!(!LrSchedule::step(10, 0.5).after_warmup(5, 0.1).uses_total());
    /// assert!(LrSchedule::warmup_cosine(5, 0.0).uses_total());
    /// ```
    pub fn uses_total(&self) -> bool {
        match self {
            LrSchedule::Constant | LrSchedule::Step { .. } => false,
            LrSchedule::Cosine { .. } | LrSchedule::Linear { .. } => true,
            LrSchedule::Warmup { then, .. } => then.uses_total(),
        }
    }

    /// The factor of the base rate at (0-based) optimiser step `step` of a run of
    /// `total` steps. Steps past `total` keep the final factor.
    pub fn factor(&self, step: u64, total: u64) -> f64 {
        match self {
            LrSchedule::Constant => 1.0,
            LrSchedule::Step { every, gamma } => gamma.powf((step / (*every).max(1)) as f64),
            LrSchedule::Cosine { min_factor } => {
                let progress = fraction(step, total);
                min_factor
                    + (1.0 - min_factor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            LrSchedule::Linear { end_factor } => 1.0 + (end_factor - 1.0) * fraction(step, total),
            LrSchedule::Warmup {
                steps,
                start_factor,
                then,
            } => {
                if step < *steps {
                    start_factor + (1.0 - start_factor) * step as f64 / *steps as f64
                } else {
                    then.factor(step - steps, total.saturating_sub(*steps))
                }
            }
        }
    }
}

/// `step / total`, clamped to [0, 1]; a schedule covering no steps is already done.
fn fraction(step: u64, total: u64) -> f64 {
    if total == 0 {
        1.0
    } else {
        (step as f64 / total as f64).min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_decay_matches_step_lr() {
        let s = LrSchedule::step(3, 0.5);
        let f: Vec<f64> = (0..7).map(|t| s.factor(t, 100)).collect();
        assert_eq!(f, [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]);
    }

    #[test]
    fn cosine_matches_the_closed_form() {
        // torch CosineAnnealingLR(T_max=10, eta_min=0.1·base): at t=5 the factor is
        // 0.1 + 0.9·(1 + cos(π/2))/2 = 0.55.
        let s = LrSchedule::cosine(0.1);
        assert!((s.factor(0, 10) - 1.0).abs() < 1e-12);
        assert!((s.factor(5, 10) - 0.55).abs() < 1e-12);
        assert!((s.factor(10, 10) - 0.1).abs() < 1e-12);
        assert!((s.factor(50, 10) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn warmup_then_cosine_is_continuous_and_monotone_after_the_peak() {
        let s = LrSchedule::warmup_cosine(4, 0.0);
        let f: Vec<f64> = (0..20).map(|t| s.factor(t, 20)).collect();
        assert_eq!(&f[..4], &[0.25, 0.4375, 0.625, 0.8125]);
        assert_eq!(f[4], 1.0);
        assert!(f[4..].windows(2).all(|w| w[1] < w[0]), "{f:?}");
    }

    #[test]
    fn linear_decay_and_validation() {
        let s = LrSchedule::linear(0.0);
        assert!((s.factor(5, 10) - 0.5).abs() < 1e-12);
        assert!(LrSchedule::step(0, 0.5).check().is_err());
        assert!(LrSchedule::cosine(1.5).check().is_err());
        assert!(LrSchedule::cosine(0.0)
            .after_warmup(3, -0.1)
            .check()
            .is_err());
        assert!(LrSchedule::warmup_cosine(3, 0.0).check().is_ok());
    }

    #[test]
    fn unknown_schedule_fields_are_refused() {
        let err = serde_json::from_str::<LrSchedule>(r#"{"kind": "cosine", "min_factr": 0.1}"#)
            .unwrap_err();
        assert!(err.to_string().contains("min_factr"), "{err}");
        let err = serde_json::from_str::<LrSchedule>(
            r#"{"kind": "warmup", "steps": 3, "start_factor": 0.1,
                "then": {"kind": "step", "every": 2, "gama": 0.5}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("gama"), "{err}");
    }

    #[test]
    fn schedules_round_trip_through_json() {
        let s = LrSchedule::warmup_cosine(5, 0.01);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<LrSchedule>(&json).unwrap(), s);
    }
}
