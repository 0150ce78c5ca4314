//! Sharing architectures: how one input becomes per-task features.
//!
//! An [`Architecture`] owns the shared (and, for soft sharing or mixtures of experts,
//! task-specific) layers that come before the task heads. The trainer only sees
//! [`TaskFeatures`], so any architecture trains with any heads and any weighting.

mod asp_mtl;
mod bottom;
mod builder;
mod cgc;
mod cnn;
mod conv_net;
mod cross_stitch;
mod dselect_k;
mod embedding_input;
mod gate;
mod hard_sharing;
mod ltb;
mod mlp;
mod mmoe;
mod mtan;
mod multi_input;
mod ple;
mod soft_sharing;
mod towers;
mod transformer;

pub use asp_mtl::{gradient_reversal, AspMtl, AspMtlConfig};
pub use bottom::SharedBottom;
pub use builder::{BackboneBuilder, MlpBuilder};
pub use cgc::{Cgc, CgcConfig};
pub use cnn::{Cnn, CnnConfig};
pub use conv_net::{ConvDecoderConfig, ConvNet, ConvNetConfig, ConvNorm};
pub use cross_stitch::{CrossStitch, CrossStitchConfig};
pub use dselect_k::{smooth_step, DSelectK, DSelectKConfig};
pub use embedding_input::{EmbeddingInput, EmbeddingInputConfig, EmbeddingTable};
pub use gate::SoftmaxGate;
pub use hard_sharing::HardSharing;
pub use ltb::{BranchTree, Ltb, LtbConfig};
pub use mlp::{Activation, Mlp, MlpConfig};
pub use mmoe::{Mmoe, MmoeConfig};
pub use mtan::{Mtan, MtanConfig, MtanOutput};
pub use multi_input::MultiInput;
pub use ple::{Ple, PleConfig};
pub use soft_sharing::{SoftSharing, SoftSharingConfig};
pub use towers::TaskTowers;
pub use transformer::{
    Pooling, TransformerConfig, TransformerEncoder, TransformerTower, TransformerTowerConfig,
};

use crate::Result;
use tch::Tensor;

/// A module that maps a batch to a batch of feature vectors `[B, d]` or feature maps
/// `[B, C, H, W]` ([`ConvNet`]): a trunk, an expert, a task tower. Architectures are
/// generic over it, so users can plug their own. Widths count along
/// [`channel_axis`]: the channels of a feature map.
pub trait Backbone: std::fmt::Debug + Send {
    /// Forward pass; `train` switches dropout and similar layers on. A libtorch failure
    /// (an input of the wrong shape, say) is an [`Error::Torch`](crate::Error::Torch),
    /// as in every other forward.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor>;
    /// The width of the output features.
    fn out_dim(&self) -> i64;
    /// The input width this module expects, when it has a fixed one (for shape checks).
    fn in_dim(&self) -> Option<i64> {
        None
    }
}

/// The result of an architecture's forward pass.
#[derive(Debug)]
pub struct TaskFeatures {
    /// The representation every task reads, when the architecture has one (hard
    /// sharing's trunk output). Gradient aggregation in "rep-grad" mode differentiates
    /// the task losses with respect to this tensor instead of the shared parameters.
    pub shared: Option<Tensor>,
    /// `per_task[k]`: the features head `k` reads.
    pub per_task: Vec<Tensor>,
    /// A scalar the architecture adds to the training objective (soft sharing's L2 tie
    /// between towers, an adversarial or orthogonality term), if it has one. The trainer
    /// adds it to the combined loss, outside the task weighting.
    pub auxiliary_loss: Option<Tensor>,
}

impl TaskFeatures {
    /// Features for architectures with no auxiliary loss.
    pub fn new(shared: Option<Tensor>, per_task: Vec<Tensor>) -> Self {
        TaskFeatures {
            shared,
            per_task,
            auxiliary_loss: None,
        }
    }
}

/// A multi-task sharing architecture.
pub trait Architecture: std::fmt::Debug + Send {
    /// The number of tasks it produces features for.
    fn num_tasks(&self) -> usize;
    /// `feature_dims()[k]`: the width of task `k`'s features.
    fn feature_dims(&self) -> Vec<i64>;
    /// Forward pass. Fails with a typed error naming the layer when `xs` has the wrong
    /// shape.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<TaskFeatures>;
    /// A short name for reports (`"hps"`, `"mmoe"`...).
    fn name(&self) -> &'static str;
    /// Task `task`'s path alone, for a batch of that task's own rows (which, with
    /// task-specific inputs, may have that task's own width): `per_task` holds the one
    /// tensor head `task` reads. The default runs [`forward_t`](Self::forward_t) and
    /// keeps task `task`; architectures with task-specific inputs override it.
    fn forward_task(&self, xs: &Tensor, task: usize, train: bool) -> Result<TaskFeatures> {
        let mut all = self.forward_t(xs, train)?;
        if task >= all.per_task.len() {
            return Err(crate::Error::config(format!(
                "{}: task index {task} out of range 0..{}",
                self.name(),
                all.per_task.len()
            )));
        }
        let picked = all.per_task.swap_remove(task);
        Ok(TaskFeatures {
            per_task: vec![picked],
            ..all
        })
    }
    /// Called by the trainer at the start of every epoch `epoch` (0-based) of a run of
    /// `epochs`, before its first step (and again at the epoch a resumed run starts
    /// at), for architectures whose behaviour follows a schedule: LTB's Gumbel-softmax
    /// temperature, warm-up and branch fixing ([`Ltb`]). What it sets must depend on
    /// `(epoch, epochs)` and the weights only, so a resumed run recomputes it. Nothing
    /// by default.
    fn start_epoch(&mut self, _epoch: usize, _epochs: usize) -> Result<()> {
        Ok(())
    }
    /// The architecture as [`Any`](std::any::Any), so code holding a boxed one (a
    /// model's) can reach its own methods by downcasting (LTB's derived tree); `None`
    /// by default. Wrappers ([`SharedBottom`], [`TaskTowers`]) answer for the architecture they wrap.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// The axis of a tensor of rank `rank` that holds its width: 1 for feature maps
/// (`[B, C, H, W]`, `[B, C, D, H, W]`: PyTorch's channels-first layout, where the width
/// is the channel count), the last for everything else (`[B, d]`; sequences
/// `[B, T, d]`). [`Backbone::in_dim`], [`Backbone::out_dim`] and
/// [`Architecture::feature_dims`] count along it.
pub fn channel_axis(rank: usize) -> usize {
    if rank >= 4 {
        1
    } else {
        rank.saturating_sub(1)
    }
}

/// Checks that `xs` is `[batch, width]`-shaped with the given width, or, for a feature
/// map, `[batch, width, …]` (see [`channel_axis`]).
pub fn check_input_width(context: &str, xs: &Tensor, width: i64) -> Result<()> {
    let size = xs.size();
    if size.len() < 2 || size[channel_axis(size.len())] != width {
        let expected = if size.len() >= 4 {
            format!("[batch, {width} channels, …]")
        } else {
            format!("[batch, {width}]")
        };
        return Err(crate::Error::shape(context, expected, format!("{size:?}")));
    }
    Ok(())
}

/// What a gate reads: a feature map `[B, C, …]` averaged over its spatial axes to
/// `[B, C]` (global average pooling, so gates stay `C → E` linear maps whatever the
/// resolution); any other input unchanged.
pub(crate) fn pooled(xs: &Tensor) -> Result<Tensor> {
    let rank = xs.dim() as i64;
    if rank < 4 {
        return Ok(xs.shallow_clone());
    }
    let spatial: Vec<i64> = (2..rank).collect();
    Ok(xs.f_mean_dim(spatial.as_slice(), false, xs.kind())?)
}

/// `xs` as rows over its width: a feature map `[B, C, …]` becomes `[B·…, C]` (one row
/// per position); any other input unchanged.
pub(crate) fn channel_rows(xs: &Tensor) -> Result<Tensor> {
    let size = xs.size();
    if size.len() < 4 {
        return Ok(xs.shallow_clone());
    }
    Ok(xs.f_movedim(1, -1)?.f_reshape([-1, size[1]])?)
}

/// A linear layer applied along the width: on feature maps over the channel axis (a
/// 1×1 convolution with the same weights), on anything else over the last axis.
pub(crate) fn channel_linear(xs: &Tensor, layer: &tch::nn::Linear) -> Result<Tensor> {
    if xs.dim() < 4 {
        return Ok(xs.f_linear(&layer.ws, layer.bs.as_ref())?);
    }
    Ok(xs
        .f_movedim(1, -1)?
        .f_linear(&layer.ws, layer.bs.as_ref())?
        .f_movedim(-1, 1)?)
}
