//! # mtl-losses
//!
//! How the task signals combine. Two levels, two traits:
//!
//! * a [`Weighting`] works on the K task losses and returns the scalar to
//!   backpropagate (equal, static, uncertainty weighting...); it may own learnable
//!   parameters and state;
//! * an [`Aggregator`] works on the K×d task Jacobian (of the shared parameters, or of
//!   the shared representation in "rep-grad" mode) and returns the d-vector to write back
//!   as the shared gradient (PCGrad, GradNorm, MGDA...).
//!
//! Every method lives in its own file under [`methods`], carries its citation, update
//! rule and the paper's default hyper-parameters, and is reachable by name through
//! [`registry`]. The [`engine`] runs a multi-task step for any `tch` model — the task
//! losses in, gradients in `.grad()` out — and is what the `mtl` trainer calls; this
//! crate does not own models, data or the training loop.

pub mod bilevel;
mod data_parallel;
pub mod engine;
pub mod gram;
pub mod hyper;
mod method;
pub mod methods;
pub mod registry;
pub mod solvers;
mod state;
mod traits;

pub use data_parallel::DataParallelMode;
pub use engine::{backward, mtl_backward, Backward, StepOutcome, Wrt};
pub use hyper::HyperParams;
pub use method::Method;
pub use registry::{by_name, by_name_with, list, MethodInfo, MethodLevel};

// The version this crate was built with, so a method written elsewhere uses the same
// `tch` types.
pub use tch;
pub use traits::{Aggregation, Aggregator, MetaWeighting, StepContext, Weighting};
