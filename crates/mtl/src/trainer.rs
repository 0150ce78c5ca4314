//! The training loop: epochs of seeded mini-batches, one method (weighting or
//! aggregator) combining the tasks, validation each epoch, early stopping with the best
//! weights restored, checkpoints to resume from, and a [`RunReport`].
//!
//! Randomness is owned by the run: batches are shuffled by a generator derived from the
//! seed, and libtorch's generator (dropout) is re-seeded from the seed at the start of
//! every epoch, so a run resumed from an epoch-end checkpoint continues bit for bit.

use crate::diagnostics::{self, DiagnosticsConfig};
use crate::early_stopping::EarlyStopping;
use crate::evaluate::{evaluate, Evaluation};
use crate::freeze::FreezeGuard;
use crate::model::MultiTaskModel;
use crate::progress::{should_draw, Progress};
use crate::report::{EpochRecord, RunReport};
use crate::run_state::{self, Parts, RunState};
use crate::step::{backward_step, GradMode};
use mtl_core::{clip_grad_norm, derive_rng, params, Error, LrSchedule, OptimizerConfig, Result};
use mtl_data::MultiTaskDataset;
use mtl_losses::Method;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Trainer settings (plain data: serialisable into the report and from config files,
/// where every field may be left out for its [`Default`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainerConfig {
    /// The maximum number of epochs.
    pub epochs: usize,
    /// Rows per mini-batch.
    pub batch_size: usize,
    /// The optimiser.
    pub optimizer: OptimizerConfig,
    /// The registry name of the task-combination method (`"ew"`, `"pcgrad"`...).
    pub method: String,
    /// Seed for shuffling and for the method's own randomness.
    pub seed: u64,
    /// Early stopping on the validation set, if any.
    pub early_stopping: Option<EarlyStopping>,
    /// Parameter or representation gradients for gradient-level methods.
    pub grad_mode: GradMode,
    /// How the learning rate changes over the run's optimiser steps.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// Clip the global gradient norm (of every trained parameter) to this value.
    #[serde(default)]
    pub clip_grad_norm: Option<f64>,
    /// Var-store name prefixes of parameters to keep fixed (e.g. `"trunk.0."` for the first layer of an `Mlp` trunk built under `trunk`).
    #[serde(default)]
    pub frozen: Vec<String>,
    /// Where and how often to write checkpoints.
    #[serde(default)]
    pub checkpoint: Option<CheckpointPolicy>,
    /// Gradient diagnostics (conflict, norms, task affinity) sampled every N steps.
    #[serde(default)]
    pub diagnostics: Option<DiagnosticsConfig>,
    /// Show progress bars (only ever on a terminal, and never when `CI` is set).
    #[serde(default = "yes")]
    pub progress: bool,
    /// Drop the last batch of an epoch when it is smaller than `batch_size` (for
    /// methods whose state is sized to the batch, such as DB-MTL in rep-grad mode).
    /// With per-task data ([`Trainer::fit_multi_input`]) a task's short batch at the
    /// end of a pass over its rows is left out of its step.
    #[serde(default)]
    pub drop_last: bool,
    /// How many tasks [`Trainer::fit_multi_input`] draws per step (ignored by
    /// [`TaskSampling::All`](mtl_data::TaskSampling::All) and by [`Trainer::fit`]).
    #[serde(default = "one")]
    pub tasks_per_step: usize,
}

fn one() -> usize {
    1
}

fn yes() -> bool {
    true
}

/// When and where the trainer writes checkpoints: the file is replaced atomically every
/// `every_epochs` epochs and after the last one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointPolicy {
    /// The checkpoint file (safetensors; `.safetensors` is the natural extension).
    pub path: PathBuf,
    /// Epochs between checkpoints (≥ 1).
    pub every_epochs: usize,
}

impl CheckpointPolicy {
    /// A checkpoint at `path` after every epoch.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CheckpointPolicy {
            path: path.into(),
            every_epochs: 1,
        }
    }
    /// Checkpoints only every `n` epochs (and after the last).
    pub fn every(mut self, n: usize) -> Self {
        self.every_epochs = n;
        self
    }
}

impl Default for TrainerConfig {
    fn default() -> Self {
        TrainerConfig {
            epochs: 10,
            batch_size: 32,
            optimizer: OptimizerConfig::adam(1e-3),
            method: "ew".into(),
            seed: 0,
            early_stopping: None,
            grad_mode: GradMode::Parameters,
            lr_schedule: LrSchedule::Constant,
            clip_grad_norm: None,
            frozen: Vec::new(),
            checkpoint: None,
            diagnostics: None,
            progress: true,
            drop_last: false,
            tasks_per_step: 1,
        }
    }
}

impl TrainerConfig {
    /// Sets the number of epochs.
    pub fn epochs(mut self, n: usize) -> Self {
        self.epochs = n;
        self
    }
    /// Sets the batch size.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// Sets the optimiser.
    pub fn optimizer(mut self, o: OptimizerConfig) -> Self {
        self.optimizer = o;
        self
    }
    /// Sets the method by registry name.
    pub fn method(mut self, name: impl Into<String>) -> Self {
        self.method = name.into();
        self
    }
    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Turns on early stopping.
    pub fn early_stopping(mut self, es: EarlyStopping) -> Self {
        self.early_stopping = Some(es);
        self
    }
    /// Sets the gradient mode.
    pub fn grad_mode(mut self, mode: GradMode) -> Self {
        self.grad_mode = mode;
        self
    }

    /// Sets the learning-rate schedule.
    pub fn lr_schedule(mut self, schedule: LrSchedule) -> Self {
        self.lr_schedule = schedule;
        self
    }
    /// Clips the global gradient norm to `max_norm` before every update.
    pub fn clip_grad_norm(mut self, max_norm: f64) -> Self {
        self.clip_grad_norm = Some(max_norm);
        self
    }
    /// Keeps every parameter whose var-store name starts with `prefix` fixed.
    pub fn freeze(mut self, prefix: impl Into<String>) -> Self {
        self.frozen.push(prefix.into());
        self
    }

    /// Writes checkpoints as `policy` says.
    pub fn checkpoint(mut self, policy: CheckpointPolicy) -> Self {
        self.checkpoint = Some(policy);
        self
    }
    /// Samples gradient diagnostics as `d` says.
    pub fn diagnostics(mut self, d: DiagnosticsConfig) -> Self {
        self.diagnostics = Some(d);
        self
    }
    /// Turns progress bars on or off.
    pub fn progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }
    /// Drops (or keeps) an epoch's last, smaller batch.
    pub fn drop_last(mut self, yes: bool) -> Self {
        self.drop_last = yes;
        self
    }
    /// Sets how many tasks a multi-input step draws.
    pub fn tasks_per_step(mut self, n: usize) -> Self {
        self.tasks_per_step = n;
        self
    }

    fn check(&self) -> Result<()> {
        if self.epochs == 0 || self.batch_size == 0 {
            return Err(Error::config(format!(
                "epochs and batch_size must be positive, got {} and {}",
                self.epochs, self.batch_size
            )));
        }
        if self.tasks_per_step == 0 {
            return Err(Error::config("tasks_per_step must be at least 1"));
        }
        self.lr_schedule.check()?;
        if let Some(d) = &self.diagnostics {
            d.check()?;
        }
        if let Some(c) = &self.checkpoint {
            if c.every_epochs == 0 {
                return Err(Error::config("checkpoint every_epochs must be at least 1"));
            }
        }
        if let Some(c) = self.clip_grad_norm {
            if !(c.is_finite() && c > 0.0) {
                return Err(Error::config(format!(
                    "clip_grad_norm must be positive, got {c}"
                )));
            }
        }
        Ok(())
    }
}

/// Trains a [`MultiTaskModel`].
#[derive(Debug)]
pub struct Trainer {
    config: TrainerConfig,
    pub(crate) method: Option<Method>,
    pub(crate) resume: Option<PathBuf>,
}

/// Closes an epoch of either training loop: logs it, lets early stopping observe its
/// validation, updates the bar and appends the record to the run state.
pub(crate) fn end_epoch(
    cfg: &TrainerConfig,
    record: EpochRecord,
    state: &mut RunState,
    model: &mut MultiTaskModel,
    progress: &Progress,
) -> Result<()> {
    let epoch = record.epoch;
    tracing::info!(epoch, train_losses = ?record.train_losses, weights = ?record.task_weights, "epoch done");
    if let (Some(es), Some(ev)) = (&cfg.early_stopping, &record.validation) {
        es.observe(ev, epoch, state, model)?;
    }
    progress.epoch(|| epoch_summary(&record, state));
    state.records.push(record);
    state.epoch += 1;
    if state.stopped_early {
        tracing::info!(epoch, "early stopping");
    }
    Ok(())
}

/// The epoch bar's message: training losses, and the validation total with the
/// early-stopping wait when there is one.
pub(crate) fn epoch_summary(record: &EpochRecord, state: &RunState) -> String {
    let train: f64 = record.train_losses.iter().sum();
    match &record.validation {
        Some(v) => format!(
            "train {train:.4} val {:.4} (best epoch {}, waited {})",
            v.total_loss(),
            state.best.as_ref().map_or(record.epoch, |b| b.epoch),
            state.since_best
        ),
        None => format!("train {train:.4}"),
    }
}

/// A libtorch seed for epoch `epoch` of a run seeded with `seed`.
pub(crate) fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    derive_rng(seed, &format!("torch-epoch-{epoch}")).next_u64() >> 1
}

impl Trainer {
    /// A trainer that builds its method from `config.method` by name.
    pub fn new(config: TrainerConfig) -> Result<Self> {
        config.check()?;
        Ok(Trainer {
            config,
            method: None,
            resume: None,
        })
    }

    /// Uses an already-built method (a custom one, or one with non-default
    /// hyper-parameters such as static weights) instead of `config.method`.
    pub fn with_method(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }

    /// Makes the next [`Trainer::fit`] continue the run saved in the checkpoint at `path`
    /// (written by a trainer with the same configuration but for `epochs` and the
    /// checkpoint policy, on the same data). The model's weights, the optimiser, the
    /// method's state, the batch order and the early-stopping state all continue from
    /// the checkpoint, so the result equals that of an uninterrupted run.
    pub fn resume_from(mut self, path: impl Into<PathBuf>) -> Self {
        self.resume = Some(path.into());
        self
    }

    /// The configuration.
    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }

    /// Trains `model` on `train`, validating on `validation` after every epoch when
    /// given. With early stopping the model ends with the best epoch's weights.
    pub fn fit(
        &mut self,
        model: &mut MultiTaskModel,
        train: &MultiTaskDataset,
        validation: Option<&MultiTaskDataset>,
    ) -> Result<RunReport> {
        let cfg = self.config.clone();
        let k = model.num_tasks();
        if train.num_tasks() != k {
            return Err(Error::TaskCount {
                context: "training data vs model".into(),
                expected: k,
                got: train.num_tasks(),
            });
        }
        if train.is_empty() {
            return Err(Error::config("the training set is empty"));
        }
        if let (Some(es), None) = (&cfg.early_stopping, validation) {
            return Err(Error::config(format!(
                "early stopping on {:?} needs a validation set",
                es.monitor
            )));
        }
        let (mut method, method_name) = self.take_method(k)?;
        // Frozen variables stop requiring gradients before the groups are split, so they
        // are neither in the Jacobian nor in the optimiser.
        let _frozen = FreezeGuard::apply(model.var_store(), &cfg.frozen)?;
        let groups = model.param_groups()?;
        let mut trainable = groups.all_tensors();
        if let Method::Weighting(w) = &method {
            trainable.extend(w.parameters());
        }
        params::ensure_grads(&trainable)?;
        let mut opt = cfg.optimizer.build(trainable)?;
        let mut rng = derive_rng(cfg.seed, "batches");
        let device = model.device();
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
        let total_steps = steps_per_epoch * cfg.epochs as u64;
        let base_lr = cfg.optimizer.lr();

        let mut state = match self.resume.take() {
            Some(path) => run_state::load(
                &path,
                &mut Parts {
                    cfg: &cfg,
                    model,
                    method: &mut method,
                    optimizer: &mut opt,
                    batch_rng: &mut rng,
                    train_rows: train.len(),
                },
            )?,
            None => RunState::default(),
        };

        let start = Instant::now();
        let progress = Progress::new(
            should_draw(cfg.progress),
            state.epoch,
            cfg.epochs,
            steps_per_epoch,
            model.task_names(),
        );
        let _fit_span = tracing::info_span!("fit", method = %method_name, tasks = k).entered();
        while state.epoch < cfg.epochs && !state.stopped_early {
            let epoch = state.epoch;
            let _epoch_span = tracing::info_span!("epoch", epoch).entered();
            let t0 = Instant::now();
            mtl_core::seed_everything(epoch_seed(cfg.seed, epoch));
            let mut loss_sum = vec![0.0; k];
            let mut weight_sum: Vec<f64> = Vec::new();
            let mut steps_in_epoch = 0.0;
            let mut norm_sum = 0.0;
            // Batches come in full until the last, so taking `steps_per_epoch` of them
            // is what drops a short last one.
            let batches = train.batches(cfg.batch_size, Some(&mut rng))?;
            for batch in batches.take(steps_per_epoch as usize) {
                let step = state.step;
                let _step_span = tracing::debug_span!("step", step).entered();
                let batch = batch.to_device(device);
                opt.set_lr(base_lr * cfg.lr_schedule.factor(step, total_steps));
                if let Some(d) = cfg.diagnostics.as_ref().filter(|d| d.due(step)) {
                    state.samples.push(diagnostics::sample(
                        d,
                        model,
                        &groups,
                        &batch.x,
                        &batch.targets,
                        step,
                        epoch,
                        opt.lr(),
                    )?);
                }
                opt.zero_grad();
                let out = backward_step(
                    model,
                    &groups,
                    &mut method,
                    cfg.grad_mode,
                    &batch.x,
                    &batch.targets,
                    step,
                    epoch,
                )?;
                if let Some(max_norm) = cfg.clip_grad_norm {
                    norm_sum += clip_grad_norm(opt.params(), max_norm)?;
                }
                opt.step()?;
                for (s, l) in loss_sum.iter_mut().zip(&out.losses) {
                    *s += l;
                }
                if weight_sum.len() != out.weights.len() {
                    weight_sum = vec![0.0; out.weights.len()];
                }
                for (s, w) in weight_sum.iter_mut().zip(&out.weights) {
                    *s += w;
                }
                steps_in_epoch += 1.0;
                state.step += 1;
                tracing::trace!(step, losses = ?out.losses, "step");
                progress.step(|| loss_sum.iter().map(|s| s / steps_in_epoch).collect());
            }
            let validation_eval: Option<Evaluation> = match validation {
                Some(v) => {
                    let _eval_span = tracing::info_span!("eval", rows = v.len()).entered();
                    Some(evaluate(model, v, cfg.batch_size.max(256))?)
                }
                None => None,
            };
            let record = EpochRecord {
                epoch,
                train_losses: loss_sum.iter().map(|s| s / steps_in_epoch).collect(),
                task_weights: weight_sum.iter().map(|s| s / steps_in_epoch).collect(),
                validation: validation_eval,
                lr: opt.lr(),
                grad_norm: cfg.clip_grad_norm.map(|_| norm_sum / steps_in_epoch),
                seconds: t0.elapsed().as_secs_f64(),
            };
            end_epoch(&cfg, record, &mut state, model, &progress)?;
            if let Some(policy) = &cfg.checkpoint {
                let last = state.epoch == cfg.epochs || state.stopped_early;
                if last || state.epoch % policy.every_epochs == 0 {
                    self.save_checkpoint(
                        &policy.path,
                        &mut Parts {
                            cfg: &cfg,
                            model,
                            method: &mut method,
                            optimizer: &mut opt,
                            batch_rng: &mut rng,
                            train_rows: train.len(),
                        },
                        &state,
                        start.elapsed().as_secs_f64(),
                    )?;
                }
            }
        }
        progress.finish();
        self.finish(model, method, method_name, state, start)
    }

    /// The method to train with: the one given to [`Trainer::with_method`] (or kept
    /// from the last fit), else `config.method` by name; with its registry name.
    pub(crate) fn take_method(&mut self, k: usize) -> Result<(Method, String)> {
        let method = match self.method.take() {
            Some(m) => m,
            None => mtl_losses::by_name(&self.config.method, k, self.config.seed)?,
        };
        let name = match &method {
            Method::Weighting(w) => w.name(),
            Method::Aggregator(a) => a.name(),
        }
        .to_string();
        Ok((method, name))
    }

    /// Ends a fit: restores the best epoch's weights, keeps the method for the next fit
    /// and assembles the report.
    pub(crate) fn finish(
        &mut self,
        model: &mut MultiTaskModel,
        method: Method,
        method_name: String,
        state: RunState,
        start: Instant,
    ) -> Result<RunReport> {
        let best_epoch = match &state.best {
            Some(b) => {
                model.restore(&b.weights)?;
                b.epoch
            }
            None => state.records.len().saturating_sub(1),
        };
        self.method = Some(method);
        Ok(RunReport {
            config: self.config.clone(),
            method: method_name,
            tasks: model.task_names(),
            epochs: state.records,
            best_epoch,
            stopped_early: state.stopped_early,
            seconds: state.seconds + start.elapsed().as_secs_f64(),
            test: None,
            delta_m: None,
            diagnostics: state.samples,
        })
    }

    fn save_checkpoint(
        &self,
        path: &Path,
        parts: &mut Parts<'_>,
        state: &RunState,
        elapsed: f64,
    ) -> Result<()> {
        let _span = tracing::info_span!("checkpoint", path = %path.display()).entered();
        run_state::save(path, parts, state, elapsed)
    }
}
