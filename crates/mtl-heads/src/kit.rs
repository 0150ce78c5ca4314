//! The head-writing kit: the pieces the built-in heads are made of, public so that a
//! head written in another crate is made of the same ones and behaves the same way.
//!
//! - **Layers** that name their head in errors: [`Linear`] (rows or tokens) and
//!   [`Conv1x1`] (feature maps), and [`check_count`] for a constructor's class, label or
//!   output count.
//! - **Width checks**: [`output_size`] for a head's output (logits, predictions...),
//!   [`check_features`] for a layer's input, and [`is_float`], [`is_integer`],
//!   [`describe`] and [`check_finite`] for checks of one's own.
//! - **Labelled-row selection**: [`labelled_rows`] for numeric targets of any width,
//!   [`class_rows`], [`binary_rows`] and [`regression_rows`] for the built-in target
//!   kinds. Each validates output and target, reads the mask, drops unlabelled rows by
//!   index and rejects NaN, so a loss and its metrics report the same error for the same
//!   mistake. For one label per pixel, token or label, [`entry_mask`], [`and_masks`],
//!   [`flat_target`] and [`to_batch_row`] flatten a batch into rows of one entry.
//! - **Masked reductions**: [`labelled_mean`] and [`over_labelled`] average over the
//!   labelled rows (or entries) and give [`zero_loss`], an exact zero still connected to
//!   the output, when there are none, as [`TaskHead::loss`] asks.
//! - **Metric accumulators** to build a [`Metrics`] type from: [`Mean`] and
//!   [`ColumnMeans`] keep sums and counts, [`Collected`] keeps every labelled prediction
//!   and truth (for AUC, medians...), [`to_vec`] reads a tensor back, and
//!   [`MetricValue::new`](crate::MetricValue::new) reports a value.
//! - **Error contexts**: [`head_context`], [`loss_context`] and [`metrics_context`]
//!   spell ``head `name` ``, ``head `name` loss`` and ``head `name` metrics`` as the
//!   built-in heads do.
//!
//! Where a head's loss and metrics live follows the crate's one rule (see the crate
//! root): in the head's own module, the loss as a plain function and the metrics as a
//! type implementing [`Metrics`]. A minimal head made from the kit — one output per
//! row, trained on the absolute error, its metric the mean absolute error:
//!
//! ```
//! use mtl_heads::kit::{self, Linear, Mean};
//! use mtl_heads::{MetricValue, Metrics, Result, TaskHead, TaskTarget};
//! use tch::{nn, Device, Kind, Tensor};
//!
//! /// The labelled predictions `[n, 1]` and targets `[n, 1]` of outputs `[B, 1]`.
//! fn rows(ctx: &str, pred: &Tensor, target: &TaskTarget) -> Result<(Tensor, Tensor)> {
//!     let size = kit::output_size(ctx, pred, "predictions", &["batch", "outputs"], 1, Some(1))?;
//!     kit::labelled_rows(ctx, pred, target, &size)
//! }
//!
//! /// The loss: a plain function, averaged over the labelled rows.
//! pub fn abs_error(pred: &Tensor, target: &TaskTarget) -> Result<Tensor> {
//!     abs_error_in("abs_error", pred, target)
//! }
//!
//! fn abs_error_in(ctx: &str, pred: &Tensor, target: &TaskTarget) -> Result<Tensor> {
//!     let (pred_l, truth) = rows(ctx, pred, target)?;
//!     kit::labelled_mean(pred, &pred_l.f_sub(&truth)?.f_abs()?)
//! }
//!
//! /// The metrics: a type implementing `Metrics`.
//! #[derive(Debug)]
//! pub struct AbsErrorMetrics {
//!     context: String,
//!     error: Mean,
//! }
//!
//! impl Metrics for AbsErrorMetrics {
//!     fn update(&mut self, output: &Tensor, target: &TaskTarget) -> Result<()> {
//!         let (pred, truth) = rows(&self.context, output, target)?;
//!         self.error.add(&pred.f_detach()?.f_sub(&truth)?.f_abs()?)
//!     }
//!     fn compute(&self) -> Vec<MetricValue> {
//!         self.error.value().map(|v| MetricValue::new("mae", v, false)).into_iter().collect()
//!     }
//!     fn reset(&mut self) {
//!         self.error.reset();
//!     }
//! }
//!
//! /// The head: a layer, and the two above under its name.
//! #[derive(Debug)]
//! pub struct AbsErrorHead {
//!     name: String,
//!     layer: Linear,
//! }
//!
//! impl AbsErrorHead {
//!     pub fn new(path: &nn::Path, name: &str, in_dim: i64) -> Result<Self> {
//!         Ok(AbsErrorHead { name: name.to_string(), layer: Linear::new(path, name, in_dim, 1)? })
//!     }
//! }
//!
//! impl TaskHead for AbsErrorHead {
//!     fn name(&self) -> &str {
//!         &self.name
//!     }
//!     fn in_dim(&self) -> i64 {
//!         self.layer.in_dim()
//!     }
//!     fn forward_t(&self, features: &Tensor, _train: bool) -> Result<Tensor> {
//!         self.layer.forward(features)
//!     }
//!     fn loss(&self, output: &Tensor, target: &TaskTarget) -> Result<Tensor> {
//!         abs_error_in(&kit::loss_context(&self.name, "abs_error"), output, target)
//!     }
//!     fn metrics(&self) -> Box<dyn Metrics> {
//!         let context = kit::metrics_context(&self.name);
//!         Box::new(AbsErrorMetrics { context, error: Mean::new() })
//!     }
//! }
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let head = AbsErrorHead::new(&(vs.root() / "task0" / "head"), "price", 4)?;
//! let output = head.forward_t(&Tensor::randn([3, 4], (Kind::Float, Device::Cpu)), true)?;
//! // The last row is unlabelled: its NaN is never read.
//! let target = TaskTarget::masked(
//!     Tensor::from_slice(&[1.0f32, -1.0, f32::NAN]),
//!     Tensor::from_slice(&[true, true, false]),
//! );
//! let loss = head.loss(&output, &target)?;
//! let mut metrics = head.metrics();
//! metrics.update(&output, &target)?;
//! assert!((metrics.compute()[0].value - loss.double_value(&[])).abs() < 1e-6);
//!
//! // No labelled row: an exact zero, with a gradient.
//! let none = TaskTarget::masked(Tensor::zeros([3], (Kind::Float, Device::Cpu)), Tensor::from_slice(&[false; 3]));
//! let zero = head.loss(&output, &none)?;
//! zero.backward();
//! assert_eq!(zero.double_value(&[]), 0.0);
//!
//! // Wrong shapes are typed errors that name the head.
//! let err = head.loss(&Tensor::zeros([3, 2], (Kind::Float, Device::Cpu)), &target).unwrap_err();
//! assert!(err.to_string().contains("head `price` abs_error"), "{err}");
//! # Ok::<(), mtl_heads::Error>(())
//! ```
//!
//! [`TaskHead::loss`]: crate::TaskHead::loss
//! [`Metrics`]: crate::Metrics

use mtl_core::{Error, Result};
use tch::{Kind, Tensor};

pub use crate::entries::{and_masks, entry_mask, flat_target, no_nan_where_marked, to_batch_row};
pub use crate::layer::{check_count, Conv1x1, Linear};
pub use crate::metrics::running::{to_vec, Collected, ColumnMeans, Mean};
pub use crate::rows::{
    binary_rows, check_features, check_finite, class_rows, describe, is_float, is_integer,
    labelled_rows, output_size, regression_rows,
};

/// How errors name the head `name` itself (its layer, its output): ``head `name` ``.
pub fn head_context(name: &str) -> String {
    format!("head `{name}`")
}

/// How errors name the loss `loss` of head `name`: ``head `name` loss``, e.g.
/// ``head `region` cross_entropy``.
pub fn loss_context(name: &str, loss: &str) -> String {
    format!("head `{name}` {loss}")
}

/// How errors name the metric accumulator of head `name`: ``head `name` metrics``.
pub fn metrics_context(name: &str) -> String {
    format!("head `{name}` metrics")
}

/// The loss of a batch without a labelled row: an exact zero computed from `output`, so
/// that it is part of the graph and its gradient is zero rather than undefined (a
/// multi-task step back-propagates the sum of every task's loss, and a mean over no rows
/// would be NaN).
///
/// ```
/// use tch::{Device, Kind, Tensor};
///
/// let output = Tensor::ones([2, 3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
/// let zero = mtl_heads::kit::zero_loss(&output)?;
/// zero.backward();
/// assert_eq!(zero.double_value(&[]), 0.0);
/// assert_eq!(output.grad().abs().sum(Kind::Float).double_value(&[]), 0.0);
/// # Ok::<(), mtl_heads::Error>(())
/// ```
pub fn zero_loss(output: &Tensor) -> Result<Tensor> {
    Ok(output.f_sum(None::<Kind>)?.f_mul_scalar(0.0)?)
}

/// The mean of `terms`, the per-row or per-entry losses of the labelled part of
/// `output`; [`zero_loss`] of `output` when `terms` is empty (no labelled row).
///
/// ```
/// use tch::{Device, Kind, Tensor};
///
/// let output = Tensor::zeros([4], (Kind::Float, Device::Cpu));
/// let terms = Tensor::from_slice(&[1.0f32, 2.0]);
/// assert_eq!(mtl_heads::kit::labelled_mean(&output, &terms)?.double_value(&[]), 1.5);
/// let none = Tensor::zeros([0], (Kind::Float, Device::Cpu));
/// assert_eq!(mtl_heads::kit::labelled_mean(&output, &none)?.double_value(&[]), 0.0);
/// # Ok::<(), mtl_heads::Error>(())
/// ```
pub fn labelled_mean(output: &Tensor, terms: &Tensor) -> Result<Tensor> {
    if terms.numel() == 0 {
        return zero_loss(output);
    }
    Ok(terms.f_mean(None::<Kind>)?)
}

/// `loss` of the labelled `(prediction, target)` rows picked from `output` (as a row
/// selector such as [`class_rows`] returns them), or [`zero_loss`] of `output` when no
/// row is labelled. `loss` is typically one of libtorch's fused mean losses, whose
/// mean over nothing would be NaN.
///
/// ```
/// use mtl_heads::{kit, TaskTarget};
/// use tch::{Reduction, Tensor};
///
/// let pred = Tensor::from_slice(&[1.0f32, 5.0]);
/// let target = TaskTarget::masked(Tensor::from_slice(&[3.0f32, 0.0]), Tensor::from_slice(&[true, false]));
/// let rows = kit::regression_rows("l1", &pred, &target, None)?;
/// let loss = kit::over_labelled(&pred, rows, |p, t| p.f_l1_loss(t, Reduction::Mean))?;
/// assert_eq!(loss.double_value(&[]), 2.0);
/// # Ok::<(), mtl_heads::Error>(())
/// ```
pub fn over_labelled<E>(
    output: &Tensor,
    (pred, targets): (Tensor, Tensor),
    loss: impl FnOnce(&Tensor, &Tensor) -> std::result::Result<Tensor, E>,
) -> Result<Tensor>
where
    Error: From<E>,
{
    if targets.numel() == 0 {
        return zero_loss(output);
    }
    Ok(loss(&pred, &targets)?)
}
