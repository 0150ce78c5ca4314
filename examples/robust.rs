//! Adversarially robust multi-task learning on MultiMNIST (Sener & Koltun 2018: two
//! digits on one image, one task per digit). The same shared LeNet with two heads is
//! trained three ways, with equal weighting:
//!
//! * standard training,
//! * adversarial training with FGSM (Goodfellow et al. 2015), ε = 0.1,
//! * adversarial training with PGD (Madry et al. 2018), ε = 0.1, 3 steps of 0.04,
//!   random start,
//!
//! each minimising `L_k(x) + L_k(x + δ)` per task, δ maximising the summed task loss.
//! For each model it prints every task's clean test accuracy beside its accuracy under
//! FGSM and under PGD-10 (ε = 0.1, steps of 0.025, random start), each task attacked on
//! its own loss. Pixels are in [0, 1] and perturbed images are clamped there.
//!
//! To stay within a few minutes on 2 CPU cores this uses 5,000 training and 1,000 test
//! composites and 5 epochs (the paper's data set has 60,000 / 10,000); set
//! `ROBUST_TRAIN` to change the training size.
//!
//! Run with `cargo run --release --example robust` or `cargo xtask demo robust`.

mod common;

use anyhow::Result;
use common::lenet;
use mtl::data::{data_root, multi_mnist, MultiMnistConfig};
use mtl::prelude::*;
use mtl::{evaluate_under_attack, Adversarial};
use std::time::Instant;

const SEED: u64 = 1;
const EPSILON: f64 = 0.1;

fn main() -> Result<()> {
    tch::set_num_threads(2);
    let train_size = std::env::var("ROBUST_TRAIN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let t0 = Instant::now();
    let config = MultiMnistConfig::sized(train_size, 1_000).seed(SEED);
    let split = multi_mnist(data_root("mnist")?, &config)?;
    let names = split.train.task_names();
    println!(
        "MultiMNIST: {} train / {} test images of 28×28, tasks {names:?}, built in {:.1} s\n",
        split.train.len(),
        split.test.len(),
        t0.elapsed().as_secs_f64()
    );
    let base = TrainerConfig::default()
        .epochs(5)
        .batch_size(64)
        .optimizer(OptimizerConfig::adam(2e-3))
        .seed(SEED)
        .progress(false);
    let fgsm = Adversarial::fgsm(EPSILON).bounds(0.0, 1.0);
    // Three steps whose sum exceeds ε reach the ball's faces at a fraction of PGD-10's cost.
    let pgd_train = Adversarial::pgd(EPSILON, 3, 0.04).bounds(0.0, 1.0);
    let pgd_eval = Adversarial::pgd(EPSILON, 10, EPSILON / 4.0).bounds(0.0, 1.0);
    let trainings = [
        ("standard", None),
        ("adversarial, FGSM", Some(fgsm.clone())),
        ("adversarial, PGD-3", Some(pgd_train)),
    ];
    let mut rows = Vec::new();
    for (label, adv) in trainings {
        seed_everything(SEED);
        let mut model = lenet(&split.train)?;
        let mut cfg = base.clone();
        if let Some(a) = adv {
            cfg = cfg.adversarial(a);
        }
        let t = Instant::now();
        Trainer::new(cfg)?.fit(&mut model, &split.train, None)?;
        let secs = t.elapsed().as_secs_f64();
        tch::manual_seed(SEED as i64);
        let under_fgsm = evaluate_under_attack(&model, &split.test, &fgsm, 500)?;
        let under_pgd = evaluate_under_attack(&model, &split.test, &pgd_eval, 500)?;
        let mut acc = Vec::new();
        for k in 0..names.len() {
            let clean = under_fgsm.clean.metric(k, "accuracy").unwrap_or(f64::NAN);
            let f = under_fgsm
                .attacked
                .metric(k, "accuracy")
                .unwrap_or(f64::NAN);
            let p = under_pgd.attacked.metric(k, "accuracy").unwrap_or(f64::NAN);
            acc.push((clean, f, p));
        }
        println!("  done: {label} ({secs:.0} s)");
        rows.push((label, acc, secs));
    }

    println!(
        "\n{:<20} {:<6} {:>8} {:>8} {:>8} {:>9}",
        "training", "task", "clean", "FGSM", "PGD-10", "wall (s)"
    );
    println!("{}", "-".repeat(64));
    for (label, acc, secs) in &rows {
        for (k, (c, f, p)) in acc.iter().enumerate() {
            let (l, s) = if k == 0 {
                (label.to_string(), format!("{secs:.1}"))
            } else {
                (String::new(), String::new())
            };
            println!("{l:<20} {:<6} {c:>8.4} {f:>8.4} {p:>8.4} {s:>9}", names[k]);
        }
    }
    println!(
        "\n(test accuracy on {} composites; attacks at ε = {EPSILON} in L∞ on [0, 1] pixels, \
         each task attacked on its own loss; total {:.0} s)",
        split.test.len(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
