//! The [`TaskHead`] and [`Metrics`] traits.

use mtl_core::{Result, TaskTarget};
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
}
