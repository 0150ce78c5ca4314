//! A simulated client: private rows, a local copy of the global model and, under
//! Ditto, a personalised model. It reads and writes only message bytes.

use crate::config::FederatedConfig;
use crate::learner::{Learner, LocalLoss};
use crate::message::{ClientUpdate, GlobalModel};
use crate::split::ClientData;
use mtl::core::{derive_rng, Error, Result, SeededRng};
use mtl::{evaluate, Evaluation, ModelSpec};

/// One participant of a federation. Its rows are private fields with no accessor that
/// returns them; what it shares is [`Client::train_round`]'s bytes.
#[derive(Debug)]
pub struct Client {
    index: usize,
    data: ClientData,
    global: Learner,
    personal: Option<Learner>,
    // Whether the personalised model has taken its first global model.
    personal_started: bool,
    rng: SeededRng,
    config: FederatedConfig,
}

/// A client's evaluation on its held-out rows.
#[derive(Debug, Clone)]
pub struct ClientEvaluation {
    /// The global model.
    pub global: Evaluation,
    /// Its personalised model (under Ditto).
    pub personal: Option<Evaluation>,
}

/// What a client measured in a round, for the run's report (never sent to the server).
#[derive(Debug, Clone, Copy)]
pub struct LocalStats {
    /// The mean over its local steps of the summed task losses, row-weighted.
    pub train_loss: f64,
    /// The rows it trained on in the round (its rows × local epochs).
    pub rows_seen: f64,
}

impl Client {
    /// Client `index` with its private `data`, a model built from `spec` (the same spec
    /// as the server's, so parameter names match) and, when `config.ditto` is set, a
    /// personalised model. The spec's task count must be the data's.
    pub fn new(
        index: usize,
        data: ClientData,
        spec: &ModelSpec,
        config: &FederatedConfig,
    ) -> Result<Self> {
        config.check()?;
        if data.train.is_empty() {
            return Err(Error::config(format!(
                "federated client {index} (`{}`) has no training rows",
                data.name
            )));
        }
        if spec.num_tasks() != data.train.num_tasks() {
            return Err(Error::TaskCount {
                context: format!(
                    "federated client {index} (`{}`): model spec vs data",
                    data.name
                ),
                expected: spec.num_tasks(),
                got: data.train.num_tasks(),
            });
        }
        let seed = config.seed.wrapping_add(index as u64);
        Ok(Client {
            index,
            global: Learner::new(spec, config, seed)?,
            personal: match config.ditto {
                Some(_) => Some(Learner::new(spec, config, seed)?),
                None => None,
            },
            personal_started: false,
            rng: derive_rng(config.seed, &format!("federated-client{index}")),
            data,
            config: config.clone(),
        })
    }

    /// The client's index.
    pub fn index(&self) -> usize {
        self.index
    }
    /// The client's name.
    pub fn name(&self) -> &str {
        &self.data.name
    }
    /// Its number of training and held-out rows.
    pub fn rows(&self) -> (usize, usize) {
        (self.data.train.len(), self.data.test.len())
    }
    /// Its labelled training and held-out rows per task.
    pub fn labelled(&self) -> (Vec<usize>, Vec<usize>) {
        let count = |d: &mtl::data::MultiTaskDataset| {
            d.tasks().iter().map(|t| t.labelled()).collect::<Vec<_>>()
        };
        (count(&self.data.train), count(&self.data.test))
    }

    /// One round: reads the server's global model from `global`, trains its copy for
    /// the local epochs (with FedProx's proximal term when μ > 0) and, under Ditto,
    /// trains its personalised model anchored to the global one; returns the update's
    /// bytes for the server and what it measured.
    ///
    /// A personalised model starts from the first global model the client trains on.
    pub fn train_round(&mut self, global: &[u8]) -> Result<(Vec<u8>, LocalStats)> {
        let received = GlobalModel::from_bytes(global)?;
        self.global.load(&received.parameters)?;
        let cfg = &self.config;
        let (epochs, batch) = (cfg.local_epochs, cfg.batch_size);
        let mu = cfg.proximal_mu;
        let loss: LocalLoss = self.global.train(
            &self.data.train,
            epochs,
            batch,
            &mut self.rng,
            Some((mu, &received.parameters)),
        )?;
        if let (Some(personal), Some(ditto)) = (self.personal.as_mut(), cfg.ditto) {
            if !self.personal_started {
                personal.load(&received.parameters)?;
                self.personal_started = true;
            }
            personal.train(
                &self.data.train,
                ditto.epochs.unwrap_or(epochs),
                batch,
                &mut self.rng,
                Some((ditto.lambda, &received.parameters)),
            )?;
        }
        let (labelled, _) = self.labelled();
        let update = ClientUpdate {
            client: self.index,
            round: received.round,
            rows: self.data.train.len(),
            labelled,
            parameters: self.global.parameters()?,
        };
        let stats = LocalStats {
            train_loss: if loss.rows > 0.0 {
                loss.weighted / loss.rows
            } else {
                0.0
            },
            rows_seen: loss.rows,
        };
        Ok((update.to_bytes()?, stats))
    }

    /// Evaluates the global model in `global` on the client's held-out rows, and its
    /// personalised model when it has one; `None` without held-out rows.
    pub fn evaluate(&mut self, global: &[u8]) -> Result<Option<ClientEvaluation>> {
        if self.data.test.is_empty() {
            return Ok(None);
        }
        let received = GlobalModel::from_bytes(global)?;
        self.global.load(&received.parameters)?;
        let batch = self.config.eval_batch_size;
        let on_global = evaluate(&self.global.model, &self.data.test, batch)?;
        // A client never sampled yet has no personalised model of its own: it would use
        // the global one.
        let on_personal = match &self.personal {
            Some(p) if self.personal_started => Some(evaluate(&p.model, &self.data.test, batch)?),
            Some(_) => Some(on_global.clone()),
            None => None,
        };
        Ok(Some(ClientEvaluation {
            global: on_global,
            personal: on_personal,
        }))
    }

    /// The personalised model's parameters, name-sorted (`None` without Ditto). They
    /// stay on the client; this is for inspection and tests.
    pub fn personal_parameters(&self) -> Result<Option<Vec<(String, tch::Tensor)>>> {
        self.personal.as_ref().map(Learner::parameters).transpose()
    }
}
