//! A multivariate Gaussian over one task's coefficients: a prior `N(μ, Σ)` or a
//! posterior `N(m, V)`, with the marginal standard deviations and credible intervals.

use crate::linalg::{chol_logdet, chol_solve, cholesky};
use mtl_core::{Error, Result};
use ndarray::{Array1, Array2};

/// `N(mean, cov)` over the coefficients `[intercept, features…]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Gaussian {
    /// The mean.
    pub mean: Array1<f64>,
    /// The covariance (symmetric positive definite).
    pub cov: Array2<f64>,
}

impl Gaussian {
    /// A Gaussian after checking that `cov` is square, matches `mean`, holds only finite
    /// values and is positive definite.
    pub fn new(mean: Array1<f64>, cov: Array2<f64>) -> Result<Self> {
        let p = mean.len();
        if cov.dim() != (p, p) {
            return Err(Error::shape(
                "Gaussian covariance",
                format!("{p} x {p}"),
                format!("{} x {}", cov.nrows(), cov.ncols()),
            ));
        }
        if let Some(v) = mean.iter().chain(cov.iter()).find(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "Gaussian mean or covariance".into(),
                task: None,
                step: None,
                value: v.to_string(),
            });
        }
        if cholesky(&cov).is_none() {
            return Err(Error::config(
                "a Gaussian's covariance must be positive definite",
            ));
        }
        Ok(Gaussian { mean, cov })
    }

    /// `N(0, variance · I)` over `p` coefficients: the vague prior of independent models.
    pub fn isotropic(p: usize, variance: f64) -> Self {
        Gaussian {
            mean: Array1::zeros(p),
            cov: Array2::eye(p) * variance,
        }
    }

    /// The number of coefficients.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// The marginal standard deviation of each coefficient.
    pub fn sd(&self) -> Array1<f64> {
        self.cov.diag().mapv(|v| v.max(0.0).sqrt())
    }

    /// The central credible interval of each coefficient at `level` (e.g. 0.95):
    /// `mean ± z · sd`, `z` the standard normal quantile of `(1 + level) / 2`.
    pub fn interval(&self, level: f64) -> (Array1<f64>, Array1<f64>) {
        let z = normal_quantile(0.5 + 0.5 * level.clamp(0.0, 1.0 - 1e-12));
        let sd = self.sd();
        (&self.mean - &(&sd * z), &self.mean + &(&sd * z))
    }

    /// The log density at `beta`.
    pub fn log_density(&self, beta: &Array1<f64>) -> Result<f64> {
        let l = cholesky(&self.cov)
            .ok_or_else(|| Error::config("covariance is not positive definite"))?;
        let d = beta - &self.mean;
        let q = d.dot(&chol_solve(&l, &d));
        let p = self.dim() as f64;
        Ok(-0.5 * (p * (2.0 * std::f64::consts::PI).ln() + chol_logdet(&l) + q))
    }
}

/// The standard normal quantile (Acklam's rational approximation, relative error below
/// 1.2e-9), enough for interval bounds.
pub(crate) fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        let q = (-2.0 * q.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail(p)
    } else if p > 1.0 - 0.02425 {
        -tail(1.0 - p)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_of_the_usual_levels() {
        assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-8);
        assert!((normal_quantile(0.5)).abs() < 1e-12);
        assert!((normal_quantile(0.005) + 2.5758293035489).abs() < 1e-8);
    }
}
