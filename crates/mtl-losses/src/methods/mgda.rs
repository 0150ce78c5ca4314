//! MGDA: the multiple-gradient descent algorithm, as a min-norm gradient combination.
//!
//! Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018
//! (MGDA-UB, Algorithm 2), after Désidéri, "Multiple-gradient descent algorithm (MGDA)
//! for multiobjective optimization", C. R. Math. 350, 2012.
//!
//! Update rule: g = Σₖ wₖ gₖ with w = argmin { ‖Σₖ wₖ gₖ‖² : w ≥ 0, Σₖ wₖ = 1 }, the
//! min-norm point of the convex hull of the task gradients (zero iff the point is
//! Pareto-stationary). Optionally the gradients are first normalised, gₖ/nₖ, with
//! nₖ = 1 (`none`), ‖gₖ‖ (`l2`), Lₖ (`loss`) or Lₖ‖gₖ‖ (`loss+`) (the paper's
//! Section 5 / official code); the output then combines the normalised gradients, and
//! the reported weights are the effective ones on the raw rows, wₖ/nₖ.
//!
//! The problem depends on J only through G = JJᵀ. Three solvers:
//! * [`MgdaSolver::Exact`] (default): the exact min-norm point, an active-set QP on the
//!   simplex. It is the default because it is what the method means: the two
//!   Frank–Wolfe variants below stop early (TorchJD's rule leaves it 1e-3..5e-2 from the
//!   optimum for K ≥ 3, LibMTL's 2-task clamp keeps 0.1% of a dominated gradient), and
//!   at K ≤ 64 the exact solve costs microseconds.
//! * [`MgdaSolver::FrankWolfe`]: TorchJD's `MGDA` — Frank–Wolfe from w = 1/K with exact
//!   line search, stopping when the step γ < ε (1e-3) or after 100 iterations.
//! * [`MgdaSolver::LibMtl`]: LibMTL's `MGDA` (the official code's `MinNormSolver`) — the
//!   best pair's 2-task solution (γ clamped to [0.001, 0.999]) then up to 250 projected
//!   gradient steps with a 2-point line search, stopping when Σ|Δw| < 1e-5.
//!
//! Defaults: exact solver, no normalisation.

use crate::gram::Gram;
use crate::solvers::{checked_gram, min_norm_simplex, weighted};
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{Error, Result};
use tch::Tensor;

/// How the min-norm problem is solved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MgdaSolver {
    /// The exact min-norm point (active-set QP). The default.
    Exact,
    /// TorchJD's Frank–Wolfe iteration: start at 1/K, stop when γ < `epsilon` or after
    /// `max_iters` iterations (TorchJD: 1e-3, 100).
    FrankWolfe {
        /// The step size below which the iteration stops.
        epsilon: f64,
        /// The iteration cap.
        max_iters: usize,
    },
    /// LibMTL's / the official code's min-norm solver (LibMTL: 250, 1e-5).
    LibMtl {
        /// The iteration cap.
        max_iter: usize,
        /// Stop when the L1 change of the weights is below this.
        stop_crit: f64,
    },
}

/// The gradient normalisation applied before solving (LibMTL's `mgda_gn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MgdaNormalization {
    /// gₖ as is.
    None,
    /// gₖ / ‖gₖ‖ (a zero row stays zero).
    L2,
    /// gₖ / Lₖ (needs the losses in the step context).
    Loss,
    /// gₖ / (Lₖ ‖gₖ‖) (needs the losses; a zero row stays zero).
    LossPlus,
}

/// MGDA with its solver and gradient normalisation.
#[derive(Debug, Clone)]
pub struct Mgda {
    solver: MgdaSolver,
    normalization: MgdaNormalization,
    num_tasks: Option<usize>,
}

impl Default for Mgda {
    fn default() -> Self {
        Mgda::new()
    }
}

impl Mgda {
    /// Exact solver, no normalisation; any K.
    pub fn new() -> Self {
        Mgda {
            solver: MgdaSolver::Exact,
            normalization: MgdaNormalization::None,
            num_tasks: None,
        }
    }
    /// TorchJD's configuration: Frank–Wolfe, ε = 1e-3, 100 iterations, no normalisation.
    pub fn torchjd() -> Self {
        Mgda::new().with_solver(MgdaSolver::FrankWolfe {
            epsilon: 1e-3,
            max_iters: 100,
        })
    }
    /// LibMTL's configuration: its solver (250 iterations, 1e-5) with normalisation `gn`.
    pub fn libmtl(gn: MgdaNormalization) -> Self {
        Mgda::new()
            .with_solver(MgdaSolver::LibMtl {
                max_iter: 250,
                stop_crit: 1e-5,
            })
            .with_normalization(gn)
    }
    /// Accepts exactly `num_tasks` rows.
    pub fn for_tasks(mut self, num_tasks: usize) -> Self {
        self.num_tasks = Some(num_tasks);
        self
    }
    /// Sets the solver.
    pub fn with_solver(mut self, solver: MgdaSolver) -> Self {
        self.solver = solver;
        self
    }
    /// Sets the gradient normalisation.
    pub fn with_normalization(mut self, normalization: MgdaNormalization) -> Self {
        self.normalization = normalization;
        self
    }

    /// The effective weights w on the raw rows (output = wᵀJ), from G = JJᵀ and the
    /// task losses (read only by the `loss` normalisations).
    pub fn weights(&self, gram: &Gram, losses: &[f64]) -> Result<Vec<f64>> {
        let k = gram.k();
        let scale = self.normalizers(gram, losses)?;
        let g: Vec<f64> = (0..k * k)
            .map(|idx| gram.as_slice()[idx] * scale[idx / k] * scale[idx % k])
            .collect();
        let sol = match self.solver {
            MgdaSolver::Exact => min_norm_simplex(&g, k)?,
            MgdaSolver::FrankWolfe { epsilon, max_iters } => frank_wolfe(&g, k, epsilon, max_iters),
            MgdaSolver::LibMtl {
                max_iter,
                stop_crit,
            } => libmtl_min_norm(&g, k, max_iter, stop_crit),
        };
        Ok(sol.iter().zip(&scale).map(|(w, s)| w * s).collect())
    }

    /// 1/nₖ for each row (0 for a zero row under `l2`/`loss+`).
    fn normalizers(&self, gram: &Gram, losses: &[f64]) -> Result<Vec<f64>> {
        let k = gram.k();
        let norm = |i: usize| gram.get(i, i).max(0.0).sqrt();
        let inv = |n: f64| if n > 0.0 { 1.0 / n } else { 0.0 };
        let losses = || -> Result<&[f64]> {
            if losses.len() != k {
                return Err(Error::TaskCount {
                    context: "mgda loss normalisation (step losses)".into(),
                    expected: k,
                    got: losses.len(),
                });
            }
            for (i, &l) in losses.iter().enumerate() {
                if !l.is_finite() || l == 0.0 {
                    return Err(Error::NonFinite {
                        what: "loss used by MGDA's loss normalisation (must be finite, non-zero)"
                            .into(),
                        task: Some(i),
                        step: None,
                        value: l.to_string(),
                    });
                }
            }
            Ok(losses)
        };
        Ok(match self.normalization {
            MgdaNormalization::None => vec![1.0; k],
            MgdaNormalization::L2 => (0..k).map(|i| inv(norm(i))).collect(),
            MgdaNormalization::Loss => losses()?.iter().map(|l| 1.0 / l).collect(),
            MgdaNormalization::LossPlus => {
                let l = losses()?;
                (0..k).map(|i| inv(l[i] * norm(i))).collect()
            }
        })
    }
}

impl Aggregator for Mgda {
    fn name(&self) -> &'static str {
        "mgda"
    }
    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        let gram = checked_gram("mgda", jacobian, ctx, self.num_tasks)?;
        let w = self
            .weights(&gram, ctx.losses)
            .map_err(|e| e.at_step(ctx.step))?;
        weighted(w, jacobian)
    }
}

/// TorchJD's Frank–Wolfe iteration on G (Sener & Koltun, Algorithm 2).
fn frank_wolfe(g: &[f64], k: usize, epsilon: f64, max_iters: usize) -> Vec<f64> {
    let mut alpha = vec![1.0 / k as f64; k];
    for _ in 0..max_iters {
        let ga = mat_vec(g, k, &alpha);
        // The first index of the minimum, as torch.argmin.
        let t = (0..k).fold(0, |best, i| if ga[i] < ga[best] { i } else { best });
        let a: f64 = (0..k).map(|i| alpha[i] * g[i * k + t]).sum();
        let b: f64 = (0..k).map(|i| alpha[i] * ga[i]).sum();
        let c = g[t * k + t];
        let gamma = if c <= a {
            1.0
        } else if b <= a {
            0.0
        } else {
            (b - a) / (b + c - 2.0 * a)
        };
        for (i, ai) in alpha.iter_mut().enumerate() {
            *ai = (1.0 - gamma) * *ai + if i == t { gamma } else { 0.0 };
        }
        if gamma < epsilon {
            break;
        }
    }
    alpha
}

/// The min-norm point of two vectors from v1·v1, v1·v2, v2·v2: (γ, cost) with the point
/// γ v1 + (1−γ) v2, γ clamped to [0.001, 0.999] as in the official code.
///
/// The two tests are ties in exact arithmetic whenever the iteration has already
/// reached an end of the segment (a zero row makes this common), and rounding noise
/// then decides them; a relative slack of 1e-14 decides them as exact arithmetic does,
/// so the iteration does not depend on how the Gram matrix was rounded.
fn min_norm_pair(v1v1: f64, v1v2: f64, v2v2: f64) -> (f64, f64) {
    let slack = 1e-14 * v1v1.abs().max(v2v2.abs());
    if v1v2 >= v1v1 - slack {
        return (0.999, v1v1);
    }
    if v1v2 >= v2v2 - slack {
        return (0.001, v2v2);
    }
    let gamma = -((v1v2 - v2v2) / (v1v1 + v2v2 - 2.0 * v1v2));
    (gamma, v2v2 + gamma * (v1v2 - v2v2))
}

/// LibMTL's `_find_min_norm_element` on G.
fn libmtl_min_norm(g: &[f64], k: usize, max_iter: usize, stop_crit: f64) -> Vec<f64> {
    if k == 1 {
        // LibMTL fails here (no pair); the only point of the hull is the row itself.
        return vec![1.0];
    }
    // The best pair; LibMTL starts from a cost bound of 1e8 and fails when no pair is
    // below it, which gives the same pair whenever it does not fail.
    let mut best = (0, 1, 0.0, f64::INFINITY);
    for i in 0..k {
        for j in i + 1..k {
            let (c, d) = min_norm_pair(g[i * k + i], g[i * k + j], g[j * k + j]);
            if d < best.3 {
                best = (i, j, c, d);
            }
        }
    }
    let mut sol = vec![0.0; k];
    sol[best.0] = best.2;
    sol[best.1] = 1.0 - best.2;
    if k < 3 {
        return sol;
    }
    let quad = |a: &[f64], b: &[f64]| -> f64 {
        (0..k)
            .flat_map(|i| (0..k).map(move |j| (i, j)))
            .map(|(i, j)| a[i] * b[j] * g[i * k + j])
            .sum()
    };
    for _ in 0..max_iter {
        let grad_dir: Vec<f64> = mat_vec(g, k, &sol).iter().map(|v| -v).collect();
        let new_point = next_point(&sol, &grad_dir);
        let v1v1 = quad(&sol, &sol);
        let v1v2 = quad(&sol, &new_point);
        let v2v2 = quad(&new_point, &new_point);
        let (nc, _) = min_norm_pair(v1v1, v1v2, v2v2);
        let new_sol: Vec<f64> = (0..k)
            .map(|i| nc * sol[i] + (1.0 - nc) * new_point[i])
            .collect();
        let change: f64 = (0..k).map(|i| (new_sol[i] - sol[i]).abs()).sum();
        if change < stop_crit {
            return sol;
        }
        sol = new_sol;
    }
    sol
}

/// The official code's `_next_point`: a step along the projected descent direction,
/// as long as possible within the box, projected back onto the simplex.
fn next_point(cur: &[f64], grad: &[f64]) -> Vec<f64> {
    let n = cur.len();
    let mean = grad.iter().sum::<f64>() / n as f64;
    // At an exact optimum (e.g. the initial pair already optimal next to a duplicated
    // row) the projected gradient is exactly zero in exact arithmetic, but Gram rounding
    // leaves ~1e-16 noise that the unbounded step below would turn into a large move.
    let noise = 1e-13 * grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    let proj: Vec<f64> = grad
        .iter()
        .map(|g| g - mean)
        .map(|p| if p.abs() <= noise { 0.0 } else { p })
        .collect();
    let mut t = 1.0f64;
    let tm1 = (0..n)
        .filter(|&i| proj[i] < 0.0)
        .map(|i| -cur[i] / proj[i])
        .filter(|&v| v > 1e-7)
        .fold(f64::INFINITY, f64::min);
    if tm1.is_finite() {
        t = tm1;
    }
    let tm2 = (0..n)
        .filter(|&i| proj[i] > 0.0)
        .map(|i| (1.0 - cur[i]) / proj[i])
        .filter(|&v| v > 1e-7)
        .fold(f64::INFINITY, f64::min);
    if tm2.is_finite() {
        t = t.min(tm2);
    }
    let next: Vec<f64> = (0..n).map(|i| proj[i] * t + cur[i]).collect();
    projection_to_simplex(&next)
}

/// Euclidean projection onto the simplex by sorting (the official code's variant).
fn projection_to_simplex(y: &[f64]) -> Vec<f64> {
    let m = y.len();
    let mut sorted = y.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let mut tmpsum = 0.0;
    let mut tmax_f = (y.iter().sum::<f64>() - 1.0) / m as f64;
    for i in 0..m - 1 {
        tmpsum += sorted[i];
        let tmax = (tmpsum - 1.0) / (i as f64 + 1.0);
        if tmax > sorted[i + 1] {
            tmax_f = tmax;
            break;
        }
    }
    y.iter().map(|v| (v - tmax_f).max(0.0)).collect()
}

fn mat_vec(g: &[f64], k: usize, v: &[f64]) -> Vec<f64> {
    (0..k)
        .map(|i| (0..k).map(|j| g[i * k + j] * v[j]).sum())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simplex_projection() {
        assert_eq!(projection_to_simplex(&[0.5, 0.5]), vec![0.5, 0.5]);
        assert_eq!(projection_to_simplex(&[2.0, 0.0]), vec![1.0, 0.0]);
        let p = projection_to_simplex(&[0.7, 0.6, -1.0]);
        assert!((p[0] - 0.55).abs() < 1e-15 && (p[1] - 0.45).abs() < 1e-15 && p[2] == 0.0);
    }

    #[test]
    fn pair_clamps() {
        assert_eq!(min_norm_pair(1.0, 2.0, 4.0), (0.999, 1.0));
        assert_eq!(min_norm_pair(4.0, 2.0, 1.0), (0.001, 1.0));
        let (g, c) = min_norm_pair(1.0, 0.0, 1.0);
        assert!((g - 0.5).abs() < 1e-15 && (c - 0.5).abs() < 1e-15);
    }
}
