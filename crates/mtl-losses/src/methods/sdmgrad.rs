//! SDMGrad: stochastic direction-oriented multi-objective gradient descent — MGDA's
//! min-norm weights regularised towards the average gradient, found by a few
//! projected-gradient steps on the simplex warm-started from the last step.
//!
//! Reference: Peiyao Xiao, Hao Ban and Kaiyi Ji, "Direction-oriented Multi-objective
//! Learning: Simple and Provable Stochastic Algorithms", NeurIPS 2023
//! (arXiv:2305.18409), Algorithm 1; LibMTL's `SDMGrad` (from the authors' code) for
//! the normalisation, the inner optimiser and the defaults.
//!
//! Update rule, with G = JJᵀ, weights w on the simplex (init 1/K, kept between steps):
//!
//! ```text
//! s = mean_k √max(Gₖₖ, 0),  Ĝ = G / (s² + 1e-8),  b = Ĝ1/K     (so bᵀw = ⟨g_w, g₀⟩)
//! niter times:  ∇ = Ĝw + λb       (half the gradient of ‖g_w + λg₀‖², normalised)
//!               m ← μm + ∇ (m = ∇ at the first iteration),  w ← Π_Δ(w − η m)
//! output        (g_w + λg₀)/(1 + λ) = Σₖ (wₖ + λ/K)/(1 + λ) gₖ
//! ```
//!
//! λ → 0 is MGDA's min-norm direction, λ → ∞ the average gradient g₀. The momentum
//! buffer m starts afresh each step (LibMTL builds a new SGD optimiser per step); Π_Δ
//! is the Euclidean projection onto the simplex.
//!
//! The paper's stochastic algorithm uses three independent mini-batches per step (ζ
//! for the output, ξ₁ and ξ₂ for Ĝ = J_{ξ₁}J_{ξ₂}ᵀ, an unbiased estimate of the Gram
//! matrix). The engine computes one Jacobian per step, so here ζ = ξ₁ = ξ₂: the
//! full-batch (deterministic) form of the update; with one batch Ĝ is biased by the
//! batch noise's covariance. [`SdmGrad::weights_from`] takes any Ĝ (e.g. a cross-Gram
//! J₁J₂ᵀ of two batches) for a caller that has independent samples. There is no
//! randomness: the output is a function of the Jacobians seen, so the seed is unused.
//!
//! Defaults (LibMTL's and the authors'): λ = 0.3, niter = 20, η = 5, μ = 0.5 (SGD with
//! momentum on the halved objective; the authors' step 10 on the full one).

use crate::gram::Gram;
use crate::solvers::{checked_gram, weighted};
use crate::state;
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{Error, Result};
use tch::Tensor;

/// SDMGrad's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SdmGradConfig {
    /// λ, the pull towards the average gradient (≥ 0).
    pub lambda: f64,
    /// The projected-gradient iterations per step.
    pub niter: usize,
    /// η, the inner step size (> 0).
    pub lr: f64,
    /// μ, the inner momentum (in [0, 1)).
    pub momentum: f64,
}

impl Default for SdmGradConfig {
    fn default() -> Self {
        SdmGradConfig {
            lambda: 0.3,
            niter: 20,
            lr: 5.0,
            momentum: 0.5,
        }
    }
}

/// SDMGrad (Xiao, Ban & Ji, NeurIPS 2023).
#[derive(Debug, Clone)]
pub struct SdmGrad {
    num_tasks: usize,
    config: SdmGradConfig,
    /// The inner weights w on the simplex (warm start of the next step).
    w: Vec<f64>,
    step: u64,
}

impl SdmGrad {
    /// For `num_tasks` (≥ 1) tasks with the given hyper-parameters.
    pub fn with_config(num_tasks: usize, config: SdmGradConfig) -> Result<Self> {
        if num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "sdmgrad".into(),
                expected: 0,
                got: 0,
            });
        }
        if !(config.lambda.is_finite() && config.lambda >= 0.0) {
            return Err(Error::config(format!(
                "sdmgrad: lambda must be finite and >= 0, got {}",
                config.lambda
            )));
        }
        if !(config.lr.is_finite() && config.lr > 0.0) {
            return Err(Error::config(format!(
                "sdmgrad: lr must be finite and > 0, got {}",
                config.lr
            )));
        }
        if !(0.0..1.0).contains(&config.momentum) {
            return Err(Error::config(format!(
                "sdmgrad: momentum must be in [0, 1), got {}",
                config.momentum
            )));
        }
        Ok(SdmGrad {
            num_tasks,
            config,
            w: vec![1.0 / num_tasks as f64; num_tasks],
            step: 0,
        })
    }

    /// For `num_tasks` (≥ 1) tasks with the defaults.
    pub fn new(num_tasks: usize) -> Result<Self> {
        SdmGrad::with_config(num_tasks, SdmGradConfig::default())
    }

    /// The inner weights w (on the simplex) the next step starts from.
    pub fn inner_weights(&self) -> &[f64] {
        &self.w
    }

    /// The inner loop from `w0` on the (already normalised) matrix `gg` (K × K,
    /// row-major; J_{ξ₁}J_{ξ₂}ᵀ / s² in the paper): returns the new inner weights.
    pub fn weights_from(&self, gg: &[f64], w0: &[f64]) -> Vec<f64> {
        let k = w0.len();
        let kf = k as f64;
        let b: Vec<f64> = (0..k)
            .map(|i| (0..k).map(|j| gg[i * k + j]).sum::<f64>() / kf)
            .collect();
        let mut w = w0.to_vec();
        let mut m: Option<Vec<f64>> = None;
        for _ in 0..self.config.niter {
            let grad: Vec<f64> = (0..k)
                .map(|i| {
                    (0..k).map(|j| gg[i * k + j] * w[j]).sum::<f64>() + self.config.lambda * b[i]
                })
                .collect();
            let buf = match m {
                None => grad,
                Some(prev) => prev
                    .iter()
                    .zip(&grad)
                    .map(|(p, g)| self.config.momentum * p + g)
                    .collect(),
            };
            let stepped: Vec<f64> = w
                .iter()
                .zip(&buf)
                .map(|(w, m)| w - self.config.lr * m)
                .collect();
            w = project_simplex(&stepped);
            m = Some(buf);
        }
        w
    }

    /// The normalised Gram matrix Ĝ = G/(s² + 1e-8), s the mean row norm.
    pub fn normalized_gram(gram: &Gram) -> Vec<f64> {
        let k = gram.k();
        let s = (0..k).map(|i| gram.get(i, i).max(0.0).sqrt()).sum::<f64>() / k as f64;
        let d = s * s + 1e-8;
        gram.as_slice().iter().map(|v| v / d).collect()
    }

    /// The output weights on the rows, (wₖ + λ/K)/(1 + λ), for inner weights `w`.
    pub fn output_weights(&self, w: &[f64]) -> Vec<f64> {
        let (l, kf) = (self.config.lambda, w.len() as f64);
        w.iter().map(|w| (w + l / kf) / (1.0 + l)).collect()
    }
}

/// The Euclidean projection onto the probability simplex (sort-based; a point already
/// on it is returned unchanged, as LibMTL does).
pub(crate) fn project_simplex(v: &[f64]) -> Vec<f64> {
    if v.iter().all(|x| *x >= 0.0) && v.iter().sum::<f64>() == 1.0 {
        return v.to_vec();
    }
    let mut u = v.to_vec();
    u.sort_by(|a, b| b.total_cmp(a));
    let mut cumsum = 0.0;
    let mut theta = 0.0;
    for (i, ui) in u.iter().enumerate() {
        cumsum += ui;
        let t = (cumsum - 1.0) / (i + 1) as f64;
        if ui - t > 0.0 {
            theta = t;
        }
    }
    v.iter().map(|x| (x - theta).max(0.0)).collect()
}

impl Aggregator for SdmGrad {
    fn name(&self) -> &'static str {
        "sdmgrad"
    }
    fn num_tasks(&self) -> Option<usize> {
        Some(self.num_tasks)
    }

    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        let gram = checked_gram("sdmgrad", jacobian, ctx, Some(self.num_tasks))?;
        let gg = SdmGrad::normalized_gram(&gram);
        let w = self.weights_from(&gg, &self.w);
        if let Some((task, v)) = w.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "sdmgrad inner weight".into(),
                task: Some(task),
                step: Some(ctx.step),
                value: v.to_string(),
            });
        }
        let out = weighted(self.output_weights(&w), jacobian)?;
        self.w = w;
        self.step += 1;
        Ok(out)
    }

    /// The inner weights and the step count.
    fn state(&self) -> serde_json::Value {
        state::step_and_vector_json(self.step, "w", &self.w)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        (self.step, self.w) = state::step_and_vector("sdmgrad", state, "w", self.num_tasks)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::project_simplex;

    #[test]
    fn simplex_projection() {
        assert_eq!(project_simplex(&[0.25, 0.75]), vec![0.25, 0.75]);
        let p = project_simplex(&[-0.9444, -5.2778]);
        assert!((p[0] - 1.0).abs() < 1e-15 && p[1] == 0.0);
        let p = project_simplex(&[0.7, 0.6, -1.0]);
        assert!((p[0] - 0.55).abs() < 1e-15 && (p[1] - 0.45).abs() < 1e-15 && p[2] == 0.0);
        let p = project_simplex(&[1.0, 1.0, 1.0]);
        assert!(p.iter().all(|x| (x - 1.0 / 3.0).abs() < 1e-15));
    }
}
