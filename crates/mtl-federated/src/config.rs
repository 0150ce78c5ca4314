//! The settings of a federated run: rounds, local training, aggregation and
//! personalisation.

use mtl::core::{Error, OptimizerConfig, Result};
use serde::{Deserialize, Serialize};

/// Ditto's personalised models (Li, Hu, Beirami & Smith, "Ditto: Fair and Robust
/// Federated Learning Through Personalization", ICML 2021).
///
/// Client `c` keeps a model `v_c` of its own that never leaves it and minimises
/// `h_c(v) = F_c(v) + λ/2 ‖v − θ̄‖²`, where `F_c` is its multi-task loss and `θ̄` the
/// global model it received that round: each local step is
/// `v ← v − η (∇F_c(v) + λ (v − θ̄))` (through the run's optimiser), while the global
/// model trains as in FedAvg. λ = 0 is purely local training; λ → ∞ is the global model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ditto {
    /// The anchor strength λ. The default, 1, is the paper's fixed value for clients
    /// without attacks that have too few validation rows to tune it (it otherwise picks
    /// λ from {0.1, 1, 2} per client on validation rows).
    pub lambda: f64,
    /// Epochs over the client's rows for the personalised model per round (`None`: as
    /// many as the global model's local epochs).
    pub epochs: Option<usize>,
}

impl Default for Ditto {
    fn default() -> Self {
        Ditto {
            lambda: 1.0,
            epochs: None,
        }
    }
}

/// How a federated run trains. Built with [`FederatedConfig::default`] and the
/// builder methods; [`FederatedConfig::check`] refuses values that cannot run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedConfig {
    /// Communication rounds.
    pub rounds: usize,
    /// Epochs over its own rows each sampled client trains the global model for per
    /// round (FedAvg's `E`).
    pub local_epochs: usize,
    /// Local mini-batch size (FedAvg's `B`); a client with fewer rows uses them all.
    pub batch_size: usize,
    /// The local optimiser. Each client keeps its optimiser's state between rounds.
    pub optimizer: OptimizerConfig,
    /// How each client combines its task losses, by registry name
    /// (`mtl::losses::list()`): the library's step engine runs every local step.
    pub method: String,
    /// The fraction of clients the server samples each round (at least one client).
    pub client_fraction: f64,
    /// FedProx's μ (Li et al., "Federated Optimization in Heterogeneous Networks",
    /// MLSys 2020): local steps minimise `F_c(θ) + μ/2 ‖θ − θ̄‖²`. 0 is FedAvg.
    pub proximal_mu: f64,
    /// Ditto's personalised models; `None` trains the global model only.
    pub ditto: Option<Ditto>,
    /// The run seed: initial weights, client sampling, each client's batch order.
    pub seed: u64,
    /// Train the sampled clients of a round in parallel on rayon's pool, each with one
    /// libtorch intra-op thread; `false` trains them one after another.
    pub parallel: bool,
    /// Rows per batch when evaluating.
    pub eval_batch_size: usize,
}

impl Default for FederatedConfig {
    fn default() -> Self {
        FederatedConfig {
            rounds: 20,
            local_epochs: 1,
            batch_size: 32,
            optimizer: OptimizerConfig::sgd(0.05),
            method: "ew".into(),
            client_fraction: 1.0,
            proximal_mu: 0.0,
            ditto: None,
            seed: 0,
            parallel: true,
            eval_batch_size: 1024,
        }
    }
}

impl FederatedConfig {
    /// Sets the number of rounds.
    pub fn rounds(mut self, rounds: usize) -> Self {
        self.rounds = rounds;
        self
    }
    /// Sets the local epochs per round.
    pub fn local_epochs(mut self, epochs: usize) -> Self {
        self.local_epochs = epochs;
        self
    }
    /// Sets the local batch size.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }
    /// Sets the local optimiser.
    pub fn optimizer(mut self, optimizer: OptimizerConfig) -> Self {
        self.optimizer = optimizer;
        self
    }
    /// Sets the task-combination method by name.
    pub fn method(mut self, name: impl Into<String>) -> Self {
        self.method = name.into();
        self
    }
    /// Sets the fraction of clients sampled per round.
    pub fn client_fraction(mut self, fraction: f64) -> Self {
        self.client_fraction = fraction;
        self
    }
    /// Sets FedProx's μ (0: FedAvg).
    pub fn proximal_mu(mut self, mu: f64) -> Self {
        self.proximal_mu = mu;
        self
    }
    /// Trains Ditto's personalised models beside the global one.
    pub fn ditto(mut self, ditto: Ditto) -> Self {
        self.ditto = Some(ditto);
        self
    }
    /// Sets the run seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Trains a round's clients in parallel (`true`) or one after another.
    pub fn parallel(mut self, parallel: bool) -> Self {
        self.parallel = parallel;
        self
    }

    /// Checks every setting: at least one round, local epoch and row per batch, a
    /// sampling fraction in (0, 1], finite non-negative μ and λ, and a valid optimiser.
    /// The method's name is checked when the clients build it (for their task count).
    pub fn check(&self) -> Result<()> {
        let positive = |what: &str, v: usize| {
            if v == 0 {
                Err(Error::config(format!(
                    "federated {what} must be at least 1, got 0"
                )))
            } else {
                Ok(())
            }
        };
        positive("rounds", self.rounds)?;
        positive("local_epochs", self.local_epochs)?;
        positive("batch_size", self.batch_size)?;
        positive("eval_batch_size", self.eval_batch_size)?;
        if !(self.client_fraction.is_finite()
            && self.client_fraction > 0.0
            && self.client_fraction <= 1.0)
        {
            return Err(Error::config(format!(
                "federated client_fraction must be in (0, 1], got {}",
                self.client_fraction
            )));
        }
        if !(self.proximal_mu.is_finite() && self.proximal_mu >= 0.0) {
            return Err(Error::config(format!(
                "FedProx proximal_mu must be finite and non-negative, got {}",
                self.proximal_mu
            )));
        }
        if let Some(d) = &self.ditto {
            if !(d.lambda.is_finite() && d.lambda >= 0.0) {
                return Err(Error::config(format!(
                    "Ditto lambda must be finite and non-negative, got {}",
                    d.lambda
                )));
            }
            if d.epochs == Some(0) {
                return Err(Error::config("Ditto epochs must be at least 1, got 0"));
            }
        }
        self.optimizer.check()
    }
}
