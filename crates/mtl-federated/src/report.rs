//! The record of a federated run: per round, per client, serialisable as JSON.

use crate::config::FederatedConfig;
use mtl::Evaluation;
use serde::{Deserialize, Serialize};

/// One round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    /// The round (0-based).
    pub round: usize,
    /// The clients that trained in it.
    pub sampled: Vec<usize>,
    /// The sampled clients' local training loss (summed over tasks), row-weighted.
    pub train_loss: f64,
    /// The aggregated global model's loss (summed over tasks) on every client's
    /// held-out rows, weighted by those rows; `None` when no client holds any.
    pub test_loss: Option<f64>,
    /// `test_primary[k]`: the mean over clients of the global model's primary metric for
    /// task `k` on the client's held-out rows, over the clients that hold labels of it.
    pub test_primary: Vec<Option<f64>>,
}

/// One client at the end of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// The client's name.
    pub name: String,
    /// Its training rows.
    pub train_rows: usize,
    /// Its held-out rows.
    pub test_rows: usize,
    /// `test_labelled[k]`: its held-out rows labelled for task `k` (a task with none
    /// has no meaningful metric on this client).
    pub test_labelled: Vec<usize>,
    /// The final global model on its held-out rows (`None` without held-out rows).
    pub global: Option<Evaluation>,
    /// Its personalised (Ditto) model on its held-out rows.
    pub personal: Option<Evaluation>,
}

/// A federated run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FederatedReport {
    /// The settings it ran with.
    pub config: FederatedConfig,
    /// The task names.
    pub tasks: Vec<String>,
    /// Every round, in order.
    pub rounds: Vec<RoundRecord>,
    /// Every client, in index order.
    pub clients: Vec<ClientRecord>,
    /// Bytes the clients sent to the server.
    pub bytes_to_server: u64,
    /// Bytes the server sent to the clients.
    pub bytes_to_clients: u64,
}

impl ClientRecord {
    /// The primary metric (the head's first) of task `k`, of the personalised model when
    /// `personal` and of the global one otherwise; `None` when the client has no
    /// labelled held-out row of the task.
    pub fn primary(&self, k: usize, personal: bool) -> Option<f64> {
        if self.test_labelled.get(k).copied().unwrap_or(0) == 0 {
            return None;
        }
        let eval = if personal {
            self.personal.as_ref()
        } else {
            self.global.as_ref()
        }?;
        eval.metrics.get(k)?.first().map(|m| m.value)
    }
}

impl FederatedReport {
    /// `mean_primary(personal)[k]`: the unweighted mean over clients of task `k`'s
    /// primary metric (each client counts once, the usual summary for personalised
    /// federated learning), over the clients with labelled held-out rows of it.
    pub fn mean_primary(&self, personal: bool) -> Vec<Option<f64>> {
        (0..self.tasks.len())
            .map(|k| mean(self.clients.iter().filter_map(|c| c.primary(k, personal))))
            .collect()
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> mtl::core::Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| mtl::core::Error::config(format!("federated report as JSON: {e}")))
    }
}

/// The mean of `values`, `None` when there are none.
pub(crate) fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}
