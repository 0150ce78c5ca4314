//! Uncertainty weighting against LibMTL's `UW` (golden `libmtl_UW.json`, a stateful
//! sequence replayed step by step with the harness's SGD(lr = 0.1) on the log-variances),
//! plus properties and edge cases.

mod common;

use mtl_losses::methods::UncertaintyWeighting;
use mtl_losses::{by_name, Method, StepContext, Weighting};
use proptest::prelude::*;
use tch::{Device, Kind, Tensor};

/// One SGD step on every parameter, then clears the gradients (the harness's
/// `torch.optim.SGD(lr).step(); zero_grad()`).
fn sgd_step(params: &[Tensor], lr: f64) {
    tch::no_grad(|| {
        for p in params {
            let mut p = p.shallow_clone();
            let g = p.grad();
            let _ = p.f_sub_(&(g * lr)).expect("sgd update");
            let _ = p.grad().zero_();
        }
    });
}

#[test]
fn golden_libmtl_uw_sequence() {
    let doc = common::load("libmtl_UW.json");
    assert_eq!(doc["kind"], "stateful_sequence");
    assert_eq!(doc["params"]["loss_scale_init"].as_f64(), Some(-0.5));
    let cases = common::cases(&doc);
    assert!(!cases.is_empty());
    for case in cases {
        let (name, k, (tol_rel, tol_abs)) = common::sequence_case(case);
        let d = case["d"].as_i64().unwrap();
        let mut uw = UncertaintyWeighting::with_init(k, -0.5, Kind::Double, Device::Cpu).unwrap();
        let steps = case["steps"].as_array().unwrap();
        assert!(!steps.is_empty());
        for (t, step) in steps.iter().enumerate() {
            let what = |s: &str| format!("{name} step {t}: {s}");
            common::assert_close(
                &uw.loss_scale().unwrap(),
                &common::vec_f64(&step["loss_scale_before"]),
                tol_rel,
                tol_abs,
                &what("loss_scale_before"),
            );
            // The harness: shared parameters θ = 0 and loss_i = L_i + G_i·θ, so
            // d total/dθ = Σ_i (d total/d loss_i) G_i is what `expected` records.
            let g = common::matrix(&step["G"]);
            assert_eq!(g.size(), [k as i64, d]);
            let theta = Tensor::zeros([d], (Kind::Double, Device::Cpu)).set_requires_grad(true);
            let values = common::vec_f64(&step["losses"]);
            let losses = Tensor::from_slice(&values) + g.matmul(&theta);
            let ctx = StepContext {
                step: t as u64,
                epoch: 0,
                losses: &values,
            };
            let total = uw.combine(&losses, &ctx).unwrap();
            common::assert_close(
                &uw.weights(),
                &common::vec_f64(&step["weights"]),
                tol_rel,
                tol_abs,
                &what("weights"),
            );
            total.backward();
            common::assert_close(
                &common::to_vec(&theta.grad()),
                &common::vec_f64(&step["expected"]),
                tol_rel,
                tol_abs,
                &what("expected"),
            );
            let params = uw.parameters();
            assert_eq!(params.len(), 1);
            common::assert_close(
                &common::to_vec(&params[0].grad()),
                &common::vec_f64(&step["loss_scale_grad"]),
                tol_rel,
                tol_abs,
                &what("loss_scale_grad"),
            );
            sgd_step(&params, 0.1);
            common::assert_close(
                &uw.loss_scale().unwrap(),
                &common::vec_f64(&step["loss_scale_after"]),
                tol_rel,
                tol_abs,
                &what("loss_scale_after"),
            );
        }
    }
}

proptest! {
    /// ∂L/∂sₖ = 1/2 − Lₖ/(2 e^{sₖ}): positive (sₖ shrinks) exactly when the loss is
    /// below the current variance e^{sₖ}, negative when above.
    #[test]
    fn loss_scale_gradient_sign(
        init in -3.0f64..3.0,
        losses in prop::collection::vec(0.0f64..20.0, 1..6),
    ) {
        let k = losses.len();
        let mut uw = UncertaintyWeighting::with_init(k, init, Kind::Double, Device::Cpu).unwrap();
        let total = uw.combine(&Tensor::from_slice(&losses), &StepContext::default()).unwrap();
        total.backward();
        let grad = common::to_vec(&uw.parameters()[0].grad());
        for (l, g) in losses.iter().zip(&grad) {
            let expected = 0.5 - 0.5 * l * (-init).exp();
            prop_assert!((g - expected).abs() <= 1e-12 * (1.0 + expected.abs()));
            let variance = init.exp();
            if *l > variance * (1.0 + 1e-9) {
                prop_assert!(*g < 0.0, "loss {l} > e^s {variance} but grad {g}");
            } else if *l < variance * (1.0 - 1e-9) {
                prop_assert!(*g > 0.0, "loss {l} < e^s {variance} but grad {g}");
            }
        }
        for w in uw.weights() {
            prop_assert!((w - 0.5 * (-init).exp()).abs() <= 1e-12 * w);
        }
    }
}

#[test]
fn sgd_drives_the_variance_to_the_loss() {
    // With fixed losses the optimum of Lₖ/(2e^{sₖ}) + sₖ/2 is e^{sₖ} = Lₖ.
    let targets = [0.3f64, 1.0, 4.0];
    let mut uw = UncertaintyWeighting::with_init(3, -0.5, Kind::Double, Device::Cpu).unwrap();
    for step in 0..3000 {
        let ctx = StepContext {
            step,
            ..Default::default()
        };
        uw.combine(&Tensor::from_slice(&targets), &ctx)
            .unwrap()
            .backward();
        sgd_step(&uw.parameters(), 0.2);
    }
    let s = uw.loss_scale().unwrap();
    for (s, l) in s.iter().zip(&targets) {
        assert!((s - l.ln()).abs() < 1e-6, "s = {s}, log L = {}", l.ln());
    }
}

#[test]
fn default_parameter_is_f32_and_still_gets_gradients_from_f64_losses() {
    let mut uw = UncertaintyWeighting::new(2);
    let p = uw.parameters();
    assert_eq!(p[0].kind(), Kind::Float);
    assert!(p[0].requires_grad());
    let l = Tensor::from_slice(&[1.0f64, 3.0]).set_requires_grad(true);
    let total = uw.combine(&l, &StepContext::default()).unwrap();
    assert_eq!(total.kind(), Kind::Double);
    total.backward();
    let w0 = 0.5 * 0.5f64.exp();
    common::assert_close(&common::to_vec(&l.grad()), &[w0, w0], 1e-6, 0.0, "dL/dl");
    common::assert_close(
        &common::to_vec(&p[0].grad()),
        &[0.5 - w0, 0.5 - 3.0 * w0],
        1e-6,
        0.0,
        "dL/ds",
    );
}

#[test]
fn single_task() {
    let mut uw = UncertaintyWeighting::with_init(1, 0.0, Kind::Double, Device::Cpu).unwrap();
    let total = uw
        .combine(&Tensor::from_slice(&[2.0f64]), &StepContext::default())
        .unwrap();
    // 2/(2·1) + 0/2
    assert!((total.double_value(&[]) - 1.0).abs() < 1e-15);
    assert_eq!(uw.weights(), vec![0.5]);
}

#[test]
fn wrong_task_count_is_an_error() {
    let mut uw = UncertaintyWeighting::new(3);
    let out = uw.combine(&Tensor::from_slice(&[1.0f64, 2.0]), &StepContext::default());
    common::assert_task_count(out, 3, 2);
}

#[test]
fn nan_loss_names_the_task() {
    let mut uw = UncertaintyWeighting::new(2);
    let ctx = StepContext {
        step: 4,
        ..Default::default()
    };
    let out = uw.combine(&Tensor::from_slice(&[f64::NAN, 1.0]), &ctx);
    common::assert_non_finite(out, 0, 4);
}

#[test]
fn invalid_construction_is_an_error() {
    assert!(UncertaintyWeighting::with_init(0, -0.5, Kind::Float, Device::Cpu).is_err());
    assert!(UncertaintyWeighting::with_init(2, f64::NAN, Kind::Float, Device::Cpu).is_err());
    assert!(UncertaintyWeighting::with_init(2, -0.5, Kind::Int64, Device::Cpu).is_err());
}

#[test]
fn registry_uw() {
    match by_name("uw", 3, 0).unwrap() {
        Method::Weighting(w) => {
            assert_eq!(w.name(), "uw");
            assert_eq!(w.parameters().len(), 1);
            assert_eq!(w.parameters()[0].size(), [3]);
            let w0 = 0.5 * 0.5f64.exp();
            common::assert_close(&w.weights(), &[w0; 3], 1e-12, 0.0, "initial weights");
        }
        Method::Aggregator(_) => panic!("uw is loss-level"),
    }
}
