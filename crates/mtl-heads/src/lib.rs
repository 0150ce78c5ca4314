//! # mtl-heads
//!
//! Task heads: the per-task layer that turns features into predictions, together with
//! the task's loss and metrics. Heads of different kinds sit side by side in one
//! `Vec<Box<dyn TaskHead>>`; a head crate written outside this workspace depends on this
//! crate only, implements [`TaskHead`], and builds its head from the same parts as the
//! built-in ones: the [`kit`] (layers, width checks, labelled-row selection, masked
//! reductions, metric accumulators). This crate does not decide how task losses are
//! combined (`mtl-losses`) or how features are produced (`mtl-core`).
//!
//! **Where a head's loss and metrics live** — one rule, for the built-in heads and for
//! heads written elsewhere: a head's module holds the head, its loss and its metrics.
//! The loss is a public plain function, `fn(output, target, …) -> Result<Tensor>`,
//! that averages over the labelled rows (or entries) and is an exact, differentiable
//! zero when there are none; [`TaskHead::loss`] calls it with the head's name as error
//! context. The metrics are a public type implementing [`Metrics`], which
//! [`TaskHead::metrics`] hands out fresh. Only what several heads share lives
//! elsewhere: softmax and binary cross-entropy in [`loss`], scores over plain slices in
//! [`metrics`], building blocks in [`kit`]. [`loss`] and [`metrics`] re-export every
//! head's loss and accumulator, so each is also found there.
//!
//! The built-in heads are one affine layer each (a 1×1 convolution for the per-pixel
//! heads), with these losses and metrics (the first metric is the primary):
//!
//! | head | output | loss | metrics |
//! |---|---|---|---|
//! | [`ClassificationHead`] | `[B, C]` logits | softmax cross-entropy | accuracy, macro-F1 |
//! | [`BinaryHead`] | `[B]` logit | binary cross-entropy | accuracy, ROC-AUC |
//! | [`RegressionHead`] | `[B, m]` (`[B, 2m]` with a variance) | MSE, L1, Huber or Gaussian NLL ([`RegressionLoss`]) | MSE, MAE |
//! | [`SentenceHead`] | `[B, classes]` logits from pooled `[B, T, d]` tokens (CLS or mean) | softmax cross-entropy | accuracy, macro-F1 |
//! | [`SpanHead`] | `[B, T, 2]` start/end logits | mean of start and end cross-entropy | exact match, token-overlap F1 |
//! | [`MultiLabelHead`] | `[B, L]` logits | binary cross-entropy per label | micro-F1, macro-F1, mean and per-label ROC-AUC, mAP |
//! | [`SegmentationHead`] | `[B, C, H, W]` logits | pixel cross-entropy with an ignore index | mIoU, pixel accuracy |
//! | [`DepthHead`] | `[B, 1, H, W]` | L1 over measured pixels | absolute and relative error |
//! | [`NormalHead`] | `[B, 3, H, W]` unit vectors | 1 − cosine over measured pixels | mean and median angle, % within 11.25°, 22.5°, 30° |
//! | [`SequenceHead`] | `[B, T, C]` logits | token cross-entropy, padding masked | token accuracy; with BIO tag names, span F1, precision and recall as seqeval |
//!
//! The three per-pixel heads reproduce LibMTL's NYUv2 losses and metrics. A target's
//! mask is `Bool [B]` (a row is labelled or not) for every head; the multi-label, pixel
//! and token heads also take a mask with one entry per label, pixel or token.
//!
//! Each head puts its variables under the var-store path it is given, so building it
//! under [`mtl_core::task_path`] makes them task-specific parameters. Errors name the
//! head: a feature width that does not fit is an
//! [`Error::Shape`] with context ``head `name` ``. A label out
//! of range is reported with `task: 0` and its batch row (the image or sequence for
//! dense heads), since a head does not know its index; the caller that does should
//! fill it in. [`TaskTarget`], [`Error`] and [`Result`] are re-exported so that a head
//! crate needs no other `mtl` dependency.
//!
//! ```
//! use mtl_core::{task_path, TaskTarget};
//! use mtl_heads::{BinaryHead, ClassificationHead, RegressionHead, RegressionLoss, TaskHead};
//! use tch::{nn, Device, Kind, Tensor};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let root = vs.root();
//! let heads: Vec<Box<dyn TaskHead>> = vec![
//!     Box::new(ClassificationHead::new(&(task_path(&root, 0) / "head"), "region", 16, 4)?),
//!     Box::new(BinaryHead::new(&(task_path(&root, 1) / "head"), "churn", 16)?),
//!     Box::new(RegressionHead::new(&(task_path(&root, 2) / "head"), "spend", 16, 1, RegressionLoss::Mse)?),
//! ];
//! let features = Tensor::randn([2, 16], (Kind::Float, Device::Cpu));
//! let targets = [
//!     TaskTarget::new(Tensor::from_slice(&[3i64, 0])),
//!     // The second row has no churn label.
//!     TaskTarget::masked(Tensor::from_slice(&[1.0f32, 0.0]), Tensor::from_slice(&[true, false])),
//!     TaskTarget::new(Tensor::from_slice(&[0.5f32, -1.0])),
//! ];
//! for (head, target) in heads.iter().zip(&targets) {
//!     let output = head.forward_t(&features, true)?;
//!     let loss = head.loss(&output, target)?;
//!     let mut metrics = head.metrics();
//!     metrics.update(&output, target)?;
//!     assert!(loss.double_value(&[]).is_finite() && !metrics.compute().is_empty());
//! }
//! # Ok::<(), mtl_core::Error>(())
//! ```

mod binary;
mod bio;
mod classification;
mod depth;
mod entries;
mod head;
pub mod kit;
mod layer;
pub mod loss;
pub mod metrics;
mod multilabel;
mod normals;
mod regression;
mod rows;
mod segmentation;
mod sentence;
mod sequence;
mod span;

pub use binary::BinaryHead;
pub use bio::{bio_spans, Span, SpanF1};
pub use classification::ClassificationHead;
pub use depth::{depth_l1, DepthHead};
pub use head::{MetricValue, Metrics, Prediction, TaskHead};
pub use loss::{bce_with_logits, cross_entropy, gaussian_nll, huber, l1, mse};
pub use metrics::{
    BinaryMetrics, ClassificationMetrics, DepthMetrics, MultiLabelMetrics, NormalMetrics,
    RegressionMetrics, SegmentationMetrics, TokenMetrics,
};
pub use mtl_core::{Error, Result, TaskTarget};
pub use multilabel::{multilabel_bce_with_logits, MultiLabelHead};
pub use normals::{normal_cosine_loss, NormalHead};
pub use regression::{RegressionHead, RegressionLoss, DEFAULT_HUBER_DELTA};
pub use segmentation::{pixel_cross_entropy, SegmentationHead, DEFAULT_IGNORE_INDEX};
pub use sentence::SentenceHead;
pub use sequence::{token_cross_entropy, SequenceHead, DEFAULT_PADDING_LABEL};
pub use span::SpanHead;

// The version this crate was built with, so a head crate uses the same `tch` types.
pub use tch;
