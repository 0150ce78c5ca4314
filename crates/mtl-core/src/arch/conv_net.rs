//! [`ConvNetConfig`] and [`ConvNet`]: a dilated-ResNet encoder–decoder over
//! `[B, C, H, W]` images for dense prediction (documented on the config).

use super::builder::BackboneBuilder;
use super::{Backbone, HardSharing, TaskTowers};
use crate::init::Init;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// The normalisation after each convolution of a [`ConvNet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvNorm {
    /// Batch normalisation (`torch.nn.BatchNorm2d`: ε = 1e-5, momentum 0.1).
    #[default]
    Batch,
    /// None: every convolution has a bias instead.
    None,
}

/// PyTorch's `BatchNorm2d` defaults.
const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

/// Configuration of a [`ConvNet`], a fully convolutional encoder–decoder
/// [`Backbone`] for dense prediction
/// (segmentation, depth, normals): images `[B, C, H, W]` in, feature maps
/// `[B, C_out, H, W]` out, at the input's resolution.
///
/// The encoder is a small ResNet (He et al., "Deep Residual Learning for Image
/// Recognition", CVPR 2016) made dilated as in DeepLab (Chen et al., "DeepLab", TPAMI
/// 2018) and LibMTL's NYUv2 `resnet_dilated`: the last stages keep their resolution and
/// widen their receptive field with dilated convolutions instead of striding. The
/// decoder undoes the remaining downsampling with bilinear upsampling, each step
/// followed by a 3×3 convolution.
///
/// ```text
/// stem      conv3×3 (C → w₀) ─ norm ─ ReLU
/// stage s   residual blocks at width w_s; the first block of stage s ≥ 1 halves the
///           resolution (stride 2), unless s is one of the last `dilated_stages`
///           stages, which keep it and use dilation 2, 4, …
/// block     conv3×3 ─ norm ─ ReLU ─ conv3×3 ─ norm, plus the input (through a 1×1
///           conv ─ norm where the width or resolution changes), then ReLU
/// decoder   per strided stage, last first: bilinear ×2 ─ conv3×3 (→ w_{s−1}) ─ norm ─ ReLU;
///           then conv3×3 (→ C_out) ─ norm ─ ReLU
/// ```
///
/// The norm is batch normalisation ([`ConvNorm::Batch`], the default) or none. Batch norm
/// normalises with the batch's statistics when `forward_t`'s `train` is true and
/// updates its running mean and variance; with `train` false it uses them. They are
/// var-store variables (`…/running_mean`, `…/running_var`) that do not require
/// gradients, so checkpoints and bundles save them and the optimisers leave them alone.
/// A convolution followed by batch norm has no bias (the norm's own shift replaces it,
/// as in torchvision's ResNet); without a norm every convolution has one. Weights start
/// as [`Init`] says, PyTorch's `nn.Conv2d` default unless set; batch norm starts at
/// weight 1, bias 0, as `nn.BatchNorm2d`.
///
/// **Spatial sizes.** The encoder downsamples by [`ConvNetConfig::downsampling_factor`]
/// `f = 2^(strided stages)`; the input's height and width must be multiples of `f`
/// (otherwise a [`Error::Shape`] naming the size and the factor), so the decoder's ×2
/// steps land exactly on the input's resolution. Nothing is cropped or padded.
///
/// For one encoder shared by every task and a decoder per task, see
/// [`ConvNetConfig::build_with_task_decoders`].
///
/// ```
/// use mtl_core::{Backbone, ConvNetConfig};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// // Three stages of 8, 16, 16 channels; the last one dilated, so the encoder
/// // downsamples by 2.
/// let cfg = ConvNetConfig::new(3).widths([8, 16, 16]).out_channels(12);
/// assert_eq!(cfg.downsampling_factor()?, 2);
/// let net = cfg.build(&(vs.root() / "trunk"))?;
/// let x = Tensor::randn([2, 3, 8, 12], (Kind::Float, Device::Cpu));
/// assert_eq!(net.forward_t(&x, true)?.size(), [2, 12, 8, 12]);
/// // An odd size names the size and the factor.
/// let odd = Tensor::zeros([2, 3, 7, 12], (Kind::Float, Device::Cpu));
/// assert!(net.forward_t(&odd, false).unwrap_err().to_string().contains("7×12"));
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvNetConfig {
    /// Input channels `C`.
    pub in_channels: i64,
    /// The width of each encoder stage (`[16, 32, 64]` by default); at least one.
    pub widths: Vec<i64>,
    /// Residual blocks per stage (1 by default).
    pub blocks: usize,
    /// How many of the last stages (among those after the first) are dilated instead of
    /// strided (1 by default); at most `widths.len() − 1`.
    pub dilated_stages: usize,
    /// Output channels of the decoder; `None` (the default) for `widths[0]`.
    #[serde(default)]
    pub out_channels: Option<i64>,
    /// Whether the decoder is built (true by default); without it the output is the
    /// encoder's, `[B, w_last, H/f, W/f]`.
    pub decoder: bool,
    /// The normalisation.
    #[serde(default)]
    pub norm: ConvNorm,
    /// How the convolutions start (PyTorch's `nn.Conv2d` default unless set).
    #[serde(default)]
    pub init: Init,
}

impl ConvNetConfig {
    /// Three stages of 16, 32 and 64 channels over `in_channels`-channel images, one
    /// residual block each, the last stage dilated (downsampling factor 2), batch norm,
    /// a decoder back to the input's resolution with 16 output channels.
    pub fn new(in_channels: i64) -> Self {
        ConvNetConfig {
            in_channels,
            widths: vec![16, 32, 64],
            blocks: 1,
            dilated_stages: 1,
            out_channels: None,
            decoder: true,
            norm: ConvNorm::Batch,
            init: Init::default(),
        }
    }
    /// Sets the stage widths (and so the number of stages).
    pub fn widths(mut self, w: impl Into<Vec<i64>>) -> Self {
        self.widths = w.into();
        self
    }
    /// Sets the residual blocks per stage.
    pub fn blocks(mut self, n: usize) -> Self {
        self.blocks = n;
        self
    }
    /// Sets how many of the last stages are dilated instead of strided.
    pub fn dilated_stages(mut self, n: usize) -> Self {
        self.dilated_stages = n;
        self
    }
    /// Sets the decoder's output channels.
    pub fn out_channels(mut self, c: i64) -> Self {
        self.out_channels = Some(c);
        self
    }
    /// Whether to build the decoder.
    pub fn decoder(mut self, yes: bool) -> Self {
        self.decoder = yes;
        self
    }
    /// Sets the normalisation.
    pub fn norm(mut self, norm: ConvNorm) -> Self {
        self.norm = norm;
        self
    }
    /// Sets how the convolutions start.
    pub fn init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

    /// Checks every size; the error names the bad value.
    fn check(&self) -> Result<()> {
        self.init.check()?;
        if self.in_channels <= 0 {
            return Err(Error::config(format!(
                "conv net: input channels must be positive, got {}",
                self.in_channels
            )));
        }
        if self.widths.is_empty() {
            return Err(Error::config("conv net: `widths` lists no stage"));
        }
        if let Some((s, w)) = self.widths.iter().enumerate().find(|(_, &w)| w <= 0) {
            return Err(Error::config(format!(
                "conv net: stage {s} has width {w}, widths must be positive (got {:?})",
                self.widths
            )));
        }
        if let Some(c) = self.out_channels.filter(|&c| c <= 0) {
            return Err(Error::config(format!(
                "conv net: output channels must be positive, got {c}"
            )));
        }
        if self.blocks == 0 {
            return Err(Error::config(
                "conv net: each stage needs at least one block",
            ));
        }
        if self.dilated_stages >= self.widths.len() && self.dilated_stages > 0 {
            return Err(Error::config(format!(
                "conv net: {} dilated stages, but only {} stages after the first (the \
                 first never downsamples; set `dilated_stages(0)` for one stage)",
                self.dilated_stages,
                self.widths.len() - 1
            )));
        }
        Ok(())
    }

    /// `(stride, dilation)` of stage `s`'s first block.
    fn stage_layout(&self, s: usize) -> (i64, i64) {
        let first_dilated = self.widths.len() - self.dilated_stages;
        match s {
            0 => (1, 1),
            s if s >= first_dilated => (1, 1 << (s + 1 - first_dilated)),
            _ => (2, 1),
        }
    }

    /// The stages that halve the resolution.
    fn strided_stages(&self) -> Vec<usize> {
        (1..self.widths.len())
            .filter(|&s| self.stage_layout(s).0 == 2)
            .collect()
    }

    /// How much the encoder shrinks each side: `2^(strided stages)`; input heights and
    /// widths must be multiples of it.
    pub fn downsampling_factor(&self) -> Result<i64> {
        self.check()?;
        Ok(1 << self.strided_stages().len())
    }

    /// The width of what the encoder outputs, `widths[last]`.
    fn encoder_width(&self) -> i64 {
        self.widths.last().copied().unwrap_or(0)
    }

    /// The decoder that turns this encoder's output back into `[B, C_out, H, W]` maps,
    /// alone: with [`decoder(false)`](Self::decoder) for the encoder, the pair computes
    /// what the whole network computes (with separate weights per decoder when built
    /// per task).
    pub fn decoder_config(&self) -> ConvDecoderConfig {
        let up_widths = self
            .strided_stages()
            .iter()
            .rev()
            .map(|&s| self.widths[s - 1])
            .collect();
        ConvDecoderConfig {
            in_channels: self.encoder_width(),
            up_widths,
            out_channels: self.out_channels.unwrap_or(self.widths[0]),
            norm: self.norm,
            init: self.init,
        }
    }

    /// Builds the network under `path` (`stem`, `stage<s>/block<b>`, `decoder`).
    pub fn build(&self, path: &nn::Path) -> Result<ConvNet> {
        self.check()?;
        let stem = ConvUnit::new(
            &(path / "stem"),
            self.in_channels,
            self.widths[0],
            ConvShape::same(3, 1),
            self.norm,
            self.init,
        )?;
        let mut blocks = Vec::with_capacity(self.widths.len() * self.blocks);
        let mut c_in = self.widths[0];
        for (s, &w) in self.widths.iter().enumerate() {
            let (stride, dilation) = self.stage_layout(s);
            for b in 0..self.blocks {
                let p = path / format!("stage{s}") / format!("block{b}");
                let stride = if b == 0 { stride } else { 1 };
                blocks.push(ResidualBlock::new(
                    &p, c_in, w, stride, dilation, self.norm, self.init,
                )?);
                c_in = w;
            }
        }
        let decoder = self
            .decoder
            .then(|| self.decoder_config().build_decoder(&(path / "decoder")))
            .transpose()?;
        Ok(ConvNet {
            stem,
            blocks,
            decoder,
            factor: self.downsampling_factor()?,
            label: path_label(path),
            cfg: self.clone(),
        })
    }

    /// One encoder shared by `num_tasks` tasks, each with its own decoder: the encoder
    /// ([`decoder(false)`](Self::decoder)) is built under `path/encoder` and shared;
    /// task `k`'s decoder ([`decoder_config`](Self::decoder_config)) under
    /// `task_path(path, k)/tower`, so it counts as task `k`'s parameters. The
    /// encoder's output is the shared representation (rep-grad differentiates the task
    /// losses with respect to it, as LibMTL does on its encoders' output).
    pub fn build_with_task_decoders(
        &self,
        path: &nn::Path,
        num_tasks: usize,
    ) -> Result<TaskTowers<HardSharing>> {
        let encoder = self.clone().decoder(false).build(&(path / "encoder"))?;
        let shared = HardSharing::new(encoder, num_tasks)?;
        TaskTowers::build(shared, path, &self.decoder_config())
    }
}

/// Its input width is fixed (`in_channels`): built for another channel count it is a
/// [`Error::Shape`] naming the path.
impl BackboneBuilder for ConvNetConfig {
    fn build(&self, path: &nn::Path, in_dim: i64) -> Result<Box<dyn Backbone>> {
        check_channels_at_build(path, "conv net", self.in_channels, in_dim)?;
        Ok(Box::new(ConvNetConfig::build(self, path)?))
    }
}

/// A decoder alone: per entry of `up_widths`, bilinear ×2 upsampling then conv3×3 →
/// norm → ReLU to that width; then conv3×3 → norm → ReLU to `out_channels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvDecoderConfig {
    /// Input channels (the encoder's output width).
    pub in_channels: i64,
    /// The width after each ×2 upsampling step (so `2^len` is how much it enlarges).
    pub up_widths: Vec<i64>,
    /// Output channels.
    pub out_channels: i64,
    /// The normalisation.
    #[serde(default)]
    pub norm: ConvNorm,
    /// How the convolutions start.
    #[serde(default)]
    pub init: Init,
}

impl ConvDecoderConfig {
    fn build_decoder(&self, path: &nn::Path) -> Result<Decoder> {
        let all = std::iter::once(self.in_channels)
            .chain(self.up_widths.iter().copied())
            .chain(std::iter::once(self.out_channels));
        if let Some(w) = all.clone().find(|&w| w <= 0) {
            return Err(Error::config(format!(
                "conv decoder: widths must be positive, got {w} in {self:?}"
            )));
        }
        let mut c_in = self.in_channels;
        let mut ups = Vec::with_capacity(self.up_widths.len());
        for (i, &w) in self.up_widths.iter().enumerate() {
            ups.push(ConvUnit::new(
                &(path / format!("up{i}")),
                c_in,
                w,
                ConvShape::same(3, 1),
                self.norm,
                self.init,
            )?);
            c_in = w;
        }
        let out = ConvUnit::new(
            &(path / "out"),
            c_in,
            self.out_channels,
            ConvShape::same(3, 1),
            self.norm,
            self.init,
        )?;
        Ok(Decoder {
            ups,
            out,
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            label: path_label(path),
        })
    }
}

/// Its input width is fixed (`in_channels`), as [`ConvNetConfig`]'s.
impl BackboneBuilder for ConvDecoderConfig {
    fn build(&self, path: &nn::Path, in_dim: i64) -> Result<Box<dyn Backbone>> {
        check_channels_at_build(path, "conv decoder", self.in_channels, in_dim)?;
        Ok(Box::new(self.build_decoder(path)?))
    }
}

fn path_label(path: &nn::Path) -> String {
    let name = path.components().collect::<Vec<_>>().join(".");
    if name.is_empty() {
        "<root>".into()
    } else {
        name
    }
}

fn check_channels_at_build(path: &nn::Path, what: &str, fixed: i64, in_dim: i64) -> Result<()> {
    if fixed != in_dim {
        return Err(Error::shape(
            format!("{what} at `{}` input", path_label(path)),
            format!("{in_dim} channels (what the architecture feeds it)"),
            format!("{fixed} channels (its configured input)"),
        ));
    }
    Ok(())
}

/// Checks `xs` is `[B, channels, H, W]`, naming the module and both channel counts.
fn check_image(label: &str, what: &str, xs: &Tensor, channels: i64) -> Result<(i64, i64)> {
    match xs.size()[..] {
        [_, c, h, w] if c == channels => Ok((h, w)),
        ref size => Err(Error::shape(
            format!("{what} `{label}` input"),
            format!("[batch, {channels} channels, height, width]"),
            match size {
                [_, c, _, _] => format!("{c} channels ({size:?})"),
                _ => format!("{size:?}"),
            },
        )),
    }
}

/// Stride, padding and dilation of a square convolution.
#[derive(Debug, Clone, Copy)]
struct ConvShape {
    kernel: i64,
    stride: i64,
    padding: i64,
    dilation: i64,
}

impl ConvShape {
    /// A `kernel × kernel` convolution (odd kernel) that keeps the size at stride 1.
    fn same(kernel: i64, dilation: i64) -> Self {
        ConvShape {
            kernel,
            stride: 1,
            padding: dilation * (kernel - 1) / 2,
            dilation,
        }
    }
    fn stride(self, stride: i64) -> Self {
        ConvShape { stride, ..self }
    }
}

/// A convolution, then the norm if any (no activation).
#[derive(Debug)]
struct ConvUnit {
    weight: Tensor,
    bias: Option<Tensor>,
    shape: ConvShape,
    norm: Option<BatchNorm>,
}

#[derive(Debug)]
struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
}

impl ConvUnit {
    /// Variables `conv/weight` (and `conv/bias` without a norm), `norm/…` with one.
    fn new(
        path: &nn::Path,
        c_in: i64,
        c_out: i64,
        shape: ConvShape,
        norm: ConvNorm,
        init: Init,
    ) -> Result<Self> {
        let k = shape.kernel;
        let w_shape = [c_out, c_in, k, k];
        let conv = path / "conv";
        // Weight before bias, as PyTorch draws them.
        let weight = conv.f_var("weight", &w_shape, init.weight(&w_shape)?)?;
        let (bias, norm) = match norm {
            ConvNorm::None => (
                Some(conv.f_var("bias", &[c_out], init.bias(&w_shape)?)?),
                None,
            ),
            ConvNorm::Batch => {
                // `nn::batch_norm2d` registers the running statistics as non-trainable
                // variables; its default weight draw is U(0, 1), PyTorch's is 1.
                let bn = nn::batch_norm2d(
                    path / "norm",
                    c_out,
                    nn::BatchNormConfig {
                        ws_init: nn::Init::Const(1.0),
                        bs_init: nn::Init::Const(0.0),
                        ..Default::default()
                    },
                );
                let (Some(w), Some(b)) = (bn.ws, bn.bs) else {
                    return Err(Error::config("batch norm built without its affine map"));
                };
                (
                    None,
                    Some(BatchNorm {
                        weight: w,
                        bias: b,
                        running_mean: bn.running_mean,
                        running_var: bn.running_var,
                    }),
                )
            }
        };
        Ok(ConvUnit {
            weight,
            bias,
            shape,
            norm,
        })
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let s = self.shape;
        let h = xs.f_conv2d(
            &self.weight,
            self.bias.as_ref(),
            [s.stride, s.stride],
            [s.padding, s.padding],
            [s.dilation, s.dilation],
            1,
        )?;
        Ok(match &self.norm {
            None => h,
            // Batch statistics (and a running-statistics update) in training, the
            // running statistics in evaluation.
            Some(bn) => h.f_batch_norm(
                Some(&bn.weight),
                Some(&bn.bias),
                Some(&bn.running_mean),
                Some(&bn.running_var),
                train,
                BN_MOMENTUM,
                BN_EPS,
                true,
            )?,
        })
    }
}

/// A ResNet basic block.
#[derive(Debug)]
struct ResidualBlock {
    conv1: ConvUnit,
    conv2: ConvUnit,
    /// The 1×1 projection of the input where the width or resolution changes.
    shortcut: Option<ConvUnit>,
}

impl ResidualBlock {
    fn new(
        path: &nn::Path,
        c_in: i64,
        c_out: i64,
        stride: i64,
        dilation: i64,
        norm: ConvNorm,
        init: Init,
    ) -> Result<Self> {
        let conv3 = ConvShape::same(3, dilation);
        let conv1 = ConvUnit::new(
            &(path / "conv1"),
            c_in,
            c_out,
            conv3.stride(stride),
            norm,
            init,
        )?;
        let conv2 = ConvUnit::new(&(path / "conv2"), c_out, c_out, conv3, norm, init)?;
        let shortcut = (stride != 1 || c_in != c_out)
            .then(|| {
                let one = ConvShape::same(1, 1).stride(stride);
                ConvUnit::new(&(path / "shortcut"), c_in, c_out, one, norm, init)
            })
            .transpose()?;
        Ok(ResidualBlock {
            conv1,
            conv2,
            shortcut,
        })
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let h = self.conv1.forward_t(xs, train)?.f_relu()?;
        let h = self.conv2.forward_t(&h, train)?;
        let skip = match &self.shortcut {
            Some(s) => s.forward_t(xs, train)?,
            None => xs.shallow_clone(),
        };
        Ok(h.f_add(&skip)?.f_relu()?)
    }
}

/// The upsampling decoder (inside a [`ConvNet`], or alone from
/// [`ConvDecoderConfig`]).
#[derive(Debug)]
struct Decoder {
    ups: Vec<ConvUnit>,
    out: ConvUnit,
    in_channels: i64,
    out_channels: i64,
    label: String,
}

impl Decoder {
    fn decode(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = xs.shallow_clone();
        for up in &self.ups {
            let size = h.size();
            let (height, width) = (size[2], size[3]);
            h = h.f_upsample_bilinear2d([2 * height, 2 * width], false, None, None)?;
            h = up.forward_t(&h, train)?.f_relu()?;
        }
        Ok(self.out.forward_t(&h, train)?.f_relu()?)
    }
}

impl Backbone for Decoder {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        check_image(&self.label, "conv decoder", xs, self.in_channels)?;
        self.decode(xs, train)
    }
    fn out_dim(&self) -> i64 {
        self.out_channels
    }
    fn in_dim(&self) -> Option<i64> {
        Some(self.in_channels)
    }
}

/// The encoder–decoder built by [`ConvNetConfig::build`]: `[B, C, H, W]` images to
/// `[B, C_out, H, W]` maps (`[B, w_last, H/f, W/f]` without the decoder). Its
/// [`Backbone::in_dim`] and [`Backbone::out_dim`] are channel counts.
#[derive(Debug)]
pub struct ConvNet {
    stem: ConvUnit,
    blocks: Vec<ResidualBlock>,
    decoder: Option<Decoder>,
    factor: i64,
    label: String,
    cfg: ConvNetConfig,
}

impl ConvNet {
    /// Its configuration.
    pub fn config(&self) -> &ConvNetConfig {
        &self.cfg
    }
    /// How much the encoder shrinks each side; input sides must be multiples of it.
    pub fn downsampling_factor(&self) -> i64 {
        self.factor
    }
}

impl Backbone for ConvNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let (h, w) = check_image(&self.label, "conv net", xs, self.cfg.in_channels)?;
        if h % self.factor != 0 || w % self.factor != 0 {
            return Err(Error::shape(
                format!("conv net `{}` input size", self.label),
                format!(
                    "height and width multiples of {} (the encoder's downsampling factor)",
                    self.factor
                ),
                format!("{h}×{w}"),
            ));
        }
        let mut z = self.stem.forward_t(xs, train)?.f_relu()?;
        for b in &self.blocks {
            z = b.forward_t(&z, train)?;
        }
        match &self.decoder {
            Some(d) => d.decode(&z, train),
            None => Ok(z),
        }
    }
    fn out_dim(&self) -> i64 {
        match &self.decoder {
            Some(d) => d.out_channels,
            None => self.cfg.encoder_width(),
        }
    }
    fn in_dim(&self) -> Option<i64> {
        Some(self.cfg.in_channels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Architecture, ParamGroups};
    use tch::{Device, Kind};

    const CPU: (Kind, Device) = (Kind::Float, Device::Cpu);

    #[test]
    fn layout_factor_and_names() {
        let cfg = ConvNetConfig::new(3);
        assert_eq!(cfg.downsampling_factor().unwrap(), 2);
        assert_eq!(cfg.stage_layout(2), (1, 2));
        let deep = ConvNetConfig::new(3).widths([4, 4, 4, 4]).dilated_stages(2);
        assert_eq!(deep.downsampling_factor().unwrap(), 2);
        assert_eq!(
            (
                deep.stage_layout(1),
                deep.stage_layout(2),
                deep.stage_layout(3)
            ),
            ((2, 1), (1, 2), (1, 4))
        );
        assert_eq!(deep.decoder_config().up_widths, [4]);
        let plain = ConvNetConfig::new(3).widths([4, 8, 8]).dilated_stages(0);
        assert_eq!(plain.downsampling_factor().unwrap(), 4);
        assert_eq!(plain.decoder_config().up_widths, [8, 4]);

        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ConvNetConfig::new(3)
            .widths([4, 8])
            .dilated_stages(0)
            .build(&(vs.root() / "net"))
            .unwrap();
        let vars = vs.variables();
        for name in [
            "net.stem.conv.weight",
            "net.stage1.block0.conv1.conv.weight",
            "net.stage1.block0.shortcut.norm.running_var",
            "net.decoder.up0.norm.running_mean",
            "net.decoder.out.conv.weight",
        ] {
            assert!(vars.contains_key(name), "{name} missing: {:?}", vars.keys());
        }
        // Convolutions before batch norm carry no bias.
        assert!(!vars.contains_key("net.stem.conv.bias"));
        assert_eq!(net.out_dim(), 4);
        assert_eq!(net.in_dim(), Some(3));
    }

    #[test]
    fn batch_norm_trains_and_evaluates_with_saved_statistics() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ConvNetConfig::new(2)
            .widths([4])
            .dilated_stages(0)
            .build(&vs.root())
            .unwrap();
        let x = Tensor::randn([4, 2, 4, 4], CPU) * 3.0 + 1.0;
        let mean = vs.variables()["stem.norm.running_mean"].shallow_clone();
        assert!(!mean.requires_grad());
        assert_eq!(mean.abs().sum(Kind::Float).double_value(&[]), 0.0);
        let eval0 = net.forward_t(&x, false).unwrap();
        let train = net.forward_t(&x, true).unwrap();
        // A training forward moved the running statistics...
        assert!(mean.abs().sum(Kind::Float).double_value(&[]) > 0.0);
        // ...so evaluation now differs from before it, and evaluation is deterministic
        // (no statistics update).
        let eval1 = net.forward_t(&x, false).unwrap();
        assert!(!eval1.allclose(&eval0, 1e-5, 1e-6, false));
        assert!(net.forward_t(&x, false).unwrap().equal(&eval1));
        assert!(!train.allclose(&eval1, 1e-5, 1e-6, false));
        // The statistics are saved and loaded with the weights.
        let dir = std::env::temp_dir().join(format!("mtl-convnet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("w.safetensors");
        vs.save(&file).unwrap();
        let mut other = nn::VarStore::new(Device::Cpu);
        let copy = ConvNetConfig::new(2)
            .widths([4])
            .dilated_stages(0)
            .build(&other.root())
            .unwrap();
        other.load(&file).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(copy.forward_t(&x, false).unwrap().equal(&eval1));
        // Trainable parameters exclude the statistics.
        let groups = ParamGroups::from_var_store(&vs, 1).unwrap();
        assert!(groups.shared.iter().all(|p| !p.name.contains("running")));
    }

    #[test]
    fn without_norm_every_conv_has_a_bias() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ConvNetConfig::new(1)
            .widths([3, 5])
            .norm(ConvNorm::None)
            .build(&vs.root())
            .unwrap();
        let vars = vs.variables();
        let weights = vars.keys().filter(|n| n.ends_with(".weight")).count();
        let biases = vars.keys().filter(|n| n.ends_with(".bias")).count();
        assert_eq!(weights, biases);
        assert!(vars.keys().all(|n| !n.contains("norm")));
        let x = Tensor::randn([2, 1, 6, 6], CPU);
        // Without batch norm, train and eval agree.
        assert!(net
            .forward_t(&x, true)
            .unwrap()
            .equal(&net.forward_t(&x, false).unwrap()));
    }

    #[test]
    fn typed_errors() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        for bad in [
            ConvNetConfig::new(3).widths(Vec::<i64>::new()),
            ConvNetConfig::new(3).widths([4, 0]),
            ConvNetConfig::new(0),
            ConvNetConfig::new(3).blocks(0),
            ConvNetConfig::new(3).out_channels(-1),
            ConvNetConfig::new(3).widths([4]),
        ] {
            assert!(matches!(bad.build(&root), Err(Error::Config(_))), "{bad:?}");
        }
        let err = ConvNetConfig::new(3)
            .widths([4, 0])
            .build(&root)
            .unwrap_err();
        assert!(err.to_string().contains("stage 1 has width 0"), "{err}");

        let net = ConvNetConfig::new(3)
            .widths([4, 4, 4])
            .dilated_stages(0)
            .build(&(&root / "n"))
            .unwrap();
        let err = net
            .forward_t(&Tensor::zeros([2, 5, 8, 8], CPU), false)
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("conv net `n` input"), "{msg}");
        assert!(
            msg.contains("3 channels") && msg.contains("5 channels"),
            "{msg}"
        );
        let err = net
            .forward_t(&Tensor::zeros([2, 3, 8, 10], CPU), false)
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("8×10") && msg.contains("multiples of 4"),
            "{msg}"
        );
        let err = net
            .forward_t(&Tensor::zeros([2, 48], CPU), false)
            .unwrap_err();
        assert!(matches!(err, Error::Shape { .. }), "{err}");
        let err = BackboneBuilder::build(&ConvNetConfig::new(3), &(&root / "e"), 4).unwrap_err();
        assert!(err.to_string().contains("conv net at `e`"), "{err}");
    }

    #[test]
    fn per_task_decoders_belong_to_their_task() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ConvNetConfig::new(3).widths([4, 6, 6]).out_channels(5);
        let arch = cfg
            .build_with_task_decoders(&(vs.root() / "ed"), 2)
            .unwrap();
        assert_eq!(arch.feature_dims(), [5, 5]);
        let x = Tensor::randn([2, 3, 8, 8], CPU);
        let f = arch.forward_t(&x, true).unwrap();
        assert_eq!(f.shared.as_ref().unwrap().size(), [2, 6, 4, 4]);
        assert_eq!(f.per_task[1].size(), [2, 5, 8, 8]);
        let g = ParamGroups::from_var_store(&vs, 2).unwrap();
        assert!(g.shared.iter().all(|p| p.name.starts_with("ed.encoder.")));
        for (k, own) in g.task.iter().enumerate() {
            assert!(!own.is_empty());
            let prefix = format!("ed.task{k}.tower.");
            assert!(own.iter().all(|p| p.name.starts_with(&prefix)));
        }
    }
}
