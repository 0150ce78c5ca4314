//! The head of a single-label classification task with two or more classes, and its
//! metrics. Its loss, softmax cross-entropy, is shared with the segmentation and
//! sequence heads and lives in [`crate::loss`].

use crate::head::class_probabilities;
use crate::kit::{
    check_count, class_rows, head_context, loss_context, metrics_context, Collected, Linear,
};
use crate::loss::cross_entropy_in;
use crate::metrics::{accuracy, macro_f1};
use crate::{MetricValue, Metrics, Prediction, TaskHead};
use mtl_core::{Result, TaskTarget};
use tch::{nn, Tensor};

/// A linear layer from features to one logit per class, trained with softmax
/// cross-entropy and evaluated by accuracy (primary) and macro-F1.
///
/// Outputs are logits `[B, classes]`; targets are integer class indices `[B]`.
///
/// ```
/// use mtl_core::TaskTarget;
/// use mtl_heads::{ClassificationHead, TaskHead};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let head = ClassificationHead::new(&(vs.root() / "task0" / "head"), "region", 8, 3)?;
/// let logits = head.forward_t(&Tensor::randn([4, 8], (Kind::Float, Device::Cpu)), true)?;
/// assert_eq!(logits.size(), [4, 3]);
/// let loss = head.loss(&logits, &TaskTarget::new(Tensor::from_slice(&[0i64, 2, 1, 1])))?;
/// assert_eq!(loss.size(), Vec::<i64>::new());
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug)]
pub struct ClassificationHead {
    name: String,
    classes: i64,
    layer: Linear,
}

impl ClassificationHead {
    /// Builds the head's layer under `path` (variables `weight`, `bias`). Fails with
    /// [`Error::Config`](mtl_core::Error::Config) unless `in_dim >= 1` and `classes >= 2`.
    pub fn new(
        path: &nn::Path,
        name: impl Into<String>,
        in_dim: i64,
        classes: i64,
    ) -> Result<Self> {
        let name = name.into();
        check_count("classification", &name, "classes", classes, 2)?;
        let layer = Linear::new(path, &name, in_dim, classes)?;
        Ok(ClassificationHead {
            name,
            classes,
            layer,
        })
    }

    /// The number of classes.
    pub fn classes(&self) -> i64 {
        self.classes
    }
}

impl TaskHead for ClassificationHead {
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
        let ctx = loss_context(&self.name, "cross_entropy");
        cross_entropy_in(&ctx, output, target, Some(self.classes))
    }

    fn metrics(&self) -> Box<dyn Metrics> {
        let context = metrics_context(&self.name);
        Box::new(ClassificationMetrics::new(self.classes).with_context(context))
    }

    fn predict(&self, output: &Tensor) -> Result<Prediction> {
        let context = head_context(&self.name);
        Ok(Prediction::Classes(class_probabilities(
            &context,
            output,
            self.classes,
        )?))
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
    seen: Collected<i64, i64>,
}

impl ClassificationMetrics {
    /// An empty accumulator. With `classes < 1` every update is a shape error.
    pub fn new(classes: i64) -> Self {
        ClassificationMetrics {
            context: "classification metrics".to_string(),
            classes,
            seen: Collected::new(),
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
        let (pred, truth) = (self.seen.pred(), self.seen.truth());
        vec![
            MetricValue::new("accuracy", accuracy(pred, truth), true),
            MetricValue::new("macro_f1", macro_f1(pred, truth, self.classes), true),
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
}
