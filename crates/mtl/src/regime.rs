//! The training regime of a step: the plain forward pass, or the consistency
//! ([`crate::semi`]) and adversarial ([`crate::robust`]) variants of it. Either way the
//! step ends as the same [`StepLosses`] for the same engine, so the trainer keeps one
//! loop and every weighting and aggregator applies unchanged.

use crate::config::TrainerConfig;
use crate::model::MultiTaskModel;
use crate::robust::{add_attacked_losses, adversarial_inputs, Adversarial};
use crate::semi::{consistency_loss, unlabelled_rows, Consistency, SemiSupervised, Teacher};
use crate::step::{StepData, StepLosses};
use mtl_core::{Error, Result};
use tch::Tensor;

/// What a run adds to the plain step, with the state it carries between steps.
#[derive(Debug, Default)]
pub(crate) struct Regime {
    semi: Option<SemiSupervised>,
    pub(crate) teacher: Option<Teacher>,
    adversarial: Option<Adversarial>,
    steps_per_epoch: u64,
}

impl Regime {
    /// The regime `cfg` asks for; a mean teacher starts at the model's weights.
    pub(crate) fn new(cfg: &TrainerConfig, model: &MultiTaskModel, steps_per_epoch: u64) -> Self {
        let teacher = cfg
            .semi_supervised
            .as_ref()
            .filter(|s| s.consistency == Consistency::MeanTeacher)
            .map(|s| Teacher::new(model, s.ema_decay));
        Regime {
            semi: cfg.semi_supervised.clone(),
            teacher,
            adversarial: cfg.adversarial.clone(),
            steps_per_epoch: steps_per_epoch.max(1),
        }
    }

    /// The step's K task losses and auxiliary term under this regime.
    pub(crate) fn losses(
        &self,
        model: &MultiTaskModel,
        data: &StepData,
        step: u64,
    ) -> Result<StepLosses> {
        if self.semi.is_none() && self.adversarial.is_none() {
            return data.losses(model, true, step);
        }
        let StepData::Joint(batch) = data else {
            return Err(per_task_refused());
        };
        let noise = self.semi.as_ref().map_or(0.0, |s| s.noise_std);
        let noisy = |x: &Tensor| -> Result<Tensor> {
            if noise == 0.0 {
                return Ok(x.shallow_clone());
            }
            if !x.is_floating_point() {
                return Err(Error::config(format!(
                    "semi_supervised.noise_std is {noise}, but the inputs are {:?}, which \
                     Gaussian noise cannot perturb: set noise_std to 0 (dropout then makes \
                     the two passes differ)",
                    x.kind()
                )));
            }
            Ok(x + x.f_randn_like()? * noise)
        };
        // The teacher runs first: its weights go into the model's variables in place,
        // which must happen before the student's graph is built on them.
        let teacher_outputs = match &self.teacher {
            Some(teacher) => Some(teacher.with_weights(model, || {
                Ok(model.forward_t(&noisy(&batch.x)?, true)?.outputs)
            })?),
            None => None,
        };
        let x = noisy(&batch.x)?;
        let rows = x.size().first().copied().unwrap_or(0);
        // Attacked copies join the clean rows in one forward pass, so a shared
        // representation (rep-grad mode) covers the whole objective.
        let attacked = match &self.adversarial {
            Some(adv) => adversarial_inputs(model, &x, &batch.targets, adv)?,
            None => Vec::new(),
        };
        let fwd = if attacked.is_empty() {
            model.forward_t(&x, true)?
        } else {
            let mut all = vec![x.shallow_clone()];
            all.extend(attacked);
            model.forward_t(&Tensor::f_cat(&all, 0)?, true)?
        };
        let clean_outputs: Vec<Tensor> = if self.adversarial.is_some() {
            fwd.outputs
                .iter()
                .map(|o| o.f_narrow(0, 0, rows))
                .collect::<std::result::Result<_, _>>()?
        } else {
            fwd.outputs.iter().map(Tensor::shallow_clone).collect()
        };
        let mut losses = model.losses(&clean_outputs, &batch.targets)?;
        let mut auxiliary = fwd.features.auxiliary_loss;
        if let Some(semi) = &self.semi {
            let second = match teacher_outputs {
                Some(outputs) => outputs,
                None => model.forward_t(&noisy(&batch.x)?, true)?.outputs,
            };
            let selected = match semi.rows {
                crate::semi::ConsistencyRows::All => None,
                crate::semi::ConsistencyRows::Unlabelled => {
                    Some(unlabelled_rows(&batch.targets, rows, x.device())?)
                }
            };
            let term = consistency_loss(model, &clean_outputs, &second, selected.as_ref())?;
            let w = semi.weight_at(step as f64 / self.steps_per_epoch as f64);
            tracing::trace!(step, consistency = term.double_value(&[]), weight = w);
            let term = term * w;
            auxiliary = Some(match auxiliary {
                Some(a) => a + term,
                None => term,
            });
        }
        if let Some(adv) = &self.adversarial {
            losses = add_attacked_losses(model, &fwd.outputs, &batch.targets, losses, adv, rows)?;
        }
        Ok(StepLosses {
            losses,
            absent: Vec::new(),
            shared: fwd.features.shared,
            auxiliary,
        })
    }

    /// After the optimiser's update: the mean teacher follows the student.
    pub(crate) fn after_update(&mut self, model: &MultiTaskModel) -> Result<()> {
        match &mut self.teacher {
            Some(t) => t.update(model),
            None => Ok(()),
        }
    }
}

/// Consistency and adversarial training work on one batch with every task's target.
pub(crate) fn per_task_refused() -> Error {
    Error::config(
        "semi-supervised and adversarial training need one batch with every task's \
         target (Trainer::fit); with tasks that each bring their own batch \
         (Trainer::fit_multi_input) they are not available",
    )
}
