//! [`Method`]: a weighting or an aggregator behind one type, with the behaviour the
//! engine, the trainer and checkpoints need from either, so none of them matches on
//! the level.

use crate::{Aggregator, MetaWeighting, MethodLevel, Weighting};
use mtl_core::Result;
use tch::Tensor;

/// A task-combination method of either level, as the registry builds it.
#[derive(Debug)]
pub enum Method {
    /// A loss-level method.
    Weighting(Box<dyn Weighting>),
    /// A gradient-level method.
    Aggregator(Box<dyn Aggregator>),
}

impl Method {
    /// The registry name.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Weighting(w) => w.name(),
            Method::Aggregator(a) => a.name(),
        }
    }

    /// Loss or gradient level.
    pub fn level(&self) -> MethodLevel {
        match self {
            Method::Weighting(_) => MethodLevel::Loss,
            Method::Aggregator(_) => MethodLevel::Gradient,
        }
    }

    /// Whether the method needs the task Jacobian.
    pub fn is_gradient_level(&self) -> bool {
        self.level() == MethodLevel::Gradient
    }

    /// The task count the method was built for; `None` when it takes any.
    pub fn num_tasks(&self) -> Option<usize> {
        match self {
            Method::Weighting(w) => w.num_tasks(),
            Method::Aggregator(a) => a.num_tasks(),
        }
    }

    /// Learnable parameters of the method (UW's log-variances), to optimise with the
    /// model; empty for most methods.
    pub fn parameters(&self) -> Vec<Tensor> {
        match self {
            Method::Weighting(w) => w.parameters(),
            Method::Aggregator(_) => Vec::new(),
        }
    }

    /// The internal state besides [`Method::parameters`], as JSON for checkpoints.
    pub fn state(&self) -> serde_json::Value {
        match self {
            Method::Weighting(w) => w.state(),
            Method::Aggregator(a) => a.state(),
        }
    }

    /// The bilevel side of a method that learns its weights through a validation loss
    /// (Auto-λ), `None` for the others: such a method needs validation data and a meta
    /// step before each training step.
    pub fn meta(&self) -> Option<&dyn MetaWeighting> {
        match self {
            Method::Weighting(w) => w.meta(),
            Method::Aggregator(_) => None,
        }
    }

    /// [`Method::meta`], mutable.
    pub fn meta_mut(&mut self) -> Option<&mut dyn MetaWeighting> {
        match self {
            Method::Weighting(w) => w.meta_mut(),
            Method::Aggregator(_) => None,
        }
    }

    /// Restores what [`Method::state`] returned.
    pub fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        match self {
            Method::Weighting(w) => w.load_state(state),
            Method::Aggregator(a) => a.load_state(state),
        }
    }
}

impl From<Box<dyn Weighting>> for Method {
    fn from(w: Box<dyn Weighting>) -> Self {
        Method::Weighting(w)
    }
}

impl From<Box<dyn Aggregator>> for Method {
    fn from(a: Box<dyn Aggregator>) -> Self {
        Method::Aggregator(a)
    }
}
