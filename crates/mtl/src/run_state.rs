//! What a fit must carry from one epoch to the next, and its checkpoint: with the
//! weights, the optimiser moments, the method's state and the shuffling generator's
//! position, it is everything a resumed run needs to continue exactly where the saved
//! one was.
//!
//! A checkpoint also records what the run is: its tasks, method and configuration, the
//! training rows with a SHA-256 of their values, and the caller's description of the
//! preprocessing. A resume compares them all and names what differs; the same
//! comparison decides whether an existing file at the checkpoint path may be replaced
//! (only a checkpoint of this same run may).

use crate::config::TrainerConfig;
use crate::diagnostics::GradientSample;
use crate::divergence::DivergenceWatch;
use crate::early_stopping::EarlyStopping;
use crate::evaluate::Evaluation;
use crate::model::MultiTaskModel;
use crate::plan::Plan;
use crate::report::EpochRecord;
use crate::semi::Teacher;
use crate::task_optimizers::TaskOptimizers;
use mtl_core::checkpoint::Checkpoint;
use mtl_core::files::{self, OutputLock};
use mtl_core::{Error, Result};
use mtl_losses::Method;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
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
    /// The divergence guard's memory.
    pub divergence: DivergenceWatch,
    /// What the run trains on (filled when it checkpoints or resumes).
    pub identity: Identity,
}

/// What a run trains on, which its checkpoint records and a resume must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Identity {
    /// The training rows of each dataset.
    train_rows: Vec<usize>,
    /// SHA-256 over the training features and targets (values, masks, class counts).
    data_sha256: String,
    /// The caller's description of how the data was prepared.
    preprocessing: serde_json::Value,
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
    identity: Identity,
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
    samples: Vec<GradientSample>,
    divergence: DivergenceWatch,
    /// The mean teacher's update count, when the run has one (its weights are the
    /// checkpoint's `teacher.` tensors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    teacher_updates: Option<u64>,
}

/// Everything about the loop that the checkpoint must match, and nothing that may
/// change on resume (the epoch budget, where and how often to checkpoint, what to
/// measure, display, the divergence guard). The epoch budget does matter to a schedule
/// spread over the run's total steps; [`differences`] checks it then.
fn resume_key(cfg: &TrainerConfig) -> serde_json::Value {
    let key = TrainerConfig {
        epochs: 0,
        checkpoint: None,
        diagnostics: None,
        progress: false,
        divergence: Default::default(),
        tracking: None,
        ..cfg.clone()
    };
    serde_json::to_value(key).unwrap_or(serde_json::Value::Null)
}

/// The training data's SHA-256, computed at most once per fit: a data-parallel start
/// (ranks agree on it) and the checkpoint identity both need it, and hashing a large
/// dataset is not free.
#[derive(Debug, Default)]
pub(crate) struct DataHash(std::cell::OnceCell<String>);

impl DataHash {
    /// The hash of `plan`'s training data (the same plan on every call of one fit).
    pub(crate) fn of(&self, plan: &Plan<'_>) -> Result<String> {
        if let Some(h) = self.0.get() {
            return Ok(h.clone());
        }
        let h = data_sha256(plan)?;
        Ok(self.0.get_or_init(|| h).clone())
    }
}

/// The SHA-256 of the training data of `plan`, in hex.
fn data_sha256(plan: &Plan<'_>) -> Result<String> {
    let mut h = Sha256::new();
    match plan {
        Plan::Joint { train, .. } => train.fingerprint(&mut |b| h.update(b)),
        Plan::PerTask { train, .. } => {
            for k in 0..train.num_tasks() {
                train.task_data(k)?.fingerprint(&mut |b| h.update(b));
            }
        }
    }
    Ok(h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>())
}

/// The paths where two JSON values differ, as "`path`: saved A, now B".
fn json_differences(
    path: &str,
    saved: &serde_json::Value,
    now: &serde_json::Value,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (saved, now) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let none = Value::Null;
                let (x, y) = (a.get(key).unwrap_or(&none), b.get(key).unwrap_or(&none));
                json_differences(&join(key), x, y, out);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                json_differences(&format!("{path}[{i}]"), x, y, out);
            }
        }
        (a, b) if a != b => out.push(format!("`{path}`: saved {a}, now {b}")),
        _ => {}
    }
}

/// How a saved run differs from this one: what can never be resumed across (tasks,
/// method), and what a forced resume may go past (configuration, schedule length,
/// data, preprocessing).
fn differences(
    saved: &Saved,
    parts: &Parts<'_, '_>,
    identity: &Identity,
) -> (Vec<String>, Vec<String>) {
    let (mut hard, mut soft) = (Vec::new(), Vec::new());
    let tasks = parts.model.task_names();
    if saved.tasks != tasks {
        hard.push(format!("tasks: saved {:?}, now {tasks:?}", saved.tasks));
    }
    let method = parts.method.name();
    if saved.method != method {
        hard.push(format!("method: saved `{}`, now `{method}`", saved.method));
    }
    let mut config = Vec::new();
    json_differences(
        "",
        &resume_key(&saved.config),
        &resume_key(parts.cfg),
        &mut config,
    );
    soft.extend(config.into_iter().map(|d| format!("trainer setting {d}")));
    if parts.cfg.lr_schedule.uses_total() && saved.config.epochs != parts.cfg.epochs {
        soft.push(format!(
            "epochs: saved {}, now {} (the learning-rate schedule spreads over the run's \
             total steps, so the resumed run would follow another curve)",
            saved.config.epochs, parts.cfg.epochs
        ));
    }
    let saved_id = &saved.identity;
    if saved_id.train_rows != identity.train_rows {
        soft.push(format!(
            "training rows: saved {:?}, now {:?}",
            saved_id.train_rows, identity.train_rows
        ));
    } else if saved_id.data_sha256 != identity.data_sha256 {
        soft.push(format!(
            "training data: as many rows, other values (SHA-256 saved {}…, now {}…)",
            saved_id
                .data_sha256
                .get(..12)
                .unwrap_or(&saved_id.data_sha256),
            identity
                .data_sha256
                .get(..12)
                .unwrap_or(&identity.data_sha256)
        ));
    }
    let mut prep = Vec::new();
    json_differences(
        "",
        &saved_id.preprocessing,
        &identity.preprocessing,
        &mut prep,
    );
    soft.extend(prep.into_iter().map(|d| format!("preprocessing {d}")));
    (hard, soft)
}

/// Checks that the saved loop state is whole and fits `k` tasks, so that nothing
/// downstream (the report, its plots) meets a short record.
fn check_saved(saved: &Saved, k: usize) -> std::result::Result<(), String> {
    if saved.records.len() != saved.epoch {
        return Err(format!(
            "holds {} epoch records for {} epochs",
            saved.records.len(),
            saved.epoch
        ));
    }
    let square = |m: &[Vec<f64>]| m.len() == k && m.iter().all(|r| r.len() == k);
    for (i, r) in saved.records.iter().enumerate() {
        let fits = r.epoch == i
            && r.train_losses.len() == k
            && (r.task_weights.is_empty() || r.task_weights.len() == k)
            && r.validation
                .as_ref()
                .is_none_or(|v| v.tasks.len() == k && v.losses.len() == k && v.metrics.len() == k);
        if !fits {
            return Err(format!("epoch record {i} does not fit the run's {k} tasks"));
        }
    }
    if let Some((score, epoch)) = saved.best {
        if epoch >= saved.epoch || score.is_nan() {
            return Err(format!(
                "its best epoch {epoch} (score {score}) is not among its {} epochs",
                saved.epoch
            ));
        }
    }
    if saved.since_best > saved.epoch {
        return Err(format!(
            "waited {} epochs for an improvement in a run of {}",
            saved.since_best, saved.epoch
        ));
    }
    for (i, s) in saved.samples.iter().enumerate() {
        let fits = s.epoch < saved.epoch.max(1)
            && s.step < saved.step.max(1)
            && square(&s.cosine)
            && s.norms.len() == k
            && s.affinity.as_deref().is_none_or(square);
        if !fits {
            return Err(format!(
                "diagnostics sample {i} does not fit the run's {k} tasks"
            ));
        }
    }
    if !(saved.seconds.is_finite() && saved.seconds >= 0.0) {
        return Err(format!(
            "its elapsed time {} is not a duration",
            saved.seconds
        ));
    }
    saved.divergence.check(k)
}

/// What a fit checks before its first step.
pub(crate) struct Start<'a> {
    /// The checkpoint to resume from.
    pub resume: Option<PathBuf>,
    /// Resume despite differences in data, preprocessing and configuration.
    pub force: bool,
    /// The caller's description of the preprocessing.
    pub preprocessing: &'a serde_json::Value,
    /// The training data's hash, shared with the data-parallel start.
    pub data: &'a DataHash,
}

/// Prepares a fit: claims the checkpoint file (see [`claim`]) and restores the run to
/// resume, if any. Returns the loop state and the checkpoint's lock, to hold until the
/// fit ends.
pub(crate) fn start(
    start: Start<'_>,
    parts: &mut Parts<'_, '_>,
) -> Result<(RunState, Option<OutputLock>)> {
    let target = parts.cfg.checkpoint.as_ref().map(|c| c.path.clone());
    if target.is_none() && start.resume.is_none() {
        return Ok((RunState::default(), None));
    }
    let identity = Identity {
        train_rows: parts.plan.train_rows(),
        data_sha256: start.data.of(parts.plan)?,
        preprocessing: start.preprocessing.clone(),
    };
    let lock = match &target {
        Some(path) => Some(claim(path, start.resume.as_deref(), &identity, parts)?),
        None => None,
    };
    let mut state = match &start.resume {
        Some(path) => load(path, parts, &identity, start.force)?,
        None => RunState::default(),
    };
    state.identity = identity;
    Ok((state, lock))
}

/// Makes `path` this run's to write checkpoints to: its directory exists and is
/// writable, no other run holds it (a lock file, kept until the fit ends), temporary
/// files that killed runs left there are removed, and whatever the path already holds
/// is the checkpoint being resumed or a checkpoint of this same run. Anything else (an
/// input, a report, another run's checkpoint) is refused before training starts.
fn claim(
    path: &Path,
    resume: Option<&Path>,
    identity: &Identity,
    parts: &Parts<'_, '_>,
) -> Result<OutputLock> {
    let refuse = |message: String| Error::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let dir = files::parent_dir(path);
    files::check_writable(&dir)?;
    let lock = OutputLock::acquire(OutputLock::for_file(path)?, path)?;
    files::clean_stale_temps(&dir)?;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(lock),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if !meta.is_file() {
        return Err(refuse(
            "the checkpoint path is a directory, not a file".into(),
        ));
    }
    if resume.is_some_and(|r| files::same_file(r, path)) {
        return Ok(lock);
    }
    let remedy = "it is left as it is; choose another checkpoint path, or remove the file \
                  if it is not needed";
    let state = Checkpoint::peek_state(path).map_err(|e| {
        refuse(format!(
            "the checkpoint path holds a file that is not an mtl checkpoint ({e}): {remedy}"
        ))
    })?;
    let saved: Saved = serde_json::from_value(state).map_err(|e| {
        refuse(format!(
            "the checkpoint path holds a checkpoint this version cannot read ({e}): {remedy}"
        ))
    })?;
    let (hard, soft) = differences(&saved, parts, identity);
    if hard.is_empty() && soft.is_empty() {
        return Ok(lock);
    }
    Err(refuse(format!(
        "the checkpoint path holds the checkpoint of another run ({}): {remedy}, or \
         resume it",
        [hard, soft].concat().join("; ")
    )))
}

/// What [`save`] and [`load`] act on.
pub(crate) struct Parts<'a, 'b> {
    pub cfg: &'a TrainerConfig,
    pub model: &'a mut MultiTaskModel,
    pub method: &'a mut Method,
    pub optimizer: &'a mut TaskOptimizers,
    pub plan: &'a mut Plan<'b>,
    /// The mean teacher of semi-supervised training, when there is one.
    pub teacher: Option<&'a mut Teacher>,
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
        identity: state.identity.clone(),
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
        divergence: state.divergence.clone(),
        teacher_updates: parts.teacher.as_ref().map(|t| t.updates()),
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
    if let Some(t) = &parts.teacher {
        ckpt.extend(
            Some("teacher"),
            t.weights()
                .iter()
                .map(|(n, t)| (n.clone(), t.shallow_clone())),
        );
    }
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
/// continue from. A checkpoint whose records do not fit the run, or that was saved for
/// other tasks, another method or other model shapes, is an [`Error::Checkpoint`]; so is
/// one saved with other data, preprocessing or settings, naming each difference, unless
/// `force` (then each is a warning).
fn load(
    path: &Path,
    parts: &mut Parts<'_, '_>,
    identity: &Identity,
    force: bool,
) -> Result<RunState> {
    let mismatch = |message: String| Error::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let ckpt = Checkpoint::load(path)?;
    let saved: Saved = serde_json::from_value(ckpt.state.clone())
        .map_err(|e| mismatch(format!("not a trainer checkpoint: {e}")))?;
    check_saved(&saved, parts.model.num_tasks()).map_err(mismatch)?;
    let (hard, soft) = differences(&saved, parts, identity);
    if !hard.is_empty() {
        return Err(mismatch(format!(
            "saved for another model: {}",
            hard.join("; ")
        )));
    }
    if !soft.is_empty() && !force {
        return Err(mismatch(format!(
            "saved by a different run: {}; resume with the same data and settings, or \
             force the resume (Trainer::force_resume, `mtl train --force-resume`)",
            soft.join("; ")
        )));
    }
    for d in &soft {
        tracing::warn!(path = %path.display(), difference = %d, "forced resume");
        eprintln!(
            "warning: resuming {} despite a difference: {d}",
            path.display()
        );
    }
    let steps = (saved.epoch as u64).checked_mul(parts.plan.steps_per_epoch());
    if soft.is_empty() && steps != Some(saved.step) {
        return Err(mismatch(format!(
            "records step {} after {} epochs of {} steps",
            saved.step,
            saved.epoch,
            parts.plan.steps_per_epoch()
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

    if let Some(teacher) = parts.teacher.as_deref_mut() {
        let updates = saved.teacher_updates.ok_or_else(|| {
            mismatch(
                "holds no mean teacher, and this run trains with one: resume a checkpoint \
                 of a mean-teacher run"
                    .into(),
            )
        })?;
        teacher
            .load(&ckpt.group(Some("teacher")), updates)
            .map_err(|e| mismatch(e.to_string()))?;
    }
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
        divergence: saved.divergence,
        identity: Identity::default(),
    })
}
