//! The affine layers the built-in heads end with, built and applied without panics: a
//! dense layer over feature rows or token sequences, and a 1×1 convolution over feature
//! maps.

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

    /// Applies the layer to every token of `features` `[B, T, in_dim]`; any other shape
    /// is a shape error in `context`.
    pub(crate) fn forward_tokens(&self, context: &str, features: &Tensor) -> Result<Tensor> {
        let size = features.size();
        if size.len() != 3 || size[2] != self.in_dim() {
            return Err(Error::shape(
                context,
                format!("features [batch, tokens, {}]", self.in_dim()),
                describe(features),
            ));
        }
        Ok(features.f_linear(&self.weight, Some(&self.bias))?)
    }
}

/// A 1×1 convolution: the same affine map applied to the channel vector of every pixel,
/// with PyTorch's `Conv2d` initialisation and layout (variables `weight`
/// `[out, in, 1, 1]` and `bias` `[out]`), so weights trained there load here.
#[derive(Debug)]
pub(crate) struct Conv1x1 {
    weight: Tensor,
    bias: Tensor,
}

impl Conv1x1 {
    /// Builds the layer under `path`; `head` names the head in configuration errors.
    pub(crate) fn new(path: &nn::Path, head: &str, in_channels: i64, out: i64) -> Result<Self> {
        if in_channels < 1 || out < 1 {
            return Err(Error::config(format!(
                "head `{head}` needs positive widths, got {in_channels} input channels and \
                 {out} outputs"
            )));
        }
        // A 1×1 kernel has fan-in `in_channels`, so the bounds are those of a dense layer.
        let weight = path.f_var(
            "weight",
            &[out, in_channels, 1, 1],
            nn::init::DEFAULT_KAIMING_UNIFORM,
        )?;
        let bound = 1.0 / (in_channels as f64).sqrt();
        let bias = path.f_var(
            "bias",
            &[out],
            nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
        )?;
        Ok(Conv1x1 { weight, bias })
    }

    /// The number of channels it reads.
    pub(crate) fn in_channels(&self) -> i64 {
        self.weight.size()[1]
    }

    /// Applies the layer to feature maps `[B, in_channels, H, W]`; any other shape is a
    /// shape error in `context`.
    pub(crate) fn forward(&self, context: &str, features: &Tensor) -> Result<Tensor> {
        let size = features.size();
        if size.len() != 4 || size[1] != self.in_channels() {
            return Err(Error::shape(
                context,
                format!(
                    "feature maps [batch, {}, height, width]",
                    self.in_channels()
                ),
                describe(features),
            ));
        }
        Ok(features.f_conv2d(&self.weight, Some(&self.bias), [1, 1], [0, 0], [1, 1], 1)?)
    }
}
