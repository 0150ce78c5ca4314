//! Single-task baselines: the reference point of Δm. Each task is trained alone, on
//! its own labelled rows, by a model the caller builds, with the multi-task run's
//! trainer settings, and evaluated on the same test rows as the multi-task model.

use crate::config::Unfreeze;
use crate::delta_m::DeltaM;
use crate::early_stopping::Monitor;
use crate::evaluate::{evaluate, Evaluation};
use crate::model::MultiTaskModel;
use crate::report::RunReport;
use crate::trainer::Trainer;
use mtl_core::{Error, Result};
use mtl_data::{JointData, MultiTaskDataset, TensorDataset};
use serde::{Deserialize, Serialize};

/// What training the single-task baselines produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baselines {
    /// `reports[k]`: the run of task k's model.
    pub reports: Vec<RunReport>,
    /// `test[k]`: task k's model on the test rows (one task).
    pub test: Vec<Evaluation>,
}

impl Baselines {
    /// Δm of a multi-task model's test evaluation against these baselines.
    pub fn delta_m(&self, model_test: &Evaluation) -> Result<DeltaM> {
        DeltaM::compute(model_test, &self.test)
    }
}

/// Data whose tasks can be taken one at a time, for the single-task baselines of
/// [`Trainer::fit_baselines`]: table rows ([`MultiTaskDataset`]) or tensors
/// ([`TensorDataset`]).
pub trait OnlyTask: JointData + Sized {
    /// The same rows with only task `k`.
    fn only_task(&self, k: usize) -> Result<Self>;
}

impl OnlyTask for MultiTaskDataset {
    fn only_task(&self, k: usize) -> Result<Self> {
        MultiTaskDataset::only_task(self, k)
    }
}

impl OnlyTask for TensorDataset {
    fn only_task(&self, k: usize) -> Result<Self> {
        TensorDataset::only_task(self, k)
    }
}

/// `prefix` in task `k`'s baseline model, where task k is task 0: a `task<k>`
/// component becomes `task0`; a prefix under another task has no counterpart (`None`);
/// any other prefix (shared parameters) is unchanged.
fn baseline_prefix(prefix: &str, k: usize) -> Option<String> {
    let mut parts = Vec::new();
    for c in prefix.split('.') {
        match c.strip_prefix("task").and_then(|t| t.parse::<usize>().ok()) {
            Some(j) if j == k => parts.push("task0"),
            Some(_) => return None,
            None => parts.push(c),
        }
    }
    Some(parts.join("."))
}

impl Trainer {
    /// Trains one single-task model per task of `train` and evaluates each on its task
    /// of `test`. `build(k, data)` builds the model for task k from its single-task
    /// dataset (one head, usually the multi-task model's architecture with K = 1).
    ///
    /// Every baseline uses this trainer's configuration, with equal weighting (there is
    /// only one task to weigh), no checkpointing, an early-stopping monitor on a
    /// specific task mapped to the baseline's only task, and the freeze and unfreeze
    /// prefixes of task k's parameters mapped to task 0's (those of other tasks left
    /// out).
    pub fn fit_baselines<D, F>(
        &self,
        mut build: F,
        train: &D,
        validation: Option<&D>,
        test: &D,
    ) -> Result<Baselines>
    where
        D: OnlyTask,
        F: FnMut(usize, &D) -> Result<MultiTaskModel>,
    {
        if JointData::num_tasks(test) != JointData::num_tasks(train) {
            return Err(Error::TaskCount {
                context: "baseline test data vs training data".into(),
                expected: JointData::num_tasks(train),
                got: JointData::num_tasks(test),
            });
        }
        let mut reports = Vec::with_capacity(JointData::num_tasks(train));
        let mut evaluations = Vec::with_capacity(JointData::num_tasks(train));
        for k in 0..JointData::num_tasks(train) {
            let _span = tracing::info_span!("baseline", task = k).entered();
            let mut cfg = self.config().clone().method("ew");
            cfg.method_params.clear();
            cfg.checkpoint = None;
            // The joint run's metrics files are not the baselines'.
            cfg.tracking = None;
            // Freezes follow the baseline's parameters: task k's become task 0's, the
            // other tasks' are not in its model.
            cfg.frozen = cfg
                .frozen
                .iter()
                .filter_map(|p| baseline_prefix(p, k))
                .collect();
            cfg.unfreeze = cfg
                .unfreeze
                .iter()
                .filter_map(|u| Some(Unfreeze::new(baseline_prefix(&u.prefix, k)?, u.epoch)))
                .collect();
            if let Some(es) = &mut cfg.early_stopping {
                if let Monitor::Metric { task, name } = &es.monitor {
                    es.monitor = if *task == k {
                        Monitor::Metric {
                            task: 0,
                            name: name.clone(),
                        }
                    } else {
                        Monitor::MeanPrimary
                    };
                }
            }
            let tr = OnlyTask::only_task(train, k)?;
            let va = validation.map(|v| OnlyTask::only_task(v, k)).transpose()?;
            let te = OnlyTask::only_task(test, k)?;
            let mut model = build(k, &tr)?;
            if model.num_tasks() != 1 {
                return Err(Error::TaskCount {
                    context: format!("baseline model for task {k}"),
                    expected: 1,
                    got: model.num_tasks(),
                });
            }
            let report = Trainer::new(cfg)?.fit(&mut model, &tr, va.as_ref())?;
            evaluations.push(evaluate(&model, &te, 256)?);
            reports.push(report);
        }
        Ok(Baselines {
            reports,
            test: evaluations,
        })
    }
}

/// Δm lives with the baselines it is measured against, so the report does not depend on them.
impl RunReport {
    /// Records the model's test evaluation and its Δm against `baselines`; returns Δm.
    pub fn compare_to_baselines(
        &mut self,
        test: Evaluation,
        baselines: &Baselines,
    ) -> Result<&DeltaM> {
        let delta = baselines.delta_m(&test)?;
        for t in delta.tasks.iter().filter(|t| t.negative_transfer) {
            tracing::warn!(task = %t.task, metric = %t.metric, value = t.value, baseline = t.baseline, "negative transfer");
        }
        self.test = Some(test);
        Ok(self.delta_m.insert(delta))
    }
}

#[cfg(test)]
mod tests {
    use super::baseline_prefix;

    #[test]
    fn prefixes_map_to_the_baseline_model() {
        assert_eq!(
            baseline_prefix("task1.head.", 1).as_deref(),
            Some("task0.head.")
        );
        assert_eq!(baseline_prefix("task1.", 0), None);
        assert_eq!(baseline_prefix("trunk.0.", 2).as_deref(), Some("trunk.0."));
        assert_eq!(baseline_prefix("task", 1).as_deref(), Some("task"));
    }
}
