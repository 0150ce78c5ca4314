//! Task metrics: pure functions over predictions and truths, and the [`Metrics`]
//! accumulators the built-in heads hand out.
//!
//! Accumulators keep the predictions and truths of labelled rows only, batch by batch,
//! and compute every metric once at the end, so the result does not depend on how the
//! evaluation set was batched. Before any labelled row is seen, `compute()` returns no
//! metric at all rather than a NaN.
//!
//! [`Metrics`]: crate::Metrics

mod accumulators;
mod scores;

pub use accumulators::{BinaryMetrics, ClassificationMetrics, RegressionMetrics};
pub use scores::{accuracy, macro_f1, mae, mse, roc_auc};
