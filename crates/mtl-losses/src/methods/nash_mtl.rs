//! Nash-MTL: the update as the Nash bargaining solution of the tasks, whose weights
//! solve Gα = 1/α.
//!
//! Reference: Aviv Navon, Aviv Shamsian, Idan Achituve, Haggai Maron, Kenji Kawaguchi,
//! Gal Chechik and Ethan Fetaya, "Multi-Task Learning as a Bargaining Game", ICML 2022
//! (arXiv:2202.01017), Algorithm 1 and its sequence of convex problems; the
//! official code, as adapted by LibMTL's `Nash_MTL` and TorchJD's `NashMTL`.
//!
//! Update rule: with G = JJᵀ, the bargaining solution is Δ = Σₖ αₖ gₖ with α > 0 solving
//! (Gα)ₖ = 1/αₖ for every k: each task's directional derivative ⟨gₖ, Δ⟩ is inversely
//! proportional to its weight. It is approached, as in the official code, by a sequence
//! of convex problems on the normalised Gram matrix Ĝ = G/‖G‖_F with n = ‖G‖_F:
//!
//! ```text
//! α⁰ = the previous step's α (ones at the first step)
//! repeat at most `optim_niter` (20) times, from a = αᵗ:
//!     p = 1/a + Ĝ (1/(Ĝa))                           (∇ of φ(α) = Σ log αₖ + log (Ĝα)ₖ at a)
//!     α* = argmin_α  1ᵀĜα + pᵀ(α − a)/n
//!          s.t.      log(αₖ n) + log((Ĝα)ₖ) ≥ 0,  α ≥ 0
//!     stop (keeping a) if ‖Ĝa − 1/(a + 1e-10)‖ < 1e-3 or ‖α* − a‖ < 1e-6
//!     or the problem has no solution; else αᵗ⁺¹ = α*
//! Δ = Σₖ αₖ gₖ, rescaled to norm `max_norm` (1) when longer
//! ```
//!
//! Each convex problem (a linear objective under the constraints αₖ(Gα)ₖ ≥ 1, a rotated
//! second-order cone in (αₖ, (Gα)ₖ)) is solved here in f64 by a log-barrier
//! interior-point method with Newton centring on −Σₖ log(αₖ(Ĝα)ₖ − 1/n), to a duality
//! gap of 1e-10 relative, where the references call ECOS through cvxpy. A problem that is
//! infeasible or unbounded, or whose data is not finite (a zero row: (Ĝa)ₖ = 0; rows
//! summing to zero), ends the sequence with the current α, which is what the references
//! do when ECOS fails. In particular identical rows stop at once at α = 1 (Ĝ1 = 1), and a
//! zero row keeps α = 1. The weights are re-solved every `update_weights_every` steps and
//! reused in between. The reported weights are the effective ones after the norm clip
//! (TorchJD's convention); the α of the solve are [`NashMtl::alpha`]. LibMTL differs by
//! casting α to f32 and clipping with max_norm/(‖Δ‖ + 1e-6), both below the golden
//! tolerance.
//!
//! Defaults: `max_norm` = 1, `update_weights_every` = 1, `optim_niter` = 20 (the
//! official code's, LibMTL's and TorchJD's).
//!
//! # Example
//!
//! ```
//! use mtl_losses::methods::NashMtl;
//! use mtl_losses::{Aggregator, StepContext};
//! use tch::Tensor;
//!
//! // Orthogonal gradients of norms 1 and 2: Gα = 1/α gives α = (1, 1/2), so both
//! // tasks get the same directional derivative ⟨gₖ, Δ⟩ = 1 (before the norm clip).
//! let mut nash = NashMtl::new(2);
//! let j = Tensor::from_slice(&[1.0f64, 0.0, 0.0, 2.0]).view([2, 2]);
//! nash.aggregate(&j, &StepContext::default()).unwrap();
//! let a = nash.alpha();
//! assert!((a[0] / a[1] - 2.0).abs() < 1e-3);
//! ```

use crate::solvers::{checked_gram, min_norm_simplex, solve_spd, weighted};
use crate::state;
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{Error, Result};
use tch::Tensor;

/// Nash-MTL's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NashMtlConfig {
    /// The largest norm of the output (≤ 0: no clipping).
    pub max_norm: f64,
    /// Re-solve the weights every this many steps (≥ 1), reusing them in between.
    pub update_weights_every: u64,
    /// The most convex problems solved per update.
    pub optim_niter: usize,
}

impl Default for NashMtlConfig {
    fn default() -> Self {
        NashMtlConfig {
            max_norm: 1.0,
            update_weights_every: 1,
            optim_niter: 20,
        }
    }
}

/// Nash-MTL (Navon et al., ICML 2022).
#[derive(Debug, Clone)]
pub struct NashMtl {
    num_tasks: usize,
    config: NashMtlConfig,
    step: u64,
    /// The α of the last solve (ones before the first), the next solve's start.
    alpha: Vec<f64>,
}

impl NashMtl {
    /// For `num_tasks` tasks with the defaults.
    pub fn new(num_tasks: usize) -> Self {
        NashMtl {
            num_tasks,
            config: NashMtlConfig::default(),
            step: 0,
            alpha: vec![1.0; num_tasks],
        }
    }

    /// For `num_tasks` (≥ 1) tasks with the given hyper-parameters.
    pub fn with_config(num_tasks: usize, config: NashMtlConfig) -> Result<Self> {
        if num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "nash_mtl".into(),
                expected: 0,
                got: 0,
            });
        }
        if config.max_norm.is_nan() {
            return Err(Error::config("nash_mtl: max_norm is NaN"));
        }
        if config.update_weights_every == 0 {
            return Err(Error::config("nash_mtl: update_weights_every must be >= 1"));
        }
        Ok(NashMtl {
            config,
            ..NashMtl::new(num_tasks)
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> NashMtlConfig {
        self.config
    }

    /// α of the last solve, before the norm clip (ones before the first solve).
    pub fn alpha(&self) -> &[f64] {
        &self.alpha
    }
}

/// The α of Nash-MTL's sequence of convex problems for the K × K row-major Gram matrix
/// `gram` (un-normalised), starting from `start` and solving at most `max_iter`
/// problems. Errors on mismatched sizes or non-finite input. An all-zero Gram matrix
/// returns `start`.
pub fn nash_mtl_alpha(gram: &[f64], start: &[f64], max_iter: usize) -> Result<Vec<f64>> {
    let k = start.len();
    if gram.len() != k * k {
        return Err(Error::shape(
            "nash_mtl Gram matrix",
            format!("{k}x{k}"),
            format!("{} values", gram.len()),
        ));
    }
    if let Some(v) = gram.iter().chain(start).find(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: "nash_mtl Gram matrix or start".into(),
            task: None,
            step: None,
            value: v.to_string(),
        });
    }
    let n = gram.iter().map(|v| v * v).sum::<f64>().sqrt();
    if n == 0.0 {
        return Ok(start.to_vec());
    }
    let g: Vec<f64> = gram.iter().map(|v| v / n).collect();
    let mut alpha = start.to_vec();
    for _ in 0..max_iter {
        let ga = mat_vec(&g, &alpha);
        let residual = ga
            .iter()
            .zip(&alpha)
            .map(|(x, a)| (x - 1.0 / (a + 1e-10)).powi(2))
            .sum::<f64>()
            .sqrt();
        // The references solve first and test after; the outcome is the same.
        if residual < 1e-3 {
            break;
        }
        let Some(next) = solve_subproblem(&g, n, &alpha) else {
            break;
        };
        let moved = next
            .iter()
            .zip(&alpha)
            .map(|(x, a)| (x - a).powi(2))
            .sum::<f64>()
            .sqrt();
        if moved < 1e-6 {
            break;
        }
        alpha = next;
    }
    Ok(alpha)
}

/// Gx for a K × K row-major G.
fn mat_vec(g: &[f64], x: &[f64]) -> Vec<f64> {
    let k = x.len();
    (0..k)
        .map(|i| (0..k).map(|j| g[i * k + j] * x[j]).sum())
        .collect()
}

/// One convex problem of the sequence at a (see the module docs), or `None` when it is
/// ill-posed (non-finite data), infeasible or unbounded.
fn solve_subproblem(g: &[f64], n: f64, a: &[f64]) -> Option<Vec<f64>> {
    let k = a.len();
    let ga = mat_vec(g, a);
    if a.iter().any(|&x| x <= 0.0) || ga.contains(&0.0) {
        // 1/a or 1/(Ĝa) is infinite: the references' solver rejects the data.
        return None;
    }
    let inv_ga: Vec<f64> = ga.iter().map(|x| 1.0 / x).collect();
    let c: Vec<f64> = (0..k)
        .map(|i| {
            let row: f64 = (0..k).map(|j| g[i * k + j]).sum();
            let p = 1.0 / a[i] + (0..k).map(|j| g[j * k + i] * inv_ga[j]).sum::<f64>();
            row + p / n
        })
        .collect();
    if c.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let r = 1.0 / n;
    let start = feasible_start(g, r, a)?;
    barrier(g, &c, r, start)
}

/// A point with αₖ > 0, (Ĝα)ₖ > 0 and αₖ(Ĝα)ₖ ≥ 2r: the previous iterate scaled up if
/// Ĝa > 0, else the min-norm point of the rows (which has ⟨gₖ, d⟩ ≥ ‖d‖² > 0 for every
/// k) moved into the interior; `None` when the rows are Pareto-stationary (infeasible).
fn feasible_start(g: &[f64], r: f64, a: &[f64]) -> Option<Vec<f64>> {
    let k = a.len();
    let ga = mat_vec(g, a);
    let base = if ga.iter().all(|&x| x > 0.0) {
        a.to_vec()
    } else {
        let w = min_norm_simplex(g, k).ok()?;
        let gw = mat_vec(g, &w);
        let m = gw.iter().copied().fold(f64::INFINITY, f64::min);
        let diag = (0..k).fold(0.0f64, |d, i| d.max(g[i * k + i]));
        if m.is_nan() || m <= 1e-13 * diag {
            return None;
        }
        let g1 = mat_vec(g, &vec![1.0; k]);
        let spread = g1.iter().fold(0.0f64, |s, v| s.max(v.abs()));
        // Small enough that Ĝ(w + ε1) = Ĝw + εĜ1 stays ≥ m/2.
        let eps = 0.5 * m / spread.max(f64::MIN_POSITIVE);
        w.iter().map(|x| x + eps).collect()
    };
    let gb = mat_vec(g, &base);
    let least = base
        .iter()
        .zip(&gb)
        .map(|(x, y)| x * y)
        .fold(f64::INFINITY, f64::min);
    let scale = (2.0 * r / least).sqrt().max(1.0);
    let start: Vec<f64> = base.iter().map(|x| x * scale).collect();
    start.iter().all(|x| x.is_finite()).then_some(start)
}

/// The barrier objective t·cᵀα − Σₖ log(αₖ(Ĝα)ₖ − r), or `None` outside the domain.
fn barrier_value(g: &[f64], c: &[f64], r: f64, t: f64, alpha: &[f64]) -> Option<f64> {
    let y = mat_vec(g, alpha);
    let mut f = t * c.iter().zip(alpha).map(|(c, a)| c * a).sum::<f64>();
    for (a, y) in alpha.iter().zip(&y) {
        let s = a * y - r;
        if !(*a > 0.0 && *y > 0.0 && s > 0.0) {
            return None;
        }
        f -= s.ln();
    }
    Some(f)
}

/// min cᵀα s.t. αₖ(Ĝα)ₖ ≥ r on the branch α > 0, Ĝα > 0, from a strictly feasible
/// `alpha`, by the log-barrier method (Boyd & Vandenberghe, Convex Optimization, §11.3):
/// Newton centring on t·cᵀα − Σₖ log(αₖ(Ĝα)ₖ − r) for t growing 20-fold, until the
/// duality gap K/t is below 1e-10 of the objective's scale. `None` when the central
/// path runs off to infinity (unbounded problem) before any centring succeeds.
fn barrier(g: &[f64], c: &[f64], r: f64, mut alpha: Vec<f64>) -> Option<Vec<f64>> {
    let k = alpha.len();
    let kf = k as f64;
    let objective = |x: &[f64]| c.iter().zip(x).map(|(c, a)| c * a).sum::<f64>();
    let size0 = alpha.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut t = kf / objective(&alpha).abs().max(1e-300);
    let mut centred: Option<Vec<f64>> = None;
    for _outer in 0..80 {
        for _newton in 0..200 {
            let y = mat_vec(g, &alpha);
            let s: Vec<f64> = (0..k).map(|i| alpha[i] * y[i] - r).collect();
            let mut grad: Vec<f64> = (0..k).map(|i| t * c[i] - y[i] / s[i]).collect();
            let mut hess = vec![0.0; k * k];
            for j in 0..k {
                let inv = 1.0 / s[j];
                let inv2 = inv * inv;
                for i in 0..k {
                    grad[i] -= alpha[j] * g[j * k + i] * inv;
                }
                // (1/s²)[y² eeᵀ + r(eGⱼᵀ + Gⱼeᵀ) + α² GⱼGⱼᵀ] for constraint j.
                hess[j * k + j] += y[j] * y[j] * inv2;
                for i in 0..k {
                    let cross = r * g[j * k + i] * inv2;
                    hess[j * k + i] += cross;
                    hess[i * k + j] += cross;
                    let aj = alpha[j] * alpha[j] * g[j * k + i] * inv2;
                    for l in 0..k {
                        hess[i * k + l] += aj * g[j * k + l];
                    }
                }
            }
            let neg: Vec<f64> = grad.iter().map(|v| -v).collect();
            let Some(step) = solve_spd(&hess, &neg) else {
                // The barrier Hessian is numerically singular: the last centred point
                // is as accurate as this precision allows.
                return centred;
            };
            let decrement: f64 = -grad.iter().zip(&step).map(|(g, d)| g * d).sum::<f64>();
            if !decrement.is_finite() {
                return centred;
            }
            if decrement <= 1e-20 {
                break;
            }
            let f0 = barrier_value(g, c, r, t, &alpha)?;
            let mut h = 1.0;
            let mut accepted = false;
            for _ in 0..80 {
                let trial: Vec<f64> = (0..k).map(|i| alpha[i] + h * step[i]).collect();
                if let Some(f1) = barrier_value(g, c, r, t, &trial) {
                    if f1 <= f0 - 0.01 * h * decrement {
                        alpha = trial;
                        accepted = true;
                        break;
                    }
                }
                h *= 0.5;
            }
            if !accepted || decrement < 1e-14 {
                // Converged to rounding (or the step no longer decreases the barrier).
                break;
            }
            if alpha.iter().any(|v| v.abs() > 1e15 * size0.max(1.0)) {
                // An unbounded direction: the central path runs off to infinity.
                return None;
            }
        }
        centred = Some(alpha.clone());
        let value = objective(&alpha);
        let scale = c
            .iter()
            .zip(&alpha)
            .map(|(c, a)| (c * a).abs())
            .sum::<f64>()
            .max(value.abs());
        if kf / t <= 1e-10 * scale {
            break;
        }
        t *= 20.0;
    }
    centred
}

impl Aggregator for NashMtl {
    fn name(&self) -> &'static str {
        "nash_mtl"
    }
    fn num_tasks(&self) -> Option<usize> {
        Some(self.num_tasks)
    }

    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        let gram = checked_gram("nash_mtl", jacobian, ctx, Some(self.num_tasks))?;
        let alpha = if self.step.is_multiple_of(self.config.update_weights_every) {
            nash_mtl_alpha(gram.as_slice(), &self.alpha, self.config.optim_niter)?
        } else {
            self.alpha.clone()
        };
        let k = self.num_tasks;
        let sq: f64 = (0..k)
            .map(|i| alpha[i] * (0..k).map(|j| gram.get(i, j) * alpha[j]).sum::<f64>())
            .sum();
        let norm = sq.max(0.0).sqrt();
        let weights = if self.config.max_norm > 0.0 && norm > self.config.max_norm {
            alpha
                .iter()
                .map(|a| a * self.config.max_norm / norm)
                .collect()
        } else {
            alpha.clone()
        };
        let out = weighted(weights, jacobian)?;
        self.step += 1;
        self.alpha = alpha;
        Ok(out)
    }

    /// The step count and the last α (the next solve's start).
    fn state(&self) -> serde_json::Value {
        state::step_and_vector_json(self.step, "alpha", &self.alpha)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        (self.step, self.alpha) =
            state::step_and_vector("nash_mtl", state, "alpha", self.num_tasks)?;
        Ok(())
    }
}
