//! Task losses that average over labelled rows only: the two shared by several heads
//! (softmax cross-entropy, binary cross-entropy) defined here, and every other head's
//! loss re-exported from the head's module, where it is defined (see the crate root for
//! that rule).
//!
//! Each loss drops the rows whose [`TaskTarget::mask`] is false before averaging, so a
//! batch with missing labels gives exactly the loss of its labelled subset. A batch with
//! no labelled row gives an exact zero that is still connected to the output (its
//! gradient is zero, not undefined), so a multi-task step can always back-propagate the
//! sum of its task losses. NaN or infinite outputs are reported as
//! [`Error::NonFinite`](crate::Error::NonFinite) before anything is computed.
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

use crate::kit::over_labelled;
use crate::rows::{binary_rows, class_rows};
use mtl_core::{Result, TaskTarget};
use tch::{Kind, Reduction, Tensor};

pub use crate::depth::depth_l1;
pub use crate::multilabel::multilabel_bce_with_logits;
pub use crate::normals::normal_cosine_loss;
pub use crate::regression::{gaussian_nll, huber, l1, mse, GAUSSIAN_NLL_EPS};
pub use crate::segmentation::pixel_cross_entropy;
pub use crate::sequence::token_cross_entropy;

/// Softmax cross-entropy of `logits` `[B, C]` against class indices (integer `[B]`).
///
/// A labelled class outside `0..C` is
/// [`Error::LabelOutOfRange`](crate::Error::LabelOutOfRange) with `task: 0`; callers
/// that know the task index should put it in.
pub fn cross_entropy(logits: &Tensor, target: &TaskTarget) -> Result<Tensor> {
    cross_entropy_in("cross_entropy", logits, target, None)
}

/// Binary cross-entropy of `logits` `[B]` or `[B, 1]` against 0/1 targets `[B]`, computed
/// from the logits in the numerically stable way. Soft targets in `[0, 1]` are accepted;
/// a labelled target outside it is
/// [`Error::LabelOutOfRange`](crate::Error::LabelOutOfRange) with two classes.
pub fn bce_with_logits(logits: &Tensor, target: &TaskTarget) -> Result<Tensor> {
    bce_with_logits_in("bce_with_logits", logits, target)
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
