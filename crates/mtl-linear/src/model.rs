//! The interface every model shares.

use crate::fitted::{Extra, FittedLinear};
use crate::problem::Problem;
use crate::Loss;
use mtl_core::Result;
use mtl_data::GroupedData;
use nalgebra::{DMatrix, DVector};
use ndarray::{Array1, Array2};

/// A regularized multi-task linear model: fits one weight vector `wₜ` and an
/// unpenalised intercept `bₜ` per task of a [`GroupedData`], under a penalty that ties
/// the tasks together.
///
/// Models fit the features exactly as given: standardise them first (with
/// [`Scaling`](crate::Scaling)) when the penalty should treat every feature alike.
pub trait MultiTaskLinear {
    /// The model and its hyper-parameters, e.g. `trace-norm(λ=10)`.
    fn name(&self) -> String;

    /// Minimises the model's objective on `data` under `loss`.
    ///
    /// Errors: no tasks, an empty task, non-finite values, non-0/1 targets for the
    /// logistic loss, a negative or non-finite hyper-parameter, or a design that the
    /// penalty leaves singular — each naming the task at fault.
    fn fit(&self, data: &GroupedData, loss: Loss) -> Result<FittedLinear>;
}

pub(crate) fn to_array2(m: &DMatrix<f64>) -> Array2<f64> {
    Array2::from_shape_fn(m.shape(), |(i, j)| m[(i, j)])
}

pub(crate) fn to_array1(v: &DVector<f64>) -> Array1<f64> {
    Array1::from_iter(v.iter().copied())
}

pub(crate) fn fitted(
    p: &Problem,
    model: String,
    (w, b): (&DMatrix<f64>, &DVector<f64>),
    objective: f64,
    iterations: usize,
    extra: Option<Extra>,
) -> FittedLinear {
    FittedLinear {
        model,
        loss: p.loss,
        task_names: p.names.clone(),
        weights: to_array2(w),
        intercepts: to_array1(b),
        objective,
        iterations,
        extra,
    }
}

/// A hyper-parameter as model names print it: four significant digits, no trailing
/// zeros (`436.9`, `0.4369`, `∞`), so tables stay readable.
pub(crate) fn short(x: f64) -> String {
    if !x.is_finite() || x == 0.0 {
        return if x == f64::INFINITY {
            "∞".into()
        } else {
            x.to_string()
        };
    }
    let decimals = (3 - x.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_keeps_four_significant_digits() {
        assert_eq!(super::short(436.9230769), "436.9");
        assert_eq!(super::short(0.436923), "0.4369");
        assert_eq!(super::short(7.0), "7");
        assert_eq!(super::short(12345.6), "12346");
        assert_eq!(super::short(f64::INFINITY), "∞");
    }
}
