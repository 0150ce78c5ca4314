//! Newton's method for one weight vector shared by every task, with per-task
//! intercepts: `min_{w, b} Σₜ cₜ Σᵢ ℓ(yₜᵢ, xₜᵢᵀw + bₜ) + γ‖w‖²`. The variables are
//! `(w, b₁ … b_T)`, `d + T` of them.

use crate::coupled::Solution;
use crate::problem::{cholesky, Problem};
use crate::Loss;
use mtl_core::{Error, Result};
use nalgebra::{DMatrix, DVector};

fn spread(w: &DVector<f64>, t_n: usize) -> DMatrix<f64> {
    DMatrix::from_fn(w.len(), t_n, |j, _| w[j])
}

pub(crate) fn objective(p: &Problem, gamma: f64, w: &DVector<f64>, b: &DVector<f64>) -> f64 {
    p.value(&spread(w, p.n_tasks()), b) + gamma * w.norm_squared()
}

pub(crate) fn solve(p: &Problem, gamma: f64, context: &str) -> Result<Solution> {
    let (t_n, d) = (p.n_tasks(), p.d);
    let n = d + t_n;
    let mut w = DVector::zeros(d);
    let mut b = DVector::zeros(t_n);
    let mut f = objective(p, gamma, &w, &b);
    for it in 1..=200 {
        let wm = spread(&w, t_n);
        let (_, gw, gb) = p.value_grad(&wm, &b);
        let mut g = DVector::zeros(n);
        let mut h = DMatrix::zeros(n, n);
        for j in 0..d {
            g[j] = gw.row(j).sum() + 2.0 * gamma * w[j];
            h[(j, j)] += 2.0 * gamma;
        }
        for t in 0..t_n {
            g[d + t] = gb[t];
            let block = p.hessian_block(t, &wm, &b);
            let mut hw = h.view_mut((0, 0), (d, d));
            hw += block.view((0, 0), (d, d));
            for j in 0..d {
                h[(j, d + t)] = block[(j, d)];
                h[(d + t, j)] = block[(d, j)];
            }
            h[(d + t, d + t)] = block[(d, d)];
        }
        let Some(chol) = cholesky(h) else {
            return Err(Error::config(format!(
                "{context}: the shared-weight system is singular: the tasks' stacked designs \
                 with one intercept per task are rank-deficient; raise γ"
            )));
        };
        let step = chol.solve(&g);
        let decrement = g.dot(&step);
        let mut s = 1.0;
        loop {
            let w_new = &w - s * step.rows(0, d);
            let b_new = &b - s * step.rows(d, t_n);
            let f_new = objective(p, gamma, &w_new, &b_new);
            let exact = p.loss == Loss::Squared
                || decrement / 2.0 <= crate::coupled::NEWTON_TOL * f.abs().max(1.0);
            if exact {
                return Ok(Solution {
                    w: spread(&w_new, t_n),
                    b: b_new,
                    iterations: it,
                });
            }
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
        "{context}: Newton's method did not converge in 200 steps"
    )))
}
