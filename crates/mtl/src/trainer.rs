//! The training loop: epochs of seeded mini-batches, one method (weighting or
//! aggregator) combining the tasks, validation each epoch, early stopping with the best
//! weights restored, and a [`RunReport`].

use crate::early_stopping::EarlyStopping;
use crate::evaluate::{evaluate, Evaluation};
use crate::model::MultiTaskModel;
use crate::report::{EpochRecord, RunReport};
use crate::step::{backward_step, GradMode};
use mtl_core::{derive_rng, params, Error, OptimizerConfig, Result};
use mtl_data::MultiTaskDataset;
use mtl_losses::Method;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Trainer settings (plain data: serialisable into the report and from config files).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerConfig {
    /// The maximum number of epochs.
    pub epochs: usize,
    /// Rows per mini-batch.
    pub batch_size: usize,
    /// The optimiser.
    pub optimizer: OptimizerConfig,
    /// The registry name of the task-combination method (`"ew"`, `"pcgrad"`...).
    pub method: String,
    /// Seed for shuffling and for the method's own randomness.
    pub seed: u64,
    /// Early stopping on the validation set, if any.
    pub early_stopping: Option<EarlyStopping>,
    /// Parameter or representation gradients for gradient-level methods.
    pub grad_mode: GradMode,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        TrainerConfig {
            epochs: 10,
            batch_size: 32,
            optimizer: OptimizerConfig::adam(1e-3),
            method: "ew".into(),
            seed: 0,
            early_stopping: None,
            grad_mode: GradMode::Parameters,
        }
    }
}

impl TrainerConfig {
    /// Sets the number of epochs.
    pub fn epochs(mut self, n: usize) -> Self {
        self.epochs = n;
        self
    }
    /// Sets the batch size.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// Sets the optimiser.
    pub fn optimizer(mut self, o: OptimizerConfig) -> Self {
        self.optimizer = o;
        self
    }
    /// Sets the method by registry name.
    pub fn method(mut self, name: impl Into<String>) -> Self {
        self.method = name.into();
        self
    }
    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Turns on early stopping.
    pub fn early_stopping(mut self, es: EarlyStopping) -> Self {
        self.early_stopping = Some(es);
        self
    }
    /// Sets the gradient mode.
    pub fn grad_mode(mut self, mode: GradMode) -> Self {
        self.grad_mode = mode;
        self
    }

    fn check(&self) -> Result<()> {
        if self.epochs == 0 || self.batch_size == 0 {
            return Err(Error::config(format!(
                "epochs and batch_size must be positive, got {} and {}",
                self.epochs, self.batch_size
            )));
        }
        Ok(())
    }
}

/// Trains a [`MultiTaskModel`].
#[derive(Debug)]
pub struct Trainer {
    config: TrainerConfig,
    method: Option<Method>,
}

impl Trainer {
    /// A trainer that builds its method from `config.method` by name.
    pub fn new(config: TrainerConfig) -> Result<Self> {
        config.check()?;
        Ok(Trainer {
            config,
            method: None,
        })
    }

    /// Uses an already-built method (a custom one, or one with non-default
    /// hyper-parameters such as static weights) instead of `config.method`.
    pub fn with_method(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }

    /// Trains `model` on `train`, validating on `validation` after every epoch when
    /// given. With early stopping the model ends with the best epoch's weights.
    pub fn fit(
        &mut self,
        model: &mut MultiTaskModel,
        train: &MultiTaskDataset,
        validation: Option<&MultiTaskDataset>,
    ) -> Result<RunReport> {
        let cfg = self.config.clone();
        let k = model.num_tasks();
        if train.num_tasks() != k {
            return Err(Error::TaskCount {
                context: "training data vs model".into(),
                expected: k,
                got: train.num_tasks(),
            });
        }
        if train.is_empty() {
            return Err(Error::config("the training set is empty"));
        }
        if let (Some(es), None) = (&cfg.early_stopping, validation) {
            return Err(Error::config(format!(
                "early stopping on {:?} needs a validation set",
                es.monitor
            )));
        }
        let mut method = match self.method.take() {
            Some(m) => m,
            None => mtl_losses::by_name(&cfg.method, k, cfg.seed)?,
        };
        let method_name = match &method {
            Method::Weighting(w) => w.name(),
            Method::Aggregator(a) => a.name(),
        }
        .to_string();
        let groups = model.param_groups()?;
        let mut trainable = groups.all_tensors();
        if let Method::Weighting(w) = &method {
            trainable.extend(w.parameters());
        }
        params::ensure_grads(&trainable)?;
        let mut opt = cfg.optimizer.build(trainable)?;
        let mut rng = derive_rng(cfg.seed, "batches");
        let device = model.device();

        let start = Instant::now();
        let mut epochs = Vec::new();
        let mut best: Option<(f64, usize, Vec<(String, tch::Tensor)>)> = None;
        let mut since_best = 0;
        let mut stopped_early = false;
        let mut step: u64 = 0;
        for epoch in 0..cfg.epochs {
            let t0 = Instant::now();
            let mut loss_sum = vec![0.0; k];
            let mut weight_sum: Vec<f64> = Vec::new();
            let mut steps_in_epoch = 0.0;
            for batch in train.batches(cfg.batch_size, Some(&mut rng))? {
                let batch = batch.to_device(device);
                opt.zero_grad();
                let out = backward_step(
                    model,
                    &groups,
                    &mut method,
                    cfg.grad_mode,
                    &batch.x,
                    &batch.targets,
                    step,
                    epoch,
                )?;
                opt.step()?;
                for (s, l) in loss_sum.iter_mut().zip(&out.losses) {
                    *s += l;
                }
                if weight_sum.len() != out.weights.len() {
                    weight_sum = vec![0.0; out.weights.len()];
                }
                for (s, w) in weight_sum.iter_mut().zip(&out.weights) {
                    *s += w;
                }
                steps_in_epoch += 1.0;
                step += 1;
                tracing::trace!(step, losses = ?out.losses, "step");
            }
            let validation_eval: Option<Evaluation> = match validation {
                Some(v) => Some(evaluate(model, v, cfg.batch_size.max(256))?),
                None => None,
            };
            let record = EpochRecord {
                epoch,
                train_losses: loss_sum.iter().map(|s| s / steps_in_epoch).collect(),
                task_weights: weight_sum.iter().map(|s| s / steps_in_epoch).collect(),
                validation: validation_eval,
                seconds: t0.elapsed().as_secs_f64(),
            };
            tracing::info!(epoch, train_losses = ?record.train_losses, weights = ?record.task_weights, "epoch done");
            let mut stop = false;
            if let (Some(es), Some(ev)) = (&cfg.early_stopping, &record.validation) {
                let score = es.monitor.score(ev).ok_or_else(|| {
                    Error::config(format!(
                        "early-stopping monitor {:?} is not among the validation metrics",
                        es.monitor
                    ))
                })?;
                let improved = best
                    .as_ref()
                    .is_none_or(|(b, _, _)| score > b + es.min_delta);
                if improved {
                    best = Some((score, epoch, model.snapshot()));
                    since_best = 0;
                } else {
                    since_best += 1;
                    stop = since_best >= es.patience;
                }
            }
            epochs.push(record);
            if stop {
                stopped_early = true;
                tracing::info!(epoch, "early stopping");
                break;
            }
        }
        let best_epoch = match best {
            Some((_, e, snap)) => {
                model.restore(&snap)?;
                e
            }
            None => epochs.len().saturating_sub(1),
        };
        self.method = Some(method);
        Ok(RunReport {
            config: cfg,
            method: method_name,
            tasks: model.task_names(),
            epochs,
            best_epoch,
            stopped_early,
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}
