//! Adversarial robustness: FGSM and PGD stay in the ε-ball and raise the loss, PGD is
//! at least as strong as FGSM, bad settings and inputs are refused, adversarial
//! training runs with a weighting and an aggregator, and accuracy under attack is
//! reported per task beside the clean one.

mod common;

use common::{config, model_without_dropout, synthetic, torch_lock, weights};
use mtl::prelude::*;
use mtl::robust::{perturb, Objective};
use mtl::{evaluate_under_attack, Adversarial, AttackTarget};
use tch::{Device, Kind, Tensor};

fn batch(n: usize) -> mtl::data::Batch {
    let d = synthetic(n, 5);
    let rows: Vec<usize> = (0..n).collect();
    d.batch(&rows).unwrap()
}

fn sum_loss(m: &MultiTaskModel, x: &Tensor, b: &mtl::data::Batch) -> f64 {
    let fwd = m.forward_t(x, false).unwrap();
    m.losses(&fwd.outputs, &b.targets)
        .unwrap()
        .iter()
        .map(|l| l.double_value(&[]))
        .sum()
}

fn linf(a: &Tensor, b: &Tensor) -> f64 {
    f64::try_from((a - b).abs().max()).unwrap()
}

#[test]
fn fgsm_moves_by_epsilon_and_raises_the_loss() {
    let _torch = torch_lock();
    let m = model_without_dropout(1);
    let b = batch(32);
    let eps = 0.05;
    let xa = perturb(
        &m,
        &b.x,
        &b.targets,
        &Adversarial::fgsm(eps),
        Objective::Sum,
    )
    .unwrap();
    assert!((linf(&xa, &b.x) - eps).abs() < 1e-6, "{}", linf(&xa, &b.x));
    assert!(sum_loss(&m, &xa, &b) > sum_loss(&m, &b.x, &b));
    // No parameter gradient was touched.
    for (_, v) in m.var_store().variables() {
        assert!(
            !v.grad().defined() || f64::try_from(v.grad().abs().sum(Kind::Double)).unwrap() == 0.0
        );
    }
    // A task objective raises that task's loss.
    let xa1 = perturb(
        &m,
        &b.x,
        &b.targets,
        &Adversarial::fgsm(eps),
        Objective::Task(1),
    )
    .unwrap();
    let l1 = |x: &Tensor| {
        let o = m.forward_t(x, false).unwrap().outputs;
        m.task_loss(1, &o[1], &b.targets[1])
            .unwrap()
            .double_value(&[])
    };
    assert!(l1(&xa1) > l1(&b.x));
}

#[test]
fn pgd_stays_in_the_ball_and_bounds_and_beats_fgsm() {
    let _torch = torch_lock();
    tch::manual_seed(3);
    let m = model_without_dropout(2);
    let b = batch(32);
    let eps = 0.1;
    let fgsm = perturb(
        &m,
        &b.x,
        &b.targets,
        &Adversarial::fgsm(eps),
        Objective::Sum,
    )
    .unwrap();
    for random_start in [false, true] {
        let pgd_cfg = Adversarial::pgd(eps, 20, eps / 4.0).random_start(random_start);
        let pgd = perturb(&m, &b.x, &b.targets, &pgd_cfg, Objective::Sum).unwrap();
        assert!(linf(&pgd, &b.x) <= eps + 1e-6, "{}", linf(&pgd, &b.x));
        assert!(
            sum_loss(&m, &pgd, &b) >= sum_loss(&m, &fgsm, &b) - 1e-6,
            "random start {random_start}"
        );
    }
    // Bounds clamp the perturbed input.
    let bounded = Adversarial::pgd(0.5, 5, 0.2).bounds(-0.9, 0.9);
    let xa = perturb(&m, &b.x, &b.targets, &bounded, Objective::Sum).unwrap();
    assert!(f64::try_from(xa.abs().max()).unwrap() <= 0.9 + 1e-6);
    // ε = 0 leaves the input as it is.
    let same = perturb(
        &m,
        &b.x,
        &b.targets,
        &Adversarial::pgd(0.0, 3, 0.1),
        Objective::Sum,
    )
    .unwrap();
    assert_eq!(linf(&same, &b.x), 0.0);
}

#[test]
fn negative_epsilon_and_integer_inputs_are_refused() {
    let _torch = torch_lock();
    let m = model_without_dropout(1);
    let b = batch(8);
    for bad in [
        Adversarial::fgsm(-0.1),
        Adversarial::pgd(-1.0, 10, 0.1),
        Adversarial::pgd(f64::INFINITY, 10, 0.1),
        Adversarial::pgd(0.1, 10, 0.0),
        Adversarial::pgd(0.1, 10, 0.1).bounds(1.0, 0.0),
        Adversarial::fgsm(0.1).weight(-1.0),
    ] {
        let err = Trainer::new(config("ew").adversarial(bad.clone())).unwrap_err();
        assert!(matches!(err, mtl::core::Error::Config(_)), "{bad:?}");
        assert!(perturb(&m, &b.x, &b.targets, &bad, Objective::Sum).is_err());
    }
    let msg = Adversarial::fgsm(-0.1).check().unwrap_err().to_string();
    assert!(msg.contains("epsilon") && msg.contains("-0.1"), "{msg}");
    let ids = Tensor::zeros([8, 4], (Kind::Int64, Device::Cpu));
    let err = perturb(
        &m,
        &ids,
        &b.targets,
        &Adversarial::fgsm(0.1),
        Objective::Sum,
    )
    .unwrap_err();
    assert!(err.to_string().contains("floating-point"), "{err}");
}

#[test]
fn the_training_objective_is_clean_plus_beta_times_attacked() {
    let _torch = torch_lock();
    // One full batch per epoch: the recorded loss is the first step's, before any update.
    let data = synthetic(40, 3);
    let c = config("ew").epochs(1).batch_size(40);
    let plain = Trainer::new(c.clone())
        .unwrap()
        .fit(&mut model_without_dropout(4), &data, None)
        .unwrap();
    // ε = 0: the attacked loss is the clean one, so each task's loss is (1 + β) times it.
    let adv = Trainer::new(c.clone().adversarial(Adversarial::fgsm(0.0).weight(0.5)))
        .unwrap()
        .fit(&mut model_without_dropout(4), &data, None)
        .unwrap();
    for (p, a) in plain.epochs[0]
        .train_losses
        .iter()
        .zip(&adv.epochs[0].train_losses)
    {
        assert!(
            (a - 1.5 * p).abs() < 1e-6 * p.abs().max(1.0),
            "{a} vs 1.5 × {p}"
        );
    }
    // ε > 0: the attacked part is larger than the clean one.
    let adv = Trainer::new(c.adversarial(Adversarial::fgsm(0.2)))
        .unwrap()
        .fit(&mut model_without_dropout(4), &data, None)
        .unwrap();
    for (p, a) in plain.epochs[0]
        .train_losses
        .iter()
        .zip(&adv.epochs[0].train_losses)
    {
        assert!(*a > 2.0 * p, "{a} vs 2 × {p}");
    }
}

#[test]
fn adversarial_training_runs_with_a_weighting_and_an_aggregator() {
    let _torch = torch_lock();
    let data = synthetic(60, 6);
    let split = data.split(0.3, 0.0, 1).unwrap();
    for method in ["ew", "pcgrad"] {
        for target in [AttackTarget::Sum, AttackTarget::PerTask] {
            tch::manual_seed(1);
            let c = config(method)
                .epochs(3)
                .adversarial(Adversarial::pgd(0.1, 3, 0.05).target(target));
            let mut m = model_without_dropout(7);
            let before = weights(&m);
            let report = Trainer::new(c)
                .unwrap()
                .fit(&mut m, &split.train, None)
                .unwrap();
            assert!(report
                .epochs
                .iter()
                .all(|e| e.train_losses.iter().all(|l| l.is_finite())));
            assert_ne!(weights(&m), before, "{method} {target:?}");
        }
    }
}

#[test]
fn robust_accuracy_is_reported_per_task_beside_the_clean_one() {
    let _torch = torch_lock();
    tch::manual_seed(2);
    let data = synthetic(80, 8);
    let mut m = model_without_dropout(9);
    Trainer::new(config("ew").epochs(5))
        .unwrap()
        .fit(&mut m, &data, None)
        .unwrap();
    let none = evaluate_under_attack(&m, &data, &Adversarial::fgsm(0.0), 32).unwrap();
    assert_eq!(none.clean, none.attacked);
    let r = evaluate_under_attack(&m, &data, &Adversarial::pgd(0.3, 10, 0.05), 32).unwrap();
    let (clean, attacked) = r.metric(0, "accuracy").unwrap();
    assert!(attacked < clean, "{attacked} vs {clean}");
    assert!(r.attacked.losses[1] > r.clean.losses[1]);
    assert_eq!(r.attacked.tasks, m.task_names());
    assert!(evaluate_under_attack(&m, &data, &Adversarial::fgsm(-1.0), 32).is_err());
}

#[test]
fn rep_grad_mode_differentiates_the_attacked_rows_too() {
    let _torch = torch_lock();
    // The attacked rows share the forward pass, so the representation covers the whole
    // objective: for the mean aggregator, whose combined gradient is the same from the
    // parameters' Jacobian and from the representation's, both modes take one step.
    let data = synthetic(48, 2);
    let c = config("mean")
        .epochs(1)
        .batch_size(48)
        .optimizer(OptimizerConfig::sgd(0.5))
        .adversarial(Adversarial::fgsm(0.3));
    let mut by_params = model_without_dropout(3);
    let before = weights(&by_params);
    Trainer::new(c.clone())
        .unwrap()
        .fit(&mut by_params, &data, None)
        .unwrap();
    let mut by_rep = model_without_dropout(3);
    Trainer::new(c.grad_mode(GradMode::Representation))
        .unwrap()
        .fit(&mut by_rep, &data, None)
        .unwrap();
    for (((name, a), (_, b)), (_, w0)) in weights(&by_params)
        .iter()
        .zip(weights(&by_rep))
        .zip(&before)
    {
        let moved = a.iter().zip(w0).any(|(x, y)| x != y);
        assert!(moved || !name.starts_with("trunk"), "{name} did not move");
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5, "{name}: {x} vs {y}");
        }
    }
}
