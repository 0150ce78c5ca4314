//! The engine's data-parallel stages: what is reduced at the seam so that every method
//! computes, on every rank, the update one process would compute on the union of the
//! ranks' batches (the *exact* mode).
//!
//! Rank r holds n_k^r labelled entries of task k and its mean loss ℓ_k^r; the union's
//! loss is ℓ_k = Σ_r s_k^r ℓ_k^r with shares s_k^r = n_k^r / Σ_r n_k^r. Each rank
//! replaces its loss by a *globalized* one whose value is ℓ_k and whose gradient is
//! W·s_k^r ∇ℓ_k^r (W ranks), so that the mean over the ranks of any gradient taken
//! through it is the union's:
//!
//! - loss-level methods see the union's loss values (identical state on every rank);
//!   their combined loss is backpropagated locally and the gradients are averaged, as
//!   PyTorch's DDP does — exact for any weighting whose combined loss depends on the
//!   tasks' losses through their values (EW, UW, DWA, FAMO, …), not for those that
//!   differentiate through per-task gradient norms (GradNorm), which see local norms;
//! - gradient-level methods in parameter mode average the K × d Jacobian (K·d values a
//!   step) and aggregate the same matrix on every rank;
//! - in rep-grad mode the union's representation is the ranks' representations
//!   stacked, so its Jacobian is their column blocks side by side (divided by W): it is
//!   all-gathered, aggregated on every rank, and each rank backpropagates its own block.
//!
//! Whatever a rank's own graph leaves in `.grad()` (task heads, the method's learnable
//! parameters, an architecture's auxiliary term) is then averaged over the ranks. Every
//! 50 steps (and at step 0) the ranks' task weights are compared.

use mtl_core::{params, Collective, Error, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// How a gradient-level method is applied under data parallelism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataParallelMode {
    /// The update one process would compute on the union of the ranks' batches: the
    /// K × d Jacobian is averaged over the ranks (K·d values a step) and aggregated on
    /// every rank.
    #[default]
    Exact,
    /// Each rank aggregates its own block's Jacobian and the d-vectors are averaged
    /// (d values a step, K times fewer). Biased: a nonlinear aggregator of an average
    /// is not the average of aggregators (PCGrad's projections, MGDA's min-norm point
    /// of each rank's few rows differ from the union's), and a stateful one (Nash-MTL,
    /// GradVac, Aligned-MTL's EMA…) keeps a different state on each rank. Loss-level
    /// methods are exact in either mode.
    Local,
}

/// The union's loss values and this rank's gradient scale W·s_k^r per task.
pub(crate) struct Shares {
    pub values: Vec<f64>,
    pub scale: Vec<f64>,
}

/// Reduces the local loss values and labelled counts (one all-reduce of 2K numbers).
pub(crate) fn reduce_losses(
    group: &dyn Collective,
    local: &[f64],
    counts: &[f64],
) -> Result<Shares> {
    let k = local.len();
    let mut buf: Vec<f64> = local.iter().zip(counts).map(|(v, n)| v * n).collect();
    buf.extend_from_slice(counts);
    let t = Tensor::from_slice(&buf);
    group.all_reduce_sum(&t)?;
    let sums = Vec::<f64>::try_from(&t)?;
    let w = group.world_size() as f64;
    let (mut values, mut scale) = (Vec::with_capacity(k), Vec::with_capacity(k));
    for t in 0..k {
        let total = sums[k + t];
        if total > 0.0 {
            values.push(sums[t] / total);
            scale.push(w * counts[t] / total);
        } else {
            values.push(0.0);
            scale.push(0.0);
        }
    }
    Ok(Shares { values, scale })
}

/// The loss whose value is the union's and whose gradient is `scale` × the local one.
pub(crate) fn globalize(loss: &Tensor, value: f64, scale: f64) -> Result<Tensor> {
    let local = loss.f_mul_scalar(scale)?;
    let offset = local.f_detach()?.f_neg()?.f_add_scalar(value)?;
    Ok(local.f_add(&offset)?)
}

/// The union's K × d Jacobian from each rank's globalized one: their mean.
pub(crate) fn reduce_jacobian(group: &dyn Collective, jac: &Tensor) -> Result<Tensor> {
    let out = jac.f_detach()?.copy();
    group.all_reduce_sum(&out)?;
    Ok(out.f_div_scalar(group.world_size() as f64)?)
}

/// The union's rep-grad Jacobian: the ranks' K × m blocks side by side, over W.
pub(crate) fn gather_representation(group: &dyn Collective, jac: &Tensor) -> Result<Tensor> {
    let blocks = group.all_gather(&jac.f_detach()?)?;
    if let Some((r, b)) = blocks
        .iter()
        .enumerate()
        .find(|(_, b)| b.size() != jac.size())
    {
        return Err(Error::Distributed {
            rank: group.rank(),
            world_size: group.world_size(),
            message: format!(
                "rep-grad Jacobians differ in shape: this rank's is {:?}, rank {r}'s {:?}; \
                 every rank needs a batch of the same size",
                jac.size(),
                b.size()
            ),
        });
    }
    Ok(Tensor::f_cat(&blocks, 1)?.f_div_scalar(group.world_size() as f64)?)
}

/// This rank's block of the union's rep-grad gradient, scaled so that averaging the
/// parameters' gradients afterwards sums the ranks' contributions.
pub(crate) fn own_block(group: &dyn Collective, gradient: &Tensor, m: i64) -> Result<Tensor> {
    let block = gradient.f_narrow(0, group.rank() as i64 * m, m)?;
    Ok(block.f_mul_scalar(group.world_size() as f64)?)
}

/// Averages the `.grad()` of `params` over the ranks in one flat all-reduce (every
/// gradient defined first, so every rank sends the same layout).
pub(crate) fn average_grads(group: &dyn Collective, params: &[Tensor]) -> Result<()> {
    if params.is_empty() {
        return Ok(());
    }
    params::ensure_grads(params)?;
    let grads: Vec<Tensor> = params.iter().map(|p| p.grad().reshape([-1])).collect();
    let flat = Tensor::f_cat(&grads, 0)?;
    group.all_reduce_sum(&flat)?;
    let w = group.world_size() as f64;
    tch::no_grad(|| -> Result<()> {
        let mut offset = 0;
        for p in params {
            let n = p.numel() as i64;
            let mut g = p.grad();
            g.f_copy_(
                &flat
                    .f_narrow(0, offset, n)?
                    .f_view(p.size().as_slice())?
                    .f_div_scalar(w)?,
            )?;
            offset += n;
        }
        Ok(())
    })
}

/// The steps between two checks that the ranks' methods agree: often enough that a
/// drifted state is caught within an epoch, rarely enough that its collective (an
/// all-gather of K numbers, whose latency rivals a small model's step) costs nothing.
pub(crate) const WEIGHT_CHECK_EVERY: u64 = 50;

/// Checks that every rank's method chose the same task weights: a stateful method fed
/// the same reduced inputs must, and a rank that drifted would silently train another
/// model. Names the first rank that differs.
pub(crate) fn check_same_weights(
    group: &dyn Collective,
    method: &str,
    weights: &[f64],
    step: u64,
) -> Result<()> {
    if weights.is_empty() {
        return Ok(());
    }
    let all = group.all_gather(&Tensor::from_slice(weights).to_kind(Kind::Double))?;
    let first = Vec::<f64>::try_from(&all[0])?;
    for (r, t) in all.iter().enumerate().skip(1) {
        let w = Vec::<f64>::try_from(t)?;
        let drift = w
            .iter()
            .zip(&first)
            .any(|(a, b)| (a - b).abs() > 1e-6 * (1.0 + b.abs()));
        if drift {
            return Err(Error::Distributed {
                rank: group.rank(),
                world_size: group.world_size(),
                message: format!(
                    "`{method}` chose other task weights on rank {r} ({w:?}) than on rank 0 \
                     ({first:?}) at step {step}: its state differs between ranks (a method \
                     drawing randomness from an unseeded source, or ranks resumed from \
                     different checkpoints)"
                ),
            });
        }
    }
    Ok(())
}
