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

/// Refuses to go on unless every rank of `group` holds the same `fingerprint` of `what`
/// (its configuration, build, task count, model shape, data): the error names the
/// ranks that differ. Call it at start, before any training collective.
pub fn agree(group: &dyn Collective, what: &str, fingerprint: u64) -> Result<()> {
    // Two i64 halves: a u64 does not travel as one, and an f64 would round.
    let mine = Tensor::from_slice(&[
        (fingerprint >> 32) as i64,
        (fingerprint & 0xffff_ffff) as i64,
    ]);
    let values = group
        .all_gather(&mine)?
        .iter()
        .map(|t| {
            let v = Vec::<i64>::try_from(t)?;
            Ok(((v[0] as u64) << 32) | v[1] as u64)
        })
        .collect::<Result<Vec<u64>>>()?;
    let differing: Vec<String> = values
        .iter()
        .enumerate()
        .filter(|(_, v)| **v != values[0])
        .map(|(r, v)| format!("rank {r} has {v:016x}"))
        .collect();
    if differing.is_empty() {
        return Ok(());
    }
    Err(crate::Error::Distributed {
        rank: group.rank(),
        world_size: group.world_size(),
        message: format!(
            "the ranks disagree on {what}: rank 0 has {:016x}, {}; start every rank with the \
             same configuration, data and build",
            values[0],
            differing.join(", ")
        ),
    })
}

/// A shared group: the trainer owns what it is given, and the caller keeps using the
/// group (for its own collectives, or for the next fit).
impl<C: Collective + ?Sized> Collective for std::sync::Arc<C> {
    fn rank(&self) -> usize {
        (**self).rank()
    }
    fn world_size(&self) -> usize {
        (**self).world_size()
    }
    fn all_reduce_sum(&self, tensor: &Tensor) -> Result<()> {
        (**self).all_reduce_sum(tensor)
    }
    fn all_gather(&self, tensor: &Tensor) -> Result<Vec<Tensor>> {
        (**self).all_gather(tensor)
    }
    fn broadcast(&self, tensor: &Tensor, root: usize) -> Result<()> {
        (**self).broadcast(tensor, root)
    }
    fn barrier(&self) -> Result<()> {
        (**self).barrier()
    }
}
