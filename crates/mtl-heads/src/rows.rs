//! The labelled rows of one batch: a head output checked against its task target, with
//! the rows whose label is missing dropped. Public through [`crate::kit`].
//!
//! Losses and metric accumulators both start here, so one mistake (a wrong width, float
//! class labels, NaN logits) gives the same typed error from either. Unlabelled rows are
//! removed by index rather than zeroed by a weight: their target entries are arbitrary
//! (often NaN or -1), and `NaN · 0` would poison both the loss and its gradient.

use mtl_core::{Error, Result, TaskTarget};
use tch::{Device, Kind, Tensor};

/// Whether `kind` holds real floating-point numbers (what a head's output must be).
pub fn is_float(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Half | Kind::BFloat16 | Kind::Float | Kind::Double
    )
}

/// Whether `kind` holds integers (not booleans), as class labels must.
pub fn is_integer(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Uint8 | Kind::Int8 | Kind::Int16 | Kind::Int | Kind::Int64
    )
}

/// A tensor's kind and shape as error messages print them, e.g. `Float [4, 3]`: the
/// `got` of an [`Error::Shape`].
pub fn describe(t: &Tensor) -> String {
    format!("{:?} {:?}", t.kind(), t.size())
}

/// Fails with [`Error::NonFinite`] about `what()` when a floating-point `t` holds a NaN
/// or infinity, reporting the first one; other kinds always pass. The common, finite
/// case costs one reduction.
pub fn check_finite(t: &Tensor, what: impl FnOnce() -> String) -> Result<()> {
    if !is_float(t.kind()) {
        return Ok(());
    }
    let t = t.f_detach()?;
    // One reduction clears the common case; the elementwise scan runs only otherwise.
    if mtl_core::sum_is_finite(&t)? {
        return Ok(());
    }
    let bad = t.f_isfinite()?.f_logical_not()?;
    if bad.f_sum(Kind::Int64)?.f_int64_value(&[])? == 0 {
        return Ok(());
    }
    let value = t.f_masked_select(&bad)?.f_double_value(&[0])?;
    Err(Error::NonFinite {
        what: what(),
        task: None,
        step: None,
        value: value.to_string(),
    })
}

/// A shape as error messages print it, axis `axis` shown as `width` when that is known:
/// `[batch, 3]`, `[batch, classes, height, width]`.
fn layout(axes: &[&str], axis: usize, width: Option<i64>) -> String {
    let shown: Vec<String> = axes
        .iter()
        .enumerate()
        .map(|(i, name)| match width {
            Some(w) if i == axis => w.to_string(),
            _ => name.to_string(),
        })
        .collect();
    format!("[{}]", shown.join(", "))
}

/// Whether `size` has one axis per name in `axes` and a positive width on axis `axis`,
/// equal to `width` when given.
fn fits(size: &[i64], axes: &[&str], axis: usize, width: Option<i64>) -> bool {
    size.len() == axes.len() && size[axis] >= 1 && width.is_none_or(|w| size[axis] == w)
}

/// The size of a head's `output`, which must be floating with one axis per name in
/// `axes` and a positive width on axis `axis`, equal to `width` when given; anything
/// else is [`Error::Shape`] in `ctx`, expecting e.g. `floating [batch, 3] logits` where
/// `noun` is `"logits"`.
///
/// ```
/// use mtl_heads::{kit::output_size, Error};
/// use tch::{Device, Kind, Tensor};
///
/// let q = Tensor::zeros([4, 3], (Kind::Float, Device::Cpu));
/// let axes = ["batch", "quantiles"];
/// assert_eq!(output_size("head `y`", &q, "quantiles", &axes, 1, Some(3))?, [4, 3]);
/// let err = output_size("head `y`", &q, "quantiles", &axes, 1, Some(2)).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     Error::shape("head `y`", "floating [batch, 2] quantiles", "Float [4, 3]").to_string()
/// );
/// # Ok::<(), mtl_heads::Error>(())
/// ```
pub fn output_size(
    ctx: &str,
    output: &Tensor,
    noun: &str,
    axes: &[&str],
    axis: usize,
    width: Option<i64>,
) -> Result<Vec<i64>> {
    let size = output.size();
    if is_float(output.kind()) && fits(&size, axes, axis, width) {
        return Ok(size);
    }
    Err(Error::shape(
        ctx,
        format!("floating {} {noun}", layout(axes, axis, width)),
        describe(output),
    ))
}

/// [`output_size`] of logits.
pub(crate) fn logits_size(
    ctx: &str,
    logits: &Tensor,
    axes: &[&str],
    axis: usize,
    width: Option<i64>,
) -> Result<Vec<i64>> {
    output_size(ctx, logits, "logits", axes, axis, width)
}

/// Fails with [`Error::Shape`] in `ctx` unless the input `features` of a layer has one
/// axis per name in `axes` and `width` on axis `axis`; the message expects e.g.
/// `features [batch, 8]`, `what` being the first word. [`Linear`](crate::kit::Linear)
/// and [`Conv1x1`](crate::kit::Conv1x1) check their input with it.
pub fn check_features(
    ctx: &str,
    what: &str,
    features: &Tensor,
    axes: &[&str],
    axis: usize,
    width: i64,
) -> Result<()> {
    if fits(&features.size(), axes, axis, Some(width)) {
        return Ok(());
    }
    Err(Error::shape(
        ctx,
        format!("{what} {}", layout(axes, axis, Some(width))),
        describe(features),
    ))
}

/// The position of the first `true` in a 1-D boolean tensor.
pub(crate) fn first_true(flags: &Tensor) -> Result<Option<i64>> {
    let hits = flags.f_nonzero()?;
    if hits.size()[0] == 0 {
        return Ok(None);
    }
    Ok(Some(hits.f_int64_value(&[0, 0])?))
}

/// Which rows of a `rows`-row batch are labelled, as indices on `device`; `None` when
/// all are, so the common unmasked case costs nothing.
struct Labelled(Option<Tensor>);

impl Labelled {
    fn of(ctx: &str, target: &TaskTarget, rows: i64, device: Device) -> Result<Self> {
        let Some(mask) = &target.mask else {
            return Ok(Labelled(None));
        };
        if mask.kind() != Kind::Bool || mask.size() != [rows] {
            return Err(Error::shape(
                format!("{ctx} mask"),
                format!("Bool [{rows}]"),
                describe(mask),
            ));
        }
        let index = mask.f_to_device(device)?.f_nonzero()?.f_flatten(0, -1)?;
        Ok(Labelled(Some(index)))
    }

    /// The labelled rows of `t`, in batch order.
    fn select(&self, t: &Tensor) -> Result<Tensor> {
        match &self.0 {
            None => Ok(t.shallow_clone()),
            Some(index) => Ok(t.f_index_select(0, index)?),
        }
    }

    /// The labelled rows of a batch and their target values, moved to the device of
    /// `input` (its logits or predictions) as `kind` and shaped `shape`, whose first axis
    /// is the batch. A NaN or infinity in `input` or in a labelled target is
    /// [`Error::NonFinite`]; in an unlabelled target it is only a placeholder.
    fn with_targets(
        ctx: &str,
        input: &Tensor,
        target: &TaskTarget,
        kind: Kind,
        shape: &[i64],
    ) -> Result<(Self, Tensor)> {
        check_finite(input, || format!("{ctx} input"))?;
        let labelled = Labelled::of(ctx, target, shape[0], input.device())?;
        let values = labelled.select(
            &target
                .values
                .f_to_device(input.device())?
                .f_to_kind(kind)?
                .f_reshape(shape)?,
        )?;
        check_finite(&values, || format!("{ctx} target"))?;
        Ok((labelled, values))
    }

    /// The batch row of the `pos`-th labelled row.
    fn batch_row(&self, pos: i64) -> Result<usize> {
        let row = match &self.0 {
            None => pos,
            Some(index) => index.f_int64_value(&[pos])?,
        };
        Ok(row as usize)
    }
}

/// The labelled logits `[n, C]` and class indices `Int64 [n]` of a classification batch,
/// errors naming `ctx`.
///
/// `logits` must be floating `[B, C]` (with `C == classes` when given) and the target
/// integer `[B]`; a labelled class outside `0..C` is [`Error::LabelOutOfRange`] for task
/// 0 (the caller knows the real task index), at its row in the batch.
///
/// ```
/// use mtl_heads::{kit::class_rows, TaskTarget};
/// use tch::Tensor;
///
/// let logits = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0]).view([2, 2]);
/// // The first row is unlabelled, so its label 9 is never read.
/// let target = TaskTarget::masked(Tensor::from_slice(&[9i64, 1]), Tensor::from_slice(&[false, true]));
/// let (logits_l, labels) = class_rows("head `c`", &logits, &target, Some(2))?;
/// assert_eq!((logits_l.size(), Vec::<i64>::try_from(&labels)?), (vec![1, 2], vec![1]));
/// # Ok::<(), mtl_heads::Error>(())
/// ```
pub fn class_rows(
    ctx: &str,
    logits: &Tensor,
    target: &TaskTarget,
    classes: Option<i64>,
) -> Result<(Tensor, Tensor)> {
    let size = logits_size(ctx, logits, &["batch", "classes"], 1, classes)?;
    let (rows, width) = (size[0], size[1]);
    let values = &target.values;
    if !is_integer(values.kind()) || values.size() != [rows] {
        return Err(Error::shape(
            ctx,
            format!("integer [{rows}] class-index targets"),
            describe(values),
        ));
    }
    let (labelled, labels) = Labelled::with_targets(ctx, logits, target, Kind::Int64, &[rows])?;
    // The range of the labels in one reduction (a sync either way); the position of a
    // bad one is looked up only when there is one.
    let in_range = labels.numel() == 0 || {
        let (lo, hi) = labels.f_aminmax(None::<i64>, false)?;
        lo.f_int64_value(&[])? >= 0 && hi.f_int64_value(&[])? < width
    };
    if !in_range {
        let out_of_range = labels.f_lt(0)?.f_logical_or(&labels.f_ge(width)?)?;
        if let Some(pos) = first_true(&out_of_range)? {
            return Err(Error::LabelOutOfRange {
                task: 0,
                row: labelled.batch_row(pos)?,
                label: labels.f_int64_value(&[pos])?,
                classes: width,
            });
        }
    }
    Ok((labelled.select(logits)?, labels))
}

/// The labelled logits and targets, both `[n]` and of the logits' kind, of a binary
/// batch, errors naming `ctx`.
///
/// `logits` must be floating `[B]` or `[B, 1]`, the target `[B]` or `[B, 1]` of any
/// numeric or boolean kind. A labelled target outside `[0, 1]` is
/// [`Error::LabelOutOfRange`] with two classes; its `label` is the value rounded away
/// from the interval (1.5 reports 2), so the message never names a valid class.
pub fn binary_rows(ctx: &str, logits: &Tensor, target: &TaskTarget) -> Result<(Tensor, Tensor)> {
    let rows = match logits.size()[..] {
        [b] | [b, 1] if is_float(logits.kind()) => b,
        _ => {
            return Err(Error::shape(
                ctx,
                "floating [batch] or [batch, 1] logits",
                describe(logits),
            ))
        }
    };
    let values = &target.values;
    let kind_fits =
        is_float(values.kind()) || is_integer(values.kind()) || values.kind() == Kind::Bool;
    if !kind_fits || !matches!(values.size()[..], [b] | [b, 1] if b == rows) {
        return Err(Error::shape(
            ctx,
            format!("0/1 targets [{rows}]"),
            describe(values),
        ));
    }
    let (labelled, targets) = Labelled::with_targets(ctx, logits, target, logits.kind(), &[rows])?;
    let in_range = targets.numel() == 0 || {
        let (lo, hi) = targets.f_aminmax(None::<i64>, false)?;
        lo.f_double_value(&[])? >= 0.0 && hi.f_double_value(&[])? <= 1.0
    };
    let outside = if in_range {
        None
    } else {
        first_true(&targets.f_lt(0.0)?.f_logical_or(&targets.f_gt(1.0)?)?)?
    };
    if let Some(pos) = outside {
        let value = targets.f_double_value(&[pos])?;
        let label = if value < 0.0 {
            value.floor()
        } else {
            value.ceil()
        };
        return Err(Error::LabelOutOfRange {
            task: 0,
            row: labelled.batch_row(pos)?,
            label: label as i64,
            classes: 2,
        });
    }
    Ok((labelled.select(&logits.f_reshape([rows])?)?, targets))
}

/// The labelled predictions and targets of a regression batch, both shaped like the
/// labelled part of `pred` and of its kind, errors naming `ctx`.
///
/// `pred` must be floating `[B, outputs]` when `outputs` is given, else `[B]` or
/// `[B, m]`. The target must have `pred`'s shape, except that a one-output task may
/// store its targets as `[B]` or `[B, 1]` whichever layout `pred` has.
pub fn regression_rows(
    ctx: &str,
    pred: &Tensor,
    target: &TaskTarget,
    outputs: Option<i64>,
) -> Result<(Tensor, Tensor)> {
    let size = pred.size();
    let layout_fits = match (size.len(), outputs) {
        (2, Some(m)) => size[1] == m,
        (1 | 2, None) => true,
        _ => false,
    };
    if !is_float(pred.kind()) || !layout_fits {
        let expected = match outputs {
            Some(m) => format!("floating [batch, {m}] predictions"),
            None => "floating [batch] or [batch, outputs] predictions".to_string(),
        };
        return Err(Error::shape(ctx, expected, describe(pred)));
    }
    labelled_rows(ctx, pred, target, &size)
}

/// `size` without its trailing axes of width 1 (the batch axis is always kept), so that
/// `[B]`, `[B, 1]` and `[B, 1, 1]` compare equal.
fn trimmed(size: &[i64]) -> &[i64] {
    let mut end = size.len();
    while end > 1 && size[end - 1] == 1 {
        end -= 1;
    }
    &size[..end]
}

/// The labelled rows of a head `output` `[B, ...]` and of its numeric targets, read as
/// `shape` (whose first axis is the batch `B`) in the output's kind and on its device:
/// the building block of a custom head's loss and metrics, errors naming `ctx`.
///
/// The target values must be floating or integer and shaped `shape` up to trailing axes
/// of width 1 (for `shape` `[B, 1]`, `[B]` fits too), else [`Error::Shape`] expecting
/// `numeric targets {shape}`; its mask must be `Bool [B]` (else a shape error in
/// `"{ctx} mask"`). Rows whose mask is false are dropped **by index**, so whatever their
/// targets hold (NaN included) never reaches the loss or its gradient. A NaN or infinity
/// in `output`, or in a labelled target, is [`Error::NonFinite`] about `"{ctx} input"` or
/// `"{ctx} target"`. Check the output's own shape first ([`output_size`]): this checks
/// only that it has `B` rows.
///
/// ```
/// use mtl_heads::{kit::labelled_rows, TaskTarget};
/// use tch::Tensor;
///
/// // Three quantiles per row against one target per row; the second row is unlabelled.
/// let pred = Tensor::from_slice(&[0.0f32, 1.0, 2.0, 5.0, 6.0, 7.0]).view([2, 3]);
/// let target = TaskTarget::masked(
///     Tensor::from_slice(&[1.5f32, f32::NAN]),
///     Tensor::from_slice(&[true, false]),
/// );
/// let (pred_l, truth) = labelled_rows("head `y` pinball", &pred, &target, &[2, 1])?;
/// assert_eq!((pred_l.size(), truth.size()), (vec![1, 3], vec![1, 1]));
/// assert_eq!(truth.double_value(&[0, 0]), 1.5);
/// # Ok::<(), mtl_heads::Error>(())
/// ```
pub fn labelled_rows(
    ctx: &str,
    output: &Tensor,
    target: &TaskTarget,
    shape: &[i64],
) -> Result<(Tensor, Tensor)> {
    let rows = output.size().first().copied();
    if shape.is_empty() || rows != Some(shape[0]) {
        let expected = match shape.first() {
            Some(b) => format!("an output with {b} rows"),
            None => "a target shape with a batch axis".to_string(),
        };
        return Err(Error::shape(ctx, expected, describe(output)));
    }
    let values = &target.values;
    let kind = values.kind();
    if !(is_float(kind) || is_integer(kind)) || trimmed(&values.size()) != trimmed(shape) {
        return Err(Error::shape(
            ctx,
            format!("numeric targets {shape:?}"),
            describe(values),
        ));
    }
    let (labelled, targets) = Labelled::with_targets(ctx, output, target, output.kind(), shape)?;
    Ok((labelled.select(output)?, targets))
}
