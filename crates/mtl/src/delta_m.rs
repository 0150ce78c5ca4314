//! Δm, the average relative change of a multi-task model against single-task
//! baselines (Maninis, Radosavovic & Kokkinos, "Attentive Single-Tasking of Multiple
//! Tasks", CVPR 2019), in the sign convention of Liu et al. (CAGrad, 2021) and Navon et
//! al. (Nash-MTL, 2022):
//!
//! ```text
//! Δm = (1/K) Σₖ (−1)^{lₖ} (Mₖ − M_b,ₖ) / M_b,ₖ × 100 %,   lₖ = 1 if higher is better
//! ```
//!
//! so **lower is better**: a negative Δm means the multi-task model beats its
//! single-task baselines on average. Each task's term is positive exactly when the task
//! does worse than its baseline, which is what the report flags as negative transfer.
//! Mₖ is the task's primary metric (the first its head reports).

use crate::evaluate::Evaluation;
use mtl_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// One task's comparison with its baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDelta {
    /// The task name.
    pub task: String,
    /// The metric compared.
    pub metric: String,
    /// Whether higher values of the metric are better.
    pub higher_is_better: bool,
    /// The multi-task model's value Mₖ.
    pub value: f64,
    /// The single-task baseline's value M_b,ₖ.
    pub baseline: f64,
    /// (−1)^{lₖ} (Mₖ − M_b,ₖ) / M_b,ₖ × 100: positive means worse than the baseline.
    pub relative_change: f64,
    /// The task does worse than its single-task baseline.
    pub negative_transfer: bool,
}

/// Δm over all tasks, with the per-task terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeltaM {
    /// Δm in percent (lower is better; negative: the multi-task model wins on average).
    pub delta_m: f64,
    /// One entry per task.
    pub tasks: Vec<TaskDelta>,
}

impl DeltaM {
    /// Δm from (task, metric, higher-is-better, model value, baseline value) tuples.
    /// A zero or non-finite baseline (the ratio is undefined) is an error.
    pub fn from_values(values: &[(String, String, bool, f64, f64)]) -> Result<Self> {
        if values.is_empty() {
            return Err(Error::TaskCount {
                context: "Δm".into(),
                expected: 0,
                got: 0,
            });
        }
        let tasks = values
            .iter()
            .map(|(task, metric, higher, value, baseline)| {
                if !(baseline.is_finite() && *baseline != 0.0 && value.is_finite()) {
                    return Err(Error::config(format!(
                        "Δm: task `{task}` has {metric} {value} against baseline {baseline}; \
                         the relative change needs finite values and a non-zero baseline"
                    )));
                }
                let sign = if *higher { -1.0 } else { 1.0 };
                // `+ 0.0` turns the −0 of an exact tie into 0.
                let relative_change = sign * (value - baseline) / baseline * 100.0 + 0.0;
                Ok(TaskDelta {
                    task: task.clone(),
                    metric: metric.clone(),
                    higher_is_better: *higher,
                    value: *value,
                    baseline: *baseline,
                    relative_change,
                    negative_transfer: relative_change > 0.0,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let delta_m = tasks.iter().map(|t| t.relative_change).sum::<f64>() / tasks.len() as f64;
        Ok(DeltaM { delta_m, tasks })
    }

    /// Δm of `model` (an evaluation of the multi-task model) against `baselines`, where
    /// `baselines[k]` evaluates task k's single-task model on the same rows (its only
    /// task, or task k of a K-task evaluation).
    pub fn compute(model: &Evaluation, baselines: &[Evaluation]) -> Result<Self> {
        Self::from_values(&task_values(model, baselines, Metrics::Primary)?.concat())
    }

    /// Δm over every metric, as LibMTL computes it for NYUv2 and Cityscapes: task k's
    /// term is the mean of the signed relative changes of all the metrics its head
    /// reports (each by its own direction: mIoU up, depth error down, …), and Δm is the
    /// mean of the K terms, so a task with five metrics weighs as much as one with one.
    /// `tasks` holds one entry per (task, metric); each entry's `negative_transfer` is
    /// its task's verdict (the task's mean term is positive).
    ///
    /// ```
    /// use mtl::{DeltaM, Evaluation};
    /// use mtl::heads::MetricValue;
    /// let eval = |miou: f64, err: f64| Evaluation {
    ///     tasks: vec!["segment".into(), "depth".into()],
    ///     losses: vec![0.0, 0.0],
    ///     metrics: vec![
    ///         vec![MetricValue::new("miou", miou, true), MetricValue::new("pixel_accuracy", 0.8, true)],
    ///         vec![MetricValue::new("abs_err", err, false)],
    ///     ],
    /// };
    /// let base = eval(0.50, 0.40);
    /// let dm = DeltaM::compute_all_metrics(&eval(0.55, 0.44), &[base.clone(), base])?;
    /// // segment: (−10 % + 0 %) / 2 = −5 %; depth: +10 %; Δm = 2.5 %.
    /// assert!((dm.delta_m - 2.5).abs() < 1e-9);
    /// assert_eq!(dm.negative_transfer(), ["depth"]);
    /// # Ok::<(), mtl::core::Error>(())
    /// ```
    pub fn compute_all_metrics(model: &Evaluation, baselines: &[Evaluation]) -> Result<Self> {
        let per_task = task_values(model, baselines, Metrics::All)?;
        let mut entries = Vec::new();
        let mut task_terms = Vec::with_capacity(per_task.len());
        for values in per_task {
            let task = Self::from_values(&values)?;
            let worse = task.delta_m > 0.0;
            task_terms.push(task.delta_m);
            entries.extend(task.tasks.into_iter().map(|mut e| {
                e.negative_transfer = worse;
                e
            }));
        }
        Ok(DeltaM {
            delta_m: task_terms.iter().sum::<f64>() / task_terms.len() as f64,
            tasks: entries,
        })
    }

    /// The tasks that do worse than their baselines.
    pub fn negative_transfer(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for t in self.tasks.iter().filter(|t| t.negative_transfer) {
            // One entry per metric under `compute_all_metrics`: each task once.
            if !names.contains(&t.task.as_str()) {
                names.push(&t.task);
            }
        }
        names
    }
}

/// (task, metric, higher-is-better, model value, baseline value), as
/// [`DeltaM::from_values`] takes them.
type Comparison = (String, String, bool, f64, f64);

/// Which of a task's metrics Δm compares.
#[derive(Clone, Copy, PartialEq)]
enum Metrics {
    /// The first the head reports.
    Primary,
    /// Every one it reports.
    All,
}

/// Per task of `model`, the (task, metric, higher-is-better, value, baseline value)
/// tuples [`DeltaM::from_values`] takes, each baseline value read from the task's own
/// evaluation in `baselines` (its only task, or the task of the same name).
fn task_values(
    model: &Evaluation,
    baselines: &[Evaluation],
    which: Metrics,
) -> Result<Vec<Vec<Comparison>>> {
    let k = model.tasks.len();
    if baselines.len() != k {
        return Err(Error::TaskCount {
            context: "Δm baselines".into(),
            expected: k,
            got: baselines.len(),
        });
    }
    let mut per_task = Vec::with_capacity(k);
    for (t, (name, base)) in model.tasks.iter().zip(baselines).enumerate() {
        let metrics = model.metrics.get(t).map(Vec::as_slice).unwrap_or_default();
        let metrics = match which {
            Metrics::Primary => metrics.get(..1).unwrap_or_default(),
            Metrics::All => metrics,
        };
        if metrics.is_empty() {
            return Err(Error::config(format!(
                "Δm: task `{name}` reports no metric"
            )));
        }
        let bt = base.tasks.iter().position(|n| n == name).ok_or_else(|| {
            Error::config(format!(
                "Δm: the baseline for task `{name}` evaluates {:?}",
                base.tasks
            ))
        })?;
        let values = metrics
            .iter()
            .map(|m| {
                let baseline = base.metric(bt, &m.name).ok_or_else(|| {
                    Error::config(format!(
                        "Δm: the baseline for task `{name}` lacks metric `{}`",
                        m.name
                    ))
                })?;
                Ok((
                    name.clone(),
                    m.name.clone(),
                    m.higher_is_better,
                    m.value,
                    baseline,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        per_task.push(values);
    }
    Ok(per_task)
}
