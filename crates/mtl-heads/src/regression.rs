//! The head of a regression task with one or more real-valued outputs, its losses
//! (MSE, L1, Huber, Gaussian NLL) and its metrics.

use crate::kit::{
    check_count, describe, head_context, is_float, loss_context, metrics_context, over_labelled,
    regression_rows, zero_loss, Collected, Linear,
};
use crate::metrics::scores;
use crate::{MetricValue, Metrics, Prediction, TaskHead};
use mtl_core::{Error, Result, TaskTarget};
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Reduction, Tensor};

/// The Huber threshold `δ` of [`RegressionLoss::huber`], as `torch.nn.HuberLoss`.
pub const DEFAULT_HUBER_DELTA: f64 = 1.0;

fn default_huber_delta() -> f64 {
    DEFAULT_HUBER_DELTA
}

/// The training loss of a [`RegressionHead`].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
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

/// Mean squared error of `pred` `[B]` or `[B, m]` against targets of the same shape,
/// averaged over every output of every labelled row.
pub fn mse(pred: &Tensor, target: &TaskTarget) -> Result<Tensor> {
    mse_in("mse", pred, target, None)
}

/// Mean absolute error of `pred` `[B]` or `[B, m]` against targets of the same shape,
/// averaged over every output of every labelled row.
pub fn l1(pred: &Tensor, target: &TaskTarget) -> Result<Tensor> {
    l1_in("l1", pred, target, None)
}

/// The Huber loss of `pred` `[B]` or `[B, m]` against targets of the same shape,
/// averaged over every output of every labelled row: `½·r²` for residuals `|r| ≤ delta`
/// and `delta·(|r| − ½·delta)` beyond, as `torch.nn.HuberLoss(delta)` — quadratic near
/// the target, linear (like L1) for outliers. Fails with
/// [`Error::Config`] unless `delta` is positive and finite.
///
/// ```
/// use mtl_core::TaskTarget;
/// use tch::Tensor;
///
/// let pred = Tensor::from_slice(&[0.5f32, 3.0]);
/// let target = TaskTarget::new(Tensor::from_slice(&[0.0f32, 0.0]));
/// let loss = mtl_heads::huber(&pred, &target, 1.0)?;
/// assert!((loss.double_value(&[]) - (0.125 + 2.5) / 2.0).abs() < 1e-6);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn huber(pred: &Tensor, target: &TaskTarget, delta: f64) -> Result<Tensor> {
    huber_in("huber", pred, target, None, delta)
}

/// The Gaussian negative log-likelihood of targets `[B, m]` (or `[B]` when `m = 1`)
/// under predicted means and log-variances `pred` `[B, 2·m]` (the `m` means first, then
/// the `m` log-variances), averaged over every output of every labelled row.
///
/// Each output contributes `½·(log σ² + (y − μ)² / σ²)` with `σ² = exp(log-variance)`
/// clamped from below at [`GAUSSIAN_NLL_EPS`] — `torch.nn.GaussianNLLLoss` with
/// `full=false` and its default `eps`, including its gradient, which flows through the
/// clamp as if it were not there. Predicting the log-variance keeps the variance
/// positive without a constraint.
///
/// ```
/// use mtl_core::TaskTarget;
/// use tch::Tensor;
///
/// // Mean 1 and variance e² (log-variance 2) for a target of 3.
/// let pred = Tensor::from_slice(&[1.0f32, 2.0]).view([1, 2]);
/// let target = TaskTarget::new(Tensor::from_slice(&[3.0f32]));
/// let loss = mtl_heads::gaussian_nll(&pred, &target)?;
/// let expected = 0.5 * (2.0 + 4.0 / 2f64.exp());
/// assert!((loss.double_value(&[]) - expected).abs() < 1e-6);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn gaussian_nll(pred: &Tensor, target: &TaskTarget) -> Result<Tensor> {
    gaussian_nll_in("gaussian_nll", pred, target, None)
}

/// The smallest variance [`gaussian_nll`] divides by, as `torch.nn.GaussianNLLLoss`.
pub const GAUSSIAN_NLL_EPS: f64 = 1e-6;

/// [`mse`], with errors naming `ctx` and the width checked against `outputs`.
fn mse_in(ctx: &str, pred: &Tensor, target: &TaskTarget, outputs: Option<i64>) -> Result<Tensor> {
    let rows = regression_rows(ctx, pred, target, outputs)?;
    over_labelled(pred, rows, |pred_l, targets| {
        pred_l.f_mse_loss(targets, Reduction::Mean)
    })
}

/// [`l1`], with errors naming `ctx` and the width checked against `outputs`.
fn l1_in(ctx: &str, pred: &Tensor, target: &TaskTarget, outputs: Option<i64>) -> Result<Tensor> {
    let rows = regression_rows(ctx, pred, target, outputs)?;
    over_labelled(pred, rows, |pred_l, targets| {
        pred_l.f_l1_loss(targets, Reduction::Mean)
    })
}

/// [`huber`], with errors naming `ctx` and the width checked against `outputs`.
fn huber_in(
    ctx: &str,
    pred: &Tensor,
    target: &TaskTarget,
    outputs: Option<i64>,
    delta: f64,
) -> Result<Tensor> {
    check_huber_delta(ctx, delta)?;
    let rows = regression_rows(ctx, pred, target, outputs)?;
    over_labelled(pred, rows, |pred_l, targets| {
        pred_l.f_huber_loss(targets, Reduction::Mean, delta)
    })
}

/// Fails with [`Error::Config`] naming `ctx` unless `delta` is positive and finite.
fn check_huber_delta(ctx: &str, delta: f64) -> Result<()> {
    if delta > 0.0 && delta.is_finite() {
        return Ok(());
    }
    Err(Error::config(format!(
        "{ctx}: the Huber delta must be positive and finite, got {delta}"
    )))
}

/// Splits `pred` `[B, 2·m]` into its means and log-variances, each `[B, m]`, checking
/// `m == outputs` when given.
fn mean_and_log_variance(
    ctx: &str,
    pred: &Tensor,
    outputs: Option<i64>,
) -> Result<(Tensor, Tensor)> {
    let size = pred.size();
    let fits = size.len() == 2
        && size[1] >= 2
        && size[1] % 2 == 0
        && outputs.is_none_or(|m| size[1] == 2 * m);
    if !is_float(pred.kind()) || !fits {
        let width = outputs.map_or("2·outputs".to_string(), |m| (2 * m).to_string());
        return Err(Error::shape(
            ctx,
            format!("floating [batch, {width}] means and log-variances"),
            describe(pred),
        ));
    }
    let m = size[1] / 2;
    Ok((pred.f_narrow(1, 0, m)?, pred.f_narrow(1, m, m)?))
}

/// [`gaussian_nll`], with errors naming `ctx` and the width checked against `outputs`
/// (the number of targets, half the prediction's width).
fn gaussian_nll_in(
    ctx: &str,
    pred: &Tensor,
    target: &TaskTarget,
    outputs: Option<i64>,
) -> Result<Tensor> {
    let (mean, log_variance) = mean_and_log_variance(ctx, pred, outputs)?;
    let m = Some(mean.size()[1]);
    let (mean_l, targets) = regression_rows(ctx, &mean, target, m)?;
    // The same rows again, to pick the labelled log-variances (and check them).
    let (log_variance_l, _) = regression_rows(ctx, &log_variance, target, m)?;
    if targets.numel() == 0 {
        return zero_loss(pred);
    }
    let variance = log_variance_l.f_exp()?;
    // Clamp the value only, as PyTorch does under `no_grad`: the gradient still flows.
    let floor = variance
        .f_clamp_min(GAUSSIAN_NLL_EPS)?
        .f_sub(&variance)?
        .f_detach()?;
    let variance = variance.f_add(&floor)?;
    let squared = mean_l.f_sub(&targets)?.f_square()?;
    let per_output = variance.f_log()?.f_add(&squared.f_div(&variance)?)?;
    Ok(per_output.f_mean(None::<Kind>)?.f_mul_scalar(0.5)?)
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
    layer: Linear,
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
        let layer = Linear::new(path, &name, in_dim, loss.columns(outputs))?;
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
        mean_and_log_variance(&head_context(&self.name), output, Some(self.outputs))
    }

    fn check_width(&self, output: &Tensor) -> Result<()> {
        let size = output.size();
        if size.len() == 2 && size[1] == self.outputs {
            return Ok(());
        }
        Err(Error::shape(
            head_context(&self.name),
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
        let ctx = |loss: &str| loss_context(&self.name, loss);
        match self.loss {
            RegressionLoss::Mse => mse_in(&ctx("mse"), output, target, outputs),
            RegressionLoss::L1 => l1_in(&ctx("l1"), output, target, outputs),
            RegressionLoss::Huber { delta } => {
                huber_in(&ctx("huber"), output, target, outputs, delta)
            }
            RegressionLoss::GaussianNll => {
                gaussian_nll_in(&ctx("gaussian_nll"), output, target, outputs)
            }
        }
    }

    fn metrics(&self) -> Box<dyn Metrics> {
        let metrics =
            RegressionMetrics::new(self.outputs).with_context(metrics_context(&self.name));
        match self.loss {
            RegressionLoss::GaussianNll => Box::new(metrics.with_log_variance()),
            _ => Box::new(metrics),
        }
    }

    fn predict(&self, output: &Tensor) -> Result<Prediction> {
        Ok(Prediction::Values(self.mean(output)?))
    }
}

/// Mean squared error (primary) and mean absolute error of a regression task with
/// `outputs` outputs, averaged over every output of every labelled row, from
/// predictions `[B, outputs]` and targets `[B, outputs]` (or `[B]` for one output).
///
/// Under [`RegressionLoss::GaussianNll`] the outputs are means and log-variances; see
/// [`RegressionMetrics::with_log_variance`].
#[derive(Debug, Clone)]
pub struct RegressionMetrics {
    context: String,
    outputs: i64,
    /// Whether outputs are `[B, 2·outputs]` means and log-variances.
    log_variance: bool,
    seen: Collected<f64, f64>,
}

impl RegressionMetrics {
    /// An empty accumulator for predictions `[B, outputs]`. With `outputs < 1` every
    /// update is a shape error.
    pub fn new(outputs: i64) -> Self {
        RegressionMetrics {
            context: "regression metrics".to_string(),
            outputs,
            log_variance: false,
            seen: Collected::new(),
        }
    }

    /// Reads outputs `[B, 2·outputs]`, the means first and then the log-variances, as
    /// [`RegressionLoss::GaussianNll`] predicts them, and scores the means.
    pub fn with_log_variance(mut self) -> Self {
        self.log_variance = true;
        self
    }

    /// Names `context` (e.g. the head) in the errors of [`Metrics::update`].
    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = context.into();
        self
    }
}

impl Metrics for RegressionMetrics {
    fn update(&mut self, output: &Tensor, target: &TaskTarget) -> Result<()> {
        let outputs = Some(self.outputs);
        let mean = if self.log_variance {
            mean_and_log_variance(&self.context, output, outputs)?.0
        } else {
            output.shallow_clone()
        };
        let (pred, truth) = regression_rows(&self.context, &mean, target, outputs)?;
        self.seen.push(
            &pred.f_to_kind(Kind::Double)?,
            &truth.f_to_kind(Kind::Double)?,
        )
    }

    fn compute(&self) -> Vec<MetricValue> {
        if self.seen.is_empty() {
            return Vec::new();
        }
        let (pred, truth) = (self.seen.pred(), self.seen.truth());
        vec![
            MetricValue::new("mse", scores::mse(pred, truth), false),
            MetricValue::new("mae", scores::mae(pred, truth), false),
        ]
    }

    fn reset(&mut self) {
        self.seen.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn value(values: &[MetricValue], name: &str) -> Option<f64> {
        values.iter().find(|v| v.name == name).map(|v| v.value)
    }

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
        let misspelt = serde_json::from_str::<RegressionLoss>(r#"{"huber":{"delt":2.0}}"#);
        assert!(misspelt.unwrap_err().to_string().contains("delt"));
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

    #[test]
    fn regression_over_every_output() {
        let mut m = RegressionMetrics::new(2);
        let pred = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([2, 2]);
        let truth = Tensor::from_slice(&[1.0f32, 0.0, 3.0, 7.0]).view([2, 2]);
        m.update(&pred, &TaskTarget::new(truth)).unwrap();
        let values = m.compute();
        assert_eq!(values[0].name, "mse");
        assert!(!values[0].higher_is_better);
        assert_eq!(values[0].value, (4.0 + 9.0) / 4.0);
        assert_eq!(value(&values, "mae"), Some(5.0 / 4.0));

        let one = RegressionMetrics::new(1).update(
            &pred,
            &TaskTarget::new(Tensor::zeros([2, 2], (Kind::Float, Device::Cpu))),
        );
        assert!(matches!(one, Err(Error::Shape { .. })));
    }
}
