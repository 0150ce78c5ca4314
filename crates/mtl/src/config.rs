//! What a run is configured with: [`TrainerConfig`] (plain data, serialisable into the
//! report and from config files) and where it checkpoints ([`CheckpointPolicy`]).

use crate::diagnostics::DiagnosticsConfig;
use crate::divergence::DivergenceGuard;
use crate::early_stopping::EarlyStopping;
use crate::robust::Adversarial;
use crate::semi::SemiSupervised;
use crate::step::GradMode;
use crate::tracking::TrackingConfig;
use mtl_core::{Error, LrSchedule, OptimizerConfig, Result};
use mtl_losses::DataParallelMode;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The most epochs a run may ask for: far beyond any real run, and small enough that
/// step counts (epochs × steps per epoch) stay exact integers.
pub const MAX_EPOCHS: usize = 100_000_000;

/// Trainer settings (plain data: serialisable into the report and from config files,
/// where every field may be left out for its [`Default`], and a field that is not one
/// of these is an error rather than silently ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainerConfig {
    /// The maximum number of epochs.
    pub epochs: usize,
    /// Rows per mini-batch.
    pub batch_size: usize,
    /// The optimiser.
    pub optimizer: OptimizerConfig,
    /// The registry name of the task-combination method (`"ew"`, `"pcgrad"`...).
    pub method: String,
    /// The method's hyper-parameters where they differ from the paper's
    /// (`{ c = 0.4 }` for CAGrad, `{ weights = [1.0, 0.3] }` for static weights: Keras'
    /// `loss_weights`); the names are those `cargo xtask methods` lists. A key the method
    /// does not take is an error naming the closest one it does.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub method_params: serde_json::Map<String, serde_json::Value>,
    /// Seed for shuffling and for the method's own randomness.
    pub seed: u64,
    /// Early stopping on the validation set, if any.
    pub early_stopping: Option<EarlyStopping>,
    /// Parameter or representation gradients for gradient-level methods.
    pub grad_mode: GradMode,
    /// Under data parallelism ([`Trainer::distributed`](crate::Trainer::distributed)):
    /// exact aggregation of the union's Jacobian (the default) or each rank's own,
    /// averaged (`"local"`: K times fewer bytes, biased for nonlinear and stateful
    /// aggregators). No effect on one process or on loss-level methods.
    #[serde(default, skip_serializing_if = "is_exact")]
    pub data_parallel: DataParallelMode,
    /// How the learning rate changes over the run's optimiser steps.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// Clip the global gradient norm (of every trained parameter) to this value.
    #[serde(default)]
    pub clip_grad_norm: Option<f64>,
    /// Var-store name prefixes of parameters to keep fixed (e.g. `"trunk.0."` for the first layer of an `Mlp` trunk built under `trunk`).
    #[serde(default)]
    pub frozen: Vec<String>,
    /// Gradual unfreezing (ULMFiT): parameters under each entry's `prefix` are frozen
    /// until its `epoch` (0-based) starts, then train. Whole-fit freezing
    /// ([`TrainerConfig::frozen`]) wins over it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unfreeze: Vec<Unfreeze>,
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
    /// With per-task data ([`Trainer::fit_multi_input`](crate::Trainer::fit_multi_input)) a task's short batch at the
    /// end of a pass over its rows is left out of its step.
    #[serde(default)]
    pub drop_last: bool,
    /// How many tasks [`Trainer::fit_multi_input`](crate::Trainer::fit_multi_input) draws per step (ignored by
    /// [`TaskSampling::All`](mtl_data::TaskSampling::All) and by [`Trainer::fit`](crate::Trainer::fit)).
    #[serde(default = "one")]
    pub tasks_per_step: usize,
    /// Stop with [`Error::Diverged`] when a task's loss grows by orders of magnitude
    /// (on by default; see [`DivergenceGuard`] for the rule).
    #[serde(default)]
    pub divergence: DivergenceGuard,
    /// Per-step metrics to CSV and TensorBoard files ([`MetricsWriter`](crate::MetricsWriter)).
    #[serde(default)]
    pub tracking: Option<TrackingConfig>,
    /// Consistency training on rows without labels (Π-model or mean teacher; see
    /// [`crate::semi`]): an auxiliary term added after the task combination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semi_supervised: Option<SemiSupervised>,
    /// Adversarial training under an FGSM or PGD attack on the inputs (see
    /// [`crate::robust`]): each task's loss becomes its clean plus its attacked loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adversarial: Option<Adversarial>,
}

/// One step of a gradual-unfreezing schedule ([`TrainerConfig::unfreeze`]): the
/// parameters whose var-store names start with `prefix` stay frozen for epochs
/// `0..epoch` and train from epoch `epoch` on (`{ prefix = "trunk.0.", epoch = 2 }`).
///
/// Frozen parameters are in neither the task Jacobian nor the optimiser. When they
/// unfreeze they join with fresh optimiser state (zero moments, a step count of their
/// own), as `torch.optim` starts a parameter's state at its first gradient. Entries add
/// freezes, so a parameter under several stays frozen until the latest of their epochs:
/// to unfreeze layer by layer, give each layer its own prefix (`trunk.1.`, `trunk.0.`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unfreeze {
    /// The var-store name prefix (`trunk.`, `trunk.0.`).
    pub prefix: String,
    /// The first epoch (0-based) that trains them: at least 1 and below the run's
    /// epoch count.
    pub epoch: usize,
}

impl Unfreeze {
    /// Parameters under `prefix` train from epoch `epoch` on.
    pub fn new(prefix: impl Into<String>, epoch: usize) -> Self {
        Unfreeze {
            prefix: prefix.into(),
            epoch,
        }
    }
}

fn one() -> usize {
    1
}

fn yes() -> bool {
    true
}

/// When and where the trainer writes checkpoints: the file is replaced atomically every
/// `every_epochs` epochs and after the last one.
///
/// Before the first step the fit locks the file against a second run (a `.NAME.lock`
/// beside it), checks that its directory is writable, and refuses to start if the path
/// holds anything but a checkpoint of this same run (or the one it resumes from): a
/// checkpoint never replaces an input, another output or another run's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointPolicy {
    /// The checkpoint file (safetensors; `.safetensors` is the natural extension).
    pub path: PathBuf,
    /// Epochs between checkpoints (≥ 1; 1 when left out).
    #[serde(default = "one")]
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
            method_params: serde_json::Map::new(),
            seed: 0,
            early_stopping: None,
            grad_mode: GradMode::Parameters,
            data_parallel: DataParallelMode::Exact,
            lr_schedule: LrSchedule::Constant,
            clip_grad_norm: None,
            frozen: Vec::new(),
            unfreeze: Vec::new(),
            checkpoint: None,
            diagnostics: None,
            progress: true,
            drop_last: false,
            tasks_per_step: 1,
            divergence: DivergenceGuard::default(),
            tracking: None,
            semi_supervised: None,
            adversarial: None,
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
    /// Sets one hyper-parameter of the method (see [`TrainerConfig::method_params`]).
    ///
    /// ```
    /// use mtl::TrainerConfig;
    /// let cfg = TrainerConfig::default()
    ///     .method("static")
    ///     .method_param("weights", serde_json::json!([1.0, 0.3]));
    /// assert_eq!(cfg.method_params["weights"], serde_json::json!([1.0, 0.3]));
    /// ```
    pub fn method_param(mut self, key: impl Into<String>, value: serde_json::Value) -> Self {
        self.method_params.insert(key.into(), value);
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
    /// Sets exact or local aggregation under data parallelism.
    pub fn data_parallel(mut self, mode: DataParallelMode) -> Self {
        self.data_parallel = mode;
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

    /// Keeps every parameter whose var-store name starts with `prefix` frozen until
    /// epoch `epoch` (0-based) starts (see [`Unfreeze`]).
    ///
    /// ```
    /// use mtl::TrainerConfig;
    /// // ULMFiT-style: the heads train from the start, the trunk's last layer from
    /// // epoch 1, its first layer from epoch 2.
    /// let cfg = TrainerConfig::default()
    ///     .epochs(6)
    ///     .unfreeze_at("trunk.1.", 1)
    ///     .unfreeze_at("trunk.0.", 2);
    /// assert_eq!(cfg.frozen_at(0), ["trunk.1.", "trunk.0."]);
    /// assert_eq!(cfg.frozen_at(1), ["trunk.0."]);
    /// assert!(cfg.frozen_at(2).is_empty());
    /// assert!(cfg.check().is_ok());
    /// assert!(cfg.clone().unfreeze_at("trunk.", 6).check().is_err()); // beyond the run
    /// ```
    pub fn unfreeze_at(mut self, prefix: impl Into<String>, epoch: usize) -> Self {
        self.unfreeze.push(Unfreeze::new(prefix, epoch));
        self
    }

    /// The prefixes frozen during epoch `epoch`: [`TrainerConfig::frozen`] and the
    /// [`TrainerConfig::unfreeze`] entries whose epoch has not come.
    pub fn frozen_at(&self, epoch: usize) -> Vec<String> {
        self.frozen
            .iter()
            .cloned()
            .chain(
                self.unfreeze
                    .iter()
                    .filter(|u| u.epoch > epoch)
                    .map(|u| u.prefix.clone()),
            )
            .collect()
    }

    /// The epochs at which parameters unfreeze, ascending, without repeats.
    pub(crate) fn unfreeze_epochs(&self) -> Vec<usize> {
        let mut epochs: Vec<usize> = self.unfreeze.iter().map(|u| u.epoch).collect();
        epochs.sort_unstable();
        epochs.dedup();
        epochs
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
    /// Sets (or, with [`DivergenceGuard::off`], turns off) the divergence guard.
    pub fn divergence(mut self, guard: DivergenceGuard) -> Self {
        self.divergence = guard;
        self
    }
    /// Writes per-step metrics as `t` says.
    pub fn tracking(mut self, t: TrackingConfig) -> Self {
        self.tracking = Some(t);
        self
    }
    /// Trains with a consistency term on unlabelled rows as `s` says.
    pub fn semi_supervised(mut self, s: SemiSupervised) -> Self {
        self.semi_supervised = Some(s);
        self
    }
    /// Trains adversarially under the attack `a`.
    pub fn adversarial(mut self, a: Adversarial) -> Self {
        self.adversarial = Some(a);
        self
    }

    /// Checks every setting's range, as [`Trainer::new`](crate::Trainer::new) does: positive epochs (at most
    /// [`MAX_EPOCHS`]) and batch size, non-empty prefixes to freeze, unfreeze epochs
    /// within the run (from 1, below `epochs`), a valid optimiser,
    /// schedule, checkpoint policy, diagnostics and divergence guard.
    ///
    /// ```
    /// use mtl::TrainerConfig;
    /// assert!(TrainerConfig::default().check().is_ok());
    /// assert!(TrainerConfig::default().epochs(usize::MAX).check().is_err());
    /// assert!(TrainerConfig::default().freeze("").check().is_err());
    /// ```
    pub fn check(&self) -> Result<()> {
        if self.epochs == 0 || self.batch_size == 0 {
            return Err(Error::config(format!(
                "epochs and batch_size must be positive, got {} and {}",
                self.epochs, self.batch_size
            )));
        }
        if self.epochs > MAX_EPOCHS {
            return Err(Error::config(format!(
                "epochs must be at most {MAX_EPOCHS}, got {}",
                self.epochs
            )));
        }
        if self.tasks_per_step == 0 {
            return Err(Error::config("tasks_per_step must be at least 1"));
        }
        // An empty prefix is a prefix of every name: it would freeze the whole model
        // and train nothing.
        if let Some(i) = self.frozen.iter().position(|p| p.trim().is_empty()) {
            return Err(Error::config(format!(
                "frozen[{i}] is empty: each entry is the var-store name prefix of the \
                 parameters to keep fixed (such as `trunk.0.`), and an empty one would \
                 freeze every parameter"
            )));
        }
        for (i, u) in self.unfreeze.iter().enumerate() {
            if u.prefix.trim().is_empty() {
                return Err(Error::config(format!(
                    "unfreeze[{i}].prefix is empty: each entry names the var-store prefix \
                     of the parameters to keep frozen until its epoch (such as `trunk.`)"
                )));
            }
            if u.epoch == 0 {
                return Err(Error::config(format!(
                    "unfreeze[{i}] (`{}`) unfreezes at epoch 0, before the first step: it \
                     would never be frozen; leave it out, or give the first epoch (0-based) \
                     that should train it",
                    u.prefix
                )));
            }
            if u.epoch >= self.epochs {
                return Err(Error::config(format!(
                    "unfreeze[{i}] (`{}`) unfreezes at epoch {}, but the run has epochs \
                     0..{}: it would never train (to keep it frozen for the whole fit, \
                     list it in `frozen`)",
                    u.prefix, u.epoch, self.epochs
                )));
            }
        }
        self.optimizer.check()?;
        self.lr_schedule.check()?;
        self.divergence.check()?;
        if let Some(d) = &self.diagnostics {
            d.check()?;
        }
        if let Some(t) = &self.tracking {
            t.check()?;
        }
        if let Some(s) = &self.semi_supervised {
            s.check()?;
        }
        if let Some(a) = &self.adversarial {
            a.check()?;
        }
        if let Some(c) = &self.checkpoint {
            if c.every_epochs == 0 {
                return Err(Error::config("checkpoint every_epochs must be at least 1"));
            }
            if c.path.file_name().is_none() {
                return Err(Error::config(format!(
                    "checkpoint path `{}` does not name a file",
                    c.path.display()
                )));
            }
        }
        if let Some(es) = &self.early_stopping {
            if !(es.min_delta.is_finite() && es.min_delta >= 0.0) {
                return Err(Error::config(format!(
                    "early_stopping.min_delta must be finite and non-negative, got {}",
                    es.min_delta
                )));
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

fn is_exact(mode: &DataParallelMode) -> bool {
    *mode == DataParallelMode::Exact
}
