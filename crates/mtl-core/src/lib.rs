//! # mtl-core
//!
//! The foundation of `mtl`: what every multi-task model needs regardless of its heads
//! or how it weighs its tasks. It selects the device (and makes sure libtorch's CUDA
//! backend is really loaded), seeds runs, splits parameters into shared and
//! task-specific groups, builds the K×d task Jacobian (the one builder,
//! [`jacobian_rows`], that the step engine in `mtl-losses` and the diagnostics use),
//! provides the sharing architectures (hard
//! sharing over any [`Backbone`], an [`Mlp`] trunk), the layer initialisation they all
//! use ([`init`]: PyTorch's by default), optimisers with saveable state, loading
//! pretrained weights by name ([`load_weights`]), and the [`Error`] type the other
//! crates use.
//!
//! It is not where task heads (`mtl-heads`), loss weightings and gradient aggregators
//! (`mtl-losses`), data handling (`mtl-data`) or the training loop (`mtl`) live.

pub mod arch;
pub mod checkpoint;
pub mod collective;
pub mod device;
mod error;
pub mod files;
pub mod init;
pub mod jacobian;
pub mod optim;
pub mod params;
pub mod pretrained;
pub mod schedule;
pub mod seed;
mod target;

pub use arch::{
    gradient_reversal, smooth_step, Activation, Architecture, AspMtl, AspMtlConfig, Backbone,
    BackboneBuilder, BranchTree, Cgc, CgcConfig, Cnn, CnnConfig, ConvDecoderConfig, ConvNet,
    ConvNetConfig, ConvNorm, CrossStitch, CrossStitchConfig, DSelectK, DSelectKConfig,
    EmbeddingInput, EmbeddingInputConfig, EmbeddingTable, HardSharing, Ltb, LtbConfig, Mlp,
    MlpBuilder, MlpConfig, Mmoe, MmoeConfig, Mtan, MtanConfig, MtanOutput, MultiInput, Ple,
    PleConfig, Pooling, SharedBottom, SoftSharing, SoftSharingConfig, SoftmaxGate, TaskFeatures,
    TaskTowers, TransformerConfig, TransformerEncoder, TransformerTower, TransformerTowerConfig,
};
pub use checkpoint::Checkpoint;
pub use collective::Collective;
pub use device::{select_device, DeviceRequest};
pub use error::{Error, Result};
pub use init::Init;
pub use jacobian::{
    check_jacobian, check_losses, empty_jacobian, first_non_finite_row, jacobian_rows,
    sum_is_finite, task_jacobian, write_jacobian_row, JacobianRequest,
};
pub use optim::{clip_grad_norm, Optimizer, OptimizerConfig};
pub use params::{task_path, ParamGroups};
pub use pretrained::{load_weights, LoadOptions, LoadReport, ShapeMismatch};
pub use schedule::LrSchedule;
pub use seed::{derive_rng, seed_everything, torch_rng_lock, SeededRng};
pub use target::TaskTarget;
pub use tch;
