//! Shared support for the golden tests: loading the reference files copied from
//! `shared/golden` and comparing with the tolerance rule their README states.
#![allow(dead_code)]

use serde_json::Value;
use tch::{Kind, Tensor};

/// Loads `tests/golden/<file>`.
pub fn load(file: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `cases` array of a golden file.
pub fn cases(doc: &Value) -> &Vec<Value> {
    doc["cases"].as_array().expect("golden file has cases")
}

/// A JSON array of numbers as `Vec<f64>`.
pub fn vec_f64(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap_or_else(|| panic!("not a number: {x}")))
        .collect()
}

/// A JSON matrix (array of rows) as a `[K, d]` f64 tensor.
pub fn matrix(v: &Value) -> Tensor {
    let rows: Vec<Vec<f64>> = v
        .as_array()
        .expect("matrix rows")
        .iter()
        .map(vec_f64)
        .collect();
    let k = rows.len() as i64;
    let flat: Vec<f64> = rows.concat();
    let d = if k == 0 { 0 } else { flat.len() as i64 / k };
    Tensor::from_slice(&flat).view([k, d])
}

/// A tensor as `Vec<f64>`.
pub fn to_vec(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).reshape([-1])).expect("tensor to vec")
}

/// The golden rule: `|a_i - e_i| <= tol_abs + tol_rel * max_j |e_j|` for every i.
pub fn assert_close(actual: &[f64], expected: &[f64], tol_rel: f64, tol_abs: f64, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    let scale = expected.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let tol = tol_abs + tol_rel * scale;
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tol,
            "{what}: entry {i}: got {a}, expected {e} (tol {tol})\n got      {actual:?}\n expected {expected:?}"
        );
    }
}

/// The tolerances of a case (`tol_rel`, `tol_abs`), falling back to the file level.
pub fn tolerances(case: &Value) -> (f64, f64) {
    (
        case["tol_rel"].as_f64().unwrap_or(1e-6),
        case["tol_abs"].as_f64().unwrap_or(1e-12),
    )
}

/// Runs a loss-level method on `losses` (as an f64 leaf) and returns the total and
/// d total / d losses, computed by autograd.
pub fn weighting_grad(
    method: &mut dyn mtl_losses::Weighting,
    losses: &[f64],
    ctx: &mtl_losses::StepContext,
) -> mtl_core::Result<(f64, Vec<f64>)> {
    let leaf = Tensor::from_slice(losses).set_requires_grad(true);
    let total = method.combine(&leaf, ctx)?;
    assert_eq!(total.size(), Vec::<i64>::new(), "the total is a scalar");
    let value = total.double_value(&[]);
    let grads = Tensor::run_backward(&[&total], &[&leaf], false, false);
    Ok((value, to_vec(&grads[0])))
}

/// The input checks every loss-level method shares: a loss vector of the wrong length
/// is a `TaskCount` error; NaN or Inf is a `NonFinite` error naming the task and step.
/// `make(k)` builds a fresh method for k tasks.
pub fn weighting_edge_cases(make: impl Fn(usize) -> Box<dyn mtl_losses::Weighting>, k: usize) {
    use mtl_core::Error;
    let ctx = mtl_losses::StepContext {
        step: 7,
        epoch: 0,
        losses: &[],
    };
    let good: Vec<f64> = (0..k).map(|i| 0.5 + i as f64).collect();
    let mut longer = good.clone();
    longer.push(1.0);
    match make(k).combine(&Tensor::from_slice(&longer), &ctx) {
        Err(Error::TaskCount { expected, got, .. }) => {
            assert_eq!((expected, got), (k, k + 1));
        }
        other => panic!("wrong K: {other:?}"),
    }
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut v = good.clone();
        v[k - 1] = bad;
        match make(k).combine(&Tensor::from_slice(&v), &ctx) {
            Err(Error::NonFinite { task, step, .. }) => {
                assert_eq!(task, Some(k - 1));
                assert_eq!(step, Some(7));
            }
            other => panic!("{bad} loss: {other:?}"),
        }
    }
    let (total, grad) = weighting_grad(make(k).as_mut(), &good, &ctx).unwrap();
    assert!(total.is_finite() && grad.iter().all(|g| g.is_finite()));
}
