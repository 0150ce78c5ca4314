//! The head of a single-label classification task with two or more classes.

use crate::layer::{check_count, Dense};
use crate::loss::cross_entropy_in;
use crate::{ClassificationMetrics, Metrics, TaskHead};
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
    layer: Dense,
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
        let layer = Dense::new(path, &name, in_dim, classes)?;
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
        let ctx = format!("head `{}` cross_entropy", self.name);
        cross_entropy_in(&ctx, output, target, Some(self.classes))
    }

    fn metrics(&self) -> Box<dyn Metrics> {
        let context = format!("head `{}` metrics", self.name);
        Box::new(ClassificationMetrics::new(self.classes).with_context(context))
    }
}
