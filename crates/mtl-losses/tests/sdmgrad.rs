//! SDMGrad: three warm-started steps against the update rule written out on plain
//! vectors (LibMTL's `SDMGrad` with ζ = ξ₁ = ξ₂), one step computed by hand, the MGDA
//! limit at λ = 0, the output weights on the simplex (property test), the checkpoint
//! round trip and the input checks. No golden file exists for it (LibMTL's `SDMGrad`
//! needs its three-batch trainer).

mod common;

use common::{assert_close, ctx, rows, rows_of, to_vec};
use mtl_core::Error;
use mtl_losses::gram::Gram;
use mtl_losses::methods::{SdmGrad, SdmGradConfig};
use mtl_losses::solvers::min_norm_simplex;
use mtl_losses::{by_name, by_name_with, Aggregator, Method};
use proptest::prelude::*;

/// The update rule on plain vectors, including torch's SGD momentum and the
/// sort-based simplex projection.
fn reference_step(rows: &[Vec<f64>], w: &mut Vec<f64>, c: SdmGradConfig) -> Vec<f64> {
    let k = rows.len();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let s = rows.iter().map(|r| dot(r, r).sqrt()).sum::<f64>() / k as f64;
    let gg: Vec<Vec<f64>> = (0..k)
        .map(|i| {
            (0..k)
                .map(|j| dot(&rows[i], &rows[j]) / (s * s + 1e-8))
                .collect()
        })
        .collect();
    let b: Vec<f64> = gg
        .iter()
        .map(|r| r.iter().sum::<f64>() / k as f64)
        .collect();
    let mut buf: Vec<f64> = Vec::new();
    for it in 0..c.niter {
        let grad: Vec<f64> = (0..k).map(|i| dot(&gg[i], w) + c.lambda * b[i]).collect();
        buf = if it == 0 {
            grad
        } else {
            (0..k).map(|i| c.momentum * buf[i] + grad[i]).collect()
        };
        let v: Vec<f64> = (0..k).map(|i| w[i] - c.lr * buf[i]).collect();
        // Projection: θ from the largest ρ with u_ρ > (Σ_{i≤ρ} u_i − 1)/(ρ + 1).
        let mut u = v.clone();
        u.sort_by(|a, b| b.total_cmp(a));
        let mut theta = 0.0;
        let mut cs = 0.0;
        for (i, ui) in u.iter().enumerate() {
            cs += ui;
            if *ui > (cs - 1.0) / (i + 1) as f64 {
                theta = (cs - 1.0) / (i + 1) as f64;
            }
        }
        *w = v.iter().map(|x| (x - theta).max(0.0)).collect();
    }
    let d = rows[0].len();
    (0..d)
        .map(|col| {
            let gw: f64 = (0..k).map(|i| w[i] * rows[i][col]).sum();
            let g0: f64 = (0..k).map(|i| rows[i][col]).sum::<f64>() / k as f64;
            (gw + c.lambda * g0) / (1.0 + c.lambda)
        })
        .collect()
}

#[test]
fn steps_match_the_update_rule() {
    for config in [
        SdmGradConfig::default(),
        SdmGradConfig {
            lambda: 1.5,
            niter: 7,
            lr: 0.3,
            momentum: 0.0,
        },
    ] {
        let mut m = SdmGrad::with_config(3, config).unwrap();
        let mut w = vec![1.0 / 3.0; 3];
        for t in 0..3 {
            let j = common::sample(3, 6, 40 + t);
            let out = m.aggregate(&j, &ctx()).unwrap();
            let expected = reference_step(&rows_of(&j), &mut w, config);
            let what = format!("{config:?} step {t}");
            assert_close(&to_vec(&out.gradient), &expected, 1e-12, 1e-14, &what);
            assert_close(m.inner_weights(), &w, 1e-12, 1e-14, &what);
        }
    }
}

/// G = diag(1, 4): s = 1.5, Ĝ = diag(1, 4)/2.25, b = (0.5, 2)/2.25. At w = (½, ½) the
/// gradient is Ĝw + 0.3b = (0.2889, 1.1556); w − 5∇ = (−0.944, −5.278) projects to
/// (1, 0). One iteration: output weights (1 + 0.15, 0.15)/1.3.
#[test]
fn one_step_by_hand() {
    let config = SdmGradConfig {
        niter: 1,
        ..SdmGradConfig::default()
    };
    let mut m = SdmGrad::with_config(2, config).unwrap();
    let out = m
        .aggregate(&rows(&[&[1.0, 0.0], &[0.0, 2.0]]), &ctx())
        .unwrap();
    assert_close(m.inner_weights(), &[1.0, 0.0], 0.0, 1e-12, "inner");
    let w = [1.15 / 1.3, 0.15 / 1.3];
    assert_close(&out.weights.unwrap(), &w, 0.0, 1e-12, "weights");
    assert_close(
        &to_vec(&out.gradient),
        &[w[0], 2.0 * w[1]],
        0.0,
        1e-12,
        "out",
    );
}

/// At λ = 0 the inner problem is MGDA's min-norm problem; enough small steps reach it.
#[test]
fn lambda_zero_reaches_the_mgda_weights() {
    let j = rows(&[&[1.0, 0.1, 0.0], &[-0.2, 1.0, 0.3], &[0.6, 0.7, -0.2]]);
    let config = SdmGradConfig {
        lambda: 0.0,
        niter: 5000,
        lr: 0.1,
        momentum: 0.5,
    };
    let mut m = SdmGrad::with_config(3, config).unwrap();
    let out = m.aggregate(&j, &ctx()).unwrap();
    let gram = Gram::of(&j).unwrap();
    let mgda = min_norm_simplex(gram.as_slice(), 3).unwrap();
    assert_close(&out.weights.unwrap(), &mgda, 1e-6, 1e-8, "MGDA weights");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The output weights lie on the simplex with every weight ≥ λ/(K(1 + λ)), and the
    /// inner weights stay on it, step after step.
    #[test]
    fn weights_on_the_simplex(seed in 0u64..1000, k in 1usize..6, lambda in 0.0f64..3.0) {
        let config = SdmGradConfig { lambda, ..SdmGradConfig::default() };
        let mut m = SdmGrad::with_config(k, config).unwrap();
        for t in 0..3 {
            let out = m.aggregate(&common::sample(k, 5, seed * 3 + t), &ctx()).unwrap();
            let w = out.weights.unwrap();
            prop_assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let floor = lambda / (k as f64 * (1.0 + lambda));
            prop_assert!(w.iter().all(|x| *x >= floor - 1e-15));
            let inner = m.inner_weights();
            prop_assert!((inner.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            prop_assert!(inner.iter().all(|x| *x >= 0.0));
        }
    }
}

#[test]
fn state_round_trip_and_determinism() {
    let (a, b) = common::assert_state_round_trip(|k| SdmGrad::new(k).unwrap(), &[]);
    assert_eq!(a.inner_weights(), b.inner_weights());
    // No randomness: two seeds give the same output.
    let j = common::sample(3, 5, 9);
    let run = |seed| {
        let Method::Aggregator(mut m) = by_name("sdmgrad", 3, seed).unwrap() else {
            unreachable!()
        };
        to_vec(&m.aggregate(&j, &ctx()).unwrap().gradient)
    };
    assert_eq!(run(1), run(2));
}

#[test]
fn edge_cases() {
    common::aggregator_edge_cases(|| Box::new(SdmGrad::new(3).unwrap()), 3, 5);
    let mut m = SdmGrad::new(2).unwrap();
    let bad = common::with_entry(&common::sample(2, 3, 1), 4, f64::NAN);
    assert!(matches!(
        m.aggregate(&bad, &ctx()),
        Err(Error::NonFinite { task: Some(1), .. })
    ));
    assert_eq!(m.inner_weights(), &[0.5, 0.5]);
    // A zero Jacobian: Ĝ = 0, the weights stay put and the output is zero.
    let zero = rows(&[&[0.0, 0.0], &[0.0, 0.0]]);
    let out = m.aggregate(&zero, &ctx()).unwrap();
    assert_eq!(to_vec(&out.gradient), vec![0.0, 0.0]);
    assert!(SdmGrad::new(0).is_err());
    for bad in [
        SdmGradConfig {
            lambda: -1.0,
            ..SdmGradConfig::default()
        },
        SdmGradConfig {
            lr: 0.0,
            ..SdmGradConfig::default()
        },
        SdmGradConfig {
            momentum: 1.0,
            ..SdmGradConfig::default()
        },
    ] {
        assert!(SdmGrad::with_config(2, bad).is_err(), "{bad:?}");
    }
    let p = serde_json::json!({ "lambda": 0.5, "niter": 5 });
    assert!(by_name_with("sdmgrad", 2, 0, p.as_object().unwrap()).is_ok());
    let p = serde_json::json!({ "lamda": 0.5 });
    let e = by_name_with("sdmgrad", 2, 0, p.as_object().unwrap()).unwrap_err();
    assert!(e.to_string().contains("did you mean `lambda`"), "{e}");
}
