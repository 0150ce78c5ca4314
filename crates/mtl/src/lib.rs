//! # mtl
//!
//! Multi-task learning on libtorch: one model, several tasks, and a choice of how
//! their signals combine. This facade re-exports the layered crates and adds what
//! composes them: the [`MultiTaskModel`] (an architecture plus task heads), the
//! [`Trainer`] (epochs, validation, early stopping, a JSON [`RunReport`]),
//! [`evaluate`], predictions on plain arrays ([`MultiTaskModel::predict`]) and on raw
//! strings for text models ([`TextPredictor`]), and saved models ([`Bundle`]). Tasks that each bring their own dataset and inputs train with
//! [`Trainer::fit_multi_input`], through the same loop. Every step goes through the
//! public engine in [`losses::engine`], which also serves models
//! `mtl` did not build.
//!
//! It holds no method, head or architecture of its own; those live in the crates it
//! re-exports, so a user can depend on just the piece they need:
//!
//! | module | crate | what it holds |
//! |---|---|---|
//! | [`core`] | [`mtl-core`](mtl_core) | devices, seeding, sharing architectures ([`MlpConfig`](mtl_core::MlpConfig), [`MmoeConfig`](mtl_core::MmoeConfig), PLE, cross-stitch…), optimisers, pretrained weights by name ([`load_weights`](mtl_core::load_weights)), the [`Error`](mtl_core::Error) type |
//! | [`heads`] | [`mtl-heads`](mtl_heads) | task heads with their losses and metrics |
//! | [`losses`] | [`mtl-losses`](mtl_losses) | the methods that combine the tasks: loss weightings and gradient aggregators |
//! | [`data`] | [`mtl-data`](mtl_data) | datasets, CSV and tensor-file loaders, splits, batches, standardisation |
//!
//! The `mtl` command line (`mtl train`, `mtl predict`, `mtl methods`) is the `mtl-cli`
//! crate. The methods are listed with their papers and defaults in
//! [`losses::methods`] (one module each) and at run time by
//! [`losses::list()`](mtl_losses::list); the repository's `docs/methods.md` says when
//! to use which. This package is published as `mtl-torch` (the name `mtl` on crates.io
//! is another project's) and its library is named `mtl`; the repository's
//! `docs/using-mtl.md` shows the dependency lines and the libtorch set-up.
//!
//! `tch` and `ndarray` are re-exported ([`tch`], [`ndarray`]) as the versions this
//! crate was built with, so a program converting its data never mixes two versions.
//!
//! ```
//! use mtl::prelude::*;
//! use mtl::ndarray::Array2;
//!
//! // 64 rows of 3 features; one classification and one regression task.
//! let x = Array2::from_shape_fn((64, 3), |(i, j)| ((i * (j + 2)) % 13) as f32 / 6.0 - 1.0);
//! let sign = x.column(0).mapv(|v| i64::from(v > 0.0));
//! let sum = (&x.column(1) + &x.column(2)).insert_axis(mtl::ndarray::Axis(1));
//! let data = MultiTaskDataset::new(
//!     x.clone(),
//!     vec![TaskData::classes("sign", sign, 2), TaskData::regression("sum", sum)],
//! )?;
//!
//! // A shared MLP trunk with one head per task, described as data so it can be saved.
//! let heads = data.tasks().iter().map(|t| HeadSpec::for_task(t, RegressionLoss::Mse)).collect();
//! let spec = ModelSpec::hard_sharing(3, &[16], heads);
//! seed_everything(0);
//! let mut model = MultiTaskModel::from_spec(&spec, select_device(DeviceRequest::Auto)?)?;
//!
//! // Train with PCGrad (any name from `mtl::losses::list()`).
//! let config = TrainerConfig::default().epochs(3).method("pcgrad").progress(false);
//! let report = Trainer::new(config)?.fit(&mut model, &data, None)?;
//! assert_eq!(report.epochs.len(), 3);
//!
//! // Predict on plain arrays: class probabilities and labels, regression values.
//! let out = model.predict(x.view())?;
//! let Predicted::Classes { probabilities, classes } = &out[0].output else { unreachable!() };
//! assert_eq!((probabilities.dim(), classes.len()), ((64, 2), 64));
//! assert!(matches!(&out[1].output, Predicted::Values(v) if v.dim() == (64, 1)));
//! # Ok::<(), mtl::core::Error>(())
//! ```

mod baselines;
mod bundle;
mod config;
mod data_parallel;
mod delta_m;
pub mod diagnostics;
mod divergence;
mod early_stopping;
mod evaluate;
mod freeze;
pub mod grouping;
pub mod latents;
mod loss_scale;
mod meta_step;
mod model;
mod plan;
pub mod plots;
mod predict;
mod progress;
mod regime;
mod report;
pub mod robust;
mod run_state;
pub mod semi;
mod spec;
pub mod stats;
pub mod step;
pub mod sweep;
mod task_optimizers;
mod text_predict;
pub mod tracking;
mod trainer;

pub use baselines::{Baselines, OnlyTask};
pub use bundle::{
    Bundle, TextInput, BUNDLE_FORMAT, BUNDLE_VERSION, MANIFEST_FILE, RUN_BUNDLE_DIR,
    TOKENIZER_FILE, WEIGHTS_FILE,
};
pub use config::{CheckpointPolicy, TrainerConfig, Unfreeze, MAX_EPOCHS};
pub use delta_m::{DeltaM, TaskDelta};
pub use diagnostics::{DiagnosticsConfig, GradientSample};
pub use divergence::DivergenceGuard;
pub use early_stopping::{EarlyStopping, Monitor};
pub use evaluate::{evaluate, evaluate_multi_input, Evaluation};
pub use latents::{
    latent_associations, latent_associations_of_rows, Covariate, LatentConfig, LatentReport,
    LatentSource,
};
pub use loss_scale::{loss_scale_warning, LOSS_SCALE_RATIO, SCALE_INVARIANT_METHODS};
pub use meta_step::meta_step;
pub use model::{Forward, MultiTaskModel, TaskForward};
pub use mtl_core::pretrained::{LoadOptions, LoadReport};
pub use predict::{Predicted, Preprocessing, TargetEncoding, TaskPrediction};
pub use report::{EpochRecord, RunReport};
pub use robust::{evaluate_under_attack, Adversarial, Attack, AttackTarget, RobustEvaluation};
pub use semi::{Consistency, ConsistencyRows, SemiSupervised};
pub use spec::{ArchSpec, ConvDecoders, HeadSpec, ModelSpec};
pub use step::{
    backward_multi_input_step, backward_step, train_step, train_step_in, GradMode, StepData,
    StepOutcome,
};
pub use text_predict::{TextOutput, TextPrediction, TextPredictor};
pub use tracking::{MetricsWriter, RunStart, StepRecord, TrackingConfig, TrainingObserver};
pub use trainer::Trainer;

pub use mtl_core as core;
pub use mtl_data as data;
/// Data-parallel collectives on libtorch's c10d (the `distributed` feature).
#[cfg(feature = "distributed")]
pub use mtl_dist as dist;
pub use mtl_heads as heads;
pub use mtl_losses as losses;
pub use ndarray;
pub use tch;

/// The names most programs need: the trainer and its settings, the common
/// architectures' configs, the tabular heads, model specs, bundles and predictions.
pub mod prelude {
    pub use crate::{
        evaluate, evaluate_multi_input, Baselines, Bundle, CheckpointPolicy, DeltaM, EarlyStopping,
        GradMode, HeadSpec, ModelSpec, Monitor, MultiTaskModel, Predicted, Preprocessing,
        RunReport, TargetEncoding, TaskPrediction, Trainer, TrainerConfig, Unfreeze,
    };
    pub use mtl_core::{
        seed_everything, select_device, task_path, Activation, Architecture, Backbone,
        DeviceRequest, Error, HardSharing, LoadOptions, LoadReport, LrSchedule, MlpBuilder,
        MlpConfig, MmoeConfig, MultiInput, OptimizerConfig, Result, TaskTarget,
    };
    pub use mtl_data::{
        JointData, MultiInputData, MultiTaskDataset, Standardizer, TaskData, TaskSampling,
        TensorDataset, TensorTask,
    };
    pub use mtl_heads::{
        BinaryHead, ClassificationHead, MultiLabelHead, RegressionHead, RegressionLoss, TaskHead,
    };
    pub use mtl_losses::{Aggregator, Method, Weighting};
}

/// Compiles the README's usage example as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctest;
