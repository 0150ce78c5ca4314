//! The EM driver, optionally accelerated by SQUAREM (Varadhan & Roland 2008, "Simple and
//! globally convergent methods for accelerating the convergence of any EM algorithm",
//! scheme S3).
//!
//! EM creeps when a variance heads toward zero or several coefficients' variances trade
//! off (hundreds to thousands of iterations on the London schools' 7 × 7 Σ). SQUAREM takes
//! two EM steps `θ₁ = M(θ₀)`, `θ₂ = M(θ₁)`, forms `r = θ₁ − θ₀`, `v = θ₂ − θ₁ − r`,
//! `α = −‖r‖/‖v‖` (at most −1) and jumps to `θ' = θ₀ − 2αr + α²v`, then one EM step from
//! there. The jump is kept only when the objective at `θ'` is at least that at `θ₁` (so the
//! recorded objective never falls); otherwise the run continues from `θ₂` as plain EM.

use mtl_core::{Error, Result};

/// The outcome of [`run_em`].
pub(crate) struct EmRun<S> {
    /// The last M-step's parameters (not yet evaluated by an E-step).
    pub theta: Vec<f64>,
    /// The carried E-step state (the logistic model's ξ).
    pub state: S,
    /// The objective at every accepted E-step, non-decreasing.
    pub trace: Vec<f64>,
    /// Whether the tolerance was met.
    pub converged: bool,
}

/// Runs EM from `theta`. `map(θ, state)` runs one E-step at θ and returns the objective
/// there and the M-step's new parameters, or `None` when θ is not a valid parameter
/// (a covariance that is not positive definite, a noise variance ≤ 0), which only an
/// extrapolated θ may be.
pub(crate) fn run_em<S: Clone>(
    mut theta: Vec<f64>,
    mut state: S,
    max_iter: usize,
    tol: f64,
    accelerate: bool,
    mut map: impl FnMut(&[f64], &mut S) -> Result<Option<(f64, Vec<f64>)>>,
) -> Result<EmRun<S>> {
    let singular = || {
        Error::config(
            "the prior covariance became singular (a variance reached zero); set cov_floor > 0",
        )
    };
    let mut trace: Vec<f64> = Vec::new();
    let mut calls = 0usize;
    let mut last_outer: Option<f64> = None;
    while calls < max_iter {
        let (l0, t1) = map(&theta, &mut state)?.ok_or_else(singular)?;
        calls += 1;
        trace.push(l0);
        if let Some(prev) = last_outer {
            if l0 - prev < tol * (1.0 + l0.abs()) {
                return Ok(EmRun {
                    theta,
                    state,
                    trace,
                    converged: true,
                });
            }
        }
        last_outer = Some(l0);
        if !accelerate || calls >= max_iter {
            theta = t1;
            continue;
        }
        let (l1, t2) = map(&t1, &mut state)?.ok_or_else(singular)?;
        calls += 1;
        trace.push(l1);
        let r: Vec<f64> = t1.iter().zip(&theta).map(|(a, b)| a - b).collect();
        let v: Vec<f64> = t2
            .iter()
            .zip(&t1)
            .zip(&r)
            .map(|((c, b), r)| c - b - r)
            .collect();
        let (nr, nv) = (norm(&r), norm(&v));
        if nv == 0.0 || !nv.is_finite() || calls >= max_iter {
            theta = t2;
            continue;
        }
        let alpha = (-nr / nv).min(-1.0);
        let jump: Vec<f64> = theta
            .iter()
            .zip(&r)
            .zip(&v)
            .map(|((t, r), v)| t - 2.0 * alpha * r + alpha * alpha * v)
            .collect();
        let saved = state.clone();
        match map(&jump, &mut state)? {
            Some((lj, tj)) if lj.is_finite() && lj >= l1 => {
                calls += 1;
                trace.push(lj);
                theta = tj;
            }
            _ => {
                calls += 1;
                state = saved;
                theta = t2;
            }
        }
    }
    Ok(EmRun {
        theta,
        state,
        trace,
        converged: false,
    })
}

fn norm(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>().sqrt()
}
