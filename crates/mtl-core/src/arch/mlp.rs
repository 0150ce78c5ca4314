//! A multi-layer perceptron, the default trunk, expert and tower.

use super::Backbone;
use crate::init::{self, Init};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// The non-linearity between layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// max(0, x)
    #[default]
    Relu,
    /// tanh(x)
    Tanh,
    /// Gaussian error linear unit.
    Gelu,
    /// x · sigmoid(x)
    Silu,
}

impl Activation {
    fn apply(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Activation::Relu => x.f_relu()?,
            Activation::Tanh => x.f_tanh()?,
            Activation::Gelu => x.f_gelu("none")?,
            Activation::Silu => x.f_silu()?,
        })
    }
}

/// Configuration of an [`Mlp`]: `[in, h1, ..., out]` widths, the activation after every
/// layer (including the last, as a trunk wants), and dropout after each activation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Layer widths, input first; at least two entries.
    pub sizes: Vec<i64>,
    /// The activation.
    pub activation: Activation,
    /// Dropout probability after each activation (0 disables it).
    pub dropout: f64,
    /// Whether the last layer is followed by the activation (true for trunks).
    pub activate_last: bool,
    /// How every layer starts (PyTorch's `nn.Linear` default unless set).
    #[serde(default)]
    pub init: Init,
    /// How the last layer starts, when it differs from `init` (e.g. zeros).
    #[serde(default)]
    pub last_init: Option<Init>,
}

impl MlpConfig {
    /// An MLP trunk with these widths, ReLU, no dropout.
    pub fn new(sizes: impl Into<Vec<i64>>) -> Self {
        MlpConfig {
            sizes: sizes.into(),
            activation: Activation::Relu,
            dropout: 0.0,
            activate_last: true,
            init: Init::default(),
            last_init: None,
        }
    }
    /// Sets the activation.
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }
    /// Sets the dropout probability.
    pub fn dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }
    /// Whether the last layer is activated.
    pub fn activate_last(mut self, yes: bool) -> Self {
        self.activate_last = yes;
        self
    }
    /// Sets how the layers are initialised.
    pub fn init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }
    /// Sets how the last layer alone is initialised.
    pub fn last_layer_init(mut self, init: Init) -> Self {
        self.last_init = Some(init);
        self
    }

    /// Builds the MLP under `path`; layers are named `0`, `1`, ...
    pub fn build(&self, path: &nn::Path) -> Result<Mlp> {
        if self.sizes.len() < 2 || self.sizes.iter().any(|&s| s <= 0) {
            return Err(Error::config(format!(
                "MLP sizes must list at least two positive widths, got {:?}",
                self.sizes
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config(format!(
                "dropout must be in [0, 1), got {}",
                self.dropout
            )));
        }
        let last = self.sizes.len() - 2;
        let layers = self
            .sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                let init = match self.last_init {
                    Some(l) if i == last => l,
                    _ => self.init,
                };
                init::linear(&(path / i), w[0], w[1], init)
            })
            .collect::<Result<_>>()?;
        Ok(Mlp {
            layers,
            cfg: self.clone(),
        })
    }
}

/// A stack of linear layers with activations and dropout.
#[derive(Debug)]
pub struct Mlp {
    layers: Vec<nn::Linear>,
    cfg: MlpConfig,
}

impl Backbone for Mlp {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let n = self.layers.len();
        let mut h = xs.shallow_clone();
        for (i, l) in self.layers.iter().enumerate() {
            // `nn::Linear`'s own forward, through the fallible call.
            h = h.f_linear(&l.ws, l.bs.as_ref())?;
            if i + 1 < n || self.cfg.activate_last {
                h = self.cfg.activation.apply(&h)?;
                if self.cfg.dropout > 0.0 {
                    h = h.f_dropout(self.cfg.dropout, train)?;
                }
            }
        }
        Ok(h)
    }
    fn out_dim(&self) -> i64 {
        *self.cfg.sizes.last().expect("checked at build")
    }
    fn in_dim(&self) -> Option<i64> {
        self.cfg.sizes.first().copied()
    }
}
