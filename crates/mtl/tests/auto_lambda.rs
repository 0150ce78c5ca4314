//! Auto-λ through the trainer: a validation batch and a meta step before every
//! training step. Without validation data the fit is a typed error naming it; the meta
//! step leaves the model's parameters bit-identical; a run resumed from a checkpoint
//! continues exactly (λ, its Adam moments and the validation-batch stream included).

mod common;

use common::{config, model, synthetic, torch_lock, weights};
use mtl::core::Error;
use mtl::losses::bilevel::VirtualStep;
use mtl::prelude::*;
use mtl::StepData;
use std::path::PathBuf;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mtl-autolambda-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// SGD with momentum and weight decay, so the virtual step reads both.
fn cfg() -> TrainerConfig {
    config("auto_lambda")
        .epochs(4)
        .optimizer(OptimizerConfig::Sgd {
            lr: 0.05,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 1e-4,
        })
        .method_param("lr", serde_json::json!(1e-2))
}

#[test]
fn without_validation_data_the_fit_is_a_typed_error() {
    let _torch = torch_lock();
    let data = synthetic(64, 1);
    let mut m = model(1);
    let before = weights(&m);
    let err = Trainer::new(cfg())
        .unwrap()
        .fit(&mut m, &data, None)
        .unwrap_err();
    match &err {
        Error::Config(msg) => assert!(
            msg.contains("auto_lambda") && msg.contains("needs validation data"),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(weights(&m), before, "nothing trained");
}

#[test]
fn the_meta_step_restores_the_parameters_bit_for_bit() {
    let _torch = torch_lock();
    let data = synthetic(64, 2);
    let m = model(2);
    let groups = m.param_groups().unwrap();
    let params = groups.all_tensors();
    let mut batches = data.batches(16, None).unwrap();
    let train = StepData::Joint(batches.next().unwrap());
    let val = StepData::Joint(batches.next().unwrap());
    let before = weights(&m);
    let mut method = mtl::losses::by_name("auto_lambda", 2, 0).unwrap();
    let g = mtl::meta_step(
        &m,
        &mut method,
        &params,
        &[],
        VirtualStep::sgd(0.1),
        &train,
        &val,
        0,
        3,
    )
    .unwrap();
    assert!(
        g.gradient.iter().all(|x| x.is_finite() && *x != 0.0),
        "{g:?}"
    );
    assert_eq!(weights(&m), before, "the meta step moved a parameter");
    assert!(params
        .iter()
        .all(|p| !p.grad().defined()
            || p.grad().abs().sum(tch::Kind::Double).double_value(&[]) == 0.0));
    let lambdas = method.meta().unwrap().lambdas();
    assert!(lambdas.iter().all(|l| *l != 0.1), "{lambdas:?}");
    // A method without a meta side is refused by name.
    let mut ew = mtl::losses::by_name("ew", 2, 0).unwrap();
    let err = mtl::meta_step(
        &m,
        &mut ew,
        &params,
        &[],
        VirtualStep::sgd(0.1),
        &train,
        &val,
        0,
        3,
    )
    .unwrap_err();
    assert!(err.to_string().contains("`ew`"), "{err}");
}

#[test]
fn auto_lambda_trains_and_learns_its_weights() {
    let _torch = torch_lock();
    let data = synthetic(128, 3);
    let split = data.split(0.25, 0.0, 1).unwrap();
    let mut m = model(3);
    let report = Trainer::new(cfg().epochs(5))
        .unwrap()
        .fit(&mut m, &split.train, Some(&split.validation))
        .unwrap();
    let first = &report.epochs[0];
    let last = report.epochs.last().unwrap();
    let total = |l: &[f64]| l.iter().sum::<f64>();
    assert!(total(&last.train_losses) < total(&first.train_losses));
    assert_eq!(last.task_weights.len(), 2);
    assert!(
        last.task_weights.iter().all(|w| (w - 0.1).abs() > 1e-3),
        "λ did not move: {:?}",
        last.task_weights
    );
}

#[test]
fn a_resumed_run_continues_exactly() {
    let _torch = torch_lock();
    let data = synthetic(100, 11); // 6 full batches per epoch and a short one
    let split = data.split(0.3, 0.0, 1).unwrap(); // validation: 30 rows, 2 passes a training epoch
    let mut full = model(4);
    let full_report = Trainer::new(cfg())
        .unwrap()
        .fit(&mut full, &split.train, Some(&split.validation))
        .unwrap();

    let path = temp("resume.safetensors");
    let mut first = model(4);
    Trainer::new(cfg().epochs(2).checkpoint(CheckpointPolicy::new(&path)))
        .unwrap()
        .fit(&mut first, &split.train, Some(&split.validation))
        .unwrap();
    let mut resumed = model(99);
    let report = Trainer::new(cfg())
        .unwrap()
        .resume_from(&path)
        .fit(&mut resumed, &split.train, Some(&split.validation))
        .unwrap();
    assert_eq!(report.epochs.len(), 4);
    for (a, b) in report.epochs.iter().zip(&full_report.epochs) {
        assert_eq!(a.train_losses, b.train_losses, "epoch {}", a.epoch);
        assert_eq!(a.task_weights, b.task_weights, "epoch {}", a.epoch);
    }
    assert_eq!(weights(&resumed), weights(&full));
    let _ = std::fs::remove_file(&path);
}
