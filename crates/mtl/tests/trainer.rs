//! End-to-end behaviour of the Trainer on a small synthetic two-task problem.

mod common;

use common::{model, synthetic, torch_lock};
use mtl::heads::ClassificationHead;
use mtl::prelude::*;
use mtl::step::backward_step;
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
