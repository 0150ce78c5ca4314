//! CAGrad: conflict-averse gradient descent.
//!
//! Liu, Liu, Jin, Stone & Liu, "Conflict-Averse Gradient Descent for Multi-task
//! Learning", NeurIPS 2021 (Algorithm 1).
//!
//! Update rule: with g₀ = (1/K) Σₖ gₖ, find the direction d maximising the worst task
//! improvement minₖ ⟨gₖ, d⟩ within the ball ‖d − g₀‖ ≤ c‖g₀‖. Its dual is the small
//! problem over the simplex
//!   w* = argmin_{w ∈ Δ} g_wᵀg₀ + √φ ‖g_w‖,  g_w = Jᵀw,  √φ = c‖g₀‖,
//! and d = g₀ + (√φ/‖g_w*‖) g_w*, i.e. weights 1/K + (√φ/‖g_w*‖) w*. Everything is a
//! function of G = JJᵀ.
//!
//! The dual is solved exactly here (the references use approximate solvers: cvxpy
//! CLARABEL, scipy SLSQP). Writing √q = min_{t>0} (q/t + t)/2 turns it, for fixed t,
//! into the min-norm point of the hull of the shifted gradients gₖ + (t/√φ)g₀ (the
//! [`min_norm_simplex`] QP); the optimal t is the root of t = ‖g_w(t)‖, whose sign
//! changes once because the partial minimum over w is convex in t, so bisection finds
//! it to machine precision.
//!
//! Two conventions (both with c = 0.5 in the golden files):
//! * [`CaGradConvention::TorchJd`]: G divided by its trace first (zero when the trace is
//!   below `norm_eps` = 1e-4), d as above with no rescaling, and d = 0 when
//!   ‖g_w*‖ < `norm_eps` (relative to ‖J‖_F: "on the Pareto front").
//! * [`CaGradConvention::LibMtl`] (the official code): raw G, the smoothed objective
//!   g_wᵀg₀ + c′√(‖g_w‖² + 1e-8) with c′ = c√(‖g₀‖² + 1e-8) + 1e-8,
//!   d = g₀ + c′/(‖g_w*‖ + 1e-8) g_w*, then rescaled by 1/(1 + c²) (`rescale` = 1, the
//!   default), 1/(1 + c) (2) or 1 (0). So TorchJD ≈ LibMTL × (1 + c²).
//!
//! Defaults: c = 0.5, the LibMTL/official convention with `rescale` = 1 (the paper's
//! released code and LibMTL's defaults).

use crate::gram::Gram;
use crate::solvers::{checked_gram, min_norm_simplex, weighted};
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{Error, Result};
use tch::Tensor;

/// The final rescaling of the official code / LibMTL (`rescale` 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaGradRescale {
    /// `rescale = 0`: d as is.
    None,
    /// `rescale = 1`: d / (1 + c²). The default.
    OnePlusCSquared,
    /// `rescale = 2`: d / (1 + c).
    OnePlusC,
}

/// Which reference's conventions to follow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CaGradConvention {
    /// TorchJD's `CAGrad(c, norm_eps)`: trace-normalised Gram, zero output near the
    /// Pareto front, no rescaling.
    TorchJd {
        /// Below this, the trace of G, and then ‖g_w*‖ (normalised), count as zero.
        norm_eps: f64,
    },
    /// LibMTL's / the official `CAGrad`: raw Gram, 1e-8 smoothing, then `rescale`.
    LibMtl {
        /// The final rescaling.
        rescale: CaGradRescale,
    },
}

/// CAGrad with radius factor c and a convention.
#[derive(Debug, Clone)]
pub struct CaGrad {
    c: f64,
    convention: CaGradConvention,
    num_tasks: Option<usize>,
}

impl Default for CaGrad {
    fn default() -> Self {
        CaGrad {
            c: 0.5,
            convention: CaGradConvention::LibMtl {
                rescale: CaGradRescale::OnePlusCSquared,
            },
            num_tasks: None,
        }
    }
}

impl CaGrad {
    /// c = 0.5, LibMTL/official convention with rescale 1; any K.
    pub fn new() -> Self {
        CaGrad::default()
    }
    /// TorchJD's convention with radius factor `c` and `norm_eps` = 1e-4.
    pub fn torchjd(c: f64) -> Result<Self> {
        CaGrad::new()
            .with_c(c)?
            .with_convention(CaGradConvention::TorchJd { norm_eps: 1e-4 })
    }
    /// LibMTL's convention with `calpha` = `c` and the given rescaling.
    pub fn libmtl(c: f64, rescale: CaGradRescale) -> Result<Self> {
        CaGrad::new()
            .with_c(c)?
            .with_convention(CaGradConvention::LibMtl { rescale })
    }
    /// Sets c (finite, ≥ 0; c = 0 gives the mean).
    pub fn with_c(mut self, c: f64) -> Result<Self> {
        if !(c.is_finite() && c >= 0.0) {
            return Err(Error::config(format!(
                "cagrad: c must be finite and >= 0, got {c}"
            )));
        }
        self.c = c;
        Ok(self)
    }
    /// Sets the convention.
    pub fn with_convention(mut self, convention: CaGradConvention) -> Result<Self> {
        if let CaGradConvention::TorchJd { norm_eps } = convention {
            if !(norm_eps.is_finite() && norm_eps >= 0.0) {
                return Err(Error::config(format!(
                    "cagrad: norm_eps must be finite and >= 0, got {norm_eps}"
                )));
            }
        }
        self.convention = convention;
        Ok(self)
    }
    /// Accepts exactly `num_tasks` rows.
    pub fn for_tasks(mut self, num_tasks: usize) -> Self {
        self.num_tasks = Some(num_tasks);
        self
    }

    /// The weights (output = wᵀJ) from G = JJᵀ: [`CaGrad::dual`] then
    /// [`CaGrad::weights_from_dual`].
    pub fn weights(&self, gram: &Gram) -> Result<Vec<f64>> {
        let w = self.dual(gram)?;
        Ok(self.weights_from_dual(gram, &w))
    }

    /// The exact solution w* of the dual problem over the simplex, in this
    /// convention (TorchJD: on the trace-normalised G; LibMTL: the smoothed objective).
    pub fn dual(&self, gram: &Gram) -> Result<Vec<f64>> {
        let k = gram.k();
        let g = self.convention_gram(gram);
        let (phi, eps) = self.phi_eps(&g, k);
        solve_dual(&g, k, phi, eps)
    }

    /// The dual objective at w (`w` on the simplex), in this convention: for comparing
    /// solutions of the dual.
    pub fn dual_objective(&self, gram: &Gram, w: &[f64]) -> f64 {
        let k = gram.k();
        let g = self.convention_gram(gram);
        let (phi, eps) = self.phi_eps(&g, k);
        let b_w: f64 = (0..k)
            .map(|i| w[i] * (0..k).map(|j| g[i * k + j]).sum::<f64>() / k as f64)
            .sum();
        b_w + phi * (quad(&g, k, w).max(0.0) + eps).sqrt()
    }

    /// The final weights from a dual solution `w` (any solver's), in this convention.
    pub fn weights_from_dual(&self, gram: &Gram, w: &[f64]) -> Vec<f64> {
        let k = gram.k();
        let kf = k as f64;
        let g = self.convention_gram(gram);
        let (phi, _) = self.phi_eps(&g, k);
        let gw_norm = quad(&g, k, w).max(0.0).sqrt();
        match self.convention {
            CaGradConvention::TorchJd { norm_eps } => {
                if gw_norm >= norm_eps && gw_norm > 0.0 {
                    w.iter().map(|x| 1.0 / kf + phi / gw_norm * x).collect()
                } else {
                    vec![0.0; k]
                }
            }
            CaGradConvention::LibMtl { rescale } => {
                let lambda = phi / (gw_norm + 1e-8);
                let scale = match rescale {
                    CaGradRescale::None => 1.0,
                    CaGradRescale::OnePlusCSquared => 1.0 + self.c * self.c,
                    CaGradRescale::OnePlusC => 1.0 + self.c,
                };
                w.iter().map(|x| (1.0 / kf + lambda * x) / scale).collect()
            }
        }
    }

    /// The Gram matrix the convention works on.
    fn convention_gram(&self, gram: &Gram) -> Vec<f64> {
        let k = gram.k();
        match self.convention {
            CaGradConvention::TorchJd { norm_eps } => {
                let trace: f64 = (0..k).map(|i| gram.get(i, i)).sum();
                if trace < norm_eps {
                    vec![0.0; k * k]
                } else {
                    gram.as_slice().iter().map(|v| v / trace).collect()
                }
            }
            CaGradConvention::LibMtl { .. } => gram.as_slice().to_vec(),
        }
    }

    /// (√φ, smoothing ε) of the dual objective bᵀw + √φ·√(wᵀGw + ε).
    fn phi_eps(&self, g: &[f64], k: usize) -> (f64, f64) {
        match self.convention {
            CaGradConvention::TorchJd { .. } => (self.c * mean_norm2(g, k).max(0.0).sqrt(), 0.0),
            CaGradConvention::LibMtl { .. } => {
                (self.c * (mean_norm2(g, k) + 1e-8).sqrt() + 1e-8, 1e-8)
            }
        }
    }
}

impl Aggregator for CaGrad {
    fn name(&self) -> &'static str {
        "cagrad"
    }
    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        let gram = checked_gram("cagrad", jacobian, ctx, self.num_tasks)?;
        weighted(self.weights(&gram)?, jacobian)
    }
}

/// ‖g₀‖² = 1ᵀG1 / K².
fn mean_norm2(g: &[f64], k: usize) -> f64 {
    g.iter().sum::<f64>() / (k * k) as f64
}

/// wᵀGw.
fn quad(g: &[f64], k: usize, w: &[f64]) -> f64 {
    (0..k)
        .map(|i| w[i] * (0..k).map(|j| g[i * k + j] * w[j]).sum::<f64>())
        .sum()
}

/// argmin over the simplex of bᵀw + φ√(wᵀGw + ε), b = G1/K (so bᵀw = ⟨g_w, g₀⟩).
///
/// For t > 0, φ√(q + ε) ≤ φ(q + ε + t²)/(2t) with equality at t = √(q + ε); for fixed
/// t the w-problem is the min-norm point of the rows shifted by s·g₀, s = t/φ, whose
/// Gram matrix is G + s(b1ᵀ + 1bᵀ) + s²‖g₀‖²11ᵀ. The optimal s is where
/// r(s) = sφ − √(q(w(s)) + ε) changes sign (r has the sign of the derivative of the
/// convex partial minimum), found by bisection.
fn solve_dual(g: &[f64], k: usize, phi: f64, eps: f64) -> Result<Vec<f64>> {
    let kf = k as f64;
    let b: Vec<f64> = (0..k)
        .map(|i| (0..k).map(|j| g[i * k + j]).sum::<f64>() / kf)
        .collect();
    if phi <= 0.0 {
        // A linear objective: every minimiser of b is optimal; take the uniform mix of
        // them, as an interior-point solver does.
        let lo = b.iter().copied().fold(f64::INFINITY, f64::min);
        let tol = 1e-12 * b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let n = b.iter().filter(|&&v| v <= lo + tol).count() as f64;
        return Ok(b
            .iter()
            .map(|&v| if v <= lo + tol { 1.0 / n } else { 0.0 })
            .collect());
    }
    let q0 = mean_norm2(g, k);
    let shifted = |s: f64| -> Result<Vec<f64>> {
        let gs: Vec<f64> = (0..k * k)
            .map(|idx| {
                let (i, j) = (idx / k, idx % k);
                g[idx] + s * (b[i] + b[j]) + s * s * q0
            })
            .collect();
        min_norm_simplex(&gs, k)
    };
    let residual = |s: f64, w: &[f64]| s * phi - (quad(g, k, w).max(0.0) + eps).sqrt();
    let max_norm2 = (0..k).fold(0.0f64, |m, i| m.max(g[i * k + i]));
    // ‖g_w‖ ≤ max‖gₖ‖, so r > 0 beyond this.
    let mut hi = 2.0 * (max_norm2 + eps).sqrt() / phi;
    let mut lo = 0.0f64;
    let mut w_lo = shifted(lo)?;
    if residual(lo, &w_lo) >= 0.0 {
        // The optimum is at g_w = 0 (0 in the hull, no smoothing).
        return Ok(w_lo);
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        let w = shifted(mid)?;
        if residual(mid, &w) < 0.0 {
            lo = mid;
            w_lo = w;
        } else {
            hi = mid;
        }
    }
    Ok(w_lo)
}
