//! The head of a binary (yes/no) task, and its metrics. Its loss, binary cross-entropy,
//! is shared with the multi-label head and lives in [`crate::loss`].

use crate::kit::{binary_rows, head_context, loss_context, metrics_context, Collected, Linear};
use crate::loss::bce_with_logits_in;
use crate::metrics::roc_auc;
use crate::{MetricValue, Metrics, Prediction, TaskHead};
use mtl_core::{Error, Result, TaskTarget};
use tch::{nn, Kind, Tensor};

/// A linear layer from features to one logit, trained with binary cross-entropy on the
/// logit and evaluated by accuracy at probability 0.5 (primary) and ROC-AUC.
///
/// Outputs are logits `[B]`; targets are 0/1 values `[B]` (soft targets in `[0, 1]`
/// train as they are and are rounded for the metrics).
///
/// ```
/// use mtl_core::TaskTarget;
/// use mtl_heads::{BinaryHead, TaskHead};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let head = BinaryHead::new(&(vs.root() / "task1" / "head"), "churn", 8)?;
/// let logits = head.forward_t(&Tensor::randn([4, 8], (Kind::Float, Device::Cpu)), false)?;
/// assert_eq!(logits.size(), [4]);
/// let target = TaskTarget::new(Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0]));
/// assert!(head.loss(&logits, &target)?.double_value(&[]) > 0.0);
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug)]
pub struct BinaryHead {
    name: String,
    layer: Linear,
}

impl BinaryHead {
    /// Builds the head's layer under `path` (variables `weight`, `bias`). Fails with
    /// [`Error::Config`](mtl_core::Error::Config) unless `in_dim >= 1`.
    pub fn new(path: &nn::Path, name: impl Into<String>, in_dim: i64) -> Result<Self> {
        let name = name.into();
        let layer = Linear::new(path, &name, in_dim, 1)?;
        Ok(BinaryHead { name, layer })
    }
}

impl TaskHead for BinaryHead {
    fn name(&self) -> &str {
        &self.name
    }

    fn in_dim(&self) -> i64 {
        self.layer.in_dim()
    }

    fn forward_t(&self, features: &Tensor, _train: bool) -> Result<Tensor> {
        let logits = self.layer.forward(features)?;
        Ok(logits.f_squeeze_dim(1)?)
    }

    fn loss(&self, output: &Tensor, target: &TaskTarget) -> Result<Tensor> {
        let ctx = loss_context(&self.name, "bce_with_logits");
        bce_with_logits_in(&ctx, output, target)
    }

    fn metrics(&self) -> Box<dyn Metrics> {
        Box::new(BinaryMetrics::new().with_context(metrics_context(&self.name)))
    }

    fn predict(&self, output: &Tensor) -> Result<Prediction> {
        if output.dim() != 1 {
            return Err(Error::shape(
                head_context(&self.name),
                "[batch] logits",
                format!("{:?}", output.size()),
            ));
        }
        Ok(Prediction::Positive(output.f_sigmoid()?))
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
    seen: Collected<f64, bool>,
}

impl Default for BinaryMetrics {
    fn default() -> Self {
        BinaryMetrics {
            context: "binary metrics".to_string(),
            seen: Collected::new(),
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
        let (probabilities, labels) = (self.seen.pred(), self.seen.truth());
        let hits = probabilities
            .iter()
            .zip(labels)
            .filter(|(&p, &l)| (p > 0.5) == l)
            .count();
        let accuracy = hits as f64 / labels.len() as f64;
        let mut values = vec![MetricValue::new("accuracy", accuracy, true)];
        if let Some(auc) = roc_auc(probabilities, labels) {
            values.push(MetricValue::new("roc_auc", auc, true));
        }
        values
    }

    fn reset(&mut self) {
        self.seen.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtl_core::Error;
    use tch::Device;

    fn value(values: &[MetricValue], name: &str) -> Option<f64> {
        values.iter().find(|v| v.name == name).map(|v| v.value)
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
}
