//! Small dense solvers, in f64 on the CPU, for the K×K problems of the Gram-path
//! aggregators (K ≤ ~64): a non-negative QP ([`nnqp`]), the projection onto the dual
//! cone of the rows ([`project_to_dual_cone`]), the min-norm point of a convex hull
//! given its Gram matrix ([`min_norm_simplex`]), a symmetric eigensolver
//! ([`sym_eigen`]) and the pseudo-inverse built on it ([`pinv_sym`]), a pivoted LU
//! solve ([`solve_lu`]); plus the input checks and the Cholesky solves the aggregators
//! share.
//!
//! The solvers are exact up to rounding on well-posed problems: the QP is an
//! active-set method (finite termination, each step an exact Cholesky solve), the
//! eigensolver is cyclic Jacobi (accurate to a few ulps of the largest eigenvalue).

mod cholesky;
mod dual_cone;
mod eigen;
mod lu;
mod min_norm;
mod nnqp;

pub(crate) use cholesky::solve_spd;
pub use dual_cone::{normalize_regularize, project_to_dual_cone};
pub use eigen::{pinv_sym, sym_eigen, SymEigen};
pub use lu::solve_lu;
pub use min_norm::min_norm_simplex;
pub use nnqp::nnqp;

use mtl_core::{Error, Result};
use tch::Kind;

/// The machine epsilon of a tensor dtype: the relative rounding noise that a Gram
/// computed in that dtype carries, used by the rank tolerances (so a Gram computed in
/// f32 is not treated as exact to f64 precision).
pub fn kind_eps(kind: Kind) -> f64 {
    match kind {
        Kind::Half => 9.765_625e-4,
        Kind::BFloat16 => 7.812_5e-3,
        Kind::Float | Kind::ComplexFloat => f32::EPSILON as f64,
        _ => f64::EPSILON,
    }
}

/// Checks an aggregator's task count against the one it was built for (`None`: any).
pub(crate) fn check_task_count(context: &str, expected: Option<usize>, got: usize) -> Result<()> {
    match expected {
        Some(k) if k != got => Err(Error::TaskCount {
            context: context.to_string(),
            expected: k,
            got,
        }),
        _ => Ok(()),
    }
}

/// Checks that a user-given vector (preference vector, weights) is finite and, when
/// `expected` is given, of that length.
pub(crate) fn check_vector(context: &str, v: &[f64], expected: Option<usize>) -> Result<()> {
    if let Some(k) = expected {
        if v.len() != k {
            return Err(Error::TaskCount {
                context: context.to_string(),
                expected: k,
                got: v.len(),
            });
        }
    }
    if let Some((i, x)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(Error::NonFinite {
            what: context.to_string(),
            task: Some(i),
            step: None,
            value: x.to_string(),
        });
    }
    Ok(())
}

/// Validates a `[K, d]` Jacobian for aggregator `context` (shape, finiteness with the
/// offending task and the step, task count) and returns K.
pub(crate) fn checked_rows(
    context: &str,
    jacobian: &tch::Tensor,
    ctx: &crate::StepContext,
    expected: Option<usize>,
) -> Result<usize> {
    crate::gram::check_jacobian_shape(jacobian)?;
    mtl_core::check_jacobian(jacobian, Some(ctx.step))?;
    let k = jacobian.size()[0] as usize;
    check_task_count(context, expected, k)?;
    Ok(k)
}

/// The Gram matrix of a validated Jacobian (see [`checked_rows`]).
pub(crate) fn checked_gram(
    context: &str,
    jacobian: &tch::Tensor,
    ctx: &crate::StepContext,
    expected: Option<usize>,
) -> Result<crate::gram::Gram> {
    let gram = crate::gram::Gram::of(jacobian).map_err(|e| e.at_step(ctx.step))?;
    check_task_count(context, expected, gram.k())?;
    if let Some(v) = gram.as_slice().iter().find(|v| !v.is_finite()) {
        // Finite rows whose inner products overflow the dtype.
        return Err(Error::NonFinite {
            what: format!("Gram matrix of the Jacobian in {context} (overflow)"),
            task: None,
            step: Some(ctx.step),
            value: v.to_string(),
        });
    }
    Ok(gram)
}

/// `gradient = wᵀJ`, reported with its weights.
pub(crate) fn weighted(weights: Vec<f64>, jacobian: &tch::Tensor) -> Result<crate::Aggregation> {
    Ok(crate::Aggregation {
        gradient: crate::gram::combine(&weights, jacobian)?,
        weights: Some(weights),
    })
}

/// Validates J's shape and task count like [`checked_rows`] but leaves its finiteness
/// to [`weighted_checked`], which sees it in the output.
pub(crate) fn checked_shape(
    context: &str,
    jacobian: &tch::Tensor,
    expected: Option<usize>,
) -> Result<usize> {
    crate::gram::check_jacobian_shape(jacobian)?;
    let k = jacobian.size()[0] as usize;
    check_task_count(context, expected, k)?;
    Ok(k)
}

/// `wᵀJ` for a J checked only by [`checked_shape`]. With every weight finite and
/// non-zero, a NaN or Inf anywhere in J reaches the output (`x·w` stays non-finite and
/// a sum with a non-finite term does too), so checking the d output values replaces the
/// scan of all K·d; only when the output is not finite does the exact per-row scan run,
/// to name the task (or, finding J finite, report the overflow). A zero weight would
/// hide its row, so then J is scanned first as [`checked_rows`] does.
pub(crate) fn weighted_checked(
    context: &str,
    weights: Vec<f64>,
    jacobian: &tch::Tensor,
    ctx: &crate::StepContext,
) -> Result<crate::Aggregation> {
    // Judged in f32, the narrowest dtype the weights are cast to.
    let hides_a_row = weights.iter().any(|&w| {
        let w = w as f32;
        w == 0.0 || !w.is_finite()
    });
    if hides_a_row {
        mtl_core::check_jacobian(jacobian, Some(ctx.step))?;
    }
    let gradient = crate::gram::combine(&weights, jacobian)?;
    let finite = mtl_core::sum_is_finite(&gradient)?
        || gradient.f_isfinite()?.f_all()?.f_int64_value(&[])? != 0;
    if !finite {
        mtl_core::first_non_finite_row(jacobian, Some(ctx.step))?;
        return Err(Error::NonFinite {
            what: format!("{context} gradient (finite Jacobian, overflowing sum)"),
            task: None,
            step: Some(ctx.step),
            value: "Inf".into(),
        });
    }
    Ok(crate::Aggregation {
        gradient,
        weights: Some(weights),
    })
}
