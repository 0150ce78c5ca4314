//! A shared bottom under another architecture: `inner(bottom(x))`. What MMoE over a
//! pooled Transformer needs (the encoder reads token ids and pools each sentence to a
//! row; the experts and gates then work on rows), and in general any feature extractor
//! every task shares under a mixture, a PLE or cross-stitch towers.
//!
//! The bottom's parameters are shared (built wherever the caller puts them, outside any
//! `task<k>` path). The inner architecture's shared representation and auxiliary loss
//! pass through: rep-grad differentiates at the inner representation when it has one,
//! behind which the bottom lies; an inner architecture without one (MMoE) trains the
//! bottom in parameter mode.

use super::{Architecture, Backbone, TaskFeatures};
use crate::Result;
use tch::Tensor;

/// `inner` reading what `bottom` makes of the input.
///
/// ```
/// use mtl_core::{Architecture, MlpBuilder, MmoeConfig, Pooling, SharedBottom, TransformerConfig};
/// use tch::{nn, Device, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let encoder = TransformerConfig::new(30, 8).d_model(16).heads(2).layers(1)
///     .pooling(Pooling::Mean)
///     .build(&(vs.root() / "encoder"))?;
/// let mmoe = MmoeConfig::new(16, 3, 2).build(&(vs.root() / "mmoe"), &MlpBuilder::new([8]))?;
/// let arch = SharedBottom::new(encoder, mmoe);
/// let ids = Tensor::from_slice(&[3i64, 4, 5, 0, 6, 7, 0, 0]).view([2, 4]);
/// let f = arch.forward_t(&ids, false)?;
/// assert_eq!(f.per_task[1].size(), [2, 8]);
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug)]
pub struct SharedBottom<A> {
    bottom: Box<dyn Backbone>,
    inner: A,
}

impl<A: Architecture> SharedBottom<A> {
    /// `inner` over `bottom`; `inner` must read `bottom.out_dim()`-wide input.
    pub fn new(bottom: impl Backbone + 'static, inner: A) -> Self {
        SharedBottom {
            bottom: Box::new(bottom),
            inner,
        }
    }

    /// The inner architecture.
    pub fn inner(&self) -> &A {
        &self.inner
    }
}

impl<A: Architecture> Architecture for SharedBottom<A> {
    fn num_tasks(&self) -> usize {
        self.inner.num_tasks()
    }
    fn feature_dims(&self) -> Vec<i64> {
        self.inner.feature_dims()
    }
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<TaskFeatures> {
        self.inner
            .forward_t(&self.bottom.forward_t(xs, train)?, train)
    }
    fn name(&self) -> &'static str {
        "shared_bottom"
    }
    fn start_epoch(&mut self, epoch: usize, epochs: usize) -> Result<()> {
        self.inner.start_epoch(epoch, epochs)
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        self.inner.as_any()
    }
}
