//! The `cargo xtask demo`: olive oil (572 oils, 8 fatty acids) with two tasks, region
//! (3 classes) and area (9 classes). Trains one single-task baseline per task, then a
//! hard-sharing model with each task-combination method, and prints per-task test
//! accuracy, Δm against the baselines (lower is better) and wall time. Each method's
//! report (with gradient diagnostics every 5 steps) goes to
//! `runs/olive_oil/<method>.json` and its plots (loss curves, task weights,
//! gradient-conflict and task-affinity heatmaps) to `runs/olive_oil/<method>/`.

mod common;

use anyhow::Result;
use common::{print_results, task_heads, Row};
use mtl::data::{olive_oil, Standardizer};
use mtl::heads::ClassificationHead;
use mtl::losses::methods::StaticWeighting;
use mtl::prelude::*;
use mtl::DiagnosticsConfig;
use std::time::Instant;
use tch::{nn, Device};

const SEED: u64 = 7;
const HIDDEN: [i64; 2] = [64, 32];

/// Builds a hard-sharing MLP with one classification head per task of `data`.
fn build_model(data: &MultiTaskDataset, classes: &[i64]) -> mtl::core::Result<MultiTaskModel> {
    let vs = nn::VarStore::new(Device::Cpu);
    let mut sizes = vec![data.num_features() as i64];
    sizes.extend(HIDDEN);
    let trunk = MlpConfig::new(sizes)
        .dropout(0.1)
        .build(&(vs.root() / "trunk"))?;
    let arch = HardSharing::new(trunk, classes.len())?;
    let heads = task_heads(&vs.root(), &data.task_names(), |path, k, name| {
        ClassificationHead::new(path, name, HIDDEN[1], classes[k])
    })?;
    MultiTaskModel::new(vs, arch, heads)
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let data = olive_oil(mtl::data::data_dir())?;
    let split = data.split(0.2, 0.2, SEED)?;
    let scaler = Standardizer::fit(&split.train);
    let (train, val, test) = (
        scaler.apply(&split.train)?,
        scaler.apply(&split.validation)?,
        scaler.apply(&split.test)?,
    );
    let classes = [3i64, 9];
    let names = data.task_names();
    println!(
        "olive oil: {} train / {} validation / {} test rows, tasks {:?}\n",
        train.len(),
        val.len(),
        test.len(),
        names
    );
    let config = TrainerConfig::default()
        .epochs(200)
        .batch_size(32)
        .optimizer(OptimizerConfig::adam(5e-3))
        .seed(SEED)
        .early_stopping(EarlyStopping::new(Monitor::MeanPrimary, 20));
    std::fs::create_dir_all("runs/olive_oil")?;

    let mut rows = Vec::new();
    seed_everything(SEED);
    let t0 = Instant::now();
    let baselines = Trainer::new(config.clone())?.fit_baselines(
        |k, tr| {
            seed_everything(SEED);
            build_model(tr, &classes[k..=k])
        },
        &train,
        Some(&val),
        &test,
    )?;
    let baseline_seconds = t0.elapsed().as_secs_f64() / names.len() as f64;
    for (k, name) in names.iter().enumerate() {
        let mut accuracy = vec![None; names.len()];
        accuracy[k] = baselines.test[k].metric(0, "accuracy");
        rows.push(Row {
            label: format!("single-task {name}"),
            accuracy,
            delta_m: None,
            epochs: baselines.reports[k].epochs.len(),
            seconds: baseline_seconds,
        });
    }

    let methods: Vec<(&str, Option<Vec<f64>>)> = vec![
        ("ew", None),
        ("static", Some(vec![1.0, 0.5])),
        ("uw", None),
        ("gradnorm", None),
        ("pcgrad", None),
    ];
    for (name, static_weights) in methods {
        seed_everything(SEED);
        let mut model = build_model(&train, &classes)?;
        let mut trainer = Trainer::new(
            config
                .clone()
                .method(name)
                .diagnostics(DiagnosticsConfig::every(5).with_affinity()),
        )?;
        let label = match &static_weights {
            Some(w) => {
                trainer = trainer.with_method(Method::Weighting(Box::new(StaticWeighting::new(
                    w.clone(),
                )?)));
                format!("shared + static {w:?}")
            }
            None => format!("shared + {name}"),
        };
        let t0 = Instant::now();
        let mut report = trainer.fit(&mut model, &train, Some(&val))?;
        let seconds = t0.elapsed().as_secs_f64();
        let eval = evaluate(&model, &test, 256)?;
        let delta_m = report
            .compare_to_baselines(eval.clone(), &baselines)?
            .delta_m;
        std::fs::write(format!("runs/olive_oil/{name}.json"), report.to_json())?;
        report.write_plots(format!("runs/olive_oil/{name}"))?;
        let accuracy = (0..names.len())
            .map(|k| eval.metric(k, "accuracy"))
            .collect();
        rows.push(Row {
            label,
            accuracy,
            delta_m: Some(delta_m),
            epochs: report.epochs.len(),
            seconds,
        });
    }

    print_results("method", 28, 16, &names, &rows);
    println!("\nΔm: mean relative change of test accuracy against the single-task models,");
    println!("signed so that lower is better (negative: the shared model wins).");
    println!(
        "per-method run reports: runs/olive_oil/<method>.json, plots in runs/olive_oil/<method>/"
    );
    Ok(())
}
