//! The labelled rows of one batch: a head output checked against its task target, with
//! the rows whose label is missing dropped.
//!
//! Losses and metric accumulators both start here, so one mistake (a wrong width, float
//! class labels, NaN logits) gives the same typed error from either. Unlabelled rows are
//! removed by index rather than zeroed by a weight: their target entries are arbitrary
//! (often NaN or -1), and `NaN · 0` would poison both the loss and its gradient.

use mtl_core::{Error, Result, TaskTarget};
use tch::{Device, Kind, Tensor};

/// Whether `kind` holds real floating-point numbers.
pub(crate) fn is_float(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Half | Kind::BFloat16 | Kind::Float | Kind::Double
    )
}

/// Whether `kind` holds integers (not booleans).
pub(crate) fn is_integer(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Uint8 | Kind::Int8 | Kind::Int16 | Kind::Int | Kind::Int64
    )
}

/// A tensor's kind and shape as error messages print them, e.g. `Float [4, 3]`.
pub(crate) fn describe(t: &Tensor) -> String {
    format!("{:?} {:?}", t.kind(), t.size())
}

/// Fails with [`Error::NonFinite`] when a floating-point `t` holds a NaN or infinity,
/// reporting the first one.
pub(crate) fn check_finite(t: &Tensor, what: impl FnOnce() -> String) -> Result<()> {
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

/// The size of `logits`, which must be floating with one axis per name in `axes` and a
/// positive width on axis `axis` (the classes or labels), equal to `width` when given;
/// anything else is [`Error::Shape`] in `ctx`, expecting e.g. `floating [batch, 3] logits`.
pub(crate) fn logits_size(
    ctx: &str,
    logits: &Tensor,
    axes: &[&str],
    axis: usize,
    width: Option<i64>,
) -> Result<Vec<i64>> {
    let size = logits.size();
    if is_float(logits.kind()) && fits(&size, axes, axis, width) {
        return Ok(size);
    }
    Err(Error::shape(
        ctx,
        format!("floating {} logits", layout(axes, axis, width)),
        describe(logits),
    ))
}

/// Fails with [`Error::Shape`] in `ctx` unless the input `features` of a layer has one
/// axis per name in `axes` and `width` on axis `axis`; the message expects e.g.
/// `features [batch, 8]`, `what` being the first word.
pub(crate) fn check_features(
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

/// The labelled logits `[n, C]` and class indices `Int64 [n]` of a classification batch.
///
/// `logits` must be floating `[B, C]` (with `C == classes` when given) and the target
/// integer `[B]`; a labelled class outside `0..C` is [`Error::LabelOutOfRange`] for task
/// 0 (the caller knows the real task index), at its row in the batch.
pub(crate) fn class_rows(
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
/// batch.
///
/// `logits` must be floating `[B]` or `[B, 1]`, the target `[B]` or `[B, 1]` of any
/// numeric or boolean kind. A labelled target outside `[0, 1]` is
/// [`Error::LabelOutOfRange`] with two classes; its `label` is the value rounded away
/// from the interval (1.5 reports 2), so the message never names a valid class.
pub(crate) fn binary_rows(
    ctx: &str,
    logits: &Tensor,
    target: &TaskTarget,
) -> Result<(Tensor, Tensor)> {
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
/// labelled part of `pred` and of its kind.
///
/// `pred` must be floating `[B, outputs]` when `outputs` is given, else `[B]` or
/// `[B, m]`. The target must have `pred`'s shape, except that a one-output task may
/// store its targets as `[B]` or `[B, 1]` whichever layout `pred` has.
pub(crate) fn regression_rows(
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
    let rows = size[0];
    let width = if size.len() == 2 { size[1] } else { 1 };
    let values = &target.values;
    let vsize = values.size();
    let shape_fits = vsize == size || (width == 1 && (vsize == [rows] || vsize == [rows, 1]));
    if !(is_float(values.kind()) || is_integer(values.kind())) || !shape_fits {
        return Err(Error::shape(
            ctx,
            format!("numeric targets {size:?}"),
            describe(values),
        ));
    }
    let (labelled, targets) = Labelled::with_targets(ctx, pred, target, pred.kind(), &size)?;
    Ok((labelled.select(pred)?, targets))
}
