//! The head of a binary (yes/no) task.

use crate::layer::Dense;
use crate::loss::bce_with_logits_in;
use crate::{BinaryMetrics, Metrics, TaskHead};
use mtl_core::{Result, TaskTarget};
use tch::{nn, Tensor};

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
    layer: Dense,
}

impl BinaryHead {
    /// Builds the head's layer under `path` (variables `weight`, `bias`). Fails with
    /// [`Error::Config`](mtl_core::Error::Config) unless `in_dim >= 1`.
    pub fn new(path: &nn::Path, name: impl Into<String>, in_dim: i64) -> Result<Self> {
        let name = name.into();
        let layer = Dense::new(path, &name, in_dim, 1)?;
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
        let ctx = format!("head `{}` bce_with_logits", self.name);
        bce_with_logits_in(&ctx, output, target)
    }

    fn metrics(&self) -> Box<dyn Metrics> {
        let context = format!("head `{}` metrics", self.name);
        Box::new(BinaryMetrics::new().with_context(context))
    }
}
