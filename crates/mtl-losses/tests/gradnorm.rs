//! GradNorm against LibMTL's `GradNorm` (golden `libmtl_GradNorm.json`, a stateful
//! sequence: weights used, aggregated gradient, logit gradient and logits after the
//! SGD(lr = 0.1) step), plus properties and edge cases.

mod common;

use common::ctx_with;
use mtl_core::Error;
use mtl_losses::methods::{GradNorm, GradNormConfig};
use mtl_losses::{by_name, Aggregator, Method};
use proptest::prelude::*;
use tch::Tensor;

/// LibMTL initialises its logits at 1, this crate at 0. Softmax is shift-invariant and
/// ∂L_grad/∂s sums to zero, so the two stay exactly 1 apart: compare s + 1.
fn libmtl_logits(gn: &GradNorm) -> Vec<f64> {
    gn.logits().iter().map(|s| s + 1.0).collect()
}

#[test]
fn golden_libmtl_gradnorm_sequence() {
    let doc = common::load("libmtl_GradNorm.json");
    assert_eq!(doc["kind"], "stateful_sequence");
    assert_eq!(doc["params"]["alpha"].as_f64(), Some(1.5));
    let cases = common::cases(&doc);
    assert!(!cases.is_empty());
    for case in cases {
        let (name, k, (tol_rel, tol_abs)) = common::sequence_case(case);
        // The harness stepped the logits with SGD(lr = 0.1).
        let config = GradNormConfig {
            alpha: 1.5,
            weight_lr: 0.1,
        };
        let mut gn = GradNorm::with_config(k, config).unwrap();
        let steps = case["steps"].as_array().unwrap();
        assert!(steps.len() > 1);
        for (t, step) in steps.iter().enumerate() {
            let what = |s: &str| format!("{name} step {t}: {s}");
            // Only the first step is LibMTL's epoch 0 (plain sum).
            assert_eq!(step["epoch"].as_u64() == Some(0), t == 0);
            common::assert_close(
                &libmtl_logits(&gn),
                &common::vec_f64(&step["loss_scale_before"]),
                tol_rel,
                tol_abs,
                &what("loss_scale_before"),
            );
            let g = common::matrix(&step["G"]);
            let losses = common::vec_f64(&step["losses"]);
            let out = gn.aggregate(&g, &ctx_with(t as u64, &losses)).unwrap();
            common::assert_close(
                &common::to_vec(&out.gradient),
                &common::vec_f64(&step["expected"]),
                tol_rel,
                tol_abs,
                &what("expected"),
            );
            common::assert_close(
                out.weights.as_ref().unwrap(),
                &common::vec_f64(&step["weights"]),
                tol_rel,
                tol_abs,
                &what("weights"),
            );
            if step["loss_scale_grad"].is_null() {
                assert!(gn.last_logit_gradient().is_none(), "{}", what("no update"));
            } else {
                common::assert_close(
                    gn.last_logit_gradient().unwrap(),
                    &common::vec_f64(&step["loss_scale_grad"]),
                    tol_rel,
                    tol_abs,
                    &what("loss_scale_grad"),
                );
            }
            common::assert_close(
                &libmtl_logits(&gn),
                &common::vec_f64(&step["loss_scale_after"]),
                tol_rel,
                tol_abs,
                &what("loss_scale_after"),
            );
        }
        assert_eq!(
            gn.initial_losses().unwrap(),
            &common::vec_f64(&steps[0]["losses"])[..]
        );
    }
}

/// A `[K, d]` Jacobian strategy with entries in [-3, 3].
fn jacobian(k: usize, d: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(-3.0f64..3.0, k * d)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn weights_sum_to_k_and_stay_positive(
        (k, d, steps) in (1usize..6, 1usize..6).prop_flat_map(|(k, d)| {
            let step = (jacobian(k, d), prop::collection::vec(0.01f64..5.0, k));
            (Just(k), Just(d), prop::collection::vec(step, 2..12))
        }),
        lr in 0.001f64..0.1,
    ) {
        let mut gn = GradNorm::with_config(k, GradNormConfig { alpha: 1.5, weight_lr: lr }).unwrap();
        for (t, (jac, losses)) in steps.iter().enumerate() {
            let j = Tensor::from_slice(jac).view([k as i64, d as i64]);
            let out = gn.aggregate(&j, &ctx_with(t as u64, losses)).unwrap();
            let w = out.weights.unwrap();
            let sum: f64 = w.iter().sum();
            prop_assert!((sum - k as f64).abs() <= 1e-9 * k as f64, "sum {sum}");
            prop_assert!(w.iter().all(|w| *w > 0.0), "{w:?}");
            // The output is the weighted sum of the rows with the reported weights.
            let expected: Vec<f64> = (0..d)
                .map(|c| (0..k).map(|r| w[r] * jac[r * d + c]).sum())
                .collect();
            common::assert_close(&common::to_vec(&out.gradient), &expected, 1e-12, 1e-12, "wᵀJ");
            let next = gn.current_weights();
            prop_assert!((next.iter().sum::<f64>() - k as f64).abs() <= 1e-9 * k as f64);
            prop_assert!(next.iter().all(|w| *w > 0.0));
        }
    }
}

#[test]
fn slower_task_gains_weight() {
    // Equal gradient norms; task 0's loss has not moved while task 1's halved, so task 0
    // trains slower (r₀ > 1) and its target norm, hence its weight, goes up.
    let mut gn = GradNorm::new(2);
    let j = Tensor::from_slice(&[1.0f64, 0.0, 0.0, 1.0]).view([2, 2]);
    gn.aggregate(&j, &ctx_with(0, &[1.0, 1.0])).unwrap();
    for t in 1..20 {
        gn.aggregate(&j, &ctx_with(t, &[1.0, 0.5])).unwrap();
    }
    let w = gn.current_weights();
    assert!(w[0] > 1.2 && w[1] < 0.8, "{w:?}");
}

#[test]
fn single_task_keeps_weight_one() {
    let mut gn = GradNorm::new(1);
    let j = Tensor::from_slice(&[2.0f64, -1.0]).view([1, 2]);
    for t in 0..3 {
        let out = gn
            .aggregate(&j, &ctx_with(t, &[1.0 / (t + 1) as f64]))
            .unwrap();
        assert_eq!(out.weights, Some(vec![1.0]));
        assert_eq!(common::to_vec(&out.gradient), vec![2.0, -1.0]);
    }
    assert_eq!(gn.last_logit_gradient(), Some(&[0.0][..]));
}

#[test]
fn zero_gradient_row_is_harmless() {
    let mut gn = GradNorm::new(3);
    let j = Tensor::from_slice(&[1.0f64, 2.0, 0.0, 0.0, -1.0, 0.5]).view([3, 2]);
    gn.aggregate(&j, &ctx_with(0, &[1.0, 1.0, 1.0])).unwrap();
    for t in 1..5 {
        let out = gn.aggregate(&j, &ctx_with(t, &[0.9, 0.8, 0.7])).unwrap();
        let w = out.weights.unwrap();
        assert!(w.iter().all(|w| w.is_finite() && *w > 0.0), "{w:?}");
        assert!(common::to_vec(&out.gradient).iter().all(|x| x.is_finite()));
    }
    // A zero row has no norm to move: its own logit gradient is K p (0 − Σ p a).
    let g = gn.last_logit_gradient().unwrap();
    assert!(g.iter().all(|x| x.is_finite()));
}

#[test]
fn nan_in_the_jacobian_names_the_task() {
    let mut gn = GradNorm::new(2);
    let j = Tensor::from_slice(&[1.0f64, 2.0, f64::NAN, 0.0]).view([2, 2]);
    let err = gn.aggregate(&j, &ctx_with(0, &[1.0, 1.0])).unwrap_err();
    assert!(
        matches!(err, Error::NonFinite { task: Some(1), .. }),
        "{err}"
    );
    // Nothing was recorded: the next good step is still the first.
    assert!(gn.initial_losses().is_none());
}

#[test]
fn nan_loss_names_the_task() {
    let mut gn = GradNorm::new(2);
    let j = Tensor::from_slice(&[1.0f64, 2.0, 3.0, 0.0]).view([2, 2]);
    common::assert_non_finite(gn.aggregate(&j, &ctx_with(5, &[1.0, f64::NAN])), 1, 5);
}

#[test]
fn wrong_task_count_is_an_error() {
    let mut gn = GradNorm::new(3);
    let j2 = Tensor::from_slice(&[1.0f64, 2.0, 3.0, 0.0]).view([2, 2]);
    common::assert_task_count(gn.aggregate(&j2, &ctx_with(0, &[1.0, 1.0])), 3, 2);
    let j3 = Tensor::from_slice(&[1.0f64, 2.0, 3.0, 0.0, 1.0, 1.0]).view([3, 2]);
    common::assert_task_count(gn.aggregate(&j3, &ctx_with(0, &[1.0, 1.0])), 3, 2);
}

#[test]
fn non_positive_initial_loss_is_an_error() {
    let mut gn = GradNorm::new(2);
    let j = Tensor::from_slice(&[1.0f64, 2.0, 3.0, 0.0]).view([2, 2]);
    let err = gn.aggregate(&j, &ctx_with(0, &[0.0, 1.0])).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(gn.initial_losses().is_none());
}

#[test]
fn invalid_config_is_an_error() {
    let bad = [
        GradNormConfig {
            alpha: -1.0,
            weight_lr: 0.1,
        },
        GradNormConfig {
            alpha: 1.5,
            weight_lr: 0.0,
        },
        GradNormConfig {
            alpha: f64::NAN,
            weight_lr: 0.1,
        },
    ];
    for c in bad {
        assert!(GradNorm::with_config(2, c).is_err(), "{c:?}");
    }
    assert!(GradNorm::with_config(0, GradNormConfig::default()).is_err());
}

#[test]
fn registry_gradnorm() {
    match by_name("gradnorm", 2, 0).unwrap() {
        Method::Aggregator(mut a) => {
            assert_eq!(a.name(), "gradnorm");
            let j = Tensor::from_slice(&[1.0f64, 2.0, 3.0, 0.0]).view([2, 2]);
            let out = a.aggregate(&j, &ctx_with(0, &[1.0, 2.0])).unwrap();
            assert_eq!(common::to_vec(&out.gradient), vec![4.0, 2.0]);
        }
        Method::Weighting(_) => panic!("gradnorm is gradient-level"),
    }
    assert_eq!(GradNormConfig::default().alpha, 1.5);
}
