//! The baselines every multi-task model is compared with: each task alone, and one
//! model for all tasks.

use crate::fitted::FittedLinear;
use crate::model::{fitted, MultiTaskLinear};
use crate::problem::{check_data, check_penalty, Problem};
use crate::{coupled, Loss};
use mtl_core::Result;
use mtl_data::{GroupedData, GroupedTask};
use nalgebra::DMatrix;
use ndarray::Array2;

/// Single-task learning: ridge (squared loss) or L2-penalised logistic regression on
/// each task alone,
/// `min_{wₜ, bₜ} Σᵢ ℓ(yₜᵢ, xₜᵢᵀwₜ + bₜ) + λ‖wₜ‖²` for every `t` (Hoerl & Kennard,
/// Technometrics 1970; le Cessie & van Houwelingen, Applied Statistics 1992). The sum
/// over tasks separates, so one Newton solve of the block-diagonal system fits all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SingleTask {
    /// `λ`, shared by the tasks.
    pub lambda: f64,
}

impl MultiTaskLinear for SingleTask {
    fn name(&self) -> String {
        format!("single-task(λ={})", crate::model::short(self.lambda))
    }

    fn fit(&self, data: &GroupedData, loss: Loss) -> Result<FittedLinear> {
        let ctx = self.name();
        check_penalty(&ctx, "λ", self.lambda)?;
        let p = Problem::new(data, loss, None, &ctx)?;
        let a = DMatrix::identity(p.n_tasks(), p.n_tasks()) * self.lambda;
        let sol = coupled::solve(&p, &a, None, crate::coupled::NEWTON_TOL, &ctx)?;
        let obj = coupled::objective(&p, &a, &sol.w, &sol.b);
        Ok(fitted(&p, ctx, (&sol.w, &sol.b), obj, sol.iterations, None))
    }
}

/// Pooling: one ridge or logistic model, with one intercept, for the stacked rows of
/// every task, `min_{w, b} Σₜ Σᵢ ℓ(yₜᵢ, xₜᵢᵀw + b) + λ‖w‖²`, as if the task did not
/// matter. Every task gets the same `(w, b)`. (The shared weight vector with per-task
/// intercepts is [`MeanRegularized`](crate::MeanRegularized) at `λ = ∞`.)
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pooled {
    /// `λ`.
    pub lambda: f64,
}

impl MultiTaskLinear for Pooled {
    fn name(&self) -> String {
        format!("pooled(λ={})", crate::model::short(self.lambda))
    }

    fn fit(&self, data: &GroupedData, loss: Loss) -> Result<FittedLinear> {
        let ctx = self.name();
        check_penalty(&ctx, "λ", self.lambda)?;
        check_data(data, loss, &ctx)?;
        let (x, y, _) = data.pooled();
        let one = GroupedData {
            feature_names: data.feature_names.clone(),
            target_name: data.target_name.clone(),
            binary: data.binary,
            tasks: vec![GroupedTask {
                name: "pooled".into(),
                x,
                y,
            }],
        };
        let alone = SingleTask {
            lambda: self.lambda,
        }
        .fit(&one, loss)?;
        let t_n = data.n_tasks();
        let weights =
            Array2::from_shape_fn((data.n_features(), t_n), |(j, _)| alone.weights[[j, 0]]);
        Ok(FittedLinear {
            model: ctx,
            loss,
            task_names: data.tasks.iter().map(|t| t.name.clone()).collect(),
            weights,
            intercepts: ndarray::Array1::from_elem(t_n, alone.intercepts[0]),
            objective: alone.objective,
            iterations: alone.iterations,
            extra: None,
        })
    }
}
