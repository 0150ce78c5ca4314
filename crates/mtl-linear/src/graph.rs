//! The graph model; its objective and solver are on its type.

use crate::fitted::FittedLinear;
use crate::model::{fitted, MultiTaskLinear};
use crate::problem::{check_penalty, Problem};
use crate::{coupled, Loss};
use mtl_core::{Error, Result};
use mtl_data::GroupedData;
use nalgebra::DMatrix;
use ndarray::Array2;

/// Graph-Laplacian task relations for a given task graph (Evgeniou, Micchelli &
/// Pontil, "Learning multiple tasks with kernel methods", JMLR 2005): tasks joined by
/// an edge of weight `aₛₜ` are pulled towards each other,
///
/// `min_{W, b} Σₜ Σᵢ ℓ(yₜᵢ, xₜᵢᵀwₜ + bₜ) + λ Σ_{s<t} aₛₜ ‖wₛ − wₜ‖² + γ ‖W‖_F²`
/// `          = … + tr(W (λ L + γ I) Wᵀ)`,  `L = diag(A𝟙) − A`.
///
/// `L` is singular (constant weights across a connected component cost nothing), so
/// `γ > 0` or designs of full rank keep the problem solvable. Smooth and convex:
/// solved by Newton's method on the joint system (one step for the squared loss). For
/// a graph learned from the data see [`Mtrl`](crate::Mtrl).
#[derive(Debug, Clone, PartialEq)]
pub struct GraphLaplacian {
    /// `[tasks, tasks]`: the symmetric, non-negative edge weights `aₛₜ` (the diagonal
    /// is ignored).
    pub adjacency: Array2<f64>,
    /// `λ`, the weight on the graph term.
    pub lambda: f64,
    /// `γ`, the ridge on every task's weights.
    pub gamma: f64,
}

impl GraphLaplacian {
    /// `tr(W (λL + γI) Wᵀ)`'s matrix, after checking the graph against `t_n` tasks.
    pub(crate) fn coupling(&self, t_n: usize, ctx: &str) -> Result<DMatrix<f64>> {
        let a = &self.adjacency;
        if a.shape() != [t_n, t_n] {
            return Err(Error::shape(
                format!("{ctx}: task graph"),
                format!("[{t_n}, {t_n}]"),
                format!("{:?}", a.shape()),
            ));
        }
        for ((s, t), &v) in a.indexed_iter() {
            if !v.is_finite() || (s != t && v < 0.0) {
                return Err(Error::config(format!(
                    "{ctx}: edge weight ({s}, {t}) must be finite and ≥ 0, got {v}"
                )));
            }
            if (v - a[[t, s]]).abs() > 1e-12 * (v.abs() + a[[t, s]].abs()) {
                return Err(Error::config(format!(
                    "{ctx}: the task graph must be symmetric, but ({s}, {t}) is {v} and ({t}, {s}) is {}",
                    a[[t, s]]
                )));
            }
        }
        let mut m = DMatrix::zeros(t_n, t_n);
        for s in 0..t_n {
            for t in 0..t_n {
                if s != t {
                    m[(s, t)] -= self.lambda * a[[s, t]];
                    m[(s, s)] += self.lambda * a[[s, t]];
                }
            }
            m[(s, s)] += self.gamma;
        }
        Ok(m)
    }
}

impl MultiTaskLinear for GraphLaplacian {
    fn name(&self) -> String {
        format!(
            "graph-laplacian(λ={}, γ={})",
            crate::model::short(self.lambda),
            crate::model::short(self.gamma)
        )
    }

    fn fit(&self, data: &GroupedData, loss: Loss) -> Result<FittedLinear> {
        let ctx = self.name();
        check_penalty(&ctx, "λ", self.lambda)?;
        check_penalty(&ctx, "γ", self.gamma)?;
        let p = Problem::new(data, loss, None, &ctx)?;
        let a = self.coupling(p.n_tasks(), &ctx)?;
        let sol = coupled::solve(&p, &a, None, crate::coupled::NEWTON_TOL, &ctx)?;
        let obj = coupled::objective(&p, &a, &sol.w, &sol.b);
        Ok(fitted(&p, ctx, (&sol.w, &sol.b), obj, sol.iterations, None))
    }
}
