//! DualProj: the averaged gradient projected onto the dual cone of the task gradients.
//!
//! The projection is Equation 11 of Lopez-Paz & Ranzato, "Gradient Episodic Memory for
//! Continual Learning", NeurIPS 2017, applied to the mean of the task gradients as in
//! Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", arXiv:2406.16232,
//! 2024 (TorchJD's `DualProj`).
//!
//! Update rule: g = π_C(Jᵀp), C = {x : Jx ≥ 0}, p the preference vector (default 1/K).
//! In weight space g = Jᵀv with v = argmin { vᵀGv : v ≥ p } (G = JJᵀ), one QP on the
//! Gram matrix solved exactly by an active-set method. G is conditioned as in
//! [`UpGrad`](super::UpGrad) (divided by its trace, `reg_eps`·I added). Defaults:
//! p = 1/K, `norm_eps` = 1e-4, `reg_eps` = 1e-4 (TorchJD).

use super::upgrad::{check_eps, pref_or_mean};
use crate::gram::Gram;
use crate::solvers::{
    check_vector, checked_gram, normalize_regularize, project_to_dual_cone, weighted,
};
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::Result;
use tch::Tensor;

/// DualProj with its preference vector and Gram conditioning.
#[derive(Debug, Clone)]
pub struct DualProj {
    pref_vector: Option<Vec<f64>>,
    norm_eps: f64,
    reg_eps: f64,
    num_tasks: Option<usize>,
}

impl Default for DualProj {
    fn default() -> Self {
        DualProj::new()
    }
}

impl DualProj {
    /// The defaults: p = 1/K, `norm_eps` = 1e-4, `reg_eps` = 1e-4; any K.
    pub fn new() -> Self {
        DualProj {
            pref_vector: None,
            norm_eps: 1e-4,
            reg_eps: 1e-4,
            num_tasks: None,
        }
    }
    /// Accepts exactly `num_tasks` rows.
    pub fn for_tasks(num_tasks: usize) -> Self {
        DualProj {
            num_tasks: Some(num_tasks),
            ..DualProj::new()
        }
    }
    /// Projects Jᵀ`pref` instead of the mean (fixes K = `pref.len()`).
    pub fn with_pref_vector(mut self, pref: Vec<f64>) -> Result<Self> {
        check_vector("dualproj pref_vector", &pref, self.num_tasks)?;
        self.num_tasks = Some(pref.len());
        self.pref_vector = Some(pref);
        Ok(self)
    }
    /// Sets `norm_eps` and `reg_eps` (finite, ≥ 0).
    pub fn with_eps(mut self, norm_eps: f64, reg_eps: f64) -> Result<Self> {
        check_eps("dualproj", norm_eps, reg_eps)?;
        self.norm_eps = norm_eps;
        self.reg_eps = reg_eps;
        Ok(self)
    }
    /// The weights w (output = wᵀJ) for the Gram matrix G = JJᵀ.
    pub fn weights(&self, gram: &Gram) -> Result<Vec<f64>> {
        let k = gram.k();
        let pref = pref_or_mean(self.pref_vector.as_deref(), k, "dualproj")?;
        let g = normalize_regularize(gram.as_slice(), k, self.norm_eps, self.reg_eps);
        project_to_dual_cone(&pref, &g)
    }
}

impl Aggregator for DualProj {
    fn name(&self) -> &'static str {
        "dualproj"
    }
    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        let gram = checked_gram("dualproj", jacobian, ctx, self.num_tasks)?;
        weighted(self.weights(&gram)?, jacobian)
    }
}
