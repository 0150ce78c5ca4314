//! One training step over heterogeneous tasks: each task drawn for the step brings a
//! batch of its own rows (possibly of its own width), runs through its own path of the
//! model, and gives its head's loss; the K losses are then combined as in
//! [`backward_step`](crate::backward_step). A task not drawn has no loss: a weighting
//! sees an exact zero for it and an aggregator a zero Jacobian row, and its own
//! parameters receive no gradient.

use crate::model::MultiTaskModel;
use crate::step::{combine_and_backward, GradMode, StepOutcome, Wrt};
use mtl_core::{Error, ParamGroups, Result};
use mtl_data::Batch;
use mtl_losses::Method;
use tch::Tensor;

/// The error for rep-grad mode on heterogeneous tasks, where each task's trunk output
/// comes from its own rows, so no one representation is shared by the K losses.
pub(crate) fn rep_grad_unsupported() -> Error {
    Error::config(
        "rep-grad mode (GradMode::Representation) needs one shared representation of one \
         batch; with tasks that each bring their own batch there is none: use \
         GradMode::Parameters",
    )
}

/// Runs forward and backward for one step of per-task batches, `(task, batch)` with
/// `batch.targets` holding that task's one target (as
/// [`TaskSchedule::next_step`](mtl_data::TaskSchedule::next_step) gives them), and
/// leaves the combined gradient in every parameter's `.grad()`. The caller zeroes the
/// gradients before and steps the optimiser after.
///
/// Parameter-mode Jacobian rows come from the tasks' separate graphs: row `k` is the
/// gradient of task `k`'s loss on its own batch with respect to the shared parameters.
/// Methods are built for K tasks, so the tasks absent from the step still take part
/// with a zero loss (zero row). Methods that keep per-task history or that look for a
/// common descent direction (UW, DWA, GradNorm, MGDA, Nash-MTL…) read those zeros as
/// real; sample every task at every step for them.
///
/// `StepOutcome::losses` holds 0 for the absent tasks. `mode` must be
/// [`GradMode::Parameters`] for a gradient-level method.
#[allow(clippy::too_many_arguments)] // the stages of a step, kept a plain function on purpose
pub fn backward_multi_input_step(
    model: &MultiTaskModel,
    groups: &ParamGroups,
    method: &mut Method,
    mode: GradMode,
    parts: &[(usize, Batch)],
    step: u64,
    epoch: usize,
) -> Result<StepOutcome> {
    if matches!(method, Method::Aggregator(_)) && mode == GradMode::Representation {
        return Err(rep_grad_unsupported());
    }
    let k = model.num_tasks();
    if parts.is_empty() {
        return Err(Error::config(format!(
            "multi-input step {step}: no task batch"
        )));
    }
    let mut losses: Vec<Option<Tensor>> = (0..k).map(|_| None).collect();
    let mut aux: Vec<Tensor> = Vec::new();
    for (task, batch) in parts {
        let task = *task;
        if task >= k {
            return Err(Error::config(format!(
                "multi-input step {step}: task index {task} out of range 0..{k}"
            )));
        }
        if losses[task].is_some() {
            return Err(Error::config(format!(
                "multi-input step {step}: task {task} has two batches"
            )));
        }
        if batch.targets.len() != 1 {
            return Err(Error::TaskCount {
                context: format!("multi-input batch of task {task} (one target)"),
                expected: 1,
                got: batch.targets.len(),
            });
        }
        let fwd = model.forward_task(&batch.x, task, true)?;
        losses[task] = Some(model.task_loss(task, &fwd.output, &batch.targets[0])?);
        aux.extend(fwd.features.auxiliary_loss);
    }
    let reference = losses
        .iter()
        .flatten()
        .next()
        .map(Tensor::shallow_clone)
        .ok_or_else(|| Error::config("multi-input step: no task loss"))?;
    let losses = losses
        .into_iter()
        .map(|l| match l {
            Some(l) => Ok(l),
            None => Ok(reference.f_zeros_like()?.f_detach()?),
        })
        .collect::<Result<Vec<_>>>()?;
    // An architecture's own term is one term per model: the drawn paths' terms are
    // averaged, so a parameter-only term (soft sharing's tie) counts once.
    let aux = match aux.first() {
        None => None,
        Some(first) => Some(Tensor::f_stack(&aux, 0)?.f_mean(first.kind())?),
    };
    combine_and_backward(
        model,
        groups,
        method,
        Wrt::Parameters,
        &losses,
        aux.as_ref(),
        step,
        epoch,
    )
}
