//! The hierarchical Gaussian linear model fitted by empirical Bayes (type-II maximum
//! likelihood) with EM.

use crate::config::{Covariance, EmConfig};
use crate::conjugate::{linear_step, prior_factor, LinearStep};
use crate::design::{coefficient_names, design, designs, with_intercept, Design};
use crate::gaussian::Gaussian;
use crate::linalg::{chol_solve, cholesky};
use crate::squarem::run_em;
use mtl_core::{Error, Result};
use mtl_data::GroupedData;
use ndarray::{Array1, Array2};

/// One task's posterior over its coefficients.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPosterior {
    /// The task's name.
    pub name: String,
    /// Its training rows.
    pub rows: usize,
    /// `N(m_t, V_t)` over `[intercept, features…]`.
    pub posterior: Gaussian,
}

/// Per-task linear regressions with a shared Gaussian prior: task `t`'s coefficients
/// `β_t = [intercept, slopes…]` (the intercept is part of β, so it is shared and
/// shrunk like every slope) are drawn `β_t ~ N(μ, Σ)` and `y_t | β_t ~ N(X_t β_t, σ²I)`.
///
/// [`fit`](Self::fit) estimates `(μ, Σ, σ²)` by maximising the exact marginal
/// likelihood `Σ_t log N(y_t; X_t μ, X_t Σ X_tᵀ + σ²I)` with EM, the random-coefficient
/// model of Laird & Ware (1982, "Random-effects models for longitudinal data"; EM of
/// Dempster, Laird & Rubin 1977). E-step: the conjugate posterior
/// `V_t = (Σ⁻¹ + X_tᵀX_t/σ²)⁻¹`, `m_t = V_t(Σ⁻¹μ + X_tᵀy_t/σ²)`. M-step:
/// `μ = mean_t m_t`, `Σ = mean_t [V_t + (m_t − μ)(m_t − μ)ᵀ]` (its diagonal for
/// [`Covariance::Diagonal`]) plus the floor, `σ² = Σ_t (‖y_t − X_t m_t‖² +
/// tr(X_tᵀX_t V_t)) / N`. Each iteration cannot lower the marginal likelihood (up to the
/// floor); [`trace`](Self::trace) records it.
#[derive(Debug, Clone)]
pub struct HierarchicalLinear {
    /// `intercept` then the feature names.
    pub coefficient_names: Vec<String>,
    /// The learned prior `N(μ, Σ)`, which is also the prior of a new task.
    pub prior: Gaussian,
    /// The learned noise variance σ².
    pub noise_variance: f64,
    /// Every training task's posterior, in the data's task order.
    pub tasks: Vec<TaskPosterior>,
    /// The exact log marginal likelihood at the estimates.
    pub log_marginal_likelihood: f64,
    /// The log marginal likelihood at the start of each EM iteration.
    pub trace: Vec<f64>,
    /// Whether the tolerance was met before `max_iter`.
    pub converged: bool,
}

impl HierarchicalLinear {
    /// Fits the model to every task of `data` (a real-valued target).
    ///
    /// ```
    /// use mtl_data::{GroupedData, GroupedTask};
    /// use ndarray::array;
    /// let task = |n: &str, b: f64| GroupedTask {
    ///     name: n.into(),
    ///     x: array![[0.0], [1.0], [2.0]],
    ///     y: array![b, b + 1.1, b + 1.9],
    /// };
    /// let data = GroupedData {
    ///     feature_names: vec!["x".into()],
    ///     target_name: "y".into(),
    ///     binary: false,
    ///     tasks: vec![task("a", 0.0), task("b", 1.0), task("c", 0.3)],
    /// };
    /// let fit = mtl_bayes::HierarchicalLinear::fit(&data, &Default::default())?;
    /// assert!((fit.prior.mean[1] - 0.95).abs() < 0.1);
    /// # Ok::<(), mtl_core::Error>(())
    /// ```
    ///
    /// Errors: no task, an empty task, non-finite values (each naming the task), a
    /// binary target, an invalid config, and a covariance that cannot be factored (a
    /// zero floor with a variance at zero).
    pub fn fit(data: &GroupedData, config: &EmConfig) -> Result<Self> {
        config.check()?;
        if data.binary {
            return Err(Error::config(format!(
                "the linear model needs a real-valued target; `{}` is 0/1 (use HierarchicalLogistic)",
                data.target_name
            )));
        }
        let ds = designs(data, false)?;
        let p = data.n_features() + 1;
        let n_total: usize = ds.iter().map(Design::rows).sum();

        // Start from the pooled least-squares fit: μ its coefficients, σ² its residual
        // variance, Σ = σ² I (any positive-definite start converges; this one is on the
        // data's scale).
        let mut gram = Array2::<f64>::eye(p) * 1e-8;
        let mut xty = Array1::<f64>::zeros(p);
        let mut yty = 0.0;
        for d in &ds {
            gram += &d.gram;
            xty += &d.xty;
            yty += d.yty;
        }
        let l =
            cholesky(&gram).ok_or_else(|| Error::config("pooled Gram matrix not factorable"))?;
        let mu = chol_solve(&l, &xty);
        let rss = yty - 2.0 * mu.dot(&xty) + mu.dot(&gram.dot(&mu));
        let mut s2 = (rss / n_total as f64).max(1e-6 * (yty / n_total as f64).max(1e-300));
        if !(s2 > 0.0 && s2.is_finite()) {
            s2 = 1.0;
        }
        let sigma = Array2::<f64>::eye(p) * s2;

        let run = run_em(
            pack(&mu, &sigma, Some(s2)),
            (),
            config.max_iter,
            config.tol,
            config.accelerate,
            |theta, _| {
                let (mu, sigma, s2) = unpack(theta, p, true);
                let s2 = s2.unwrap_or(f64::NAN);
                if !(s2 > 0.0 && s2.is_finite()) || cholesky(&sigma).is_none() {
                    return Ok(None);
                }
                let steps = e_step(&ds, &mu, &sigma, s2)?;
                let ll: f64 = steps.iter().map(|s| s.log_marginal).sum();
                let posts: Vec<&Gaussian> = steps.iter().map(|s| &s.post).collect();
                let (mu, sigma) = prior_m_step(&posts, config);
                let s2 = steps.iter().map(|s| s.expected_sse).sum::<f64>() / n_total as f64;
                if !(s2 > 0.0 && s2.is_finite()) {
                    return Err(Error::config(format!(
                        "the noise variance reached {s2}: the designs fit every target exactly"
                    )));
                }
                Ok(Some((ll, pack(&mu, &sigma, Some(s2)))))
            },
        )?;
        // The posteriors and objective at the last M-step's estimates.
        let (mu, sigma, s2) = unpack(&run.theta, p, true);
        let s2 = s2.unwrap_or(f64::NAN);
        let steps = e_step(&ds, &mu, &sigma, s2)?;
        let mut trace = run.trace;
        trace.push(steps.iter().map(|s| s.log_marginal).sum());
        let converged = run.converged;
        let log_marginal_likelihood = *trace.last().unwrap_or(&f64::NAN);
        Ok(HierarchicalLinear {
            coefficient_names: coefficient_names(data),
            prior: Gaussian {
                mean: mu,
                cov: sigma,
            },
            noise_variance: s2,
            tasks: ds
                .iter()
                .zip(steps)
                .map(|(d, s)| TaskPosterior {
                    name: d.name.clone(),
                    rows: d.rows(),
                    posterior: s.post,
                })
                .collect(),
            log_marginal_likelihood,
            trace,
            converged,
        })
    }

    /// The number of EM iterations run.
    pub fn iterations(&self) -> usize {
        self.trace.len().saturating_sub(1)
    }

    /// Posterior-to-prior transfer: the posterior of a task not seen in training, whose
    /// prior is the learned `N(μ, Σ)` and noise variance the learned σ². `x` holds the
    /// features without the intercept; zero rows give the prior itself.
    pub fn fit_new_task(&self, x: &Array2<f64>, y: &Array1<f64>) -> Result<Gaussian> {
        posterior_under(&self.prior, self.noise_variance, x, y, "new task")
    }

    /// Predictions `[1, x] m_t` for task `task` (its index in the training data).
    pub fn predict(&self, task: usize, x: &Array2<f64>) -> Result<Array1<f64>> {
        let t = self.tasks.get(task).ok_or_else(|| Error::Unknown {
            kind: "task",
            name: task.to_string(),
            known: format!("0..{}", self.tasks.len()),
        })?;
        let xd = with_intercept(x, self.prior.dim() - 1, &format!("task `{}`", t.name))?;
        Ok(xd.dot(&t.posterior.mean))
    }

    /// The exact log marginal likelihood of `data`'s tasks under this model's prior and
    /// noise variance (e.g. held-out tasks).
    pub fn log_marginal_of(&self, data: &GroupedData) -> Result<f64> {
        log_marginal_under(&self.prior, self.noise_variance, data)
    }
}

/// One task's exact posterior under `prior` with noise `s2`; rows may be zero.
pub(crate) fn posterior_under(
    prior: &Gaussian,
    s2: f64,
    x: &Array2<f64>,
    y: &Array1<f64>,
    what: &str,
) -> Result<Gaussian> {
    let p = prior.dim();
    if y.is_empty() && x.nrows() == 0 {
        return Ok(prior.clone());
    }
    let d = design(0, what, x, y, p - 1, false)?;
    let l = prior_factor(prior)?;
    let s =
        linear_step(&d.gram, &d.xty, d.yty, d.rows(), &prior.mean, &l, s2).ok_or_else(|| {
            Error::config(format!("{what}: posterior precision not positive definite"))
        })?;
    Ok(s.post)
}

/// `Σ_t log N(y_t; X_t μ, X_t Σ X_tᵀ + s2 I)` over `data`'s tasks, exact.
pub(crate) fn log_marginal_under(prior: &Gaussian, s2: f64, data: &GroupedData) -> Result<f64> {
    let ds = designs(data, false)?;
    let l = prior_factor(prior)?;
    let mut total = 0.0;
    for (k, d) in ds.iter().enumerate() {
        let s = linear_step(&d.gram, &d.xty, d.yty, d.rows(), &prior.mean, &l, s2)
            .ok_or_else(|| singular(k, &d.name))?;
        total += s.log_marginal;
    }
    Ok(total)
}

fn singular(k: usize, name: &str) -> Error {
    Error::config(format!(
        "task {k} (`{name}`): the posterior precision is not positive definite"
    ))
}

fn e_step(
    ds: &[Design],
    mu: &Array1<f64>,
    sigma: &Array2<f64>,
    s2: f64,
) -> Result<Vec<LinearStep>> {
    let l = cholesky(sigma).ok_or_else(|| {
        Error::config(
            "the prior covariance became singular (a variance reached zero); set cov_floor > 0",
        )
    })?;
    ds.iter()
        .enumerate()
        .map(|(k, d)| {
            linear_step(&d.gram, &d.xty, d.yty, d.rows(), mu, &l, s2)
                .ok_or_else(|| singular(k, &d.name))
        })
        .collect()
}

/// The M-step for the prior: `μ = mean m_t`, `Σ = mean [V_t + (m_t − μ)(m_t − μ)ᵀ]`,
/// then the diagonal restriction and the floor.
pub(crate) fn prior_m_step(posts: &[&Gaussian], config: &EmConfig) -> (Array1<f64>, Array2<f64>) {
    let t = posts.len() as f64;
    let p = posts[0].dim();
    let mut mu = Array1::<f64>::zeros(p);
    for q in posts {
        mu += &q.mean;
    }
    mu /= t;
    let mut sigma = Array2::<f64>::zeros((p, p));
    for q in posts {
        let d = &q.mean - &mu;
        sigma += &q.cov;
        for i in 0..p {
            for j in 0..p {
                sigma[[i, j]] += d[i] * d[j];
            }
        }
    }
    sigma /= t;
    if config.covariance == Covariance::Diagonal {
        sigma = Array2::from_diag(&sigma.diag());
    }
    for i in 0..p {
        sigma[[i, i]] += config.cov_floor;
    }
    (mu, sigma)
}

/// `θ = [μ, Σ row by row, σ²?]`, the flat parameter vector EM extrapolates.
pub(crate) fn pack(mu: &Array1<f64>, sigma: &Array2<f64>, s2: Option<f64>) -> Vec<f64> {
    mu.iter().chain(sigma.iter()).copied().chain(s2).collect()
}

/// The inverse of [`pack`]; Σ is symmetrised (an extrapolation keeps it symmetric up to
/// rounding).
pub(crate) fn unpack(
    theta: &[f64],
    p: usize,
    with_s2: bool,
) -> (Array1<f64>, Array2<f64>, Option<f64>) {
    let mu = Array1::from(theta[..p].to_vec());
    let mut sigma = Array2::from_shape_vec((p, p), theta[p..p + p * p].to_vec())
        .unwrap_or_else(|_| Array2::eye(p));
    crate::linalg::symmetrize(&mut sigma);
    (mu, sigma, with_s2.then(|| theta[p + p * p]))
}
