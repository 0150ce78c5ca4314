//! UPGrad: unconflicting projection of gradients.
//!
//! Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", arXiv:2406.16232,
//! 2024 (the aggregator 𝒜_UPGrad of Section 4; TorchJD's `UPGrad`, LibMTL's `UPGrad`).
//!
//! Update rule: project each row gᵢ onto the dual cone C = {x : ⟨x, gⱼ⟩ ≥ 0 ∀j} of the
//! rows and combine the projections with the preference vector p (default 1/K):
//! g = Σᵢ pᵢ π_C(gᵢ). By the paper's Proposition 1, π_C(Jᵀu) = Jᵀv with
//! v = argmin { vᵀGv : v ≥ u }, G = JJᵀ, so the weights are w = Σᵢ argmin_{v ≥ pᵢeᵢ} vᵀGv
//! and the output is wᵀJ: K small QPs on the Gram matrix, solved exactly here by an
//! active-set method (the references use quadprog, also exact).
//!
//! As TorchJD, G is first divided by its trace (zeroed when the trace is below
//! `norm_eps`) and `reg_eps`·I is added, which makes the QPs strictly convex.
//! Defaults: p = 1/K, `norm_eps` = 1e-4, `reg_eps` = 1e-4 (TorchJD and LibMTL). The
//! regularisation means the output can conflict slightly with rows much smaller than
//! ‖J‖_F (see the golden README); `reg_eps` = 0 gives the exact projection.

use crate::gram::Gram;
use crate::solvers::{
    check_vector, checked_gram, normalize_regularize, project_to_dual_cone, weighted,
};
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{Error, Result};
use tch::Tensor;

/// UPGrad with its preference vector and Gram conditioning.
#[derive(Debug, Clone)]
pub struct UpGrad {
    pref_vector: Option<Vec<f64>>,
    norm_eps: f64,
    reg_eps: f64,
    num_tasks: Option<usize>,
}

impl Default for UpGrad {
    fn default() -> Self {
        UpGrad::new()
    }
}

impl UpGrad {
    /// The defaults: p = 1/K, `norm_eps` = 1e-4, `reg_eps` = 1e-4; any K.
    pub fn new() -> Self {
        UpGrad {
            pref_vector: None,
            norm_eps: 1e-4,
            reg_eps: 1e-4,
            num_tasks: None,
        }
    }
    /// Accepts exactly `num_tasks` rows.
    pub fn for_tasks(num_tasks: usize) -> Self {
        UpGrad {
            num_tasks: Some(num_tasks),
            ..UpGrad::new()
        }
    }
    /// Combines the projected rows with `pref` instead of 1/K (fixes K = `pref.len()`).
    pub fn with_pref_vector(mut self, pref: Vec<f64>) -> Result<Self> {
        check_vector("upgrad pref_vector", &pref, self.num_tasks)?;
        self.num_tasks = Some(pref.len());
        self.pref_vector = Some(pref);
        Ok(self)
    }
    /// Sets `norm_eps` and `reg_eps` (finite, ≥ 0).
    pub fn with_eps(mut self, norm_eps: f64, reg_eps: f64) -> Result<Self> {
        check_eps("upgrad", norm_eps, reg_eps)?;
        self.norm_eps = norm_eps;
        self.reg_eps = reg_eps;
        Ok(self)
    }
    /// The weights w (output = wᵀJ) for the Gram matrix G = JJᵀ.
    pub fn weights(&self, gram: &Gram) -> Result<Vec<f64>> {
        let k = gram.k();
        let pref = pref_or_mean(self.pref_vector.as_deref(), k, "upgrad")?;
        let g = normalize_regularize(gram.as_slice(), k, self.norm_eps, self.reg_eps);
        let mut w = vec![0.0; k];
        for (i, &p) in pref.iter().enumerate() {
            if p == 0.0 {
                continue;
            }
            let mut u = vec![0.0; k];
            u[i] = p;
            for (wj, vj) in w.iter_mut().zip(project_to_dual_cone(&u, &g)?) {
                *wj += vj;
            }
        }
        Ok(w)
    }
}

impl Aggregator for UpGrad {
    fn name(&self) -> &'static str {
        "upgrad"
    }
    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        let gram = checked_gram("upgrad", jacobian, ctx, self.num_tasks)?;
        weighted(self.weights(&gram)?, jacobian)
    }
}

/// The preference vector, or 1/K; errors when its length is not K.
pub(crate) fn pref_or_mean(pref: Option<&[f64]>, k: usize, context: &str) -> Result<Vec<f64>> {
    match pref {
        Some(p) if p.len() != k => Err(Error::TaskCount {
            context: format!("{context} pref_vector"),
            expected: p.len(),
            got: k,
        }),
        Some(p) => Ok(p.to_vec()),
        None => Ok(vec![1.0 / k as f64; k]),
    }
}

/// Checks the Gram conditioning constants.
pub(crate) fn check_eps(context: &str, norm_eps: f64, reg_eps: f64) -> Result<()> {
    if !(norm_eps >= 0.0 && norm_eps.is_finite() && reg_eps >= 0.0 && reg_eps.is_finite()) {
        return Err(Error::config(format!(
            "{context}: norm_eps and reg_eps must be finite and >= 0 (got {norm_eps}, {reg_eps})"
        )));
    }
    Ok(())
}
