//! How much the tasks share: the overlap of their posteriors, and the Bayes factor of the
//! shared prior against pooled and independent models.

use crate::baselines::pooled_max_log_likelihood;
use crate::gaussian::Gaussian;
use crate::linalg::{chol_logdet, chol_solve, cholesky};
use crate::linear::{log_marginal_under, posterior_under, HierarchicalLinear};
use crate::logistic::{bound_under, HierarchicalLogistic};
use mtl_core::{Error, Result};
use mtl_data::GroupedData;
use serde::{Deserialize, Serialize};

/// The Bhattacharyya coefficient `BC = ∫ √(p q) = exp(−D_B)` of two Gaussians
/// (Bhattacharyya 1943; Kailath 1967 for the Gaussian form), with
/// `D_B = ⅛ (m₁ − m₂)ᵀ S⁻¹ (m₁ − m₂) + ½ log(|S| / √(|V₁||V₂|))`, `S = (V₁ + V₂)/2`.
/// 1 for identical posteriors, near 0 for posteriors that put their mass in different
/// places; the Hellinger distance is `√(1 − BC)`.
///
/// ```
/// let a = mtl_bayes::Gaussian::isotropic(2, 1.0);
/// assert!((mtl_bayes::bhattacharyya_coefficient(&a, &a)? - 1.0).abs() < 1e-12);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn bhattacharyya_coefficient(a: &Gaussian, b: &Gaussian) -> Result<f64> {
    if a.dim() != b.dim() {
        return Err(Error::shape("posterior overlap", a.dim(), b.dim()));
    }
    let not_pd = || Error::config("posterior overlap: a covariance is not positive definite");
    let s = (&a.cov + &b.cov) * 0.5;
    let ls = cholesky(&s).ok_or_else(not_pd)?;
    let la = cholesky(&a.cov).ok_or_else(not_pd)?;
    let lb = cholesky(&b.cov).ok_or_else(not_pd)?;
    let d = &a.mean - &b.mean;
    let db = 0.125 * d.dot(&chol_solve(&ls, &d))
        + 0.5 * (chol_logdet(&ls) - 0.5 * (chol_logdet(&la) + chol_logdet(&lb)));
    Ok((-db).exp())
}

/// The mean Bhattacharyya coefficient over every pair of `posts` (NaN for fewer than 2).
pub fn mean_pairwise_overlap(posts: &[&Gaussian]) -> Result<f64> {
    let mut sum = 0.0;
    let mut pairs = 0usize;
    for i in 0..posts.len() {
        for j in i + 1..posts.len() {
            sum += bhattacharyya_coefficient(posts[i], posts[j])?;
            pairs += 1;
        }
    }
    Ok(sum / pairs as f64)
}

/// The evidence for sharing, on the natural-log scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The shared model's log marginal likelihood at its estimates (exact for the
    /// linear model; the Jaakkola–Jordan lower bound for the logistic one).
    pub shared: f64,
    /// The pooled model's maximised log-likelihood (every task the same β; exact).
    pub pooled: f64,
    /// The independent models' log marginal likelihood under the vague prior
    /// `N(0, vague_variance · I)` per task (linear: exact at the σ² that maximises it;
    /// logistic: the Jaakkola–Jordan bound).
    pub independent: f64,
    /// The prior variance of the independent models.
    pub vague_variance: f64,
}

impl Evidence {
    /// `log BF` of the shared prior against the pooled model. For the linear model an
    /// exact likelihood ratio (the pooled model is the shared one with Σ = 0, so it is
    /// ≥ 0 up to the covariance floor); for the logistic one a lower bound on it.
    pub fn log_bf_vs_pooled(&self) -> f64 {
        self.shared - self.pooled
    }

    /// `log BF` of the shared prior against independent tasks under the vague prior.
    /// It grows with `vague_variance` (Lindley's paradox: a vaguer prior spreads the
    /// independent models' mass thinner), so it is read at the stated variance.
    pub fn log_bf_vs_independent(&self) -> f64 {
        self.shared - self.independent
    }
}

/// The evidence of a fitted linear model on its training `data`.
pub fn linear_evidence(
    fit: &HierarchicalLinear,
    data: &GroupedData,
    vague_variance: f64,
) -> Result<Evidence> {
    check_vague(vague_variance)?;
    let (_, independent) = independent_linear(data, vague_variance)?;
    Ok(Evidence {
        shared: fit.log_marginal_likelihood,
        pooled: pooled_max_log_likelihood(data)?,
        independent,
        vague_variance,
    })
}

/// The evidence of a fitted logistic model on its training `data`.
pub fn logistic_evidence(
    fit: &HierarchicalLogistic,
    data: &GroupedData,
    vague_variance: f64,
) -> Result<Evidence> {
    check_vague(vague_variance)?;
    let prior = Gaussian::isotropic(fit.prior.dim(), vague_variance);
    Ok(Evidence {
        shared: fit.log_marginal_bound,
        pooled: pooled_max_log_likelihood(data)?,
        independent: bound_under(&prior, data)?.1,
        vague_variance,
    })
}

fn check_vague(v: f64) -> Result<()> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(Error::config(format!(
            "the vague prior variance must be positive and finite, got {v}"
        )))
    }
}

/// The independent linear models: each task `y_t ~ N(0, τ² X_t X_tᵀ + σ² I)` with the
/// shared σ² maximising the sum (golden-section search on log σ²). Returns `(σ², log
/// marginal)`.
pub(crate) fn independent_linear(data: &GroupedData, tau2: f64) -> Result<(f64, f64)> {
    let p = data.n_features() + 1;
    let prior = Gaussian::isotropic(p, tau2);
    let var_y = {
        let (_, y, _) = data.pooled();
        let m = y.mean().unwrap_or(0.0);
        y.mapv(|v| (v - m) * (v - m))
            .mean()
            .unwrap_or(1.0)
            .max(1e-12)
    };
    let f = |ls2: f64| log_marginal_under(&prior, ls2.exp(), data);
    // The maximiser lies between a millionth of the target's variance and its variance
    // times ten; the objective is smooth and unimodal there in practice.
    let (mut a, mut b) = ((var_y * 1e-6).ln(), (var_y * 10.0).ln());
    let g = 0.5 * (5f64.sqrt() - 1.0);
    let (mut c, mut d) = (b - g * (b - a), a + g * (b - a));
    let (mut fc, mut fd) = (f(c)?, f(d)?);
    while b - a > 1e-10 {
        if fc > fd {
            b = d;
            d = c;
            fd = fc;
            c = b - g * (b - a);
            fc = f(c)?;
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + g * (b - a);
            fd = f(d)?;
        }
    }
    let s2 = (0.5 * (a + b)).exp();
    Ok((s2, f(s2.ln())?))
}

/// Each task's posterior under the independent vague prior (linear: at the σ² of
/// [`linear_evidence`]), for comparing overlaps with and without sharing.
pub fn independent_linear_posteriors(
    data: &GroupedData,
    vague_variance: f64,
) -> Result<Vec<Gaussian>> {
    check_vague(vague_variance)?;
    let (s2, _) = independent_linear(data, vague_variance)?;
    let prior = Gaussian::isotropic(data.n_features() + 1, vague_variance);
    data.tasks
        .iter()
        .map(|t| posterior_under(&prior, s2, &t.x, &t.y, &t.name))
        .collect()
}

/// Each task's variational posterior under the independent vague prior.
pub fn independent_logistic_posteriors(
    data: &GroupedData,
    vague_variance: f64,
) -> Result<Vec<Gaussian>> {
    check_vague(vague_variance)?;
    let prior = Gaussian::isotropic(data.n_features() + 1, vague_variance);
    Ok(bound_under(&prior, data)?.0)
}
