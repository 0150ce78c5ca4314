//! The round loop: sample clients, broadcast the global model, train locally, average,
//! evaluate. Every message passes through [`Envelope`]s an observer can read.

use crate::client::{Client, ClientEvaluation, LocalStats};
use crate::config::FederatedConfig;
use crate::report::{mean, ClientRecord, FederatedReport, RoundRecord};
use crate::sampling::sample_clients;
use crate::server::Server;
use crate::split::ClientData;
use mtl::core::{Error, Result};
use mtl::ModelSpec;
use rand::RngCore;
use rayon::prelude::*;

/// A party to the federation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// The server.
    Server,
    /// Client `c`.
    Client(usize),
}

/// One message as it crosses between parties: who sent it, to whom, and its bytes.
#[derive(Debug)]
pub struct Envelope<'a> {
    /// The round it belongs to.
    pub round: usize,
    /// The sender.
    pub from: Party,
    /// The receiver.
    pub to: Party,
    /// Everything the receiver gets.
    pub bytes: &'a [u8],
}

/// A simulated federation in one process: a server and clients that talk only through
/// message bytes.
///
/// Each round the server samples clients ([`sample_clients`]) and broadcasts the global
/// model; each sampled client trains it locally (FedAvg, or FedProx with μ > 0) and,
/// under Ditto, its personalised model, and answers with its parameters; the server
/// averages them ([`fedavg`](crate::fedavg)); then every client evaluates the new
/// global model on its held-out rows for the report.
///
/// **Threads and determinism.** With `parallel` the sampled clients train at once on
/// rayon's pool, each with one libtorch intra-op thread (the previous count is restored
/// after the round), so clients do not oversubscribe the cores. Each client draws its
/// batches from its own seeded generator and the server averages in client order, so a
/// run is the same for the same seed, on CPU, in either mode, as long as the model
/// draws nothing from libtorch's global generator while training (no dropout). Models
/// with dropout are reproducible only sequentially (`parallel(false)`): libtorch's
/// generator is then re-seeded from (seed, round, client) before each client trains;
/// a caller running other libtorch draws concurrently should hold
/// [`torch_rng_lock`](mtl::core::torch_rng_lock) around the run.
#[derive(Debug)]
pub struct Federation {
    server: Server,
    clients: Vec<Client>,
    config: FederatedConfig,
    tasks: Vec<String>,
}

impl Federation {
    /// A federation training `spec`'s model over `clients` (each with its own rows).
    /// Zero clients, a client without training rows, a client whose tasks are not the
    /// spec's and an invalid configuration are errors. The global model's initial
    /// weights come from libtorch's generator seeded with `config.seed`.
    pub fn new(
        spec: &ModelSpec,
        clients: Vec<ClientData>,
        config: FederatedConfig,
    ) -> Result<Self> {
        config.check()?;
        if clients.is_empty() {
            return Err(Error::config(
                "federation: zero clients; a federation needs at least one",
            ));
        }
        tch::manual_seed(config.seed as i64);
        let server = Server::new(spec)?;
        let clients = clients
            .into_iter()
            .enumerate()
            .map(|(c, data)| Client::new(c, data, spec, &config))
            .collect::<Result<Vec<_>>>()?;
        Ok(Federation {
            server,
            clients,
            config,
            tasks: spec.task_names(),
        })
    }

    /// The server.
    pub fn server(&self) -> &Server {
        &self.server
    }
    /// The clients.
    pub fn clients(&self) -> &[Client] {
        &self.clients
    }

    /// Runs every round.
    pub fn run(&mut self) -> Result<FederatedReport> {
        self.run_observed(|_| {})
    }

    /// Runs every round, showing `observe` every message that crosses between parties,
    /// in order, before its receiver reads it.
    pub fn run_observed(
        &mut self,
        mut observe: impl FnMut(&Envelope<'_>),
    ) -> Result<FederatedReport> {
        let mut report = FederatedReport {
            config: self.config.clone(),
            tasks: self.tasks.clone(),
            rounds: Vec::with_capacity(self.config.rounds),
            clients: Vec::new(),
            bytes_to_server: 0,
            bytes_to_clients: 0,
        };
        let mut last: Vec<Option<ClientEvaluation>> = Vec::new();
        for round in 0..self.config.rounds {
            let sampled = sample_clients(
                self.clients.len(),
                self.config.client_fraction,
                self.config.seed,
                round,
            )?;
            let global = self.server.broadcast()?;
            for &c in &sampled {
                observe(&Envelope {
                    round,
                    from: Party::Server,
                    to: Party::Client(c),
                    bytes: &global,
                });
                report.bytes_to_clients += global.len() as u64;
            }
            let answers = self.train_clients(round, &sampled, &global)?;
            let mut messages = Vec::with_capacity(answers.len());
            let (mut loss, mut rows) = (0.0, 0.0);
            for (c, bytes, stats) in answers {
                observe(&Envelope {
                    round,
                    from: Party::Client(c),
                    to: Party::Server,
                    bytes: &bytes,
                });
                report.bytes_to_server += bytes.len() as u64;
                loss += stats.train_loss * stats.rows_seen;
                rows += stats.rows_seen;
                messages.push(bytes);
            }
            self.server.aggregate(&messages)?;
            let global = self.server.broadcast()?;
            for c in 0..self.clients.len() {
                observe(&Envelope {
                    round,
                    from: Party::Server,
                    to: Party::Client(c),
                    bytes: &global,
                });
                report.bytes_to_clients += global.len() as u64;
            }
            last = self.evaluate_clients(&global)?;
            report
                .rounds
                .push(self.round_record(round, sampled, loss, rows, &last));
        }
        report.clients = self
            .clients
            .iter()
            .zip(last)
            .map(|(client, eval)| {
                let (train_rows, test_rows) = client.rows();
                let (global, personal) = match eval {
                    Some(e) => (Some(e.global), e.personal),
                    None => (None, None),
                };
                ClientRecord {
                    name: client.name().to_string(),
                    train_rows,
                    test_rows,
                    test_labelled: client.labelled().1,
                    global,
                    personal,
                }
            })
            .collect();
        Ok(report)
    }

    /// The sampled clients' local rounds, in client order.
    fn train_clients(
        &mut self,
        round: usize,
        sampled: &[usize],
        global: &[u8],
    ) -> Result<Vec<(usize, Vec<u8>, LocalStats)>> {
        let chosen = |c: &&mut Client| sampled.binary_search(&c.index()).is_ok();
        if self.config.parallel {
            let mut out = with_one_thread_each(|| {
                self.clients
                    .par_iter_mut()
                    .filter(chosen)
                    .map(|client| {
                        tch::set_num_threads(1);
                        let (bytes, stats) = client.train_round(global)?;
                        Ok((client.index(), bytes, stats))
                    })
                    .collect::<Result<Vec<_>>>()
            })?;
            out.sort_by_key(|(c, _, _)| *c);
            Ok(out)
        } else {
            let seed = self.config.seed;
            self.clients
                .iter_mut()
                .filter(chosen)
                .map(|client| {
                    // Dropout draws from libtorch's one generator: one stream per
                    // (round, client) keeps a sequential run reproducible.
                    let mut stream = mtl::core::derive_rng(
                        seed,
                        &format!("federated-torch-{round}-{}", client.index()),
                    );
                    tch::manual_seed(stream.next_u64() as i64);
                    let (bytes, stats) = client.train_round(global)?;
                    Ok((client.index(), bytes, stats))
                })
                .collect()
        }
    }

    /// Every client's evaluation of the global model in `global` (and of its own).
    fn evaluate_clients(&mut self, global: &[u8]) -> Result<Vec<Option<ClientEvaluation>>> {
        if self.config.parallel {
            with_one_thread_each(|| {
                self.clients
                    .par_iter_mut()
                    .map(|client| {
                        tch::set_num_threads(1);
                        client.evaluate(global)
                    })
                    .collect()
            })
        } else {
            self.clients
                .iter_mut()
                .map(|c| c.evaluate(global))
                .collect()
        }
    }

    fn round_record(
        &self,
        round: usize,
        sampled: Vec<usize>,
        loss: f64,
        rows: f64,
        evals: &[Option<ClientEvaluation>],
    ) -> RoundRecord {
        let (mut test_loss, mut test_rows) = (0.0, 0.0);
        for (client, eval) in self.clients.iter().zip(evals) {
            if let Some(ClientEvaluation { global: g, .. }) = eval {
                let n = client.rows().1 as f64;
                test_loss += g.total_loss() * n;
                test_rows += n;
            }
        }
        let labelled: Vec<Vec<usize>> = self.clients.iter().map(|c| c.labelled().1).collect();
        let test_primary = (0..self.tasks.len())
            .map(|k| {
                mean(evals.iter().zip(&labelled).filter_map(|(e, l)| {
                    let g = &e.as_ref()?.global;
                    (l[k] > 0).then(|| g.metrics.get(k)?.first().map(|m| m.value))?
                }))
            })
            .collect();
        RoundRecord {
            round,
            sampled,
            train_loss: if rows > 0.0 { loss / rows } else { 0.0 },
            test_loss: (test_rows > 0.0).then(|| test_loss / test_rows),
            test_primary,
        }
    }
}

/// Runs `f` (which sets one intra-op thread on each worker) and restores this
/// thread's libtorch thread count afterwards, whatever `f` returned.
fn with_one_thread_each<T>(f: impl FnOnce() -> T) -> T {
    let before = tch::get_num_threads();
    let out = f();
    tch::set_num_threads(before);
    out
}
