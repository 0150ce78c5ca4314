//! Reading and writing the JSON that stateful methods hand to checkpoints
//! ([`crate::Aggregator::state`], [`crate::Weighting::state`]).
//!
//! A checkpoint may come from another run, another K or a hand-edited file, so every
//! method must turn a missing key, a wrong length or a malformed tensor into an error
//! that names the method, never a panic or a silently reshaped state. Those checks,
//! and the tensor format that DB-MTL and MoCo both store, are written once here so the
//! methods stay alike in what they accept and in what their errors say.

use mtl_core::{Error, Result, SeededRng};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tch::{Device, Kind, Tensor};

/// The error for a malformed `state` of `method`, quoting it.
fn malformed(method: &str, what: &str, state: &Value) -> Error {
    Error::config(format!("{method} state: {what} in {state}"))
}

/// A serialisable state struct as JSON (`Null` if it cannot be represented).
pub(crate) fn to_json<T: Serialize>(state: &T) -> Value {
    serde_json::to_value(state).unwrap_or(Value::Null)
}

/// The inverse of [`to_json`]; the caller still checks the lengths against its K.
pub(crate) fn from_json<T: DeserializeOwned>(method: &str, state: &Value) -> Result<T> {
    serde_json::from_value(state.clone()).map_err(|e| malformed(method, &e.to_string(), state))
}

/// A vector of the state holds one value per task.
pub(crate) fn check_len(method: &str, k: usize, v: &[f64]) -> Result<()> {
    crate::solvers::check_task_count(&format!("{method} state"), Some(k), v.len())
}

/// `state["step"]`, the step count.
pub(crate) fn step(method: &str, state: &Value) -> Result<u64> {
    state
        .get("step")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| malformed(method, "no `step`", state))
}

/// `state[key]`, a vector of `k` numbers.
pub(crate) fn task_vector(method: &str, state: &Value, key: &str, k: usize) -> Result<Vec<f64>> {
    let v: Vec<f64> = serde_json::from_value(state.get(key).cloned().unwrap_or_default())
        .map_err(|_| malformed(method, &format!("no `{key}`"), state))?;
    check_len(method, k, &v)?;
    Ok(v)
}

/// The state of a method that keeps a step count and one finite per-task vector under
/// `key` (Nash-MTL's α, IMTL's scales, the smoothed λ of CR-MOGM and MoDo…).
pub(crate) fn step_and_vector_json(step: u64, key: &str, v: &[f64]) -> Value {
    let mut map = serde_json::Map::new();
    map.insert("step".into(), Value::from(step));
    map.insert(key.into(), Value::from(v.to_vec()));
    Value::Object(map)
}

/// The inverse of [`step_and_vector_json`], checked: the step count and `k` finite
/// values under `key`.
pub(crate) fn step_and_vector(
    method: &str,
    state: &Value,
    key: &str,
    k: usize,
) -> Result<(u64, Vec<f64>)> {
    Ok((
        step(method, state)?,
        finite_task_vector(method, state, key, k)?,
    ))
}

/// [`task_vector`] for a vector the method divides by or feeds to a solver, where a
/// non-finite value would poison every later step.
pub(crate) fn finite_task_vector(
    method: &str,
    state: &Value,
    key: &str,
    k: usize,
) -> Result<Vec<f64>> {
    let v = task_vector(method, state, key, k)?;
    if v.iter().any(|x| !x.is_finite()) {
        return Err(malformed(method, &format!("non-finite `{key}`"), state));
    }
    Ok(v)
}

/// `state[key]`, a `[rows, d]` tensor written by [`tensor_to_json`], or `None` when it
/// is absent or `null` (no step has run yet).
pub(crate) fn optional_tensor(
    method: &str,
    state: &Value,
    key: &str,
    rows: usize,
) -> Result<Option<Tensor>> {
    match state.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(t) => Ok(Some(tensor_from_json(method, t, rows)?)),
    }
}

/// `state["rng"]`, the position of a method's generator.
pub(crate) fn rng(method: &str, state: &Value) -> Result<SeededRng> {
    let rng = state
        .get("rng")
        .ok_or_else(|| Error::config(format!("{method} state without `rng`: {state}")))?;
    mtl_core::checkpoint::rng_from_state(rng)
}

/// A K × d state tensor as JSON (`shape`, `values` in f64), for checkpoints.
pub(crate) fn tensor_to_json(t: &Tensor) -> Value {
    let values = t
        .f_to_kind(Kind::Double)
        .and_then(|t| t.f_to_device(Device::Cpu))
        .and_then(|t| t.f_reshape([-1]))
        .ok()
        .and_then(|t| Vec::<f64>::try_from(t).ok());
    match values {
        Some(v) => serde_json::json!({ "shape": t.size(), "values": v }),
        None => Value::Null,
    }
}

/// The inverse of [`tensor_to_json`] for a `[rows, d]` tensor (f64, on the CPU).
pub(crate) fn tensor_from_json(method: &str, v: &Value, rows: usize) -> Result<Tensor> {
    let bad = |what: &str| Error::config(format!("{method} state: {what}"));
    let shape: Vec<i64> = serde_json::from_value(v.get("shape").cloned().unwrap_or_default())
        .map_err(|_| bad("no `shape`"))?;
    let values: Vec<f64> = serde_json::from_value(v.get("values").cloned().unwrap_or_default())
        .map_err(|_| bad("no `values`"))?;
    if shape.len() != 2 || shape[0] != rows as i64 {
        return Err(Error::TaskCount {
            context: format!("{method} state"),
            expected: rows,
            got: shape.first().copied().unwrap_or(0).max(0) as usize,
        });
    }
    if shape[1] < 0 || values.len() as i64 != shape[0] * shape[1] {
        return Err(bad("`values` does not match `shape`"));
    }
    if let Some(x) = values.iter().find(|x| !x.is_finite()) {
        return Err(bad(&format!("non-finite value {x}")));
    }
    Ok(Tensor::from_slice(&values).f_view([shape[0], shape[1]])?)
}
