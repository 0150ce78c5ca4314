//! Checkpoints: a run interrupted half-way and resumed from its checkpoint ends with
//! exactly the weights of an uninterrupted run; bad checkpoints are typed errors.

mod common;

use common::{config, model, synthetic, torch_lock, weights};
use mtl::core::checkpoint::Checkpoint;
use mtl::prelude::*;
use std::path::PathBuf;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mtl-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn cfg(method: &str) -> TrainerConfig {
    // SGD with momentum and a schedule that depends only on the step, so the state the
    // resume must restore includes momenta and the step count.
    config(method)
        .epochs(4)
        .optimizer(OptimizerConfig::Sgd {
            lr: 0.05,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 1e-4,
        })
        .lr_schedule(LrSchedule::step(5, 0.7))
        .clip_grad_norm(5.0)
        .early_stopping(EarlyStopping::new(Monitor::TotalLoss, 100))
}

#[test]
fn resumed_runs_equal_uninterrupted_runs_bit_for_bit() {
    let _torch = torch_lock();
    let data = synthetic(100, 11); // 7 batches per epoch, the last one short
    let split = data.split(0.2, 0.0, 1).unwrap();
    for method in ["ew", "uw", "pcgrad", "gradnorm"] {
        for adam in [false, true] {
            let mut c = cfg(method);
            if adam {
                c = c.optimizer(OptimizerConfig::adamw(1e-2));
            }
            let mut full = model(4);
            let full_report = Trainer::new(c.clone())
                .unwrap()
                .fit(&mut full, &split.train, Some(&split.validation))
                .unwrap();

            let path = temp(&format!("{method}-{adam}.safetensors"));
            let mut first = model(4);
            Trainer::new(c.clone().epochs(2).checkpoint(CheckpointPolicy::new(&path)))
                .unwrap()
                .fit(&mut first, &split.train, Some(&split.validation))
                .unwrap();
            // A fresh model with other initial weights: everything must come from the file.
            let mut resumed = model(99);
            let report = Trainer::new(c.clone())
                .unwrap()
                .resume_from(&path)
                .fit(&mut resumed, &split.train, Some(&split.validation))
                .unwrap();
            assert_eq!(report.epochs.len(), 4);
            for (a, b) in report.epochs.iter().zip(&full_report.epochs) {
                assert_eq!(a.train_losses, b.train_losses, "{method} epoch {}", a.epoch);
                assert_eq!(a.task_weights, b.task_weights, "{method} epoch {}", a.epoch);
                assert_eq!(a.validation, b.validation);
            }
            assert_eq!(report.best_epoch, full_report.best_epoch);
            assert_eq!(weights(&resumed), weights(&full), "{method} adam={adam}");
        }
    }
}

#[test]
fn the_checkpoint_is_plain_safetensors_with_model_names() {
    let _torch = torch_lock();
    let data = synthetic(64, 12);
    let path = temp("plain.safetensors");
    let mut m = model(1);
    Trainer::new(
        config("uw")
            .epochs(1)
            .checkpoint(CheckpointPolicy::new(&path)),
    )
    .unwrap()
    .fit(&mut m, &data, None)
    .unwrap();
    let ckpt = Checkpoint::load(&path).unwrap();
    let names: Vec<String> = ckpt.group(None).into_iter().map(|(n, _)| n).collect();
    let mut expected: Vec<String> = m.var_store().variables().into_keys().collect();
    expected.sort();
    assert_eq!(names, expected);
    // UW's log-variances and the optimiser moments travel in their own groups.
    assert_eq!(ckpt.group(Some("method")).len(), 1);
    assert!(!ckpt.group(Some("optimizer")).is_empty());
    // tch reads it back as a safetensors file too.
    let raw = tch::Tensor::read_safetensors(&path).unwrap();
    assert_eq!(raw.len(), ckpt.tensors.len());
}

#[test]
fn bad_checkpoints_are_typed_errors() {
    let _torch = torch_lock();
    let data = synthetic(64, 13);
    let path = temp("good.safetensors");
    let mut m = model(2);
    Trainer::new(
        config("ew")
            .epochs(1)
            .checkpoint(CheckpointPolicy::new(&path)),
    )
    .unwrap()
    .fit(&mut m, &data, None)
    .unwrap();

    let resume = |cfg: TrainerConfig, path: &PathBuf, m: &mut MultiTaskModel| {
        Trainer::new(cfg)
            .unwrap()
            .resume_from(path)
            .fit(m, &data, None)
    };
    let is_ckpt = |r: Result<RunReport>| matches!(r, Err(Error::Checkpoint { .. }));

    // Another method, another seed, another model.
    assert!(is_ckpt(resume(config("uw"), &path, &mut model(2))));
    assert!(is_ckpt(resume(config("ew").seed(4), &path, &mut model(2))));
    let mut one_task = common::model_for(2, &[0]);
    let single = data.only_task(0).unwrap();
    assert!(matches!(
        Trainer::new(config("ew"))
            .unwrap()
            .resume_from(&path)
            .fit(&mut one_task, &single, None),
        Err(Error::Checkpoint { .. })
    ));
    // Corrupted bytes.
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 0x40;
    let bad = temp("flipped.safetensors");
    std::fs::write(&bad, &bytes).unwrap();
    assert!(is_ckpt(resume(config("ew"), &bad, &mut model(2))));
    std::fs::write(&bad, &bytes[..n / 2]).unwrap();
    assert!(is_ckpt(resume(config("ew"), &bad, &mut model(2))));
    // A missing file is an I/O error naming it.
    let err = resume(config("ew"), &temp("missing.safetensors"), &mut model(2)).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    // The good one still resumes (and may extend the epoch budget).
    assert!(resume(config("ew").epochs(2), &path, &mut model(2)).is_ok());
}
