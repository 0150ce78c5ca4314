//! Newton's method for the smooth models, whose penalty couples tasks through a
//! positive semi-definite `T × T` matrix `A`:
//!
//! `min_{W, b} Σₜ cₜ Σᵢ ℓ(yₜᵢ, xₜᵢᵀwₜ + bₜ) + tr(W A Wᵀ)`,  `W = [w₁ … w_T]`.
//!
//! The mean-regularized, single-task ridge, graph-Laplacian models and the `W` steps
//! of MTRL and clustered MTL are all of this form. The Hessian is
//! `blockdiag(cₜ[Xₜ 1]ᵀDₜ[Xₜ 1]) + 2 A ⊗ I_d` (intercepts unpenalised), of size
//! `T(d+1)`: dense, and small for the data this crate is for. For the squared loss one
//! Newton step from anywhere is the exact minimiser (the joint normal equations).

use crate::problem::{cholesky, Problem};
use mtl_core::{Error, Result};
use nalgebra::{DMatrix, DVector};

const MAX_NEWTON: usize = 200;

/// Newton's method stops once half the Newton decrement, which estimates the distance
/// to the minimum in objective, is below this fraction of the objective, after one more
/// full step: convergence is quadratic there, so that step lands at rounding level.
pub(crate) const NEWTON_TOL: f64 = 1e-14;

/// The minimiser and the Newton steps taken.
pub(crate) struct Solution {
    pub w: DMatrix<f64>,
    pub b: DVector<f64>,
    pub iterations: usize,
}

/// `tr(W A Wᵀ)`.
pub(crate) fn coupling(w: &DMatrix<f64>, a: &DMatrix<f64>) -> f64 {
    (w * a).component_mul(w).sum()
}

/// The objective `data + tr(W A Wᵀ)`.
pub(crate) fn objective(p: &Problem, a: &DMatrix<f64>, w: &DMatrix<f64>, b: &DVector<f64>) -> f64 {
    p.value(w, b) + coupling(w, a)
}

/// Minimises `data + tr(W A Wᵀ)` from `start` (zeros when `None`), to a Newton
/// decrement below `tol` (relative to the objective).
pub(crate) fn solve(
    p: &Problem,
    a: &DMatrix<f64>,
    start: Option<(&DMatrix<f64>, &DVector<f64>)>,
    tol: f64,
    context: &str,
) -> Result<Solution> {
    let (t_n, d) = (p.n_tasks(), p.d);
    let (mut w, mut b) = match start {
        Some((w, b)) => (w.clone(), b.clone()),
        None => (DMatrix::zeros(d, t_n), DVector::zeros(t_n)),
    };
    let at = |t: usize, j: usize| t * (d + 1) + j;
    let n = t_n * (d + 1);
    let mut f = objective(p, a, &w, &b);
    for it in 1..=MAX_NEWTON {
        let (_, gw, gb) = p.value_grad(&w, &b);
        let gw = gw + 2.0 * &w * a;
        let mut g = DVector::zeros(n);
        let mut h = DMatrix::zeros(n, n);
        for t in 0..t_n {
            for j in 0..d {
                g[at(t, j)] = gw[(j, t)];
            }
            g[at(t, d)] = gb[t];
            let block = p.hessian_block(t, &w, &b);
            h.view_mut((at(t, 0), at(t, 0)), (d + 1, d + 1))
                .copy_from(&block);
            for s in 0..t_n {
                let c = 2.0 * a[(t, s)];
                if c != 0.0 {
                    for j in 0..d {
                        h[(at(t, j), at(s, j))] += c;
                    }
                }
            }
        }
        let Some(chol) = cholesky(h.clone()) else {
            return Err(p.singular_error(context, &h));
        };
        let step = chol.solve(&g);
        let decrement = g.dot(&step);
        if !decrement.is_finite() {
            return Err(Error::NonFinite {
                what: format!("{context}: Newton step"),
                task: None,
                step: Some(it as u64),
                value: decrement.to_string(),
            });
        }
        // The squared loss is quadratic: the full step lands on the minimiser. So
        // does a step whose decrement is already at rounding level.
        if p.loss == crate::Loss::Squared || decrement / 2.0 <= tol * f.abs().max(1.0) {
            let (w_new, b_new) = take(&w, &b, &step, 1.0);
            return Ok(Solution {
                w: w_new,
                b: b_new,
                iterations: it,
            });
        }
        // Backtracking (Armijo) on the objective: far from the minimum the logistic
        // loss may need a shorter step.
        let mut s = 1.0;
        loop {
            let (w_new, b_new) = take(&w, &b, &step, s);
            let f_new = objective(p, a, &w_new, &b_new);
            if f_new <= f - 0.25 * s * decrement || s < 1e-12 {
                w = w_new;
                b = b_new;
                f = f_new;
                break;
            }
            s *= 0.5;
        }
    }
    Err(Error::config(format!(
        "{context}: Newton's method did not converge in {MAX_NEWTON} steps"
    )))
}

/// `(W, b) − s·step`, the step laid out task by task as `(wₜ, bₜ)`.
fn take(
    w: &DMatrix<f64>,
    b: &DVector<f64>,
    step: &DVector<f64>,
    s: f64,
) -> (DMatrix<f64>, DVector<f64>) {
    let (d, t_n) = w.shape();
    let mut w_new = w.clone();
    let mut b_new = b.clone();
    for t in 0..t_n {
        for j in 0..d {
            w_new[(j, t)] -= s * step[t * (d + 1) + j];
        }
        b_new[t] -= s * step[t * (d + 1) + d];
    }
    (w_new, b_new)
}
