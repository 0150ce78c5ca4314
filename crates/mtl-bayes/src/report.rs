//! The serialisable summary of a fitted hierarchical model: the learned prior, each
//! task's posterior with credible intervals, the evidence for sharing and the posterior
//! overlaps.

use crate::gaussian::Gaussian;
use crate::linear::{HierarchicalLinear, TaskPosterior};
use crate::logistic::HierarchicalLogistic;
use crate::transfer::{
    independent_linear_posteriors, independent_logistic_posteriors, linear_evidence,
    logistic_evidence, mean_pairwise_overlap, Evidence,
};
use mtl_core::{Error, Result};
use mtl_data::GroupedData;
use serde::{Deserialize, Serialize};

/// The credible level of the reported intervals.
pub const CREDIBLE_LEVEL: f64 = 0.95;

/// One task's posterior: per coefficient its mean, standard deviation and central
/// 95 % credible interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSummary {
    /// The task's name.
    pub name: String,
    /// Its training rows.
    pub rows: usize,
    /// Posterior means, in `coefficient_names` order.
    pub mean: Vec<f64>,
    /// Posterior standard deviations.
    pub sd: Vec<f64>,
    /// Lower ends of the credible intervals.
    pub lower: Vec<f64>,
    /// Upper ends of the credible intervals.
    pub upper: Vec<f64>,
}

impl TaskSummary {
    fn new(t: &TaskPosterior) -> Self {
        let (lo, hi) = t.posterior.interval(CREDIBLE_LEVEL);
        TaskSummary {
            name: t.name.clone(),
            rows: t.rows,
            mean: t.posterior.mean.to_vec(),
            sd: t.posterior.sd().to_vec(),
            lower: lo.to_vec(),
            upper: hi.to_vec(),
        }
    }
}

/// What a hierarchical fit learned, as JSON-ready data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BayesReport {
    /// `linear` or `logistic`.
    pub model: String,
    /// `intercept` then the features.
    pub coefficient_names: Vec<String>,
    /// The learned prior mean μ.
    pub prior_mean: Vec<f64>,
    /// The learned prior covariance Σ, row by row.
    pub prior_cov: Vec<Vec<f64>>,
    /// The learned noise variance σ² (linear model).
    pub noise_variance: Option<f64>,
    /// EM iterations run.
    pub iterations: usize,
    /// Whether EM met its tolerance.
    pub converged: bool,
    /// Log marginal likelihoods of the shared, pooled and independent models.
    pub evidence: Evidence,
    /// `evidence.shared − evidence.pooled`.
    pub log_bf_vs_pooled: f64,
    /// `evidence.shared − evidence.independent`.
    pub log_bf_vs_independent: f64,
    /// The mean Bhattacharyya coefficient over every pair of tasks' posteriors under the
    /// shared prior.
    pub mean_overlap_shared: f64,
    /// The same under the independent vague prior: how much the tasks' posteriors
    /// overlap before any sharing.
    pub mean_overlap_independent: f64,
    /// The credible level of the intervals.
    pub level: f64,
    /// Each task's posterior summary.
    pub tasks: Vec<TaskSummary>,
}

impl BayesReport {
    /// The report of a linear fit on its training `data`, the independent models under
    /// `N(0, vague_variance · I)`.
    pub fn linear(
        fit: &HierarchicalLinear,
        data: &GroupedData,
        vague_variance: f64,
    ) -> Result<Self> {
        let evidence = linear_evidence(fit, data, vague_variance)?;
        let independent = independent_linear_posteriors(data, vague_variance)?;
        Self::build(
            "linear",
            &fit.coefficient_names,
            &fit.prior,
            Some(fit.noise_variance),
            fit.iterations(),
            fit.converged,
            evidence,
            &fit.tasks,
            &independent,
        )
    }

    /// The report of a logistic fit on its training `data`.
    pub fn logistic(
        fit: &HierarchicalLogistic,
        data: &GroupedData,
        vague_variance: f64,
    ) -> Result<Self> {
        let evidence = logistic_evidence(fit, data, vague_variance)?;
        let independent = independent_logistic_posteriors(data, vague_variance)?;
        Self::build(
            "logistic",
            &fit.coefficient_names,
            &fit.prior,
            None,
            fit.iterations(),
            fit.converged,
            evidence,
            &fit.tasks,
            &independent,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        model: &str,
        names: &[String],
        prior: &Gaussian,
        noise_variance: Option<f64>,
        iterations: usize,
        converged: bool,
        evidence: Evidence,
        tasks: &[TaskPosterior],
        independent: &[Gaussian],
    ) -> Result<Self> {
        let shared: Vec<&Gaussian> = tasks.iter().map(|t| &t.posterior).collect();
        let indep: Vec<&Gaussian> = independent.iter().collect();
        Ok(BayesReport {
            model: model.into(),
            coefficient_names: names.to_vec(),
            prior_mean: prior.mean.to_vec(),
            prior_cov: prior.cov.outer_iter().map(|r| r.to_vec()).collect(),
            noise_variance,
            iterations,
            converged,
            log_bf_vs_pooled: evidence.log_bf_vs_pooled(),
            log_bf_vs_independent: evidence.log_bf_vs_independent(),
            evidence,
            mean_overlap_shared: mean_pairwise_overlap(&shared)?,
            mean_overlap_independent: mean_pairwise_overlap(&indep)?,
            level: CREDIBLE_LEVEL,
            tasks: tasks.iter().map(TaskSummary::new).collect(),
        })
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::config(format!("report serialisation: {e}")))
    }
}
