//! Static loss weights: the weighted sum, its gradient, validation, registry.

mod common;

use mtl_core::Error;
use mtl_losses::methods::StaticWeighting;
use mtl_losses::registry::static_weights;
use mtl_losses::{by_name, Method, StepContext, Weighting};
use proptest::prelude::*;
use tch::{Kind, Tensor};

fn combine_with_grad(w: &mut StaticWeighting, losses: &[f64]) -> (f64, Vec<f64>) {
    let l = Tensor::from_slice(losses).set_requires_grad(true);
    let total = w.combine(&l, &StepContext::default()).expect("combine");
    total.backward();
    (total.double_value(&[]), common::to_vec(&l.grad()))
}

proptest! {
    #[test]
    fn combine_is_the_weighted_sum(
        pairs in prop::collection::vec((0.0f64..10.0, -5.0f64..5.0), 1..8)
    ) {
        let (weights, losses): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
        prop_assume!(weights.iter().any(|w| *w > 0.0));
        let mut sw = StaticWeighting::new(weights.clone()).unwrap();
        let (total, grad) = combine_with_grad(&mut sw, &losses);
        let expected: f64 = weights.iter().zip(&losses).map(|(w, l)| w * l).sum();
        let scale = weights.iter().zip(&losses).map(|(w, l)| (w * l).abs()).sum::<f64>();
        prop_assert!((total - expected).abs() <= 1e-12 * (1.0 + scale), "{total} vs {expected}");
        common::assert_close(&grad, &weights, 1e-12, 1e-15, "d total / d loss");
        prop_assert_eq!(sw.weights(), weights);
    }
}

#[test]
fn keras_loss_weights_case() {
    // model.compile(loss_weights=[1, γ]) with γ = 0.3.
    let mut sw = StaticWeighting::new(vec![1.0, 0.3]).unwrap();
    let (total, grad) = combine_with_grad(&mut sw, &[2.0, 10.0]);
    assert!((total - 5.0).abs() < 1e-12);
    assert_eq!(grad, vec![1.0, 0.3]);
}

#[test]
fn keeps_the_losses_dtype() {
    let mut sw = StaticWeighting::new(vec![2.0, 1.0]).unwrap();
    let l = Tensor::from_slice(&[1.5f32, 0.25]);
    let total = sw.combine(&l, &StepContext::default()).unwrap();
    assert_eq!(total.kind(), Kind::Float);
    assert_eq!(total.double_value(&[]), 3.25);
}

#[test]
fn single_task() {
    let mut sw = StaticWeighting::new(vec![0.5]).unwrap();
    let (total, grad) = combine_with_grad(&mut sw, &[3.0]);
    assert_eq!(total, 1.5);
    assert_eq!(grad, vec![0.5]);
}

#[test]
fn invalid_weights_are_rejected() {
    for bad in [
        vec![1.0, -0.1],
        vec![0.0, 0.0],
        vec![1.0, f64::NAN],
        vec![f64::INFINITY, 1.0],
    ] {
        let err = StaticWeighting::new(bad.clone()).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{bad:?}: {err}");
    }
    assert!(matches!(
        StaticWeighting::new(vec![]).unwrap_err(),
        Error::TaskCount { .. }
    ));
    // A zero weight is allowed as long as another task still trains.
    assert!(StaticWeighting::new(vec![0.0, 1.0]).is_ok());
}

#[test]
fn wrong_task_count_is_an_error() {
    let mut sw = StaticWeighting::new(vec![1.0, 1.0, 1.0]).unwrap();
    let out = sw.combine(&Tensor::from_slice(&[1.0f64, 2.0]), &StepContext::default());
    common::assert_task_count(out, 3, 2);
}

#[test]
fn non_finite_loss_names_the_task() {
    let mut sw = StaticWeighting::new(vec![1.0, 1.0, 1.0]).unwrap();
    let ctx = StepContext {
        step: 7,
        ..Default::default()
    };
    let out = sw.combine(&Tensor::from_slice(&[1.0f64, 2.0, f64::INFINITY]), &ctx);
    common::assert_non_finite(out, 2, 7);
}

#[test]
fn registry_static() {
    match by_name("static", 2, 0).unwrap() {
        Method::Weighting(w) => assert_eq!(w.weights(), vec![1.0, 1.0]),
        Method::Aggregator(_) => panic!("static is loss-level"),
    }
    match static_weights(vec![1.0, 0.25]).unwrap() {
        Method::Weighting(w) => {
            assert_eq!(w.name(), "static");
            assert_eq!(w.weights(), vec![1.0, 0.25]);
        }
        Method::Aggregator(_) => panic!("static is loss-level"),
    }
    assert!(static_weights(vec![-1.0]).is_err());
}
