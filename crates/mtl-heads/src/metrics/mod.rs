//! Task metrics: pure functions over predictions and truths, and the [`Metrics`]
//! accumulators the built-in heads hand out (those of the dense and multi-label heads
//! are defined beside their heads and re-exported here).
//!
//! Accumulators keep what they need of the labelled rows only (their predictions and
//! truths, or counts and sums), batch by batch, and compute every metric once at the
//! end, so the result does not depend on how the evaluation set was batched. Before any labelled row is seen, `compute()` returns no
//! metric at all rather than a NaN.
//!
//! [`Metrics`]: crate::Metrics

mod accumulators;
mod scores;

pub use crate::depth::DepthMetrics;
pub use crate::multilabel::MultiLabelMetrics;
pub use crate::normals::NormalMetrics;
pub use crate::segmentation::SegmentationMetrics;
pub use crate::sequence::TokenMetrics;
pub use accumulators::{BinaryMetrics, ClassificationMetrics, RegressionMetrics};
pub use scores::{accuracy, macro_f1, mae, mse, roc_auc};
