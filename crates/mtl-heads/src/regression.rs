//! The head of a regression task with one or more real-valued outputs.

use crate::layer::{check_count, Dense};
use crate::loss::{
    check_huber_delta, gaussian_nll_in, huber_in, l1_in, mean_and_log_variance, mse_in,
};
use crate::{MetricValue, Metrics, RegressionMetrics, TaskHead};
use mtl_core::{Error, Result, TaskTarget};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// The Huber threshold `δ` of [`RegressionLoss::huber`], as `torch.nn.HuberLoss`.
pub const DEFAULT_HUBER_DELTA: f64 = 1.0;

fn default_huber_delta() -> f64 {
    DEFAULT_HUBER_DELTA
}

/// The training loss of a [`RegressionHead`].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegressionLoss {
    /// Mean squared error: the Gaussian negative log-likelihood up to constants.
    #[default]
    Mse,
    /// Mean absolute error: less swayed by outlying targets.
    L1,
    /// Huber loss ([`crate::huber`]): squared error for residuals up to `delta`, linear
    /// beyond, so outliers pull like L1 while small errors train like MSE.
    Huber {
        /// Where the loss turns from quadratic to linear; positive and finite.
        #[serde(default = "default_huber_delta")]
        delta: f64,
    },
    /// Gaussian negative log-likelihood ([`crate::gaussian_nll`]) with a learned
    /// variance per output: the head predicts a mean and a log-variance for each
    /// target, `2·outputs` columns, means first.
    GaussianNll,
}

impl RegressionLoss {
    /// [`RegressionLoss::Huber`] with δ = [`DEFAULT_HUBER_DELTA`].
    pub fn huber() -> Self {
        RegressionLoss::Huber {
            delta: DEFAULT_HUBER_DELTA,
        }
    }

    /// The number of columns a head with `outputs` targets predicts under this loss:
    /// `2·outputs` for [`RegressionLoss::GaussianNll`], else `outputs`.
    pub fn columns(self, outputs: i64) -> i64 {
        match self {
            RegressionLoss::GaussianNll => 2 * outputs,
            _ => outputs,
        }
    }
}

/// A linear layer from features to `outputs` real values, trained with the chosen
/// [`RegressionLoss`] and evaluated by MSE (primary) and MAE, both lower-is-better.
///
/// Outputs are `[B, outputs]` — `[B, 2·outputs]` under
/// [`RegressionLoss::GaussianNll`], the means first and then the log-variances, and the
/// metrics score the means (see [`RegressionHead::mean`]). Targets are
/// `[B, outputs]`, or `[B]` for one output.
///
/// ```
/// use mtl_core::TaskTarget;
/// use mtl_heads::{RegressionHead, RegressionLoss, TaskHead};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let path = vs.root() / "task2" / "head";
/// let head = RegressionHead::new(&path, "price", 8, 1, RegressionLoss::L1)?;
/// let pred = head.forward_t(&Tensor::randn([4, 8], (Kind::Float, Device::Cpu)), false)?;
/// assert_eq!(pred.size(), [4, 1]);
/// let target = TaskTarget::new(Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]));
/// assert!(head.loss(&pred, &target)?.double_value(&[]) >= 0.0);
///
/// // With a learned variance the head predicts a mean and a log-variance per output.
/// let path = vs.root() / "task3" / "head";
/// let head = RegressionHead::new(&path, "yield", 8, 1, RegressionLoss::GaussianNll)?;
/// let pred = head.forward_t(&Tensor::randn([4, 8], (Kind::Float, Device::Cpu)), false)?;
/// assert_eq!(pred.size(), [4, 2]);
/// assert_eq!(head.mean(&pred)?.size(), [4, 1]);
/// assert!(head.loss(&pred, &target)?.double_value(&[]).is_finite());
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug)]
pub struct RegressionHead {
    name: String,
    outputs: i64,
    loss: RegressionLoss,
    layer: Dense,
}

impl RegressionHead {
    /// Builds the head's layer under `path` (variables `weight`, `bias`). Fails with
    /// [`Error::Config`] unless `in_dim >= 1`, `outputs >= 1` and a Huber `delta` is
    /// positive and finite.
    pub fn new(
        path: &nn::Path,
        name: impl Into<String>,
        in_dim: i64,
        outputs: i64,
        loss: RegressionLoss,
    ) -> Result<Self> {
        let name = name.into();
        check_count("regression", &name, "output", outputs, 1)?;
        if let RegressionLoss::Huber { delta } = loss {
            check_huber_delta(&format!("regression head `{name}`"), delta)?;
        }
        let layer = Dense::new(path, &name, in_dim, loss.columns(outputs))?;
        Ok(RegressionHead {
            name,
            outputs,
            loss,
            layer,
        })
    }

    /// The number of targets.
    pub fn outputs(&self) -> i64 {
        self.outputs
    }

    /// The training loss.
    pub fn regression_loss(&self) -> RegressionLoss {
        self.loss
    }

    /// The predicted means `[B, outputs]` of a head output: the output itself, or its
    /// first half under [`RegressionLoss::GaussianNll`].
    pub fn mean(&self, output: &Tensor) -> Result<Tensor> {
        match self.loss {
            RegressionLoss::GaussianNll => Ok(self.split(output)?.0),
            _ => {
                self.check_width(output)?;
                Ok(output.shallow_clone())
            }
        }
    }

    /// The predicted log-variances `[B, outputs]` of a head output under
    /// [`RegressionLoss::GaussianNll`] (its second half); `None` under the other losses,
    /// which predict no variance.
    pub fn log_variance(&self, output: &Tensor) -> Result<Option<Tensor>> {
        match self.loss {
            RegressionLoss::GaussianNll => Ok(Some(self.split(output)?.1)),
            _ => {
                self.check_width(output)?;
                Ok(None)
            }
        }
    }

    fn split(&self, output: &Tensor) -> Result<(Tensor, Tensor)> {
        mean_and_log_variance(&format!("head `{}`", self.name), output, Some(self.outputs))
    }

    fn check_width(&self, output: &Tensor) -> Result<()> {
        let size = output.size();
        if size.len() == 2 && size[1] == self.outputs {
            return Ok(());
        }
        Err(Error::shape(
            format!("head `{}`", self.name),
            format!("[batch, {}] predictions", self.outputs),
            format!("{size:?}"),
        ))
    }
}

impl TaskHead for RegressionHead {
    fn name(&self) -> &str {
        &self.name
    }

    fn in_dim(&self) -> i64 {
        self.layer.in_dim()
    }

    fn forward_t(&self, features: &Tensor, _train: bool) -> Result<Tensor> {
        self.layer.forward(features)
    }

    fn loss(&self, output: &Tensor, target: &TaskTarget) -> Result<Tensor> {
        let outputs = Some(self.outputs);
        let name = &self.name;
        match self.loss {
            RegressionLoss::Mse => mse_in(&format!("head `{name}` mse"), output, target, outputs),
            RegressionLoss::L1 => l1_in(&format!("head `{name}` l1"), output, target, outputs),
            RegressionLoss::Huber { delta } => huber_in(
                &format!("head `{name}` huber"),
                output,
                target,
                outputs,
                delta,
            ),
            RegressionLoss::GaussianNll => gaussian_nll_in(
                &format!("head `{name}` gaussian_nll"),
                output,
                target,
                outputs,
            ),
        }
    }

    fn metrics(&self) -> Box<dyn Metrics> {
        let context = format!("head `{}` metrics", self.name);
        let metrics = RegressionMetrics::new(self.outputs).with_context(context.clone());
        match self.loss {
            RegressionLoss::GaussianNll => Box::new(MeanMetrics {
                context,
                outputs: self.outputs,
                inner: metrics,
            }),
            _ => Box::new(metrics),
        }
    }
}

/// The regression metrics of the means of `[B, 2·outputs]` mean-and-log-variance
/// outputs.
#[derive(Debug)]
struct MeanMetrics {
    context: String,
    outputs: i64,
    inner: RegressionMetrics,
}

impl Metrics for MeanMetrics {
    fn update(&mut self, output: &Tensor, target: &TaskTarget) -> Result<()> {
        let (mean, _) = mean_and_log_variance(&self.context, output, Some(self.outputs))?;
        self.inner.update(&mean, target)
    }

    fn compute(&self) -> Vec<MetricValue> {
        self.inner.compute()
    }

    fn reset(&mut self) {
        self.inner.reset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn losses_read_and_write_as_before() {
        for (loss, json) in [
            (RegressionLoss::Mse, r#""mse""#),
            (RegressionLoss::L1, r#""l1""#),
            (RegressionLoss::GaussianNll, r#""gaussian_nll""#),
            (
                RegressionLoss::Huber { delta: 0.5 },
                r#"{"huber":{"delta":0.5}}"#,
            ),
        ] {
            assert_eq!(serde_json::to_string(&loss).unwrap(), json);
            assert_eq!(serde_json::from_str::<RegressionLoss>(json).unwrap(), loss);
        }
        let default: RegressionLoss = serde_json::from_str(r#"{"huber":{}}"#).unwrap();
        assert_eq!(default, RegressionLoss::huber());
    }

    #[test]
    fn gaussian_metrics_score_the_means() {
        let vs = nn::VarStore::new(Device::Cpu);
        let head = RegressionHead::new(&vs.root(), "y", 3, 2, RegressionLoss::GaussianNll).unwrap();
        // Means (1, 2) and (3, 4); the log-variances must not matter.
        let output = Tensor::from_slice(&[1.0f32, 2.0, 9.0, 9.0, 3.0, 4.0, -9.0, 0.0]).view([2, 4]);
        let target = TaskTarget::new(Tensor::from_slice(&[1.0f32, 0.0, 3.0, 7.0]).view([2, 2]));
        let mut metrics = head.metrics();
        metrics.update(&output, &target).unwrap();
        let values = metrics.compute();
        assert_eq!(
            (values[0].name.as_str(), values[0].value),
            ("mse", 13.0 / 4.0)
        );
        assert_eq!(values[1].value, 5.0 / 4.0);
        let narrow = Tensor::zeros([2, 2], (Kind::Float, Device::Cpu));
        let err = metrics.update(&narrow, &target).unwrap_err();
        assert!(err.to_string().contains("head `y` metrics"), "{err}");
        assert_eq!(
            head.log_variance(&output)
                .unwrap()
                .unwrap()
                .double_value(&[1, 0]),
            -9.0
        );
        assert!(head.mean(&narrow).is_err());
    }
}
