//! Accelerated proximal gradient (FISTA, Beck & Teboulle, SIAM J. Imaging Sciences
//! 2009) for the non-smooth models: `min_{W, b} f(W, b) + λ P(W)`, with `f` the data
//! term and `P` a norm whose proximal map is cheap (singular-value or row shrinkage).
//!
//! Each iteration takes a proximal gradient step from the extrapolated point `Y`,
//! `Z = prox_{λP/L}(Y − ∇f(Y)/L)` (the intercepts take a plain gradient step), with
//! `L` doubled until the quadratic upper bound holds at `Z` (backtracking). The
//! momentum restarts whenever the objective goes up (O'Donoghue & Candès 2015), which
//! keeps the method monotone and gives linear convergence on the strongly convex
//! problems the data usually make. It stops when the proximal-gradient residual
//! `‖Z − Y‖` — zero exactly at a minimiser — falls below `tol · max(1, ‖Z‖)`.

use crate::coupled::Solution;
use crate::problem::Problem;
use mtl_core::{Error, Result};
use nalgebra::{DMatrix, DVector};

/// A penalty `P(W)` with its proximal map.
pub(crate) trait Penalty {
    /// `P(W)`.
    fn value(&self, w: &DMatrix<f64>) -> f64;
    /// `argmin_Z ½‖Z − V‖² + τ P(Z)`.
    fn prox(&self, v: &DMatrix<f64>, tau: f64) -> DMatrix<f64>;
}

/// Stopping settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub tol: f64,
    pub max_iter: usize,
}

/// `f + λP` at `(W, b)`.
pub(crate) fn objective(
    p: &Problem,
    pen: &dyn Penalty,
    lambda: f64,
    w: &DMatrix<f64>,
    b: &DVector<f64>,
) -> f64 {
    p.value(w, b) + lambda * pen.value(w)
}

/// A model `loss + λ P(W)` fitted by [`solve`]: the shared body of every
/// proximal-gradient model (`ctx` names it in errors and in the result).
pub(crate) fn fit(
    data: &mtl_data::GroupedData,
    loss: crate::Loss,
    pen: &dyn Penalty,
    lambda: f64,
    settings: Settings,
    ctx: String,
) -> Result<crate::fitted::FittedLinear> {
    crate::problem::check_penalty(&ctx, "λ", lambda)?;
    let p = Problem::new(data, loss, None, &ctx)?;
    let sol = solve(&p, pen, lambda, settings, &ctx)?;
    let obj = objective(&p, pen, lambda, &sol.w, &sol.b);
    Ok(crate::model::fitted(
        &p,
        ctx,
        (&sol.w, &sol.b),
        obj,
        sol.iterations,
        None,
    ))
}

pub(crate) fn solve(
    p: &Problem,
    pen: &dyn Penalty,
    lambda: f64,
    settings: Settings,
    context: &str,
) -> Result<Solution> {
    let (d, t_n) = (p.d, p.n_tasks());
    let mut x_w = DMatrix::zeros(d, t_n);
    let mut x_b = DVector::zeros(t_n);
    let mut f_x = objective(p, pen, lambda, &x_w, &x_b);
    let (mut y_w, mut y_b) = (x_w.clone(), x_b.clone());
    let mut momentum = 1.0_f64;
    let mut lip = 1.0_f64;
    for it in 1..=settings.max_iter {
        let (f_y, g_w, g_b) = p.value_grad(&y_w, &y_b);
        let (z_w, z_b, f_z) = loop {
            let z_w = pen.prox(&(&y_w - &g_w / lip), lambda / lip);
            let z_b = &y_b - &g_b / lip;
            let (dw, db) = (&z_w - &y_w, &z_b - &y_b);
            let f_z = p.value(&z_w, &z_b);
            let bound = f_y
                + g_w.dot(&dw)
                + g_b.dot(&db)
                + lip / 2.0 * (dw.norm_squared() + db.norm_squared());
            // A relative slack absorbs rounding once the steps are tiny.
            if f_z <= bound + 1e-12 * f_y.abs().max(1.0) {
                break (z_w, z_b, f_z);
            }
            lip *= 2.0;
            if !lip.is_finite() {
                return Err(Error::NonFinite {
                    what: format!("{context}: the step size's Lipschitz estimate"),
                    task: None,
                    step: Some(it as u64),
                    value: lip.to_string(),
                });
            }
        };
        let residual = ((&z_w - &y_w).norm_squared() + (&z_b - &y_b).norm_squared()).sqrt();
        let size = (z_w.norm_squared() + z_b.norm_squared()).sqrt();
        let obj_z = f_z + lambda * pen.value(&z_w);
        if !obj_z.is_finite() {
            return Err(Error::NonFinite {
                what: format!("{context}: objective"),
                task: None,
                step: Some(it as u64),
                value: obj_z.to_string(),
            });
        }
        if obj_z > f_x && momentum > 1.0 {
            // Restart: drop the momentum and step from the last iterate instead. (A
            // plain step from the iterate itself, momentum 1, is always accepted: it
            // cannot go up but by rounding.)
            momentum = 1.0;
            y_w = x_w.clone();
            y_b = x_b.clone();
            continue;
        }
        if residual <= settings.tol * size.max(1.0) {
            return Ok(Solution {
                w: z_w,
                b: z_b,
                iterations: it,
            });
        }
        let next = (1.0 + (1.0 + 4.0 * momentum * momentum).sqrt()) / 2.0;
        let beta = (momentum - 1.0) / next;
        y_w = &z_w + (&z_w - &x_w) * beta;
        y_b = &z_b + (&z_b - &x_b) * beta;
        x_w = z_w;
        x_b = z_b;
        f_x = obj_z;
        momentum = next;
    }
    Err(Error::config(format!(
        "{context}: the proximal gradient method did not reach tolerance {} in {} iterations; \
         raise the penalty or the iteration limit",
        settings.tol, settings.max_iter
    )))
}
