//! The affine layers the built-in heads end with, built and applied without panics: a
//! dense layer over feature rows or token sequences, and a 1×1 convolution over feature
//! maps. Each knows the head it belongs to, so that its errors name that head.

use crate::rows::check_features;
use mtl_core::{Error, Result};
use tch::{nn, Tensor};

/// Fails with [`Error::Config`] naming the head unless the `kind` head `name` (a
/// classification head `region`...) is asked for at least `min` `what`, e.g. 2 classes.
pub(crate) fn check_count(kind: &str, name: &str, what: &str, count: i64, min: i64) -> Result<()> {
    if count >= min {
        return Ok(());
    }
    Err(Error::config(format!(
        "{kind} head `{name}` needs at least {min} {what}, got {count}"
    )))
}

/// The `weight` and `bias` variables of an affine layer under `path`, initialised as
/// PyTorch's `Linear` and `Conv2d`: a Kaiming-uniform weight of shape `shape` and a bias
/// `[shape[0]]` uniform in ±1/√fan_in.
fn affine_vars(path: &nn::Path, shape: &[i64], fan_in: i64) -> Result<(Tensor, Tensor)> {
    let weight = path.f_var("weight", shape, nn::init::DEFAULT_KAIMING_UNIFORM)?;
    let bound = 1.0 / (fan_in as f64).sqrt();
    let bias = path.f_var(
        "bias",
        &[shape[0]],
        nn::Init::Uniform {
            lo: -bound,
            up: bound,
        },
    )?;
    Ok((weight, bias))
}

/// How the layer of head `head` names it in shape errors.
fn head_context(head: &str) -> String {
    format!("head `{head}`")
}

/// `y = x·Wᵀ + b`, with PyTorch's default initialisation (Kaiming-uniform weight,
/// bias uniform in ±1/√in_dim) and variables `weight` and `bias` under its path.
#[derive(Debug)]
pub(crate) struct Dense {
    weight: Tensor,
    bias: Tensor,
    context: String,
}

impl Dense {
    /// Builds the layer of head `head` under `path`; its errors name that head.
    pub(crate) fn new(path: &nn::Path, head: &str, in_dim: i64, out_dim: i64) -> Result<Self> {
        if in_dim < 1 || out_dim < 1 {
            return Err(Error::config(format!(
                "head `{head}` needs positive widths, got in_dim {in_dim} and {out_dim} outputs"
            )));
        }
        let (weight, bias) = affine_vars(path, &[out_dim, in_dim], in_dim)?;
        Ok(Dense {
            weight,
            bias,
            context: head_context(head),
        })
    }

    /// The width of the features it reads.
    pub(crate) fn in_dim(&self) -> i64 {
        self.weight.size()[1]
    }

    /// Applies the layer to `features` `[B, in_dim]`; any other shape is a shape error
    /// naming the head.
    pub(crate) fn forward(&self, features: &Tensor) -> Result<Tensor> {
        let axes = ["batch", "features"];
        check_features(&self.context, "features", features, &axes, 1, self.in_dim())?;
        Ok(features.f_linear(&self.weight, Some(&self.bias))?)
    }

    /// Applies the layer to every token of `features` `[B, T, in_dim]`; any other shape
    /// is a shape error naming the head.
    pub(crate) fn forward_tokens(&self, features: &Tensor) -> Result<Tensor> {
        let axes = ["batch", "tokens", "features"];
        check_features(&self.context, "features", features, &axes, 2, self.in_dim())?;
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
    context: String,
}

impl Conv1x1 {
    /// Builds the layer of head `head` under `path`; its errors name that head.
    pub(crate) fn new(path: &nn::Path, head: &str, in_channels: i64, out: i64) -> Result<Self> {
        if in_channels < 1 || out < 1 {
            return Err(Error::config(format!(
                "head `{head}` needs positive widths, got {in_channels} input channels and \
                 {out} outputs"
            )));
        }
        // A 1×1 kernel has fan-in `in_channels`, so the bounds are those of a dense layer.
        let (weight, bias) = affine_vars(path, &[out, in_channels, 1, 1], in_channels)?;
        Ok(Conv1x1 {
            weight,
            bias,
            context: head_context(head),
        })
    }

    /// The number of channels it reads.
    pub(crate) fn in_channels(&self) -> i64 {
        self.weight.size()[1]
    }

    /// Applies the layer to feature maps `[B, in_channels, H, W]`; any other shape is a
    /// shape error naming the head.
    pub(crate) fn forward(&self, features: &Tensor) -> Result<Tensor> {
        let axes = ["batch", "channels", "height", "width"];
        let width = self.in_channels();
        check_features(&self.context, "feature maps", features, &axes, 1, width)?;
        Ok(features.f_conv2d(&self.weight, Some(&self.bias), [1, 1], [0, 0], [1, 1], 1)?)
    }
}
