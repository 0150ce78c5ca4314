//! # mtl
//!
//! Multi-task learning on libtorch: one model, several tasks, and a choice of how
//! their signals combine. This facade re-exports the layered crates (`mtl-core`,
//! `mtl-heads`, `mtl-losses`, `mtl-data`) and adds what composes them: the
//! [`MultiTaskModel`] (an architecture plus task heads), the [`Trainer`] (epochs,
//! validation, early stopping, a JSON [`RunReport`]) and [`evaluate`]. Tasks that each
//! bring their own dataset and inputs train with [`Trainer::fit_multi_input`], through
//! the same loop. Every step goes through the public engine in
//! [`losses::engine`](mtl_losses::engine), which also serves models `mtl` did not build.
//!
//! It holds no method, head or architecture of its own; those live in the crates it
//! re-exports, so a user can depend on just the piece they need.

mod baselines;
mod bundle;
mod delta_m;
pub mod diagnostics;
mod early_stopping;
mod evaluate;
mod freeze;
mod model;
mod plan;
pub mod plots;
mod predict;
mod progress;
mod report;
mod run_state;
mod spec;
pub mod step;
mod task_optimizers;
mod trainer;

pub use baselines::Baselines;
pub use bundle::{
    Bundle, BUNDLE_FORMAT, BUNDLE_VERSION, MANIFEST_FILE, RUN_BUNDLE_DIR, WEIGHTS_FILE,
};
pub use delta_m::{DeltaM, TaskDelta};
pub use diagnostics::{DiagnosticsConfig, GradientSample};
pub use early_stopping::{EarlyStopping, Monitor};
pub use evaluate::{evaluate, evaluate_multi_input, Evaluation};
pub use model::{Forward, MultiTaskModel, TaskForward};
pub use predict::{Predicted, Preprocessing, TargetEncoding, TaskPrediction};
pub use report::{EpochRecord, RunReport};
pub use spec::{ArchSpec, HeadSpec, ModelSpec};
pub use step::{
    backward_multi_input_step, backward_step, train_step, GradMode, StepData, StepOutcome,
};
pub use trainer::{CheckpointPolicy, Trainer, TrainerConfig};

pub use mtl_core as core;
pub use mtl_data as data;
pub use mtl_heads as heads;
pub use mtl_losses as losses;
pub use ndarray;
pub use tch;

/// The names most programs need.
pub mod prelude {
    pub use crate::{
        evaluate, evaluate_multi_input, Baselines, CheckpointPolicy, DeltaM, EarlyStopping,
        GradMode, Monitor, MultiTaskModel, RunReport, Trainer, TrainerConfig,
    };
    pub use mtl_core::{
        seed_everything, select_device, task_path, Architecture, Backbone, DeviceRequest, Error,
        HardSharing, LrSchedule, MlpConfig, MultiInput, OptimizerConfig, Result, TaskTarget,
    };
    pub use mtl_data::{MultiInputData, MultiTaskDataset, TaskSampling};
    pub use mtl_heads::TaskHead;
    pub use mtl_losses::{Aggregator, Method, Weighting};
}

/// Compiles the README's usage example as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctest;
