//! The clustered model; its objective and solver are on its type.

use crate::alternate::{self, Step};
use crate::fitted::{Extra, FittedLinear};
use crate::model::{fitted, to_array2, MultiTaskLinear};
use crate::mtrl::sym_fn;
use crate::problem::{check_penalty, Problem};
use crate::Loss;
use mtl_core::{Error, Result};
use mtl_data::GroupedData;
use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// Clustered multi-task learning, the convex relaxation of Zhou, Chen & Ye
/// ("Clustered multi-task learning via alternating structure optimization", NIPS
/// 2011; cCMTL). Tasks fall into `k` clusters whose members share weights; relaxing
/// the k-means cluster-indicator matrix to `M` with `0 ⪯ M ⪯ I`, `tr M = k` gives the
/// jointly convex problem
///
/// `min_{W, b, M} Σₜ Σᵢ ℓ(yₜᵢ, xₜᵢᵀwₜ + bₜ) + ρ₁ η(1 + η) tr(W (ηI + M)⁻¹ Wᵀ)`,
/// `η = ρ₂/ρ₁`, `s.t. tr M = k, 0 ⪯ M ⪯ I`,
///
/// where `ρ₁` weighs the clustering (k-means) term and `ρ₂` a ridge. (This relaxation
/// is chosen over Jacob, Bach & Vert's 2008 one for its simpler constraint set, whose
/// `M` step has a closed form.) Alternating: for fixed `M` the `W` step is smooth with
/// coupling `ρ₁η(1+η)(ηI + M)⁻¹` (Newton); for fixed `W`, with `WᵀW = Q diag(sᵢ) Qᵀ`,
/// `M = Q diag(mᵢ) Qᵀ`, `mᵢ = clip(τ√sᵢ − η, 0, 1)` and `τ` found by bisection so
/// that `Σ mᵢ = k` (the KKT conditions of `min Σ sᵢ/(η + mᵢ)` over the capped simplex).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusteredMtl {
    /// `ρ₁ > 0`, the weight on the clustering term.
    pub rho1: f64,
    /// `ρ₂ > 0`, the ridge (`η = ρ₂/ρ₁`).
    pub rho2: f64,
    /// `k ∈ (0, T]`, the number of clusters (the trace of `M`).
    pub clusters: f64,
    /// The relative change of `(W, b)` between rounds to stop at.
    pub tol: f64,
    /// The most alternations before giving up with an error.
    pub max_iter: usize,
}

impl ClusteredMtl {
    /// `ρ₁, ρ₂, k` with tolerance `10⁻¹⁰` and at most 5 000 rounds.
    pub fn new(rho1: f64, rho2: f64, clusters: usize) -> Self {
        ClusteredMtl {
            rho1,
            rho2,
            clusters: clusters as f64,
            tol: 1e-10,
            max_iter: 5_000,
        }
    }

    fn eta(&self) -> f64 {
        self.rho2 / self.rho1
    }

    /// `ρ₁η(1+η)(ηI + M)⁻¹`.
    fn coupling(&self, m: &DMatrix<f64>) -> DMatrix<f64> {
        let eta = self.eta();
        let scale = self.rho1 * eta * (1.0 + eta);
        sym_fn(m, |v| scale / (eta + v))
    }

    /// The minimising `M` for the current `W`.
    pub(crate) fn cluster_matrix(&self, w: &DMatrix<f64>) -> DMatrix<f64> {
        let eig = SymmetricEigen::new(w.transpose() * w);
        let roots: Vec<f64> = eig.eigenvalues.iter().map(|&s| s.max(0.0).sqrt()).collect();
        let m = capped_simplex(&roots, self.eta(), self.clusters);
        let q = &eig.eigenvectors;
        q * DMatrix::from_diagonal(&DVector::from_vec(m)) * q.transpose()
    }
}

/// `mᵢ = clip(τ rᵢ − η, 0, 1)` with `Σ mᵢ = k`; directions with `rᵢ = 0` cost nothing
/// whatever their `mᵢ`, so they take up evenly what the others cannot.
fn capped_simplex(roots: &[f64], eta: f64, k: f64) -> Vec<f64> {
    let m_at = |tau: f64| -> Vec<f64> {
        roots
            .iter()
            .map(|&r| (tau * r - eta).clamp(0.0, 1.0))
            .collect()
    };
    let positive = roots.iter().filter(|&&r| r > 0.0).count() as f64;
    if positive <= k {
        let zeros = roots.len() as f64 - positive;
        let rest = if zeros > 0.0 {
            (k - positive) / zeros
        } else {
            0.0
        };
        return roots
            .iter()
            .map(|&r| if r > 0.0 { 1.0 } else { rest })
            .collect();
    }
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    while m_at(hi).iter().sum::<f64>() < k {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if m_at(mid).iter().sum::<f64>() < k {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    m_at(0.5 * (lo + hi))
}

impl MultiTaskLinear for ClusteredMtl {
    fn name(&self) -> String {
        format!(
            "clustered(ρ₁={}, ρ₂={}, k={})",
            crate::model::short(self.rho1),
            crate::model::short(self.rho2),
            self.clusters
        )
    }

    fn fit(&self, data: &GroupedData, loss: Loss) -> Result<FittedLinear> {
        let ctx = self.name();
        check_penalty(&ctx, "ρ₁", self.rho1)?;
        check_penalty(&ctx, "ρ₂", self.rho2)?;
        if self.rho1 == 0.0 || self.rho2 == 0.0 {
            return Err(Error::config(format!("{ctx}: ρ₁ and ρ₂ must be > 0")));
        }
        let p = Problem::new(data, loss, None, &ctx)?;
        let t_n = p.n_tasks();
        if !(self.clusters > 0.0 && self.clusters <= t_n as f64) {
            return Err(Error::config(format!(
                "{ctx}: the number of clusters must be in (0, {t_n}] for {t_n} tasks, got {}",
                self.clusters
            )));
        }
        let m0 = DMatrix::identity(t_n, t_n) * (self.clusters / t_n as f64);
        let first = Step {
            coupling: self.coupling(&m0),
            task_matrix: m0,
        };
        let next = |w: &DMatrix<f64>| -> Result<Step> {
            let m = self.cluster_matrix(w);
            Ok(Step {
                coupling: self.coupling(&m),
                task_matrix: m,
            })
        };
        let (sol, m) = alternate::run(&p, first, next, self.tol, self.max_iter, &ctx)?;
        let a = self.coupling(&m);
        let obj = p.value(&sol.w, &sol.b) + crate::coupled::coupling(&sol.w, &a);
        Ok(fitted(
            &p,
            ctx,
            (&sol.w, &sol.b),
            obj,
            sol.iterations,
            Some(Extra::TaskMatrix(to_array2(&m))),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_simplex_meets_the_trace_and_the_caps() {
        let m = capped_simplex(&[3.0, 1.0, 0.5, 0.0], 0.2, 2.0);
        assert!((m.iter().sum::<f64>() - 2.0).abs() < 1e-9, "{m:?}");
        assert!(m.iter().all(|&v| (0.0..=1.0).contains(&v)));
        assert!(m[0] >= m[1] && m[1] >= m[2]);
        let few = capped_simplex(&[2.0, 0.0, 0.0], 0.1, 2.0);
        assert_eq!(few, vec![1.0, 0.5, 0.5]);
    }
}
