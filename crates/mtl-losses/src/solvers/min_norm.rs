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
/// combinations (dependent vectors), one of them is returned, with the weight of
/// identical vectors split equally among them; the point itself is unique. For an
/// all-zero Gram the uniform weights are returned.
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
    let mut w: Vec<f64> = x.iter().map(|v| v / total).collect();
    share_among_duplicates(gram, k, scale, &mut w);
    Ok(w)
}

/// Splits the weight of each group of identical vectors (‖gᵢ − gⱼ‖² at rounding level)
/// equally within the group. The point is unchanged; the weights become the symmetric
/// choice among the equivalent ones, independent of the task order.
fn share_among_duplicates(gram: &[f64], k: usize, scale: f64, w: &mut [f64]) {
    let tol = 1e-13 * scale;
    let mut group = vec![usize::MAX; k];
    for i in 0..k {
        if group[i] != usize::MAX {
            continue;
        }
        group[i] = i;
        for j in i + 1..k {
            let dist2 = gram[i * k + i] + gram[j * k + j] - 2.0 * gram[i * k + j];
            if group[j] == usize::MAX && dist2.abs() <= tol {
                group[j] = i;
            }
        }
    }
    for leader in 0..k {
        let members: Vec<usize> = (0..k).filter(|&j| group[j] == leader).collect();
        if members.len() > 1 {
            let share = members.iter().map(|&j| w[j]).sum::<f64>() / members.len() as f64;
            for &j in &members {
                w[j] = share;
            }
        }
    }
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
    fn duplicates_share_their_weight() {
        // g1 = g2 = (1, 0), g3 = (0, 1): the point (1/2, 1/2) with 1/4, 1/4, 1/2.
        let g = [1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        let w = min_norm_simplex(&g, 3).unwrap();
        assert!(
            (w[0] - 0.25).abs() < 1e-15 && (w[1] - 0.25).abs() < 1e-15,
            "{w:?}"
        );
        assert!((w[2] - 0.5).abs() < 1e-15);
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
