//! # mtl-federated
//!
//! Federated multi-task learning on [`mtl`], simulated in one process: clients that
//! each keep their own rows train copies of one multi-task model locally through the
//! library's step engine (any registered method), and a server combines their
//! parameters. It provides the client splits (IID, Dirichlet label skew, one task per
//! client by masks), FedAvg (McMahan et al. 2017) with per-task weights for task heads,
//! FedProx's proximal term (Li et al. 2020), Ditto's personalised models (Li, Hu,
//! Beirami & Smith 2021), seeded client sampling, and a JSON report with per-round and
//! per-client metrics. Clients and server exchange only message bytes holding named
//! parameters and counts ([`ClientUpdate`], [`GlobalModel`]), and every message can be
//! observed ([`Federation::run_observed`]), so a test can check that no row leaves its
//! client.
//!
//! It is not a deployment framework: there is no network transport, secure
//! aggregation or differential privacy, and clients run in this process (on rayon's
//! pool), on the CPU. It lives in its own crate rather than in the facade because it is
//! a layer over the facade's model, step and evaluation, with its own dependency
//! (rayon) that single-machine users do not need.
//!
//! ```
//! use mtl::prelude::*;
//! use mtl_federated::{split_clients, ClientSplit, Federation, FederatedConfig};
//! # use mtl::ndarray::{Array1, Array2};
//!
//! let x = Array2::from_shape_fn((60, 2), |(i, j)| ((i * (j + 3)) % 7) as f32 / 3.0 - 1.0);
//! let y = Array1::from_shape_fn(60, |i| i64::from(x[[i, 0]] > 0.0));
//! let data = MultiTaskDataset::new(x, vec![TaskData::classes("sign", y, 2)])?;
//! let clients = split_clients(&data, 3, ClientSplit::Iid, 0.2, 0)?;
//! let heads = data.tasks().iter().map(|t| HeadSpec::for_task(t, RegressionLoss::Mse)).collect();
//! let spec = ModelSpec::hard_sharing(2, &[8], heads);
//!
//! let config = FederatedConfig::default().rounds(2).seed(0);
//! let report = Federation::new(&spec, clients, config)?.run()?;
//! assert_eq!((report.rounds.len(), report.clients.len()), (2, 3));
//! # Ok::<(), mtl::core::Error>(())
//! ```

mod aggregate;
mod client;
mod config;
mod federation;
mod learner;
mod message;
mod report;
mod sampling;
mod server;
mod split;

pub use aggregate::{fedavg, Slot};
pub use client::{Client, ClientEvaluation, LocalStats};
pub use config::{Ditto, FederatedConfig};
pub use federation::{Envelope, Federation, Party};
pub use message::{ClientUpdate, GlobalModel};
pub use report::{ClientRecord, FederatedReport, RoundRecord};
pub use sampling::sample_clients;
pub use server::Server;
pub use split::{split_clients, ClientData, ClientSplit};
