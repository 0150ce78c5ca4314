//! The [`Metrics`] accumulators of the built-in heads.
//!
//! Each update validates the whole batch before keeping anything, so a batch that fails
//! leaves the accumulator as it was.

use super::scores::{accuracy, macro_f1, mae, mse, roc_auc};
use crate::rows::{binary_rows, class_rows, regression_rows};
use crate::{MetricValue, Metrics};
use mtl_core::{Result, TaskTarget};
use tch::{Device, Kind, Tensor};

fn metric(name: &str, value: f64, higher_is_better: bool) -> MetricValue {
    MetricValue {
        name: name.to_string(),
        value,
        higher_is_better,
    }
}

/// A 1-D tensor's values, on the CPU, as `T`.
fn to_vec<T: tch::kind::Element + Copy>(t: &Tensor) -> Result<Vec<T>> {
    let flat = t.f_detach()?.f_flatten(0, -1)?.f_to_device(Device::Cpu)?;
    Ok(Vec::<T>::try_from(&flat)?)
}

/// The prediction and the truth of every labelled row (or output) seen, in order: what
/// the row-wise accumulators keep until they compute their metrics.
#[derive(Debug, Clone, Default)]
struct Seen<P, T> {
    pred: Vec<P>,
    truth: Vec<T>,
}

impl<P: tch::kind::Element + Copy, T: tch::kind::Element + Copy> Seen<P, T> {
    /// Keeps one batch's predictions and truths, both read before either is kept so that
    /// a failed read keeps nothing.
    fn push(&mut self, pred: &Tensor, truth: &Tensor) -> Result<()> {
        let pred = to_vec::<P>(pred)?;
        let truth = to_vec::<T>(truth)?;
        self.pred.extend(pred);
        self.truth.extend(truth);
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.truth.is_empty()
    }

    fn clear(&mut self) {
        self.pred.clear();
        self.truth.clear();
    }
}

/// Accuracy (primary) and macro-F1 of a `classes`-way classification task, from logits
/// `[B, classes]` and integer class targets `[B]`.
///
/// ```
/// use mtl_core::TaskTarget;
/// use mtl_heads::{ClassificationMetrics, Metrics};
/// use tch::Tensor;
///
/// let mut m = ClassificationMetrics::new(2);
/// let logits = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0, 0.0, 1.0]).view([3, 2]);
/// m.update(&logits, &TaskTarget::new(Tensor::from_slice(&[0i64, 1, 0])))?;
/// let values = m.compute();
/// assert_eq!((values[0].name.as_str(), values[0].value), ("accuracy", 2.0 / 3.0));
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClassificationMetrics {
    context: String,
    classes: i64,
    seen: Seen<i64, i64>,
}

impl ClassificationMetrics {
    /// An empty accumulator. With `classes < 1` every update is a shape error.
    pub fn new(classes: i64) -> Self {
        ClassificationMetrics {
            context: "classification metrics".to_string(),
            classes,
            seen: Seen::default(),
        }
    }

    /// Names `context` (e.g. the head) in the errors of [`Metrics::update`].
    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = context.into();
        self
    }
}

impl Metrics for ClassificationMetrics {
    fn update(&mut self, output: &Tensor, target: &TaskTarget) -> Result<()> {
        let (logits, labels) = class_rows(&self.context, output, target, Some(self.classes))?;
        self.seen.push(&logits.f_argmax(1, false)?, &labels)
    }

    fn compute(&self) -> Vec<MetricValue> {
        if self.seen.is_empty() {
            return Vec::new();
        }
        let Seen { pred, truth } = &self.seen;
        vec![
            metric("accuracy", accuracy(pred, truth), true),
            metric("macro_f1", macro_f1(pred, truth, self.classes), true),
        ]
    }

    fn reset(&mut self) {
        self.seen.clear();
    }
}

/// Accuracy (primary) and ROC-AUC of a binary task, from logits `[B]` or `[B, 1]` and 0/1
/// targets `[B]`.
///
/// A row is predicted positive when its probability `sigmoid(logit)` exceeds 0.5, and is
/// truly positive when its target is at least 0.5 (so soft targets are rounded). The AUC
/// is left out while only one class has been seen, since it is undefined there.
#[derive(Debug, Clone)]
pub struct BinaryMetrics {
    context: String,
    /// The probability of each labelled row, and whether it is truly positive.
    seen: Seen<f64, bool>,
}

impl Default for BinaryMetrics {
    fn default() -> Self {
        BinaryMetrics {
            context: "binary metrics".to_string(),
            seen: Seen::default(),
        }
    }
}

impl BinaryMetrics {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Names `context` (e.g. the head) in the errors of [`Metrics::update`].
    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = context.into();
        self
    }
}

impl Metrics for BinaryMetrics {
    fn update(&mut self, output: &Tensor, target: &TaskTarget) -> Result<()> {
        let (logits, targets) = binary_rows(&self.context, output, target)?;
        let probabilities = logits.f_to_kind(Kind::Double)?.f_sigmoid()?;
        self.seen.push(&probabilities, &targets.f_ge(0.5)?)
    }

    fn compute(&self) -> Vec<MetricValue> {
        if self.seen.is_empty() {
            return Vec::new();
        }
        let Seen {
            pred: probabilities,
            truth: labels,
        } = &self.seen;
        let hits = probabilities
            .iter()
            .zip(labels)
            .filter(|(&p, &l)| (p > 0.5) == l)
            .count();
        let mut values = vec![metric("accuracy", hits as f64 / labels.len() as f64, true)];
        if let Some(auc) = roc_auc(probabilities, labels) {
            values.push(metric("roc_auc", auc, true));
        }
        values
    }

    fn reset(&mut self) {
        self.seen.clear();
    }
}

/// Mean squared error (primary) and mean absolute error of a regression task with
/// `outputs` outputs, averaged over every output of every labelled row.
#[derive(Debug, Clone)]
pub struct RegressionMetrics {
    context: String,
    outputs: i64,
    seen: Seen<f64, f64>,
}

impl RegressionMetrics {
    /// An empty accumulator for predictions `[B, outputs]`. With `outputs < 1` every
    /// update is a shape error.
    pub fn new(outputs: i64) -> Self {
        RegressionMetrics {
            context: "regression metrics".to_string(),
            outputs,
            seen: Seen::default(),
        }
    }

    /// Names `context` (e.g. the head) in the errors of [`Metrics::update`].
    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = context.into();
        self
    }
}

impl Metrics for RegressionMetrics {
    fn update(&mut self, output: &Tensor, target: &TaskTarget) -> Result<()> {
        let (pred, truth) = regression_rows(&self.context, output, target, Some(self.outputs))?;
        self.seen.push(
            &pred.f_to_kind(Kind::Double)?,
            &truth.f_to_kind(Kind::Double)?,
        )
    }

    fn compute(&self) -> Vec<MetricValue> {
        if self.seen.is_empty() {
            return Vec::new();
        }
        let Seen { pred, truth } = &self.seen;
        vec![
            metric("mse", mse(pred, truth), false),
            metric("mae", mae(pred, truth), false),
        ]
    }

    fn reset(&mut self) {
        self.seen.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtl_core::Error;

    fn value(values: &[MetricValue], name: &str) -> Option<f64> {
        values.iter().find(|v| v.name == name).map(|v| v.value)
    }

    #[test]
    fn classification_over_batches_and_masks() {
        let mut m = ClassificationMetrics::new(3);
        assert!(m.compute().is_empty());
        // Predictions 0, 1, 2 (argmax of each row).
        let logits =
            Tensor::from_slice(&[5.0f32, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 5.0]).view([3, 3]);
        m.update(&logits, &TaskTarget::new(Tensor::from_slice(&[0i64, 0, 2])))
            .unwrap();
        // Only the first row is labelled; the garbage label of the second is ignored.
        let masked = TaskTarget::masked(
            Tensor::from_slice(&[1i64, 99, 0]),
            Tensor::from_slice(&[true, false, false]),
        );
        m.update(&logits, &masked).unwrap();
        // pred [0, 1, 2, 0], truth [0, 0, 2, 1].
        let values = m.compute();
        assert_eq!(values[0].name, "accuracy");
        assert_eq!(values[0].value, 0.5);
        let f1 = (2.0 / 4.0 + 0.0 + 1.0) / 3.0;
        assert!((value(&values, "macro_f1").unwrap() - f1).abs() < 1e-12);

        let err = m
            .update(&logits, &TaskTarget::new(Tensor::from_slice(&[0i64, 3, 0])))
            .unwrap_err();
        assert!(matches!(err, Error::LabelOutOfRange { row: 1, .. }));
        assert_eq!(m.compute(), values, "a failed update keeps nothing");
        m.reset();
        assert!(m.compute().is_empty());
    }

    #[test]
    fn binary_leaves_out_an_undefined_auc() {
        let mut m = BinaryMetrics::new().with_context("head `churn` metrics");
        let logits = Tensor::from_slice(&[2.0f32, -1.0, 0.5]);
        m.update(
            &logits,
            &TaskTarget::new(Tensor::from_slice(&[1.0f32, 1.0, 1.0])),
        )
        .unwrap();
        let values = m.compute();
        assert_eq!(values.len(), 1);
        assert_eq!(value(&values, "accuracy"), Some(2.0 / 3.0));

        let negatives = TaskTarget::masked(
            Tensor::from_slice(&[0.0f32, f32::NAN, 0.0]),
            Tensor::from_slice(&[true, false, false]),
        );
        m.update(&logits, &negatives).unwrap();
        // Positives score σ(2), σ(-1), σ(0.5); the negative σ(2) ties the first.
        let values = m.compute();
        assert_eq!(value(&values, "accuracy"), Some(0.5));
        assert_eq!(value(&values, "roc_auc"), Some((0.5 + 0.0 + 0.0) / 3.0));

        let err = m
            .update(
                &Tensor::zeros([3, 2], (Kind::Float, Device::Cpu)),
                &negatives,
            )
            .unwrap_err();
        assert!(matches!(&err, Error::Shape { context, .. } if context == "head `churn` metrics"));
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
