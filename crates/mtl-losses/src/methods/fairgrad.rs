//! FairGrad: the update as an α-fair allocation of progress among the tasks.
//!
//! Reference: Hao Ban and Kaiyi Ji, "Fair Resource Allocation in Multi-Task Learning",
//! ICML 2024 (arXiv:2402.15638), and LibMTL's `FairGrad`.
//!
//! Update rule: with G = JJᵀ and fairness α > 0, the update Δ = Σₖ wₖ gₖ has weights
//! w > 0 solving
//!
//! ```text
//! (G w)ₖ = wₖ^(−1/α)        for every task k
//! ```
//!
//! so each task's rate of improvement ⟨gₖ, Δ⟩ = (Gw)ₖ is the α-fair share of the
//! "resource" Δ. α = 1 is proportional fairness (the Nash bargaining point, Gw = 1/w, as
//! in Nash-MTL); α → ∞ approaches max-min fairness; small α favours the total.
//!
//! LibMTL solves the equations by nonlinear least squares (scipy `least_squares`) from
//! w = 1/K. They are exactly the stationarity condition of the strictly convex
//!
//! ```text
//! F(w) = ½ wᵀGw − Σₖ H(wₖ),   H(w) = log w (α = 1),  w^(1−1/α)/(1−1/α) (α ≠ 1)
//! ```
//!
//! on w > 0 (H' = w^(−1/α), H concave), so here they are solved by damped Newton on F
//! in f64, to a relative residual of 1e-10 (or until F no longer decreases at f64
//! precision), after scaling G by its largest diagonal
//! (the solution scales as w ∝ s^(−α/(α+1)) when G ∝ s). F has a minimiser iff no
//! non-negative combination of the rows vanishes, i.e. the rows are not
//! Pareto-stationary. So: a zero row (below the dtype's rounding of the largest) gets
//! weight 0 and the rest are solved without it; when the remaining rows are
//! Pareto-stationary (their min-norm combination is at rounding level), no direction
//! improves every task and the update is zero.
//!
//! Defaults: α = 1 (LibMTL's `FairGrad_alpha`).
//!
//! # Example
//!
//! ```
//! use mtl_losses::methods::FairGrad;
//! use mtl_losses::{Aggregator, StepContext};
//! use tch::Tensor;
//!
//! // Orthogonal gradients of norms 1 and 2: nₖ² wₖ = 1/wₖ gives w = (1, 1/2).
//! let j = Tensor::from_slice(&[1.0f64, 0.0, 0.0, 2.0]).view([2, 2]);
//! let out = FairGrad::new(2).aggregate(&j, &StepContext::default()).unwrap();
//! let w = out.weights.unwrap();
//! assert!((w[0] - 1.0).abs() < 1e-9 && (w[1] - 0.5).abs() < 1e-9);
//! ```

use crate::gram::Gram;
use crate::solvers::{checked_gram, kind_eps, min_norm_simplex, solve_spd, weighted};
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{Error, Result};
use tch::Tensor;

/// FairGrad (Ban & Ji, ICML 2024).
#[derive(Debug, Clone)]
pub struct FairGrad {
    num_tasks: usize,
    alpha: f64,
}

impl FairGrad {
    /// For `num_tasks` tasks with α = 1.
    pub fn new(num_tasks: usize) -> Self {
        FairGrad {
            num_tasks,
            alpha: 1.0,
        }
    }

    /// The same with fairness α (finite, > 0).
    pub fn with_alpha(mut self, alpha: f64) -> Result<Self> {
        if !alpha.is_finite() || alpha <= 0.0 {
            return Err(Error::config(format!(
                "fairgrad: alpha must be finite and > 0, got {alpha}"
            )));
        }
        self.alpha = alpha;
        Ok(self)
    }

    /// α.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// The weights w with (Gw)ₖ = wₖ^(−1/α) for the Gram matrix `gram`, whose entries
    /// carry relative rounding `eps` (the dtype's machine epsilon); see the module docs
    /// for zero rows and Pareto-stationary rows.
    pub fn weights(gram: &Gram, alpha: f64, eps: f64) -> Result<Vec<f64>> {
        let k = gram.k();
        if !alpha.is_finite() || alpha <= 0.0 {
            return Err(Error::config(format!(
                "fairgrad: alpha must be finite and > 0, got {alpha}"
            )));
        }
        let scale = (0..k).fold(0.0f64, |m, i| m.max(gram.get(i, i)));
        let mut w = vec![0.0; k];
        if scale <= 0.0 {
            return Ok(w);
        }
        let live: Vec<usize> = (0..k)
            .filter(|&i| gram.get(i, i) > eps * eps * scale)
            .collect();
        let m = live.len();
        let g: Vec<f64> = live
            .iter()
            .flat_map(|&i| live.iter().map(move |&j| gram.get(i, j) / scale))
            .collect();
        let v = min_norm_simplex(&g, m)?;
        let q: f64 = (0..m)
            .map(|i| v[i] * (0..m).map(|j| g[i * m + j] * v[j]).sum::<f64>())
            .sum();
        if q <= 8.0 * m as f64 * eps {
            return Ok(w);
        }
        let solved = solve(&g, m, alpha)?;
        let unscale = scale.powf(-alpha / (alpha + 1.0));
        for (&i, x) in live.iter().zip(&solved) {
            w[i] = x * unscale;
        }
        Ok(w)
    }
}

/// −H(w): the concave part of F, negated.
fn minus_h(w: f64, alpha: f64) -> f64 {
    if alpha == 1.0 {
        -w.ln()
    } else {
        let p = 1.0 - 1.0 / alpha;
        -w.powf(p) / p
    }
}

/// F(w) = ½wᵀGw − Σ H(wₖ), or `None` outside w > 0.
fn objective(g: &[f64], w: &[f64], alpha: f64) -> Option<f64> {
    let m = w.len();
    if w.iter().any(|&x| x <= 0.0) {
        return None;
    }
    let quad: f64 = (0..m)
        .map(|i| w[i] * (0..m).map(|j| g[i * m + j] * w[j]).sum::<f64>())
        .sum();
    Some(0.5 * quad + w.iter().map(|&x| minus_h(x, alpha)).sum::<f64>())
}

/// Damped Newton on F from w = 1 for a Gram matrix scaled to unit largest diagonal.
fn solve(g: &[f64], m: usize, alpha: f64) -> Result<Vec<f64>> {
    let mut w = vec![1.0; m];
    let mut residual = relative_residual(g, &w, alpha);
    for _ in 0..500 {
        if residual <= 1e-10 {
            return Ok(w);
        }
        let gw: Vec<f64> = (0..m)
            .map(|i| (0..m).map(|j| g[i * m + j] * w[j]).sum())
            .collect();
        let target: Vec<f64> = w.iter().map(|x| x.powf(-1.0 / alpha)).collect();
        let grad: Vec<f64> = gw.iter().zip(&target).map(|(a, b)| a - b).collect();
        let mut hess = g.to_vec();
        for i in 0..m {
            hess[i * m + i] += target[i] / (alpha * w[i]);
        }
        let neg: Vec<f64> = grad.iter().map(|v| -v).collect();
        let step = solve_spd(&hess, &neg)
            .ok_or_else(|| Error::config("fairgrad: the Newton system is numerically singular"))?;
        let slope: f64 = grad.iter().zip(&step).map(|(g, d)| g * d).sum();
        // Stay inside w > 0: at most 99% of the way to the boundary.
        let mut h = (0..m)
            .filter(|&i| step[i] < 0.0)
            .map(|i| -0.99 * w[i] / step[i])
            .fold(1.0f64, f64::min);
        let f0 = objective(g, &w, alpha).unwrap_or(f64::INFINITY);
        let mut moved = false;
        for attempt in 0..60 {
            let trial: Vec<f64> = (0..m).map(|i| w[i] + h * step[i]).collect();
            if let Some(f1) = objective(g, &trial, alpha) {
                let r1 = relative_residual(g, &trial, alpha);
                // Armijo with a strict decrease; near the solution F stops resolving
                // the progress (its terms can be far larger than the decrease), so a
                // full step that halves the residual is taken too: Newton's quadratic
                // endgame.
                let armijo = f1 < f0 && f1 <= f0 + 1e-4 * h * slope;
                if armijo || (attempt == 0 && r1 <= 0.5 * residual) {
                    w = trial;
                    residual = r1;
                    moved = true;
                    break;
                }
            }
            h *= 0.5;
        }
        if !moved {
            // No progress left at f64 precision. The residual left is then the
            // cancellation in Gw (rows that nearly oppose each other), not a distance
            // to the solution, unless it is large.
            return if residual <= 1e-6 {
                Ok(w)
            } else {
                Err(Error::config(format!(
                    "fairgrad: Newton stalled at relative residual {residual:e}"
                )))
            };
        }
    }
    Err(Error::config(
        "fairgrad: Newton did not converge in 500 iterations",
    ))
}

/// maxₖ |(Gw)ₖ − wₖ^(−1/α)| / wₖ^(−1/α).
fn relative_residual(g: &[f64], w: &[f64], alpha: f64) -> f64 {
    let m = w.len();
    (0..m)
        .map(|i| {
            let gw: f64 = (0..m).map(|j| g[i * m + j] * w[j]).sum();
            let t = w[i].powf(-1.0 / alpha);
            ((gw - t) / t).abs()
        })
        .fold(0.0f64, f64::max)
}

impl Aggregator for FairGrad {
    fn name(&self) -> &'static str {
        "fairgrad"
    }
    fn num_tasks(&self) -> Option<usize> {
        Some(self.num_tasks)
    }

    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        let gram = checked_gram("fairgrad", jacobian, ctx, Some(self.num_tasks))?;
        let w = Self::weights(&gram, self.alpha, kind_eps(jacobian.kind()))?;
        weighted(w, jacobian)
    }
}
