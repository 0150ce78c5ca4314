//! One task's posterior under a Gaussian prior `β ~ N(μ, Σ)`: exact for the Gaussian
//! likelihood, variational (Jaakkola & Jordan 2000) for the logistic one.
//!
//! Both are written in the factor form of Σ = L Lᵀ, which never inverts Σ or XᵀX: with
//! `B = I + Lᵀ H L` (H the likelihood's precision, `XᵀX/σ²` or `2 Σᵢ λ(ξᵢ) xᵢxᵢᵀ`) the
//! posterior covariance is `V = L B⁻¹ Lᵀ` and `|Σ| / |V| = |B|`. B is the identity plus a
//! positive semi-definite matrix, so a task with fewer rows than coefficients, or with a
//! constant column, still has a well-defined posterior: the prior fills the directions the
//! rows do not reach.

use crate::gaussian::Gaussian;
use crate::linalg::{chol_inverse, chol_logdet, cholesky, symmetrize};
use mtl_core::{Error, Result};
use ndarray::{Array1, Array2};

const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// What the Gaussian-likelihood E-step gives for one task.
#[derive(Debug, Clone)]
pub(crate) struct LinearStep {
    pub post: Gaussian,
    /// `log N(y; Xμ, XΣXᵀ + σ²I)`.
    pub log_marginal: f64,
    /// `E‖y − Xβ‖²` under the posterior: `‖y − Xm‖² + tr(XᵀX V)`.
    pub expected_sse: f64,
}

/// The conjugate update from the Gram statistics `XᵀX`, `Xᵀy`, `yᵀy` of `n` rows, the
/// prior mean `mu`, the Cholesky factor `l` of the prior covariance and the noise
/// variance `s2`. `None` when `B` is not positive definite, which only non-finite
/// inputs cause.
pub(crate) fn linear_step(
    gram: &Array2<f64>,
    xty: &Array1<f64>,
    yty: f64,
    n: usize,
    mu: &Array1<f64>,
    l: &Array2<f64>,
    s2: f64,
) -> Option<LinearStep> {
    let p = mu.len();
    let b = Array2::<f64>::eye(p) + l.t().dot(gram).dot(l) / s2;
    let rb = cholesky(&b)?;
    let binv = chol_inverse(&rb);
    let mut v = l.dot(&binv).dot(&l.t());
    symmetrize(&mut v);
    // Residual statistics at the prior mean: Xᵀr and rᵀr for r = y − Xμ.
    let xtr = xty - &gram.dot(mu);
    let rtr = yty - 2.0 * mu.dot(xty) + mu.dot(&gram.dot(mu));
    let m = mu + &(v.dot(&xtr) / s2);
    // Woodbury: rᵀC⁻¹r = rᵀr/σ² − uᵀB⁻¹u/σ⁴ with u = LᵀXᵀr; determinant lemma:
    // log|C| = n log σ² + log|B|.
    let u = l.t().dot(&xtr);
    let quad = rtr / s2 - u.dot(&binv.dot(&u)) / (s2 * s2);
    let log_marginal = -0.5 * (n as f64 * (LN_2PI + s2.ln()) + chol_logdet(&rb) + quad);
    let sse = yty - 2.0 * m.dot(xty) + m.dot(&gram.dot(&m));
    let expected_sse = (sse + (gram * &v).sum()).max(0.0);
    Some(LinearStep {
        post: Gaussian { mean: m, cov: v },
        log_marginal,
        expected_sse,
    })
}

/// The exact posterior of `β` and the log marginal likelihood `log p(y)` for
/// `y ~ N(Xβ, σ² I)`, `β ~ prior`. `x` is used as given: prepend a column of ones for an
/// intercept. This is the conjugate update (Bishop 2006, eq. 3.49–3.51 and 3.86):
/// `V = (Σ⁻¹ + XᵀX/σ²)⁻¹`, `m = V (Σ⁻¹μ + Xᵀy/σ²)`, `y ~ N(Xμ, XΣXᵀ + σ²I)`.
///
/// ```
/// use ndarray::array;
/// let prior = mtl_bayes::Gaussian::isotropic(1, 1.0);
/// let (post, _) = mtl_bayes::linear_posterior(&array![[1.0]], &array![2.0], &prior, 1.0)?;
/// assert!((post.mean[0] - 1.0).abs() < 1e-12 && (post.cov[[0, 0]] - 0.5).abs() < 1e-12);
/// # Ok::<(), mtl_core::Error>(())
/// ```
///
/// Errors: mismatched shapes, non-finite values, a noise variance that is not positive.
pub fn linear_posterior(
    x: &Array2<f64>,
    y: &Array1<f64>,
    prior: &Gaussian,
    noise_variance: f64,
) -> Result<(Gaussian, f64)> {
    check_inputs(x, y, prior)?;
    if !(noise_variance > 0.0 && noise_variance.is_finite()) {
        return Err(Error::config(format!(
            "noise variance must be positive and finite, got {noise_variance}"
        )));
    }
    let l = prior_factor(prior)?;
    let s = linear_step(
        &x.t().dot(x),
        &x.t().dot(y),
        y.dot(y),
        y.len(),
        &prior.mean,
        &l,
        noise_variance,
    )
    .ok_or_else(|| Error::config("the posterior precision is not positive definite"))?;
    Ok((s.post, s.log_marginal))
}

pub(crate) fn prior_factor(prior: &Gaussian) -> Result<Array2<f64>> {
    cholesky(&prior.cov).ok_or_else(|| {
        Error::config("the prior covariance is not positive definite; raise the covariance floor")
    })
}

fn check_inputs(x: &Array2<f64>, y: &Array1<f64>, prior: &Gaussian) -> Result<()> {
    if x.ncols() != prior.dim() {
        return Err(Error::shape(
            "design against the prior",
            format!("{} columns", prior.dim()),
            format!("{} columns", x.ncols()),
        ));
    }
    if x.nrows() != y.len() {
        return Err(Error::RowCount {
            what: "target".into(),
            expected: x.nrows(),
            got: y.len(),
        });
    }
    if let Some(v) = x.iter().chain(y.iter()).find(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: "design or target".into(),
            task: None,
            step: None,
            value: v.to_string(),
        });
    }
    Ok(())
}

/// `λ(ξ) = tanh(ξ/2) / (4ξ)`, the curvature of the Jaakkola–Jordan bound (1/8 at 0).
pub(crate) fn jj_lambda(xi: f64) -> f64 {
    if xi.abs() < 1e-6 {
        0.125 - xi * xi / 192.0
    } else {
        (0.5 * xi).tanh() / (4.0 * xi)
    }
}

/// `log σ(t)` without overflow.
pub(crate) fn log_sigmoid(t: f64) -> f64 {
    if t >= 0.0 {
        -(-t).exp().ln_1p()
    } else {
        t - t.exp().ln_1p()
    }
}

/// What the logistic E-step gives for one task.
#[derive(Debug, Clone)]
pub(crate) struct LogisticStep {
    pub post: Gaussian,
    /// The Jaakkola–Jordan lower bound on `log p(y)` at the current `ξ`.
    pub bound: f64,
}

/// The Gaussian posterior and bound for fixed variational parameters `xi` (one per row).
/// Each row's `log σ((2y−1)s)` is bounded below by the quadratic
/// `(y − ½)s − λ(ξ)s² + log σ(ξ) − ξ/2 + λ(ξ)ξ²`, tight at `s = ±ξ`, which makes the
/// prior conjugate: `V⁻¹ = Σ⁻¹ + 2A`, `m = V(Σ⁻¹μ + b)` with `A = Σᵢ λᵢ xᵢxᵢᵀ` and
/// `b = Σᵢ (yᵢ − ½) xᵢ`, and the bound integrates in closed form.
pub(crate) fn logistic_at(
    x: &Array2<f64>,
    y: &Array1<f64>,
    xi: &[f64],
    mu: &Array1<f64>,
    l: &Array2<f64>,
) -> Option<LogisticStep> {
    let p = mu.len();
    let mut a = Array2::<f64>::zeros((p, p));
    let mut b = Array1::<f64>::zeros(p);
    let mut c = 0.0;
    for (i, row) in x.outer_iter().enumerate() {
        let lam = jj_lambda(xi[i]);
        for j in 0..p {
            b[j] += (y[i] - 0.5) * row[j];
            for k in 0..p {
                a[[j, k]] += lam * row[j] * row[k];
            }
        }
        c += log_sigmoid(xi[i]) - 0.5 * xi[i] + lam * xi[i] * xi[i];
    }
    let bm = Array2::<f64>::eye(p) + 2.0 * l.t().dot(&a).dot(l);
    let rb = cholesky(&bm)?;
    let mut v = l.dot(&chol_inverse(&rb)).dot(&l.t());
    symmetrize(&mut v);
    // Completing the square around μ: with g = b − 2Aμ the exponent is
    // bᵀμ − μᵀAμ + gᵀδ − ½δᵀV⁻¹δ for δ = β − μ.
    let g = &b - &(2.0 * a.dot(mu));
    let vg = v.dot(&g);
    let bound = c + b.dot(mu) - mu.dot(&a.dot(mu)) + 0.5 * g.dot(&vg) - 0.5 * chol_logdet(&rb);
    Some(LogisticStep {
        post: Gaussian {
            mean: mu + &vg,
            cov: v,
        },
        bound,
    })
}

/// The optimal `ξᵢ² = xᵢᵀ(V + mmᵀ)xᵢ` for the posterior `post`.
pub(crate) fn update_xi(x: &Array2<f64>, post: &Gaussian, xi: &mut [f64]) {
    for (i, row) in x.outer_iter().enumerate() {
        let mean = row.dot(&post.mean);
        let var = row.dot(&post.cov.dot(&row));
        xi[i] = (var + mean * mean).max(0.0).sqrt();
    }
}

/// The variational posterior of `β` and the Jaakkola–Jordan lower bound on `log p(y)`
/// for `yᵢ ~ Bernoulli(σ(xᵢᵀβ))`, `β ~ prior` (Jaakkola & Jordan 2000, "Bayesian
/// parameter estimation via variational methods"), alternating the conjugate update of
/// `q(β) = N(m, V)` and `ξᵢ² = xᵢᵀ(V + mmᵀ)xᵢ` until the bound moves less than `1e-12`
/// (relative) or `max_iter` rounds. `x` is used as given.
///
/// Errors: mismatched shapes, non-finite values, targets other than 0/1.
pub fn logistic_posterior(
    x: &Array2<f64>,
    y: &Array1<f64>,
    prior: &Gaussian,
    max_iter: usize,
) -> Result<(Gaussian, f64)> {
    check_inputs(x, y, prior)?;
    if let Some(v) = y.iter().find(|v| **v != 0.0 && **v != 1.0) {
        return Err(Error::config(format!(
            "a logistic target must be 0 or 1, got {v}"
        )));
    }
    let l = prior_factor(prior)?;
    let mut xi = vec![1.0; y.len()];
    let fail = || Error::config("the variational posterior precision is not positive definite");
    let mut step = logistic_at(x, y, &xi, &prior.mean, &l).ok_or_else(fail)?;
    for _ in 0..max_iter {
        update_xi(x, &step.post, &mut xi);
        let next = logistic_at(x, y, &xi, &prior.mean, &l).ok_or_else(fail)?;
        let done = (next.bound - step.bound).abs() <= 1e-12 * (1.0 + next.bound.abs());
        step = next;
        if done {
            break;
        }
    }
    Ok((step.post, step.bound))
}

/// The posterior predictive probability `p(y = 1 | x)` under `N(m, V)`, by MacKay's
/// probit approximation `σ(xᵀm / √(1 + π xᵀVx / 8))` (Bishop 2006, eq. 4.153).
pub(crate) fn predictive_probability(row: ndarray::ArrayView1<f64>, post: &Gaussian) -> f64 {
    let mean = row.dot(&post.mean);
    let var = row.dot(&post.cov.dot(&row));
    let t = mean / (1.0 + std::f64::consts::PI * var / 8.0).sqrt();
    log_sigmoid(t).exp()
}
