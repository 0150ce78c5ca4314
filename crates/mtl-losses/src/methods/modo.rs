//! MoDo: multi-objective gradient with double sampling — MGDA's weights learned by
//! projected gradient steps whose gradient uses two independent stochastic samples,
//! so the step on λ is unbiased.
//!
//! Reference: Lisha Chen, Heshan Fernando, Yiming Ying and Tianyi Chen, "Three-Way
//! Trade-Off in Multi-Objective Learning: Optimization, Generalization and
//! Conflict-Avoidance", NeurIPS 2023 (Algorithm 1); LibMTL's `MoDo` (from the authors'
//! code) for the defaults.
//!
//! Update rule, with λ on the simplex (init 1/K, kept between steps) and three
//! Jacobians J₁, J₂, J₃ of independent mini-batches:
//!
//! ```text
//! λ ← Π_Δ(λ − γ (J₁J₂ᵀ λ + ρ λ))      (½∇ of ‖Jᵀλ‖² + ρ‖λ‖², estimated unbiasedly)
//! output Σₖ λₖ (J₃)ₖ                   (with the new λ)
//! ```
//!
//! Π_Δ is the Euclidean projection onto the simplex.
//!
//! One Jacobian per step: the engine differentiates one batch, so here J₁ = J₂ = J₃ = J
//! and the λ step uses the Gram matrix JJᵀ — the deterministic (full-batch) form of
//! the algorithm, whose λ-gradient is biased by the batch noise's covariance under
//! mini-batching. Splitting J's columns would not help: the two samples must be
//! independent draws of the data, not two halves of the parameters. A trainer that
//! computes Jacobians on separate batches can call [`MoDo::lambda_step`] with the
//! cross-Gram J₁J₂ᵀ itself and combine J₃ with [`MoDo::lambda`].
//!
//! Defaults (LibMTL's): γ = 1e-3, ρ = 0.1.

use super::sdmgrad::project_simplex;
use crate::gram::Gram;
use crate::solvers::{checked_gram, weighted};
use crate::state;
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{Error, Result};
use tch::Tensor;

/// MoDo (Chen, Fernando, Ying & Chen, NeurIPS 2023).
#[derive(Debug, Clone)]
pub struct MoDo {
    num_tasks: usize,
    gamma: f64,
    rho: f64,
    lambda: Vec<f64>,
    step: u64,
}

impl MoDo {
    /// LibMTL's γ.
    pub const DEFAULT_GAMMA: f64 = 1e-3;
    /// LibMTL's ρ.
    pub const DEFAULT_RHO: f64 = 0.1;

    /// For `num_tasks` (≥ 1) tasks with step γ (finite, > 0) and regulariser ρ
    /// (finite, ≥ 0).
    pub fn new(num_tasks: usize, gamma: f64, rho: f64) -> Result<Self> {
        if num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "modo".into(),
                expected: 0,
                got: 0,
            });
        }
        if !(gamma.is_finite() && gamma > 0.0) {
            return Err(Error::config(format!(
                "modo: gamma must be finite and > 0, got {gamma}"
            )));
        }
        if !(rho.is_finite() && rho >= 0.0) {
            return Err(Error::config(format!(
                "modo: rho must be finite and >= 0, got {rho}"
            )));
        }
        Ok(MoDo {
            num_tasks,
            gamma,
            rho,
            lambda: vec![1.0 / num_tasks as f64; num_tasks],
            step: 0,
        })
    }

    /// The current weights λ (on the simplex).
    pub fn lambda(&self) -> &[f64] {
        &self.lambda
    }

    /// The λ step with the (cross-)Gram matrix `g12` = J₁J₂ᵀ: returns
    /// Π_Δ(λ − γ(g12 λ + ρλ)) without changing the method.
    pub fn lambda_step(&self, g12: &Gram) -> Vec<f64> {
        let k = g12.k();
        let stepped: Vec<f64> = (0..k)
            .map(|i| {
                let g: f64 = (0..k).map(|j| g12.get(i, j) * self.lambda[j]).sum();
                self.lambda[i] - self.gamma * (g + self.rho * self.lambda[i])
            })
            .collect();
        project_simplex(&stepped)
    }
}

impl Aggregator for MoDo {
    fn name(&self) -> &'static str {
        "modo"
    }
    fn num_tasks(&self) -> Option<usize> {
        Some(self.num_tasks)
    }

    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        let gram = checked_gram("modo", jacobian, ctx, Some(self.num_tasks))?;
        let lambda = self.lambda_step(&gram);
        if let Some((task, v)) = lambda.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "modo weight".into(),
                task: Some(task),
                step: Some(ctx.step),
                value: v.to_string(),
            });
        }
        let out = weighted(lambda.clone(), jacobian)?;
        self.lambda = lambda;
        self.step += 1;
        Ok(out)
    }

    /// λ and the step count.
    fn state(&self) -> serde_json::Value {
        state::step_and_vector_json(self.step, "lambda", &self.lambda)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        (self.step, self.lambda) = state::step_and_vector("modo", state, "lambda", self.num_tasks)?;
        Ok(())
    }
}
