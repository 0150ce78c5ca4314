//! The baselines every hierarchical model is compared with: one model per task
//! (independent) and one model for all tasks (pooled), as penalised point estimates.

use crate::conjugate::log_sigmoid;
use crate::design::{designs, with_intercept, Design};
use crate::linalg::{chol_solve, cholesky};
use mtl_core::{Error, Result};
use mtl_data::GroupedData;
use ndarray::{Array1, Array2};

/// Which likelihood a point model has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Likelihood {
    /// Least squares (ridge): predictions are `[1, x] β`.
    Gaussian,
    /// Logistic: predictions are `σ([1, x] β)`.
    Bernoulli,
}

/// Point-estimate coefficients per task: the independent or pooled baseline.
///
/// Independent regression is ridge, `β_t = argmin ‖y_t − X_t β‖² + λ Σ_{j≥1} β_j²` (the
/// intercept unpenalised, so a task of one row is solvable: its slopes are 0 and its
/// intercept its mean; Hoerl & Kennard 1970). Independent logistic regression maximises
/// `Σᵢ log p(yᵢ | β) − λ/2 ‖β‖²`, the intercept included, since a task whose targets are
/// all 0 (or all 1) has no finite unpenalised intercept; this is the MAP estimate under
/// the vague prior `N(0, I/λ)`, found by Newton's method. The pooled baseline is the
/// same estimator on every task's rows stacked, shared by all tasks.
#[derive(Debug, Clone)]
pub struct PointModel {
    /// The likelihood.
    pub likelihood: Likelihood,
    /// `[intercept, features…]` for each task (all equal when pooled).
    pub coefficients: Vec<Array1<f64>>,
}

impl PointModel {
    /// One model per task of `data` with penalty `lambda` (≥ 0).
    ///
    /// Errors: a negative or non-finite `lambda`, an empty task or non-finite value, and
    /// with `lambda = 0` a task whose design is rank-deficient (named).
    pub fn independent(data: &GroupedData, lambda: f64) -> Result<Self> {
        check_lambda(lambda)?;
        let ds = designs(data, data.binary)?;
        let coefficients = ds
            .iter()
            .enumerate()
            .map(|(k, d)| fit_one(d, lambda, data.binary, &format!("task {k} (`{}`)", d.name)))
            .collect::<Result<Vec<_>>>()?;
        Ok(PointModel {
            likelihood: likelihood(data),
            coefficients,
        })
    }

    /// Independent ridge regressions with the penalty chosen from `grid` by exact
    /// leave-one-out error summed over every task's rows: for a fixed λ ridge is a
    /// linear smoother, so row `i`'s left-out residual is `eᵢ / (1 − hᵢᵢ)` with
    /// `hᵢᵢ = xᵢᵀ(XᵀX + λD)⁻¹xᵢ` (Allen 1974), no refits needed. Tasks of one row have no
    /// left-out prediction (their intercept fits the row exactly) and do not vote.
    /// Returns the model and the λ chosen.
    ///
    /// Errors: a 0/1 target, an empty or non-positive grid, and what
    /// [`independent`](Self::independent) returns.
    pub fn independent_loo(data: &GroupedData, grid: &[f64]) -> Result<(Self, f64)> {
        if data.binary {
            return Err(Error::config(
                "leave-one-out choice of the penalty is for real-valued targets",
            ));
        }
        if grid.is_empty() || grid.iter().any(|l| !(*l > 0.0 && l.is_finite())) {
            return Err(Error::config(format!(
                "the penalty grid must be non-empty, positive and finite, got {grid:?}"
            )));
        }
        let ds = designs(data, false)?;
        let mut best = (f64::INFINITY, grid[0]);
        for &lambda in grid {
            let mut sse = 0.0;
            for (k, d) in ds.iter().enumerate().filter(|(_, d)| d.rows() > 1) {
                let what = format!("task {k} (`{}`)", d.name);
                let (l, beta) = ridge(d, lambda, &what)?;
                for (row, y) in d.x.outer_iter().zip(&d.y) {
                    let h = row.dot(&chol_solve(&l, &row.to_owned()));
                    let e = y - row.dot(&beta);
                    if 1.0 - h > 1e-9 {
                        sse += (e / (1.0 - h)).powi(2);
                    }
                }
            }
            if sse < best.0 {
                best = (sse, lambda);
            }
        }
        Ok((Self::independent(data, best.1)?, best.1))
    }

    /// One model for every task of `data`, fitted on the stacked rows.
    ///
    /// Errors: as [`independent`](Self::independent), for the stacked design.
    pub fn pooled(data: &GroupedData, lambda: f64) -> Result<Self> {
        check_lambda(lambda)?;
        let ds = designs(data, data.binary)?;
        let beta = fit_one(&stack(&ds), lambda, data.binary, "the pooled design")?;
        Ok(PointModel {
            likelihood: likelihood(data),
            coefficients: vec![beta; ds.len()],
        })
    }

    /// Predictions for task `task`: values, or probabilities of 1.
    pub fn predict(&self, task: usize, x: &Array2<f64>) -> Result<Array1<f64>> {
        let beta = self.coefficients.get(task).ok_or_else(|| Error::Unknown {
            kind: "task",
            name: task.to_string(),
            known: format!("0..{}", self.coefficients.len()),
        })?;
        let xd = with_intercept(x, beta.len() - 1, &format!("task {task}"))?;
        let eta = xd.dot(beta);
        Ok(match self.likelihood {
            Likelihood::Gaussian => eta,
            Likelihood::Bernoulli => eta.mapv(|e| log_sigmoid(e).exp()),
        })
    }
}

/// The maximised log-likelihood of the pooled model (every task the same β): for the
/// Gaussian, `−N/2 (log 2πσ̂² + 1)` at least squares with `σ̂² = RSS/N`; for the logistic,
/// `Σ log p(y | β̂)` at the maximum-likelihood β̂. The null model of the Bayes factor.
pub(crate) fn pooled_max_log_likelihood(data: &GroupedData) -> Result<f64> {
    let ds = designs(data, data.binary)?;
    let all = stack(&ds);
    let beta = fit_one(&all, 0.0, data.binary, "the pooled design")?;
    let n = all.rows() as f64;
    if data.binary {
        Ok(bernoulli_log_likelihood(&all, &beta))
    } else {
        let rss = (&all.y - &all.x.dot(&beta)).mapv(|r| r * r).sum();
        let s2 = rss / n;
        if s2.is_nan() || s2 <= 0.0 {
            return Err(Error::config("the pooled model fits every target exactly"));
        }
        Ok(-0.5 * n * ((2.0 * std::f64::consts::PI * s2).ln() + 1.0))
    }
}

fn likelihood(data: &GroupedData) -> Likelihood {
    if data.binary {
        Likelihood::Bernoulli
    } else {
        Likelihood::Gaussian
    }
}

fn check_lambda(lambda: f64) -> Result<()> {
    if lambda >= 0.0 && lambda.is_finite() {
        Ok(())
    } else {
        Err(Error::config(format!(
            "the penalty lambda must be finite and >= 0, got {lambda}"
        )))
    }
}

fn stack(ds: &[Design]) -> Design {
    let n: usize = ds.iter().map(Design::rows).sum();
    let p = ds[0].x.ncols();
    let mut x = Array2::zeros((n, p));
    let mut y = Array1::zeros(n);
    let mut at = 0;
    for d in ds {
        x.slice_mut(ndarray::s![at..at + d.rows(), ..]).assign(&d.x);
        y.slice_mut(ndarray::s![at..at + d.rows()]).assign(&d.y);
        at += d.rows();
    }
    let gram = x.t().dot(&x);
    let xty = x.t().dot(&y);
    let yty = y.dot(&y);
    Design {
        name: "pooled".into(),
        x,
        y,
        gram,
        xty,
        yty,
    }
}

fn rank_deficient(what: &str) -> Error {
    Error::config(format!(
        "{what}: the design is rank-deficient (fewer independent rows than coefficients, or a constant or duplicated column); use a penalty lambda > 0"
    ))
}

fn fit_one(d: &Design, lambda: f64, binary: bool, what: &str) -> Result<Array1<f64>> {
    if binary {
        return logistic_newton(d, lambda, what);
    }
    Ok(ridge(d, lambda, what)?.1)
}

/// The ridge solution and the Cholesky factor of `XᵀX + λD` (D the identity without its
/// intercept entry).
fn ridge(d: &Design, lambda: f64, what: &str) -> Result<(Array2<f64>, Array1<f64>)> {
    let mut a = d.gram.clone();
    for j in 1..a.nrows() {
        a[[j, j]] += lambda;
    }
    // A relative pivot threshold: a Gram matrix that is singular in exact arithmetic
    // factors with rounding-sized pivots, which must not pass as solvable.
    let l = cholesky(&a).ok_or_else(|| rank_deficient(what))?;
    let scale = a.diag().iter().cloned().fold(0.0, f64::max);
    if l.diag().iter().any(|v| v * v <= 1e-12 * scale) {
        return Err(rank_deficient(what));
    }
    let beta = chol_solve(&l, &d.xty);
    Ok((l, beta))
}

fn bernoulli_log_likelihood(d: &Design, beta: &Array1<f64>) -> f64 {
    d.x.dot(beta)
        .iter()
        .zip(&d.y)
        .map(|(e, y)| {
            if *y == 1.0 {
                log_sigmoid(*e)
            } else {
                log_sigmoid(-e)
            }
        })
        .sum()
}

fn logistic_newton(d: &Design, lambda: f64, what: &str) -> Result<Array1<f64>> {
    let p = d.x.ncols();
    let mut beta = Array1::<f64>::zeros(p);
    let objective = |b: &Array1<f64>| bernoulli_log_likelihood(d, b) - 0.5 * lambda * b.dot(b);
    let mut f = objective(&beta);
    for _ in 0..200 {
        let prob = d.x.dot(&beta).mapv(|e| log_sigmoid(e).exp());
        let mut h = Array2::<f64>::eye(p) * lambda;
        for (row, pr) in d.x.outer_iter().zip(&prob) {
            let w = pr * (1.0 - pr);
            for i in 0..p {
                for j in 0..p {
                    h[[i, j]] += w * row[i] * row[j];
                }
            }
        }
        let g = d.x.t().dot(&(&d.y - &prob)) - &(lambda * &beta);
        let l = cholesky(&h).ok_or_else(|| rank_deficient(what))?;
        let step = chol_solve(&l, &g);
        // Halve the Newton step until the penalised log-likelihood rises.
        let mut t = 1.0;
        let (mut next, mut fnext);
        loop {
            next = &beta + &(t * &step);
            fnext = objective(&next);
            if fnext >= f || t < 1e-10 {
                break;
            }
            t *= 0.5;
        }
        let moved = (t * step.dot(&step).sqrt()) / (1.0 + beta.dot(&beta).sqrt());
        beta = next;
        f = fnext;
        if moved < 1e-12 {
            return Ok(beta);
        }
        if beta.iter().any(|v| v.abs() > 1e6) {
            break;
        }
    }
    if beta.iter().all(|v| v.is_finite() && v.abs() <= 1e6) && lambda > 0.0 {
        return Ok(beta);
    }
    Err(Error::config(format!(
        "{what}: the logistic likelihood has no finite maximum (the classes are separable); use a penalty lambda > 0"
    )))
}
