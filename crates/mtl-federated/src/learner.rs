//! Local training on a client: a model with its method and optimiser, trained through
//! the library's step ([`mtl::train_step`]) with an optional anchor that ties it to
//! a reference model.

use crate::config::FederatedConfig;
use mtl::core::{params, Error, Optimizer, ParamGroups, Result, SeededRng};
use mtl::data::MultiTaskDataset;
use mtl::losses::Method;
use mtl::{train_step, GradMode, ModelSpec, MultiTaskModel, StepData};
use tch::{Device, Tensor};

/// A model being trained on one client's rows.
#[derive(Debug)]
pub(crate) struct Learner {
    pub(crate) model: MultiTaskModel,
    groups: ParamGroups,
    method: Method,
    optimizer: Optimizer,
    /// The trainable parameters by name, name-sorted: the order of every message.
    named: Vec<(String, Tensor)>,
    step: u64,
}

/// What a local pass measured.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LocalLoss {
    /// Σ over steps of (the step's summed task losses × its rows).
    pub(crate) weighted: f64,
    /// Σ over steps of its rows.
    pub(crate) rows: f64,
}

impl Learner {
    pub(crate) fn new(spec: &ModelSpec, config: &FederatedConfig, seed: u64) -> Result<Self> {
        let model = spec.build(Device::Cpu)?;
        let groups = model.param_groups()?;
        let method = mtl::losses::by_name(&config.method, model.num_tasks(), seed)?;
        let mut all = groups.all_tensors();
        all.extend(method.parameters());
        params::ensure_grads(&all)?;
        let optimizer = config.optimizer.build(all)?;
        let mut named: Vec<(String, Tensor)> = groups
            .shared
            .iter()
            .chain(groups.task.iter().flatten())
            .map(|p| (p.name.clone(), p.tensor.shallow_clone()))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Learner {
            model,
            groups,
            method,
            optimizer,
            named,
            step: 0,
        })
    }

    /// The trainable parameters by name, name-sorted (detached copies).
    pub(crate) fn parameters(&self) -> Result<Vec<(String, Tensor)>> {
        self.named
            .iter()
            .map(|(n, t)| Ok((n.clone(), t.f_detach()?.copy())))
            .collect()
    }

    /// Overwrites the parameters with `values` (name-sorted, as
    /// [`Learner::parameters`] gives them); a name or shape that differs is an error.
    pub(crate) fn load(&mut self, values: &[(String, Tensor)]) -> Result<()> {
        if values.len() != self.named.len() {
            return Err(Error::config(format!(
                "federated model: {} parameters received, the model has {}",
                values.len(),
                self.named.len()
            )));
        }
        tch::no_grad(|| {
            for ((name, p), (got, v)) in self.named.iter().zip(values) {
                if name != got {
                    return Err(Error::config(format!(
                        "federated model: parameter `{got}` received where the model has `{name}`"
                    )));
                }
                if p.size() != v.size() {
                    return Err(Error::shape(
                        format!("federated model parameter `{name}`"),
                        format!("{:?}", p.size()),
                        format!("{:?}", v.size()),
                    ));
                }
                p.shallow_clone().f_copy_(v)?;
            }
            Ok(())
        })
    }

    /// `epochs` passes over `data` in seeded mini-batches. Each step runs the library's
    /// step (forward, the method, `.grad()`), then, with an anchor `(ρ, θ̄)`, adds the
    /// gradient of `ρ/2 ‖θ − θ̄‖²`, which is `ρ (θ − θ̄)`, before the optimiser moves.
    pub(crate) fn train(
        &mut self,
        data: &MultiTaskDataset,
        epochs: usize,
        batch_size: usize,
        rng: &mut SeededRng,
        anchor: Option<(f64, &[(String, Tensor)])>,
    ) -> Result<LocalLoss> {
        let mut loss = LocalLoss::default();
        for epoch in 0..epochs {
            for batch in data.batches(batch_size, Some(rng))? {
                let rows = batch.len() as f64;
                let step = StepData::Joint(batch);
                self.optimizer.zero_grad();
                let out = train_step(
                    &self.model,
                    &self.groups,
                    &mut self.method,
                    GradMode::Parameters,
                    &step,
                    self.step,
                    epoch,
                )?;
                if let Some((rho, reference)) = anchor.filter(|(rho, _)| *rho > 0.0) {
                    self.add_anchor_gradient(rho, reference)?;
                }
                self.optimizer.step()?;
                self.step += 1;
                loss.weighted += out.losses.iter().sum::<f64>() * rows;
                loss.rows += rows;
            }
        }
        Ok(loss)
    }

    fn add_anchor_gradient(&self, rho: f64, reference: &[(String, Tensor)]) -> Result<()> {
        tch::no_grad(|| {
            for ((name, p), (got, r)) in self.named.iter().zip(reference) {
                if name != got {
                    return Err(Error::config(format!(
                        "federated anchor: parameter `{got}` where the model has `{name}`"
                    )));
                }
                let mut grad = p.grad();
                let _ = grad.f_add_(&p.f_sub(r)?.f_mul_scalar(rho)?)?;
            }
            Ok(())
        })
    }
}
