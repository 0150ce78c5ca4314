//! The JSON run report: configuration, per-epoch losses, metrics and task weights,
//! timings.

use crate::delta_m::DeltaM;
use crate::diagnostics::GradientSample;
use crate::evaluate::Evaluation;
use serde::{Deserialize, Serialize};

/// One epoch of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// The epoch (0-based).
    pub epoch: usize,
    /// Mean training loss of each task over the epoch's steps.
    pub train_losses: Vec<f64>,
    /// Mean task weights over the epoch's steps (empty for methods without weights).
    pub task_weights: Vec<f64>,
    /// Validation results, when a validation set was given.
    pub validation: Option<Evaluation>,
    /// The learning rate of the epoch's last step.
    #[serde(default)]
    pub lr: f64,
    /// Mean global gradient norm before clipping (recorded when clipping is on).
    #[serde(default)]
    pub grad_norm: Option<f64>,
    /// Seconds the epoch took, validation included.
    pub seconds: f64,
}

/// Everything a run did, serialisable as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The trainer configuration.
    pub config: crate::TrainerConfig,
    /// The method's registry name.
    pub method: String,
    /// The task names.
    pub tasks: Vec<String>,
    /// One record per epoch run.
    pub epochs: Vec<EpochRecord>,
    /// The epoch whose weights the model holds at the end (the best one under early
    /// stopping, else the last).
    pub best_epoch: usize,
    /// Whether early stopping ended the run before the epoch budget.
    pub stopped_early: bool,
    /// Wall-clock seconds for the whole fit.
    pub seconds: f64,
    /// The final model on the test set, once [`RunReport::compare_to_baselines`] (or
    /// the caller) has set it.
    #[serde(default)]
    pub test: Option<Evaluation>,
    /// Δm against single-task baselines, with the tasks that show negative transfer.
    #[serde(default)]
    pub delta_m: Option<DeltaM>,
    /// Gradient diagnostics samples, when the configuration asked for them.
    #[serde(default)]
    pub diagnostics: Vec<GradientSample>,
    /// The number of data-parallel ranks that trained the model (1 for one process).
    #[serde(default = "one")]
    pub world_size: usize,
}

fn one() -> usize {
    1
}

impl RunReport {
    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports contain only plain data")
    }

    /// Writes [`RunReport::to_json`] to `path` atomically: into a temporary file beside
    /// it, renamed over it, so a reader sees the old report or the new one, never an
    /// empty or torn file.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> mtl_core::Result<()> {
        mtl_core::files::write_atomically(path.as_ref(), self.to_json().as_bytes())
    }
}
