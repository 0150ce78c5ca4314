//! The multi-task step engine: from K task losses to gradients in `.grad()`, for any
//! `tch` model.
//!
//! It is the same engine the `mtl` trainer, its diagnostics and its benchmarks run, cut
//! into stages that are plain functions over tensors:
//!
//! ```text
//! check (inputs, losses) → Jacobian rows → [seam] → combine → write gradients
//! ```
//!
//! [`backward`] and [`mtl_backward`] run all of them (TorchJD's `backward` and
//! `mtl_backward`); [`Backward`] sets every option. A caller that needs to act between
//! the stages — a data-parallel all-reduce of the losses or of the Jacobian at the seam
//! — calls [`check`], [`jacobian`], [`combine`] and [`write_gradient`] itself.
//!
//! Gradients are *accumulated* into `.grad()`, as `Tensor::backward` does: zero them
//! before the step (the optimiser's `zero_grad`) and step the optimiser after.
//!
//! ```
//! use mtl_losses::{by_name, engine};
//! use tch::{nn, nn::Module, nn::OptimizerConfig, Device, Kind, Tensor};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let model = nn::seq().add(nn::linear(vs.root() / "l", 3, 2, Default::default()));
//! let mut opt = nn::Adam::default().build(&vs, 1e-2).unwrap();
//! let mut method = by_name("upgrad", 2, 0)?;
//! let (x, y) = (Tensor::randn([8, 3], (Kind::Float, Device::Cpu)), Tensor::ones([8, 2], (Kind::Float, Device::Cpu)));
//! let out = model.forward(&x);
//! let losses = [(out.get(0) - y.get(0)).square().mean(Kind::Float), out.abs().mean(Kind::Float)];
//! opt.zero_grad();
//! let step = engine::backward(&losses, &vs.trainable_variables(), &mut method)?;
//! opt.step();
//! assert_eq!(step.weights.len(), 2);
//! # Ok::<(), mtl_core::Error>(())
//! ```

use crate::data_parallel as dp;
use crate::{Aggregation, Method, StepContext, Weighting};
use mtl_core::jacobian::check_per_task_lists;
use mtl_core::{check_losses, jacobian_rows, params, Collective, Error, JacobianRequest, Result};
use tch::Tensor;

/// What the task losses are differentiated with respect to.
#[derive(Debug, Clone, Copy)]
pub enum Wrt<'a> {
    /// The shared parameters: the Jacobian is K × (their total size), and the combined
    /// gradient is accumulated into their `.grad()`.
    Parameters(&'a [Tensor]),
    /// A shared representation every task reads ("rep-grad", LibMTL's `rep_grad`):
    /// the Jacobian is K × (its size), much smaller than the parameters' for a large
    /// trunk, and the combined gradient is backpropagated from `features` into
    /// `parameters`, the shared parameters behind it. A loss-level method ignores
    /// `features` and backpropagates its combined loss as usual.
    Representation {
        /// The representation (it must require grad).
        features: &'a Tensor,
        /// The shared parameters behind it.
        parameters: &'a [Tensor],
    },
}

impl Wrt<'_> {
    /// The parameters that receive the combined gradient.
    fn parameters(&self) -> &[Tensor] {
        match self {
            Wrt::Parameters(p) => p,
            Wrt::Representation { parameters, .. } => parameters,
        }
    }
}

/// What one step measured.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    /// The K task loss values (0 for an absent task).
    pub losses: Vec<f64>,
    /// The task weights the method used (empty when it reports none).
    pub weights: Vec<f64>,
}

/// One engine step with every option; [`backward`] and [`mtl_backward`] are its
/// common forms.
#[derive(Clone, Copy)]
pub struct Backward<'a> {
    losses: &'a [Tensor],
    wrt: Wrt<'a>,
    task_parameters: &'a [Vec<Tensor>],
    absent: &'a [bool],
    auxiliary: Option<&'a Tensor>,
    step: u64,
    epoch: usize,
    collective: Option<&'a dyn Collective>,
    counts: &'a [f64],
    mode: dp::DataParallelMode,
}

impl std::fmt::Debug for Backward<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backward")
            .field("tasks", &self.losses.len())
            .field("wrt", &self.wrt)
            .field("absent", &self.absent)
            .field("step", &self.step)
            .field("epoch", &self.epoch)
            .field("world_size", &self.collective.map(|c| c.world_size()))
            .finish()
    }
}

impl<'a> Backward<'a> {
    /// A step over the K `losses`, differentiated with respect to `wrt`.
    pub fn new(losses: &'a [Tensor], wrt: Wrt<'a>) -> Self {
        Backward {
            losses,
            wrt,
            task_parameters: &[],
            absent: &[],
            auxiliary: None,
            step: 0,
            epoch: 0,
            collective: None,
            counts: &[],
            mode: dp::DataParallelMode::Exact,
        }
    }
    /// Task k's own parameters (its head), which receive ∇ loss_k: for a gradient-level
    /// method from the same backward pass as Jacobian row k.
    pub fn task_parameters(mut self, params: &'a [Vec<Tensor>]) -> Self {
        self.task_parameters = params;
        self
    }
    /// `absent[k]`: task k has no loss this step (its entry in `losses` may be a
    /// constant zero): a weighting sees a zero loss, an aggregator a zero Jacobian
    /// row, and its own parameters receive nothing.
    pub fn absent(mut self, absent: &'a [bool]) -> Self {
        self.absent = absent;
        self
    }
    /// A term the model adds to the objective outside the task combination (soft
    /// sharing's tie, an adversarial loss): backpropagated as it is.
    pub fn auxiliary(mut self, term: Option<&'a Tensor>) -> Self {
        self.auxiliary = term;
        self
    }
    /// The step and epoch the method sees (schedules, per-epoch state) and errors name.
    pub fn at(mut self, step: u64, epoch: usize) -> Self {
        self.step = step;
        self.epoch = epoch;
        self
    }

    /// Data parallelism: this rank's losses are its shard of a batch split over
    /// `group`, and the step computes, on every rank, the update one process would
    /// compute on the union of the shards (see the `data_parallel` stages in the
    /// crate's source: the losses, the Jacobian or the gradients are reduced at the
    /// seam, and every rank's method is checked to choose the same task weights).
    /// A group of one rank changes nothing.
    pub fn collective(mut self, group: &'a dyn Collective) -> Self {
        self.collective = Some(group);
        self
    }
    /// Exact (the default) or local aggregation of a gradient-level method under
    /// [`Backward::collective`] (see [`DataParallelMode`](crate::DataParallelMode)).
    pub fn data_parallel_mode(mut self, mode: dp::DataParallelMode) -> Self {
        self.mode = mode;
        self
    }
    /// `counts[k]`: how many labelled entries task k's loss averages over on this rank,
    /// so that shards with different numbers of labels weigh in as the union's mean
    /// does. Without it every present task counts one per rank (equal shards).
    pub fn counts(mut self, counts: &'a [f64]) -> Self {
        self.counts = counts;
        self
    }

    /// Runs every stage with `method`.
    pub fn run(self, method: &mut Method) -> Result<StepOutcome> {
        let values = check(&self, method)?;
        if let Some(group) = self.collective.filter(|g| g.world_size() > 1) {
            return self.run_parallel(group, method, &values);
        }
        let ctx = StepContext {
            step: self.step,
            epoch: self.epoch,
            losses: &values,
        };
        let weights = match method {
            Method::Weighting(w) => {
                weighted_backward(w.as_mut(), self.losses, self.auxiliary, &ctx)?
            }
            Method::Aggregator(_) => {
                let jac = jacobian(&self)?;
                // The seam: a collective would reduce `values` and `jac` here.
                let agg = combine(method, &jac, &ctx)?;
                write_gradient(&self, &agg.gradient)?;
                agg.weights.unwrap_or_default()
            }
        };
        Ok(StepOutcome {
            losses: values,
            weights,
        })
    }

    /// [`Backward::run`] on one rank of a data-parallel group (exact mode).
    fn run_parallel(
        self,
        group: &dyn Collective,
        method: &mut Method,
        local: &[f64],
    ) -> Result<StepOutcome> {
        let k = self.losses.len();
        let absent = |t: usize| self.absent.get(t).copied().unwrap_or(false);
        if !self.counts.is_empty() && self.counts.len() != k {
            return Err(Error::TaskCount {
                context: "labelled counts of the step".into(),
                expected: k,
                got: self.counts.len(),
            });
        }
        let counts: Vec<f64> = (0..k)
            .map(|t| match absent(t) {
                true => 0.0,
                false => self.counts.get(t).copied().unwrap_or(1.0).max(0.0),
            })
            .collect();
        let shares = dp::reduce_losses(group, local, &counts)?;
        let losses = (0..k)
            .map(|t| dp::globalize(&self.losses[t], shares.values[t], shares.scale[t]))
            .collect::<Result<Vec<_>>>()?;
        let global = Backward {
            losses: &losses,
            ..self
        };
        let ctx = StepContext {
            step: self.step,
            epoch: self.epoch,
            losses: &shares.values,
        };
        let tasks: Vec<Tensor> = self
            .task_parameters
            .iter()
            .flatten()
            .map(Tensor::shallow_clone)
            .chain(method.parameters())
            .collect();
        let shared = self.wrt.parameters();
        let everything = || {
            shared
                .iter()
                .map(Tensor::shallow_clone)
                .chain(tasks.iter().map(Tensor::shallow_clone))
                .collect::<Vec<_>>()
        };
        let weights = match method {
            Method::Weighting(w) => {
                let weights = weighted_backward(w.as_mut(), &losses, self.auxiliary, &ctx)?;
                dp::average_grads(group, &everything())?;
                weights
            }
            Method::Aggregator(_) => {
                let jac = jacobian(&global)?;
                let agg = match self.wrt {
                    _ if self.mode == dp::DataParallelMode::Local => {
                        // Each rank's own aggregation of its block (scaled by its
                        // shares), averaged like a loss-level method's gradient.
                        let agg = combine(method, &jac, &ctx)?;
                        write_gradient(&global, &agg.gradient)?;
                        dp::average_grads(group, &everything())?;
                        agg
                    }
                    Wrt::Parameters(_) => {
                        let jac = dp::reduce_jacobian(group, &jac)?;
                        let agg = combine(method, &jac, &ctx)?;
                        write_gradient(&global, &agg.gradient)?;
                        // The shared gradient is already the same on every rank, unless
                        // a rank's own auxiliary term added to it.
                        match self.auxiliary {
                            Some(_) => dp::average_grads(group, &everything())?,
                            None => dp::average_grads(group, &tasks)?,
                        }
                        agg
                    }
                    Wrt::Representation { .. } => {
                        let m = jac.size().get(1).copied().unwrap_or(0);
                        let full = dp::gather_representation(group, &jac)?;
                        let agg = combine(method, &full, &ctx)?;
                        write_gradient(&global, &dp::own_block(group, &agg.gradient, m)?)?;
                        dp::average_grads(group, &everything())?;
                        agg
                    }
                };
                agg.weights.unwrap_or_default()
            }
        };
        // Local aggregation chooses other weights on each rank by design.
        let local = self.mode == dp::DataParallelMode::Local && method.is_gradient_level();
        if !local && self.step.is_multiple_of(dp::WEIGHT_CHECK_EVERY) {
            dp::check_same_weights(group, method.name(), &weights, self.step)?;
        }
        Ok(StepOutcome {
            losses: shares.values,
            weights,
        })
    }
}

/// A loss-level step: the weighted sum of the stacked losses (plus the auxiliary term)
/// backpropagated once; the weights the method used.
fn weighted_backward(
    w: &mut dyn Weighting,
    losses: &[Tensor],
    auxiliary: Option<&Tensor>,
    ctx: &StepContext<'_>,
) -> Result<Vec<f64>> {
    let stacked = Tensor::f_stack(losses, 0)?;
    let mut total = w.combine(&stacked, ctx)?;
    if let Some(aux) = auxiliary {
        total += aux;
    }
    total.f_backward()?;
    Ok(w.weights())
}

/// TorchJD's `backward(losses, aggregator)`: the K `losses` differentiated with
/// respect to `params` (every parameter each loss may depend on), combined by
/// `method`, accumulated into `params`' `.grad()`. A loss-level method backpropagates
/// its combined loss into every parameter behind it, its own learnable ones included
/// (hand [`Method::parameters`] to the optimiser).
pub fn backward(losses: &[Tensor], params: &[Tensor], method: &mut Method) -> Result<StepOutcome> {
    Backward::new(losses, Wrt::Parameters(params)).run(method)
}

/// The multi-task form (TorchJD's `mtl_backward`, in LibMTL's rep-grad sense): the
/// Jacobian is taken with respect to `features`, the representation every task reads;
/// the combined gradient flows through it into `shared` (the parameters behind it),
/// and each task's own parameters `task_params[k]` receive ∇ loss_k.
pub fn mtl_backward(
    losses: &[Tensor],
    features: &Tensor,
    shared: &[Tensor],
    task_params: &[Vec<Tensor>],
    method: &mut Method,
) -> Result<StepOutcome> {
    Backward::new(
        losses,
        Wrt::Representation {
            features,
            parameters: shared,
        },
    )
    .task_parameters(task_params)
    .run(method)
}

/// Stage 1: checks what a step is given and reads the loss values (once). Refuses
/// K = 0, a method built for another K, task lists of another length, a
/// representation that does not require grad, a parameter listed twice or not
/// requiring grad, losses that are not finite scalars (naming the task), and a
/// present task's loss without a graph.
pub fn check(step: &Backward<'_>, method: &Method) -> Result<Vec<f64>> {
    let k = step.losses.len();
    if k == 0 {
        return Err(Error::TaskCount {
            context: "task losses of the step".into(),
            expected: 0,
            got: 0,
        });
    }
    if let Some(m) = method.num_tasks().filter(|&m| m != k) {
        return Err(Error::TaskCount {
            context: format!(
                "method `{}` (built for {m} tasks) given task losses",
                method.name()
            ),
            expected: m,
            got: k,
        });
    }
    check_per_task_lists(k, step.task_parameters.len(), step.absent.len(), "the step")?;
    if let Wrt::Representation { features, .. } = step.wrt {
        if !features.requires_grad() {
            return Err(Error::config(
                "the shared representation does not require grad: pass the trunk's output \
                 itself, not a detached copy",
            ));
        }
    }
    let mut named: Vec<(String, &Tensor)> = step
        .wrt
        .parameters()
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("shared parameter {i}"), p))
        .collect();
    for (t, ps) in step.task_parameters.iter().enumerate() {
        named.extend(
            ps.iter()
                .enumerate()
                .map(|(i, p)| (format!("parameter {i} of task {t}"), p)),
        );
    }
    check_parameters(&named)?;
    let values = check_losses(step.losses, Some(step.step))?;
    let absent = |t: usize| step.absent.get(t).copied().unwrap_or(false);
    if let Some(t) = (0..k).find(|&t| !absent(t) && !step.losses[t].requires_grad()) {
        return Err(Error::config(format!(
            "the loss of task {t} at step {} has no graph (it does not require grad); mark \
             the task absent if it sits this step out",
            step.step
        )));
    }
    Ok(values
        .into_iter()
        .enumerate()
        .map(|(t, v)| if absent(t) { 0.0 } else { v })
        .collect())
}

/// Each parameter once, each requiring grad.
fn check_parameters(named: &[(String, &Tensor)]) -> Result<()> {
    let mut seen: Vec<(usize, usize, &str)> = Vec::with_capacity(named.len());
    for (name, p) in named {
        if !p.requires_grad() {
            return Err(Error::config(format!(
                "{name} does not require grad, so it cannot receive a gradient"
            )));
        }
        if p.numel() == 0 {
            continue;
        }
        let key = (p.data_ptr() as usize, p.numel());
        if let Some((_, _, first)) = seen.iter().find(|(a, n, _)| (*a, *n) == key) {
            return Err(Error::config(format!(
                "{name} is the same tensor as {first}: list each parameter once"
            )));
        }
        seen.push((key.0, key.1, name));
    }
    Ok(())
}

/// Stage 2: the K×d Jacobian of a gradient-level step (rows with respect to the
/// parameters or the representation), with each present task's own parameters
/// receiving its gradient on the way. Keeps the graph when the write stage or an
/// auxiliary term still needs it.
pub fn jacobian(step: &Backward<'_>) -> Result<Tensor> {
    let (inputs, keep) = match step.wrt {
        Wrt::Parameters(p) => (
            p.iter().map(Tensor::shallow_clone).collect(),
            step.auxiliary.is_some(),
        ),
        Wrt::Representation { features, .. } => (vec![features.shallow_clone()], true),
    };
    params::ensure_grads(step.wrt.parameters())?;
    for ps in step.task_parameters {
        params::ensure_grads(ps)?;
    }
    jacobian_rows(
        &JacobianRequest::new(step.losses, &inputs)
            .task_parameters(step.task_parameters)
            .absent(step.absent)
            .keep_graph(keep)
            .at_step(step.step),
    )
}

/// Stage 3: a gradient-level method maps the Jacobian to one d-vector. The aggregator
/// checks J for NaN/Inf where it is cheapest (on the Gram diagonal when it forms one);
/// the error names the step. A loss-level method is a configuration error here.
pub fn combine(
    method: &mut Method,
    jacobian: &Tensor,
    ctx: &StepContext<'_>,
) -> Result<Aggregation> {
    match method {
        Method::Aggregator(a) => a.aggregate(jacobian, ctx).map_err(|e| e.at_step(ctx.step)),
        Method::Weighting(w) => Err(Error::config(format!(
            "`{}` is a loss weighting: it combines losses, not a Jacobian",
            w.name()
        ))),
    }
}

/// Stage 4: accumulates the combined d-vector into the parameters' `.grad()` (through
/// the representation in rep-grad mode), then backpropagates the auxiliary term.
pub fn write_gradient(step: &Backward<'_>, gradient: &Tensor) -> Result<()> {
    match step.wrt {
        Wrt::Parameters(params) => accumulate_flat(params, gradient)?,
        Wrt::Representation {
            features,
            parameters,
        } => {
            let g = gradient.f_view(features.size().as_slice())?.f_detach()?;
            let surrogate = (features * g).f_sum(features.kind())?;
            if !parameters.is_empty() {
                let grads = Tensor::f_run_backward(
                    &[surrogate],
                    parameters,
                    step.auxiliary.is_some(),
                    false,
                )?;
                tch::no_grad(|| -> Result<()> {
                    for (p, g) in parameters.iter().zip(&grads) {
                        if g.defined() {
                            let _ = p.grad().f_add_(g)?;
                        }
                    }
                    Ok(())
                })?;
            }
        }
    }
    // The architecture's own term is not a task signal: it bypasses the combination
    // and accumulates on top of the combined gradient.
    if let Some(aux) = step.auxiliary {
        aux.f_backward()?;
    }
    Ok(())
}

/// Adds a flat gradient (each parameter's part, in order) into the parameters' `.grad()`.
fn accumulate_flat(params: &[Tensor], flat: &Tensor) -> Result<()> {
    let total: i64 = params.iter().map(|p| p.numel() as i64).sum();
    if flat.dim() != 1 || flat.size()[0] != total {
        return Err(Error::shape(
            "combined gradient",
            format!("[{total}]"),
            format!("{:?}", flat.size()),
        ));
    }
    params::ensure_grads(params)?;
    tch::no_grad(|| -> Result<()> {
        let mut offset = 0;
        for p in params {
            let n = p.numel() as i64;
            let src = flat.f_narrow(0, offset, n)?.f_view(p.size().as_slice())?;
            let _ = p.grad().f_add_(&src)?;
            offset += n;
        }
        Ok(())
    })
}
