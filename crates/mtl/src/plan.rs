//! The data side of a fit, so the trainer has one loop: what each step trains on,
//! how many steps make an epoch, how to validate, and the position a checkpoint must
//! save for a resumed run to draw the same batches.
//!
//! * [`Plan::Joint`]: one dataset with a target for every task; an epoch is one seeded
//!   pass over its rows.
//! * [`Plan::PerTask`]: tasks that each bring their own dataset; a seeded
//!   [`TaskSchedule`] draws tasks and one batch of each drawn task's rows per step.
//!
//! A joint plan can also draw one validation batch beside each training batch
//! ([`Plan::draw_meta_batches`]), for a method that learns its weights on validation
//! data (Auto-λ): a seeded pass over the validation rows that starts afresh each epoch
//! and again whenever it runs out, as the reference's second data loader does.

use crate::config::TrainerConfig;
use crate::evaluate::{evaluate, evaluate_multi_input, Evaluation};
use crate::model::MultiTaskModel;
use crate::step::StepData;
use mtl_core::checkpoint::{rng_from_state, rng_state};
use mtl_core::{derive_rng, Error, Result, SeededRng};
use mtl_data::{Batch, JointData, MultiInputData, ScheduleConfig, TaskSampling, TaskSchedule};
use serde_json::json;

/// A step's training data and, when the method learns its weights on validation data,
/// the validation batch drawn beside it.
pub(crate) type PlannedStep = (StepData, Option<StepData>);

/// What a fit trains and validates on.
pub(crate) enum Plan<'a> {
    /// One dataset for every task.
    Joint {
        train: &'a dyn JointData,
        validation: Option<&'a dyn JointData>,
        rng: Box<SeededRng>,
        steps_per_epoch: u64,
        /// The generator of the validation batches drawn beside each step, when a
        /// method needs them.
        meta_rng: Option<Box<SeededRng>>,
    },
    /// Each task its own dataset.
    PerTask {
        train: &'a MultiInputData,
        validation: Option<&'a MultiInputData>,
        schedule: Box<TaskSchedule>,
    },
}

impl<'a> Plan<'a> {
    /// A plan over one dataset, checked against the model's task count.
    pub(crate) fn joint(
        cfg: &TrainerConfig,
        k: usize,
        train: &'a dyn JointData,
        validation: Option<&'a dyn JointData>,
    ) -> Result<Self> {
        check_task_count(k, "", train.num_tasks(), validation.map(|v| v.num_tasks()))?;
        if train.is_empty() {
            return Err(Error::config("the training set is empty"));
        }
        let steps_per_epoch = match cfg.drop_last {
            true => (train.len() / cfg.batch_size) as u64,
            false => train.len().div_ceil(cfg.batch_size) as u64,
        };
        if steps_per_epoch == 0 {
            return Err(Error::config(format!(
                "drop_last with batch_size {} leaves no batch of the {} training rows",
                cfg.batch_size,
                train.len()
            )));
        }
        Ok(Plan::Joint {
            train,
            validation,
            rng: Box::new(derive_rng(cfg.seed, "batches")),
            steps_per_epoch,
            meta_rng: None,
        })
    }

    /// A plan over per-task datasets drawn by `sampling`.
    pub(crate) fn per_task(
        cfg: &TrainerConfig,
        k: usize,
        train: &'a MultiInputData,
        validation: Option<&'a MultiInputData>,
        sampling: TaskSampling,
    ) -> Result<Self> {
        let validation_tasks = validation.map(|v| v.num_tasks());
        check_task_count(k, "multi-input ", train.num_tasks(), validation_tasks)?;
        if cfg.drop_last {
            let sizes = train.sizes();
            if let Some(t) = sizes.iter().position(|&n| n < cfg.batch_size) {
                return Err(Error::config(format!(
                    "drop_last with batch_size {}: task `{}` has only {} training rows, so \
                     every batch of it would be dropped",
                    cfg.batch_size,
                    train.task_names()[t],
                    sizes[t]
                )));
            }
        }
        let schedule = train.schedule(
            ScheduleConfig::new(sampling, cfg.batch_size)
                .tasks_per_step(cfg.tasks_per_step)
                .seed(cfg.seed),
        )?;
        Ok(Plan::PerTask {
            train,
            validation,
            schedule: Box::new(schedule),
        })
    }

    /// Makes every step carry a validation batch besides its training batch, for
    /// `method` (Auto-λ), which learns its weights on validation data. Errors naming
    /// what is missing: no validation data, or per-task data (whose steps have no one
    /// validation batch).
    pub(crate) fn draw_meta_batches(&mut self, seed: u64, method: &str) -> Result<()> {
        match self {
            Plan::Joint {
                validation: Some(v),
                meta_rng,
                ..
            } => {
                if v.is_empty() {
                    return Err(Error::config(format!(
                        "method `{method}` learns its task weights on validation batches, \
                         and the validation set is empty"
                    )));
                }
                *meta_rng = Some(Box::new(derive_rng(seed, "meta-batches")));
                Ok(())
            }
            Plan::Joint {
                validation: None, ..
            } => Err(Error::config(format!(
                "method `{method}` needs validation data: it learns its task weights from \
                 a validation batch at every step; pass a validation set to Trainer::fit \
                 (the training set again reproduces the reference's choice)"
            ))),
            Plan::PerTask { .. } => Err(Error::config(format!(
                "method `{method}` needs one validation batch per step with a target for \
                 every task; tasks that bring their own data (fit_multi_input) have none: \
                 use Trainer::fit"
            ))),
        }
    }

    /// Whether a step may leave some tasks out (their parameters then keep still).
    pub(crate) fn per_task_steps(&self) -> bool {
        matches!(self, Plan::PerTask { .. })
    }

    /// Whether the plan has validation data.
    pub(crate) fn has_validation(&self) -> bool {
        match self {
            Plan::Joint { validation, .. } => validation.is_some(),
            Plan::PerTask { validation, .. } => validation.is_some(),
        }
    }

    /// Steps in one epoch.
    pub(crate) fn steps_per_epoch(&self) -> u64 {
        match self {
            Plan::Joint {
                steps_per_epoch, ..
            } => *steps_per_epoch,
            Plan::PerTask { schedule, .. } => schedule.steps_per_epoch(),
        }
    }

    /// The training rows of each dataset, which a checkpoint must match.
    pub(crate) fn train_rows(&self) -> Vec<usize> {
        match self {
            Plan::Joint { train, .. } => vec![train.len()],
            Plan::PerTask { train, .. } => train.sizes(),
        }
    }

    /// The steps of one epoch, in order, each with its validation batch when
    /// [`Plan::draw_meta_batches`] asked for one: `None` for a step that has nothing to
    /// train (every drawn batch dropped as short), which still counts as a step; an
    /// error where a batch could not be assembled.
    pub(crate) fn epoch(
        &mut self,
        cfg: &TrainerConfig,
    ) -> Result<Box<dyn Iterator<Item = Result<Option<PlannedStep>>> + '_>> {
        let (batch_size, drop_last) = (cfg.batch_size, cfg.drop_last);
        match self {
            Plan::Joint {
                train,
                validation,
                rng,
                steps_per_epoch,
                meta_rng,
            } => {
                // Batches come in full until the last, so taking `steps_per_epoch` of
                // them is what drops a short last one.
                let batches = train.joint_batches(batch_size, Some(&mut **rng))?;
                let mut meta = match (meta_rng, validation) {
                    (Some(r), Some(v)) => Some(MetaBatches {
                        data: *v,
                        rng: r,
                        batch_size,
                        current: None,
                    }),
                    _ => None,
                };
                Ok(Box::new(batches.take(*steps_per_epoch as usize).map(
                    move |b| {
                        let val = match meta.as_mut() {
                            Some(m) => Some(StepData::Joint(m.next_batch()?)),
                            None => None,
                        };
                        Ok(Some((StepData::Joint(b?), val)))
                    },
                )))
            }
            Plan::PerTask { schedule, .. } => {
                let n = schedule.steps_per_epoch();
                Ok(Box::new((0..n).map(move |_| {
                    let mut parts = schedule.next_step()?;
                    if drop_last {
                        parts.retain(|(_, b)| b.len() == batch_size);
                    }
                    Ok((!parts.is_empty()).then_some((StepData::PerTask(parts), None)))
                })))
            }
        }
    }

    /// Validates `model`, when there is validation data.
    pub(crate) fn validate(
        &self,
        model: &MultiTaskModel,
        cfg: &TrainerConfig,
    ) -> Result<Option<Evaluation>> {
        let batch = cfg.batch_size.max(256);
        match self {
            Plan::Joint {
                validation: Some(v),
                ..
            } => {
                let _span = tracing::info_span!("eval", rows = v.len()).entered();
                Ok(Some(evaluate(model, *v, batch)?))
            }
            Plan::PerTask {
                validation: Some(v),
                ..
            } => {
                let _span = tracing::info_span!("eval", rows = ?v.sizes()).entered();
                Ok(Some(evaluate_multi_input(model, v, batch)?))
            }
            _ => Ok(None),
        }
    }

    /// Where the batch stream is, for a checkpoint.
    pub(crate) fn position(&self) -> serde_json::Value {
        match self {
            Plan::Joint {
                rng,
                meta_rng: Some(meta),
                ..
            } => json!({ "batch_rng": rng_state(rng), "meta_rng": rng_state(meta) }),
            Plan::Joint { rng, .. } => json!({ "batch_rng": rng_state(rng) }),
            Plan::PerTask { schedule, .. } => json!({ "schedule_steps": schedule.step() }),
        }
    }

    /// Moves the batch stream to a saved [`Plan::position`].
    pub(crate) fn seek(&mut self, position: &serde_json::Value) -> Result<()> {
        match self {
            Plan::Joint { rng, meta_rng, .. } => {
                let saved = position
                    .get("batch_rng")
                    .ok_or_else(|| Error::config("no batch generator position"))?;
                **rng = rng_from_state(saved)?;
                if let Some(meta) = meta_rng {
                    let saved = position.get("meta_rng").ok_or_else(|| {
                        Error::config("no validation-batch generator position (Auto-λ)")
                    })?;
                    **meta = rng_from_state(saved)?;
                }
            }
            Plan::PerTask { schedule, .. } => {
                let steps = position
                    .get("schedule_steps")
                    .and_then(serde_json::Value::as_u64)
                    .ok_or_else(|| Error::config("no task-schedule position"))?;
                // The schedule is a pure function of its seed: replaying the draws
                // (without assembling batches) reaches the saved position exactly.
                schedule.skip_steps(steps.checked_sub(schedule.step()).ok_or_else(|| {
                    Error::config(format!(
                        "task schedule saved at step {steps}, already at {}",
                        schedule.step()
                    ))
                })?);
            }
        }
        Ok(())
    }
}

/// The validation batches drawn beside the steps of one epoch: seeded passes over the
/// validation rows, a new one whenever the last runs out.
struct MetaBatches<'a, 'r> {
    data: &'a dyn JointData,
    rng: &'r mut SeededRng,
    batch_size: usize,
    current: Option<Box<dyn Iterator<Item = Result<Batch>> + 'a>>,
}

impl MetaBatches<'_, '_> {
    fn next_batch(&mut self) -> Result<Batch> {
        for _ in 0..2 {
            if let Some(batch) = self.current.as_mut().and_then(Iterator::next) {
                return batch;
            }
            self.current = Some(
                self.data
                    .joint_batches(self.batch_size, Some(&mut *self.rng))?,
            );
        }
        Err(Error::config("the validation set gave no batch"))
    }
}

/// The training and validation data must have the model's K tasks.
fn check_task_count(k: usize, kind: &str, train: usize, validation: Option<usize>) -> Result<()> {
    for (what, n) in [("training", Some(train)), ("validation", validation)] {
        if let Some(n) = n.filter(|&n| n != k) {
            return Err(Error::TaskCount {
                context: format!("{kind}{what} data vs model"),
                expected: k,
                got: n,
            });
        }
    }
    Ok(())
}
