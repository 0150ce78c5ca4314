//! The mtrl model; its objective and solver are on its type.

use crate::alternate::{self, Step};
use crate::fitted::{Extra, FittedLinear};
use crate::model::{fitted, to_array2, MultiTaskLinear};
use crate::problem::{check_penalty, Problem};
use crate::Loss;
use mtl_core::{Error, Result};
use mtl_data::GroupedData;
use nalgebra::{DMatrix, SymmetricEigen};

/// Multi-task relationship learning (MTRL; Zhang & Yeung, "A convex formulation for
/// learning task relationships in multi-task learning", UAI 2010): the task graph is
/// learned as a task covariance `Ω` beside the weights,
///
/// `min_{W, b, Ω} Σₜ Σᵢ ℓ(yₜᵢ, xₜᵢᵀwₜ + bₜ) + λ₁ ‖W‖_F² + λ₂ tr(Ω⁻¹ (WᵀW + εI))`
/// `s.t. Ω ≻ 0, tr Ω = 1`.
///
/// The paper's penalty is `tr(W Ω⁻¹ Wᵀ) = tr(Ω⁻¹ WᵀW)`; `ε > 0` keeps `Ω` invertible
/// when `WᵀW` is singular (fewer features than tasks), and `ε → 0` recovers it. (The
/// paper halves both penalties; here they are not halved, as everywhere in this crate.)
/// The objective is jointly convex. Alternating: for fixed `Ω` the `W` step is a
/// smooth problem with coupling `λ₁ I + λ₂ Ω⁻¹` (Newton, one step for the squared
/// loss); for fixed `W`, `Ω = (WᵀW + εI)^{1/2} / tr (WᵀW + εI)^{1/2}`. Minimising `Ω`
/// out leaves `λ₂ (tr (WᵀW + εI)^{1/2})²`, the squared nuclear norm of `[W; √ε I]`,
/// which is the objective [`FittedLinear::objective`] reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mtrl {
    /// `λ₁`, the ridge on `W`.
    pub lambda1: f64,
    /// `λ₂`, the weight on the task-relation term.
    pub lambda2: f64,
    /// `ε > 0`, the smoothing that keeps `Ω` invertible.
    pub eps: f64,
    /// The relative change of `(W, b)` between rounds to stop at.
    pub tol: f64,
    /// The most alternations before giving up with an error.
    pub max_iter: usize,
}

impl Mtrl {
    /// `λ₁, λ₂` with `ε = 10⁻³`, tolerance `10⁻¹⁰` and at most 5 000 rounds.
    pub fn new(lambda1: f64, lambda2: f64) -> Self {
        Mtrl {
            lambda1,
            lambda2,
            eps: 1e-3,
            tol: 1e-10,
            max_iter: 5_000,
        }
    }

    /// `(Ω, tr (WᵀW + εI)^{1/2})` for the current `W`.
    fn covariance(&self, w: &DMatrix<f64>) -> (DMatrix<f64>, f64) {
        let t_n = w.ncols();
        let gram = w.transpose() * w + DMatrix::identity(t_n, t_n) * self.eps;
        let root = sym_fn(&gram, |v| v.max(0.0).sqrt());
        let trace = root.trace();
        (root / trace, trace)
    }
}

/// `f(S)` for a symmetric `S`, through its eigen-decomposition.
pub(crate) fn sym_fn(s: &DMatrix<f64>, f: impl Fn(f64) -> f64) -> DMatrix<f64> {
    let eig = SymmetricEigen::new(s.clone());
    let q = &eig.eigenvectors;
    q * DMatrix::from_diagonal(&eig.eigenvalues.map(f)) * q.transpose()
}

impl MultiTaskLinear for Mtrl {
    fn name(&self) -> String {
        format!(
            "mtrl(λ₁={}, λ₂={})",
            crate::model::short(self.lambda1),
            crate::model::short(self.lambda2)
        )
    }

    fn fit(&self, data: &GroupedData, loss: Loss) -> Result<FittedLinear> {
        let ctx = self.name();
        check_penalty(&ctx, "λ₁", self.lambda1)?;
        check_penalty(&ctx, "λ₂", self.lambda2)?;
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(Error::config(format!(
                "{ctx}: ε must be finite and > 0, got {}",
                self.eps
            )));
        }
        let p = Problem::new(data, loss, None, &ctx)?;
        let t_n = p.n_tasks();
        let coupling = |omega: &DMatrix<f64>| -> Result<DMatrix<f64>> {
            let inv = sym_fn(omega, |v| 1.0 / v);
            Ok(DMatrix::identity(t_n, t_n) * self.lambda1 + inv * self.lambda2)
        };
        let omega0 = DMatrix::identity(t_n, t_n) / t_n as f64;
        let first = Step {
            coupling: coupling(&omega0)?,
            task_matrix: omega0,
        };
        let next = |w: &DMatrix<f64>| -> Result<Step> {
            let (omega, _) = self.covariance(w);
            Ok(Step {
                coupling: coupling(&omega)?,
                task_matrix: omega,
            })
        };
        let (sol, omega) = alternate::run(&p, first, next, self.tol, self.max_iter, &ctx)?;
        let (_, trace) = self.covariance(&sol.w);
        let obj = p.value(&sol.w, &sol.b)
            + self.lambda1 * sol.w.norm_squared()
            + self.lambda2 * trace * trace;
        Ok(fitted(
            &p,
            ctx,
            (&sol.w, &sol.b),
            obj,
            sol.iterations,
            Some(Extra::TaskMatrix(to_array2(&omega))),
        ))
    }
}
