//! The labelled rows of a quantile batch, checked: predictions `[B, Q]` against targets
//! `[B]` or `[B, 1]`, with the rows whose label is missing dropped.
//!
//! Loss and metrics both start here, so a wrong shape or a NaN gives the same typed
//! error from either. Unlabelled rows are removed by index, not zeroed by a weight:
//! their targets may hold anything, NaN included, and `NaN · 0` is NaN.

use mtl_heads::{Error, Result, TaskTarget};
use tch::{Kind, Tensor};

fn is_float(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Half | Kind::BFloat16 | Kind::Float | Kind::Double
    )
}

fn describe(t: &Tensor) -> String {
    format!("{:?} {:?}", t.kind(), t.size())
}

/// Fails with [`Error::NonFinite`] when `t` holds a NaN or an infinity.
fn check_finite(t: &Tensor, what: impl FnOnce() -> String) -> Result<()> {
    let t = t.f_detach()?;
    let bad = t.f_isfinite()?.f_logical_not()?;
    if bad.f_sum(Kind::Int64)?.f_int64_value(&[])? == 0 {
        return Ok(());
    }
    Err(Error::NonFinite {
        what: what(),
        task: None,
        step: None,
        value: t.f_masked_select(&bad)?.f_double_value(&[0])?.to_string(),
    })
}

/// The labelled predictions `[n, Q]` and targets `[n, 1]` (of the predictions' kind)
/// of a batch whose head predicts `quantiles` values per row; errors name `ctx`.
pub(crate) fn labelled_rows(
    ctx: &str,
    pred: &Tensor,
    target: &TaskTarget,
    quantiles: usize,
) -> Result<(Tensor, Tensor)> {
    let size = pred.size();
    if !is_float(pred.kind()) || size.len() != 2 || size[1] != quantiles as i64 {
        return Err(Error::shape(
            ctx,
            format!("floating [batch, {quantiles}] quantiles"),
            describe(pred),
        ));
    }
    let rows = size[0];
    let values = &target.values;
    let kind = values.kind();
    let numeric = is_float(kind) || matches!(kind, Kind::Int | Kind::Int64);
    if !numeric || !matches!(values.size()[..], [b] | [b, 1] if b == rows) {
        return Err(Error::shape(
            ctx,
            format!("numeric [{rows}] targets"),
            describe(values),
        ));
    }
    check_finite(pred, || format!("{ctx} input"))?;
    let values = values
        .f_to_device(pred.device())?
        .f_to_kind(pred.kind())?
        .f_reshape([rows, 1])?;
    let (pred, values) = match &target.mask {
        None => (pred.shallow_clone(), values),
        Some(mask) if mask.kind() == Kind::Bool && mask.size() == [rows] => {
            let index = mask
                .f_to_device(pred.device())?
                .f_nonzero()?
                .f_flatten(0, -1)?;
            (
                pred.f_index_select(0, &index)?,
                values.f_index_select(0, &index)?,
            )
        }
        Some(mask) => {
            return Err(Error::shape(
                format!("{ctx} mask"),
                format!("Bool [{rows}]"),
                describe(mask),
            ))
        }
    };
    check_finite(&values, || format!("{ctx} target"))?;
    Ok((pred, values))
}
