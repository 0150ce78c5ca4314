//! ExcessMTL: three steps against the update rule written out on plain vectors (the
//! rule of LibMTL's `ExcessMTL`), a step computed by hand, the weights staying positive
//! with Σ = K (property test), the checkpoint round trip and the input checks. No
//! golden file exists for it (the references' harness has no ExcessMTL case).

mod common;

use common::{assert_close, ctx, ctx_with, rows, rows_of, to_vec};
use mtl_core::Error;
use mtl_losses::methods::ExcessMtl;
use mtl_losses::{by_name_with, Aggregator};
use proptest::prelude::*;

/// The update rule on plain vectors.
struct Reference {
    eta: f64,
    h: Vec<Vec<f64>>,
    e0: Option<Vec<f64>>,
    w: Vec<f64>,
}

impl Reference {
    fn step(&mut self, rows: &[Vec<f64>]) -> Vec<f64> {
        let k = rows.len();
        let mut e = vec![0.0; k];
        for i in 0..k {
            for (c, g) in rows[i].iter().enumerate() {
                self.h[i][c] += g * g;
                e[i] += g * g / (self.h[i][c] + 1e-7).sqrt();
            }
        }
        match &self.e0 {
            None => self.e0 = Some(e),
            Some(e0) => {
                let raw: Vec<f64> = (0..k)
                    .map(|i| self.w[i] * (self.eta * e[i] / e0[i]).exp())
                    .collect();
                let s: f64 = raw.iter().sum();
                self.w = raw.iter().map(|x| x / s * k as f64).collect();
            }
        }
        (0..rows[0].len())
            .map(|c| (0..k).map(|i| self.w[i] * rows[i][c]).sum())
            .collect()
    }
}

#[test]
fn steps_match_the_update_rule() {
    let eta = 0.5;
    let mut m = ExcessMtl::with_step_size(3, eta).unwrap();
    let mut r = Reference {
        eta,
        h: vec![vec![0.0; 5]; 3],
        e0: None,
        w: vec![1.0; 3],
    };
    for t in 0..4u64 {
        let j = common::sample(3, 5, 30 + t);
        let out = m.aggregate(&j, &ctx_with(t, &[])).unwrap();
        let expected = r.step(&rows_of(&j));
        let what = format!("step {t}");
        assert_close(&to_vec(&out.gradient), &expected, 1e-12, 1e-14, &what);
        assert_close(&out.weights.unwrap(), &r.w, 1e-12, 1e-14, &what);
    }
}

/// g₁ = (1, 0), g₂ = (0, 2) at step 0: H = g², e = (1/√(1+ε), 4/√(4+ε)) ≈ (1, 2),
/// w = 1. Step 1 with g₁ = (1, 0), g₂ = (0, 1): H = (2, 5), e = (1/√2, 1/√5), ratios
/// (1/√2, 1/(2√5)); with η = 1, w ∝ (e^{0.7071}, e^{0.2236}), scaled to Σ = 2.
#[test]
fn a_step_by_hand() {
    let mut m = ExcessMtl::with_step_size(2, 1.0).unwrap();
    let out = m
        .aggregate(&rows(&[&[1.0, 0.0], &[0.0, 2.0]]), &ctx())
        .unwrap();
    assert_eq!(out.weights.unwrap(), vec![1.0, 1.0]);
    let e0 = m.initial_excess().unwrap().to_vec();
    assert_close(&e0, &[1.0, 2.0], 1e-7, 0.0, "e0");
    let out = m
        .aggregate(&rows(&[&[1.0, 0.0], &[0.0, 1.0]]), &ctx())
        .unwrap();
    let r = [
        (0.5f64.sqrt() / e0[0]).exp(),
        ((1.0 / 5.0f64.sqrt()) / e0[1]).exp(),
    ];
    let w = [2.0 * r[0] / (r[0] + r[1]), 2.0 * r[1] / (r[0] + r[1])];
    assert_close(&out.weights.unwrap(), &w, 1e-6, 0.0, "weights");
    assert!(
        w[0] > 1.0,
        "task 0's excess risk fell less: it gains weight"
    );
    assert_close(&to_vec(&out.gradient), &w, 1e-6, 0.0, "output");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The weights stay positive with Σ = K, and the output is their combination.
    #[test]
    fn weights_positive_summing_to_k(seed in 0u64..1000, k in 1usize..6, steps in 1usize..6) {
        let mut m = ExcessMtl::with_step_size(k, 0.3).unwrap();
        for t in 0..steps {
            let j = common::sample(k, 4, seed * 10 + t as u64);
            let out = m.aggregate(&j, &ctx()).unwrap();
            let w = out.weights.unwrap();
            prop_assert!(w.iter().all(|w| *w > 0.0));
            prop_assert!((w.iter().sum::<f64>() - k as f64).abs() < 1e-9);
            let expected: Vec<f64> = (0..4)
                .map(|c| rows_of(&j).iter().zip(&w).map(|(r, w)| w * r[c]).sum())
                .collect();
            let got = to_vec(&out.gradient);
            for (a, b) in got.iter().zip(&expected) {
                prop_assert!((a - b).abs() < 1e-12);
            }
        }
    }
}

#[test]
fn state_round_trip() {
    let (a, b) = common::assert_state_round_trip(|k| ExcessMtl::new(k).unwrap(), &[]);
    assert_eq!(a.current_weights(), b.current_weights());
    assert_eq!(a.state(), b.state());
    let mut fresh = ExcessMtl::new(2).unwrap();
    let mut s = a.state();
    s["grad_sum"] = serde_json::Value::Null;
    assert!(fresh.load_state(&s).is_err());
    // A fresh state (no step yet) loads.
    fresh
        .load_state(&ExcessMtl::new(2).unwrap().state())
        .unwrap();
}

#[test]
fn edge_cases() {
    common::aggregator_edge_cases(|| Box::new(ExcessMtl::new(3).unwrap()), 3, 5);
    // A rejected Jacobian leaves the state as it was.
    let mut m = ExcessMtl::new(2).unwrap();
    let j = common::sample(2, 4, 1);
    m.aggregate(&j, &ctx()).unwrap();
    let before = m.state();
    let bad = common::with_entry(&j, 6, f64::NAN);
    assert!(matches!(
        m.aggregate(&bad, &ctx()),
        Err(Error::NonFinite { task: Some(1), .. })
    ));
    assert_eq!(m.state(), before);
    // Another d than the accumulated one is a shape error.
    assert!(matches!(
        m.aggregate(&common::sample(2, 5, 1), &ctx()),
        Err(Error::Shape { .. })
    ));
    // A zero first gradient: its ratio counts as 0, no NaN.
    let mut z = ExcessMtl::with_step_size(2, 1.0).unwrap();
    z.aggregate(&rows(&[&[0.0, 0.0], &[1.0, 0.0]]), &ctx())
        .unwrap();
    let out = z
        .aggregate(&rows(&[&[1.0, 0.0], &[1.0, 0.0]]), &ctx())
        .unwrap();
    assert!(out.weights.unwrap().iter().all(|w| w.is_finite()));
    assert!(ExcessMtl::new(0).is_err());
    assert!(ExcessMtl::with_step_size(2, -0.1).is_err());
    assert!(ExcessMtl::with_step_size(2, f64::INFINITY).is_err());
    let p = serde_json::json!({ "robust_step_size": 0.1 });
    assert!(by_name_with("excess_mtl", 2, 0, p.as_object().unwrap()).is_ok());
    let p = serde_json::json!({ "step_size": 0.1 });
    assert!(by_name_with("Excess-MTL", 2, 0, p.as_object().unwrap()).is_err());
}
