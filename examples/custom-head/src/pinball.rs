//! The pinball (quantile) loss.
//!
//! For a quantile level `τ` and residual `r = y − q̂`, the pinball loss is `τ·r` when
//! the prediction is too low (`r ≥ 0`) and `(τ − 1)·r` when it is too high. Its expected
//! value is smallest when `q̂` is the `τ`-quantile of `y`: at `τ = 0.9`, guessing too low
//! costs nine times more than guessing too high, so the minimiser sits above 90% of the
//! outcomes. At `τ = 0.5` it is half the absolute error, whose minimiser is the median.

use crate::rows::labelled_rows;
use mtl_heads::{Error, Result, TaskTarget};
use tch::{Kind, Tensor};

/// Checks that `quantiles` are levels a head can predict: at least one, each strictly
/// between 0 and 1, in strictly increasing order (so the predicted columns read as an
/// interval from left to right). Fails with [`Error::Config`] naming `ctx`.
pub fn check_quantiles(ctx: &str, quantiles: &[f64]) -> Result<()> {
    if quantiles.is_empty() {
        return Err(Error::config(format!("{ctx}: needs at least one quantile")));
    }
    if let Some(bad) = quantiles.iter().find(|&&q| !(q > 0.0 && q < 1.0)) {
        return Err(Error::config(format!(
            "{ctx}: quantile levels must lie strictly between 0 and 1, got {bad}"
        )));
    }
    if quantiles.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::config(format!(
            "{ctx}: quantile levels must be strictly increasing, got {quantiles:?}"
        )));
    }
    Ok(())
}

/// The pinball losses `[n, Q]` of labelled predictions `[n, Q]` against targets `[n, 1]`.
pub(crate) fn pinball_terms(pred: &Tensor, targets: &Tensor, quantiles: &[f64]) -> Result<Tensor> {
    let tau = Tensor::f_from_slice(quantiles)?
        .f_to_kind(pred.kind())?
        .f_to_device(pred.device())?;
    let residual = targets.f_sub(pred)?;
    let too_low = residual.f_mul(&tau)?;
    let too_high = residual.f_mul(&tau.f_sub_scalar(1.0)?)?;
    Ok(too_low.f_maximum(&too_high)?)
}

/// The pinball loss of predicted quantiles `pred` `[B, Q]` (column `j` at level
/// `quantiles[j]`) against targets `[B]` or `[B, 1]`, averaged over every quantile of
/// every labelled row. A batch without labelled rows gives an exact zero that is still
/// connected to `pred`.
///
/// ```
/// use custom_head::pinball_loss;
/// use mtl_heads::TaskTarget;
/// use tch::Tensor;
///
/// // Target 1; the 0.1-quantile guessed 0 (too low by 1), the 0.9-quantile 3 (too high by 2).
/// let pred = Tensor::from_slice(&[0.0f32, 3.0]).view([1, 2]);
/// let loss = pinball_loss(&pred, &TaskTarget::new(Tensor::from_slice(&[1.0f32])), &[0.1, 0.9])?;
/// assert!((loss.double_value(&[]) - (0.1 * 1.0 + 0.1 * 2.0) / 2.0).abs() < 1e-6);
/// # Ok::<(), mtl_heads::Error>(())
/// ```
pub fn pinball_loss(pred: &Tensor, target: &TaskTarget, quantiles: &[f64]) -> Result<Tensor> {
    pinball_loss_in("pinball_loss", pred, target, quantiles)
}

/// [`pinball_loss`], with errors naming `ctx`.
pub(crate) fn pinball_loss_in(
    ctx: &str,
    pred: &Tensor,
    target: &TaskTarget,
    quantiles: &[f64],
) -> Result<Tensor> {
    check_quantiles(ctx, quantiles)?;
    let (pred_l, targets) = labelled_rows(ctx, pred, target, quantiles.len())?;
    if targets.numel() == 0 {
        // Zero, but still part of the graph, so a multi-task step can back-propagate it.
        return Ok(pred.f_sum(None::<Kind>)?.f_mul_scalar(0.0)?);
    }
    Ok(pinball_terms(&pred_l, &targets, quantiles)?.f_mean(None::<Kind>)?)
}
