//! The affine layer every built-in head ends with, built and applied without panics.

use crate::rows::describe;
use mtl_core::{Error, Result};
use tch::{nn, Tensor};

/// `y = x·Wᵀ + b`, with PyTorch's default initialisation (Kaiming-uniform weight,
/// bias uniform in ±1/√in_dim) and variables `weight` and `bias` under its path.
#[derive(Debug)]
pub(crate) struct Dense {
    weight: Tensor,
    bias: Tensor,
}

impl Dense {
    /// Builds the layer under `path`; `head` names the head in configuration errors.
    pub(crate) fn new(path: &nn::Path, head: &str, in_dim: i64, out_dim: i64) -> Result<Self> {
        if in_dim < 1 || out_dim < 1 {
            return Err(Error::config(format!(
                "head `{head}` needs positive widths, got in_dim {in_dim} and {out_dim} outputs"
            )));
        }
        let weight = path.f_var(
            "weight",
            &[out_dim, in_dim],
            nn::init::DEFAULT_KAIMING_UNIFORM,
        )?;
        let bound = 1.0 / (in_dim as f64).sqrt();
        let bias = path.f_var(
            "bias",
            &[out_dim],
            nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
        )?;
        Ok(Dense { weight, bias })
    }

    /// The width of the features it reads.
    pub(crate) fn in_dim(&self) -> i64 {
        self.weight.size()[1]
    }

    /// Applies the layer to `features` `[B, in_dim]`; any other shape is a shape error in
    /// `context`.
    pub(crate) fn forward(&self, context: &str, features: &Tensor) -> Result<Tensor> {
        let size = features.size();
        if size.len() != 2 || size[1] != self.in_dim() {
            return Err(Error::shape(
                context,
                format!("features [batch, {}]", self.in_dim()),
                describe(features),
            ));
        }
        Ok(features.f_linear(&self.weight, Some(&self.bias))?)
    }
}
