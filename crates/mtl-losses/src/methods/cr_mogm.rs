//! CR-MOGM: correlation-reduced multi-objective gradient manipulation — MGDA's task
//! weights smoothed by a momentum across steps, so the weights (and the bias their
//! dependence on the mini-batch puts into the update) move slowly.
//!
//! Reference: Shiji Zhou, Wenpeng Zhang, Jiyan Jiang, Wenliang Zhong, Jinjie Gu and
//! Wenwu Zhu, "On the Convergence of Stochastic Multi-Objective Gradient Manipulation
//! and Beyond", NeurIPS 2022 (CR-MOGM applied to MGDA, the paper's main instance).
//!
//! Update rule, with λ̂ₜ the min-norm (MGDA) weights of this step's Jacobian:
//!
//! ```text
//! λ̂ₜ = argmin { ‖Jᵀλ‖² : λ ≥ 0, Σ λ = 1 }     (exact active-set QP, as `mgda`)
//! λₜ = α λₜ₋₁ + (1 − α) λ̂ₜ,   λ₀ = 1/K
//! output Σₖ λₜₖ gₖ
//! ```
//!
//! λₜ stays on the simplex (a convex combination of points on it). α = 0 is MGDA;
//! α → 1 freezes the weights at λ₀ (the mean). The paper lets α depend on the step
//! size schedule of its analysis; no single value is fixed for training, so the
//! default α = 0.9 (a usual momentum) is this crate's choice, to be tuned.

use crate::solvers::{checked_gram, min_norm_simplex, weighted};
use crate::state;
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{Error, Result};
use tch::Tensor;

/// CR-MOGM on MGDA (Zhou et al., NeurIPS 2022).
#[derive(Debug, Clone)]
pub struct CrMogm {
    num_tasks: usize,
    alpha: f64,
    lambda: Vec<f64>,
    step: u64,
}

impl CrMogm {
    /// The default momentum α (this crate's choice; see the module docs).
    pub const DEFAULT_ALPHA: f64 = 0.9;

    /// For `num_tasks` (≥ 1) tasks with momentum `alpha` in [0, 1).
    pub fn new(num_tasks: usize, alpha: f64) -> Result<Self> {
        if num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "cr_mogm".into(),
                expected: 0,
                got: 0,
            });
        }
        if !(0.0..1.0).contains(&alpha) {
            return Err(Error::config(format!(
                "cr_mogm: alpha must be in [0, 1), got {alpha}"
            )));
        }
        Ok(CrMogm {
            num_tasks,
            alpha,
            lambda: vec![1.0 / num_tasks as f64; num_tasks],
            step: 0,
        })
    }

    /// The smoothed weights λ of the last step (λ₀ = 1/K before any).
    pub fn lambda(&self) -> &[f64] {
        &self.lambda
    }
}

impl Aggregator for CrMogm {
    fn name(&self) -> &'static str {
        "cr_mogm"
    }
    fn num_tasks(&self) -> Option<usize> {
        Some(self.num_tasks)
    }

    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        let gram = checked_gram("cr_mogm", jacobian, ctx, Some(self.num_tasks))?;
        let mgda = min_norm_simplex(gram.as_slice(), gram.k()).map_err(|e| e.at_step(ctx.step))?;
        let lambda: Vec<f64> = self
            .lambda
            .iter()
            .zip(&mgda)
            .map(|(prev, m)| self.alpha * prev + (1.0 - self.alpha) * m)
            .collect();
        let out = weighted(lambda.clone(), jacobian)?;
        self.lambda = lambda;
        self.step += 1;
        Ok(out)
    }

    /// The smoothed weights and the step count.
    fn state(&self) -> serde_json::Value {
        state::step_and_vector_json(self.step, "lambda", &self.lambda)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        (self.step, self.lambda) =
            state::step_and_vector("cr_mogm", state, "lambda", self.num_tasks)?;
        Ok(())
    }
}
