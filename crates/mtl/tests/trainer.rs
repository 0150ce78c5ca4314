//! End-to-end behaviour of the Trainer on a small synthetic two-task problem.

mod common;

use common::{model, synthetic, torch_lock};
use mtl::heads::ClassificationHead;
use mtl::prelude::*;
use mtl::step::backward_step;
use mtl::{DivergenceGuard, MAX_EPOCHS};
use tch::{nn, Device, Tensor};

fn config(method: &str) -> TrainerConfig {
    TrainerConfig::default()
        .epochs(15)
        .batch_size(16)
        .optimizer(OptimizerConfig::adam(1e-2))
        .method(method)
        .seed(3)
}

#[test]
fn every_foundation_method_lowers_both_losses_in_both_modes() {
    // Runs draw from libtorch's process-global generator.
    let _torch = torch_lock();
    let data = synthetic(256, 1);
    for method in ["ew", "static", "uw", "gradnorm", "pcgrad"] {
        for mode in [GradMode::Parameters, GradMode::Representation] {
            let mut m = model(0);
            let report = Trainer::new(config(method).grad_mode(mode))
                .unwrap()
                .fit(&mut m, &data, None)
                .unwrap();
            let first = &report.epochs[0].train_losses;
            let last = &report.epochs.last().unwrap().train_losses;
            for k in 0..2 {
                assert!(
                    last[k] < 0.7 * first[k],
                    "{method} {mode:?} task {k}: {first:?} -> {last:?}"
                );
            }
        }
    }
}

#[test]
fn same_seed_same_run() {
    // Runs draw from libtorch's process-global generator.
    let _torch = torch_lock();
    let data = synthetic(128, 2);
    let run = |method: &str| {
        let mut m = model(5);
        let r = Trainer::new(config(method).epochs(3))
            .unwrap()
            .fit(&mut m, &data, None)
            .unwrap();
        let w: Vec<Vec<f32>> = m
            .snapshot()
            .iter()
            .map(|(_, t)| Vec::<f32>::try_from(t.reshape([-1])).unwrap())
            .collect();
        (
            r.epochs
                .iter()
                .map(|e| e.train_losses.clone())
                .collect::<Vec<_>>(),
            w,
        )
    };
    for method in ["ew", "pcgrad", "uw"] {
        assert_eq!(run(method), run(method), "{method}");
    }
}

#[test]
fn early_stopping_restores_the_best_weights() {
    // Runs draw from libtorch's process-global generator.
    let _torch = torch_lock();
    let data = synthetic(200, 3);
    let split = data.split(0.3, 0.0, 1).unwrap();
    let mut m = model(1);
    let es = EarlyStopping::new(
        Monitor::Metric {
            task: 1,
            name: "mse".into(),
        },
        3,
    );
    let report = Trainer::new(
        config("ew")
            .epochs(60)
            .optimizer(OptimizerConfig::adam(5e-2))
            .early_stopping(es),
    )
    .unwrap()
    .fit(&mut m, &split.train, Some(&split.validation))
    .unwrap();
    let best = report.epochs[report.best_epoch]
        .validation
        .as_ref()
        .unwrap()
        .metric(1, "mse")
        .unwrap();
    let recorded_min = report
        .epochs
        .iter()
        .map(|e| e.validation.as_ref().unwrap().metric(1, "mse").unwrap())
        .fold(f64::INFINITY, f64::min);
    assert_eq!(best, recorded_min);
    let now = evaluate(&m, &split.validation, 64)
        .unwrap()
        .metric(1, "mse")
        .unwrap();
    assert!((now - best).abs() < 1e-6, "restored {now} vs best {best}");
    assert_eq!(report.stopped_early, report.epochs.len() < 60);
}

#[test]
fn report_round_trips_through_json() {
    // Runs draw from libtorch's process-global generator.
    let _torch = torch_lock();
    let data = synthetic(64, 4);
    let mut m = model(2);
    let report = Trainer::new(config("gradnorm").epochs(2))
        .unwrap()
        .fit(&mut m, &data, Some(&data))
        .unwrap();
    let back: RunReport = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(back, report);
    assert_eq!(back.epochs[1].task_weights.len(), 2);
}

#[test]
fn mismatches_are_typed_errors() {
    // Runs draw from libtorch's process-global generator.
    let _torch = torch_lock();
    let data = synthetic(32, 5);
    let mut m = model(3);
    let single = data.only_task(0).unwrap();
    assert!(matches!(
        Trainer::new(config("ew"))
            .unwrap()
            .fit(&mut m, &single, None),
        Err(Error::TaskCount { .. })
    ));
    let es = EarlyStopping::new(Monitor::TotalLoss, 2);
    assert!(matches!(
        Trainer::new(config("ew").early_stopping(es))
            .unwrap()
            .fit(&mut m, &data, None),
        Err(Error::Config(_))
    ));
    // An unknown method is refused when the trainer is built, listing the known ones.
    match Trainer::new(config("no_such_method")) {
        Err(Error::Unknown { kind, name, known }) => {
            assert_eq!((kind, name.as_str()), ("method", "no_such_method"));
            assert!(known.contains("ew") && known.contains("pcgrad"), "{known}");
        }
        other => panic!("expected Error::Unknown, got {other:?}"),
    }
    assert!(Trainer::new(config("ew").epochs(0)).is_err());

    let vs = nn::VarStore::new(Device::Cpu);
    let trunk = MlpConfig::new([4, 8]).build(&vs.root()).unwrap();
    let head = ClassificationHead::new(&(task_path(&vs.root(), 0) / "head"), "wide", 9, 2).unwrap();
    let err = MultiTaskModel::new(
        vs,
        HardSharing::new(trunk, 1).unwrap(),
        vec![Box::new(head)],
    )
    .unwrap_err();
    assert!(err.to_string().contains("head `wide`"), "{err}");
}

/// A head that always predicts NaN, to check that a non-finite task loss is reported
/// with its task and step instead of poisoning the weights.
#[derive(Debug)]
struct NanHead;

impl TaskHead for NanHead {
    fn name(&self) -> &str {
        "nan"
    }
    fn in_dim(&self) -> i64 {
        8
    }
    fn forward_t(&self, f: &Tensor, _train: bool) -> Result<Tensor> {
        Ok(f.sum_dim_intlist(1, false, tch::Kind::Float) * f64::NAN)
    }
    fn loss(&self, o: &Tensor, _t: &TaskTarget) -> Result<Tensor> {
        Ok(o.mean(tch::Kind::Float))
    }
    fn metrics(&self) -> Box<dyn mtl::heads::Metrics> {
        unreachable!("not evaluated in this test")
    }
}

#[test]
fn nan_task_loss_names_task_and_step() {
    // Runs draw from libtorch's process-global generator.
    let _torch = torch_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let trunk = MlpConfig::new([4, 8])
        .build(&(vs.root() / "trunk"))
        .unwrap();
    let h0 = ClassificationHead::new(&(task_path(&vs.root(), 0) / "head"), "sign", 8, 2).unwrap();
    let m = MultiTaskModel::new(
        vs,
        HardSharing::new(trunk, 2).unwrap(),
        vec![Box::new(h0), Box::new(NanHead)],
    )
    .unwrap();
    let groups = m.param_groups().unwrap();
    let data = synthetic(8, 6);
    let batch = data.batches(8, None).unwrap().next().unwrap();
    let mut method = mtl::losses::by_name("ew", 2, 0).unwrap();
    let err = backward_step(
        &m,
        &groups,
        &mut method,
        GradMode::Parameters,
        &batch.x,
        &batch.targets,
        41,
        0,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFinite {
                task: Some(1),
                step: Some(41),
                ..
            }
        ),
        "{err}"
    );
}

/// Unknown keys in the trainer configuration and every nested table are errors naming
/// the key: `learning_rate`, `loss_weights` and `momentm` used to be dropped silently.
#[test]
fn unknown_configuration_keys_are_refused() {
    for (json, key) in [
        (r#"{"learning_rate": 0.1}"#, "learning_rate"),
        (r#"{"loss_weights": [1, 0.3]}"#, "loss_weights"),
        (
            r#"{"optimizer": {"kind": "sgd", "lr": 0.1, "momentm": 0.9}}"#,
            "momentm",
        ),
        (
            r#"{"lr_schedule": {"kind": "cosine", "min_factr": 0.1}}"#,
            "min_factr",
        ),
        (
            r#"{"early_stopping": {"monitor": {"kind": "total_loss"}, "patience": 3, "min_delt": 0.1}}"#,
            "min_delt",
        ),
        (
            r#"{"early_stopping": {"monitor": {"kind": "metric", "task": 0, "name": "accuracy", "higher": true}, "patience": 3}}"#,
            "higher",
        ),
        (
            r#"{"diagnostics": {"every_steps": 5, "affinty": true}}"#,
            "affinty",
        ),
        (
            r#"{"checkpoint": {"path": "c.safetensors", "every": 2}}"#,
            "every",
        ),
        (r#"{"divergence": {"factr": 10}}"#, "factr"),
    ] {
        let err = serde_json::from_str::<TrainerConfig>(json).unwrap_err();
        assert!(err.to_string().contains(key), "{json}: {err}");
    }
    // Everything may still be left out, and the checkpoint interval defaults to 1.
    let cfg: TrainerConfig =
        serde_json::from_str(r#"{"checkpoint": {"path": "c.safetensors"}}"#).unwrap();
    assert_eq!(cfg.checkpoint.unwrap().every_epochs, 1);
    assert!(cfg.divergence.enabled);
}

/// Ranges are checked when the trainer is made, before any data is touched: epochs
/// near i64::MAX overflowed the old trainer's step count; an empty prefix froze the
/// whole model, which then trained nothing.
#[test]
fn out_of_range_settings_are_refused() {
    for epochs in [usize::MAX, i64::MAX as usize, MAX_EPOCHS + 1] {
        let err = Trainer::new(config("ew").epochs(epochs)).unwrap_err();
        assert!(err.to_string().contains("epochs must be at most"), "{err}");
    }
    assert!(Trainer::new(config("ew").epochs(MAX_EPOCHS)).is_ok());
    let err = Trainer::new(config("ew").freeze("")).unwrap_err();
    assert!(err.to_string().contains("frozen[0] is empty"), "{err}");
    for bad in [
        config("ew").optimizer(OptimizerConfig::sgd(-1.0)),
        config("ew").optimizer(OptimizerConfig::Sgd {
            lr: 0.1,
            momentum: -0.5,
            nesterov: false,
            weight_decay: 0.0,
        }),
        config("ew").divergence(DivergenceGuard::default().factor(0.5)),
        config("ew").divergence(DivergenceGuard::default().patience(0)),
        config("ew").early_stopping(EarlyStopping {
            monitor: Monitor::TotalLoss,
            patience: 2,
            min_delta: f64::NAN,
        }),
    ] {
        assert!(Trainer::new(bad.clone()).is_err(), "{bad:?}");
    }
    // Freezing every parameter (here through two prefixes) trains nothing either.
    let _torch = torch_lock();
    let data = synthetic(32, 5);
    let err = Trainer::new(config("ew").freeze("trunk").freeze("task"))
        .unwrap()
        .fit(&mut model(3), &data, None)
        .unwrap_err();
    assert!(err.to_string().contains("nothing would train"), "{err}");
}

/// With a learning rate of 10⁶ the classification loss explodes to ~10¹⁹ while staying
/// finite; the run used to end "successfully". The guard stops it with the task and
/// step; turned off, the same run trains on.
#[test]
fn a_diverging_run_stops_naming_the_task_and_step() {
    let _torch = torch_lock();
    let data = synthetic(64, 8).only_task(0).unwrap();
    let cfg = config("ew").epochs(2).optimizer(OptimizerConfig::sgd(1e6));
    let err = Trainer::new(cfg.clone())
        .unwrap()
        .fit(&mut common::model_for(1, &[0]), &data, None)
        .unwrap_err();
    match &err {
        Error::Diverged {
            task: 0,
            name,
            step,
            loss,
            reference,
            ..
        } => {
            assert_eq!(name, "sign");
            assert!(*step < 8, "{err}");
            assert!(loss.is_finite() && *loss > 1e4 * reference, "{err}");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("step"), "{err}");
    let report = Trainer::new(cfg.epochs(1).divergence(DivergenceGuard::off()))
        .unwrap()
        .fit(&mut common::model_for(1, &[0]), &data, None)
        .unwrap();
    assert!(report.epochs[0].train_losses[0] > 1e4, "{report:?}");
}
