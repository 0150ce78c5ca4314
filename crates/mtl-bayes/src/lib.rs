//! # mtl-bayes
//!
//! Hierarchical Bayesian multi-task learning for classical models: per-task linear and
//! logistic regressions whose coefficients share a Gaussian prior `N(μ, Σ)` learned from
//! all tasks by empirical Bayes. Tasks with few rows borrow strength from the others
//! (their posteriors shrink toward μ by as much as their own data leave uncertain), and a
//! new task starts from the learned prior ([`HierarchicalLinear::fit_new_task`]).
//!
//! - [`HierarchicalLinear`]: Gaussian likelihood, EM on the exact marginal likelihood,
//!   conjugate posteriors ([`linear_posterior`]).
//! - [`HierarchicalLogistic`]: Bernoulli likelihood, variational EM on the
//!   Jaakkola–Jordan bound ([`logistic_posterior`]).
//! - Transfer measures: the Bhattacharyya overlap of task posteriors
//!   ([`bhattacharyya_coefficient`]) and the log Bayes factor of the shared prior against
//!   pooled and independent models ([`Evidence`]), gathered with per-task credible
//!   intervals in a JSON-ready [`BayesReport`].
//! - Baselines ([`PointModel`]: independent and pooled ridge / penalised logistic) and
//!   held-out [`score`]s.
//!
//! Tasks come as [`mtl_data::GroupedData`] (one design matrix and target per group).
//! It is not a general probabilistic-programming tool: no sampling, no priors other than
//! the shared Gaussian, and no tensors: the matrices are p × p, p the number of
//! coefficients, in plain `f64` (libtorch is linked only through `mtl-core`'s error
//! type); deep multi-task models live in `mtl`.

mod baselines;
mod config;
mod conjugate;
mod design;
mod gaussian;
mod linalg;
mod linear;
mod logistic;
mod metrics;
mod report;
mod squarem;
mod transfer;

pub use baselines::{Likelihood, PointModel};
pub use config::{Covariance, EmConfig};
pub use conjugate::{linear_posterior, logistic_posterior};
pub use gaussian::Gaussian;
pub use linear::{HierarchicalLinear, TaskPosterior};
pub use logistic::HierarchicalLogistic;
pub use metrics::{score, Score};
pub use report::{BayesReport, TaskSummary, CREDIBLE_LEVEL};
pub use transfer::{
    bhattacharyya_coefficient, independent_linear_posteriors, independent_logistic_posteriors,
    linear_evidence, logistic_evidence, mean_pairwise_overlap, Evidence,
};
