//! DWA against LibMTL's `DWA` (golden `libmtl_DWA.json`: per-epoch weights from
//! `train_loss_buffer`, and the aggregated gradient weights @ G), both through the pure
//! function and through the stateful method fed step losses whose epoch means are the
//! buffer's columns; plus properties and edge cases.

mod common;

use common::ctx_at;
use mtl_core::Error;
use mtl_losses::methods::Dwa;
use mtl_losses::Weighting;
use tch::Tensor;

/// LibMTL's `train_loss_buffer` of a case: row k holds task k's epoch means.
fn loss_buffer(case: &serde_json::Value) -> Vec<Vec<f64>> {
    case["train_loss_buffer"]
        .as_array()
        .unwrap()
        .iter()
        .map(common::vec_f64)
        .collect()
}

#[test]
fn golden_libmtl_dwa_pure_function() {
    let doc = common::load("libmtl_DWA.json");
    assert_eq!(doc["params"]["T"].as_f64(), Some(2.0));
    let cases = common::cases(&doc);
    assert_eq!(cases.len(), 2);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (rel, abs) = common::tolerances(case);
        let buffer = loss_buffer(case);
        for (t, step) in case["steps"].as_array().unwrap().iter().enumerate() {
            let epoch = step["epoch"].as_u64().unwrap() as usize;
            let w = Dwa::weights_from_buffer(&buffer, epoch, 2.0).unwrap();
            let what = format!("{name} step {t}");
            common::assert_close(&w, &common::vec_f64(&step["weights"]), rel, abs, &what);
            common::assert_close(
                &common::combine_json(&w, &step["G"]),
                &common::vec_f64(&step["expected"]),
                rel,
                abs,
                &format!("{what} expected"),
            );
        }
    }
}

#[test]
fn golden_libmtl_dwa_stateful() {
    let doc = common::load("libmtl_DWA.json");
    for case in common::cases(&doc) {
        let (name, k, (rel, abs)) = common::sequence_case(case);
        let buffer = loss_buffer(case);
        let mut dwa = common::weighting("dwa", k, 0);
        let mut step_no = 0;
        for step in case["steps"].as_array().unwrap() {
            let epoch = step["epoch"].as_u64().unwrap() as usize;
            let expected_w = common::vec_f64(&step["weights"]);
            // Two batches per epoch whose mean is the buffer column.
            for factor in [1.25, 0.75] {
                let losses: Vec<f64> = buffer.iter().map(|row| row[epoch] * factor).collect();
                let (_, grad) =
                    common::weighting_grad(dwa.as_mut(), &losses, &ctx_at(step_no, epoch)).unwrap();
                let what = format!("{name} epoch {epoch} step {step_no}");
                common::assert_close(&grad, &expected_w, rel, abs, &what);
                common::assert_close(&dwa.weights(), &expected_w, rel, abs, &what);
                common::assert_close(
                    &common::combine_json(&grad, &step["G"]),
                    &common::vec_f64(&step["expected"]),
                    rel,
                    abs,
                    &format!("{what} expected"),
                );
                step_no += 1;
            }
        }
    }
}

#[test]
fn weights_sum_to_k_and_favour_slow_tasks() {
    let w = Dwa::weights_from_averages(&[0.2, 0.9, 0.5], &[1.0, 1.0, 1.0], 2.0).unwrap();
    assert!((w.iter().sum::<f64>() - 3.0).abs() < 1e-12);
    assert!(w[1] > w[2] && w[2] > w[0]);
    // A huge temperature flattens the weights to 1; a small one concentrates them.
    let flat = Dwa::weights_from_averages(&[0.2, 0.9], &[1.0, 1.0], 1e9).unwrap();
    assert!(flat.iter().all(|w| (w - 1.0).abs() < 1e-8));
    let sharp = Dwa::weights_from_averages(&[0.2, 0.9], &[1.0, 1.0], 1e-3).unwrap();
    assert!((sharp[1] - 2.0).abs() < 1e-12);
}

#[test]
fn identical_losses_give_equal_weights_and_k1_weight_is_one() {
    let mut dwa = Dwa::new(3);
    for (step, epoch) in [(0, 0), (1, 1), (2, 2), (3, 3)] {
        let l = 1.0 / (1.0 + epoch as f64);
        common::weighting_grad(&mut dwa, &[l, l, l], &ctx_at(step, epoch)).unwrap();
        assert!(dwa.weights().iter().all(|w| (w - 1.0).abs() < 1e-12));
    }
    let mut one = Dwa::new(1);
    for (step, epoch) in [(0, 0), (1, 1), (2, 2)] {
        let (_, g) =
            common::weighting_grad(&mut one, &[0.3 + step as f64], &ctx_at(step, epoch)).unwrap();
        assert_eq!(g, vec![1.0]);
    }
}

#[test]
fn weights_stay_fixed_within_an_epoch_and_missing_epochs_fall_back_to_one() {
    let mut dwa = Dwa::new(2);
    common::weighting_grad(&mut dwa, &[1.0, 1.0], &ctx_at(0, 0)).unwrap();
    common::weighting_grad(&mut dwa, &[0.5, 1.0], &ctx_at(1, 1)).unwrap();
    common::weighting_grad(&mut dwa, &[0.4, 1.0], &ctx_at(2, 2)).unwrap();
    let w2 = dwa.weights();
    assert!(w2[1] > w2[0]);
    // Later losses of epoch 2 do not change epoch 2's weights.
    common::weighting_grad(&mut dwa, &[9.0, 0.1], &ctx_at(3, 2)).unwrap();
    assert_eq!(dwa.weights(), w2);
    // Jumping to epoch 5: the means of epochs 3 and 4 were never seen.
    common::weighting_grad(&mut dwa, &[1.0, 1.0], &ctx_at(4, 5)).unwrap();
    assert_eq!(dwa.weights(), vec![1.0, 1.0]);
    // Going back an epoch is an error.
    assert!(matches!(
        dwa.combine(&Tensor::from_slice(&[1.0f64, 1.0]), &ctx_at(5, 4)),
        Err(Error::Config(_))
    ));
}

#[test]
fn zero_losses_and_infinite_ratios() {
    // 0 → 0: the ratio is 1.
    let w = Dwa::weights_from_averages(&[0.0, 0.5], &[0.0, 1.0], 2.0).unwrap();
    assert!(w[0] > w[1]);
    // 0 → positive: an infinite ratio, naming the task.
    match Dwa::weights_from_averages(&[0.5, 0.5], &[1.0, 0.0], 2.0) {
        Err(Error::NonFinite { task, .. }) => assert_eq!(task, Some(1)),
        other => panic!("{other:?}"),
    }
    // Through the method: the error carries the step.
    let mut dwa = Dwa::new(2);
    common::weighting_grad(&mut dwa, &[1.0, 0.0], &ctx_at(0, 0)).unwrap();
    common::weighting_grad(&mut dwa, &[1.0, 1.0], &ctx_at(1, 1)).unwrap();
    match dwa.combine(&Tensor::from_slice(&[1.0f64, 1.0]), &ctx_at(2, 2)) {
        Err(Error::NonFinite { task, step, .. }) => {
            assert_eq!((task, step), (Some(1), Some(2)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_arguments() {
    common::weighting_edge_cases(|k| Box::new(Dwa::new(k)), 3);
    assert!(Dwa::with_temperature(2, 0.0).is_err());
    assert!(Dwa::with_temperature(2, f64::NAN).is_err());
    assert!(Dwa::with_temperature(0, 2.0).is_err());
    assert!(Dwa::weights_from_buffer(&[vec![1.0, 2.0]], 3, 2.0).is_err());
    assert!(Dwa::weights_from_averages(&[1.0], &[1.0, 2.0], 2.0).is_err());
}

#[test]
fn state_round_trip_resumes_identically() {
    let mut a = Dwa::new(2);
    let steps = [
        (0, 0, [1.0, 2.0]),
        (1, 0, [0.8, 1.9]),
        (2, 1, [0.6, 1.8]),
        (3, 1, [0.5, 1.8]),
        (4, 2, [0.4, 1.7]),
    ];
    for (s, e, l) in &steps[..3] {
        common::weighting_grad(&mut a, l, &ctx_at(*s, *e)).unwrap();
    }
    let saved = a.state();
    let mut b = Dwa::new(2);
    b.load_state(&saved).unwrap();
    for (s, e, l) in &steps[3..] {
        let ga = common::weighting_grad(&mut a, l, &ctx_at(*s, *e)).unwrap();
        let gb = common::weighting_grad(&mut b, l, &ctx_at(*s, *e)).unwrap();
        assert_eq!(ga, gb);
    }
    assert!(a.weights()[1] > a.weights()[0]);
    assert!(Dwa::new(3).load_state(&saved).is_err());
    assert!(Dwa::new(2)
        .load_state(&serde_json::json!({"x": 1}))
        .is_err());
}
