//! Targets with one label per entry of a batch row (per label, pixel or token) rather
//! than one per row.
//!
//! The output of a dense head holds a grid of entries for each batch row: `L` labels,
//! `H × W` pixels, `T` tokens. Its loss and metrics flatten that grid into `N = B·E`
//! rows of one entry each and hand them to the row-wise checks of [`crate::rows`], so
//! the validation (kinds, label ranges, NaN) and the removal of unlabelled entries by
//! index are the same as for the row heads. An entry counts when its row is labelled
//! (a mask `[B]`) or its own mask entry is (a mask shaped like the grid), and when the
//! head's own rule accepts it (not the ignore index, a measured depth...). Errors that
//! name a flattened row are mapped back to the batch row they came from. Public through
//! [`crate::kit`], for heads of that kind written elsewhere.

use crate::rows::describe;
use mtl_core::{Error, Result, TaskTarget};
use tch::{Device, Kind, Tensor};

/// The target's mask as a `Bool` tensor shaped like `grid` (`[B, ...]`), or `None` when
/// the target has no mask. A mask `[B]` labels every entry of its row; a mask of the
/// grid's shape labels entries one by one; anything else is a shape error in
/// `"{ctx} mask"`.
///
/// ```
/// use mtl_heads::{kit::entry_mask, TaskTarget};
/// use tch::{Device, Kind, Tensor};
///
/// // Two images of 1×2 pixels; the second image is unlabelled as a whole.
/// let target = TaskTarget::masked(
///     Tensor::zeros([2, 1, 2], (Kind::Float, Device::Cpu)),
///     Tensor::from_slice(&[true, false]),
/// );
/// let mask = entry_mask("head `d`", &target, &[2, 1, 2], Device::Cpu)?.unwrap();
/// assert_eq!(Vec::<bool>::try_from(&mask.reshape([-1]))?, [true, true, false, false]);
/// # Ok::<(), mtl_heads::Error>(())
/// ```
pub fn entry_mask(
    ctx: &str,
    target: &TaskTarget,
    grid: &[i64],
    device: Device,
) -> Result<Option<Tensor>> {
    let Some(mask) = &target.mask else {
        return Ok(None);
    };
    let rows = grid[0];
    if mask.kind() == Kind::Bool && mask.size() == [rows] {
        let mut row_view = vec![1; grid.len()];
        row_view[0] = rows;
        let expanded = mask
            .f_to_device(device)?
            .f_view(row_view.as_slice())?
            .f_expand(grid, false)?;
        return Ok(Some(expanded));
    }
    if mask.kind() == Kind::Bool && mask.size() == grid {
        return Ok(Some(mask.f_to_device(device)?));
    }
    Err(Error::shape(
        format!("{ctx} mask"),
        format!("Bool [{rows}] or Bool {grid:?}"),
        describe(mask),
    ))
}

/// Refuses a NaN that the target's own mask marks as valid: where a mask is given, it
/// states which entries were measured, so a NaN there is broken data, not a hole (a
/// hole without a mask is the sensor's 0 or NaN, which the head skips). `nan` is a
/// `Bool` grid `[B, ...]`; the error names the batch row and the entry.
pub fn no_nan_where_marked(ctx: &str, nan: &Tensor, marked: Option<&Tensor>) -> Result<()> {
    let Some(marked) = marked else {
        return Ok(());
    };
    let bad = nan.f_logical_and(marked)?;
    if bad.f_any()?.f_int64_value(&[])? == 0 {
        return Ok(());
    }
    let first = bad.f_nonzero()?.f_select(0, 0)?;
    let at: Vec<i64> = Vec::<i64>::try_from(&first).map_err(|e| Error::config(e.to_string()))?;
    Err(Error::NonFinite {
        what: format!(
            "{ctx} target at batch row {}, entry {:?}, inside its mask",
            at[0],
            &at[1..]
        ),
        task: None,
        step: None,
        value: "NaN".into(),
    })
}

/// Both conditions (`Bool` tensors of one shape), where an absent one holds everywhere:
/// an [`entry_mask`] and the head's own rule for an entry (a measured pixel, a label
/// other than the ignore index).
pub fn and_masks(a: Option<Tensor>, b: Option<Tensor>) -> Result<Option<Tensor>> {
    Ok(match (a, b) {
        (Some(a), Some(b)) => Some(a.f_logical_and(&b)?),
        (a, None) => a,
        (None, b) => b,
    })
}

/// A row-wise target over the `N` flattened entries: `values` (already `[N]` or
/// `[N, k]`) and the flattened condition `valid` as its mask. Hand it, with the output
/// flattened the same way, to [`class_rows`](crate::kit::class_rows),
/// [`labelled_rows`](crate::kit::labelled_rows) or a row-wise loss.
pub fn flat_target(values: Tensor, valid: Option<Tensor>) -> Result<TaskTarget> {
    Ok(match valid {
        None => TaskTarget::new(values),
        Some(valid) => TaskTarget::masked(values, valid.f_reshape([-1])?),
    })
}

/// Rewrites an error that names a flattened entry row so that it names the batch row
/// holding that entry; each batch row holds `per_row` entries. Other errors pass
/// unchanged.
pub fn to_batch_row(err: Error, per_row: i64) -> Error {
    match err {
        Error::LabelOutOfRange {
            task,
            row,
            label,
            classes,
        } => Error::LabelOutOfRange {
            task,
            row: row / per_row.max(1) as usize,
            label,
            classes,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_masks_cover_their_whole_row() {
        let target = TaskTarget::masked(
            Tensor::zeros([2, 3], (Kind::Float, Device::Cpu)),
            Tensor::from_slice(&[false, true]),
        );
        let mask = entry_mask("t", &target, &[2, 3], Device::Cpu)
            .unwrap()
            .unwrap();
        assert_eq!(
            Vec::<bool>::try_from(&mask.reshape([-1])).unwrap(),
            [false, false, false, true, true, true]
        );
        let wrong = TaskTarget::masked(
            Tensor::zeros([2, 3], (Kind::Float, Device::Cpu)),
            Tensor::from_slice(&[true, false, true]),
        );
        let err = entry_mask("t", &wrong, &[2, 3], Device::Cpu).unwrap_err();
        assert!(matches!(&err, Error::Shape { context, .. } if context == "t mask"));
    }

    #[test]
    fn flattened_rows_map_back() {
        let err = Error::LabelOutOfRange {
            task: 0,
            row: 7,
            label: 9,
            classes: 3,
        };
        assert!(matches!(
            to_batch_row(err, 4),
            Error::LabelOutOfRange { row: 1, .. }
        ));
    }
}
