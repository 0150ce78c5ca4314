//! MoDo: two steps computed by hand (one inside the simplex, one clipped by the
//! projection), λ on the simplex (property test), the checkpoint round trip and the
//! input checks. No golden file exists (LibMTL's `MoDo` needs its three-batch trainer).

mod common;

use common::{assert_close, ctx, rows, to_vec};
use mtl_core::Error;
use mtl_losses::methods::MoDo;
use mtl_losses::{by_name_with, Aggregator};
use proptest::prelude::*;

/// Rows (1, 0), (0, 2): G = diag(1, 4). From λ = (½, ½) with γ = 0.1, ρ = 0.1:
/// λ − γ(Gλ + ρλ) = (0.5 − 0.1·0.55, 0.5 − 0.1·2.05) = (0.445, 0.295), projected by
/// adding (1 − 0.74)/2 = 0.13 to each: (0.575, 0.425). With γ = 1 the second entry
/// goes negative and the projection clips it.
#[test]
fn steps_by_hand() {
    let j = rows(&[&[1.0, 0.0], &[0.0, 2.0]]);
    let mut m = MoDo::new(2, 0.1, 0.1).unwrap();
    let out = m.aggregate(&j, &ctx()).unwrap();
    assert_close(&out.weights.unwrap(), &[0.575, 0.425], 0.0, 1e-15, "lambda");
    assert_close(&to_vec(&out.gradient), &[0.575, 0.85], 0.0, 1e-15, "out");
    let mut big = MoDo::new(2, 1.0, 0.0).unwrap();
    // (0.5 − 0.5, 0.5 − 2) = (0, −1.5): projected to (1, 0).
    let out = big.aggregate(&j, &ctx()).unwrap();
    assert_close(&out.weights.unwrap(), &[1.0, 0.0], 0.0, 1e-15, "clipped");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn lambda_on_the_simplex(seed in 0u64..1000, k in 1usize..6, gamma in 0.001f64..2.0) {
        let mut m = MoDo::new(k, gamma, 0.1).unwrap();
        for t in 0..4 {
            let w = m.aggregate(&common::sample(k, 5, seed * 4 + t), &ctx()).unwrap().weights.unwrap();
            prop_assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            prop_assert!(w.iter().all(|x| *x >= 0.0));
        }
    }
}

#[test]
fn state_round_trip() {
    let (a, b) = common::assert_state_round_trip(|k| MoDo::new(k, 0.5, 0.1).unwrap(), &[]);
    assert_eq!(a.lambda(), b.lambda());
}

#[test]
fn edge_cases() {
    common::aggregator_edge_cases(|| Box::new(MoDo::new(3, 1e-3, 0.1).unwrap()), 3, 5);
    let mut m = MoDo::new(2, 0.5, 0.1).unwrap();
    let bad = common::with_entry(&common::sample(2, 3, 1), 3, f64::INFINITY);
    assert!(matches!(
        m.aggregate(&bad, &ctx()),
        Err(Error::NonFinite { task: Some(1), .. })
    ));
    assert_eq!(m.lambda(), &[0.5, 0.5]);
    assert!(MoDo::new(0, 1e-3, 0.1).is_err());
    assert!(MoDo::new(2, 0.0, 0.1).is_err());
    assert!(MoDo::new(2, 1e-3, -0.1).is_err());
    let p = serde_json::json!({ "gamma": 0.01, "rho": 0.0 });
    assert!(by_name_with("modo", 2, 0, p.as_object().unwrap()).is_ok());
    let p = serde_json::json!({ "lr": 0.01 });
    assert!(by_name_with("modo", 2, 0, p.as_object().unwrap()).is_err());
}
