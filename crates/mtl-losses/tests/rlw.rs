//! RLW against LibMTL's `RLW` (golden `libmtl_RLW.json`, with the recorded normal draws
//! replayed), plus seeding, properties and edge cases.

mod common;

use common::ctx_at;
use mtl_core::Error;
use mtl_losses::methods::Rlw;
use mtl_losses::Weighting;
use tch::Tensor;

#[test]
fn golden_libmtl_rlw_replayed_draws() {
    let doc = common::load("libmtl_RLW.json");
    assert_eq!(doc["kind"], "loss_weighting");
    let cases = common::cases(&doc);
    assert_eq!(cases.len(), 3);
    for case in cases {
        let (name, losses, (rel, abs)) = common::weighting_case(case);
        let z = common::vec_f64(&case["random_draws"]["randn"][0]);
        let leaf = Tensor::from_slice(&losses).set_requires_grad(true);
        let total = Rlw::combine_with_normals(&leaf, &z).unwrap();
        let grad = Tensor::run_backward(&[&total], &[&leaf], false, false);
        let expected = common::vec_f64(&case["expected"]);
        common::assert_close(&common::to_vec(&grad[0]), &expected, rel, abs, name);
        common::assert_close(
            &Rlw::weights_from_normals(&z),
            &common::vec_f64(&case["weights_returned"]),
            rel,
            abs,
            name,
        );
        let value: f64 = expected.iter().zip(&losses).map(|(w, l)| w * l).sum();
        assert!((total.double_value(&[]) - value).abs() <= 1e-12);
    }
}

#[test]
fn seeded_draws_are_reproducible_and_change_every_step() {
    let run = |seed| {
        let mut rlw = common::weighting("rlw", 3, seed);
        (0..4)
            .map(|s| {
                let (_, g) =
                    common::weighting_grad(rlw.as_mut(), &[1.0, 2.0, 3.0], &ctx_at(s, 0)).unwrap();
                assert_eq!(g, rlw.weights());
                g
            })
            .collect::<Vec<_>>()
    };
    let a = run(5);
    assert_eq!(a, run(5));
    assert_ne!(a, run(6));
    assert_ne!(a[0], a[1]);
    for w in &a {
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(w.iter().all(|w| *w > 0.0));
    }
}

#[test]
fn state_round_trip_continues_the_stream() {
    let mut a = Rlw::new(2, 9);
    common::weighting_grad(&mut a, &[1.0, 1.0], &ctx_at(0, 0)).unwrap();
    let mut b = Rlw::new(2, 1234);
    b.load_state(&a.state()).unwrap();
    let ga = common::weighting_grad(&mut a, &[1.0, 1.0], &ctx_at(1, 0)).unwrap();
    let gb = common::weighting_grad(&mut b, &[1.0, 1.0], &ctx_at(1, 0)).unwrap();
    assert_eq!(ga, gb);
    assert!(b.load_state(&serde_json::json!({})).is_err());
}

#[test]
fn edge_cases() {
    common::weighting_edge_cases(|k| Box::new(Rlw::new(k, 0)), 4);
    // K = 1: the weight is always 1.
    let mut one = Rlw::new(1, 3);
    for s in 0..3 {
        let (total, g) = common::weighting_grad(&mut one, &[0.7], &ctx_at(s, 0)).unwrap();
        assert_eq!((total, g), (0.7, vec![1.0]));
    }
    // Identical draws weigh equally; a non-finite draw is an error naming its task.
    let w = Rlw::weights_from_normals(&[0.3, 0.3, 0.3]);
    assert!(w.iter().all(|w| (w - 1.0 / 3.0).abs() < 1e-15));
    assert!(matches!(
        Rlw::combine_with_normals(&Tensor::from_slice(&[1.0f64, 2.0]), &[0.0, f64::NAN]),
        Err(Error::NonFinite { task: Some(1), .. })
    ));
    assert!(matches!(
        Rlw::combine_with_normals(&Tensor::from_slice(&[1.0f64, 2.0]), &[0.0]),
        Err(Error::TaskCount { .. })
    ));
}
