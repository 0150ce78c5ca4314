//! The checked, solver-side form of a [`GroupedData`]: each task's design as a
//! `nalgebra` matrix, and the data term `Σₜ cₜ Σᵢ ℓ(yₜᵢ, xₜᵢᵀwₜ + bₜ)` with its
//! gradient and Hessian blocks. Every model's solver works on this.

use crate::Loss;
use mtl_core::{Error, Result};
use mtl_data::GroupedData;
use nalgebra::{DMatrix, DVector};

/// One task on the solver side.
pub(crate) struct TaskDesign {
    pub x: DMatrix<f64>,
    pub y: DVector<f64>,
    /// The task's weight `cₜ` in the data term.
    pub weight: f64,
}

/// The data term of a multi-task linear model.
pub(crate) struct Problem {
    pub tasks: Vec<TaskDesign>,
    pub names: Vec<String>,
    pub d: usize,
    pub loss: Loss,
}

/// Checks what every model needs of its data and names the task at fault: at least
/// one task, no empty task, the declared width, finite values, and 0/1 targets for
/// the logistic loss.
pub(crate) fn check_data(data: &GroupedData, loss: Loss, context: &str) -> Result<()> {
    if data.tasks.is_empty() {
        return Err(Error::TaskCount {
            context: context.to_string(),
            expected: 0,
            got: 0,
        });
    }
    let d = data.n_features();
    if d == 0 {
        return Err(Error::config(format!(
            "{context}: the data have no feature columns"
        )));
    }
    for (k, t) in data.tasks.iter().enumerate() {
        if t.y.is_empty() {
            return Err(Error::config(format!(
                "{context}: task `{}` (index {k}) has no rows",
                t.name
            )));
        }
        if t.x.ncols() != d || t.x.nrows() != t.y.len() {
            return Err(Error::shape(
                format!("{context}: task `{}` (index {k})", t.name),
                format!("[{}, {d}] features for {} targets", t.y.len(), t.y.len()),
                format!("{:?}", t.x.shape()),
            ));
        }
        if let Some(((r, c), v)) = t.x.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: format!(
                    "{context}: feature `{}` at row {r} of task `{}`",
                    data.feature_names.get(c).map(String::as_str).unwrap_or("?"),
                    t.name
                ),
                task: Some(k),
                step: None,
                value: v.to_string(),
            });
        }
        if let Some((r, v)) = t.y.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: format!("{context}: target at row {r} of task `{}`", t.name),
                task: Some(k),
                step: None,
                value: v.to_string(),
            });
        }
        if loss == Loss::Logistic
            && t.y.iter().all(|&v| v == t.y[0])
            && (t.y[0] == 0.0 || t.y[0] == 1.0)
        {
            // The unpenalised intercept's infimum is at ±∞: Newton and the proximal
            // gradient would chase it forever.
            return Err(Error::config(format!(
                "{context}: every one of the {} labels of task `{}` (index {k}) is {}, so the \
                 logistic loss has no finite intercept for it; drop the task or pool it",
                t.y.len(),
                t.name,
                t.y[0]
            )));
        }
        if loss == Loss::Logistic {
            if let Some((r, v)) = t.y.indexed_iter().find(|(_, &v)| v != 0.0 && v != 1.0) {
                return Err(Error::config(format!(
                    "{context}: the logistic loss needs 0/1 targets, but row {r} of task `{}` (index {k}) is {v}",
                    t.name
                )));
            }
        }
    }
    Ok(())
}

/// Checks that a hyper-parameter is finite and not negative.
pub(crate) fn check_penalty(context: &str, name: &str, value: f64) -> Result<()> {
    if !(value.is_finite() && value >= 0.0) {
        return Err(Error::config(format!(
            "{context}: {name} must be finite and ≥ 0, got {value}"
        )));
    }
    Ok(())
}

impl Problem {
    /// Checks `data` and converts it; `weights` are the tasks' `cₜ` (1 when `None`).
    pub fn new(
        data: &GroupedData,
        loss: Loss,
        weights: Option<&[f64]>,
        context: &str,
    ) -> Result<Problem> {
        check_data(data, loss, context)?;
        if let Some(w) = weights {
            if w.len() != data.n_tasks() {
                return Err(Error::TaskCount {
                    context: format!("{context}: task weights"),
                    expected: data.n_tasks(),
                    got: w.len(),
                });
            }
            if let Some((k, c)) = w
                .iter()
                .enumerate()
                .find(|(_, c)| !(c.is_finite() && **c > 0.0))
            {
                return Err(Error::config(format!(
                    "{context}: the weight of task `{}` must be finite and > 0, got {c}",
                    data.tasks[k].name
                )));
            }
        }
        let tasks = data
            .tasks
            .iter()
            .enumerate()
            .map(|(k, t)| TaskDesign {
                x: DMatrix::from_fn(t.x.nrows(), t.x.ncols(), |i, j| t.x[[i, j]]),
                y: DVector::from_iterator(t.y.len(), t.y.iter().copied()),
                weight: weights.map_or(1.0, |w| w[k]),
            })
            .collect();
        Ok(Problem {
            tasks,
            names: data.tasks.iter().map(|t| t.name.clone()).collect(),
            d: data.n_features(),
            loss,
        })
    }

    pub fn n_tasks(&self) -> usize {
        self.tasks.len()
    }

    /// Task `t`'s scores `Xₜwₜ + bₜ`.
    pub fn scores(&self, t: usize, w: &DMatrix<f64>, b: &DVector<f64>) -> DVector<f64> {
        let task = &self.tasks[t];
        let mut eta = &task.x * w.column(t);
        eta.add_scalar_mut(b[t]);
        eta
    }

    /// The data term.
    pub fn value(&self, w: &DMatrix<f64>, b: &DVector<f64>) -> f64 {
        (0..self.n_tasks())
            .map(|t| {
                let task = &self.tasks[t];
                let eta = self.scores(t, w, b);
                task.weight
                    * eta
                        .iter()
                        .zip(task.y.iter())
                        .map(|(&e, &y)| self.loss.value(y, e))
                        .sum::<f64>()
            })
            .sum()
    }

    /// The data term and its gradient with respect to `W` (`d × T`) and `b`.
    pub fn value_grad(
        &self,
        w: &DMatrix<f64>,
        b: &DVector<f64>,
    ) -> (f64, DMatrix<f64>, DVector<f64>) {
        let mut gw = DMatrix::zeros(self.d, self.n_tasks());
        let mut gb = DVector::zeros(self.n_tasks());
        let mut f = 0.0;
        for t in 0..self.n_tasks() {
            let task = &self.tasks[t];
            let eta = self.scores(t, w, b);
            let mut r = DVector::zeros(eta.len());
            for i in 0..eta.len() {
                f += task.weight * self.loss.value(task.y[i], eta[i]);
                r[i] = task.weight * self.loss.derivative(task.y[i], eta[i]);
            }
            gw.set_column(t, &(task.x.transpose() * &r));
            gb[t] = r.sum();
        }
        (f, gw, gb)
    }

    /// Task `t`'s `(d+1)²` Hessian block of the data term in `(wₜ, bₜ)`, the intercept
    /// last: `cₜ [Xₜ 1]ᵀ diag(ℓ'') [Xₜ 1]`.
    pub fn hessian_block(&self, t: usize, w: &DMatrix<f64>, b: &DVector<f64>) -> DMatrix<f64> {
        let task = &self.tasks[t];
        let d = self.d;
        let eta = self.scores(t, w, b);
        let mut xa = DMatrix::zeros(task.x.nrows(), d + 1);
        for i in 0..task.x.nrows() {
            let s = (task.weight * self.loss.curvature(eta[i])).sqrt();
            for j in 0..d {
                xa[(i, j)] = s * task.x[(i, j)];
            }
            xa[(i, d)] = s;
        }
        xa.transpose() * xa
    }

    /// The error for a penalised system `h` (task blocks of `d + 1` rows, intercept
    /// last) that is singular, naming the first task whose own diagonal block — its
    /// data term plus the penalty's diagonal — is singular: a principal block that is
    /// singular makes the whole system so, so that task is a cause. (The penalty makes
    /// up for a rank-deficient design when it is positive definite.)
    pub fn singular_error(&self, context: &str, h: &DMatrix<f64>) -> Error {
        let b = self.d + 1;
        let culprit = (0..self.n_tasks())
            .find(|&t| !is_positive_definite(&h.view((t * b, t * b), (b, b)).into_owned()));
        match culprit {
            Some(t) => Error::config(format!(
                "{context}: the system is singular: task `{}` (index {t}, {} rows, {} features \
                 plus an intercept) has a rank-deficient design that the penalty does not \
                 make up for; raise the penalty weights or drop collinear features",
                self.names[t],
                self.tasks[t].x.nrows(),
                self.d
            )),
            None => Error::config(format!(
                "{context}: the penalised system is singular (the tasks' designs are jointly \
                 rank-deficient along a direction the penalty leaves free); raise the penalty \
                 weights"
            )),
        }
    }
}

/// A Cholesky factor whose pivots are not negligible beside the largest diagonal entry:
/// `nalgebra` accepts a numerically singular matrix whose rounding leaves tiny positive
/// pivots, and a solve with them is noise.
pub(crate) fn cholesky(m: DMatrix<f64>) -> Option<nalgebra::Cholesky<f64, nalgebra::Dyn>> {
    let scale = m.diagonal().iter().fold(0.0_f64, |a, &v| a.max(v.abs()));
    if scale <= 0.0 || !scale.is_finite() {
        return None;
    }
    let chol = m.cholesky()?;
    let l = chol.l_dirty();
    let smallest = (0..l.nrows()).fold(f64::INFINITY, |a, i| a.min(l[(i, i)] * l[(i, i)]));
    (smallest > 1e-11 * scale).then_some(chol)
}

pub(crate) fn is_positive_definite(m: &DMatrix<f64>) -> bool {
    cholesky(m.clone()).is_some()
}
