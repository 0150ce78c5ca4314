//! The server: it holds the global model, broadcasts it and averages the clients'
//! updates. Its only input is update bytes, checked to hold the global model's
//! parameters and counts and nothing else; it has no way to take rows.

use crate::aggregate::{fedavg, Slot};
use crate::message::{ClientUpdate, GlobalModel};
use mtl::core::{Error, Result};
use mtl::{ModelSpec, MultiTaskModel};
use tch::{Device, Tensor};

/// The federation's server.
#[derive(Debug)]
pub struct Server {
    model: MultiTaskModel,
    // The trainable parameters by name, name-sorted, with their owning task.
    slots: Vec<(String, Tensor, Option<usize>)>,
    round: usize,
}

impl Server {
    /// A server whose global model is built from `spec` with fresh weights (drawn from
    /// libtorch's generator: seed it first for a reproducible run).
    pub fn new(spec: &ModelSpec) -> Result<Self> {
        let model = spec.build(Device::Cpu)?;
        let groups = model.param_groups()?;
        let mut slots: Vec<(String, Tensor, Option<usize>)> = groups
            .shared
            .iter()
            .map(|p| (p.name.clone(), p.tensor.shallow_clone(), None))
            .chain(groups.task.iter().enumerate().flat_map(|(k, ps)| {
                ps.iter()
                    .map(move |p| (p.name.clone(), p.tensor.shallow_clone(), Some(k)))
            }))
            .collect();
        slots.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Server {
            model,
            slots,
            round: 0,
        })
    }

    /// The round the next broadcast opens (0-based).
    pub fn round(&self) -> usize {
        self.round
    }

    /// The global model.
    pub fn model(&self) -> &MultiTaskModel {
        &self.model
    }

    /// The global model's bytes for the clients.
    pub fn broadcast(&self) -> Result<Vec<u8>> {
        GlobalModel {
            round: self.round,
            parameters: self
                .slots
                .iter()
                .map(|(n, t, _)| Ok((n.clone(), t.f_detach()?.copy())))
                .collect::<Result<_>>()?,
        }
        .to_bytes()
    }

    /// Averages the updates of this round's clients into the global model
    /// ([`fedavg`]) and opens the next round. Each message must be a client update for
    /// the current round from a distinct client, holding exactly the global model's
    /// parameters; otherwise nothing changes and the error names the message.
    pub fn aggregate(&mut self, messages: &[Vec<u8>]) -> Result<()> {
        if messages.is_empty() {
            return Err(Error::config(format!(
                "federated server: round {} received zero client updates",
                self.round
            )));
        }
        let updates = messages
            .iter()
            .map(|m| ClientUpdate::from_bytes(m))
            .collect::<Result<Vec<_>>>()?;
        for (i, u) in updates.iter().enumerate() {
            if u.round != self.round {
                return Err(Error::config(format!(
                    "federated server: client {} sent an update for round {} during round {}",
                    u.client, u.round, self.round
                )));
            }
            if updates[..i].iter().any(|v| v.client == u.client) {
                return Err(Error::config(format!(
                    "federated server: client {} sent two updates in round {}",
                    u.client, self.round
                )));
            }
        }
        let slots: Vec<Slot> = self
            .slots
            .iter()
            .map(|(name, t, task)| Slot {
                name: name.clone(),
                value: t.shallow_clone(),
                task: *task,
            })
            .collect();
        let averaged = fedavg(&slots, self.model.num_tasks(), &updates)?;
        tch::no_grad(|| -> Result<()> {
            for ((_, p, _), v) in self.slots.iter().zip(&averaged) {
                p.shallow_clone().f_copy_(v)?;
            }
            Ok(())
        })?;
        self.round += 1;
        Ok(())
    }
}
