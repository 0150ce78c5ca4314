//! FAMO against LibMTL's `FAMO` (golden `libmtl_FAMO.json`, a stateful sequence: the
//! logits before each step, the weights d loss / d Lₖ, the aggregated gradient, and the
//! logits after `update_w` with the internal Adam), run both ways: finishing each
//! update at the next step's `combine`, and with explicit `update_w` calls. Plus
//! properties and edge cases.

mod common;

use common::ctx_at;
use mtl_core::Error;
use mtl_losses::methods::{Famo, FamoConfig};
use mtl_losses::Weighting;
use tch::Tensor;

fn run_golden(explicit_update: bool) {
    let doc = common::load("libmtl_FAMO.json");
    assert_eq!(doc["params"]["FAMO_w_lr"].as_f64(), Some(0.025));
    assert_eq!(doc["params"]["FAMO_w_gamma"].as_f64(), Some(0.001));
    let cases = common::cases(&doc);
    assert_eq!(cases.len(), 2);
    for case in cases {
        let (name, k, (rel, abs)) = common::sequence_case(case);
        let mut famo = common::weighting("famo", k, 0);
        let mut reference = Famo::new(k);
        let steps = case["steps"].as_array().unwrap();
        for (t, step) in steps.iter().enumerate() {
            let what = |s: &str| format!("{name} step {t}: {s}");
            let losses = common::vec_f64(&step["losses"]);
            let (_, grad) =
                common::weighting_grad(famo.as_mut(), &losses, &ctx_at(t as u64, 0)).unwrap();
            common::weighting_grad(&mut reference, &losses, &ctx_at(t as u64, 0)).unwrap();
            // The logits the weights came from.
            common::assert_close(
                reference.logits(),
                &common::vec_f64(&step["w_before"]),
                rel,
                abs,
                &what("w_before"),
            );
            let expected_w = common::vec_f64(&step["weights"]);
            common::assert_close(&grad, &expected_w, rel, abs, &what("weights (autograd)"));
            common::assert_close(&famo.weights(), &expected_w, rel, abs, &what("weights"));
            common::assert_close(
                &common::combine_json(&grad, &step["G"]),
                &common::vec_f64(&step["expected"]),
                rel,
                abs,
                &what("expected"),
            );
            let curr = common::vec_f64(&step["curr_losses"]);
            let last = t + 1 == steps.len();
            if explicit_update || last {
                reference.update_w(&curr).unwrap();
                assert!(!reference.pending());
                common::assert_close(
                    reference.logits(),
                    &common::vec_f64(&step["w_after"]),
                    rel,
                    abs,
                    &what("w_after"),
                );
            } else {
                // The harness fed the post-update losses in as the next step's losses.
                assert_eq!(curr, common::vec_f64(&steps[t + 1]["losses"]));
            }
        }
    }
}

#[test]
fn golden_libmtl_famo_update_at_next_combine() {
    run_golden(false);
}

#[test]
fn golden_libmtl_famo_explicit_update_w() {
    run_golden(true);
}

#[test]
fn weights_sum_to_one_and_favour_the_slower_task() {
    let mut famo = Famo::new(3);
    let mut losses = [1.0, 1.0, 1.0];
    for t in 0..50 {
        let (_, g) = common::weighting_grad(&mut famo, &losses, &ctx_at(t, 0)).unwrap();
        assert!((g.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // Task 0 improves fast, task 2 not at all.
        losses = [losses[0] * 0.9, losses[1] * 0.97, losses[2]];
    }
    let w = famo.logits();
    assert!(w[2] > w[1] && w[1] > w[0], "{w:?}");
}

#[test]
fn identical_progress_keeps_equal_weights_and_k1() {
    let mut famo = Famo::new(2);
    for t in 0..5 {
        let l = 1.0 / (1.0 + t as f64);
        let (_, g) = common::weighting_grad(&mut famo, &[l, l], &ctx_at(t, 0)).unwrap();
        assert!((g[0] - 0.5).abs() < 1e-12 && (g[1] - 0.5).abs() < 1e-12);
    }
    assert!(famo.logits().iter().all(|w| w.abs() < 1e-15));
    let mut one = Famo::new(1);
    for t in 0..3 {
        let (_, g) = common::weighting_grad(&mut one, &[0.5 + t as f64], &ctx_at(t, 0)).unwrap();
        assert!((g[0] - 1.0).abs() < 1e-12);
    }
}

#[test]
fn state_round_trip() {
    let mut a = Famo::new(2);
    common::weighting_grad(&mut a, &[1.0, 2.0], &ctx_at(0, 0)).unwrap();
    common::weighting_grad(&mut a, &[0.5, 1.9], &ctx_at(1, 0)).unwrap();
    let mut b = Famo::new(2);
    b.load_state(&a.state()).unwrap();
    assert!(b.pending());
    let ga = common::weighting_grad(&mut a, &[0.4, 1.8], &ctx_at(2, 0)).unwrap();
    let gb = common::weighting_grad(&mut b, &[0.4, 1.8], &ctx_at(2, 0)).unwrap();
    assert_eq!(ga, gb);
    assert_eq!(a.logits(), b.logits());
    assert!(Famo::new(3).load_state(&a.state()).is_err());
}

#[test]
fn edge_cases() {
    common::weighting_edge_cases(|k| Box::new(Famo::new(k)), 3);
    let mut famo = Famo::new(2);
    // update_w with nothing pending, a negative loss, a wrong K.
    assert!(matches!(famo.update_w(&[1.0, 1.0]), Err(Error::Config(_))));
    assert!(matches!(
        famo.combine(&Tensor::from_slice(&[1.0f64, -1.0]), &ctx_at(0, 0)),
        Err(Error::Config(_))
    ));
    common::weighting_grad(&mut famo, &[1.0, 1.0], &ctx_at(0, 0)).unwrap();
    assert!(matches!(
        famo.update_w(&[1.0]),
        Err(Error::TaskCount { .. })
    ));
    assert!(matches!(
        famo.update_w(&[1.0, f64::NAN]),
        Err(Error::NonFinite { task: Some(1), .. })
    ));
    assert!(famo.pending(), "a failed update leaves the state as it was");
    // A zero loss is allowed (ε keeps the log finite).
    famo.update_w(&[0.0, 1.0]).unwrap();
    let (t, g) = common::weighting_grad(&mut famo, &[0.0, 1.0], &ctx_at(1, 0)).unwrap();
    assert!(t.is_finite() && g.iter().all(|g| g.is_finite()));
    let bad = FamoConfig {
        w_lr: 0.0,
        gamma: 1e-3,
    };
    assert!(Famo::with_config(2, bad).is_err());
    assert!(Famo::with_config(0, FamoConfig::default()).is_err());
}

/// FAMO only sees Lₖ − Lₖ*: with minimum losses L*, a run on L equals a run with L* = 0
/// on L − L*, step for step (the toy problem's L* = (−2.1, −21) is the paper's use).
#[test]
fn min_losses_act_as_a_shift() {
    let min = vec![-2.1, -21.0];
    let mut shifted = Famo::new(2).with_min_losses(min.clone()).unwrap();
    let mut plain = Famo::new(2);
    let losses = [[-1.5, -20.0], [-1.9, -19.0], [-2.0, -20.5], [-2.05, -20.9]];
    for (t, l) in losses.iter().enumerate() {
        let (_, g1) = common::weighting_grad(&mut shifted, l, &ctx_at(t as u64, 0)).unwrap();
        let moved = [l[0] - min[0], l[1] - min[1]];
        let (_, g0) = common::weighting_grad(&mut plain, &moved, &ctx_at(t as u64, 0)).unwrap();
        common::assert_close(&g1, &g0, 1e-12, 1e-12, &format!("weights at step {t}"));
        common::assert_close(shifted.logits(), plain.logits(), 1e-12, 1e-12, "logits");
    }
    assert!(
        shifted.logits().iter().any(|w| w.abs() > 1e-6),
        "the logits moved"
    );
    // A loss below its L* is refused and names it; so are a wrong K and a NaN bound.
    let err = shifted
        .combine(&Tensor::from_slice(&[-3.0f64, -20.0]), &ctx_at(9, 0))
        .unwrap_err();
    assert!(err.to_string().contains("L* = -2.1"), "{err}");
    assert!(Famo::new(2).with_min_losses(vec![0.0]).is_err());
    assert!(matches!(
        Famo::new(2).with_min_losses(vec![0.0, f64::NAN]),
        Err(Error::NonFinite { task: Some(1), .. })
    ));
    // Reachable by name.
    let params = serde_json::json!({ "min_losses": [-2.1, -21.0], "gamma": 0.0 });
    let mtl_losses::Method::Weighting(mut by_name) =
        mtl_losses::registry::by_name_with("famo", 2, 0, params.as_object().unwrap()).unwrap()
    else {
        panic!("famo is a weighting")
    };
    // Negative losses above L* are accepted, and so is γ = 0.
    let total = by_name
        .combine(&Tensor::from_slice(&[-1.0f64, -20.0]), &ctx_at(0, 0))
        .unwrap();
    assert!(total.double_value(&[]).is_finite());
    assert!(by_name.state()["logits"].is_array());
}
