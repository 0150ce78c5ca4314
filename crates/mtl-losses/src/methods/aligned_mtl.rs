//! Aligned-MTL: aligning the principal components of the task gradients.
//!
//! Senushkin, Patakin, Kuznetsov & Konushin, "Independent Component Alignment for
//! Multi-Task Learning", CVPR 2023 (Algorithm 1).
//!
//! Update rule: make the system of task gradients well conditioned before combining
//! it. With the eigendecomposition G = JJᵀ = VΛVᵀ restricted to the R eigenvalues above
//! the rank tolerance λ_max·K·ε (ε: machine epsilon of the Jacobian's dtype), the
//! balance transformation is B = √σ · V_R Λ_R^{-1/2} V_Rᵀ, with σ the smallest kept
//! eigenvalue (`min`, the paper), their median (`median`, the lower one for an even
//! count, as `torch.median`) or mean (`rmse`). The aligned gradient is g = Jᵀ(Bp): the
//! rows of BJ have equal norms along the principal directions, and p is the preference
//! vector. When every eigenvalue is below the tolerance (J = 0), B = I.
//!
//! The two references differ only in p: the official code and LibMTL's `Aligned_MTL`
//! use p = 1 (`B.sum(0)`), TorchJD's `AlignedMTL` uses p = 1/K, so their outputs differ
//! by the factor K. Defaults: p = 1 (the authors' code), `min` scaling.

use crate::gram::Gram;
use crate::solvers::{check_vector, checked_gram, kind_eps, sym_eigen, weighted};
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{Error, Result};
use tch::Tensor;

/// Which eigenvalue sets the scale σ of the balance transformation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlignedScale {
    /// The smallest kept eigenvalue (the paper). The default.
    #[default]
    Min,
    /// The median kept eigenvalue (lower median).
    Median,
    /// The mean kept eigenvalue (TorchJD's "rmse").
    Rmse,
}

/// The preference vector p that combines the aligned gradients.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum AlignedPreference {
    /// p = 1 (official code, LibMTL). The default.
    #[default]
    Sum,
    /// p = 1/K (TorchJD).
    Mean,
    /// A given vector (fixes K).
    Vector(Vec<f64>),
}

/// Aligned-MTL.
#[derive(Debug, Clone, Default)]
pub struct AlignedMtl {
    preference: AlignedPreference,
    scale: AlignedScale,
    num_tasks: Option<usize>,
}

impl AlignedMtl {
    /// p = 1, `min` scaling; any K.
    pub fn new() -> Self {
        AlignedMtl::default()
    }
    /// TorchJD's configuration: p = 1/K, `min` scaling.
    pub fn torchjd() -> Self {
        AlignedMtl {
            preference: AlignedPreference::Mean,
            ..AlignedMtl::default()
        }
    }
    /// Accepts exactly `num_tasks` rows.
    pub fn for_tasks(mut self, num_tasks: usize) -> Self {
        self.num_tasks = Some(num_tasks);
        self
    }
    /// Sets the preference vector (a given vector must be finite; it fixes K).
    pub fn with_preference(mut self, preference: AlignedPreference) -> Result<Self> {
        if let AlignedPreference::Vector(v) = &preference {
            check_vector("aligned_mtl preference vector", v, self.num_tasks)?;
            self.num_tasks = Some(v.len());
        }
        self.preference = preference;
        Ok(self)
    }
    /// Sets the scaling mode.
    pub fn with_scale(mut self, scale: AlignedScale) -> Self {
        self.scale = scale;
        self
    }

    /// The weights Bp (output = wᵀJ) from G = JJᵀ; `eps` is the machine epsilon of the
    /// dtype G was computed in (see [`kind_eps`](crate::solvers::kind_eps)).
    pub fn weights(&self, gram: &Gram, eps: f64) -> Result<Vec<f64>> {
        let k = gram.k();
        let p = match &self.preference {
            AlignedPreference::Sum => vec![1.0; k],
            AlignedPreference::Mean => vec![1.0 / k as f64; k],
            AlignedPreference::Vector(v) if v.len() == k => v.clone(),
            AlignedPreference::Vector(v) => {
                return Err(Error::TaskCount {
                    context: "aligned_mtl preference vector".into(),
                    expected: v.len(),
                    got: k,
                })
            }
        };
        let e = sym_eigen(gram.as_slice(), k)?;
        let lambda_max = e.values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let tol = lambda_max * k as f64 * eps;
        // Eigenvalues come ascending; keep those above the tolerance.
        let kept: Vec<usize> = (0..k).filter(|&i| e.values[i] > tol).collect();
        if kept.is_empty() {
            return Ok(p);
        }
        let mut lams: Vec<f64> = kept.iter().map(|&i| e.values[i]).collect();
        lams.sort_by(|a, b| a.total_cmp(b));
        let sigma = match self.scale {
            AlignedScale::Min => lams[0],
            AlignedScale::Median => lams[(lams.len() - 1) / 2],
            AlignedScale::Rmse => lams.iter().sum::<f64>() / lams.len() as f64,
        };
        // w = √σ Σ_r v_r (v_rᵀp) / √λ_r.
        let mut w = vec![0.0; k];
        for &r in &kept {
            let coef = (0..k).map(|i| e.vector(i, r) * p[i]).sum::<f64>() / e.values[r].sqrt();
            for (i, wi) in w.iter_mut().enumerate() {
                *wi += coef * e.vector(i, r);
            }
        }
        let s = sigma.sqrt();
        Ok(w.iter().map(|x| x * s).collect())
    }
}

impl Aggregator for AlignedMtl {
    fn name(&self) -> &'static str {
        "aligned_mtl"
    }
    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        let gram = checked_gram("aligned_mtl", jacobian, ctx, self.num_tasks)?;
        weighted(self.weights(&gram, kind_eps(jacobian.kind()))?, jacobian)
    }
}
