//! Cholesky solves of the small symmetric positive-definite systems met inside the QP
//! and in the Newton steps of Nash-MTL and FairGrad. One factor-and-substitute loop
//! serves them all; what differs is the scaling and the pivot tolerance, which the
//! callers choose.

/// Solves A y = b in place for a symmetric positive-definite m×m `a` (overwritten by
/// its Cholesky factor); `None` when a pivot is NaN or not above `pivot_tol`.
pub(crate) fn cholesky_solve(a: &mut [f64], b: &mut [f64], m: usize, pivot_tol: f64) -> Option<()> {
    for j in 0..m {
        let mut d = a[j * m + j];
        for k in 0..j {
            d -= a[j * m + k] * a[j * m + k];
        }
        if d.is_nan() || d <= pivot_tol {
            return None;
        }
        let d = d.sqrt();
        a[j * m + j] = d;
        for i in j + 1..m {
            let mut s = a[i * m + j];
            for k in 0..j {
                s -= a[i * m + k] * a[j * m + k];
            }
            a[i * m + j] = s / d;
        }
    }
    for i in 0..m {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * m + k] * b[k];
        }
        b[i] = s / a[i * m + i];
    }
    for i in (0..m).rev() {
        let mut s = b[i];
        for k in i + 1..m {
            s -= a[k * m + i] * b[k];
        }
        b[i] = s / a[i * m + i];
    }
    Some(())
}

/// Solves H x = b for a symmetric positive-definite H by Cholesky after symmetric
/// diagonal scaling (the barrier Hessian's rows differ by many orders of magnitude near
/// the boundary); `None` when a pivot is not positive.
pub(crate) fn solve_spd(h: &[f64], b: &[f64]) -> Option<Vec<f64>> {
    let k = b.len();
    let d: Vec<f64> = (0..k)
        .map(|i| {
            let v = h[i * k + i];
            (v > 0.0 && v.is_finite()).then(|| 1.0 / v.sqrt())
        })
        .collect::<Option<_>>()?;
    let mut a: Vec<f64> = (0..k * k).map(|e| h[e] * d[e / k] * d[e % k]).collect();
    let mut x: Vec<f64> = (0..k).map(|i| b[i] * d[i]).collect();
    // The scaled diagonal is 1, so an absolute tolerance is a relative one.
    cholesky_solve(&mut a, &mut x, k, 1e-14)?;
    Some(x.iter().zip(&d).map(|(x, d)| x * d).collect())
}
