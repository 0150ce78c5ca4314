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
//! [`registry`]. This crate does not run the backward pass or own the model: the trainer
//! in `mtl` does, so the same method works for any architecture.

pub mod gram;
pub mod methods;
pub mod registry;
pub mod solvers;
mod state;
mod traits;

pub use registry::{by_name, list, Method, MethodInfo, MethodLevel};
pub use traits::{Aggregation, Aggregator, StepContext, Weighting};
