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

mod head;

pub use head::{MetricValue, Metrics, TaskHead};
