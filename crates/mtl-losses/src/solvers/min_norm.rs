//! The min-norm point of the convex hull of K vectors, from their Gram matrix alone:
//! w* = argmin { wᵀGw : w ≥ 0, Σw = 1 }.
//!
//! Reduction to a non-negative QP (the least-distance trick of Lawson & Hanson,
//! ch. 23): with Q = G + 11ᵀ and c = −1, the minimiser of ½xᵀQx + cᵀx over x ≥ 0 is
//! x* = w*/(1 + w*ᵀGw*), since for x = s·w (w on the simplex) the objective is
//! ½s²(wᵀGw + 1) − s, minimised at s = 1/(wᵀGw + 1) with value −1/(2(wᵀGw + 1)). So
//! w* = x*/Σx*. Q = AᵀA for A = [Jᵀ; 1ᵀ] and c = −Aᵀe, the least-squares form under
//! which the active-set solver stays well defined when the vectors are affinely
//! dependent (K > d + 1, duplicates). G is scaled by its largest diagonal entry first,
//! which leaves w* unchanged and keeps 11ᵀ commensurate with G.

use super::nnqp;
use mtl_core::{Error, Result};

/// The weights of the min-norm point of the convex hull of the K vectors whose Gram
/// matrix is `gram` (K×K, row-major). When the min-norm point is reached by several
/// combinations (dependent vectors), one of them is returned; the point itself is
/// unique. For an all-zero Gram the uniform weights are returned.
pub fn min_norm_simplex(gram: &[f64], k: usize) -> Result<Vec<f64>> {
    if k == 0 || gram.len() != k * k {
        return Err(Error::shape(
            "min_norm_simplex",
            format!("{k}x{k} Gram matrix with K >= 1"),
            format!("{} values", gram.len()),
        ));
    }
    if k == 1 {
        return Ok(vec![1.0]);
    }
    let scale = (0..k).fold(0.0f64, |m, i| m.max(gram[i * k + i]));
    if !scale.is_finite() {
        return Err(Error::NonFinite {
            what: "Gram matrix".into(),
            task: None,
            step: None,
            value: scale.to_string(),
        });
    }
    if scale <= 0.0 {
        return Ok(vec![1.0 / k as f64; k]);
    }
    let q: Vec<f64> = gram.iter().map(|g| g / scale + 1.0).collect();
    let c = vec![-1.0; k];
    let x = nnqp(&q, &c)?;
    let total: f64 = x.iter().sum();
    if total.is_nan() || total <= 0.0 {
        // Unreachable for a PSD Gram (the first variable to enter is positive), but a
        // non-PSD input must not produce NaN weights.
        return Err(Error::config(
            "min-norm solve failed: the Gram matrix is not positive semi-definite",
        ));
    }
    Ok(x.iter().map(|v| v / total).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_orthogonal_unit_vectors_meet_halfway() {
        let w = min_norm_simplex(&[1.0, 0.0, 0.0, 1.0], 2).unwrap();
        assert!((w[0] - 0.5).abs() < 1e-15 && (w[1] - 0.5).abs() < 1e-15);
    }

    #[test]
    fn dominated_vector_gets_all_weight() {
        // g1 = (1, 0), g2 = (2, 0): the hull's min-norm point is g1.
        let w = min_norm_simplex(&[1.0, 2.0, 2.0, 4.0], 2).unwrap();
        assert_eq!(w, vec![1.0, 0.0]);
    }

    #[test]
    fn origin_inside_the_hull() {
        // g = (1,0), (-1,0), (0,1), (0,-1): the min-norm point is 0.
        let g = [
            1.0, -1.0, 0.0, 0.0, -1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.0, -1.0, 1.0,
        ];
        let w = min_norm_simplex(&g, 4).unwrap();
        let norm2: f64 = (0..4)
            .flat_map(|i| (0..4).map(move |j| (i, j)))
            .map(|(i, j)| w[i] * w[j] * g[i * 4 + j])
            .sum();
        assert!(norm2 < 1e-28, "{w:?}");
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-15);
    }
}
