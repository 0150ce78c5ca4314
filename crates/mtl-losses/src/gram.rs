//! The Gram-matrix path: most aggregators depend on the task Jacobian J only through
//! G = J Jᵀ (K×K). Compute it once, solve the small problem in f64 on the CPU, and form
//! the result as wᵀJ, so no d-sized work happens beyond two passes over J.

use mtl_core::{Error, Result};
use tch::{Kind, Tensor};

/// A K×K symmetric matrix in f64, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Gram {
    k: usize,
    data: Vec<f64>,
}

impl Gram {
    /// Builds from row-major data; `data.len()` must be `k*k`.
    pub fn from_vec(k: usize, data: Vec<f64>) -> Result<Self> {
        if data.len() != k * k {
            return Err(Error::shape(
                "Gram",
                format!("{k}x{k}"),
                format!("{} values", data.len()),
            ));
        }
        Ok(Gram { k, data })
    }
    /// G = J Jᵀ of a `[K, d]` Jacobian (computed in J's dtype on J's device, then
    /// moved to the CPU in f64).
    ///
    /// Also the Jacobian's finiteness check, at no extra pass over J: a NaN or Inf in
    /// row k makes G's diagonal entry ‖g_k‖² non-finite. Only then are the rows scanned,
    /// to name the task; finite rows whose squared norm overflows J's dtype are reported
    /// as an overflow of the Gram matrix.
    pub fn of(jacobian: &Tensor) -> Result<Self> {
        check_jacobian_shape(jacobian)?;
        let k = jacobian.size()[0] as usize;
        let g = jacobian
            .f_matmul(&jacobian.f_tr()?)?
            .f_to_kind(Kind::Double)?
            .f_to_device(tch::Device::Cpu)?;
        let data = Vec::<f64>::try_from(g.f_reshape([-1])?)?;
        if let Some(i) = (0..k).find(|&i| !data[i * k + i].is_finite()) {
            mtl_core::first_non_finite_row(jacobian, None)?;
            return Err(Error::NonFinite {
                what: "Gram matrix of the Jacobian (overflow of the squared norm)".into(),
                task: Some(i),
                step: None,
                value: data[i * k + i].to_string(),
            });
        }
        Ok(Gram { k, data })
    }
    /// K.
    pub fn k(&self) -> usize {
        self.k
    }
    /// Entry (i, j) = ⟨g_i, g_j⟩.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.k + j]
    }
    /// The row-major data.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }
}

/// Checks that a Jacobian is a non-empty `[K, d]` matrix. Finiteness is checked where
/// it costs least: by [`Gram::of`] on the Gram path, by [`mtl_core::check_jacobian`]
/// elsewhere.
pub fn check_jacobian_shape(jacobian: &Tensor) -> Result<()> {
    let size = jacobian.size();
    if size.len() != 2 || size[0] == 0 {
        return Err(Error::shape(
            "task Jacobian",
            "[K >= 1, d]",
            format!("{size:?}"),
        ));
    }
    Ok(())
}

/// wᵀJ: the combination of the Jacobian's rows with weights `w` (length K), in J's
/// dtype and on J's device.
pub fn combine(weights: &[f64], jacobian: &Tensor) -> Result<Tensor> {
    let k = jacobian.size()[0] as usize;
    if weights.len() != k {
        return Err(Error::TaskCount {
            context: "combine weights".into(),
            expected: k,
            got: weights.len(),
        });
    }
    // Jᵀw as one matrix-vector product; the weights are built in J's dtype on the
    // host, so a small step pays no conversion kernel.
    let w = match jacobian.kind() {
        Kind::Float => {
            let w32: Vec<f32> = weights.iter().map(|&w| w as f32).collect();
            Tensor::from_slice(&w32)
        }
        kind => Tensor::from_slice(weights).f_to_kind(kind)?,
    }
    .f_to_device(jacobian.device())?;
    Ok(jacobian.f_tr()?.f_mv(&w)?)
}
