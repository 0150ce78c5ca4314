//! Task metrics: pure scores over predictions and truths (defined here, shared by the
//! heads), and every built-in head's [`Metrics`] accumulator, re-exported from the
//! head's module where it is defined (see the crate root for that rule). The running
//! totals accumulators are built from are in [`crate::kit`].
//!
//! Accumulators keep what they need of the labelled rows only (their predictions and
//! truths, or counts and sums), batch by batch, and compute every metric once at the
//! end, so the result does not depend on how the evaluation set was batched. Before any
//! labelled row is seen, `compute()` returns no metric at all rather than a NaN.
//!
//! [`Metrics`]: crate::Metrics

pub(crate) mod running;
pub(crate) mod scores;

pub use crate::binary::BinaryMetrics;
pub use crate::classification::ClassificationMetrics;
pub use crate::depth::DepthMetrics;
pub use crate::multilabel::MultiLabelMetrics;
pub use crate::normals::NormalMetrics;
pub use crate::regression::RegressionMetrics;
pub use crate::segmentation::SegmentationMetrics;
pub use crate::sequence::TokenMetrics;
pub use scores::{accuracy, average_precision, macro_f1, mae, mse, roc_auc};
