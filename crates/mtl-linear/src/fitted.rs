//! A fitted multi-task linear model: per-task weights and intercepts, predictions and
//! held-out scores.

use crate::Loss;
use mtl_core::{Error, Result};
use mtl_data::GroupedData;
use ndarray::{Array1, Array2, ArrayView2};

/// Per-task weights and intercepts, in the units of the features the model was fitted
/// on, with what the solver reports.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedLinear {
    /// The model and its hyper-parameters, e.g. `trace-norm(λ=10)`.
    pub model: String,
    /// The loss it was fitted with; [`FittedLinear::predict`] returns means under it.
    pub loss: Loss,
    /// The tasks' names, in the data's order.
    pub task_names: Vec<String>,
    /// `[features, tasks]`: column `t` is task `t`'s `wₜ`.
    pub weights: Array2<f64>,
    /// `[tasks]`: the unpenalised `bₜ`.
    pub intercepts: Array1<f64>,
    /// The objective at the solution, as the model's doc states it.
    pub objective: f64,
    /// Newton steps, proximal-gradient iterations or alternations taken.
    pub iterations: usize,
    /// What the model learns about the tasks besides `W`, when it does: the shared mean
    /// `w₀` (mean-regularized), the task covariance `Ω` (MTRL) or the cluster matrix
    /// `M` (clustered MTL).
    pub extra: Option<Extra>,
}

/// Structure a model learns over the tasks.
#[derive(Debug, Clone, PartialEq)]
pub enum Extra {
    /// The shared mean weight vector `w₀` (`[features]`).
    SharedMean(Array1<f64>),
    /// A `[tasks, tasks]` matrix: MTRL's task covariance `Ω` or clustered MTL's `M`.
    TaskMatrix(Array2<f64>),
}

/// Held-out scores of a fitted model.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Per task with rows: `(name, rows, mean loss)`; the loss is the squared error, or
    /// the log-loss `−y log p − (1−y) log(1−p)` for the logistic loss.
    pub per_task: Vec<(String, usize, f64)>,
    /// The mean loss over every row (tasks weighted by their rows).
    pub row_mean: f64,
    /// The mean over tasks of each task's mean loss (every task counts alike).
    pub task_mean: f64,
    /// For the logistic loss: the share of rows whose `p > ½` matches the label.
    pub accuracy: Option<f64>,
    /// For the logistic loss: the area under the ROC curve over every row (ties count
    /// half).
    pub auc: Option<f64>,
}

impl FittedLinear {
    /// The number of tasks.
    pub fn n_tasks(&self) -> usize {
        self.task_names.len()
    }

    /// Task `task`'s predictions for the rows of `x` (`[rows, features]`): values for
    /// the squared loss, probabilities for the logistic loss.
    ///
    /// Errors: a task index out of range, or `x` of the wrong width.
    pub fn predict(&self, task: usize, x: ArrayView2<'_, f64>) -> Result<Array1<f64>> {
        if task >= self.n_tasks() {
            return Err(Error::config(format!(
                "{}: task index {task} out of range: the model has {} tasks",
                self.model,
                self.n_tasks()
            )));
        }
        if x.ncols() != self.weights.nrows() {
            return Err(Error::shape(
                format!("{} predicting task `{}`", self.model, self.task_names[task]),
                format!("{} feature columns", self.weights.nrows()),
                x.ncols(),
            ));
        }
        let eta = x.dot(&self.weights.column(task)) + self.intercepts[task];
        Ok(eta.mapv(|e| self.loss.mean(e)))
    }

    /// Scores the model on `data` (the same tasks in the same order; a task with no
    /// rows is left out of the means).
    ///
    /// Errors: another task count or order, or another feature width.
    pub fn evaluate(&self, data: &GroupedData) -> Result<Evaluation> {
        if data.n_tasks() != self.n_tasks() {
            return Err(Error::TaskCount {
                context: format!("evaluating {}", self.model),
                expected: self.n_tasks(),
                got: data.n_tasks(),
            });
        }
        let mut per_task = Vec::new();
        let mut scored: Vec<(f64, f64)> = Vec::new();
        for (k, t) in data.tasks.iter().enumerate() {
            if t.name != self.task_names[k] {
                return Err(Error::config(format!(
                    "evaluating {}: task {k} is `{}` in the data but `{}` in the model",
                    self.model, t.name, self.task_names[k]
                )));
            }
            if t.y.is_empty() {
                continue;
            }
            let pred = self.predict(k, t.x.view())?;
            let loss: f64 = pred
                .iter()
                .zip(t.y.iter())
                .map(|(&p, &y)| point_loss(self.loss, y, p))
                .sum();
            per_task.push((t.name.clone(), t.y.len(), loss / t.y.len() as f64));
            scored.extend(pred.iter().copied().zip(t.y.iter().copied()));
        }
        if scored.is_empty() {
            return Err(Error::config(format!(
                "evaluating {}: no rows to score",
                self.model
            )));
        }
        let rows = scored.len() as f64;
        let row_mean = per_task.iter().map(|(_, n, l)| *n as f64 * l).sum::<f64>() / rows;
        let task_mean = per_task.iter().map(|(_, _, l)| l).sum::<f64>() / per_task.len() as f64;
        let (accuracy, auc) = match self.loss {
            Loss::Squared => (None, None),
            Loss::Logistic => {
                let correct = scored
                    .iter()
                    .filter(|(p, y)| (*p > 0.5) == (*y > 0.5))
                    .count();
                (Some(correct as f64 / rows), roc_auc(&scored))
            }
        };
        Ok(Evaluation {
            per_task,
            row_mean,
            task_mean,
            accuracy,
            auc,
        })
    }
}

/// The held-out loss of one prediction: squared error, or log-loss with the
/// probability kept off 0 and 1 so one confident miss is large but finite.
pub(crate) fn point_loss(loss: Loss, y: f64, prediction: f64) -> f64 {
    match loss {
        Loss::Squared => (y - prediction) * (y - prediction),
        Loss::Logistic => {
            let p = prediction.clamp(1e-15, 1.0 - 1e-15);
            -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
        }
    }
}

/// The Mann–Whitney form of the ROC AUC; `None` when one class is absent.
fn roc_auc(scored: &[(f64, f64)]) -> Option<f64> {
    let mut s: Vec<(f64, f64)> = scored.to_vec();
    s.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = s.iter().filter(|(_, y)| *y > 0.5).count() as f64;
    let negatives = s.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    // Mid-ranks over runs of tied scores.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < s.len() {
        let mut j = i;
        while j + 1 < s.len() && s[j + 1].0 == s[i].0 {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += mid * s[i..=j].iter().filter(|(_, y)| *y > 0.5).count() as f64;
        i = j + 1;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_half_and_orders() {
        let perfect = [(0.1, 0.0), (0.2, 0.0), (0.8, 1.0), (0.9, 1.0)];
        assert_eq!(roc_auc(&perfect), Some(1.0));
        let tied = [(0.5, 0.0), (0.5, 1.0)];
        assert_eq!(roc_auc(&tied), Some(0.5));
        let one = [(0.3, 1.0), (0.4, 0.0), (0.9, 1.0)];
        assert_eq!(roc_auc(&one), Some(0.5));
        assert_eq!(roc_auc(&[(0.3, 1.0)]), None);
    }
}
