//! The hierarchical logistic model fitted by variational EM with the Jaakkola–Jordan
//! bound.

use crate::config::EmConfig;
use crate::conjugate::{logistic_at, logistic_posterior, predictive_probability, update_xi};
use crate::design::{coefficient_names, designs, with_intercept, Design};
use crate::gaussian::Gaussian;
use crate::linalg::cholesky;
use crate::linear::{pack, prior_m_step, unpack, TaskPosterior};
use crate::squarem::run_em;
use mtl_core::{Error, Result};
use mtl_data::GroupedData;
use ndarray::{Array1, Array2};

/// Per-task logistic regressions with a shared Gaussian prior: `β_t ~ N(μ, Σ)` (the
/// intercept is part of β) and `y_ti ~ Bernoulli(σ(x_tiᵀ β_t))`.
///
/// [`fit`](Self::fit) maximises a lower bound on the marginal likelihood over `(μ, Σ)`
/// by variational EM (Jaakkola & Jordan 2000, "Bayesian parameter estimation via
/// variational methods"): each row's likelihood is bounded by a Gaussian-shaped function
/// with parameter `ξ_ti`, which makes `q(β_t) = N(m_t, V_t)` conjugate:
/// `V_t⁻¹ = Σ⁻¹ + 2 Σᵢ λ(ξ_ti) x_ti x_tiᵀ`, `m_t = V_t (Σ⁻¹μ + Σᵢ (y_ti − ½) x_ti)`,
/// `λ(ξ) = tanh(ξ/2)/(4ξ)`; then `ξ_ti² = x_tiᵀ(V_t + m_t m_tᵀ)x_ti`, and the M-step is the
/// Gaussian one, `μ = mean m_t`, `Σ = mean [V_t + (m_t − μ)(m_t − μ)ᵀ]` plus the floor.
/// Every step raises the bound, which [`trace`](Self::trace) records;
/// [`log_marginal_bound`](Self::log_marginal_bound) is a lower bound on
/// `log p(y | μ, Σ)`, not its value.
#[derive(Debug, Clone)]
pub struct HierarchicalLogistic {
    /// `intercept` then the feature names.
    pub coefficient_names: Vec<String>,
    /// The learned prior `N(μ, Σ)`, also the prior of a new task.
    pub prior: Gaussian,
    /// Every training task's variational posterior.
    pub tasks: Vec<TaskPosterior>,
    /// The Jaakkola–Jordan lower bound on the log marginal likelihood at the estimates.
    pub log_marginal_bound: f64,
    /// The bound at each iteration.
    pub trace: Vec<f64>,
    /// Whether the tolerance was met before `max_iter`.
    pub converged: bool,
}

impl HierarchicalLogistic {
    /// Fits the model to every task of `data` (a 0/1 target).
    ///
    /// Errors: no task, an empty task, non-finite values (naming the task), a
    /// real-valued target, an invalid config, a covariance that cannot be factored.
    pub fn fit(data: &GroupedData, config: &EmConfig) -> Result<Self> {
        config.check()?;
        let ds = designs(data, true)?;
        let p = data.n_features() + 1;
        // Start at μ = 0 and Σ = I: on the log-odds scale a coefficient of a few units is
        // already large, so this is a neutral start.
        let mu = Array1::<f64>::zeros(p);
        let sigma = Array2::<f64>::eye(p);
        let xis: Vec<Vec<f64>> = ds.iter().map(|d| vec![1.0; d.rows()]).collect();
        let run = run_em(
            pack(&mu, &sigma, None),
            xis,
            config.max_iter,
            config.tol,
            config.accelerate,
            |theta, xis| {
                let (mu, sigma, _) = unpack(theta, p, false);
                let Some(l) = cholesky(&sigma) else {
                    return Ok(None);
                };
                let (posts, bound) = e_step(&ds, xis, &mu, &l)?;
                let refs: Vec<&Gaussian> = posts.iter().collect();
                let (mu, sigma) = prior_m_step(&refs, config);
                Ok(Some((bound, pack(&mu, &sigma, None))))
            },
        )?;
        let (mu, sigma, _) = unpack(&run.theta, p, false);
        let mut xis = run.state;
        let l = cholesky(&sigma).ok_or_else(|| {
            Error::config(
                "the prior covariance became singular (a variance reached zero); set cov_floor > 0",
            )
        })?;
        let (posts, bound) = e_step(&ds, &mut xis, &mu, &l)?;
        let mut trace = run.trace;
        trace.push(bound);
        let converged = run.converged;
        let log_marginal_bound = bound;
        Ok(HierarchicalLogistic {
            coefficient_names: coefficient_names(data),
            prior: Gaussian {
                mean: mu,
                cov: sigma,
            },
            tasks: ds
                .iter()
                .zip(posts)
                .map(|(d, post)| TaskPosterior {
                    name: d.name.clone(),
                    rows: d.rows(),
                    posterior: post,
                })
                .collect(),
            log_marginal_bound,
            trace,
            converged,
        })
    }

    /// The number of EM iterations run.
    pub fn iterations(&self) -> usize {
        self.trace.len().saturating_sub(1)
    }

    /// Posterior-to-prior transfer: the variational posterior of a new task under the
    /// learned prior. `x` holds the features without the intercept.
    pub fn fit_new_task(&self, x: &Array2<f64>, y: &Array1<f64>) -> Result<Gaussian> {
        if x.nrows() == 0 && y.is_empty() {
            return Ok(self.prior.clone());
        }
        let xd = with_intercept(x, self.prior.dim() - 1, "new task")?;
        Ok(logistic_posterior(&xd, y, &self.prior, 500)?.0)
    }

    /// `p(y = 1 | x)` for task `task`, averaged over its posterior (MacKay's probit
    /// approximation).
    pub fn predict_proba(&self, task: usize, x: &Array2<f64>) -> Result<Array1<f64>> {
        let t = self.tasks.get(task).ok_or_else(|| Error::Unknown {
            kind: "task",
            name: task.to_string(),
            known: format!("0..{}", self.tasks.len()),
        })?;
        let xd = with_intercept(x, self.prior.dim() - 1, &format!("task `{}`", t.name))?;
        Ok(xd
            .outer_iter()
            .map(|r| predictive_probability(r, &t.posterior))
            .collect())
    }
}

/// The E-step: for each task q(β) at the current ξ, then ξ for that q, then q again, so
/// the bound returned is the one the M-step raises.
fn e_step(
    ds: &[Design],
    xis: &mut [Vec<f64>],
    mu: &Array1<f64>,
    l: &Array2<f64>,
) -> Result<(Vec<Gaussian>, f64)> {
    let mut bound = 0.0;
    let mut posts = Vec::with_capacity(ds.len());
    for (k, (d, xi)) in ds.iter().zip(xis.iter_mut()).enumerate() {
        let s = step(k, d, xi, mu, l)?;
        update_xi(&d.x, &s.post, xi);
        let s = step(k, d, xi, mu, l)?;
        bound += s.bound;
        posts.push(s.post);
    }
    Ok((posts, bound))
}

fn step(
    k: usize,
    d: &Design,
    xi: &[f64],
    mu: &Array1<f64>,
    l: &Array2<f64>,
) -> Result<crate::conjugate::LogisticStep> {
    logistic_at(&d.x, &d.y, xi, mu, l).ok_or_else(|| {
        Error::config(format!(
            "task {k} (`{}`): the variational posterior precision is not positive definite",
            d.name
        ))
    })
}

/// The Jaakkola–Jordan bound on `Σ_t log p(y_t)` of `data`'s tasks under a fixed prior,
/// each task's `ξ` optimised.
pub(crate) fn bound_under(prior: &Gaussian, data: &GroupedData) -> Result<(Vec<Gaussian>, f64)> {
    let ds = designs(data, true)?;
    let mut total = 0.0;
    let mut posts = Vec::with_capacity(ds.len());
    for d in &ds {
        let (q, b) = logistic_posterior(&d.x, &d.y, prior, 500)?;
        total += b;
        posts.push(q);
    }
    Ok((posts, total))
}
