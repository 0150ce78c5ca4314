//! Training on heterogeneous tasks, each with its own dataset and inputs: every step a
//! seeded [`TaskSchedule`] draws some tasks and one batch of each drawn task's own rows;
//! each batch runs through its task's path of the model (a shared trunk behind
//! task-specific inputs, e.g. [`MultiInput`](mtl_core::MultiInput)), and the task
//! losses are combined by the configured method. Only the shared parameters and the
//! drawn tasks' own parameters are updated. Validation scores each task on its own rows.

use crate::early_stopping::EarlyStopping;
use crate::evaluate::{evaluate_multi_input, Evaluation};
use crate::freeze::FreezeGuard;
use crate::model::MultiTaskModel;
use crate::multi_input_step::{backward_multi_input_step, rep_grad_unsupported};
use crate::progress::{should_draw, Progress};
use crate::report::{EpochRecord, RunReport};
use crate::run_state::RunState;
use crate::step::GradMode;
use crate::task_optimizers::TaskOptimizers;
use crate::trainer::{end_epoch, epoch_seed, Trainer, TrainerConfig};
use mtl_core::{clip_grad_norm, params, Error, Result};
use mtl_data::{MultiInputData, ScheduleConfig, TaskSampling};
use mtl_losses::Method;
use std::time::Instant;

impl Trainer {
    /// Trains `model` on tasks that each bring their own dataset (`train`: task `k`'s
    /// rows, possibly `w_k` features wide), validating each task on its own rows of
    /// `validation` after every epoch when given (early stopping as in
    /// [`Trainer::fit`]).
    ///
    /// Each step draws tasks with `sampling` ([`TrainerConfig::tasks_per_step`] of them,
    /// or all with [`TaskSampling::All`]) and a `batch_size` batch of each drawn task's
    /// rows, seeded by the run seed; an epoch is
    /// [`TaskSchedule::steps_per_epoch`](mtl_data::TaskSchedule::steps_per_epoch) steps
    /// (about one pass over every task's rows). The model runs task `k`'s batch through
    /// [`MultiTaskModel::forward_task`] and head `k` gives its loss; the K losses are
    /// combined by the method as described at [`backward_multi_input_step`]: a task not
    /// drawn has an exact zero loss (a zero Jacobian row), so methods that keep per-task
    /// history or seek a common descent direction (UW, DWA, GradNorm, MGDA, Nash-MTL…)
    /// belong with [`TaskSampling::All`]. The shared parameters and the drawn tasks'
    /// parameters are updated; the others are left alone (their optimiser state too).
    ///
    /// An epoch's `train_losses[k]` is task k's mean loss over the steps that drew it
    /// (0 when none did). Rep-grad mode with a gradient-level method, checkpoints,
    /// resuming and gradient diagnostics are configuration errors here.
    pub fn fit_multi_input(
        &mut self,
        model: &mut MultiTaskModel,
        train: &MultiInputData,
        validation: Option<&MultiInputData>,
        sampling: TaskSampling,
    ) -> Result<RunReport> {
        let cfg = self.config().clone();
        let k = model.num_tasks();
        check_inputs(&cfg, k, train, validation)?;
        if self.resume.is_some() {
            return Err(Error::config(
                "fit_multi_input cannot resume from a checkpoint; use fit",
            ));
        }
        let (mut method, method_name) = self.take_method(k)?;
        if matches!(method, Method::Aggregator(_)) && cfg.grad_mode == GradMode::Representation {
            self.method = Some(method);
            return Err(rep_grad_unsupported());
        }
        let _frozen = FreezeGuard::apply(model.var_store(), &cfg.frozen)?;
        let groups = model.param_groups()?;
        let extra = match &method {
            Method::Weighting(w) => w.parameters(),
            Method::Aggregator(_) => Vec::new(),
        };
        let mut opt = TaskOptimizers::new(&cfg.optimizer, &groups, extra)?;
        params::ensure_grads(opt.params())?;
        let mut schedule = train.schedule(
            ScheduleConfig::new(sampling, cfg.batch_size)
                .tasks_per_step(cfg.tasks_per_step)
                .seed(cfg.seed),
        )?;
        let device = model.device();
        let steps_per_epoch = schedule.steps_per_epoch();
        let total_steps = steps_per_epoch * cfg.epochs as u64;
        let base_lr = cfg.optimizer.lr();

        let mut state = RunState::default();
        let start = Instant::now();
        let progress = Progress::new(
            should_draw(cfg.progress),
            0,
            cfg.epochs,
            steps_per_epoch,
            model.task_names(),
        );
        let _fit_span =
            tracing::info_span!("fit_multi_input", method = %method_name, tasks = k).entered();
        while state.epoch < cfg.epochs && !state.stopped_early {
            let epoch = state.epoch;
            let _epoch_span = tracing::info_span!("epoch", epoch).entered();
            let t0 = Instant::now();
            mtl_core::seed_everything(epoch_seed(cfg.seed, epoch));
            let mut loss_sum = vec![0.0; k];
            let mut drawn_count = vec![0.0; k];
            let mut weight_sum: Vec<f64> = Vec::new();
            let mut updates = 0.0;
            let mut norm_sum = 0.0;
            for _ in 0..steps_per_epoch {
                let step = state.step;
                state.step += 1;
                let _step_span = tracing::debug_span!("step", step).entered();
                let mut parts = schedule.next_step();
                if cfg.drop_last {
                    parts.retain(|(_, b)| b.len() == cfg.batch_size);
                }
                if parts.is_empty() {
                    continue;
                }
                let parts: Vec<_> = parts
                    .into_iter()
                    .map(|(t, b)| (t, b.to_device(device)))
                    .collect();
                let mut drawn = vec![false; k];
                for (t, _) in &parts {
                    if let Some(d) = drawn.get_mut(*t) {
                        *d = true;
                    }
                }
                opt.set_lr(base_lr * cfg.lr_schedule.factor(step, total_steps));
                opt.zero_grad();
                let out = backward_multi_input_step(
                    model,
                    &groups,
                    &mut method,
                    cfg.grad_mode,
                    &parts,
                    step,
                    epoch,
                )?;
                if let Some(max_norm) = cfg.clip_grad_norm {
                    norm_sum += clip_grad_norm(opt.params(), max_norm)?;
                }
                opt.step(&drawn)?;
                for t in (0..k).filter(|&t| drawn[t]) {
                    loss_sum[t] += out.losses[t];
                    drawn_count[t] += 1.0;
                }
                if weight_sum.len() != out.weights.len() {
                    weight_sum = vec![0.0; out.weights.len()];
                }
                for (s, w) in weight_sum.iter_mut().zip(&out.weights) {
                    *s += w;
                }
                updates += 1.0;
                tracing::trace!(step, losses = ?out.losses, "step");
                progress.step(|| means(&loss_sum, &drawn_count));
            }
            let validation_eval: Option<Evaluation> = match validation {
                Some(v) => {
                    let _eval_span = tracing::info_span!("eval", rows = ?v.sizes()).entered();
                    Some(evaluate_multi_input(model, v, cfg.batch_size.max(256))?)
                }
                None => None,
            };
            let per_update = |x: f64| if updates > 0.0 { x / updates } else { 0.0 };
            let record = EpochRecord {
                epoch,
                train_losses: means(&loss_sum, &drawn_count),
                task_weights: weight_sum.iter().map(|s| per_update(*s)).collect(),
                validation: validation_eval,
                lr: opt.lr(),
                grad_norm: cfg.clip_grad_norm.map(|_| per_update(norm_sum)),
                seconds: t0.elapsed().as_secs_f64(),
            };
            end_epoch(&cfg, record, &mut state, model, &progress)?;
        }
        progress.finish();
        self.finish(model, method, method_name, state, start)
    }
}

/// `sums[k] / counts[k]`, 0 where the count is 0.
fn means(sums: &[f64], counts: &[f64]) -> Vec<f64> {
    sums.iter()
        .zip(counts)
        .map(|(s, n)| if *n > 0.0 { s / n } else { 0.0 })
        .collect()
}

/// The checks that need no model state: task counts, what this loop does not support,
/// and batch sizes that `drop_last` would leave without a batch.
fn check_inputs(
    cfg: &TrainerConfig,
    k: usize,
    train: &MultiInputData,
    validation: Option<&MultiInputData>,
) -> Result<()> {
    for (what, data) in [("training", Some(train)), ("validation", validation)] {
        if let Some(d) = data.filter(|d| d.num_tasks() != k) {
            return Err(Error::TaskCount {
                context: format!("multi-input {what} data vs model"),
                expected: k,
                got: d.num_tasks(),
            });
        }
    }
    if let (Some(EarlyStopping { monitor, .. }), None) = (&cfg.early_stopping, validation) {
        return Err(Error::config(format!(
            "early stopping on {monitor:?} needs a validation set"
        )));
    }
    if cfg.checkpoint.is_some() {
        return Err(Error::config(
            "fit_multi_input does not write checkpoints; leave TrainerConfig::checkpoint unset",
        ));
    }
    if cfg.diagnostics.is_some() {
        return Err(Error::config(
            "fit_multi_input does not sample gradient diagnostics; leave \
             TrainerConfig::diagnostics unset",
        ));
    }
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
    Ok(())
}
