//! Evaluation: per-task losses and metrics over a whole dataset, without gradients.

use crate::model::MultiTaskModel;
use mtl_core::Result;
use mtl_data::MultiTaskDataset;
use mtl_heads::MetricValue;
use serde::{Deserialize, Serialize};

/// Per-task results on one dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The task names.
    pub tasks: Vec<String>,
    /// `losses[k]`: task k's mean loss over labelled rows (batch-size weighted).
    pub losses: Vec<f64>,
    /// `metrics[k]`: task k's metrics, the primary first.
    pub metrics: Vec<Vec<MetricValue>>,
}

impl Evaluation {
    /// The value of metric `name` of task `task`, if computed.
    pub fn metric(&self, task: usize, name: &str) -> Option<f64> {
        self.metrics
            .get(task)?
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.value)
    }
    /// The sum of the task losses.
    pub fn total_loss(&self) -> f64 {
        self.losses.iter().sum()
    }
}

/// Evaluates `model` on `data` in evaluation mode (dropout off), batch by batch.
pub fn evaluate(
    model: &MultiTaskModel,
    data: &MultiTaskDataset,
    batch_size: usize,
) -> Result<Evaluation> {
    let k = model.num_tasks();
    let mut metrics: Vec<_> = model.heads().iter().map(|h| h.metrics()).collect();
    let mut loss_sums = vec![0.0; k];
    let mut labelled = vec![0.0; k];
    let device = model.device();
    tch::no_grad(|| -> Result<()> {
        for batch in data.batches(batch_size, None)? {
            let batch = batch.to_device(device);
            let fwd = model.forward_t(&batch.x, false)?;
            let losses = model.losses(&fwd.outputs, &batch.targets)?;
            for t in 0..k {
                let n = batch.targets[t].labelled() as f64;
                loss_sums[t] += losses[t].f_double_value(&[])? * n;
                labelled[t] += n;
                metrics[t].update(&fwd.outputs[t], &batch.targets[t])?;
            }
        }
        Ok(())
    })?;
    Ok(Evaluation {
        tasks: model.task_names(),
        losses: loss_sums
            .iter()
            .zip(&labelled)
            .map(|(s, n)| if *n > 0.0 { s / n } else { 0.0 })
            .collect(),
        metrics: metrics.iter().map(|m| m.compute()).collect(),
    })
}
