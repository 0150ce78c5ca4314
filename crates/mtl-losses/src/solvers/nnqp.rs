//! Non-negative quadratic programs: min ½ xᵀQx + cᵀx subject to x ≥ 0, with Q
//! symmetric positive semi-definite.
//!
//! A primal active-set method in the style of Lawson & Hanson's NNLS (Solving Least
//! Squares Problems, 1974, ch. 23), generalised from ‖Ax − b‖² to a quadratic form: the
//! free set grows one variable at a time (the one with the most negative gradient), each
//! subproblem is solved exactly on the free set by Cholesky, and an infeasible
//! subproblem solution is cut back along the segment to the current point. When Q = AᵀA
//! and c = −Aᵀb (every problem of this crate has that form), the free columns stay
//! linearly independent in exact arithmetic, so the Cholesky solves are well defined
//! even when Q itself is singular; a numerically singular candidate is rejected rather
//! than solved. Termination is finite; the result satisfies the KKT conditions to
//! rounding.

use super::cholesky::cholesky_solve;
use mtl_core::{Error, Result};

/// Solves min ½ xᵀQx + cᵀx s.t. x ≥ 0 for a symmetric PSD `q` (n×n, row-major) and
/// `c` (n). Returns x.
///
/// Errors on mismatched sizes or non-finite input. When Q is not PSD the result is a
/// feasible point at which no single variable can enter, which is not a minimum.
pub fn nnqp(q: &[f64], c: &[f64]) -> Result<Vec<f64>> {
    let n = c.len();
    if q.len() != n * n {
        return Err(Error::shape(
            "nnqp",
            format!("{n}x{n} matrix"),
            format!("{} values", q.len()),
        ));
    }
    if q.iter().chain(c).any(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: "QP data".into(),
            task: None,
            step: None,
            value: "NaN or Inf".into(),
        });
    }
    let q_max = q.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let c_max = c.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut x = vec![0.0; n];
    if n == 0 || c_max == 0.0 {
        // x = 0 is optimal: the objective is a PSD form plus nothing.
        return Ok(x);
    }

    let mut free = vec![false; n];
    // Candidates whose subproblem was numerically singular or gave them a non-positive
    // value; they are retried once the point moves.
    let mut blocked = vec![false; n];
    // Each productive outer step strictly decreases the objective over a distinct free
    // set; the cap only guards against cycling caused by rounding.
    let max_outer = 20 * n + 50;
    for _ in 0..max_outer {
        let grad = gradient(q, c, &x);
        let x_max = x.iter().fold(0.0f64, |m, v| m.max(*v));
        let tol = 64.0 * f64::EPSILON * (n as f64) * (q_max * x_max + c_max);
        let entering = (0..n)
            .filter(|&i| !free[i] && !blocked[i] && grad[i] < -tol)
            .min_by(|&a, &b| grad[a].total_cmp(&grad[b]));
        let Some(j) = entering else { break };
        free[j] = true;

        let mut first = true;
        loop {
            let z = match solve_free(q, c, &free) {
                Some(z) => z,
                None => {
                    // A singular free set: only the entering variable can have made it so.
                    free[j] = false;
                    blocked[j] = true;
                    break;
                }
            };
            if first && z[j] <= 0.0 {
                free[j] = false;
                blocked[j] = true;
                break;
            }
            first = false;
            if (0..n).all(|i| !free[i] || z[i] > 0.0) {
                x = z;
                blocked.iter_mut().for_each(|b| *b = false);
                break;
            }
            // Step from x towards z until the first free variable reaches zero.
            let mut alpha = f64::INFINITY;
            let mut hit = None;
            for i in (0..n).filter(|&i| free[i] && z[i] <= 0.0) {
                let gap = x[i] - z[i];
                let a = if gap > 0.0 { x[i] / gap } else { 0.0 };
                if a < alpha {
                    alpha = a;
                    hit = Some(i);
                }
            }
            let alpha = alpha.min(1.0);
            for i in 0..n {
                if free[i] {
                    x[i] += alpha * (z[i] - x[i]);
                }
            }
            for i in 0..n {
                if free[i] && (Some(i) == hit || x[i] <= 0.0) {
                    x[i] = 0.0;
                    free[i] = false;
                }
            }
            blocked.iter_mut().for_each(|b| *b = false);
            if !free.iter().any(|&f| f) {
                break;
            }
        }
    }
    Ok(x)
}

/// Qx + c.
fn gradient(q: &[f64], c: &[f64], x: &[f64]) -> Vec<f64> {
    let n = c.len();
    (0..n)
        .map(|i| c[i] + (0..n).map(|k| q[i * n + k] * x[k]).sum::<f64>())
        .collect()
}

/// The unconstrained minimiser on the free set, Q_FF z_F = −c_F (zero elsewhere), or
/// `None` when Q_FF is numerically singular.
fn solve_free(q: &[f64], c: &[f64], free: &[bool]) -> Option<Vec<f64>> {
    let n = c.len();
    let idx: Vec<usize> = (0..n).filter(|&i| free[i]).collect();
    let m = idx.len();
    let mut a: Vec<f64> = idx
        .iter()
        .flat_map(|&i| idx.iter().map(move |&k| q[i * n + k]))
        .collect();
    let mut b: Vec<f64> = idx.iter().map(|&i| -c[i]).collect();
    // Relative to the largest diagonal entry: Q's scale is the caller's.
    let diag_max = (0..m).fold(0.0f64, |mx, i| mx.max(a[i * m + i].abs()));
    cholesky_solve(&mut a, &mut b, m, 1e-13 * diag_max)?;
    let mut z = vec![0.0; n];
    for (p, &i) in idx.iter().enumerate() {
        z[i] = b[p];
    }
    Some(z)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kkt_ok(q: &[f64], c: &[f64], x: &[f64], tol: f64) {
        let g = gradient(q, c, x);
        for i in 0..c.len() {
            assert!(x[i] >= 0.0);
            if x[i] > 0.0 {
                assert!(g[i].abs() <= tol, "grad {i} = {} on support", g[i]);
            } else {
                assert!(g[i] >= -tol, "grad {i} = {} at bound", g[i]);
            }
        }
    }

    #[test]
    fn unconstrained_minimum_inside_the_orthant() {
        // Q = diag(2, 4), c = (-2, -4): minimum at (1, 1).
        let q = [2.0, 0.0, 0.0, 4.0];
        let c = [-2.0, -4.0];
        let x = nnqp(&q, &c).unwrap();
        assert!((x[0] - 1.0).abs() < 1e-14 && (x[1] - 1.0).abs() < 1e-14);
    }

    #[test]
    fn bound_becomes_active() {
        // Q = [[2,1],[1,2]], c = (-1, 2): x1 wants to be negative, so x = (0.5, 0).
        let q = [2.0, 1.0, 1.0, 2.0];
        let c = [-1.0, 2.0];
        let x = nnqp(&q, &c).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-15 && x[1] == 0.0, "{x:?}");
        kkt_ok(&q, &c, &x, 1e-14);
    }

    #[test]
    fn leaving_variable_after_a_cut() {
        // A strongly coupled 3-variable problem whose path passes through an infeasible
        // subproblem solution.
        let q = [4.0, 3.0, 0.0, 3.0, 4.0, 3.0, 0.0, 3.0, 4.0];
        let c = [-5.0, -1.0, -5.0];
        let x = nnqp(&q, &c).unwrap();
        kkt_ok(&q, &c, &x, 1e-13);
    }

    #[test]
    fn singular_least_squares_form() {
        // Q = AᵀA with duplicated columns of A; c = -Aᵀb.
        let a = [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]; // 2x3
        let b = [1.0, 2.0];
        let mut q = [0.0; 9];
        let mut c = [0.0; 3];
        for i in 0..3 {
            for k in 0..3 {
                q[i * 3 + k] = (0..2).map(|r| a[r][i] * a[r][k]).sum();
            }
            c[i] = -(0..2).map(|r| a[r][i] * b[r]).sum::<f64>();
        }
        let x = nnqp(&q, &c).unwrap();
        kkt_ok(&q, &c, &x, 1e-13);
        assert!((x[0] + x[1] - 1.0).abs() < 1e-14 && (x[2] - 2.0).abs() < 1e-14);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(nnqp(&[1.0, 0.0], &[1.0, 1.0]).is_err());
        assert!(nnqp(&[f64::NAN], &[1.0]).is_err());
        assert_eq!(nnqp(&[], &[]).unwrap(), Vec::<f64>::new());
    }
}
