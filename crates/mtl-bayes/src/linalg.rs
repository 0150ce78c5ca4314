//! Small dense symmetric positive-definite algebra over `ndarray`.
//!
//! Every matrix these models factor is p × p, p the number of coefficients (an intercept
//! and a handful of features), so a textbook Cholesky is exact enough and far cheaper to
//! build than a general linear-algebra crate; the n × n covariances of the marginal
//! likelihood are never formed (the Woodbury and determinant-lemma forms reduce them to
//! p × p).

use ndarray::{Array1, Array2};

/// The lower Cholesky factor `L` of a symmetric positive-definite `a` (`a = L Lᵀ`), or
/// `None` when a pivot is not positive and finite (`a` is not positive definite to
/// working precision).
pub(crate) fn cholesky(a: &Array2<f64>) -> Option<Array2<f64>> {
    let n = a.nrows();
    let mut l = Array2::<f64>::zeros((n, n));
    for j in 0..n {
        let mut d = a[[j, j]];
        for k in 0..j {
            d -= l[[j, k]] * l[[j, k]];
        }
        if !(d > 0.0 && d.is_finite()) {
            return None;
        }
        let d = d.sqrt();
        l[[j, j]] = d;
        for i in j + 1..n {
            let mut s = a[[i, j]];
            for k in 0..j {
                s -= l[[i, k]] * l[[j, k]];
            }
            l[[i, j]] = s / d;
        }
    }
    Some(l)
}

/// Solves `L z = b` for lower-triangular `L`.
pub(crate) fn forward(l: &Array2<f64>, b: &Array1<f64>) -> Array1<f64> {
    let n = l.nrows();
    let mut z = b.clone();
    for i in 0..n {
        let mut s = z[i];
        for k in 0..i {
            s -= l[[i, k]] * z[k];
        }
        z[i] = s / l[[i, i]];
    }
    z
}

/// Solves `Lᵀ z = b` for lower-triangular `L`.
pub(crate) fn backward(l: &Array2<f64>, b: &Array1<f64>) -> Array1<f64> {
    let n = l.nrows();
    let mut z = b.clone();
    for i in (0..n).rev() {
        let mut s = z[i];
        for k in i + 1..n {
            s -= l[[k, i]] * z[k];
        }
        z[i] = s / l[[i, i]];
    }
    z
}

/// Solves `a x = b` given the Cholesky factor `L` of `a`.
pub(crate) fn chol_solve(l: &Array2<f64>, b: &Array1<f64>) -> Array1<f64> {
    backward(l, &forward(l, b))
}

/// `a⁻¹` given the Cholesky factor `L` of `a`.
pub(crate) fn chol_inverse(l: &Array2<f64>) -> Array2<f64> {
    let n = l.nrows();
    let mut inv = Array2::zeros((n, n));
    for j in 0..n {
        let mut e = Array1::zeros(n);
        e[j] = 1.0;
        inv.column_mut(j).assign(&chol_solve(l, &e));
    }
    symmetrize(&mut inv);
    inv
}

/// `log |a|` given the Cholesky factor `L` of `a`.
pub(crate) fn chol_logdet(l: &Array2<f64>) -> f64 {
    2.0 * l.diag().iter().map(|d| d.ln()).sum::<f64>()
}

/// Replaces `a` by `(a + aᵀ) / 2`, removing the rounding asymmetry of products such as
/// `L B⁻¹ Lᵀ`, so factorisations downstream see an exactly symmetric matrix.
pub(crate) fn symmetrize(a: &mut Array2<f64>) {
    let n = a.nrows();
    for i in 0..n {
        for j in 0..i {
            let m = 0.5 * (a[[i, j]] + a[[j, i]]);
            a[[i, j]] = m;
            a[[j, i]] = m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn cholesky_solves_and_inverts() {
        let a = array![[4.0, 2.0, 0.4], [2.0, 3.0, 0.5], [0.4, 0.5, 2.0]];
        let l = cholesky(&a).unwrap();
        assert!((l.dot(&l.t()) - &a).iter().all(|v| v.abs() < 1e-12));
        let b = array![1.0, -2.0, 0.5];
        let x = chol_solve(&l, &b);
        assert!((a.dot(&x) - &b).iter().all(|v| v.abs() < 1e-12));
        let inv = chol_inverse(&l);
        assert!((a.dot(&inv) - Array2::<f64>::eye(3))
            .iter()
            .all(|v| v.abs() < 1e-12));
        // det by cofactor expansion
        let det = 4.0 * (3.0 * 2.0 - 0.25) - 2.0 * (2.0 * 2.0 - 0.5 * 0.4)
            + 0.4 * (2.0 * 0.5 - 3.0 * 0.4);
        assert!((chol_logdet(&l) - f64::ln(det)).abs() < 1e-12);
        assert!(cholesky(&array![[1.0, 2.0], [2.0, 1.0]]).is_none());
    }
}
