//! The affine layers the built-in heads end with, built and applied without panics: a
//! dense layer over feature rows or token sequences, and a 1×1 convolution over feature
//! maps. Each knows the head it belongs to, so that its errors name that head. Public
//! through [`crate::kit`].

use crate::kit::head_context;
use crate::rows::check_features;
use mtl_core::init::{self, Init};
use mtl_core::{Error, Result};
use tch::{nn, Tensor};

/// Fails with [`Error::Config`] naming the head unless the `kind` head `name` (a
/// classification head `region`...) is asked for at least `min` `what`, e.g. 2 classes:
/// the check of a head constructor, made before any variable is created.
///
/// ```
/// use mtl_heads::kit::check_count;
///
/// assert!(check_count("classification", "region", "classes", 3, 2).is_ok());
/// let err = check_count("classification", "region", "classes", 1, 2).unwrap_err();
/// assert!(err.to_string().contains("classification head `region` needs at least 2 classes, got 1"));
/// ```
pub fn check_count(kind: &str, name: &str, what: &str, count: i64, min: i64) -> Result<()> {
    if count >= min {
        return Ok(());
    }
    Err(Error::config(format!(
        "{kind} head `{name}` needs at least {min} {what}, got {count}"
    )))
}

/// `y = x·Wᵀ + b`, with PyTorch's default initialisation (weight and bias uniform in
/// ±1/√in_dim, as `torch.nn.Linear`; [`Linear::with_init`] for another
/// [`Init`]) and variables `weight` `[out_dim, in_dim]` and `bias` `[out_dim]` under its
/// path. It belongs to a head:
/// its errors name that head (``head `price` ``), as [`crate::TaskHead::forward_t`]
/// asks.
///
/// ```
/// use mtl_heads::kit::Linear;
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let layer = Linear::new(&(vs.root() / "head"), "price", 8, 2)?;
/// let x = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
/// assert_eq!(layer.forward(&x)?.size(), [4, 2]);
/// let err = layer.forward(&Tensor::randn([4, 7], (Kind::Float, Device::Cpu))).unwrap_err();
/// assert!(err.to_string().contains("head `price`"), "{err}");
/// // A bad width is a typed error, and creates no variable.
/// assert!(Linear::new(&(vs.root() / "other"), "other", 0, 2).is_err());
/// assert_eq!(vs.variables().len(), 2);
/// # Ok::<(), mtl_heads::Error>(())
/// ```
#[derive(Debug)]
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
    context: String,
}

impl Linear {
    /// Builds the layer of head `head` under `path`; its errors name that head. Fails
    /// with [`Error::Config`], before creating any variable, unless both widths are
    /// positive.
    pub fn new(path: &nn::Path, head: &str, in_dim: i64, out_dim: i64) -> Result<Self> {
        Self::with_init(path, head, in_dim, out_dim, Init::default())
    }

    /// [`Linear::new`] with the weight and bias drawn as `init` says (`Init::Zeros` for a
    /// head that starts at a zero output).
    pub fn with_init(
        path: &nn::Path,
        head: &str,
        in_dim: i64,
        out_dim: i64,
        init: Init,
    ) -> Result<Self> {
        if in_dim < 1 || out_dim < 1 {
            return Err(Error::config(format!(
                "head `{head}` needs positive widths, got in_dim {in_dim} and {out_dim} outputs"
            )));
        }
        let (weight, bias) = init::weight_and_bias(path, &[out_dim, in_dim], init)?;
        Ok(Linear {
            weight,
            bias,
            context: head_context(head),
        })
    }

    /// The width of the features it reads.
    pub fn in_dim(&self) -> i64 {
        self.weight.size()[1]
    }

    /// The number of outputs per row (or token).
    pub fn out_dim(&self) -> i64 {
        self.weight.size()[0]
    }

    /// Applies the layer to `features` `[B, in_dim]`; any other shape is a shape error
    /// naming the head.
    pub fn forward(&self, features: &Tensor) -> Result<Tensor> {
        let axes = ["batch", "features"];
        check_features(&self.context, "features", features, &axes, 1, self.in_dim())?;
        Ok(features.f_linear(&self.weight, Some(&self.bias))?)
    }

    /// Applies the layer to every token of `features` `[B, T, in_dim]`; any other shape
    /// is a shape error naming the head.
    pub fn forward_tokens(&self, features: &Tensor) -> Result<Tensor> {
        let axes = ["batch", "tokens", "features"];
        check_features(&self.context, "features", features, &axes, 2, self.in_dim())?;
        Ok(features.f_linear(&self.weight, Some(&self.bias))?)
    }
}

/// A 1×1 convolution: the same affine map applied to the channel vector of every pixel,
/// with PyTorch's `Conv2d` initialisation (weight and bias uniform in ±1/√in) and
/// layout (variables `weight` `[out, in, 1, 1]` and `bias` `[out]`), so weights trained
/// there load here. Like [`Linear`], its errors name its head.
///
/// ```
/// use mtl_heads::kit::Conv1x1;
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let layer = Conv1x1::new(&(vs.root() / "head"), "edges", 16, 1)?;
/// let maps = Tensor::randn([2, 16, 5, 6], (Kind::Float, Device::Cpu));
/// assert_eq!(layer.forward(&maps)?.size(), [2, 1, 5, 6]);
/// # Ok::<(), mtl_heads::Error>(())
/// ```
#[derive(Debug)]
pub struct Conv1x1 {
    weight: Tensor,
    bias: Tensor,
    context: String,
}

impl Conv1x1 {
    /// Builds the layer of head `head` under `path`; its errors name that head. Fails
    /// with [`Error::Config`], before creating any variable, unless both widths are
    /// positive.
    pub fn new(path: &nn::Path, head: &str, in_channels: i64, out: i64) -> Result<Self> {
        Self::with_init(path, head, in_channels, out, Init::default())
    }

    /// [`Conv1x1::new`] with the weight and bias drawn as `init` says.
    pub fn with_init(
        path: &nn::Path,
        head: &str,
        in_channels: i64,
        out: i64,
        init: Init,
    ) -> Result<Self> {
        if in_channels < 1 || out < 1 {
            return Err(Error::config(format!(
                "head `{head}` needs positive widths, got {in_channels} input channels and \
                 {out} outputs"
            )));
        }
        // A 1×1 kernel has fan-in `in_channels`, so the bounds are those of a dense layer.
        let (weight, bias) = init::weight_and_bias(path, &[out, in_channels, 1, 1], init)?;
        Ok(Conv1x1 {
            weight,
            bias,
            context: head_context(head),
        })
    }

    /// The number of channels it reads.
    pub fn in_channels(&self) -> i64 {
        self.weight.size()[1]
    }

    /// The number of channels it writes.
    pub fn out_channels(&self) -> i64 {
        self.weight.size()[0]
    }

    /// Applies the layer to feature maps `[B, in_channels, H, W]`; any other shape is a
    /// shape error naming the head.
    pub fn forward(&self, features: &Tensor) -> Result<Tensor> {
        let axes = ["batch", "channels", "height", "width"];
        let width = self.in_channels();
        check_features(&self.context, "feature maps", features, &axes, 1, width)?;
        Ok(features.f_conv2d(&self.weight, Some(&self.bias), [1, 1], [0, 0], [1, 1], 1)?)
    }
}
