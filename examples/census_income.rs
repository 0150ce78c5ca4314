//! Census-Income (KDD) with the two task groups of the MMoE paper (Ma et al., KDD 2018):
//! group 1 predicts income > 50K and never married, group 2 education ≥ college and
//! never married. For each group it trains an MLP per task (single-task baselines) and
//! one shared-bottom MLP with a binary head per task, and prints each task's test AUC.
//!
//! Protocol as in the paper: the training file (199,523 rows) trains, the test file
//! (99,762 rows) is split in half into validation and test. Features: the 7 numeric
//! columns and the one-hot categorical ones, standardised on the training rows. Each
//! model trains for at most 4 epochs with early stopping, which keeps the run to a few
//! minutes on 2 CPU cores; set `CENSUS_ROWS` to use fewer training rows.
//!
//! Run with `cargo run --release --example census_income`. The paper's own comparison
//! (shared-bottom, OMoE and MMoE over seeds) is `examples/census_repro.rs`
//! (`cargo xtask repro census`).

mod common;

use anyhow::Result;
use common::{census_standardised, task_heads};
use mtl::data::{data_root, CensusGroup};
use mtl::heads::BinaryHead;
use mtl::prelude::*;
use std::time::Instant;
use tch::{nn, Device};

const SEED: u64 = 3;
const HIDDEN: [i64; 2] = [128, 64];

/// An MLP bottom shared by one binary head per task of `data`.
fn shared_bottom(data: &MultiTaskDataset) -> Result<MultiTaskModel> {
    let vs = nn::VarStore::new(Device::Cpu);
    let mut sizes = vec![data.num_features() as i64];
    sizes.extend(HIDDEN);
    let trunk = MlpConfig::new(sizes).build(&(vs.root() / "trunk"))?;
    let arch = HardSharing::new(trunk, data.num_tasks())?;
    let heads = task_heads(&vs.root(), &data.task_names(), |path, _, name| {
        BinaryHead::new(path, name, HIDDEN[1])
    })?;
    Ok(MultiTaskModel::new(vs, arch, heads)?)
}

fn main() -> Result<()> {
    tch::set_num_threads(2);
    let root = data_root("census-income-kdd")?;
    let rows = std::env::var("CENSUS_ROWS")
        .ok()
        .and_then(|v| v.parse().ok());
    let trainer_config = TrainerConfig::default()
        .epochs(4)
        .batch_size(1024)
        .optimizer(OptimizerConfig::adam(1e-3))
        .seed(SEED)
        .early_stopping(EarlyStopping::new(Monitor::MeanPrimary, 1));
    let mut table = Vec::new();
    for group in [CensusGroup::Income, CensusGroup::Education] {
        let t0 = Instant::now();
        let (train, val, test) = census_standardised(&root, group, SEED, rows)?;
        let names = train.task_names();
        println!(
            "group {group:?}: {} train / {} validation / {} test rows, {} features, tasks {names:?} \
             (loaded in {:.1} s)",
            train.len(),
            val.len(),
            test.len(),
            train.num_features(),
            t0.elapsed().as_secs_f64()
        );
        for k in 0..2 {
            seed_everything(SEED);
            let (tr, va, te) = (train.only_task(k)?, val.only_task(k)?, test.only_task(k)?);
            let mut model = shared_bottom(&tr)?;
            let t = Instant::now();
            let report = Trainer::new(trainer_config.clone())?.fit(&mut model, &tr, Some(&va))?;
            let eval = evaluate(&model, &te, 4096)?;
            let mut auc = [None, None];
            auc[k] = eval.metric(0, "roc_auc");
            table.push((
                format!("{group:?}"),
                format!("single-task {}", names[k]),
                names.clone(),
                auc,
                report.epochs.len(),
                t.elapsed().as_secs_f64(),
            ));
        }
        for method in ["ew", "uw"] {
            seed_everything(SEED);
            let mut model = shared_bottom(&train)?;
            let t = Instant::now();
            let report = Trainer::new(trainer_config.clone().method(method))?.fit(
                &mut model,
                &train,
                Some(&val),
            )?;
            let eval = evaluate(&model, &test, 4096)?;
            table.push((
                format!("{group:?}"),
                format!("shared bottom + {method}"),
                names.clone(),
                [eval.metric(0, "roc_auc"), eval.metric(1, "roc_auc")],
                report.epochs.len(),
                t.elapsed().as_secs_f64(),
            ));
        }
    }

    let fmt = |a: &Option<f64>| a.map_or("-".to_string(), |v| format!("{v:.4}"));
    println!(
        "\n{:<10} {:<26} {:>24} {:>24} {:>7} {:>9}",
        "group", "model", "task 1 AUC", "task 2 AUC", "epochs", "wall (s)"
    );
    println!("{}", "-".repeat(105));
    for (group, label, names, auc, epochs, secs) in &table {
        println!(
            "{group:<10} {label:<26} {:>24} {:>24} {epochs:>7} {secs:>9.1}",
            format!("{} {}", names[0], fmt(&auc[0])),
            format!("{} {}", names[1], fmt(&auc[1])),
        );
    }
    Ok(())
}
