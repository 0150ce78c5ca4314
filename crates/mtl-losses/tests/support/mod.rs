//! Helpers for the gradient-level aggregator tests: run a golden file through an
//! aggregator, and the edge cases every aggregator must handle the same way.
#![allow(dead_code)]

use crate::common::{assert_close, cases, load, matrix, to_vec, tolerances, vec_f64};
use mtl_core::Error;
use mtl_losses::{Aggregator, StepContext};
use serde_json::Value;
use tch::{Kind, Tensor};

/// Runs every case of golden `file` through the aggregator `make(case)` builds, checks
/// `expected` and (unless `weights_check` is false or `check_weights` is) `weights`
/// with the case's tolerances. Returns (cases run, names of the skipped cases).
pub fn run_golden(
    file: &str,
    check_weights: bool,
    make: impl Fn(&Value) -> Box<dyn Aggregator>,
) -> (usize, Vec<String>) {
    let doc = load(file);
    let mut n = 0;
    for case in cases(&doc) {
        let name = case["name"].as_str().unwrap_or("?");
        let j = matrix(&case["G"]);
        let losses = if case["losses"].is_array() {
            vec_f64(&case["losses"])
        } else {
            Vec::new()
        };
        let ctx = StepContext {
            step: 0,
            epoch: 0,
            losses: &losses,
        };
        let mut agg = make(case);
        let out = agg
            .aggregate(&j, &ctx)
            .unwrap_or_else(|e| panic!("{file} {name}: {e}"));
        assert_eq!(out.gradient.kind(), Kind::Double);
        let (rel, abs) = tolerances(case);
        let expected = vec_f64(&case["expected"]);
        assert_close(
            &to_vec(&out.gradient),
            &expected,
            rel,
            abs,
            &format!("{file} {name} expected"),
        );
        if check_weights
            && case["weights"].is_array()
            && case["weights_check"].as_bool() != Some(false)
        {
            let w = out
                .weights
                .as_ref()
                .unwrap_or_else(|| panic!("{file} {name}: no weights"));
            assert_close(
                w,
                &vec_f64(&case["weights"]),
                rel,
                abs.max(1e-12),
                &format!("{file} {name} weights"),
            );
        }
        n += 1;
    }
    let skipped = doc["skipped_cases"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s["name"].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default();
    (n, skipped)
}

/// A context with no losses at step 7 (so errors can be checked to carry the step).
pub fn ctx() -> StepContext<'static> {
    StepContext {
        step: 7,
        epoch: 0,
        losses: &[],
    }
}

/// A `[k, d]` f64 tensor from rows.
pub fn rows(r: &[&[f64]]) -> Tensor {
    let d = r[0].len() as i64;
    let flat: Vec<f64> = r.iter().flat_map(|x| x.iter().copied()).collect();
    Tensor::from_slice(&flat).view([r.len() as i64, d])
}

/// A deterministic well-conditioned K×d matrix with entries in [-1, 1].
pub fn sample(k: usize, d: usize, seed: u64) -> Tensor {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let v: Vec<f64> = (0..k * d)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_slice(&v).view([k as i64, d as i64])
}

/// The checks every aggregator must pass: NaN/Inf rows are `NonFinite` errors naming
/// the task and step; a non-matrix or an empty Jacobian is a `Shape` error; an f32
/// Jacobian gives an f32 output close to the f64 one; the output is a d-vector.
pub fn common_edge_cases(make: impl Fn() -> Box<dyn Aggregator>, k: usize, d: usize) {
    let j = sample(k, d, 11);
    // NaN in the last row.
    let mut bad = to_vec(&j);
    bad[(k - 1) * d + d / 2] = f64::NAN;
    let bad = Tensor::from_slice(&bad).view([k as i64, d as i64]);
    match make().aggregate(&bad, &ctx()) {
        Err(Error::NonFinite { task, step, .. }) => {
            assert_eq!(task, Some(k - 1));
            assert_eq!(step, Some(7));
        }
        other => panic!("NaN row: {other:?}"),
    }
    let mut inf = to_vec(&j);
    inf[0] = f64::INFINITY;
    let inf = Tensor::from_slice(&inf).view([k as i64, d as i64]);
    assert!(matches!(
        make().aggregate(&inf, &ctx()),
        Err(Error::NonFinite { task: Some(0), .. })
    ));
    assert!(matches!(
        make().aggregate(&Tensor::from_slice(&[1.0f64, 2.0]), &ctx()),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        make().aggregate(
            &Tensor::zeros([0, d as i64], (Kind::Double, tch::Device::Cpu)),
            &ctx()
        ),
        Err(Error::Shape { .. })
    ));
    let out64 = make().aggregate(&j, &ctx()).unwrap();
    assert_eq!(out64.gradient.size(), vec![d as i64]);
    let out32 = make().aggregate(&j.to_kind(Kind::Float), &ctx()).unwrap();
    assert_eq!(out32.gradient.kind(), Kind::Float);
    let a = to_vec(&out32.gradient);
    let e = to_vec(&out64.gradient);
    assert_close(&a, &e, 1e-4, 1e-5, "f32 vs f64");
}

/// ⟨a, b⟩.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The rows of a `[K, d]` tensor.
pub fn rows_of(j: &Tensor) -> Vec<Vec<f64>> {
    let d = j.size()[1] as usize;
    to_vec(j).chunks(d).map(|c| c.to_vec()).collect()
}
