//! IMTL (IMTL-L and IMTL-G in one step): LibMTL's `IMTL` at its initial s = 0 (golden
//! `libmtl_IMTL.json`), two steps computed by hand on orthogonal rows, the scales'
//! fixed point e^{s}L = 1, IMTL-G's equal projections for any scales (property test),
//! the checkpoint round trip and the input checks.

mod common;

use common::{assert_close, cases, ctx_with, dot, load, matrix, rows, rows_of, to_vec, vec_f64};
use mtl_core::Error;
use mtl_losses::methods::{Imtl, ImtlGForm};
use mtl_losses::{by_name_with, Aggregator};
use proptest::prelude::*;

#[test]
fn golden_libmtl_imtl_first_step() {
    let doc = load("libmtl_IMTL.json");
    let mut n = 0;
    for case in cases(&doc) {
        let name = case["name"].as_str().unwrap();
        let j = matrix(&case["G"]);
        let k = j.size()[0] as usize;
        let losses = vec_f64(&case["losses"]);
        let (rel, abs) = common::tolerances(case);
        let mut imtl = Imtl::libmtl(k).unwrap();
        let out = imtl.aggregate(&j, &ctx_with(0, &losses)).unwrap();
        let expected = vec_f64(&case["expected"]);
        assert_close(&to_vec(&out.gradient), &expected, rel, abs, name);
        let w = vec_f64(&case["weights"]);
        assert_close(&out.weights.unwrap(), &w, rel, abs.max(1e-12), name);
        n += 1;
    }
    assert_eq!(n, 17);
}

/// Rows g₁ = (2, 0), g₂ = (0, 1) scaled by a = e^{s₁}, b = e^{s₂}: equal projections
/// on e₁, e₂ and α₁ + α₂ = 1 give α = (b, 2a)/(2a + b) and the output
/// 2ab/(2a + b)·(1, 1); then sₖ ← sₖ − η(e^{sₖ}Lₖ − 1).
#[test]
fn two_steps_by_hand() {
    let j = rows(&[&[2.0, 0.0], &[0.0, 1.0]]);
    let losses = [2.0, 0.5];
    let lr = 0.1;
    let mut imtl = Imtl::with_scale_lr(2, lr).unwrap();
    let mut s = [0.0f64, 0.0];
    for step in 0..2 {
        let (a, b) = (s[0].exp(), s[1].exp());
        let out = imtl.aggregate(&j, &ctx_with(step, &losses)).unwrap();
        let c = 2.0 * a * b / (2.0 * a + b);
        assert_close(&to_vec(&out.gradient), &[c, c], 1e-14, 0.0, "output");
        let alpha = [b / (2.0 * a + b), 2.0 * a / (2.0 * a + b)];
        let w = [alpha[0] * a, alpha[1] * b];
        assert_close(&out.weights.unwrap(), &w, 1e-14, 0.0, "weights");
        for i in 0..2 {
            s[i] -= lr * (s[i].exp() * losses[i] - 1.0);
        }
        assert_close(imtl.scales(), &s, 1e-15, 0.0, "scales");
        if step == 0 {
            // At s = 0: α = (1/3, 2/3), output (2/3, 2/3); then s = (−0.1, 0.05).
            assert_close(
                &[c, w[0], w[1]],
                &[2.0 / 3.0, 1.0 / 3.0, 2.0 / 3.0],
                1e-15,
                0.0,
                "s = 0",
            );
            assert_close(&s, &[-0.1, 0.05], 0.0, 1e-15, "s after step 0");
        }
    }
}

#[test]
fn scales_settle_where_the_scaled_losses_are_one() {
    let j = common::sample(3, 6, 5);
    let losses = [0.2, 1.0, 5.0];
    let mut imtl = Imtl::with_scale_lr(3, 0.05).unwrap();
    for t in 0..4000 {
        imtl.aggregate(&j, &ctx_with(t, &losses)).unwrap();
    }
    for (s, l) in imtl.scales().iter().zip(losses) {
        assert!(
            (s + f64::ln(l)).abs() < 1e-6,
            "s = {s}, -log L = {}",
            -l.ln()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the scales, the output has equal projections on the unit task
    /// gradients (IMTL-G's definition) and the weights on the scaled rows sum to one.
    #[test]
    fn equal_projections_for_any_scales(
        seed in 0u64..1000,
        k in 2usize..5,
        scales in prop::collection::vec(-2.0f64..2.0, 4),
    ) {
        let j = common::sample(k, k + 3, seed);
        let scales = scales[..k].to_vec();
        let losses = vec![1.0; k];
        for form in [ImtlGForm::PseudoInverse, ImtlGForm::ClosedForm] {
            let mut imtl = Imtl::new(k).unwrap().with_form(form).with_scales(scales.clone()).unwrap();
            let out = imtl.aggregate(&j, &ctx_with(0, &losses)).unwrap();
            let g = to_vec(&out.gradient);
            let proj: Vec<f64> = rows_of(&j).iter().map(|r| dot(&g, r) / dot(r, r).sqrt()).collect();
            let scale = proj.iter().fold(0.0f64, |m, p| m.max(p.abs())).max(1e-12);
            for p in &proj {
                prop_assert!((p - proj[0]).abs() < 1e-8 * scale, "{:?} {:?}", form, proj);
            }
            let w = out.weights.unwrap();
            let alpha_sum: f64 = w.iter().zip(&scales).map(|(w, s)| w / s.exp()).sum();
            prop_assert!((alpha_sum - 1.0).abs() < 1e-9, "{}", alpha_sum);
        }
    }
}

#[test]
fn state_round_trip() {
    let (a, _) = common::assert_state_round_trip(|k| Imtl::new(k).unwrap(), &[1.5, 0.4]);
    assert_eq!(a.state()["step"], 2);
    let mut fresh = Imtl::new(2).unwrap();
    assert!(fresh
        .load_state(&serde_json::json!({ "step": 1, "scales": [0.0, f64::NAN] }))
        .is_err());
    assert!(fresh
        .load_state(&serde_json::json!({ "scales": [0.0, 0.0] }))
        .is_err());
}

#[test]
fn edge_cases() {
    let j = common::sample(2, 4, 3);
    // The losses are required, one finite value per task.
    assert!(matches!(
        Imtl::new(2).unwrap().aggregate(&j, &ctx_with(3, &[])),
        Err(Error::TaskCount { .. })
    ));
    assert!(matches!(
        Imtl::new(2)
            .unwrap()
            .aggregate(&j, &ctx_with(3, &[1.0, f64::NAN])),
        Err(Error::NonFinite { task: Some(1), .. })
    ));
    // A NaN row is named before anything changes.
    let bad = common::with_entry(&j, 5, f64::NAN);
    let mut imtl = Imtl::new(2).unwrap();
    assert!(matches!(
        imtl.aggregate(&bad, &ctx_with(3, &[1.0, 2.0])),
        Err(Error::NonFinite {
            task: Some(1),
            step: Some(3),
            ..
        })
    ));
    assert_eq!(imtl.scales(), &[0.0, 0.0]);
    // Dependent rows: the closed form refuses, the default form does not.
    let dup = rows(&[&[1.0, 2.0], &[1.0, 2.0], &[0.0, 1.0]]);
    let l3 = [1.0, 1.0, 1.0];
    assert!(Imtl::libmtl(3)
        .unwrap()
        .aggregate(&dup, &ctx_with(0, &l3))
        .is_err());
    assert!(Imtl::new(3)
        .unwrap()
        .aggregate(&dup, &ctx_with(0, &l3))
        .is_ok());
    // An overflowing scale is reported.
    let mut huge = Imtl::new(2).unwrap().with_scales(vec![0.0, 800.0]).unwrap();
    assert!(matches!(
        huge.aggregate(&j, &ctx_with(0, &[1.0, 1.0])),
        Err(Error::NonFinite { task: Some(1), .. })
    ));
    // Hyper-parameters.
    assert!(Imtl::with_scale_lr(2, -1.0).is_err());
    assert!(Imtl::with_scale_lr(2, f64::NAN).is_err());
    assert!(Imtl::new(0).is_err());
    let p = serde_json::json!({ "scale_lr": 0.5 });
    assert!(by_name_with("imtl", 2, 0, p.as_object().unwrap()).is_ok());
    let p = serde_json::json!({ "scale_lr": -0.5 });
    assert!(by_name_with("imtl", 2, 0, p.as_object().unwrap()).is_err());
    let p = serde_json::json!({ "lr": 0.5 });
    let e = by_name_with("imtl", 2, 0, p.as_object().unwrap()).unwrap_err();
    assert!(e.to_string().contains("scale_lr"), "{e}");
    // f32 follows f64.
    let j32 = j.to_kind(tch::Kind::Float);
    let a = to_vec(
        &Imtl::new(2)
            .unwrap()
            .aggregate(&j32, &ctx_with(0, &[1.0, 2.0]))
            .unwrap()
            .gradient,
    );
    let b = to_vec(
        &Imtl::new(2)
            .unwrap()
            .aggregate(&j, &ctx_with(0, &[1.0, 2.0]))
            .unwrap()
            .gradient,
    );
    assert_close(&a, &b, 1e-5, 1e-6, "f32 vs f64");
}
