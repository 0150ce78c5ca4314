//! Single-task baselines: the reference point of Δm. Each task is trained alone, on
//! its own labelled rows, by a model the caller builds, with the multi-task run's
//! trainer settings, and evaluated on the same test rows as the multi-task model.

use crate::delta_m::DeltaM;
use crate::early_stopping::Monitor;
use crate::evaluate::{evaluate, Evaluation};
use crate::model::MultiTaskModel;
use crate::report::RunReport;
use crate::trainer::Trainer;
use mtl_core::{Error, Result};
use mtl_data::MultiTaskDataset;
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

impl Trainer {
    /// Trains one single-task model per task of `train` and evaluates each on its task
    /// of `test`. `build(k, data)` builds the model for task k from its single-task
    /// dataset (one head, usually the multi-task model's architecture with K = 1).
    ///
    /// Every baseline uses this trainer's configuration, with equal weighting (there is
    /// only one task to weigh), no checkpointing, and an early-stopping monitor on a
    /// specific task mapped to the baseline's only task.
    pub fn fit_baselines<F>(
        &self,
        mut build: F,
        train: &MultiTaskDataset,
        validation: Option<&MultiTaskDataset>,
        test: &MultiTaskDataset,
    ) -> Result<Baselines>
    where
        F: FnMut(usize, &MultiTaskDataset) -> Result<MultiTaskModel>,
    {
        if test.num_tasks() != train.num_tasks() {
            return Err(Error::TaskCount {
                context: "baseline test data vs training data".into(),
                expected: train.num_tasks(),
                got: test.num_tasks(),
            });
        }
        let mut reports = Vec::with_capacity(train.num_tasks());
        let mut evaluations = Vec::with_capacity(train.num_tasks());
        for k in 0..train.num_tasks() {
            let _span = tracing::info_span!("baseline", task = k).entered();
            let mut cfg = self.config().clone().method("ew");
            cfg.method_params.clear();
            cfg.checkpoint = None;
            // The joint run's metrics files are not the baselines'.
            cfg.tracking = None;
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
            let tr = train.only_task(k)?;
            let va = validation.map(|v| v.only_task(k)).transpose()?;
            let te = test.only_task(k)?;
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
