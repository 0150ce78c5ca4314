//! The [`Weighting`] and [`Aggregator`] traits.

use mtl_core::Result;
use tch::Tensor;

/// What a method may know about the step besides its main input.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepContext<'a> {
    /// The global training step (0-based).
    pub step: u64,
    /// The epoch (0-based).
    pub epoch: usize,
    /// The K task loss values of this step (detached), for methods that read them.
    pub losses: &'a [f64],
}

/// A loss-level method: combines the K task losses into the scalar to backpropagate.
pub trait Weighting: std::fmt::Debug + Send {
    /// The registry name.
    fn name(&self) -> &'static str;
    /// `losses` is `[K]` and carries the graph; returns a scalar that does too.
    fn combine(&mut self, losses: &Tensor, ctx: &StepContext) -> Result<Tensor>;
    /// The task weights used by the last `combine` (d total / d loss_k), for reports.
    fn weights(&self) -> Vec<f64>;
    /// The task count the method was built for (its state is sized to it); `None` for
    /// a method that takes any K.
    fn num_tasks(&self) -> Option<usize> {
        None
    }
    /// Learnable parameters (e.g. UW's log-variances); the trainer optimises them with
    /// the model.
    fn parameters(&self) -> Vec<Tensor> {
        Vec::new()
    }
    /// Internal state besides [`Weighting::parameters`] (which checkpoints store as
    /// tensors), as JSON for checkpoints; `Null` for a method without any.
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// Restores what [`Weighting::state`] returned.
    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        no_state(self.name(), state)
    }
    /// The bilevel side of a weighting whose weights are learned through a validation
    /// loss (Auto-λ); `None` for every other method. A trainer that finds one runs a
    /// meta step ([`crate::bilevel::meta_gradient`]) on a validation batch before each
    /// training step.
    fn meta(&self) -> Option<&dyn MetaWeighting> {
        None
    }
    /// [`Weighting::meta`], mutable, to apply the meta-gradient.
    fn meta_mut(&mut self) -> Option<&mut dyn MetaWeighting> {
        None
    }
}

/// A weighting whose task weights λ are updated by a meta-gradient: the derivative of a
/// validation loss, taken after one virtual training step, with respect to λ
/// (see [`crate::bilevel`]).
pub trait MetaWeighting {
    /// The current task weights λ (the training loss is Σₖ λₖ Lₖ).
    fn lambdas(&self) -> Vec<f64>;
    /// The weight of each task in the validation loss (1 for a primary task, 0 for an
    /// auxiliary one).
    fn validation_weights(&self) -> Vec<f64>;
    /// Applies ∂L_val/∂λ (`gradient`, K values) before training step `step`.
    fn meta_update(&mut self, gradient: &[f64], step: u64) -> Result<()>;
}

/// The default `load_state`: a stateless method accepts only `Null`.
fn no_state(name: &str, state: &serde_json::Value) -> Result<()> {
    if state.is_null() {
        Ok(())
    } else {
        Err(mtl_core::Error::config(format!(
            "method `{name}` keeps no state, but was given {state}"
        )))
    }
}

/// The result of an aggregation.
#[derive(Debug)]
pub struct Aggregation {
    /// The d-vector to use as the shared gradient.
    pub gradient: Tensor,
    /// The weights w with `gradient = wᵀ J`, when the method is such a combination.
    pub weights: Option<Vec<f64>>,
}

/// A gradient-level method: maps the K×d task Jacobian J to one d-vector.
pub trait Aggregator: std::fmt::Debug + Send {
    /// The registry name.
    fn name(&self) -> &'static str;
    /// Aggregates `jacobian` (`[K, d]`, row k = ∇ loss_k). Errors on NaN/Inf (naming the
    /// task), on a task count that does not match the method's state, on a bad shape.
    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation>;
    /// The task count the method was built for (its state is sized to it); `None` for
    /// a method that takes any K.
    fn num_tasks(&self) -> Option<usize> {
        None
    }
    /// Internal state (learned weights, RNG position...) as JSON for checkpoints;
    /// `Null` for a stateless method.
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// Restores what [`Aggregator::state`] returned.
    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        no_state(self.name(), state)
    }
}
