//! ConFIG: conflict-free training by a common unit direction.
//!
//! Liu, Chu, Thuerey, "ConFIG: Towards Conflict-free Training of Physics Informed
//! Neural Networks", arXiv:2408.11104, 2024 (Equation 2; TorchJD's `ConFIG`).
//!
//! Update rule: with unit gradients uₖ = gₖ/‖gₖ‖ (a zero row gives uₖ = 0) and the
//! preference vector p (default 1), the direction x = U⁺p (U the K×d matrix of the
//! uₖ; the minimum-norm x with ⟨x, uₖ⟩ = pₖ, i.e. the same cosine with every task when
//! p = 1), then g = (Σₖ ⟨gₖ, x̂⟩) x̂ with x̂ = x / max(‖x‖, 1e-12). Since
//! U⁺ = Uᵀ(UUᵀ)⁺, x = Σₖ (cₖ/‖gₖ‖) gₖ with c = G_u⁺p, G_u = D⁻¹GD⁻¹ (D = diag ‖gₖ‖),
//! so everything is a function of G = JJᵀ and the output is wᵀJ.
//!
//! The pseudo-inverse treats eigenvalues of G_u below max(K, d)·ε·λ_max as zero
//! (ε: the dtype's epsilon). TorchJD instead thresholds the singular values of U at
//! max(K, d)·ε·σ_max; the two agree for exactly dependent rows (duplicates, K > d) and
//! well-conditioned ones, and differ only for rows dependent to within ~1e-7, whose
//! Gram cannot resolve the difference. No hyper-parameters besides p.

use crate::gram::Gram;
use crate::solvers::{check_vector, checked_gram, kind_eps, pinv_sym, weighted};
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{Error, Result};
use tch::Tensor;

/// ConFIG.
#[derive(Debug, Clone, Default)]
pub struct ConFig {
    pref_vector: Option<Vec<f64>>,
    num_tasks: Option<usize>,
}

impl ConFig {
    /// p = 1; any K.
    pub fn new() -> Self {
        ConFig::default()
    }
    /// Accepts exactly `num_tasks` rows.
    pub fn for_tasks(mut self, num_tasks: usize) -> Self {
        self.num_tasks = Some(num_tasks);
        self
    }
    /// Uses preference vector `pref` (fixes K = `pref.len()`).
    pub fn with_pref_vector(mut self, pref: Vec<f64>) -> Result<Self> {
        check_vector("config pref_vector", &pref, self.num_tasks)?;
        self.num_tasks = Some(pref.len());
        self.pref_vector = Some(pref);
        Ok(self)
    }

    /// The weights (output = wᵀJ) from G = JJᵀ; eigenvalues of the normalised Gram at or
    /// below `rank_rtol`·λ_max count as zero.
    pub fn weights(&self, gram: &Gram, rank_rtol: f64) -> Result<Vec<f64>> {
        let k = gram.k();
        let p = match &self.pref_vector {
            Some(p) if p.len() != k => {
                return Err(Error::TaskCount {
                    context: "config pref_vector".into(),
                    expected: p.len(),
                    got: k,
                })
            }
            Some(p) => p.clone(),
            None => vec![1.0; k],
        };
        let norm: Vec<f64> = (0..k).map(|i| gram.get(i, i).max(0.0).sqrt()).collect();
        let inv = |i: usize| if norm[i] > 0.0 { 1.0 / norm[i] } else { 0.0 };
        let gu: Vec<f64> = (0..k * k)
            .map(|idx| gram.as_slice()[idx] * inv(idx / k) * inv(idx % k))
            .collect();
        let pinv = pinv_sym(&gu, k, rank_rtol)?;
        // a = D⁻¹ G_u⁺ p: the direction x = Jᵀa.
        let a: Vec<f64> = (0..k)
            .map(|i| inv(i) * (0..k).map(|j| pinv[i * k + j] * p[j]).sum::<f64>())
            .collect();
        let ga: Vec<f64> = (0..k)
            .map(|i| (0..k).map(|j| gram.get(i, j) * a[j]).sum())
            .collect();
        let x_norm = a
            .iter()
            .zip(&ga)
            .map(|(x, y)| x * y)
            .sum::<f64>()
            .max(0.0)
            .sqrt();
        let denom = x_norm.max(1e-12);
        // g = (1ᵀJx̂) x̂ = (1ᵀGa / denom²) Jᵀa.
        let length = ga.iter().sum::<f64>() / (denom * denom);
        Ok(a.iter().map(|x| x * length).collect())
    }
}

impl Aggregator for ConFig {
    fn name(&self) -> &'static str {
        "config"
    }
    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        let gram = checked_gram("config", jacobian, ctx, self.num_tasks)?;
        let size = jacobian.size();
        let rtol = size[0].max(size[1]) as f64 * kind_eps(jacobian.kind());
        weighted(self.weights(&gram, rtol)?, jacobian)
    }
}
