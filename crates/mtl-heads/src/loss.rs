//! Task losses that average over labelled rows only.
//!
//! Each loss drops the rows whose [`TaskTarget::mask`] is false before averaging, so a
//! batch with missing labels gives exactly the loss of its labelled subset. A batch with
//! no labelled row gives an exact zero that is still connected to the output (its
//! gradient is zero, not undefined), so a multi-task step can always back-propagate the
//! sum of its task losses. NaN or infinite outputs are reported as
//! [`Error::NonFinite`] before anything is computed.
//!
//! ```
//! use mtl_core::TaskTarget;
//! use tch::{Kind, Tensor};
//!
//! let logits = Tensor::from_slice(&[2.0f32, 0.0, 0.0, 2.0]).view([2, 2]);
//! // The second row's label is missing, so its (wrong) value 7 is ignored.
//! let target = TaskTarget::masked(
//!     Tensor::from_slice(&[0i64, 7]),
//!     Tensor::from_slice(&[true, false]),
//! );
//! let loss = mtl_heads::cross_entropy(&logits, &target)?;
//! let expected = (1.0 + (-2.0f64).exp()).ln(); // -log softmax(2, 0)[0]
//! assert!((loss.double_value(&[]) - expected).abs() < 1e-6);
//! # Ok::<(), mtl_core::Error>(())
//! ```

use crate::rows::{binary_rows, class_rows, describe, is_float, regression_rows};
use mtl_core::{Error, Result, TaskTarget};
use tch::{Kind, Reduction, TchError, Tensor};

/// Softmax cross-entropy of `logits` `[B, C]` against class indices (integer `[B]`).
///
/// A labelled class outside `0..C` is
/// [`Error::LabelOutOfRange`] with `task: 0`; callers
/// that know the task index should put it in.
pub fn cross_entropy(logits: &Tensor, target: &TaskTarget) -> Result<Tensor> {
    cross_entropy_in("cross_entropy", logits, target, None)
}

/// Binary cross-entropy of `logits` `[B]` or `[B, 1]` against 0/1 targets `[B]`, computed
/// from the logits in the numerically stable way. Soft targets in `[0, 1]` are accepted;
/// a labelled target outside it is
/// [`Error::LabelOutOfRange`] with two classes.
pub fn bce_with_logits(logits: &Tensor, target: &TaskTarget) -> Result<Tensor> {
    bce_with_logits_in("bce_with_logits", logits, target)
}

/// Mean squared error of `pred` `[B]` or `[B, m]` against targets of the same shape,
/// averaged over every output of every labelled row.
pub fn mse(pred: &Tensor, target: &TaskTarget) -> Result<Tensor> {
    mse_in("mse", pred, target, None)
}

/// Mean absolute error of `pred` `[B]` or `[B, m]` against targets of the same shape,
/// averaged over every output of every labelled row.
pub fn l1(pred: &Tensor, target: &TaskTarget) -> Result<Tensor> {
    l1_in("l1", pred, target, None)
}

/// The Huber loss of `pred` `[B]` or `[B, m]` against targets of the same shape,
/// averaged over every output of every labelled row: `½·r²` for residuals `|r| ≤ delta`
/// and `delta·(|r| − ½·delta)` beyond, as `torch.nn.HuberLoss(delta)` — quadratic near
/// the target, linear (like L1) for outliers. Fails with
/// [`Error::Config`] unless `delta` is positive and finite.
///
/// ```
/// use mtl_core::TaskTarget;
/// use tch::Tensor;
///
/// let pred = Tensor::from_slice(&[0.5f32, 3.0]);
/// let target = TaskTarget::new(Tensor::from_slice(&[0.0f32, 0.0]));
/// let loss = mtl_heads::huber(&pred, &target, 1.0)?;
/// assert!((loss.double_value(&[]) - (0.125 + 2.5) / 2.0).abs() < 1e-6);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn huber(pred: &Tensor, target: &TaskTarget, delta: f64) -> Result<Tensor> {
    huber_in("huber", pred, target, None, delta)
}

/// The Gaussian negative log-likelihood of targets `[B, m]` (or `[B]` when `m = 1`)
/// under predicted means and log-variances `pred` `[B, 2·m]` (the `m` means first, then
/// the `m` log-variances), averaged over every output of every labelled row.
///
/// Each output contributes `½·(log σ² + (y − μ)² / σ²)` with `σ² = exp(log-variance)`
/// clamped from below at [`GAUSSIAN_NLL_EPS`] — `torch.nn.GaussianNLLLoss` with
/// `full=false` and its default `eps`, including its gradient, which flows through the
/// clamp as if it were not there. Predicting the log-variance keeps the variance
/// positive without a constraint.
///
/// ```
/// use mtl_core::TaskTarget;
/// use tch::Tensor;
///
/// // Mean 1 and variance e² (log-variance 2) for a target of 3.
/// let pred = Tensor::from_slice(&[1.0f32, 2.0]).view([1, 2]);
/// let target = TaskTarget::new(Tensor::from_slice(&[3.0f32]));
/// let loss = mtl_heads::gaussian_nll(&pred, &target)?;
/// let expected = 0.5 * (2.0 + 4.0 / 2f64.exp());
/// assert!((loss.double_value(&[]) - expected).abs() < 1e-6);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn gaussian_nll(pred: &Tensor, target: &TaskTarget) -> Result<Tensor> {
    gaussian_nll_in("gaussian_nll", pred, target, None)
}

/// The smallest variance [`gaussian_nll`] divides by, as `torch.nn.GaussianNLLLoss`.
pub const GAUSSIAN_NLL_EPS: f64 = 1e-6;

/// The zero loss of a batch without labelled rows: differentiable, with zero gradient.
pub(crate) fn no_labels(output: &Tensor) -> Result<Tensor> {
    Ok(output.f_sum(None::<Kind>)?.f_mul_scalar(0.0)?)
}

/// `loss` of the labelled `(prediction, target)` rows of `output`, or [`no_labels`] of
/// `output` when no row is labelled, since a loss over nothing would be NaN.
pub(crate) fn over_labelled(
    output: &Tensor,
    (pred, targets): (Tensor, Tensor),
    loss: impl FnOnce(&Tensor, &Tensor) -> std::result::Result<Tensor, TchError>,
) -> Result<Tensor> {
    if targets.numel() == 0 {
        return no_labels(output);
    }
    Ok(loss(&pred, &targets)?)
}

/// [`cross_entropy`], with errors naming `ctx` and the width checked against `classes`.
pub(crate) fn cross_entropy_in(
    ctx: &str,
    logits: &Tensor,
    target: &TaskTarget,
    classes: Option<i64>,
) -> Result<Tensor> {
    let rows = class_rows(ctx, logits, target, classes)?;
    // libtorch's fused NLL (as torch.nn.functional.cross_entropy): one forward and one
    // backward node instead of gather, mean and negation, which shows on small steps.
    over_labelled(logits, rows, |logits_l, labels| {
        logits_l.f_log_softmax(1, None::<Kind>)?.f_nll_loss(
            labels,
            None::<Tensor>,
            Reduction::Mean,
            -100,
        )
    })
}

/// [`bce_with_logits`], with errors naming `ctx`.
pub(crate) fn bce_with_logits_in(
    ctx: &str,
    logits: &Tensor,
    target: &TaskTarget,
) -> Result<Tensor> {
    let rows = binary_rows(ctx, logits, target)?;
    over_labelled(logits, rows, |logits_l, targets| {
        logits_l.f_binary_cross_entropy_with_logits::<Tensor>(targets, None, None, Reduction::Mean)
    })
}

/// [`mse`], with errors naming `ctx` and the width checked against `outputs`.
pub(crate) fn mse_in(
    ctx: &str,
    pred: &Tensor,
    target: &TaskTarget,
    outputs: Option<i64>,
) -> Result<Tensor> {
    let rows = regression_rows(ctx, pred, target, outputs)?;
    over_labelled(pred, rows, |pred_l, targets| {
        pred_l.f_mse_loss(targets, Reduction::Mean)
    })
}

/// [`l1`], with errors naming `ctx` and the width checked against `outputs`.
pub(crate) fn l1_in(
    ctx: &str,
    pred: &Tensor,
    target: &TaskTarget,
    outputs: Option<i64>,
) -> Result<Tensor> {
    let rows = regression_rows(ctx, pred, target, outputs)?;
    over_labelled(pred, rows, |pred_l, targets| {
        pred_l.f_l1_loss(targets, Reduction::Mean)
    })
}

/// [`huber`], with errors naming `ctx` and the width checked against `outputs`.
pub(crate) fn huber_in(
    ctx: &str,
    pred: &Tensor,
    target: &TaskTarget,
    outputs: Option<i64>,
    delta: f64,
) -> Result<Tensor> {
    check_huber_delta(ctx, delta)?;
    let rows = regression_rows(ctx, pred, target, outputs)?;
    over_labelled(pred, rows, |pred_l, targets| {
        pred_l.f_huber_loss(targets, Reduction::Mean, delta)
    })
}

/// Fails with [`Error::Config`] naming `ctx` unless `delta` is positive and finite.
pub(crate) fn check_huber_delta(ctx: &str, delta: f64) -> Result<()> {
    if delta > 0.0 && delta.is_finite() {
        return Ok(());
    }
    Err(Error::config(format!(
        "{ctx}: the Huber delta must be positive and finite, got {delta}"
    )))
}

/// Splits `pred` `[B, 2·m]` into its means and log-variances, each `[B, m]`, checking
/// `m == outputs` when given.
pub(crate) fn mean_and_log_variance(
    ctx: &str,
    pred: &Tensor,
    outputs: Option<i64>,
) -> Result<(Tensor, Tensor)> {
    let size = pred.size();
    let fits = size.len() == 2
        && size[1] >= 2
        && size[1] % 2 == 0
        && outputs.is_none_or(|m| size[1] == 2 * m);
    if !is_float(pred.kind()) || !fits {
        let width = outputs.map_or("2·outputs".to_string(), |m| (2 * m).to_string());
        return Err(Error::shape(
            ctx,
            format!("floating [batch, {width}] means and log-variances"),
            describe(pred),
        ));
    }
    let m = size[1] / 2;
    Ok((pred.f_narrow(1, 0, m)?, pred.f_narrow(1, m, m)?))
}

/// [`gaussian_nll`], with errors naming `ctx` and the width checked against `outputs`
/// (the number of targets, half the prediction's width).
pub(crate) fn gaussian_nll_in(
    ctx: &str,
    pred: &Tensor,
    target: &TaskTarget,
    outputs: Option<i64>,
) -> Result<Tensor> {
    let (mean, log_variance) = mean_and_log_variance(ctx, pred, outputs)?;
    let m = Some(mean.size()[1]);
    let (mean_l, targets) = regression_rows(ctx, &mean, target, m)?;
    // The same rows again, to pick the labelled log-variances (and check them).
    let (log_variance_l, _) = regression_rows(ctx, &log_variance, target, m)?;
    if targets.numel() == 0 {
        return no_labels(pred);
    }
    let variance = log_variance_l.f_exp()?;
    // Clamp the value only, as PyTorch does under `no_grad`: the gradient still flows.
    let floor = variance
        .f_clamp_min(GAUSSIAN_NLL_EPS)?
        .f_sub(&variance)?
        .f_detach()?;
    let variance = variance.f_add(&floor)?;
    let squared = mean_l.f_sub(&targets)?.f_square()?;
    let per_output = variance.f_log()?.f_add(&squared.f_div(&variance)?)?;
    Ok(per_output.f_mean(None::<Kind>)?.f_mul_scalar(0.5)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtl_core::Error;
    use tch::Device;

    fn floats(v: &[f32], shape: &[i64]) -> Tensor {
        Tensor::from_slice(v).view(shape)
    }

    fn close(a: &Tensor, b: f64) -> bool {
        (a.double_value(&[]) - b).abs() < 1e-6
    }

    #[test]
    fn cross_entropy_by_hand() {
        let logits = floats(&[1.0, 2.0, 3.0, 0.5, 0.5, 0.5], &[2, 3]);
        let target = TaskTarget::new(Tensor::from_slice(&[2i64, 0]));
        let lse0 = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        let expected = ((lse0 - 3.0) + 3f64.ln()) / 2.0;
        assert!(close(&cross_entropy(&logits, &target).unwrap(), expected));
    }

    #[test]
    fn bce_by_hand() {
        let logits = floats(&[0.0, 2.0, -1.0], &[3]);
        let target = TaskTarget::new(floats(&[1.0, 0.0, 0.0], &[3]));
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let expected = -(sig(0.0).ln() + (1.0 - sig(2.0)).ln() + (1.0 - sig(-1.0)).ln()) / 3.0;
        assert!(close(&bce_with_logits(&logits, &target).unwrap(), expected));
        // A [B, 1] output reads the same.
        let column = logits.view([3, 1]);
        assert!(close(&bce_with_logits(&column, &target).unwrap(), expected));
    }

    #[test]
    fn regression_losses_by_hand() {
        let pred = floats(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
        let target = TaskTarget::new(floats(&[0.0, 2.0, 5.0, 4.0], &[2, 2]));
        assert!(close(&mse(&pred, &target).unwrap(), (1.0 + 4.0) / 4.0));
        assert!(close(&l1(&pred, &target).unwrap(), (1.0 + 2.0) / 4.0));
    }

    #[test]
    fn unlabelled_targets_may_hold_anything() {
        // NaN and -1 in unlabelled rows must not leak into the loss or its gradient.
        let pred = floats(&[1.0, 2.0], &[2]).set_requires_grad(true);
        let target = TaskTarget::masked(
            floats(&[f32::NAN, 3.0], &[2]),
            Tensor::from_slice(&[false, true]),
        );
        let loss = mse(&pred, &target).unwrap();
        assert!(close(&loss, 1.0));
        loss.backward();
        assert_eq!(Vec::<f32>::try_from(&pred.grad()).unwrap(), vec![0.0, -2.0]);

        let logits = Tensor::zeros([2, 3], (Kind::Float, Device::Cpu));
        let labels = TaskTarget::masked(
            Tensor::from_slice(&[-1i64, 1]),
            Tensor::from_slice(&[false, true]),
        );
        assert!(close(&cross_entropy(&logits, &labels).unwrap(), 3f64.ln()));
    }

    #[test]
    fn labels_out_of_range() {
        let logits = Tensor::zeros([3, 4], (Kind::Float, Device::Cpu));
        let target = TaskTarget::new(Tensor::from_slice(&[0i64, 3, 4]));
        let err = cross_entropy(&logits, &target).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LabelOutOfRange {
                    row: 2,
                    label: 4,
                    classes: 4,
                    ..
                }
            ),
            "{err}"
        );
        // The row is the batch row even when earlier rows are unlabelled.
        let masked = TaskTarget::masked(
            Tensor::from_slice(&[9i64, -3, 1]),
            Tensor::from_slice(&[false, true, true]),
        );
        let err = cross_entropy(&logits, &masked).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LabelOutOfRange {
                    row: 1,
                    label: -3,
                    ..
                }
            ),
            "{err}"
        );

        let binary = TaskTarget::new(floats(&[0.0, 1.5], &[2]));
        let err = bce_with_logits(&floats(&[0.0, 0.0], &[2]), &binary).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LabelOutOfRange {
                    row: 1,
                    label: 2,
                    classes: 2,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn shape_and_kind_mismatches() {
        let logits = Tensor::zeros([2, 3], (Kind::Float, Device::Cpu));
        let float_labels = TaskTarget::new(floats(&[0.0, 1.0], &[2]));
        let err = cross_entropy(&logits, &float_labels).unwrap_err();
        assert!(matches!(&err, Error::Shape { context, .. } if context == "cross_entropy"));
        let short = TaskTarget::new(Tensor::from_slice(&[0i64]));
        assert!(matches!(
            cross_entropy(&logits, &short),
            Err(Error::Shape { .. })
        ));

        let wide = TaskTarget::new(Tensor::zeros([2, 2], (Kind::Float, Device::Cpu)));
        let err = bce_with_logits(&floats(&[0.0, 0.0], &[2]), &wide).unwrap_err();
        assert!(matches!(&err, Error::Shape { context, .. } if context == "bce_with_logits"));

        let pred = Tensor::zeros([2, 1], (Kind::Float, Device::Cpu));
        let two = TaskTarget::new(Tensor::zeros([2, 2], (Kind::Float, Device::Cpu)));
        let err = mse(&pred, &two).unwrap_err();
        assert!(matches!(&err, Error::Shape { context, .. } if context == "mse"));
        // One output: [B] targets fit a [B, 1] prediction.
        let flat = TaskTarget::new(floats(&[1.0, 1.0], &[2]));
        assert!(close(&l1(&pred, &flat).unwrap(), 1.0));

        let bad_mask = TaskTarget::masked(
            Tensor::from_slice(&[0i64, 1]),
            Tensor::from_slice(&[1i64, 0]),
        );
        let err = cross_entropy(&logits, &bad_mask).unwrap_err();
        assert!(matches!(&err, Error::Shape { context, .. } if context == "cross_entropy mask"));
    }

    #[test]
    fn non_finite_output() {
        let logits = floats(&[0.0, f32::NAN, 1.0, 2.0], &[2, 2]);
        let target = TaskTarget::new(Tensor::from_slice(&[0i64, 1]));
        let err = cross_entropy(&logits, &target).unwrap_err();
        assert!(
            matches!(&err, Error::NonFinite { what, value, .. }
                if what == "cross_entropy input" && value == "NaN"),
            "{err}"
        );
        let pred = floats(&[f32::INFINITY], &[1]);
        let err = l1(&pred, &TaskTarget::new(floats(&[0.0], &[1]))).unwrap_err();
        assert!(matches!(&err, Error::NonFinite { what, .. } if what == "l1 input"));
        // A NaN target on a labelled row is reported too.
        let err = mse(
            &floats(&[0.0], &[1]),
            &TaskTarget::new(floats(&[f32::NAN], &[1])),
        )
        .unwrap_err();
        assert!(matches!(&err, Error::NonFinite { what, .. } if what == "mse target"));
    }
}
