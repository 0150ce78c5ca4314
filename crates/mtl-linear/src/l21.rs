//! The l21 model; its objective and solver are on its type.

use crate::apg::{self, Penalty, Settings};
use crate::fitted::FittedLinear;
use crate::model::MultiTaskLinear;
use crate::Loss;
use mtl_core::Result;
use mtl_data::GroupedData;
use nalgebra::DMatrix;

/// Joint feature selection by the L2,1 norm: each feature is used by all tasks or by
/// none (Obozinski, Taskar & Jordan, "Joint covariate selection and joint subspace
/// selection for multiple classification problems", Statistics and Computing 2010;
/// Liu, Ji & Ye, "Multi-task feature learning via efficient ℓ2,1-norm minimization",
/// UAI 2009):
///
/// `min_{W, b} Σₜ Σᵢ ℓ(yₜᵢ, xₜᵢᵀwₜ + bₜ) + λ Σⱼ ‖Wⱼ,·‖₂`,
///
/// the penalty summing the Euclidean norms of `W`'s rows (one row per feature, across
/// tasks). Solved by accelerated proximal gradient; the proximal map shrinks each row
/// towards zero as a group, `Wⱼ,· ← max(0, 1 − τ/‖Wⱼ,·‖) Wⱼ,·`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct L21 {
    /// `λ`, the weight on `Σⱼ‖Wⱼ,·‖₂`.
    pub lambda: f64,
    /// The relative proximal-gradient residual to stop at.
    pub tol: f64,
    /// The most iterations before giving up with an error.
    pub max_iter: usize,
}

impl L21 {
    /// `λ` with tolerance `1e-9` and at most 20 000 iterations.
    pub fn new(lambda: f64) -> Self {
        L21 {
            lambda,
            tol: 1e-9,
            max_iter: 20_000,
        }
    }
}

/// `Σⱼ ‖Wⱼ,·‖₂` with row-wise group shrinkage as its proximal map.
pub(crate) struct RowNorms;

impl Penalty for RowNorms {
    fn value(&self, w: &DMatrix<f64>) -> f64 {
        w.row_iter().map(|r| r.norm()).sum()
    }

    fn prox(&self, v: &DMatrix<f64>, tau: f64) -> DMatrix<f64> {
        let mut out = v.clone();
        for mut row in out.row_iter_mut() {
            let n = row.norm();
            let keep = if n > tau { 1.0 - tau / n } else { 0.0 };
            row *= keep;
        }
        out
    }
}

impl MultiTaskLinear for L21 {
    fn name(&self) -> String {
        format!("l21(λ={})", crate::model::short(self.lambda))
    }

    fn fit(&self, data: &GroupedData, loss: Loss) -> Result<FittedLinear> {
        let settings = Settings {
            tol: self.tol,
            max_iter: self.max_iter,
        };
        apg::fit(data, loss, &RowNorms, self.lambda, settings, self.name())
    }
}
