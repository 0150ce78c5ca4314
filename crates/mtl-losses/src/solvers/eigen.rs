//! Symmetric eigendecomposition by the cyclic Jacobi method, and the pseudo-inverse of
//! a symmetric matrix built on it.
//!
//! Jacobi is slow for large matrices (O(n³) per sweep, ~6–10 sweeps) but for the K×K
//! Gram matrices here it is both fast enough and the most accurate choice: every
//! eigenvalue comes out with an error of a few ulps of the largest one, and the
//! eigenvectors are orthonormal to rounding. No LAPACK dependency is needed.

use mtl_core::{Error, Result};

/// Eigenvalues (ascending) and the matching orthonormal eigenvectors.
#[derive(Debug, Clone)]
pub struct SymEigen {
    /// n.
    pub n: usize,
    /// The eigenvalues, ascending.
    pub values: Vec<f64>,
    /// The eigenvectors as columns of an n×n row-major matrix: column i pairs with
    /// `values[i]`.
    pub vectors: Vec<f64>,
}

impl SymEigen {
    /// Component `row` of eigenvector `col`.
    pub fn vector(&self, row: usize, col: usize) -> f64 {
        self.vectors[row * self.n + col]
    }
}

/// The eigendecomposition of a symmetric n×n row-major matrix (only symmetric input is
/// meaningful; the upper and lower triangles are averaged first).
pub fn sym_eigen(a: &[f64], n: usize) -> Result<SymEigen> {
    if a.len() != n * n {
        return Err(Error::shape(
            "sym_eigen",
            format!("{n}x{n} matrix"),
            format!("{} values", a.len()),
        ));
    }
    if a.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: "matrix to diagonalise".into(),
            task: None,
            step: None,
            value: "NaN or Inf".into(),
        });
    }
    let mut m = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            m[i * n + j] = 0.5 * (a[i * n + j] + a[j * n + i]);
        }
    }
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let frob2: f64 = m.iter().map(|x| x * x).sum();
    for _sweep in 0..100 {
        let off2: f64 = (0..n)
            .flat_map(|p| (p + 1..n).map(move |q| (p, q)))
            .map(|(p, q)| m[p * n + q] * m[p * n + q])
            .sum();
        // Converged once the off-diagonal mass is far below the rounding of the diagonal.
        if off2 <= 1e-34 * frob2 || off2 == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let app = m[p * n + p];
                let aqq = m[q * n + q];
                if apq.abs() <= 0.5 * f64::EPSILON * (app * aqq).abs().sqrt() {
                    // Below rounding relative to its diagonal (the Demmel–Veselić test):
                    // dropping it changes no eigenvalue beyond an ulp, and it lets the
                    // sweeps end with an exactly diagonal matrix.
                    m[p * n + q] = 0.0;
                    m[q * n + p] = 0.0;
                    continue;
                }
                let theta = (aqq - app) / (2.0 * apq);
                let t = if theta.is_infinite() {
                    0.0
                } else {
                    theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt())
                };
                if t == 0.0 {
                    // |apq| is negligible next to the diagonal gap.
                    m[p * n + q] = 0.0;
                    m[q * n + p] = 0.0;
                    continue;
                }
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    if k == p || k == q {
                        continue;
                    }
                    let akp = m[k * n + p];
                    let akq = m[k * n + q];
                    let new_p = c * akp - s * akq;
                    let new_q = s * akp + c * akq;
                    m[k * n + p] = new_p;
                    m[p * n + k] = new_p;
                    m[k * n + q] = new_q;
                    m[q * n + k] = new_q;
                }
                m[p * n + p] = app - t * apq;
                m[q * n + q] = aqq + t * apq;
                m[p * n + q] = 0.0;
                m[q * n + p] = 0.0;
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| m[a * n + a].total_cmp(&m[b * n + b]));
    let values = order.iter().map(|&i| m[i * n + i]).collect();
    let mut vectors = vec![0.0; n * n];
    for (col, &i) in order.iter().enumerate() {
        for r in 0..n {
            vectors[r * n + col] = v[r * n + i];
        }
    }
    Ok(SymEigen { n, values, vectors })
}

/// The Moore–Penrose pseudo-inverse of a symmetric n×n matrix: eigenvalues with
/// |λ| ≤ `rtol`·max|λ| are treated as zero (the rule of `torch.linalg.pinv`, whose
/// singular values are the |λ| of a symmetric matrix).
pub fn pinv_sym(a: &[f64], n: usize, rtol: f64) -> Result<Vec<f64>> {
    let e = sym_eigen(a, n)?;
    let max_abs = e.values.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let cutoff = rtol * max_abs;
    let mut p = vec![0.0; n * n];
    for (k, &lambda) in e.values.iter().enumerate() {
        if lambda.abs() <= cutoff || lambda == 0.0 {
            continue;
        }
        for i in 0..n {
            let vi = e.vector(i, k) / lambda;
            for j in 0..n {
                p[i * n + j] += vi * e.vector(j, k);
            }
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reconstruct(e: &SymEigen) -> Vec<f64> {
        let n = e.n;
        let mut a = vec![0.0; n * n];
        for k in 0..n {
            for i in 0..n {
                for j in 0..n {
                    a[i * n + j] += e.values[k] * e.vector(i, k) * e.vector(j, k);
                }
            }
        }
        a
    }

    #[test]
    fn two_by_two() {
        let e = sym_eigen(&[2.0, 1.0, 1.0, 2.0], 2).unwrap();
        assert!((e.values[0] - 1.0).abs() < 1e-15 && (e.values[1] - 3.0).abs() < 1e-15);
    }

    #[test]
    fn reconstructs_and_is_orthonormal() {
        let n = 6;
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = ((i * 7 + j * 3) % 5) as f64 + ((j * 7 + i * 3) % 5) as f64;
            }
        }
        let e = sym_eigen(&a, n).unwrap();
        let r = reconstruct(&e);
        for (x, y) in r.iter().zip(&a) {
            assert!((x - y).abs() < 1e-12, "{x} vs {y}");
        }
        for p in 0..n {
            for q in 0..n {
                let dot: f64 = (0..n).map(|i| e.vector(i, p) * e.vector(i, q)).sum();
                let want = if p == q { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-13);
            }
        }
        assert!(e.values.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn pinv_of_singular_matrix() {
        // [[1,1],[1,1]] = 2 uuᵀ with u = (1,1)/√2, so pinv = uuᵀ/2 = 1/4 everywhere.
        let p = pinv_sym(&[1.0, 1.0, 1.0, 1.0], 2, 1e-12).unwrap();
        for x in p {
            assert!((x - 0.25).abs() < 1e-15);
        }
    }

    #[test]
    fn bad_input() {
        assert!(sym_eigen(&[1.0], 2).is_err());
        assert!(sym_eigen(&[f64::NAN], 1).is_err());
    }
}
