//! The trace-norm model; its objective and solver are on its type.

use crate::apg::{self, Penalty, Settings};
use crate::fitted::FittedLinear;
use crate::model::MultiTaskLinear;
use crate::Loss;
use mtl_core::Result;
use mtl_data::GroupedData;
use nalgebra::DMatrix;

/// Trace-norm regularized multi-task learning: low-rank `W`, so the tasks' weight
/// vectors lie near a shared low-dimensional subspace (Argyriou, Evgeniou & Pontil,
/// "Convex multi-task feature learning", Machine Learning 2008; Ji & Ye, "An
/// accelerated gradient method for trace norm minimization", ICML 2009):
///
/// `min_{W, b} Σₜ Σᵢ ℓ(yₜᵢ, xₜᵢᵀwₜ + bₜ) + λ ‖W‖_*`,  `‖W‖_* = Σₖ σₖ(W)`.
///
/// Solved by accelerated proximal gradient (FISTA with backtracking and restart); the
/// proximal map of the trace norm is singular-value shrinkage,
/// `prox(V) = U max(Σ − τ, 0) Vᵀ` (Cai, Candès & Shen 2010).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceNorm {
    /// `λ`, the weight on `‖W‖_*`.
    pub lambda: f64,
    /// The relative proximal-gradient residual to stop at.
    pub tol: f64,
    /// The most iterations before giving up with an error.
    pub max_iter: usize,
}

impl TraceNorm {
    /// `λ` with tolerance `1e-9` and at most 20 000 iterations.
    pub fn new(lambda: f64) -> Self {
        TraceNorm {
            lambda,
            tol: 1e-9,
            max_iter: 20_000,
        }
    }
}

/// `‖W‖_*` with singular-value shrinkage as its proximal map.
pub(crate) struct Nuclear;

impl Penalty for Nuclear {
    fn value(&self, w: &DMatrix<f64>) -> f64 {
        w.clone().singular_values().sum()
    }

    fn prox(&self, v: &DMatrix<f64>, tau: f64) -> DMatrix<f64> {
        let svd = v.clone().svd(true, true);
        let (Some(u), Some(vt)) = (svd.u, svd.v_t) else {
            // nalgebra returns both factors whenever they are asked for.
            return DMatrix::zeros(v.nrows(), v.ncols());
        };
        let shrunk = svd.singular_values.map(|s| (s - tau).max(0.0));
        u * DMatrix::from_diagonal(&shrunk) * vt
    }
}

impl MultiTaskLinear for TraceNorm {
    fn name(&self) -> String {
        format!("trace-norm(λ={})", crate::model::short(self.lambda))
    }

    fn fit(&self, data: &GroupedData, loss: Loss) -> Result<FittedLinear> {
        let settings = Settings {
            tol: self.tol,
            max_iter: self.max_iter,
        };
        apg::fit(data, loss, &Nuclear, self.lambda, settings, self.name())
    }
}
