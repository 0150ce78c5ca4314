//! The collectives a data-parallel step needs, as a trait: the engine
//! (`mtl_losses::engine`) reduces losses, Jacobians and gradients through it without
//! knowing the transport. `mtl-dist` implements it on libtorch's c10d (Gloo); a test
//! may implement it in-process.

use crate::Result;
use tch::Tensor;

/// A group of `world_size` processes ("ranks") that run the same step on disjoint
/// shards of each batch. Every method is collective: every rank calls it, in the same
/// order, with tensors of the same shape and dtype, or the group hangs until its timeout
/// and then fails.
pub trait Collective {
    /// This process's rank, `0..world_size`.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn world_size(&self) -> usize;
    /// Sums `tensor` over the ranks, in place.
    fn all_reduce_sum(&self, tensor: &Tensor) -> Result<()>;
    /// Every rank's `tensor`, in rank order.
    fn all_gather(&self, tensor: &Tensor) -> Result<Vec<Tensor>>;
    /// Overwrites `tensor` with rank `root`'s, in place.
    fn broadcast(&self, tensor: &Tensor, root: usize) -> Result<()>;
    /// Returns once every rank has called it.
    fn barrier(&self) -> Result<()>;
}
