//! Early stopping: which validation number to watch, and for how long to wait.

use crate::evaluate::Evaluation;
use serde::{Deserialize, Serialize};

/// The validation quantity that decides the best epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Monitor {
    /// The sum of the task losses (lower is better).
    TotalLoss,
    /// One metric of one task, by task index and metric name (its own direction).
    Metric {
        /// The task index.
        task: usize,
        /// The metric name, e.g. `"accuracy"`.
        name: String,
    },
    /// The mean over tasks of each task's primary metric, each signed so higher is better.
    MeanPrimary,
}

impl Monitor {
    /// The monitored value as a score where higher is better, or `None` if the
    /// evaluation lacks it.
    pub fn score(&self, e: &Evaluation) -> Option<f64> {
        let signed = |m: &mtl_heads::MetricValue| {
            if m.higher_is_better {
                m.value
            } else {
                -m.value
            }
        };
        match self {
            Monitor::TotalLoss => Some(-e.total_loss()),
            Monitor::Metric { task, name } => e
                .metrics
                .get(*task)?
                .iter()
                .find(|m| &m.name == name)
                .map(signed),
            Monitor::MeanPrimary => {
                let firsts: Vec<f64> = e
                    .metrics
                    .iter()
                    .filter_map(|m| m.first())
                    .map(signed)
                    .collect();
                (!firsts.is_empty()).then(|| firsts.iter().sum::<f64>() / firsts.len() as f64)
            }
        }
    }
}

/// Stop when the monitored score has not improved for `patience` epochs, and restore
/// the weights of the best epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    /// What to watch.
    pub monitor: Monitor,
    /// Epochs without improvement before stopping.
    pub patience: usize,
    /// The smallest change that counts as an improvement.
    #[serde(default)]
    pub min_delta: f64,
}

impl EarlyStopping {
    /// Watches `monitor` with the given patience.
    pub fn new(monitor: Monitor, patience: usize) -> Self {
        EarlyStopping {
            monitor,
            patience,
            min_delta: 0.0,
        }
    }
}
