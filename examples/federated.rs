//! `cargo xtask demo federated`: olive oil (572 oils, 8 fatty acids; tasks region and
//! area) spread over 8 simulated clients whose areas are skewed by a Dirichlet(0.3)
//! split, so each client holds a few areas mostly. Compares, on each client's held-out
//! rows: local-only training (Ditto's personalised model with λ = 0, which never looks
//! at the global model), the FedAvg global model, the FedProx global model (μ = 0.01)
//! and Ditto's personalised models (λ = 1). Every run trains the same epochs from the
//! same start; the reports go to `runs/federated/*.json`.
//!
//! Then the same with one task per client: clients 0, 2, 4, 6 train on region labels
//! only, 1, 3, 5, 7 on area labels only (their held-out rows keep both, so every model
//! is measured on both tasks). A local model has never trained the head of the task
//! its client does not label; the federated models learn both heads from clients that
//! never share a row.
//!
//! The features are standardised with statistics of all rows, a simulation shortcut: a
//! deployment would fix the scale from domain knowledge or aggregate the moments.

use anyhow::Result;
use mtl::data::{olive_oil, Standardizer};
use mtl::heads::RegressionLoss;
use mtl::prelude::*;
use mtl_federated::{
    split_clients, ClientData, ClientSplit, Ditto, FederatedConfig, FederatedReport, Federation,
};
use std::time::Instant;

const SEED: u64 = 7;
const CLIENTS: usize = 8;

fn run(
    spec: &ModelSpec,
    clients: &[ClientData],
    config: FederatedConfig,
    file: &str,
) -> Result<(FederatedReport, f64)> {
    let t0 = Instant::now();
    let report = Federation::new(spec, clients.to_vec(), config)?.run()?;
    let seconds = t0.elapsed().as_secs_f64();
    std::fs::write(format!("runs/federated/{file}.json"), report.to_json()?)?;
    Ok((report, seconds))
}

fn cell(v: Option<f64>) -> String {
    v.map_or_else(|| "   -  ".into(), |v| format!("{:6.3}", v))
}

/// One scenario: the four models per client and their means, as a table.
fn scenario(
    title: &str,
    spec: &ModelSpec,
    clients: &[ClientData],
    base: &FederatedConfig,
    tag: &str,
) -> Result<()> {
    println!("== {title} ==");
    let local_ditto = Ditto {
        lambda: 0.0,
        epochs: None,
    };
    let (local, t_local) = run(
        spec,
        clients,
        base.clone().ditto(local_ditto),
        &format!("{tag}_fedavg_local"),
    )?;
    let (prox, t_prox) = run(
        spec,
        clients,
        base.clone().proximal_mu(0.01),
        &format!("{tag}_fedprox"),
    )?;
    let (ditto, t_ditto) = run(
        spec,
        clients,
        base.clone().ditto(Ditto::default()),
        &format!("{tag}_ditto"),
    )?;
    // The λ = 0 run's global model is plain FedAvg: the personalised models draw from
    // the client's generator in the same amounts whatever λ is.
    let columns: [(&str, &FederatedReport, bool); 4] = [
        ("local", &local, true),
        ("fedavg", &local, false),
        ("fedprox", &prox, false),
        ("ditto", &ditto, true),
    ];
    let tasks = &local.tasks;
    let mut header = format!("{:<8} {:>5} {:>4} |", "client", "train", "test");
    for t in tasks {
        header += &format!(" {:<31}|", format!("{t} accuracy"));
    }
    println!("{header}");
    let mut sub = format!("{:<8} {:>5} {:>4} |", "", "", "");
    for _ in tasks {
        for (name, _, _) in &columns {
            sub += &format!(" {name:>7}");
        }
        sub += " |";
    }
    println!("{sub}");
    for (c, client) in local.clients.iter().enumerate() {
        let mut line = format!(
            "{:<8} {:>5} {:>4} |",
            client.name, client.train_rows, client.test_rows
        );
        for k in 0..tasks.len() {
            for (_, report, personal) in &columns {
                line += &format!(" {:>7}", cell(report.clients[c].primary(k, *personal)));
            }
            line += " |";
        }
        println!("{line}");
    }
    let mut line = format!("{:<8} {:>5} {:>4} |", "mean", "", "");
    for k in 0..tasks.len() {
        for (_, report, personal) in &columns {
            line += &format!(" {:>7}", cell(report.mean_primary(*personal)[k]));
        }
        line += " |";
    }
    println!("{line}");
    println!(
        "(seconds: FedAvg + local {t_local:.1}, FedProx {t_prox:.1}, Ditto {t_ditto:.1}; \
         {} rounds, {:.1} MB to the server per run)\n",
        base.rounds,
        local.bytes_to_server as f64 / 1e6
    );
    Ok(())
}

fn main() -> Result<()> {
    let data = olive_oil(mtl::data::data_dir())?;
    let data = Standardizer::fit(&data).apply(&data)?;
    let heads = data
        .tasks()
        .iter()
        .map(|t| HeadSpec::for_task(t, RegressionLoss::Mse))
        .collect();
    let spec = ModelSpec::hard_sharing(data.num_features() as i64, &[64, 32], heads);
    let base = FederatedConfig::default()
        .rounds(30)
        .local_epochs(2)
        .batch_size(16)
        .optimizer(OptimizerConfig::adam(3e-3))
        .method("ew")
        .seed(SEED);
    std::fs::create_dir_all("runs/federated")?;
    println!(
        "olive oil over {CLIENTS} clients, hard sharing [64, 32], EW, Adam 3e-3, {} rounds of {} local epochs; \
         accuracy on each client's held-out rows (30%)\n",
        base.rounds, base.local_epochs
    );

    let skewed = split_clients(
        &data,
        CLIENTS,
        ClientSplit::Dirichlet {
            task: 1,
            alpha: 0.3,
        },
        0.3,
        SEED,
    )?;
    scenario(
        "non-IID: areas skewed by Dirichlet(0.3)",
        &spec,
        &skewed,
        &base,
        "dirichlet",
    )?;

    let one_task = split_clients(&data, CLIENTS, ClientSplit::OneTaskPerClient, 0.3, SEED)?;
    scenario(
        "one task per client (IID rows)",
        &spec,
        &one_task,
        &base,
        "one_task",
    )?;
    Ok(())
}
