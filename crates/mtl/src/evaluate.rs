//! Evaluation: per-task losses and metrics over a whole dataset, without gradients;
//! for tasks that bring their own data, each task over its own rows through its own
//! path of the model. A regression task whose targets are stored standardised
//! ([`TargetStandardizer`](mtl_data::TargetStandardizer)) has its loss in the trained,
//! standardised units and its metrics in the original units.

use crate::model::MultiTaskModel;
use mtl_core::{Error, Result, TaskTarget};
use mtl_data::{JointData, MultiInputData, TargetScale};
use mtl_heads::{MetricValue, Metrics};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Per-task results on one dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The task names.
    pub tasks: Vec<String>,
    /// `losses[k]`: task k's mean loss over labelled rows (batch-size weighted), in the
    /// units the head trains on (standardised for a standardised regression target).
    pub losses: Vec<f64>,
    /// `metrics[k]`: task k's metrics, the primary first, in the targets' original
    /// units.
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
///
/// `data` is any [`JointData`]: table rows, tensors of any shape, or a user's own.
pub fn evaluate<D: JointData + ?Sized>(
    model: &MultiTaskModel,
    data: &D,
    batch_size: usize,
) -> Result<Evaluation> {
    let k = model.num_tasks();
    let mut metrics: Vec<_> = model.heads().iter().map(|h| h.metrics()).collect();
    let mut loss_sums = vec![0.0; k];
    let mut labelled = vec![0.0; k];
    let device = model.device();
    tch::no_grad(|| -> Result<()> {
        for batch in data.joint_batches(batch_size, None)? {
            let batch = batch?.to_device(device);
            let fwd = model.forward_t(&batch.x, false)?;
            let losses = model.losses(&fwd.outputs, &batch.targets)?;
            for t in 0..k {
                let n = batch.targets[t].labelled() as f64;
                loss_sums[t] += losses[t].f_double_value(&[])? * n;
                labelled[t] += n;
                update(
                    metrics[t].as_mut(),
                    data.target_scale(t),
                    &fwd.outputs[t],
                    &batch.targets[t],
                )?;
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

/// Evaluates `model` on heterogeneous tasks in evaluation mode: task `k` over the rows
/// of its own dataset in `data`, through its own path
/// ([`MultiTaskModel::forward_task`]). Its loss is the mean over its labelled rows.
pub fn evaluate_multi_input(
    model: &MultiTaskModel,
    data: &MultiInputData,
    batch_size: usize,
) -> Result<Evaluation> {
    let k = model.num_tasks();
    if data.num_tasks() != k {
        return Err(Error::TaskCount {
            context: "evaluation data vs model".into(),
            expected: k,
            got: data.num_tasks(),
        });
    }
    let device = model.device();
    let mut losses = Vec::with_capacity(k);
    let mut metrics = Vec::with_capacity(k);
    tch::no_grad(|| -> Result<()> {
        for (t, head) in model.heads().iter().enumerate() {
            let mut m = head.metrics();
            let (mut sum, mut labelled) = (0.0, 0.0);
            for batch in data.task_data(t)?.joint_batches(batch_size, None)? {
                let batch = batch?.to_device(device);
                let fwd = model.forward_task(&batch.x, t, false)?;
                let target = &batch.targets[0];
                let n = target.labelled() as f64;
                sum += model
                    .task_loss(t, &fwd.output, target)?
                    .f_double_value(&[])?
                    * n;
                labelled += n;
                update(
                    m.as_mut(),
                    data.task_data(t)?.target_scale(0),
                    &fwd.output,
                    target,
                )?;
            }
            losses.push(if labelled > 0.0 { sum / labelled } else { 0.0 });
            metrics.push(m.compute());
        }
        Ok(())
    })?;
    Ok(Evaluation {
        tasks: model.task_names(),
        losses,
        metrics,
    })
}

/// Feeds a batch to a task's metrics, in original units when the task's targets are
/// stored standardised.
pub(crate) fn update(
    metrics: &mut dyn Metrics,
    scale: Option<&TargetScale>,
    output: &Tensor,
    target: &TaskTarget,
) -> Result<()> {
    match scale {
        None => metrics.update(output, target),
        Some(s) => metrics.update(
            &s.output_to_original(output)?,
            &s.target_to_original(target)?,
        ),
    }
}
