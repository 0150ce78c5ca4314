//! What a fit must carry from one epoch to the next, and its checkpoint: with the
//! weights, the optimiser moments, the method's state and the shuffling generator's
//! position, it is everything a resumed run needs to continue exactly where the saved
//! one was.

use crate::config::TrainerConfig;
use crate::diagnostics::GradientSample;
use crate::early_stopping::EarlyStopping;
use crate::evaluate::Evaluation;
use crate::model::MultiTaskModel;
use crate::plan::Plan;
use crate::report::EpochRecord;
use crate::task_optimizers::TaskOptimizers;
use mtl_core::checkpoint::Checkpoint;
use mtl_core::{Error, Result};
use mtl_losses::Method;
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::Tensor;

/// The best epoch so far under early stopping, with a copy of its weights.
#[derive(Debug)]
pub(crate) struct Best {
    pub score: f64,
    pub epoch: usize,
    pub weights: Vec<(String, Tensor)>,
}

/// The loop's progress between epochs.
#[derive(Debug, Default)]
pub(crate) struct RunState {
    /// The next epoch to run.
    pub epoch: usize,
    /// The global step count.
    pub step: u64,
    pub records: Vec<EpochRecord>,
    pub best: Option<Best>,
    pub since_best: usize,
    pub stopped_early: bool,
    /// Wall-clock seconds spent in earlier (checkpointed) sessions of this run.
    pub seconds: f64,
    /// Gradient diagnostics sampled so far.
    pub samples: Vec<GradientSample>,
}

impl RunState {
    /// Early stopping `es` scores epoch `epoch`'s validation: a new best keeps a copy of the model's weights,
    /// otherwise the wait grows and may end the run.
    pub(crate) fn observe(
        &mut self,
        es: &EarlyStopping,
        validation: &Evaluation,
        epoch: usize,
        model: &MultiTaskModel,
    ) -> Result<()> {
        let score = es.monitor.score(validation).ok_or_else(|| {
            Error::config(format!(
                "early-stopping monitor {:?} is not among the validation metrics",
                es.monitor
            ))
        })?;
        let improved = self
            .best
            .as_ref()
            .is_none_or(|b| score > b.score + es.min_delta);
        if improved {
            self.best = Some(Best {
                score,
                epoch,
                weights: model.snapshot(),
            });
            self.since_best = 0;
        } else {
            self.since_best += 1;
            self.stopped_early = self.since_best >= es.patience;
        }
        Ok(())
    }
}

/// The JSON part of a checkpoint.
#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    tasks: Vec<String>,
    method: String,
    config: TrainerConfig,
    train_rows: Vec<usize>,
    epoch: usize,
    step: u64,
    optimizer_steps: Vec<u64>,
    position: serde_json::Value,
    method_state: serde_json::Value,
    method_parameters: usize,
    records: Vec<EpochRecord>,
    best: Option<(f64, usize)>,
    since_best: usize,
    stopped_early: bool,
    seconds: f64,
    #[serde(default)]
    samples: Vec<GradientSample>,
}

/// Everything about the loop that the checkpoint must match, and nothing that may
/// change on resume (the epoch budget, where and how often to checkpoint, what to
/// measure, display).
fn resume_key(cfg: &TrainerConfig) -> TrainerConfig {
    TrainerConfig {
        epochs: 0,
        checkpoint: None,
        diagnostics: None,
        progress: false,
        tracking: None,
        ..cfg.clone()
    }
}

/// What [`save`] and [`load`] act on.
pub(crate) struct Parts<'a, 'b> {
    pub cfg: &'a TrainerConfig,
    pub model: &'a mut MultiTaskModel,
    pub method: &'a mut Method,
    pub optimizer: &'a mut TaskOptimizers,
    pub plan: &'a mut Plan<'b>,
}

/// Writes the checkpoint of the run after `state.epoch - 1` epochs.
pub(crate) fn save(
    path: &Path,
    parts: &mut Parts<'_, '_>,
    state: &RunState,
    elapsed: f64,
) -> Result<()> {
    let (opt_tensors, optimizer_steps) = parts.optimizer.state();
    let method_state = parts.method.state();
    let method_params = parts.method.parameters();
    let saved = Saved {
        tasks: parts.model.task_names(),
        method: parts.method.name().to_string(),
        config: parts.cfg.clone(),
        train_rows: parts.plan.train_rows(),
        epoch: state.epoch,
        step: state.step,
        optimizer_steps,
        position: parts.plan.position(),
        method_state,
        method_parameters: method_params.len(),
        records: state.records.clone(),
        best: state.best.as_ref().map(|b| (b.score, b.epoch)),
        since_best: state.since_best,
        stopped_early: state.stopped_early,
        seconds: state.seconds + elapsed,
        samples: state.samples.clone(),
    };
    let json = serde_json::to_value(&saved)
        .map_err(|e| Error::config(format!("run state is not serialisable: {e}")))?;
    let mut ckpt = Checkpoint::new(json);
    ckpt.extend(None, parts.model.snapshot());
    ckpt.extend(Some("optimizer"), opt_tensors);
    ckpt.extend(
        Some("method"),
        method_params
            .into_iter()
            .enumerate()
            .map(|(i, t)| (i.to_string(), t)),
    );
    if let Some(b) = &state.best {
        ckpt.extend(
            Some("best"),
            b.weights
                .iter()
                .map(|(n, t)| (n.clone(), t.shallow_clone())),
        );
    }
    ckpt.save(path)
}

/// Restores a checkpoint into freshly built parts and returns the loop state to
/// continue from. Anything that does not match (tasks, method, configuration, the
/// model's variables and shapes, the training set size) is an [`Error::Checkpoint`].
pub(crate) fn load(path: &Path, parts: &mut Parts<'_, '_>) -> Result<RunState> {
    let mismatch = |message: String| Error::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let ckpt = Checkpoint::load(path)?;
    let saved: Saved = serde_json::from_value(ckpt.state.clone())
        .map_err(|e| mismatch(format!("not a trainer checkpoint: {e}")))?;
    if saved.tasks != parts.model.task_names() {
        return Err(mismatch(format!(
            "saved for tasks {:?}, the model has {:?}",
            saved.tasks,
            parts.model.task_names()
        )));
    }
    let method = parts.method.name();
    if saved.method != method {
        return Err(mismatch(format!(
            "saved with method `{}`, resuming with `{method}`",
            saved.method
        )));
    }
    if resume_key(&saved.config) != resume_key(parts.cfg) {
        return Err(mismatch(format!(
            "saved with a different trainer configuration (only `epochs` and the \
             checkpoint policy may change on resume): saved {:?}, now {:?}",
            resume_key(&saved.config),
            resume_key(parts.cfg)
        )));
    }
    if saved.train_rows != parts.plan.train_rows() {
        return Err(mismatch(format!(
            "saved for {:?} training rows, resuming with {:?}",
            saved.train_rows,
            parts.plan.train_rows()
        )));
    }

    let weights = ckpt.group(None);
    let vars = parts.model.var_store().variables();
    if weights.len() != vars.len() {
        return Err(mismatch(format!(
            "holds {} model variables, the model has {}",
            weights.len(),
            vars.len()
        )));
    }
    for (name, t) in &weights {
        let v = vars
            .get(name)
            .ok_or_else(|| mismatch(format!("variable `{name}` is not in the model")))?;
        if v.size() != t.size() {
            return Err(mismatch(format!(
                "variable `{name}` has shape {:?}, the model's is {:?}",
                t.size(),
                v.size()
            )));
        }
    }
    parts.model.restore(&weights)?;

    let params = parts.method.parameters();
    let saved_params = ckpt.group(Some("method"));
    if params.len() != saved.method_parameters || saved_params.len() != params.len() {
        return Err(mismatch(format!(
            "holds {} method parameters, the method has {}",
            saved_params.len(),
            params.len()
        )));
    }
    tch::no_grad(|| -> Result<()> {
        for (i, p) in params.iter().enumerate() {
            let (_, t) = saved_params
                .iter()
                .find(|(n, _)| *n == i.to_string())
                .ok_or_else(|| mismatch(format!("method parameter {i} is missing")))?;
            if p.size() != t.size() {
                return Err(mismatch(format!(
                    "method parameter {i} has the wrong shape"
                )));
            }
            p.shallow_clone().f_copy_(t)?;
        }
        Ok(())
    })?;
    parts.method.load_state(&saved.method_state)?;
    parts
        .optimizer
        .load_state(&ckpt.group(Some("optimizer")), &saved.optimizer_steps)
        .map_err(|e| mismatch(e.to_string()))?;
    parts
        .plan
        .seek(&saved.position)
        .map_err(|e| mismatch(e.to_string()))?;

    let best = match saved.best {
        Some((score, epoch)) => {
            let weights = ckpt.group(Some("best"));
            if weights.len() != vars.len() {
                return Err(mismatch("the best-epoch weights are incomplete".into()));
            }
            Some(Best {
                score,
                epoch,
                weights,
            })
        }
        None => None,
    };
    tracing::info!(path = %path.display(), epoch = saved.epoch, step = saved.step, "resumed from checkpoint");
    Ok(RunState {
        epoch: saved.epoch,
        step: saved.step,
        records: saved.records,
        best,
        since_best: saved.since_best,
        stopped_early: saved.stopped_early,
        seconds: saved.seconds,
        samples: saved.samples,
    })
}
