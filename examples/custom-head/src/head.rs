//! The quantile-regression head: one linear layer from features to one value per
//! quantile level.

use crate::pinball::{check_quantiles, pinball_loss_in};
use crate::QuantileMetrics;
use mtl_heads::{Error, Metrics, Result, TaskHead, TaskTarget};
use tch::{nn, Tensor};

/// Predicts the quantiles `quantiles` of a real-valued target from features
/// `[B, in_dim]`: outputs `[B, Q]`, column `j` the `quantiles[j]`-quantile. Trained with
/// the [`pinball_loss`](crate::pinball_loss) and evaluated by [`QuantileMetrics`].
/// Targets are `[B]` or `[B, 1]`, with a `Bool [B]` mask for missing labels.
///
/// Nothing forces the columns to stay ordered; the loss pulls each toward its own
/// quantile, which orders them once trained.
#[derive(Debug)]
pub struct QuantileHead {
    name: String,
    quantiles: Vec<f64>,
    weight: Tensor,
    bias: Tensor,
}

impl QuantileHead {
    /// Builds the layer under `path` (variables `weight` `[Q, in_dim]` and `bias` `[Q]`,
    /// initialised as PyTorch's `nn.Linear`). Fails with [`Error::Config`] unless
    /// `in_dim >= 1` and the levels pass [`check_quantiles`](crate::check_quantiles);
    /// a failed constructor creates no variable.
    pub fn new(
        path: &nn::Path,
        name: impl Into<String>,
        in_dim: i64,
        quantiles: &[f64],
    ) -> Result<Self> {
        let name = name.into();
        let ctx = format!("quantile head `{name}`");
        check_quantiles(&ctx, quantiles)?;
        if in_dim < 1 {
            return Err(Error::config(format!(
                "{ctx} needs a positive feature width, got {in_dim}"
            )));
        }
        let q = quantiles.len() as i64;
        let weight = path.f_var("weight", &[q, in_dim], nn::init::DEFAULT_KAIMING_UNIFORM)?;
        let bound = 1.0 / (in_dim as f64).sqrt();
        let bias = path.f_var(
            "bias",
            &[q],
            nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
        )?;
        Ok(QuantileHead {
            name,
            quantiles: quantiles.to_vec(),
            weight,
            bias,
        })
    }

    /// The quantile levels, in column order.
    pub fn quantiles(&self) -> &[f64] {
        &self.quantiles
    }
}

impl TaskHead for QuantileHead {
    fn name(&self) -> &str {
        &self.name
    }

    fn in_dim(&self) -> i64 {
        self.weight.size()[1]
    }

    fn forward_t(&self, features: &Tensor, _train: bool) -> Result<Tensor> {
        let size = features.size();
        if size.len() != 2 || size[1] != self.in_dim() {
            return Err(Error::shape(
                format!("head `{}`", self.name),
                format!("features [batch, {}]", self.in_dim()),
                format!("{:?} {:?}", features.kind(), size),
            ));
        }
        Ok(features.f_linear(&self.weight, Some(&self.bias))?)
    }

    fn loss(&self, output: &Tensor, target: &TaskTarget) -> Result<Tensor> {
        let ctx = format!("head `{}` pinball_loss", self.name);
        pinball_loss_in(&ctx, output, target, &self.quantiles)
    }

    fn metrics(&self) -> Box<dyn Metrics> {
        let metrics = QuantileMetrics::new(&self.quantiles)
            .with_context(format!("head `{}` metrics", self.name));
        Box::new(metrics)
    }
}
