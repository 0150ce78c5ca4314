//! Shared support for the tests: loading the golden reference files copied from
//! `shared/golden` and comparing with the tolerance rule their README states, running
//! golden files and checkpoints through a method, and the checks every weighting and
//! every aggregator must pass the same way.
#![allow(dead_code)]

use mtl_core::Error;
use mtl_losses::{by_name, Aggregation, Aggregator, Method, StepContext, Weighting};
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

/// A JSON matrix (array of rows) flattened row by row.
pub fn flat_matrix(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("matrix rows")
        .iter()
        .flat_map(vec_f64)
        .collect()
}

/// wᵀG for a `[K, d]` JSON matrix.
pub fn combine_json(weights: &[f64], g: &Value) -> Vec<f64> {
    let rows: Vec<Vec<f64>> = g.as_array().unwrap().iter().map(vec_f64).collect();
    (0..rows[0].len())
        .map(|j| rows.iter().zip(weights).map(|(r, w)| w * r[j]).sum())
        .collect()
}

/// The tolerances of a case (`tol_rel`, `tol_abs`), falling back to the file level.
pub fn tolerances(case: &Value) -> (f64, f64) {
    (
        case["tol_rel"].as_f64().unwrap_or(1e-6),
        case["tol_abs"].as_f64().unwrap_or(1e-12),
    )
}

/// The name, losses and tolerances of a `loss_weighting` case.
pub fn weighting_case(case: &Value) -> (&str, Vec<f64>, (f64, f64)) {
    let name = case["name"].as_str().unwrap();
    (name, vec_f64(&case["losses"]), tolerances(case))
}

/// The name, K and tolerances of a stateful-sequence case.
pub fn sequence_case(case: &Value) -> (&str, usize, (f64, f64)) {
    let name = case["name"].as_str().unwrap();
    let k = case["K"].as_u64().unwrap() as usize;
    (name, k, tolerances(case))
}

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
        let ctx = ctx_with(0, &losses);
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

/// A context at `step` of `epoch`, with no losses.
pub fn ctx_at(step: u64, epoch: usize) -> StepContext<'static> {
    StepContext {
        step,
        epoch,
        losses: &[],
    }
}

/// A context at `step` (epoch 0) carrying the step's loss values.
pub fn ctx_with(step: u64, losses: &[f64]) -> StepContext<'_> {
    StepContext {
        step,
        epoch: 0,
        losses,
    }
}

/// A tensor as `Vec<f64>`.
pub fn to_vec(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).reshape([-1])).expect("tensor to vec")
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

/// `j` with its entry `index` (row-major) set to `value`.
pub fn with_entry(j: &Tensor, index: usize, value: f64) -> Tensor {
    let mut v = to_vec(j);
    v[index] = value;
    Tensor::from_slice(&v).view(j.size().as_slice())
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

/// The gradient-level method `name` for `k` tasks from the registry.
pub fn aggregator(name: &str, k: usize, seed: u64) -> Box<dyn Aggregator> {
    let Method::Aggregator(a) = by_name(name, k, seed).unwrap() else {
        panic!("{name} is a gradient-level method")
    };
    a
}

/// The loss-level method `name` for `k` tasks from the registry.
pub fn weighting(name: &str, k: usize, seed: u64) -> Box<dyn Weighting> {
    let Method::Weighting(w) = by_name(name, k, seed).unwrap() else {
        panic!("{name} is a loss-level method")
    };
    w
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

/// Asserts that `result` is a `TaskCount { expected, got }` error.
#[track_caller]
pub fn assert_task_count<T: std::fmt::Debug>(
    result: mtl_core::Result<T>,
    expected: usize,
    got: usize,
) {
    let err = result.unwrap_err();
    assert!(
        matches!(err, Error::TaskCount { expected: e, got: g, .. } if (e, g) == (expected, got)),
        "{err}"
    );
}

/// Asserts that `result` is a `NonFinite` error naming `task` and `step`.
#[track_caller]
pub fn assert_non_finite<T: std::fmt::Debug>(result: mtl_core::Result<T>, task: usize, step: u64) {
    let err = result.unwrap_err();
    assert!(
        matches!(err, Error::NonFinite { task: t, step: s, .. } if (t, s) == (Some(task), Some(step))),
        "{err}"
    );
}

/// Aggregates `j` in f64 and in f32 with fresh aggregators from `make`: the f32 output
/// stays f32 and is within `(tol_rel, tol_abs)` of the f64 one. Returns the f64 output.
#[track_caller]
pub fn assert_f32_follows_f64(
    make: impl Fn() -> Box<dyn Aggregator>,
    j: &Tensor,
    ctx: &StepContext,
    (tol_rel, tol_abs): (f64, f64),
    what: &str,
) -> Aggregation {
    let out64 = make().aggregate(j, ctx).unwrap();
    let out32 = make().aggregate(&j.to_kind(Kind::Float), ctx).unwrap();
    assert_eq!(out32.gradient.kind(), Kind::Float);
    assert_close(
        &to_vec(&out32.gradient),
        &to_vec(&out64.gradient),
        tol_rel,
        tol_abs,
        what,
    );
    out64
}

/// A checkpoint round trip for two tasks: after one step of `a`, a fresh `b` loaded
/// with `a`'s state takes the next step to the same output, bit for bit, and a
/// three-task method refuses that state. `make(k)` builds a fresh method for k tasks;
/// returns (a, b) for checks of the method's own state.
#[track_caller]
pub fn assert_state_round_trip<A: Aggregator>(make: impl Fn(usize) -> A, losses: &[f64]) -> (A, A) {
    let mut a = make(2);
    a.aggregate(&sample(2, 6, 1), &ctx_with(0, losses)).unwrap();
    let mut b = make(2);
    b.load_state(&a.state()).unwrap();
    let j = sample(2, 6, 2);
    let oa = a.aggregate(&j, &ctx_with(1, losses)).unwrap();
    let ob = b.aggregate(&j, &ctx_with(1, losses)).unwrap();
    assert_eq!(to_vec(&oa.gradient), to_vec(&ob.gradient));
    assert!(make(3).load_state(&a.state()).is_err());
    (a, b)
}

/// Runs a loss-level method on `losses` (as an f64 leaf) and returns the total and
/// d total / d losses, computed by autograd.
pub fn weighting_grad(
    method: &mut dyn Weighting,
    losses: &[f64],
    ctx: &StepContext,
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
pub fn weighting_edge_cases(make: impl Fn(usize) -> Box<dyn Weighting>, k: usize) {
    let ctx = ctx();
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

/// The checks every aggregator must pass: NaN/Inf rows are `NonFinite` errors naming
/// the task and step; a non-matrix or an empty Jacobian is a `Shape` error; an f32
/// Jacobian gives an f32 output close to the f64 one; the output is a d-vector.
pub fn aggregator_edge_cases(make: impl Fn() -> Box<dyn Aggregator>, k: usize, d: usize) {
    let j = sample(k, d, 11);
    // NaN in the last row.
    let bad = with_entry(&j, (k - 1) * d + d / 2, f64::NAN);
    match make().aggregate(&bad, &ctx()) {
        Err(Error::NonFinite { task, step, .. }) => {
            assert_eq!(task, Some(k - 1));
            assert_eq!(step, Some(7));
        }
        other => panic!("NaN row: {other:?}"),
    }
    let inf = with_entry(&j, 0, f64::INFINITY);
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
    let out64 = assert_f32_follows_f64(make, &j, &ctx(), (1e-4, 1e-5), "f32 vs f64");
    assert_eq!(out64.gradient.size(), vec![d as i64]);
}
