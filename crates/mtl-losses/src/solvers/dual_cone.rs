//! Projection onto the dual cone of the rows of J, in weight space (Quinton & Rey 2024,
//! Proposition 1): the projection of Jᵀu onto {x : Jx ≥ 0} is Jᵀv with
//! v = argmin { vᵀGv : v ≥ u }, G = JJᵀ. With v = u + x this is the non-negative QP
//! min ½xᵀGx + (Gu)ᵀx, x ≥ 0, in least-squares form (Q = JJᵀ, c = J(Jᵀu)).
//!
//! Also the Gram conditioning TorchJD applies before projecting: divide G by its
//! trace (the squared Frobenius norm of J), or zero it when the trace is below
//! `norm_eps`, then add `reg_eps`·I.

use super::nnqp;
use mtl_core::Result;

/// The weights v with Jᵀv = the projection of Jᵀu onto the dual cone of the rows, for
/// a symmetric PSD `gram` (K×K row-major; positive definite for a unique answer).
pub fn project_to_dual_cone(u: &[f64], gram: &[f64]) -> Result<Vec<f64>> {
    let k = u.len();
    let c: Vec<f64> = (0..k)
        .map(|i| (0..k).map(|j| gram[i * k + j] * u[j]).sum())
        .collect();
    let x = nnqp(gram, &c)?;
    Ok(u.iter().zip(&x).map(|(a, b)| a + b).collect())
}

/// G / tr(G) (or 0 when tr(G) < `norm_eps`) + `reg_eps`·I: scale-free, and positive
/// definite whenever `reg_eps` > 0.
pub fn normalize_regularize(gram: &[f64], k: usize, norm_eps: f64, reg_eps: f64) -> Vec<f64> {
    let trace: f64 = (0..k).map(|i| gram[i * k + i]).sum();
    let mut g: Vec<f64> = if trace < norm_eps {
        vec![0.0; k * k]
    } else {
        gram.iter().map(|v| v / trace).collect()
    };
    for i in 0..k {
        g[i * k + i] += reg_eps;
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_the_cone_is_left_alone() {
        // Orthogonal rows: u ≥ 0 gives Jᵀu already non-conflicting.
        let g = [1.0, 0.0, 0.0, 1.0];
        let v = project_to_dual_cone(&[0.5, 0.25], &g).unwrap();
        assert_eq!(v, vec![0.5, 0.25]);
    }

    #[test]
    fn conflicting_row_is_projected() {
        // g1 = (1, 0), g2 = (-1, 1): projecting g1 adds just enough g2 to make
        // ⟨Jᵀv, g2⟩ = 0: v = (1, 1/2), Jᵀv = (1/2, 1/2).
        let g = [1.0, -1.0, -1.0, 2.0];
        let v = project_to_dual_cone(&[1.0, 0.0], &g).unwrap();
        assert!(
            (v[0] - 1.0).abs() < 1e-15 && (v[1] - 0.5).abs() < 1e-15,
            "{v:?}"
        );
    }

    #[test]
    fn normalisation() {
        let g = normalize_regularize(&[3.0, 1.0, 1.0, 1.0], 2, 1e-4, 0.5);
        assert_eq!(g, vec![0.75 + 0.5, 0.25, 0.25, 0.25 + 0.5]);
        let z = normalize_regularize(&[1e-5, 0.0, 0.0, 1e-5], 2, 1e-4, 0.5);
        assert_eq!(z, vec![0.5, 0.0, 0.0, 0.5]);
    }
}
