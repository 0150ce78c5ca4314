//! Semi-supervised multi-task learning on olive oil (572 oils, 8 fatty acids; tasks
//! region, 3 classes, and area, 9 classes): only 10 % of the training rows keep their
//! labels. For each seed it trains the same hard-sharing MLP
//!
//! * on the labelled 10 % alone,
//! * on the labelled 10 % plus the unlabelled rest with a Π-model consistency term
//!   (Laine & Aila 2017),
//! * the same with a mean teacher (Tarvainen & Valpola 2017),
//!
//! and prints each task's test accuracy as mean ± standard deviation over the seeds.
//! The unlabelled rows are in the training set with every task's mask off, which is
//! what `TrainerConfig::semi_supervised` reads as "unlabelled".
//!
//! Protocol: a 60/20/20 split (fixed), the 10 % labelled rows drawn per seed, early
//! stopping on the (fully labelled) validation set, as semi-supervised papers usually
//! do, at most 300 epochs. The whole run takes one to a few minutes on 2 CPU cores
//! (more when they are shared); `SEMI_SEEDS` sets the number of seeds (5 by default).
//!
//! Run with `cargo run --release --example semi` or `cargo xtask demo semi`.

mod common;

use anyhow::Result;
use common::task_heads;
use mtl::data::{olive_oil, Standardizer};
use mtl::heads::ClassificationHead;
use mtl::prelude::*;
use mtl::SemiSupervised;
use std::time::Instant;
use tch::{nn, Device};

const SPLIT_SEED: u64 = 7;
const HIDDEN: [i64; 2] = [64, 32];
const CLASSES: [i64; 2] = [3, 9];
const LABELLED: f64 = 0.10;

fn build_model(features: usize, names: &[String]) -> mtl::core::Result<MultiTaskModel> {
    let vs = nn::VarStore::new(Device::Cpu);
    let trunk = MlpConfig::new([features as i64, HIDDEN[0], HIDDEN[1]])
        .dropout(0.1)
        .build(&(vs.root() / "trunk"))?;
    let arch = HardSharing::new(trunk, CLASSES.len())?;
    let heads = task_heads(&vs.root(), names, |path, k, name| {
        ClassificationHead::new(path, name, HIDDEN[1], CLASSES[k])
    })?;
    MultiTaskModel::new(vs, arch, heads)
}

/// A seeded permutation of `0..n` (splitmix64 keys), so the example needs no RNG crate.
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    };
    let mut rows: Vec<usize> = (0..n).collect();
    rows.sort_by_key(|&i| mix(seed.wrapping_mul(0x9e3779b97f4a7c15) ^ i as u64));
    rows
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

fn main() -> Result<()> {
    tch::set_num_threads(2);
    let seeds: u64 = std::env::var("SEMI_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let data = olive_oil(mtl::data::data_dir())?;
    let split = data.split(0.2, 0.2, SPLIT_SEED)?;
    let scaler = Standardizer::fit(&split.train);
    let (train, val, test) = (
        scaler.apply(&split.train)?,
        scaler.apply(&split.validation)?,
        scaler.apply(&split.test)?,
    );
    let names = data.task_names();
    let n = train.len();
    let n_lab = ((n as f64) * LABELLED).round() as usize;
    println!(
        "olive oil: {n} train rows of which {n_lab} labelled ({:.0} %), {} validation, {} test; \
         tasks {names:?}; {seeds} seeds\n",
        LABELLED * 100.0,
        val.len(),
        test.len()
    );
    let base = TrainerConfig::default()
        .epochs(300)
        .batch_size(32)
        .optimizer(OptimizerConfig::adam(3e-3))
        .progress(false)
        .early_stopping(EarlyStopping::new(Monitor::MeanPrimary, 30));
    let regimes: [(&str, Option<SemiSupervised>); 3] = [
        ("10 % labelled alone", None),
        (
            "10 % + rest, Π-model",
            Some(
                SemiSupervised::pi_model()
                    .weight(10.0)
                    .ramp_up_epochs(30.0)
                    .noise_std(0.3),
            ),
        ),
        (
            "10 % + rest, mean teacher",
            Some(
                SemiSupervised::mean_teacher()
                    .weight(10.0)
                    .ramp_up_epochs(30.0)
                    .noise_std(0.3),
            ),
        ),
    ];
    // acc[regime][task][seed]
    let mut acc = vec![vec![Vec::new(); names.len()]; regimes.len()];
    let mut secs = vec![0.0; regimes.len()];
    for seed in 0..seeds {
        let rows = permutation(n, seed);
        let labelled = &rows[..n_lab];
        let mut mask = ndarray::Array1::from_elem(n, false);
        for &r in labelled {
            mask[r] = true;
        }
        let masked = MultiTaskDataset::new(
            train.features().clone(),
            train
                .tasks()
                .iter()
                .map(|t| t.clone().with_mask(mask.clone()))
                .collect(),
        )?;
        let only_labelled = train.subset(labelled)?;
        for (i, (_, semi)) in regimes.iter().enumerate() {
            seed_everything(seed);
            let mut model = build_model(train.num_features(), &names)?;
            let mut cfg = base.clone().seed(seed);
            let t = Instant::now();
            let mut trainer;
            match semi {
                None => {
                    trainer = Trainer::new(cfg)?;
                    trainer.fit(&mut model, &only_labelled, Some(&val))?;
                }
                Some(s) => {
                    cfg = cfg.semi_supervised(s.clone());
                    trainer = Trainer::new(cfg)?;
                    trainer.fit(&mut model, &masked, Some(&val))?;
                }
            }
            secs[i] += t.elapsed().as_secs_f64();
            let eval = evaluate(&model, &test, 1024)?;
            for (k, a) in acc[i].iter_mut().enumerate() {
                a.push(eval.metric(k, "accuracy").unwrap_or(f64::NAN));
            }
        }
        println!("  seed {seed} done");
    }

    let col = 22;
    let mut header = format!("\n{:<28}", "training data");
    for task in &names {
        header += &format!(" {:>col$}", format!("{task} acc"));
    }
    println!("{header} {:>9}", "wall (s)");
    println!("{}", "-".repeat(28 + (col + 1) * names.len() + 10));
    for (i, (label, _)) in regimes.iter().enumerate() {
        let mut line = format!("{label:<28}");
        for a in &acc[i] {
            let (m, s) = mean_std(a);
            line += &format!(" {:>col$}", format!("{m:.4} ± {s:.4}"));
        }
        println!("{line} {:>9.1}", secs[i]);
    }
    println!(
        "\n(test accuracy on {} oils, mean ± std over {seeds} seeds; the labelled rows are \
         drawn anew for each seed)",
        test.len()
    );
    Ok(())
}
