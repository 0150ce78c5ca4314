//! One training step of a [`MultiTaskModel`]: what it trains on (one batch for every
//! task, or one batch per drawn task), the forward pass to K task losses, and the
//! engine ([`mtl_losses::engine`]) from those losses to `.grad()`. The optimiser update
//! is left to the caller, so a collective could sit between the stages without the
//! methods knowing.

use crate::model::MultiTaskModel;
use mtl_core::{Collective, Error, ParamGroups, Result, TaskTarget};
use mtl_data::Batch;
use mtl_losses::{Backward, DataParallelMode, Method, Wrt};
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

pub use mtl_losses::StepOutcome;

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

/// What one step trains on.
#[derive(Debug)]
pub enum StepData {
    /// One batch with a target for every task (a [`MultiTaskDataset`](mtl_data::MultiTaskDataset) batch).
    Joint(Batch),
    /// Tasks that bring their own rows: `(task, batch)` for each task drawn, the batch
    /// holding that task's one target (a [`TaskSchedule`](mtl_data::TaskSchedule) step).
    /// A task not drawn has no loss: a weighting sees an exact zero for it, an
    /// aggregator a zero Jacobian row, and its own parameters receive no gradient.
    PerTask(Vec<(usize, Batch)>),
}

/// The K task losses of a forward pass, with what the engine needs besides.
#[derive(Debug)]
pub struct StepLosses {
    /// One scalar per task (a constant zero for an absent task).
    pub losses: Vec<Tensor>,
    /// `absent[k]`: task k was not drawn this step.
    pub absent: Vec<bool>,
    /// The representation every task read, when there is one.
    pub shared: Option<Tensor>,
    /// The architecture's own term, outside the task combination.
    pub auxiliary: Option<Tensor>,
}

impl StepData {
    /// Moves the batches to `device`.
    pub fn to_device(self, device: Device) -> Self {
        match self {
            StepData::Joint(b) => StepData::Joint(b.to_device(device)),
            StepData::PerTask(parts) => StepData::PerTask(
                parts
                    .into_iter()
                    .map(|(t, b)| (t, b.to_device(device)))
                    .collect(),
            ),
        }
    }

    /// Rank `rank`'s share of every batch of the step, split over `world` ranks (see
    /// [`Batch::shard`]): the union of the ranks' shards is the step.
    pub fn shard(&self, rank: usize, world: usize) -> StepData {
        match self {
            StepData::Joint(b) => StepData::Joint(b.shard(rank, world)),
            StepData::PerTask(parts) => StepData::PerTask(
                parts
                    .iter()
                    .map(|(t, b)| (*t, b.shard(rank, world)))
                    .collect(),
            ),
        }
    }

    /// How many labelled entries each of the `k` tasks has in the step (its mask's
    /// ones, else its rows): the weight its loss carries when shards are reduced.
    pub fn label_counts(&self, k: usize) -> Result<Vec<f64>> {
        let count = |t: &TaskTarget| -> Result<f64> {
            Ok(match &t.mask {
                Some(m) => m.f_sum(tch::Kind::Double)?.double_value(&[]),
                None => t.values.size().first().copied().unwrap_or(0) as f64,
            })
        };
        let mut counts = vec![0.0; k];
        match self {
            StepData::Joint(b) => {
                for (c, t) in counts.iter_mut().zip(&b.targets) {
                    *c = count(t)?;
                }
            }
            StepData::PerTask(parts) => {
                for (t, b) in parts {
                    if let (Some(c), Some(target)) = (counts.get_mut(*t), b.targets.first()) {
                        *c = count(target)?;
                    }
                }
            }
        }
        Ok(counts)
    }

    /// Which of the `k` tasks the step trains.
    pub fn drawn(&self, k: usize) -> Vec<bool> {
        match self {
            StepData::Joint(_) => vec![true; k],
            StepData::PerTask(parts) => {
                let mut drawn = vec![false; k];
                for (t, _) in parts {
                    if let Some(d) = drawn.get_mut(*t) {
                        *d = true;
                    }
                }
                drawn
            }
        }
    }

    /// The forward pass (`train` for dropout and batch statistics) and its K losses.
    pub fn losses(&self, model: &MultiTaskModel, train: bool, step: u64) -> Result<StepLosses> {
        match self {
            StepData::Joint(batch) => {
                let fwd = model.forward_t(&batch.x, train)?;
                Ok(StepLosses {
                    losses: model.losses(&fwd.outputs, &batch.targets)?,
                    absent: Vec::new(),
                    shared: fwd.features.shared,
                    auxiliary: fwd.features.auxiliary_loss,
                })
            }
            StepData::PerTask(parts) => per_task_losses(model, parts, train, step),
        }
    }
}

/// Runs task k's batch through its own path of the model for each drawn task.
fn per_task_losses(
    model: &MultiTaskModel,
    parts: &[(usize, Batch)],
    train: bool,
    step: u64,
) -> Result<StepLosses> {
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
        let fwd = model.forward_task(&batch.x, task, train)?;
        losses[task] = Some(model.task_loss(task, &fwd.output, &batch.targets[0])?);
        aux.extend(fwd.features.auxiliary_loss);
    }
    let absent: Vec<bool> = losses.iter().map(Option::is_none).collect();
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
    let auxiliary = match aux.first() {
        None => None,
        Some(first) => Some(Tensor::f_stack(&aux, 0)?.f_mean(first.kind())?),
    };
    Ok(StepLosses {
        losses,
        absent,
        shared: None,
        auxiliary,
    })
}

/// The error for rep-grad mode without one shared representation.
fn no_representation(model: &MultiTaskModel, data: &StepData) -> Error {
    match data {
        StepData::PerTask(_) => Error::config(
            "rep-grad mode (GradMode::Representation) needs one shared representation of one \
             batch; with tasks that each bring their own batch there is none: use \
             GradMode::Parameters",
        ),
        StepData::Joint(_) => Error::config(format!(
            "rep-grad mode needs a shared representation, and the {} architecture has none",
            model.architecture().name()
        )),
    }
}

/// Runs forward and backward for one step and leaves the combined gradient in every
/// parameter's `.grad()` (the caller zeroes grads before and steps the optimiser
/// after): the step's losses go through [`mtl_losses::Backward`] with the model's
/// shared parameters (or its shared representation) and each task's own parameters.
#[allow(clippy::too_many_arguments)] // the stages of a step, kept a plain function on purpose
pub fn train_step(
    model: &MultiTaskModel,
    groups: &ParamGroups,
    method: &mut Method,
    mode: GradMode,
    data: &StepData,
    step: u64,
    epoch: usize,
) -> Result<StepOutcome> {
    train_step_in(model, groups, method, mode, data, step, epoch, None)
}

/// [`train_step`] on one rank of a data-parallel group (`parallel`: the group and the
/// aggregation mode): `data` is this rank's shard of the step ([`StepData::shard`]),
/// and the engine reduces at its seam so that every rank ends with the gradient one
/// process would compute on the whole step (exactly, in the exact mode).
#[allow(clippy::too_many_arguments)] // the stages of a step, kept a plain function on purpose
pub fn train_step_in(
    model: &MultiTaskModel,
    groups: &ParamGroups,
    method: &mut Method,
    mode: GradMode,
    data: &StepData,
    step: u64,
    epoch: usize,
    parallel: Option<(&dyn Collective, DataParallelMode)>,
) -> Result<StepOutcome> {
    check_representation(model, method, mode, data)?;
    let out = data.losses(model, true, step)?;
    backward_losses(
        model, groups, method, mode, data, out, step, epoch, parallel,
    )
}

/// Rep-grad mode needs one batch shared by every task.
pub(crate) fn check_representation(
    model: &MultiTaskModel,
    method: &Method,
    mode: GradMode,
    data: &StepData,
) -> Result<()> {
    let representation = method.is_gradient_level() && mode == GradMode::Representation;
    if representation && matches!(data, StepData::PerTask(_)) {
        return Err(no_representation(model, data));
    }
    Ok(())
}

/// The engine's half of [`train_step_in`]: the step's losses `out` (from
/// [`StepData::losses`] or a training regime's variant of it) to `.grad()`.
#[allow(clippy::too_many_arguments)] // the stages of a step, kept a plain function on purpose
pub(crate) fn backward_losses(
    model: &MultiTaskModel,
    groups: &ParamGroups,
    method: &mut Method,
    mode: GradMode,
    data: &StepData,
    out: StepLosses,
    step: u64,
    epoch: usize,
    parallel: Option<(&dyn Collective, DataParallelMode)>,
) -> Result<StepOutcome> {
    let representation = method.is_gradient_level() && mode == GradMode::Representation;
    let shared = groups.shared_tensors();
    let task_params: Vec<Vec<Tensor>> = groups
        .task
        .iter()
        .map(|ps| ps.iter().map(|p| p.tensor.shallow_clone()).collect())
        .collect();
    let wrt = match (representation, &out.shared) {
        (false, _) => Wrt::Parameters(&shared),
        (true, Some(z)) => Wrt::Representation {
            features: z,
            parameters: &shared,
        },
        (true, None) => return Err(no_representation(model, data)),
    };
    let counts = match parallel {
        Some(_) => data.label_counts(model.num_tasks())?,
        None => Vec::new(),
    };
    let mut backward = Backward::new(&out.losses, wrt)
        .task_parameters(&task_params)
        .absent(&out.absent)
        .auxiliary(out.auxiliary.as_ref())
        .counts(&counts)
        .at(step, epoch);
    if let Some((g, mode)) = parallel {
        backward = backward.collective(g).data_parallel_mode(mode);
    }
    backward.run(method)
}

/// [`train_step`] on one batch with a target for every task.
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
    let data = StepData::Joint(Batch {
        x: x.shallow_clone(),
        targets: targets.iter().map(share_target).collect(),
        rows: Vec::new(),
    });
    train_step(model, groups, method, mode, &data, step, epoch)
}

/// [`train_step`] on per-task batches, `(task, batch)` with `batch.targets` holding
/// that task's one target (as
/// [`TaskSchedule::next_step`](mtl_data::TaskSchedule::next_step) gives them).
///
/// Parameter-mode Jacobian rows come from the tasks' separate graphs: row `k` is the
/// gradient of task `k`'s loss on its own batch with respect to the shared parameters.
/// Methods are built for K tasks, so the tasks absent from the step still take part
/// with a zero loss (zero row). Methods that keep per-task history or that look for a
/// common descent direction (UW, DWA, GradNorm, MGDA, Nash-MTL…) read those zeros as
/// real; sample every task at every step for them. `mode` must be
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
    let data = StepData::PerTask(
        parts
            .iter()
            .map(|(t, b)| {
                let batch = Batch {
                    x: b.x.shallow_clone(),
                    targets: b.targets.iter().map(share_target).collect(),
                    rows: b.rows.clone(),
                };
                (*t, batch)
            })
            .collect(),
    );
    train_step(model, groups, method, mode, &data, step, epoch)
}

/// A target sharing `t`'s tensors.
fn share_target(t: &TaskTarget) -> TaskTarget {
    TaskTarget {
        values: t.values.shallow_clone(),
        mask: t.mask.as_ref().map(Tensor::shallow_clone),
    }
}
