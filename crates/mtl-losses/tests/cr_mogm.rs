//! CR-MOGM: on a fixed Jacobian the weights approach MGDA's geometrically,
//! λₜ − λ* = αᵗ(λ₀ − λ*) (computed by hand), α = 0 is MGDA, the weights stay on the
//! simplex (property test), the checkpoint round trip and the input checks.

mod common;

use common::{assert_close, ctx, rows, to_vec};
use mtl_core::Error;
use mtl_losses::methods::{CrMogm, Mgda};
use mtl_losses::{by_name_with, Aggregator};
use proptest::prelude::*;

/// Rows (1, 0) and (0, 2): MGDA's weights are (0.8, 0.2) (‖λ₁e₁ + 2λ₂e₂‖² is least
/// at λ₁ = 4λ₂). From λ₀ = (½, ½) with α = 0.5: λₜ = λ* + 0.5ᵗ(λ₀ − λ*).
#[test]
fn geometric_approach_to_the_mgda_weights() {
    let j = rows(&[&[1.0, 0.0], &[0.0, 2.0]]);
    let mut m = CrMogm::new(2, 0.5).unwrap();
    for t in 1..=6 {
        let out = m.aggregate(&j, &ctx()).unwrap();
        let f = 0.5f64.powi(t);
        let l = [0.8 + f * (0.5 - 0.8), 0.2 + f * (0.5 - 0.2)];
        assert_close(&out.weights.unwrap(), &l, 1e-12, 0.0, "lambda");
        assert_close(
            &to_vec(&out.gradient),
            &[l[0], 2.0 * l[1]],
            1e-12,
            0.0,
            "out",
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// α = 0 is MGDA; any α keeps λ on the simplex.
    #[test]
    fn simplex_and_mgda_limit(seed in 0u64..1000, k in 1usize..6, alpha in 0.0f64..0.99) {
        let mut zero = CrMogm::new(k, 0.0).unwrap();
        let mut m = CrMogm::new(k, alpha).unwrap();
        for t in 0..3 {
            let j = common::sample(k, 5, seed * 3 + t);
            let a = zero.aggregate(&j, &ctx()).unwrap().weights.unwrap();
            let b = Mgda::new().aggregate(&j, &ctx()).unwrap().weights.unwrap();
            for (x, y) in a.iter().zip(&b) {
                prop_assert!((x - y).abs() < 1e-12);
            }
            let w = m.aggregate(&j, &ctx()).unwrap().weights.unwrap();
            prop_assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            prop_assert!(w.iter().all(|x| *x >= 0.0));
        }
    }
}

#[test]
fn state_round_trip() {
    let (a, b) = common::assert_state_round_trip(|k| CrMogm::new(k, 0.9).unwrap(), &[]);
    assert_eq!(a.lambda(), b.lambda());
}

#[test]
fn edge_cases() {
    common::aggregator_edge_cases(|| Box::new(CrMogm::new(3, 0.9).unwrap()), 3, 5);
    let mut m = CrMogm::new(2, 0.9).unwrap();
    let bad = common::with_entry(&common::sample(2, 3, 1), 0, f64::NAN);
    assert!(matches!(
        m.aggregate(&bad, &ctx()),
        Err(Error::NonFinite { task: Some(0), .. })
    ));
    assert_eq!(m.lambda(), &[0.5, 0.5]);
    assert!(CrMogm::new(0, 0.9).is_err());
    assert!(CrMogm::new(2, 1.0).is_err());
    assert!(CrMogm::new(2, -0.1).is_err());
    let p = serde_json::json!({ "alpha": 0.5 });
    assert!(by_name_with("CR-MOGM", 2, 0, p.as_object().unwrap()).is_ok());
    let p = serde_json::json!({ "alpha": 1.5 });
    assert!(by_name_with("cr_mogm", 2, 0, p.as_object().unwrap()).is_err());
}
