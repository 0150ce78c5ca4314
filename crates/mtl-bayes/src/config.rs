//! Settings of the empirical-Bayes fits.

use mtl_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// The shape of the shared prior covariance Σ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Covariance {
    /// Every coefficient's variance and every covariance between them.
    Full,
    /// Variances only: coefficients vary across tasks independently.
    Diagonal,
}

/// How the empirical-Bayes EM runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmConfig {
    /// Full or diagonal Σ.
    pub covariance: Covariance,
    /// Added to Σ's diagonal after every M-step (in the coefficients' squared units):
    /// the ML estimate of a variance can reach zero (the tasks agree on a coefficient),
    /// where Σ would be singular and EM would stop moving; the floor keeps Σ positive
    /// definite and changes the fit by about its own size. Must be ≥ 0; with 0 a
    /// singular Σ is an error.
    pub cov_floor: f64,
    /// The most EM iterations.
    pub max_iter: usize,
    /// Stop when the objective (log marginal likelihood or its bound) rises by less than
    /// `tol · (1 + |objective|)` in one iteration.
    pub tol: f64,
    /// Accelerate EM by SQUAREM (Varadhan & Roland 2008): same fixed point, the
    /// objective still never falls, often ten times fewer iterations.
    pub accelerate: bool,
}

impl Default for EmConfig {
    fn default() -> Self {
        EmConfig {
            covariance: Covariance::Full,
            cov_floor: 1e-8,
            max_iter: 5_000,
            tol: 1e-10,
            accelerate: true,
        }
    }
}

impl EmConfig {
    pub(crate) fn check(&self) -> Result<()> {
        if !(self.cov_floor >= 0.0 && self.cov_floor.is_finite()) {
            return Err(Error::config(format!(
                "cov_floor must be finite and >= 0, got {}",
                self.cov_floor
            )));
        }
        if self.max_iter == 0 {
            return Err(Error::config("max_iter must be at least 1"));
        }
        if !(self.tol > 0.0 && self.tol.is_finite()) {
            return Err(Error::config(format!(
                "tol must be positive and finite, got {}",
                self.tol
            )));
        }
        Ok(())
    }
}
