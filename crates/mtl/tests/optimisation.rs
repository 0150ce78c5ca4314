//! Learning-rate schedules, gradient clipping and frozen parameter groups in the Trainer.

mod common;

use common::{config, model, synthetic, weights};
use mtl::prelude::*;

#[test]
fn frozen_groups_keep_their_weights_and_the_rest_trains() {
    let data = synthetic(128, 1);
    let mut m = model(0);
    let before = weights(&m);
    for method in ["ew", "mean"] {
        Trainer::new(config(method).epochs(2).freeze("trunk.0."))
            .unwrap()
            .fit(&mut m, &data, None)
            .unwrap();
    }
    let after = weights(&m);
    let mut changed = 0;
    for ((name, b), (_, a)) in before.iter().zip(&after) {
        if name.starts_with("trunk.0.") {
            assert_eq!(a, b, "{name} moved although frozen");
        } else if a != b {
            changed += 1;
        }
    }
    assert!(changed >= 4, "only {changed} unfrozen tensors changed");
    // The freeze ends with the fit.
    let vars = m.var_store().variables();
    assert!(vars.iter().all(|(_, t)| t.requires_grad()));
}

#[test]
fn freezing_an_unknown_prefix_is_an_error() {
    let data = synthetic(32, 2);
    let mut m = model(0);
    let err = Trainer::new(config("ew").freeze("trunc"))
        .unwrap()
        .fit(&mut m, &data, None)
        .unwrap_err();
    assert!(matches!(err, Error::Unknown { .. }), "{err}");
}

#[test]
fn the_schedule_sets_each_epochs_learning_rate() {
    let data = synthetic(64, 3); // 4 steps per epoch at batch 16
    let mut m = model(1);
    let schedule = LrSchedule::step(4, 0.5);
    let report = Trainer::new(config("ew").epochs(3).lr_schedule(schedule))
        .unwrap()
        .fit(&mut m, &data, None)
        .unwrap();
    let lrs: Vec<f64> = report.epochs.iter().map(|e| e.lr).collect();
    assert_eq!(lrs, [1e-2, 5e-3, 2.5e-3]);

    let cosine = LrSchedule::warmup_cosine(2, 0.0);
    let report = Trainer::new(config("ew").epochs(3).lr_schedule(cosine.clone()))
        .unwrap()
        .fit(&mut m, &data, None)
        .unwrap();
    let last = report.epochs.last().unwrap().lr;
    assert!(
        (last - 1e-2 * cosine.factor(11, 12)).abs() < 1e-15,
        "{last}"
    );
    assert!(Trainer::new(config("ew").lr_schedule(LrSchedule::step(0, 0.5))).is_err());
}

#[test]
fn clipping_bounds_the_update_and_records_the_norm() {
    let data = synthetic(128, 4);
    // With SGD the update is lr·g, so a clipped step moves the weights by at most
    // lr·max_norm in global L2 norm.
    let mut m = model(2);
    let before = weights(&m);
    let max_norm = 1e-3;
    let cfg = config("ew")
        .epochs(1)
        .batch_size(128)
        .optimizer(OptimizerConfig::sgd(1.0))
        .clip_grad_norm(max_norm);
    let report = Trainer::new(cfg).unwrap().fit(&mut m, &data, None).unwrap();
    let moved: f64 = before
        .iter()
        .zip(weights(&m))
        .flat_map(|((_, b), (_, a))| {
            b.iter()
                .zip(a)
                .map(|(x, y)| f64::from(x - y).powi(2))
                .collect::<Vec<_>>()
        })
        .sum::<f64>()
        .sqrt();
    assert!(moved <= max_norm * 1.001, "moved {moved}");
    assert!(moved > max_norm * 0.5, "moved {moved}");
    let norm = report.epochs[0].grad_norm.unwrap();
    assert!(norm > max_norm, "pre-clip norm {norm}");
    assert!(Trainer::new(config("ew").clip_grad_norm(-1.0)).is_err());
}
