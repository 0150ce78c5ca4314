//! Held-out scores, per row and per task: a large task dominates the row average, every
//! task counts once in the task average.

use mtl_core::{Error, Result};
use mtl_data::GroupedData;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

/// Held-out scores of one model. For regression `loss` is the mean squared error and
/// `accuracy` is absent; for a 0/1 target `loss` is the log-loss (natural log, the
/// probabilities clipped to `[1e-15, 1 − 1e-15]`) and `accuracy` thresholds at ½.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// The loss averaged over every test row.
    pub loss_rows: f64,
    /// The loss averaged within each task, then over tasks with test rows.
    pub loss_tasks: f64,
    /// The accuracy over rows (0/1 targets).
    pub accuracy_rows: Option<f64>,
    /// The accuracy averaged over tasks (0/1 targets).
    pub accuracy_tasks: Option<f64>,
    /// The test rows scored.
    pub rows: usize,
    /// The tasks with test rows.
    pub tasks: usize,
}

/// Scores `predict(task, x)` (values, or probabilities of 1 when `test.binary`) on
/// every task of `test`; tasks without rows are skipped.
///
/// Errors: what `predict` returns, a prediction of the wrong length or non-finite, or
/// no test rows at all.
pub fn score(
    test: &GroupedData,
    mut predict: impl FnMut(usize, &Array2<f64>) -> Result<Array1<f64>>,
) -> Result<Score> {
    let (mut loss_sum, mut acc_sum, mut rows) = (0.0, 0.0, 0usize);
    let (mut task_loss, mut task_acc, mut tasks) = (0.0, 0.0, 0usize);
    for (k, t) in test.tasks.iter().enumerate() {
        if t.y.is_empty() {
            continue;
        }
        let pred = predict(k, &t.x)?;
        if pred.len() != t.y.len() {
            return Err(Error::RowCount {
                what: format!("predictions for task `{}`", t.name),
                expected: t.y.len(),
                got: pred.len(),
            });
        }
        if let Some(v) = pred.iter().find(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: format!("prediction for task `{}`", t.name),
                task: Some(k),
                step: None,
                value: v.to_string(),
            });
        }
        let (mut l, mut a) = (0.0, 0.0);
        for (p, y) in pred.iter().zip(&t.y) {
            if test.binary {
                let p = p.clamp(1e-15, 1.0 - 1e-15);
                l -= if *y == 1.0 { p.ln() } else { (1.0 - p).ln() };
                a += f64::from(u8::from((p >= 0.5) == (*y == 1.0)));
            } else {
                l += (p - y) * (p - y);
            }
        }
        let n = t.y.len();
        loss_sum += l;
        acc_sum += a;
        rows += n;
        task_loss += l / n as f64;
        task_acc += a / n as f64;
        tasks += 1;
    }
    if rows == 0 {
        return Err(Error::config("no test rows to score"));
    }
    Ok(Score {
        loss_rows: loss_sum / rows as f64,
        loss_tasks: task_loss / tasks as f64,
        accuracy_rows: test.binary.then(|| acc_sum / rows as f64),
        accuracy_tasks: test.binary.then(|| task_acc / tasks as f64),
        rows,
        tasks,
    })
}
