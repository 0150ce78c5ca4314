//! MultiMNIST (Sener & Koltun, NeurIPS 2018): two digits on one image, one task per
//! digit. Trains LeNet-based models end to end and prints each task's test accuracy:
//! one single-task LeNet per digit, then one shared LeNet with two heads, combined by
//! equal weighting and by MGDA-UB (the paper's method: MGDA on the gradients of the
//! shared representation).
//!
//! To stay within a few minutes on 2 CPU cores this uses a subsample: 10,000 training,
//! 1,000 validation and 2,000 test composites (the paper uses 60,000 / 10,000), and at
//! most 6 epochs with early stopping. Set `MULTIMNIST_TRAIN` to change the training size.
//!
//! Run with `cargo run --release --example multimnist`.

mod common;

use anyhow::Result;
use common::lenet;
use mtl::data::{data_root, multi_mnist, MultiMnistConfig};
use mtl::prelude::*;
use std::time::Instant;

const SEED: u64 = 1;

fn main() -> Result<()> {
    tch::set_num_threads(2);
    let train_size = std::env::var("MULTIMNIST_TRAIN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let t0 = Instant::now();
    let config = MultiMnistConfig::sized(train_size, 2_000)
        .validation(1_000)
        .seed(SEED);
    let split = multi_mnist(data_root("mnist")?, &config)?;
    println!(
        "MultiMNIST: {} train / {} validation / {} test images of 28×28, built in {:.1} s",
        split.train.len(),
        split.validation.len(),
        split.test.len(),
        t0.elapsed().as_secs_f64()
    );
    let trainer_config = TrainerConfig::default()
        .epochs(6)
        .batch_size(64)
        .optimizer(OptimizerConfig::adam(1e-3))
        .seed(SEED)
        .early_stopping(EarlyStopping::new(Monitor::MeanPrimary, 2));

    let mut rows: Vec<(String, [Option<f64>; 2], usize, f64)> = Vec::new();
    for k in 0..2 {
        seed_everything(SEED);
        let (tr, va, te) = (
            split.train.only_task(k)?,
            split.validation.only_task(k)?,
            split.test.only_task(k)?,
        );
        let mut model = lenet(&tr)?;
        let t = Instant::now();
        let report = Trainer::new(trainer_config.clone())?.fit(&mut model, &tr, Some(&va))?;
        let eval = evaluate(&model, &te, 512)?;
        let mut acc = [None, None];
        acc[k] = eval.metric(0, "accuracy");
        let label = format!("single-task {}", split.train.task_names()[k]);
        rows.push((label, acc, report.epochs.len(), t.elapsed().as_secs_f64()));
        println!("  done: {}", rows.last().map_or("", |r| r.0.as_str()));
    }
    for (method, mode) in [
        ("ew", GradMode::Parameters),
        ("mgda", GradMode::Representation),
    ] {
        seed_everything(SEED);
        let mut model = lenet(&split.train)?;
        let t = Instant::now();
        let config = trainer_config.clone().method(method).grad_mode(mode);
        let report =
            Trainer::new(config)?.fit(&mut model, &split.train, Some(&split.validation))?;
        let eval = evaluate(&model, &split.test, 512)?;
        let acc = [eval.metric(0, "accuracy"), eval.metric(1, "accuracy")];
        let label = match mode {
            GradMode::Representation => format!("shared LeNet + {method}-ub"),
            GradMode::Parameters => format!("shared LeNet + {method}"),
        };
        rows.push((label, acc, report.epochs.len(), t.elapsed().as_secs_f64()));
        println!("  done: {}", rows.last().map_or("", |r| r.0.as_str()));
    }

    let fmt = |a: &Option<f64>| a.map_or("-".to_string(), |v| format!("{v:.4}"));
    println!(
        "\n{:<26} {:>10} {:>10} {:>7} {:>9}",
        "model", "left acc", "right acc", "epochs", "wall (s)"
    );
    println!("{}", "-".repeat(66));
    for (label, acc, epochs, secs) in &rows {
        println!(
            "{label:<26} {:>10} {:>10} {epochs:>7} {secs:>9.1}",
            fmt(&acc[0]),
            fmt(&acc[1])
        );
    }
    println!(
        "\n(test accuracy on {} composites; total {:.0} s)",
        split.test.len(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
