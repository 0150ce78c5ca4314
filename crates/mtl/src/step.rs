//! One training step as a plain function over tensors: forward, per-task losses, the
//! combination (loss-level weighting or gradient-level aggregation), gradients written
//! to the parameters. The optimiser update is left to the caller, so a collective
//! (data-parallel all-reduce) could sit between the stages without the methods knowing.

use crate::model::MultiTaskModel;
use mtl_core::{
    check_losses, empty_jacobian, params, write_jacobian_row, Error, ParamGroups, Result,
    TaskTarget,
};
use mtl_losses::{Method, StepContext};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// What a gradient-level method differentiates the task losses with respect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GradMode {
    /// The shared parameters: J is K × (number of shared weights).
    #[default]
    Parameters,
    /// The shared representation ("rep-grad"): J is K × (batch × width), much cheaper
    /// for a large trunk; the aggregated gradient is then backpropagated into the trunk.
    Representation,
}

/// What one step measured.
#[derive(Debug, Clone)]
pub struct StepOutcome {
    /// The K task losses.
    pub losses: Vec<f64>,
    /// The task weights the method used (empty when it has none).
    pub weights: Vec<f64>,
}

/// Runs forward and backward for one batch and leaves the combined gradient in every
/// parameter's `.grad()` (the caller zeroes grads before and steps the optimiser after).
#[allow(clippy::too_many_arguments)] // the stages of a step, kept a plain function on purpose
pub fn backward_step(
    model: &MultiTaskModel,
    groups: &ParamGroups,
    method: &mut Method,
    mode: GradMode,
    x: &Tensor,
    targets: &[TaskTarget],
    step: u64,
    epoch: usize,
) -> Result<StepOutcome> {
    let fwd = model.forward_t(x, true)?;
    let losses = model.losses(&fwd.outputs, targets)?;
    let wrt = match mode {
        GradMode::Parameters => Wrt::Parameters,
        GradMode::Representation => Wrt::Representation(fwd.features.shared.as_ref()),
    };
    combine_and_backward(
        model,
        groups,
        method,
        wrt,
        &losses,
        fwd.features.auxiliary_loss.as_ref(),
        step,
        epoch,
    )
}

/// What the Jacobian of a gradient-level method is taken with respect to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wrt<'a> {
    /// The shared parameters.
    Parameters,
    /// The forward pass's shared representation, if the architecture has one.
    Representation(Option<&'a Tensor>),
}

/// The combine and backward stages of a step, given the K task losses: a loss with no
/// graph (a task absent from the step, passed as a constant zero) is an exact zero to a
/// weighting and a zero Jacobian row to an aggregator. `aux` is the architecture's own
/// term, added outside the combination.
#[allow(clippy::too_many_arguments)] // the stages of a step, kept a plain function on purpose
pub(crate) fn combine_and_backward(
    model: &MultiTaskModel,
    groups: &ParamGroups,
    method: &mut Method,
    wrt: Wrt<'_>,
    losses: &[Tensor],
    aux: Option<&Tensor>,
    step: u64,
    epoch: usize,
) -> Result<StepOutcome> {
    let values = check_losses(losses, Some(step))?;
    let ctx = StepContext {
        step,
        epoch,
        losses: &values,
    };
    let weights = match method {
        Method::Weighting(w) => {
            let stacked = Tensor::f_stack(losses, 0)?;
            let mut total = w.combine(&stacked, &ctx)?;
            if let Some(aux) = aux {
                total += aux;
            }
            total.f_backward()?;
            w.weights()
        }
        Method::Aggregator(a) => {
            let (wrt, representation): (Vec<Tensor>, bool) = match wrt {
                Wrt::Parameters => (groups.shared_tensors(), false),
                Wrt::Representation(z) => (vec![z.map(Tensor::shallow_clone).ok_or_else(|| {
                    Error::config(format!(
                        "rep-grad mode needs a shared representation, and the {} architecture has none",
                        model.architecture().name()
                    ))
                })?], true),
            };
            let keep_graph = representation || aux.is_some();
            let jac = jacobian_and_head_grads(losses, &wrt, groups, keep_graph)?;
            // The aggregator checks J for NaN/Inf where it is cheapest (on the Gram
            // diagonal when it forms one); the step adds its number to the error.
            let agg = a.aggregate(&jac, &ctx).map_err(|e| e.at_step(step))?;
            if representation {
                let z = &wrt[0];
                let g = agg.gradient.f_view(z.size().as_slice())?.f_detach()?;
                (z * g).f_sum(z.kind())?.f_backward()?;
            } else {
                params::write_flat_grad(&wrt, &agg.gradient)?;
            }
            // The architecture's own term is not a task signal: it bypasses the
            // aggregator and accumulates on top of the aggregated gradient.
            if let Some(aux) = aux {
                aux.f_backward()?;
            }
            agg.weights.unwrap_or_default()
        }
    };
    Ok(StepOutcome {
        losses: values,
        weights,
    })
}

/// Row k of the returned Jacobian is ∇ loss_k with respect to `wrt` (flattened); as a
/// by-product, each task's own parameters receive that task's gradient, so the K
/// backward passes are all the step needs. A loss without a graph (a task absent from
/// the step) has a zero row and leaves its task's gradients as they are.
fn jacobian_and_head_grads(
    losses: &[Tensor],
    wrt: &[Tensor],
    groups: &ParamGroups,
    keep_last_graph: bool,
) -> Result<Tensor> {
    let k = losses.len();
    params::ensure_grads(&groups.all_tensors())?;
    let jac = empty_jacobian(k, wrt)?;
    for (t, loss) in losses.iter().enumerate() {
        if !loss.requires_grad() {
            let _ = jac.f_select(0, t as i64)?.f_zero_()?;
            continue;
        }
        let own = groups.task.get(t).map(|g| g.as_slice()).unwrap_or(&[]);
        let mut inputs: Vec<Tensor> = wrt.iter().map(Tensor::shallow_clone).collect();
        inputs.extend(own.iter().map(|p| p.tensor.shallow_clone()));
        let keep = keep_last_graph || t + 1 < k;
        let grads = Tensor::f_run_backward(&[loss], &inputs, keep, false)?;
        let (shared_g, own_g) = grads.split_at(wrt.len());
        write_jacobian_row(&jac, t, shared_g, wrt)?;
        tch::no_grad(|| -> Result<()> {
            for (p, g) in own.iter().zip(own_g) {
                if g.defined() {
                    p.tensor.grad().f_copy_(g)?;
                }
            }
            Ok(())
        })?;
    }
    Ok(jac)
}
