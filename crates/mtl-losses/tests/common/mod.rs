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
