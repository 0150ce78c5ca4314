//! The training loop: epochs of seeded mini-batches, one method (weighting or
//! aggregator) combining the tasks, validation each epoch, early stopping with the best
//! weights restored, checkpoints to resume from, and a [`RunReport`].
//!
//! Randomness is owned by the run: batches are shuffled by a generator derived from the
//! seed, and libtorch's generator (dropout) is re-seeded from the seed at the start of
//! every epoch, so a run resumed from an epoch-end checkpoint continues bit for bit.
//! A gradual-unfreezing schedule acts at epoch starts too, so a resumed run is frozen
//! as the uninterrupted one was at every epoch.

use crate::config::TrainerConfig;
use crate::diagnostics;
use crate::freeze::Freezing;
use crate::model::MultiTaskModel;
use crate::plan::Plan;
use crate::progress::{should_draw, Progress};
use crate::regime::{per_task_refused, Regime};
use crate::report::{EpochRecord, RunReport};
use crate::run_state::{self, Parts, RunState, Start};
use crate::step::{backward_losses, check_representation, GradMode, StepOutcome};
use crate::task_optimizers::TaskOptimizers;
use crate::tracking::{Hooks, Observers, RunStart, StepRecord, TrainingObserver};
use mtl_core::checkpoint::Checkpoint;
use mtl_core::{clip_grad_norm, derive_rng, params, Collective, Error, ParamGroups, Result};
use mtl_data::{JointData, MultiInputData, TaskSampling};
use mtl_losses::Method;
use rand::RngCore;
use std::path::PathBuf;
use std::time::Instant;

/// Trains a [`MultiTaskModel`].
#[derive(Debug)]
pub struct Trainer {
    config: TrainerConfig,
    pub(crate) method: Option<Method>,
    pub(crate) resume: Option<PathBuf>,
    force_resume: bool,
    preprocessing: serde_json::Value,
    observers: Observers,
    group: Group,
}

/// The data-parallel group a trainer runs in, if any.
#[derive(Default)]
struct Group(Option<Box<dyn Collective + Send>>);

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(g) => write!(f, "rank {} of {}", g.rank(), g.world_size()),
            None => f.write_str("single process"),
        }
    }
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
        state.observe(es, ev, epoch, model)?;
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

/// The epoch a checkpoint resumes at (its count of finished epochs), read from its
/// header; 0 when it cannot be read, which the resume itself then reports.
fn resume_epoch(path: &std::path::Path) -> usize {
    Checkpoint::peek_state(path)
        .ok()
        .and_then(|s| s.get("epoch")?.as_u64())
        .and_then(|e| usize::try_from(e).ok())
        .unwrap_or(0)
}

/// Moves the freeze on to epoch `epoch` ([`TrainerConfig::unfreeze`]): when parameters
/// unfreeze, the groups are split again and the new ones get optimisers of their own
/// (fresh moments and step counts), with gradients allocated. Returns whether any did.
fn unfreeze(
    freezing: &mut Freezing,
    model: &MultiTaskModel,
    cfg: &TrainerConfig,
    epoch: usize,
    groups: &mut ParamGroups,
    opt: &mut TaskOptimizers,
) -> Result<bool> {
    if !freezing.advance(model.var_store(), cfg, epoch)? {
        return Ok(false);
    }
    *groups = model.param_groups()?;
    opt.add_unfrozen(groups, epoch)?;
    params::ensure_grads(opt.params())?;
    tracing::info!(
        epoch,
        shared = groups.shared.len(),
        "unfroze parameters ({} shared scalars now train)",
        groups.shared_numel()
    );
    Ok(true)
}

/// A shape error in the first step after an unfreeze widened the shared parameters
/// most likely comes from a method that keeps K×d state across steps (MoCo, DB-MTL in
/// parameter mode), sized to the old width: say so rather than leave a bare shape.
fn explain_width_change(e: Error, widened: Option<(usize, i64, i64)>, method: &str) -> Error {
    match (e, widened) {
        (e @ Error::Shape { .. }, Some((epoch, before, after))) => Error::config(format!(
            "the unfreeze at epoch {epoch} widened the shared parameters from {before} to \
             {after} scalars, and method `{method}` failed on the new width ({e}): it keeps \
             state sized to the task Jacobian, which an unfreeze of shared parameters \
             changes; unfreeze only task-specific parameters, or use \
             GradMode::Representation, whose width does not depend on the parameters"
        )),
        (e, _) => e,
    }
}

impl Trainer {
    /// A trainer that builds its method from `config.method` by name.
    ///
    /// Errors: [`Error::Config`] for invalid settings; [`Error::Unknown`] (listing the
    /// registered names) when `config.method` names no registered method, here rather
    /// than at the first fit. A custom method goes in with [`Trainer::with_method`].
    pub fn new(config: TrainerConfig) -> Result<Self> {
        config.check()?;
        mtl_losses::registry::info(&config.method)?;
        Ok(Trainer {
            config,
            method: None,
            resume: None,
            force_resume: false,
            preprocessing: serde_json::Value::Null,
            observers: Observers::default(),
            group: Group::default(),
        })
    }

    /// Trains data-parallel as one rank of `group` (e.g. an `mtl_dist::ProcessGroup`):
    /// every rank draws the same batches and trains on its own block of each
    /// ([`StepData::shard`](crate::StepData::shard)), and the engine reduces at its
    /// seam so that every rank takes the step one process would take on the whole
    /// batch, for every method (see `mtl_losses::engine::Backward::collective`). At
    /// the start the ranks check they run the same configuration, tasks, method and
    /// data, and take rank 0's weights; rank 0 alone writes checkpoints and tracking
    /// files (every rank can resume from them, with any number of ranks). Dropout
    /// draws its masks per rank, so a model with dropout matches a single process in
    /// distribution, not bit for bit.
    pub fn distributed(mut self, group: impl Collective + Send + 'static) -> Self {
        self.group = Group(Some(Box::new(group)));
        self
    }

    /// The data-parallel world size this trainer runs in (1 without a group).
    pub fn world_size(&self) -> usize {
        self.group.0.as_ref().map_or(1, |g| g.world_size())
    }

    /// Reports every step and epoch of the next fits to `observer` (besides the
    /// metrics files of [`TrainerConfig::tracking`]).
    pub fn observe(mut self, observer: impl TrainingObserver + 'static) -> Self {
        self.observers.0.push(Box::new(observer));
        self
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
    ///
    /// The checkpoint records what the run trained on: the training rows and a SHA-256
    /// of their features and targets, the [preprocessing](Trainer::preprocessing), the
    /// configuration, and the epoch count when the learning-rate schedule spreads over
    /// the run's total steps. Resuming with any of them different is an
    /// [`Error::Checkpoint`] naming what differs, unless [`Trainer::force_resume`].
    pub fn resume_from(mut self, path: impl Into<PathBuf>) -> Self {
        self.resume = Some(path.into());
        self
    }

    /// With `true`, a resume whose data, preprocessing or configuration differ from the
    /// checkpoint's goes ahead with a warning naming each difference instead of failing
    /// (tasks, method and model shapes must still match: they cannot be restored
    /// otherwise).
    pub fn force_resume(mut self, force: bool) -> Self {
        self.force_resume = force;
        self
    }

    /// Describes how the data given to the fit was prepared (for instance
    /// `{"standardize": true}`): stored in checkpoints, and a resume with a different
    /// description is refused, naming the fields that differ.
    pub fn preprocessing(mut self, description: serde_json::Value) -> Self {
        self.preprocessing = description;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }

    /// Trains `model` on `train`, validating on `validation` after every epoch when
    /// given. With early stopping the model ends with the best epoch's weights.
    ///
    /// The data is any [`JointData`]: a [`MultiTaskDataset`](mtl_data::MultiTaskDataset) of table rows, a
    /// [`TensorDataset`](mtl_data::TensorDataset) of images, token ids or per-pixel
    /// targets, or a user's own.
    pub fn fit<D: JointData>(
        &mut self,
        model: &mut MultiTaskModel,
        train: &D,
        validation: Option<&D>,
    ) -> Result<RunReport> {
        let train = as_dyn(train);
        let validation = validation.map(as_dyn);
        let plan = Plan::joint(&self.config, model.num_tasks(), train, validation)?;
        self.run(model, plan)
    }

    /// Trains `model` on tasks that each bring their own dataset (`train`: task `k`'s
    /// rows, possibly `w_k` features wide), validating each task on its own rows of
    /// `validation` after every epoch when given. Checkpoints, resuming, diagnostics,
    /// schedules and early stopping work as in [`Trainer::fit`]: both are one loop.
    ///
    /// Each step draws tasks with `sampling` ([`TrainerConfig::tasks_per_step`] of them,
    /// or all with [`TaskSampling::All`]) and a `batch_size` batch of each drawn task's
    /// rows, seeded by the run seed; an epoch is
    /// [`TaskSchedule::steps_per_epoch`](mtl_data::TaskSchedule::steps_per_epoch) steps
    /// (about one pass over every task's rows). The model runs task `k`'s batch through
    /// [`MultiTaskModel::forward_task`] and head `k` gives its loss; the K losses are
    /// combined by the method as described at
    /// [`backward_multi_input_step`](crate::backward_multi_input_step): a task not drawn
    /// has an exact zero loss (a zero Jacobian row), so methods that keep per-task
    /// history or seek a common descent direction (UW, DWA, GradNorm, MGDA, Nash-MTL…)
    /// belong with [`TaskSampling::All`]. The shared parameters and the drawn tasks'
    /// parameters are updated; the others are left alone (their optimiser state too).
    ///
    /// An epoch's `train_losses[k]` is task k's mean loss over the steps that drew it
    /// (0 when none did). Rep-grad mode with a gradient-level method is a configuration
    /// error here: no one representation is shared by the tasks' separate batches.
    pub fn fit_multi_input(
        &mut self,
        model: &mut MultiTaskModel,
        train: &MultiInputData,
        validation: Option<&MultiInputData>,
        sampling: TaskSampling,
    ) -> Result<RunReport> {
        let plan = Plan::per_task(&self.config, model.num_tasks(), train, validation, sampling)?;
        self.run(model, plan)
    }

    /// The one training loop, over either plan.
    fn run(&mut self, model: &mut MultiTaskModel, mut plan: Plan<'_>) -> Result<RunReport> {
        let group = self.group.0.take();
        let world = group.as_ref().map_or(1, |g| g.world_size());
        let result = self.run_in(
            model,
            &mut plan,
            group.as_deref().map(|g| g as &dyn Collective),
        );
        self.group.0 = group;
        result.map(|report| RunReport {
            world_size: world,
            ..report
        })
    }

    /// [`Trainer::run`] on one rank of `group` (or alone).
    fn run_in(
        &mut self,
        model: &mut MultiTaskModel,
        plan: &mut Plan<'_>,
        group: Option<&dyn Collective>,
    ) -> Result<RunReport> {
        let group = group.filter(|g| g.world_size() > 1);
        let mut cfg = self.config.clone();
        let data_hash = run_state::DataHash::default();
        if let Some(g) = group {
            crate::data_parallel::agree_on_run(g, &cfg, model, plan, &data_hash)?;
            if g.rank() != 0 {
                // Rank 0 writes for the group; the others resume from what it wrote.
                cfg.checkpoint = None;
                cfg.tracking = None;
                cfg.progress = false;
            }
        }
        let k = model.num_tasks();
        if let (Some(es), false) = (&cfg.early_stopping, plan.has_validation()) {
            return Err(Error::config(format!(
                "early stopping on {:?} needs a validation set",
                es.monitor
            )));
        }
        let mut method = self.take_method(k)?;
        if plan.per_task_steps()
            && method.is_gradient_level()
            && cfg.grad_mode == GradMode::Representation
        {
            self.method = Some(method);
            return Err(Error::config(
                "rep-grad mode (GradMode::Representation) needs one shared representation \
                 of one batch; with tasks that each bring their own batch there is none: \
                 use GradMode::Parameters",
            ));
        }
        if method.meta().is_some() {
            // Auto-λ: a validation batch beside every step, in one process.
            let refusal = match group {
                Some(_) => Err(Error::config(format!(
                    "method `{}` learns its weights in one process; data-parallel training \
                     with it is not supported",
                    method.name()
                ))),
                None => plan.draw_meta_batches(cfg.seed, method.name()),
            };
            if let Err(e) = refusal {
                self.method = Some(method);
                return Err(e);
            }
        }
        let regime_on = cfg.semi_supervised.is_some() || cfg.adversarial.is_some();
        if regime_on {
            let refusal = if plan.per_task_steps() {
                Some(per_task_refused())
            } else if group.is_some() {
                Some(Error::config(
                    "semi-supervised and adversarial training run in one process;                      data-parallel training with them is not supported",
                ))
            } else {
                None
            };
            if let Some(e) = refusal {
                self.method = Some(method);
                return Err(e);
            }
        }
        if let (Some(_), Plan::Joint { train, .. }) = (&cfg.semi_supervised, &*plan) {
            if let Err(e) = crate::semi::require_unlabelled(*train, cfg.batch_size) {
                self.method = Some(method);
                return Err(e);
            }
        }
        // Frozen variables stop requiring gradients before the groups are split, so they
        // are neither in the Jacobian nor in the optimiser. A resumed run rebuilds what
        // trained when its checkpoint was written (after the epoch before the one it
        // resumes at): the first epoch's freeze, then each unfreeze before then, so its
        // optimisers take the checkpoint's state; the loop then unfreezes at the
        // epoch's start as the uninterrupted run did.
        let resumed_at = self.resume.as_deref().map_or(0, resume_epoch);
        let mut freezing = Freezing::start(model.var_store(), &cfg, 0)?;
        let mut groups = model.param_groups()?;
        let mut opt = TaskOptimizers::new(
            &cfg.optimizer,
            &groups,
            method.parameters(),
            plan.per_task_steps(),
        )?;
        for epoch in cfg.unfreeze_epochs() {
            if epoch < resumed_at {
                unfreeze(&mut freezing, model, &cfg, epoch, &mut groups, &mut opt)?;
            }
        }
        params::ensure_grads(opt.params())?;
        let device = model.device();
        let steps_per_epoch = plan.steps_per_epoch();
        let total_steps = steps_per_epoch
            .checked_mul(cfg.epochs as u64)
            .ok_or_else(|| Error::config(format!("{} epochs is too many steps", cfg.epochs)))?;
        let base_lr = cfg.optimizer.lr();
        let mut regime = Regime::new(&cfg, model, steps_per_epoch);

        // Before the first step: the checkpoint file is locked and this run's to write,
        // and a resumed run matches its checkpoint.
        let (mut state, _checkpoint_lock) = run_state::start(
            Start {
                resume: self.resume.take(),
                force: self.force_resume,
                preprocessing: &self.preprocessing,
                data: &data_hash,
            },
            &mut Parts {
                cfg: &cfg,
                model,
                method: &mut method,
                optimizer: &mut opt,
                plan: &mut *plan,
                teacher: regime.teacher.as_mut(),
            },
        )?;

        if let Some(g) = group {
            // A resumed run holds the checkpoint's weights on every rank already; a
            // fresh one takes rank 0's initialisation, as DDP does.
            crate::data_parallel::broadcast_weights(g, model, &method)?;
        }
        let start = Instant::now();
        let progress = Progress::new(
            should_draw(cfg.progress),
            state.epoch,
            cfg.epochs,
            steps_per_epoch,
            model.task_names(),
        );
        let tasks = model.task_names();
        let mut hooks = Hooks::start(
            &mut self.observers.0,
            cfg.tracking.as_ref(),
            &RunStart {
                tasks: &tasks,
                method: method.name(),
                epoch: state.epoch,
                step: state.step,
                steps_per_epoch,
            },
        )?;
        let _fit_span = tracing::info_span!("fit", method = %method.name(), tasks = k).entered();
        // (epoch, width before, width after) of an unfreeze that widened the shared
        // parameters, until the first step after it succeeds.
        let mut widened: Option<(usize, i64, i64)> = None;
        while state.epoch < cfg.epochs && !state.stopped_early {
            let epoch = state.epoch;
            let _epoch_span = tracing::info_span!("epoch", epoch).entered();
            // The shared width before this epoch's unfreeze, until a step has run with
            // the new one (see `explain_width_change`).
            let width = groups.shared_numel();
            if unfreeze(&mut freezing, model, &cfg, epoch, &mut groups, &mut opt)? {
                let now = groups.shared_numel();
                if now != width {
                    widened = Some((epoch, width, now));
                }
            }
            let t0 = Instant::now();
            mtl_core::seed_everything(epoch_seed(cfg.seed, epoch));
            // Epoch-scheduled architectures (LTB's temperature) follow the epoch; a
            // resumed run calls it again at the epoch it resumes at.
            model.start_epoch(epoch, cfg.epochs)?;
            let mut sums = EpochSums::new(k);
            for data in plan.epoch(&cfg)? {
                let data = data?;
                let step = state.step;
                state.step += 1;
                let Some((data, meta_data)) = data else {
                    continue;
                };
                let _step_span = tracing::debug_span!("step", step).entered();
                let data = match group {
                    Some(g) => data.shard(g.rank(), g.world_size()),
                    None => data,
                }
                .to_device(device);
                opt.set_lr(base_lr * cfg.lr_schedule.factor(step, total_steps));
                if let Some(d) = cfg.diagnostics.as_ref().filter(|d| d.due(step)) {
                    state.samples.push(diagnostics::sample(
                        d,
                        model,
                        &groups,
                        &data,
                        step,
                        epoch,
                        opt.lr(),
                    )?);
                }
                if let Some(val) = meta_data {
                    let (params, buffers, virtual_step) = opt.virtual_step();
                    crate::meta_step(
                        model,
                        &mut method,
                        &params,
                        &buffers,
                        virtual_step,
                        &data,
                        &val.to_device(device),
                        step,
                        cfg.seed,
                    )?;
                }
                opt.zero_grad();
                let out = check_representation(model, &method, cfg.grad_mode, &data)
                    .and_then(|()| regime.losses(model, &data, step))
                    .and_then(|losses| {
                        backward_losses(
                            model,
                            &groups,
                            &mut method,
                            cfg.grad_mode,
                            &data,
                            losses,
                            step,
                            epoch,
                            group.map(|g| (g, cfg.data_parallel)),
                        )
                    })
                    .map_err(|e| explain_width_change(e, widened, method.name()))?;
                widened = None;
                let norm = match cfg.clip_grad_norm {
                    Some(max_norm) => clip_grad_norm(opt.params(), max_norm)?,
                    None => 0.0,
                };
                let drawn = data.drawn(k);
                state
                    .divergence
                    .observe(&cfg.divergence, &out.losses, &drawn, step, |t| {
                        model.task_names().swap_remove(t)
                    })?;
                opt.step(&drawn)?;
                regime.after_update(model)?;
                sums.add(&out, &drawn, norm);
                hooks.step(&StepRecord {
                    step,
                    epoch,
                    losses: &out.losses,
                    drawn: &drawn,
                    weights: &out.weights,
                    lr: opt.lr(),
                    grad_norm: cfg.clip_grad_norm.map(|_| norm),
                })?;
                tracing::trace!(step, losses = ?out.losses, "step");
                progress.step(|| sums.mean_losses());
            }
            let record = EpochRecord {
                epoch,
                train_losses: sums.mean_losses(),
                task_weights: sums.mean_weights(),
                validation: plan.validate(model, &cfg)?,
                lr: opt.lr(),
                grad_norm: cfg.clip_grad_norm.map(|_| sums.mean_norm()),
                seconds: t0.elapsed().as_secs_f64(),
            };
            end_epoch(&cfg, record, &mut state, model, &progress)?;
            if let Some(record) = state.records.last() {
                hooks.epoch(record, state.step)?;
            }
            if let Some(policy) = &cfg.checkpoint {
                let last = state.epoch == cfg.epochs || state.stopped_early;
                if last || state.epoch % policy.every_epochs == 0 {
                    let _span =
                        tracing::info_span!("checkpoint", path = %policy.path.display()).entered();
                    run_state::save(
                        &policy.path,
                        &mut Parts {
                            cfg: &cfg,
                            model,
                            method: &mut method,
                            optimizer: &mut opt,
                            plan: &mut *plan,
                            teacher: regime.teacher.as_mut(),
                        },
                        &state,
                        start.elapsed().as_secs_f64(),
                    )?;
                }
            }
        }
        hooks.finish()?;
        progress.finish();
        self.finish(model, method, state, start)
    }

    /// The method to train with: the one given to [`Trainer::with_method`] (or kept
    /// from the last fit), else `config.method` by name.
    pub(crate) fn take_method(&mut self, k: usize) -> Result<Method> {
        match self.method.take() {
            Some(m) => Ok(m),
            None => mtl_losses::by_name_with(
                &self.config.method,
                k,
                self.config.seed,
                &self.config.method_params,
            ),
        }
    }

    /// Ends a fit: restores the best epoch's weights, keeps the method for the next fit
    /// and assembles the report.
    pub(crate) fn finish(
        &mut self,
        model: &mut MultiTaskModel,
        method: Method,
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
        let method_name = method.name().to_string();
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
            world_size: 1,
        })
    }
}

/// What an epoch record averages: each task's loss over the steps that drew it, the
/// task weights and gradient norms over the updates.
struct EpochSums {
    losses: Vec<f64>,
    drawn: Vec<f64>,
    weights: Vec<f64>,
    norm: f64,
    updates: f64,
}

impl EpochSums {
    fn new(k: usize) -> Self {
        EpochSums {
            losses: vec![0.0; k],
            drawn: vec![0.0; k],
            weights: Vec::new(),
            norm: 0.0,
            updates: 0.0,
        }
    }

    fn add(&mut self, out: &StepOutcome, drawn: &[bool], norm: f64) {
        for (t, l) in out.losses.iter().enumerate() {
            if drawn.get(t).copied().unwrap_or(false) {
                self.losses[t] += l;
                self.drawn[t] += 1.0;
            }
        }
        if self.weights.len() != out.weights.len() {
            self.weights = vec![0.0; out.weights.len()];
        }
        for (s, w) in self.weights.iter_mut().zip(&out.weights) {
            *s += w;
        }
        self.norm += norm;
        self.updates += 1.0;
    }

    fn per_update(&self, x: f64) -> f64 {
        if self.updates > 0.0 {
            x / self.updates
        } else {
            0.0
        }
    }

    fn mean_losses(&self) -> Vec<f64> {
        self.losses
            .iter()
            .zip(&self.drawn)
            .map(|(s, n)| if *n > 0.0 { s / n } else { 0.0 })
            .collect()
    }

    fn mean_weights(&self) -> Vec<f64> {
        self.weights.iter().map(|w| self.per_update(*w)).collect()
    }

    fn mean_norm(&self) -> f64 {
        self.per_update(self.norm)
    }
}

/// `data` as a trait object; a free function so the lifetime of the borrow carries over.
fn as_dyn<D: JointData>(data: &D) -> &dyn JointData {
    data
}
