//! The [`TaskHead`] and [`Metrics`] traits.

use mtl_core::{Error, Result, TaskTarget};
use tch::Tensor;

/// One value of a metric.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricValue {
    /// The metric's name (`"accuracy"`, `"macro_f1"`, `"mse"`...).
    pub name: String,
    /// Its value.
    pub value: f64,
    /// Whether larger is better (for early stopping and Δm).
    pub higher_is_better: bool,
}

impl MetricValue {
    /// The value `value` of the metric `name`; `higher_is_better` says which way is
    /// better.
    ///
    /// ```
    /// let mae = mtl_heads::MetricValue::new("mae", 0.25, false);
    /// assert_eq!((mae.name.as_str(), mae.value, mae.higher_is_better), ("mae", 0.25, false));
    /// ```
    pub fn new(name: impl Into<String>, value: f64, higher_is_better: bool) -> Self {
        MetricValue {
            name: name.into(),
            value,
            higher_is_better,
        }
    }
}

/// A metric accumulator for one task: fed batch by batch, read at the end.
pub trait Metrics: std::fmt::Debug + Send {
    /// Adds one batch of head outputs and targets (rows with missing labels are skipped).
    fn update(&mut self, output: &Tensor, target: &TaskTarget) -> Result<()>;
    /// The metrics over everything seen since the last reset; the first is the primary.
    fn compute(&self) -> Vec<MetricValue>;
    /// Forgets everything seen.
    fn reset(&mut self);
}

/// What a head predicts for a batch: its output read as the task's answer
/// ([`TaskHead::predict`]).
#[derive(Debug)]
pub enum Prediction {
    /// Probabilities of C mutually exclusive classes, `[B, C]`, each row summing to 1.
    Classes(Tensor),
    /// Independent probabilities of the positive label: `[B]` for a binary task,
    /// `[B, L]` for L labels.
    Positive(Tensor),
    /// Real values on the scale the head was trained on, `[B, m]` for a regression
    /// head (its predicted means), the output as it is for a head that does not say.
    Values(Tensor),
}

impl Prediction {
    /// The predicted tensor, whatever its kind.
    pub fn tensor(&self) -> &Tensor {
        match self {
            Prediction::Classes(t) | Prediction::Positive(t) | Prediction::Values(t) => t,
        }
    }
}

/// A task head: prediction layer, loss and metrics of one task. Object-safe.
pub trait TaskHead: std::fmt::Debug + Send {
    /// The task's name.
    fn name(&self) -> &str;
    /// The feature width it reads.
    fn in_dim(&self) -> i64;
    /// Maps features `[B, in_dim]` to outputs. A feature width that does not fit is a
    /// typed error naming the head.
    fn forward_t(&self, features: &Tensor, train: bool) -> Result<Tensor>;
    /// The task loss on one batch: a scalar that averages over labelled rows only, and
    /// is exactly zero (still differentiable) when no row is labelled. An output that
    /// does not fit the target, or a label out of range, is a typed error.
    fn loss(&self, output: &Tensor, target: &TaskTarget) -> Result<Tensor>;
    /// A fresh metric accumulator for this task.
    fn metrics(&self) -> Box<dyn Metrics>;

    /// Reads a [`forward_t`](TaskHead::forward_t) output as predictions: class
    /// probabilities for a softmax head, positive-label probabilities for a sigmoid
    /// head, values for a regression head. The default passes the output through as
    /// [`Prediction::Values`]; a head whose output is logits should override it.
    fn predict(&self, output: &Tensor) -> Result<Prediction> {
        Ok(Prediction::Values(output.shallow_clone()))
    }
}

/// Softmax over the last dimension of `[B, C]` logits, checked for the width.
pub(crate) fn class_probabilities(context: &str, output: &Tensor, classes: i64) -> Result<Tensor> {
    let size = output.size();
    if size.len() != 2 || size[1] != classes {
        return Err(Error::shape(
            context,
            format!("[batch, {classes}] logits"),
            format!("{size:?}"),
        ));
    }
    Ok(output.f_softmax(-1, tch::Kind::Float)?)
}
