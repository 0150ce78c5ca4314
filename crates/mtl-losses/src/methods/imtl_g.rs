//! IMTL-G: the gradient part of impartial multi-task learning.
//!
//! Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, "Towards Impartial Multi-task
//! Learning", ICLR 2021 (IMTL-G, Section 3.2); the generalisation to linearly dependent
//! gradients is the one of Quinton & Rey, "Jacobian Descent for Multi-Objective
//! Optimization", arXiv:2406.16232, 2024 (TorchJD's `IMTLG`).
//!
//! Update rule: find g = Σₖ wₖ gₖ with Σₖ wₖ = 1 whose projections on the unit task
//! gradients uₖ = gₖ/‖gₖ‖ are all equal, ⟨g, uₖ⟩ = const. Two forms, equal when the
//! rows are linearly independent:
//! * [`ImtlGForm::PseudoInverse`] (default; TorchJD): with G = JJᵀ and dₖ = √Gₖₖ,
//!   w = v / Σv for v = G⁺d, and w = 0 when |Σv| < 1e-12. Defined for any rows; the
//!   rank tolerance of G⁺ is K·ε of the Jacobian's dtype (`torch.linalg.pinv`'s).
//! * [`ImtlGForm::ClosedForm`] (the paper's Eq. and LibMTL's `IMTL`): with
//!   D = [g₁ − gₖ]ₖ₌₂..K and U = [u₁ − uₖ]ₖ₌₂..K, (w₂..w_K) = g₁Uᵀ(DUᵀ)⁻¹ and
//!   w₁ = 1 − Σₖ₌₂..K wₖ, evaluated on the Gram matrix. It is undefined for a zero row
//!   or a singular DUᵀ (duplicated rows, K > d + 1); this form then returns an error,
//!   where LibMTL raises or returns NaN.
//!
//! The default is the pseudo-inverse form because it is defined for every Jacobian. No
//! hyper-parameters. (The paper's IMTL-L loss scaling is a loss-level method and not
//! part of this aggregator.)

use crate::gram::Gram;
use crate::solvers::{checked_gram, kind_eps, pinv_sym, solve_lu, weighted};
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{Error, Result};
use tch::Tensor;

/// Which formula computes the IMTL-G weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImtlGForm {
    /// w ∝ G⁺√diag(G) (TorchJD); defined for dependent rows. The default.
    #[default]
    PseudoInverse,
    /// The paper's closed form g₁Uᵀ(DUᵀ)⁻¹ (LibMTL); errors on singular systems.
    ClosedForm,
}

/// IMTL-G.
#[derive(Debug, Clone, Default)]
pub struct ImtlG {
    form: ImtlGForm,
    num_tasks: Option<usize>,
}

impl ImtlG {
    /// The pseudo-inverse form; any K.
    pub fn new() -> Self {
        ImtlG::default()
    }
    /// LibMTL's configuration (the closed form).
    pub fn libmtl() -> Self {
        ImtlG::new().with_form(ImtlGForm::ClosedForm)
    }
    /// Accepts exactly `num_tasks` rows.
    pub fn for_tasks(mut self, num_tasks: usize) -> Self {
        self.num_tasks = Some(num_tasks);
        self
    }
    /// Sets the formula.
    pub fn with_form(mut self, form: ImtlGForm) -> Self {
        self.form = form;
        self
    }
    /// The weights w (output = wᵀJ) from G = JJᵀ; `eps` is the machine epsilon of the
    /// dtype G was computed in (see [`kind_eps`](crate::solvers::kind_eps)).
    pub fn weights(&self, gram: &Gram, eps: f64) -> Result<Vec<f64>> {
        match self.form {
            ImtlGForm::PseudoInverse => pseudo_inverse_weights(gram, eps),
            ImtlGForm::ClosedForm => closed_form_weights(gram),
        }
    }
}

impl Aggregator for ImtlG {
    fn name(&self) -> &'static str {
        "imtl_g"
    }
    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        let gram = checked_gram("imtl_g", jacobian, ctx, self.num_tasks)?;
        weighted(self.weights(&gram, kind_eps(jacobian.kind()))?, jacobian)
    }
}

fn pseudo_inverse_weights(gram: &Gram, eps: f64) -> Result<Vec<f64>> {
    let k = gram.k();
    let d: Vec<f64> = (0..k).map(|i| gram.get(i, i).max(0.0).sqrt()).collect();
    let p = pinv_sym(gram.as_slice(), k, k as f64 * eps)?;
    let v: Vec<f64> = (0..k)
        .map(|i| (0..k).map(|j| p[i * k + j] * d[j]).sum())
        .collect();
    let total: f64 = v.iter().sum();
    if total.abs() < 1e-12 {
        return Ok(vec![0.0; k]);
    }
    Ok(v.iter().map(|x| x / total).collect())
}

fn closed_form_weights(gram: &Gram) -> Result<Vec<f64>> {
    let k = gram.k();
    if k == 1 {
        return Ok(vec![1.0]);
    }
    let norm: Vec<f64> = (0..k).map(|i| gram.get(i, i).max(0.0).sqrt()).collect();
    if let Some(i) = norm.iter().position(|&n| n == 0.0) {
        return Err(Error::config(format!(
            "imtl_g closed form: task {i} has a zero gradient (use the pseudo-inverse form)"
        )));
    }
    // ⟨gᵢ, uⱼ⟩ = Gᵢⱼ / ‖gⱼ‖.
    let gu = |i: usize, j: usize| gram.get(i, j) / norm[j];
    let m = k - 1;
    // (DUᵀ)ₐᵦ = ⟨g₀ − gₐ, u₀ − uᵦ⟩ for a, b = 1..K−1; the solve is for the row vector
    // α with α (DUᵀ) = g₀Uᵀ, i.e. (DUᵀ)ᵀ αᵀ = (g₀Uᵀ)ᵀ.
    let mut a_t = vec![0.0; m * m];
    for a in 1..k {
        for b in 1..k {
            let dut = gu(0, 0) - gu(0, b) - gu(a, 0) + gu(a, b);
            a_t[(b - 1) * m + (a - 1)] = dut;
        }
    }
    let rhs: Vec<f64> = (1..k).map(|b| gu(0, 0) - gu(0, b)).collect();
    let alpha = solve_lu(&a_t, &rhs).map_err(|e| {
        Error::config(format!(
            "imtl_g closed form: {e} (dependent task gradients; use the pseudo-inverse form)"
        ))
    })?;
    let mut w = Vec::with_capacity(k);
    w.push(1.0 - alpha.iter().sum::<f64>());
    w.extend(alpha);
    Ok(w)
}
