//! Regularized multi-task linear and logistic models: each task (a school, a county,
//! a district of a [`GroupedData`](mtl_data::GroupedData)) gets its own weight vector
//! `wₜ` and intercept `bₜ`, and a penalty on `W = [w₁ … w_T]` says how the tasks are
//! related — near a shared mean ([`MeanRegularized`]), in a low-rank subspace
//! ([`TraceNorm`]), using the same features ([`L21`]), close along a given task graph
//! ([`GraphLaplacian`]) or a learned task covariance ([`Mtrl`]), or in clusters
//! ([`ClusteredMtl`]). Beside them stand the baselines every comparison needs: each
//! task alone ([`SingleTask`]) and one model for all ([`Pooled`]); hyper-parameters
//! are chosen by K-fold cross-validation within each task ([`CrossValidation`]).
//!
//! Every model minimises `Σₜ cₜ Σᵢ ℓ(yₜᵢ, xₜᵢᵀwₜ + bₜ) + penalty(W)` for the squared or
//! logistic [`Loss`], intercepts unpenalised, and its doc states its penalty. The
//! smooth models are solved by Newton's method on the joint system (the squared loss
//! in one step: the normal equations), the non-smooth ones by accelerated proximal
//! gradient, and those that learn a task matrix by exact alternating minimisation.
//! The linear algebra is `nalgebra`'s (pure Rust: no BLAS or LAPACK to install), on
//! dense matrices, which suits data of tens of features and up to a few hundred tasks.
//!
//! This crate is not for deep multi-task networks (that is `mtl`, on libtorch), nor
//! for Bayesian hierarchical models, nor for data too large for dense `T(d+1)`-sized
//! systems.
//!
//! ```
//! use mtl_linear::{CrossValidation, Loss, MultiTaskLinear, Scaling, TraceNorm};
//! let data = mtl_data::london_schools(mtl_data::data_root("mlmrev")?)?;
//! let (train, test) = data.split(0.3, 7)?;
//! let scaling = Scaling::fit(&train)?;
//! let (train, test) = (scaling.apply(&train)?, scaling.apply(&test)?);
//! let fit = TraceNorm::new(100.0).fit(&train, Loss::Squared)?;
//! assert!(fit.evaluate(&test)?.row_mean < 1.0); // the target has unit variance
//! # Ok::<(), mtl_core::Error>(())
//! ```

mod alternate;
mod apg;
mod baselines;
mod clustered;
mod coupled;
mod cv;
mod fitted;
mod graph;
mod l21;
mod loss;
mod mean_regularized;
mod model;
mod mtrl;
mod problem;
mod scaling;
mod shared;
mod trace_norm;

pub use baselines::{Pooled, SingleTask};
pub use clustered::ClusteredMtl;
pub use cv::{CrossValidation, CvResult, SmallTasks};
pub use fitted::{Evaluation, Extra, FittedLinear};
pub use graph::GraphLaplacian;
pub use l21::L21;
pub use loss::Loss;
pub use mean_regularized::MeanRegularized;
pub use model::MultiTaskLinear;
pub use mtrl::Mtrl;
pub use scaling::Scaling;
pub use trace_norm::TraceNorm;
