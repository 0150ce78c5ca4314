//! # mtl-heads
//!
//! Task heads: the per-task layer that turns features into predictions, together with
//! the task's loss and metrics. Heads of different kinds sit side by side in one
//! `Vec<Box<dyn TaskHead>>`; a head crate written outside this workspace depends on this
//! crate only and implements [`TaskHead`].
//!
//! Losses are plain functions (see [`loss`]) that skip rows with missing labels; metrics
//! accumulate over batches (see [`metrics`]). This crate does not decide how task losses
//! are combined (`mtl-losses`) or how features are produced (`mtl-core`).
//!
//! The built-in heads are one linear layer each: [`ClassificationHead`] (softmax
//! cross-entropy; accuracy, macro-F1), [`BinaryHead`] (binary cross-entropy on the logit;
//! accuracy, ROC-AUC) and [`RegressionHead`] (MSE or L1; MSE, MAE). Each puts its
//! variables under the var-store path it is given, so building it under
//! [`mtl_core::task_path`] makes them task-specific parameters. Errors name the head:
//! a feature width that does not fit is an [`Error::Shape`](mtl_core::Error::Shape) with
//! context ``head `name` ``. A label out of range is reported with `task: 0`, since a
//! head does not know its index; the caller that does should fill it in.
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
mod classification;
mod head;
mod layer;
pub mod loss;
pub mod metrics;
mod regression;
mod rows;

pub use binary::BinaryHead;
pub use classification::ClassificationHead;
pub use head::{MetricValue, Metrics, TaskHead};
pub use loss::{bce_with_logits, cross_entropy, l1, mse};
pub use metrics::{BinaryMetrics, ClassificationMetrics, RegressionMetrics};
pub use regression::{RegressionHead, RegressionLoss};
