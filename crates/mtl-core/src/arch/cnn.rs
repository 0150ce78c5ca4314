//! A small convolutional [`Backbone`]: LeNet as used for MultiMNIST by Sener & Koltun,
//! "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018 (after LeCun et
//! al., "Gradient-based learning applied to document recognition", 1998).
//!
//! Forward computation, on rows of `C·H·W` floats (datasets stay two-dimensional; the
//! rows are viewed as `[B, C, H, W]` images inside):
//!
//! ```text
//! x ─ view [B,C,H,W] ─ conv k×k (C→c₁) ─ max-pool 2 ─ ReLU
//!                    ─ conv k×k (c₁→c₂) ─ max-pool 2 ─ ReLU ─ flatten ─ linear (→out) ─ ReLU
//! ```
//!
//! The defaults (`c₁ = 10`, `c₂ = 20`, `k = 5`, `out = 50`) are the paper's.

use super::Backbone;
use crate::init::{self, Init};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// Configuration of a [`Cnn`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CnnConfig {
    /// Input channels `C`.
    pub channels: i64,
    /// Input height `H`.
    pub height: i64,
    /// Input width `W`.
    pub width: i64,
    /// Output channels of the two convolutions.
    pub conv_channels: [i64; 2],
    /// Side of the square convolution kernels.
    pub kernel: i64,
    /// Width of the output features (the final linear layer).
    pub out_dim: i64,
    /// How the convolutions and the linear layer start (PyTorch's `Conv2d`/`Linear`
    /// default unless set).
    #[serde(default)]
    pub init: Init,
}

impl CnnConfig {
    /// LeNet for single-channel `height × width` images with the paper's widths.
    pub fn new(height: i64, width: i64) -> Self {
        CnnConfig {
            channels: 1,
            height,
            width,
            conv_channels: [10, 20],
            kernel: 5,
            out_dim: 50,
            init: Init::default(),
        }
    }
    /// Sets the number of input channels.
    pub fn channels(mut self, c: i64) -> Self {
        self.channels = c;
        self
    }
    /// Sets the output channels of the two convolutions.
    pub fn conv_channels(mut self, first: i64, second: i64) -> Self {
        self.conv_channels = [first, second];
        self
    }
    /// Sets the convolution kernel side.
    pub fn kernel(mut self, k: i64) -> Self {
        self.kernel = k;
        self
    }
    /// Sets the width of the output features.
    pub fn out_dim(mut self, n: i64) -> Self {
        self.out_dim = n;
        self
    }

    /// Sets how the layers are initialised.
    pub fn init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

    /// The width of an input row, `C·H·W`.
    pub fn in_dim(&self) -> i64 {
        self.channels * self.height * self.width
    }

    /// The spatial size after the two conv/pool stages, or `None` if the image is too
    /// small for the kernel.
    fn final_spatial(&self) -> Option<(i64, i64)> {
        let stage = |s: i64| {
            let conv = s - self.kernel + 1;
            (conv >= 2).then_some(conv / 2)
        };
        let h = stage(stage(self.height)?)?;
        let w = stage(stage(self.width)?)?;
        Some((h, w))
    }

    /// Builds the network under `path` (`conv1`, `conv2`, `fc`).
    pub fn build(&self, path: &nn::Path) -> Result<Cnn> {
        let all_positive = [
            self.channels,
            self.height,
            self.width,
            self.conv_channels[0],
            self.conv_channels[1],
            self.kernel,
            self.out_dim,
        ]
        .iter()
        .all(|&v| v > 0);
        if !all_positive {
            return Err(Error::config(format!(
                "CNN sizes must all be positive, got {self:?}"
            )));
        }
        let (h, w) = self.final_spatial().ok_or_else(|| {
            Error::config(format!(
                "CNN input {}×{} is too small for two {k}×{k} convolutions each followed by \
                 a 2×2 max-pool",
                self.height,
                self.width,
                k = self.kernel
            ))
        })?;
        let [c1, c2] = self.conv_channels;
        let conv = |name: &str, c_in, c_out| {
            init::conv2d(
                &(path / name),
                c_in,
                c_out,
                self.kernel,
                Default::default(),
                self.init,
            )
        };
        let conv1 = conv("conv1", self.channels, c1)?;
        let conv2 = conv("conv2", c1, c2)?;
        let flat = c2 * h * w;
        let fc = init::linear(&(path / "fc"), flat, self.out_dim, self.init)?;
        Ok(Cnn {
            conv1,
            conv2,
            fc,
            cfg: self.clone(),
        })
    }
}

/// The LeNet backbone built by [`CnnConfig::build`].
#[derive(Debug)]
pub struct Cnn {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    fc: nn::Linear,
    cfg: CnnConfig,
}

impl Cnn {
    /// Its configuration.
    pub fn config(&self) -> &CnnConfig {
        &self.cfg
    }
}

impl Backbone for Cnn {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Result<Tensor> {
        let c = &self.cfg;
        // `nn::Conv2D`'s forward through the fallible call, with the configuration
        // `build` gives both layers (libtorch's default: stride 1, no padding, dilation
        // 1, one group); then a 2×2 max-pool, as `max_pool2d_default(2)`.
        let conv = |x: &Tensor, layer: &nn::Conv2D| {
            x.f_conv2d(&layer.ws, layer.bs.as_ref(), [1, 1], [0, 0], [1, 1], 1)
        };
        let pool = |x: &Tensor| x.f_max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
        let h = xs.f_view([-1, c.channels, c.height, c.width])?;
        let h = pool(&conv(&h, &self.conv1)?)?.f_relu()?;
        let h = pool(&conv(&h, &self.conv2)?)?.f_relu()?;
        Ok(h.f_flatten(1, -1)?
            .f_linear(&self.fc.ws, self.fc.bs.as_ref())?
            .f_relu()?)
    }
    fn out_dim(&self) -> i64 {
        self.cfg.out_dim
    }
    fn in_dim(&self) -> Option<i64> {
        Some(self.cfg.in_dim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn lenet_on_multimnist_sized_rows() {
        // Tests draw from libtorch's process-wide generator (initialisation, randn):
        // the lock keeps parallel tests from taking each other's seeded draws.
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let cnn = CnnConfig::new(28, 28).build(&(vs.root() / "cnn")).unwrap();
        assert_eq!(cnn.in_dim(), Some(784));
        let x = Tensor::randn([3, 784], (Kind::Float, Device::Cpu));
        let y = cnn.forward_t(&x, true).unwrap();
        assert_eq!(y.size(), vec![3, 50]);
        // ReLU output.
        assert!(y.min().double_value(&[]) >= 0.0);
        // 28 → 24 → 12 → 8 → 4: the flattened width is 20·4·4.
        let names = vs.variables();
        assert_eq!(names["cnn.fc.weight"].size(), vec![50, 320]);
        assert_eq!(names["cnn.conv1.weight"].size(), vec![10, 1, 5, 5]);
        assert_eq!(names.len(), 6);
    }

    #[test]
    fn configurable_and_validated() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let cnn = CnnConfig::new(12, 10)
            .channels(3)
            .conv_channels(4, 6)
            .kernel(3)
            .out_dim(7)
            .build(&vs.root())
            .unwrap();
        let x = Tensor::randn([2, 3 * 12 * 10], (Kind::Float, Device::Cpu));
        assert_eq!(cnn.forward_t(&x, false).unwrap().size(), vec![2, 7]);
        // Rows that are not whole images are libtorch's error, returned.
        let ragged = Tensor::zeros([2, 100], (Kind::Float, Device::Cpu));
        assert!(matches!(
            cnn.forward_t(&ragged, false),
            Err(Error::Torch(_))
        ));
        assert!(CnnConfig::new(8, 8).build(&vs.root()).is_err());
        assert!(CnnConfig::new(28, 28).out_dim(0).build(&vs.root()).is_err());
    }
}
