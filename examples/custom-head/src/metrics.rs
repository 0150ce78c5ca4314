//! The metrics of a quantile-regression task.

use crate::pinball::pinball_terms;
use crate::rows::labelled_rows;
use mtl_heads::{MetricValue, Metrics, Result, TaskTarget};
use tch::{Device, Kind, Tensor};

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
    pinball_sum: f64,
    /// Per quantile: the labelled rows whose target is at or below the prediction.
    covered: Vec<u64>,
    rows: u64,
}

impl QuantileMetrics {
    /// An empty accumulator for predictions at the levels `quantiles`.
    pub fn new(quantiles: &[f64]) -> Self {
        QuantileMetrics {
            context: "quantile metrics".to_string(),
            quantiles: quantiles.to_vec(),
            pinball_sum: 0.0,
            covered: vec![0; quantiles.len()],
            rows: 0,
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
        if self.rows == 0 {
            return Vec::new();
        }
        let n = self.rows as f64;
        self.quantiles
            .iter()
            .zip(&self.covered)
            .map(|(&q, &c)| (q, c as f64 / n))
            .collect()
    }
}

impl Metrics for QuantileMetrics {
    fn update(&mut self, output: &Tensor, target: &TaskTarget) -> Result<()> {
        let (pred, targets) = labelled_rows(&self.context, output, target, self.quantiles.len())?;
        let pred = pred.f_detach()?.f_to_kind(Kind::Double)?;
        let targets = targets.f_to_kind(Kind::Double)?;
        let pinball = pinball_terms(&pred, &targets, &self.quantiles)?
            .f_sum(Kind::Double)?
            .f_double_value(&[])?;
        let covered = targets
            .f_le_tensor(&pred)?
            .f_sum_dim_intlist(0, false, Kind::Int64)?
            .f_to_device(Device::Cpu)?;
        let covered = Vec::<i64>::try_from(&covered)?;
        self.pinball_sum += pinball;
        for (total, c) in self.covered.iter_mut().zip(covered) {
            *total += c as u64;
        }
        self.rows += targets.size()[0] as u64;
        Ok(())
    }

    fn compute(&self) -> Vec<MetricValue> {
        if self.rows == 0 || self.quantiles.is_empty() {
            return Vec::new();
        }
        let q = self.quantiles.len() as f64;
        let calibration = self
            .coverage()
            .iter()
            .map(|(level, coverage)| (coverage - level).abs())
            .sum::<f64>()
            / q;
        vec![
            MetricValue {
                name: "pinball".to_string(),
                value: self.pinball_sum / (self.rows as f64 * q),
                higher_is_better: false,
            },
            MetricValue {
                name: "calibration_error".to_string(),
                value: calibration,
                higher_is_better: false,
            },
        ]
    }

    fn reset(&mut self) {
        self.pinball_sum = 0.0;
        self.covered.iter_mut().for_each(|c| *c = 0);
        self.rows = 0;
    }
}
