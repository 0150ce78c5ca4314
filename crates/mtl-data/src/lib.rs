//! # mtl-data
//!
//! Data for multi-task learning: a validated [`MultiTaskDataset`] (features plus K
//! tasks of class, binary or regression targets, with masks for missing labels),
//! seeded train/validation/test splits, a [`Standardizer`] fitted on training features,
//! mini-[`Batch`]es as `tch` tensors with one [`mtl_core::TaskTarget`] per task, a CSV
//! reader with file-and-line errors, and the shipped olive-oil data set.
//!
//! It does not build models or train them: heads live in `mtl-heads`, losses and task
//! weightings in `mtl-losses`, the training loop in `mtl`.

mod batch;
mod csv;
mod dataset;
mod olive;
mod standardize;
mod target;

pub use crate::csv::{read_csv, CsvSpec, CsvTarget, TargetKind};
pub use batch::{Batch, Batches};
pub use dataset::{MultiTaskDataset, Split, SplitRows};
pub use olive::{data_dir, olive_oil, OLIVE_FEATURES, OLIVE_REGIONS};
pub use standardize::Standardizer;
pub use target::{TargetData, TaskData};
