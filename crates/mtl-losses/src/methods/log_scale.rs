//! The learnable `[K]` log-scale vector of the weightings that train one scalar per
//! task with the model (uncertainty weighting, IMTL-L). Built in one place so both
//! accept the same initial values, dtypes and devices and reject the same mistakes.

use mtl_core::{Error, Result};
use tch::{Device, Kind, Tensor};

/// `num_tasks` copies of `init` as f32 on the CPU, requiring grad. `combine` moves the
/// vector to the losses' dtype and device inside the graph, so the gradient still
/// reaches this tensor wherever the losses live.
pub(super) fn default_log_scales(num_tasks: usize, init: f64) -> Tensor {
    Tensor::full([num_tasks as i64], init, (Kind::Float, Device::Cpu)).set_requires_grad(true)
}

/// `num_tasks` (≥ 1) copies of `init` (finite) with the given floating dtype and device,
/// requiring grad. The errors start with `method` and name the initial value and the
/// vector as `names` says, in the method's own terms (log-scale, log-variance).
pub(super) fn log_scales(
    method: &str,
    names: [&str; 2],
    num_tasks: usize,
    init: f64,
    kind: Kind,
    device: Device,
) -> Result<Tensor> {
    let [init_name, vector_name] = names;
    if num_tasks == 0 {
        return Err(Error::TaskCount {
            context: method.into(),
            expected: 0,
            got: 0,
        });
    }
    if !init.is_finite() {
        return Err(Error::config(format!(
            "{method}: {init_name} must be finite, got {init}"
        )));
    }
    let loss_scale = Tensor::f_full([num_tasks as i64], init, (kind, device))?;
    if !loss_scale.f_is_floating_point()? {
        return Err(Error::config(format!(
            "{method}: {vector_name} need a floating dtype, got {kind:?}"
        )));
    }
    Ok(loss_scale.set_requires_grad(true))
}
