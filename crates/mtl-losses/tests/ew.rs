//! Equal weighting against LibMTL's `EW` (golden `libmtl_EW.json`), plus its edge cases.

mod common;

use mtl_losses::methods::EqualWeighting;
use mtl_losses::{by_name, Method, StepContext, Weighting};
use tch::Tensor;

/// d(total)/d(loss_i) of `method` at `losses`, through autograd.
fn loss_gradient(method: &mut dyn Weighting, losses: &[f64]) -> Vec<f64> {
    let l = Tensor::from_slice(losses).set_requires_grad(true);
    let ctx = StepContext {
        losses,
        ..Default::default()
    };
    let total = method.combine(&l, &ctx).expect("combine");
    assert_eq!(total.numel(), 1, "combine returns a scalar");
    total.backward();
    common::to_vec(&l.grad())
}

#[test]
fn golden_libmtl_ew() {
    let doc = common::load("libmtl_EW.json");
    assert_eq!(doc["kind"], "loss_weighting");
    let cases = common::cases(&doc);
    assert!(!cases.is_empty());
    for case in cases {
        let (name, losses, (tol_rel, tol_abs)) = common::weighting_case(case);
        let mut ew = EqualWeighting::new(losses.len());
        let grad = loss_gradient(&mut ew, &losses);
        common::assert_close(
            &grad,
            &common::vec_f64(&case["expected"]),
            tol_rel,
            tol_abs,
            &format!("{name}: d total / d loss"),
        );
        common::assert_close(
            &ew.weights(),
            &common::vec_f64(&case["weights_returned"]),
            tol_rel,
            tol_abs,
            &format!("{name}: weights"),
        );
    }
}

#[test]
fn registry_builds_ew() {
    match by_name("ew", 3, 0).unwrap() {
        Method::Weighting(mut w) => {
            assert_eq!(w.name(), "ew");
            assert_eq!(loss_gradient(w.as_mut(), &[0.5, 1.0, 2.0]), vec![1.0; 3]);
        }
        Method::Aggregator(_) => panic!("ew is loss-level"),
    }
}

#[test]
fn single_task_is_the_loss() {
    let mut ew = EqualWeighting::new(1);
    let total = ew
        .combine(&Tensor::from_slice(&[0.7f64]), &StepContext::default())
        .unwrap();
    assert_eq!(total.double_value(&[]), 0.7);
}

#[test]
fn wrong_task_count_is_an_error() {
    let mut ew = EqualWeighting::new(3);
    let out = ew.combine(&Tensor::from_slice(&[1.0f64, 2.0]), &StepContext::default());
    common::assert_task_count(out, 3, 2);
}
