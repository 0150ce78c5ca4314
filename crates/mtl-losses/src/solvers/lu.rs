//! Dense linear solves A x = b for a general square matrix, by LU factorisation with
//! partial pivoting, refusing numerically singular systems.

use mtl_core::{Error, Result};

/// Solves A x = b for an n×n row-major `a`. Errors when A is singular to working
/// precision (a pivot below 1e-13 times the largest entry) or the sizes disagree.
pub fn solve_lu(a: &[f64], b: &[f64]) -> Result<Vec<f64>> {
    let n = b.len();
    if a.len() != n * n {
        return Err(Error::shape(
            "solve_lu",
            format!("{n}x{n} matrix"),
            format!("{} values", a.len()),
        ));
    }
    let mut m = a.to_vec();
    let mut x = b.to_vec();
    let scale = m.iter().fold(0.0f64, |s, v| s.max(v.abs()));
    for col in 0..n {
        let piv = (col..n)
            .max_by(|&i, &j| m[i * n + col].abs().total_cmp(&m[j * n + col].abs()))
            .unwrap_or(col);
        let p = m[piv * n + col];
        if p.is_nan() || p.abs() <= 1e-13 * scale {
            return Err(Error::config(format!(
                "singular {n}x{n} linear system (pivot {p:e}, largest entry {scale:e})"
            )));
        }
        if piv != col {
            for k in 0..n {
                m.swap(piv * n + k, col * n + k);
            }
            x.swap(piv, col);
        }
        for r in col + 1..n {
            let f = m[r * n + col] / p;
            if f != 0.0 {
                for k in col..n {
                    m[r * n + k] -= f * m[col * n + k];
                }
                x[r] -= f * x[col];
            }
        }
    }
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|k| m[r * n + k] * x[k]).sum();
        x[r] = (x[r] - s) / m[r * n + r];
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_with_pivoting() {
        // [[0, 1], [2, 3]] x = [1, 8] → x = [2.5, 1].
        let x = solve_lu(&[0.0, 1.0, 2.0, 3.0], &[1.0, 8.0]).unwrap();
        assert!((x[0] - 2.5).abs() < 1e-15 && (x[1] - 1.0).abs() < 1e-15);
    }

    #[test]
    fn singular_is_an_error() {
        assert!(solve_lu(&[1.0, 2.0, 2.0, 4.0], &[1.0, 2.0]).is_err());
        assert!(solve_lu(&[1.0], &[1.0, 2.0]).is_err());
    }
}
