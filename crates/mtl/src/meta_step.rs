//! The meta step of a method that learns its task weights on validation data (Auto-λ,
//! `mtl_losses::methods::AutoLambda`), for a [`MultiTaskModel`]: before training step
//! `step`, the training batch and a validation batch go through
//! [`mtl_losses::bilevel::meta_gradient`] (a virtual step of the model's optimiser, the
//! validation gradient there, a finite-difference Hessian–vector product) and the method
//! applies the meta-gradient to its weights. The model's parameters end bit-identical
//! and their `.grad()` untouched, so the ordinary step that follows is unchanged but for
//! the new weights.
//!
//! Every forward runs in training mode, as the reference's (batch-norm batch statistics;
//! running statistics are updated by these forwards too, as there). The two perturbed
//! forwards θ ± εv are seeded alike from the run seed and the step, so dropout draws the
//! same masks for both and their difference measures the parameters, not the noise.

use crate::model::MultiTaskModel;
use crate::step::StepData;
use mtl_core::{derive_rng, Error, Result};
use mtl_losses::bilevel::{meta_gradient, MetaGradient, MetaProblem, TrainLosses, VirtualStep};
use mtl_losses::Method;
use rand::RngCore;
use tch::Tensor;

/// Runs the meta step of `method` before training step `step` and applies it
/// (`MetaWeighting::meta_update`); returns the meta-gradient. `parameters` are every
/// trained parameter, `momentum_buffers` their SGD momentum buffers (or empty) and
/// `virtual_step` the optimiser's terms at its current learning rate; `seed` is the
/// run seed. Errors: a method without a meta side ([`Error::Config`]), and whatever
/// the forwards or [`meta_gradient`] return.
#[allow(clippy::too_many_arguments)] // the stages of a meta step, kept a plain function
pub fn meta_step(
    model: &MultiTaskModel,
    method: &mut Method,
    parameters: &[Tensor],
    momentum_buffers: &[Tensor],
    virtual_step: VirtualStep,
    train: &StepData,
    validation: &StepData,
    step: u64,
    seed: u64,
) -> Result<MetaGradient> {
    let name = method.name();
    let meta = method.meta().ok_or_else(|| {
        Error::config(format!(
            "method `{name}` learns no weights on validation data: it has no meta step"
        ))
    })?;
    let (lambdas, validation_weights) = (meta.lambdas(), meta.validation_weights());
    let problem = MetaProblem {
        parameters,
        momentum_buffers,
        step: virtual_step,
        lambdas: &lambdas,
        validation_weights: &validation_weights,
    };
    // Calls 2 and 3 are the perturbed forwards θ ± εv: the same dropout masks for both.
    let fd_seed = (derive_rng(seed, &format!("auto-lambda-step-{step}")).next_u64() >> 1) as i64;
    let mut calls = 0u32;
    let mut train_losses = || -> Result<TrainLosses> {
        calls += 1;
        if calls > 1 {
            tch::manual_seed(fd_seed);
        }
        let out = train.losses(model, true, step)?;
        Ok(TrainLosses {
            losses: out.losses,
            auxiliary: out.auxiliary,
        })
    };
    let mut validation_losses = || Ok(validation.losses(model, true, step)?.losses);
    let g = meta_gradient(&problem, &mut train_losses, &mut validation_losses)
        .map_err(|e| e.at_step(step))?;
    method
        .meta_mut()
        .ok_or_else(|| Error::config(format!("method `{name}` has no meta step")))?
        .meta_update(&g.gradient, step)?;
    Ok(g)
}
