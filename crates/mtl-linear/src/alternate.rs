//! Alternating minimisation for the models that learn a task matrix `S` beside `W`
//! (MTRL's covariance, clustered MTL's `M`): with `S` fixed the penalty is
//! `tr(W A(S) Wᵀ)` and the `W` step is [`coupled::solve`] (warm-started); with `W`
//! fixed `S` has a closed form. Both objectives are jointly convex in `(W, S)` and each
//! step minimises exactly over its block, so the objective never goes up.

use crate::coupled::{self, Solution};
use crate::problem::Problem;
use mtl_core::{Error, Result};
use nalgebra::DMatrix;

/// The `W`-step coupling and the task matrix for the current `W`.
pub(crate) struct Step {
    pub coupling: DMatrix<f64>,
    pub task_matrix: DMatrix<f64>,
}

/// Alternates from `first` until `W` and `b` move less than `tol · max(1, ‖(W, b)‖)`.
pub(crate) fn run(
    p: &Problem,
    first: Step,
    next: impl Fn(&DMatrix<f64>) -> Result<Step>,
    tol: f64,
    max_iter: usize,
    ctx: &str,
) -> Result<(Solution, DMatrix<f64>)> {
    let mut step = first;
    let mut sol = coupled::solve(p, &step.coupling, None, crate::coupled::NEWTON_TOL, ctx)?;
    for it in 1..=max_iter {
        step = next(&sol.w)?;
        let new = coupled::solve(
            p,
            &step.coupling,
            Some((&sol.w, &sol.b)),
            crate::coupled::NEWTON_TOL,
            ctx,
        )?;
        let change = ((&new.w - &sol.w).norm_squared() + (&new.b - &sol.b).norm_squared()).sqrt();
        let size = (new.w.norm_squared() + new.b.norm_squared()).sqrt();
        sol = Solution {
            w: new.w,
            b: new.b,
            iterations: it,
        };
        if change <= tol * size.max(1.0) {
            let last = next(&sol.w)?;
            return Ok((sol, last.task_matrix));
        }
    }
    Err(Error::config(format!(
        "{ctx}: the alternating minimisation did not reach tolerance {tol} in {max_iter} rounds; \
         raise the iteration limit or the smoothing ε"
    )))
}
