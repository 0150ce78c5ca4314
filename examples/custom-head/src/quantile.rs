//! The quantile head, its loss and its metrics, in one module as `mtl-heads` lays out
//! its own heads, and built from `mtl_heads::kit`: the linear layer, the width check,
//! the labelled-row selection, the masked mean and the running means are the kit's;
//! what is left here is what makes the task a quantile regression.
//!
//! The pinball loss: for a quantile level `τ` and residual `r = y − q̂` it is `τ·r` when
//! the prediction is too low (`r ≥ 0`) and `(τ − 1)·r` when it is too high. Its expected
//! value is smallest when `q̂` is the `τ`-quantile of `y`: at `τ = 0.9`, guessing too low
//! costs nine times more than guessing too high, so the minimiser sits above 90% of the
//! outcomes. At `τ = 0.5` it is half the absolute error, whose minimiser is the median.

use mtl_heads::kit::{self, ColumnMeans, Linear, Mean};
use mtl_heads::{Error, MetricValue, Metrics, Result, TaskHead, TaskTarget};
use tch::{nn, Kind, Tensor};

/// Checks that `quantiles` are levels a head can predict: at least one, each strictly
/// between 0 and 1, in strictly increasing order (so the predicted columns read as an
/// interval from left to right). Fails with [`Error::Config`] naming `ctx`.
pub fn check_quantiles(ctx: &str, quantiles: &[f64]) -> Result<()> {
    if quantiles.is_empty() {
        return Err(Error::config(format!("{ctx}: needs at least one quantile")));
    }
    if let Some(bad) = quantiles.iter().find(|&&q| !(q > 0.0 && q < 1.0)) {
        return Err(Error::config(format!(
            "{ctx}: quantile levels must lie strictly between 0 and 1, got {bad}"
        )));
    }
    if quantiles.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::config(format!(
            "{ctx}: quantile levels must be strictly increasing, got {quantiles:?}"
        )));
    }
    Ok(())
}

/// The labelled predictions `[n, Q]` and targets `[n, 1]` of outputs `[B, Q]` against
/// targets `[B]` or `[B, 1]`: the checks the loss and the metrics share, so the same
/// mistake gives the same typed error from either.
fn labelled(ctx: &str, pred: &Tensor, target: &TaskTarget, q: usize) -> Result<(Tensor, Tensor)> {
    let axes = ["batch", "quantiles"];
    let size = kit::output_size(ctx, pred, "quantiles", &axes, 1, Some(q as i64))?;
    kit::labelled_rows(ctx, pred, target, &[size[0], 1])
}

/// The pinball losses `[n, Q]` of labelled predictions `[n, Q]` against targets `[n, 1]`.
fn pinball_terms(pred: &Tensor, targets: &Tensor, quantiles: &[f64]) -> Result<Tensor> {
    let tau = Tensor::f_from_slice(quantiles)?
        .f_to_kind(pred.kind())?
        .f_to_device(pred.device())?;
    let residual = targets.f_sub(pred)?;
    let too_low = residual.f_mul(&tau)?;
    let too_high = residual.f_mul(&tau.f_sub_scalar(1.0)?)?;
    Ok(too_low.f_maximum(&too_high)?)
}

/// The pinball loss of predicted quantiles `pred` `[B, Q]` (column `j` at level
/// `quantiles[j]`) against targets `[B]` or `[B, 1]`, averaged over every quantile of
/// every labelled row. A batch without labelled rows gives an exact zero that is still
/// connected to `pred`.
///
/// ```
/// use custom_head::pinball_loss;
/// use mtl_heads::TaskTarget;
/// use tch::Tensor;
///
/// // Target 1; the 0.1-quantile guessed 0 (too low by 1), the 0.9-quantile 3 (too high by 2).
/// let pred = Tensor::from_slice(&[0.0f32, 3.0]).view([1, 2]);
/// let loss = pinball_loss(&pred, &TaskTarget::new(Tensor::from_slice(&[1.0f32])), &[0.1, 0.9])?;
/// assert!((loss.double_value(&[]) - (0.1 * 1.0 + 0.1 * 2.0) / 2.0).abs() < 1e-6);
/// # Ok::<(), mtl_heads::Error>(())
/// ```
pub fn pinball_loss(pred: &Tensor, target: &TaskTarget, quantiles: &[f64]) -> Result<Tensor> {
    pinball_loss_in("pinball_loss", pred, target, quantiles)
}

/// [`pinball_loss`], with errors naming `ctx`.
fn pinball_loss_in(
    ctx: &str,
    pred: &Tensor,
    target: &TaskTarget,
    quantiles: &[f64],
) -> Result<Tensor> {
    check_quantiles(ctx, quantiles)?;
    let (pred_l, targets) = labelled(ctx, pred, target, quantiles.len())?;
    kit::labelled_mean(pred, &pinball_terms(&pred_l, &targets, quantiles)?)
}

/// Predicts the quantiles `quantiles` of a real-valued target from features
/// `[B, in_dim]`: outputs `[B, Q]`, column `j` the `quantiles[j]`-quantile. Trained with
/// the [`pinball_loss`] and evaluated by [`QuantileMetrics`]. Targets are `[B]` or
/// `[B, 1]`, with a `Bool [B]` mask for missing labels.
///
/// Nothing forces the columns to stay ordered; the loss pulls each toward its own
/// quantile, which orders them once trained.
#[derive(Debug)]
pub struct QuantileHead {
    name: String,
    quantiles: Vec<f64>,
    layer: Linear,
}

impl QuantileHead {
    /// Builds the layer under `path` (variables `weight` `[Q, in_dim]` and `bias` `[Q]`,
    /// initialised as PyTorch's `nn.Linear`). Fails with [`Error::Config`] unless
    /// `in_dim >= 1` and the levels pass [`check_quantiles`]; a failed constructor
    /// creates no variable.
    pub fn new(
        path: &nn::Path,
        name: impl Into<String>,
        in_dim: i64,
        quantiles: &[f64],
    ) -> Result<Self> {
        let name = name.into();
        check_quantiles(&format!("quantile head `{name}`"), quantiles)?;
        let layer = Linear::new(path, &name, in_dim, quantiles.len() as i64)?;
        Ok(QuantileHead {
            name,
            quantiles: quantiles.to_vec(),
            layer,
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
        self.layer.in_dim()
    }

    fn forward_t(&self, features: &Tensor, _train: bool) -> Result<Tensor> {
        self.layer.forward(features)
    }

    fn loss(&self, output: &Tensor, target: &TaskTarget) -> Result<Tensor> {
        let ctx = kit::loss_context(&self.name, "pinball_loss");
        pinball_loss_in(&ctx, output, target, &self.quantiles)
    }

    fn metrics(&self) -> Box<dyn Metrics> {
        let context = kit::metrics_context(&self.name);
        Box::new(QuantileMetrics::new(&self.quantiles).with_context(context))
    }
}

/// The pinball loss (primary) and the calibration error of predicted quantiles, from
/// outputs `[B, Q]` and targets `[B]`, over every labelled row of the evaluation.
///
/// `pinball` is the mean pinball loss over rows and quantiles, lower is better. A
/// quantile at level `τ` is calibrated when a fraction `τ` of the targets falls at or
/// below it; that fraction is its coverage ([`QuantileMetrics::coverage`]), and
/// `calibration_error` is the mean over quantiles of `|coverage − τ|`, lower is better.
/// The pinball loss rewards sharp and calibrated quantiles together; the calibration
/// error says which of the two is lacking.
///
/// ```
/// use custom_head::QuantileMetrics;
/// use mtl_heads::{Metrics, TaskTarget};
/// use tch::Tensor;
///
/// let mut m = QuantileMetrics::new(&[0.5]);
/// let pred = Tensor::from_slice(&[1.0f32, 1.0, 1.0, 1.0]).view([4, 1]);
/// m.update(&pred, &TaskTarget::new(Tensor::from_slice(&[0.0f32, 0.5, 2.0, 3.0])))?;
/// // Half the absolute errors: (1 + 0.5 + 1 + 2) / 2 / 4.
/// assert_eq!(m.compute()[0].value, 0.5625);
/// assert_eq!(m.coverage(), [(0.5, 0.5)]);
/// # Ok::<(), mtl_heads::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct QuantileMetrics {
    context: String,
    quantiles: Vec<f64>,
    /// The pinball loss of every (row, quantile).
    pinball: Mean,
    /// Per quantile: whether each row's target is at or below the prediction.
    covered: ColumnMeans,
}

impl QuantileMetrics {
    /// An empty accumulator for predictions at the levels `quantiles`.
    pub fn new(quantiles: &[f64]) -> Self {
        QuantileMetrics {
            context: "quantile metrics".to_string(),
            quantiles: quantiles.to_vec(),
            pinball: Mean::new(),
            covered: ColumnMeans::new(quantiles.len()),
        }
    }

    /// Names `context` (e.g. the head) in the errors of [`Metrics::update`].
    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = context.into();
        self
    }

    /// `(level, coverage)` per quantile: the fraction of labelled targets at or below
    /// the predicted quantile. Empty before any labelled row.
    pub fn coverage(&self) -> Vec<(f64, f64)> {
        let coverage = self.covered.values().unwrap_or_default();
        self.quantiles.iter().copied().zip(coverage).collect()
    }
}

impl Metrics for QuantileMetrics {
    fn update(&mut self, output: &Tensor, target: &TaskTarget) -> Result<()> {
        let (pred, targets) = labelled(&self.context, output, target, self.quantiles.len())?;
        let pred = pred.f_detach()?.f_to_kind(Kind::Double)?;
        let targets = targets.f_to_kind(Kind::Double)?;
        let pinball = pinball_terms(&pred, &targets, &self.quantiles)?;
        let covered = targets.f_le_tensor(&pred)?;
        self.pinball.add(&pinball)?;
        self.covered.add(&covered)
    }

    fn compute(&self) -> Vec<MetricValue> {
        let Some(pinball) = self.pinball.value() else {
            return Vec::new();
        };
        let calibration = self
            .coverage()
            .iter()
            .map(|(level, coverage)| (coverage - level).abs())
            .sum::<f64>()
            / self.quantiles.len() as f64;
        vec![
            MetricValue::new("pinball", pinball, false),
            MetricValue::new("calibration_error", calibration, false),
        ]
    }

    fn reset(&mut self) {
        self.pinball.reset();
        self.covered.reset();
    }
}
