//! Checked per-task designs: the intercept column prepended, every value finite, no task
//! empty, and the Gram statistics the Gaussian model needs computed once.

use mtl_core::{Error, Result};
use mtl_data::GroupedData;
use ndarray::{s, Array1, Array2};

/// One task's design `[1, x]` and target, with `XᵀX`, `Xᵀy` and `yᵀy`.
#[derive(Debug, Clone)]
pub(crate) struct Design {
    pub name: String,
    pub x: Array2<f64>,
    pub y: Array1<f64>,
    pub gram: Array2<f64>,
    pub xty: Array1<f64>,
    pub yty: f64,
}

impl Design {
    pub fn rows(&self) -> usize {
        self.y.len()
    }
}

/// The coefficient names: `intercept` then the features.
pub(crate) fn coefficient_names(data: &GroupedData) -> Vec<String> {
    std::iter::once("intercept".to_string())
        .chain(data.feature_names.iter().cloned())
        .collect()
}

/// Checks one task's rows and builds its design. `task` is the index used in errors.
///
/// Errors: no rows, a width other than `features`, a row-count mismatch, a non-finite
/// value (naming the task, row and column), or for `binary` a target other than 0/1.
pub(crate) fn design(
    task: usize,
    name: &str,
    x: &Array2<f64>,
    y: &Array1<f64>,
    features: usize,
    binary: bool,
) -> Result<Design> {
    let n = y.len();
    if n == 0 {
        return Err(Error::config(format!(
            "task {task} (`{name}`) has no rows; every task needs at least one"
        )));
    }
    if x.ncols() != features {
        return Err(Error::shape(
            format!("design of task {task} (`{name}`)"),
            format!("{features} feature columns"),
            format!("{} columns", x.ncols()),
        ));
    }
    if x.nrows() != n {
        return Err(Error::RowCount {
            what: format!("target of task {task} (`{name}`)"),
            expected: x.nrows(),
            got: n,
        });
    }
    if let Some(((r, c), v)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: format!("feature column {c} at row {r} of task `{name}`"),
            task: Some(task),
            step: None,
            value: v.to_string(),
        });
    }
    if let Some((r, v)) = y.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: format!("target at row {r} of task `{name}`"),
            task: Some(task),
            step: None,
            value: v.to_string(),
        });
    }
    if binary {
        if let Some((r, v)) = y.iter().enumerate().find(|(_, v)| **v != 0.0 && **v != 1.0) {
            return Err(Error::config(format!(
                "task {task} (`{name}`): a logistic target must be 0 or 1, row {r} has {v}"
            )));
        }
    }
    let mut xd = Array2::ones((n, features + 1));
    xd.slice_mut(s![.., 1..]).assign(x);
    let gram = xd.t().dot(&xd);
    let xty = xd.t().dot(y);
    let yty = y.dot(y);
    Ok(Design {
        name: name.to_string(),
        x: xd,
        y: y.clone(),
        gram,
        xty,
        yty,
    })
}

/// Checks every task of `data` (at least one task) and builds their designs.
pub(crate) fn designs(data: &GroupedData, binary: bool) -> Result<Vec<Design>> {
    if data.tasks.is_empty() {
        return Err(Error::TaskCount {
            context: "hierarchical Bayesian model".into(),
            expected: 0,
            got: 0,
        });
    }
    if binary && !data.binary {
        return Err(Error::config(format!(
            "the logistic model needs a 0/1 target; `{}` is real-valued",
            data.target_name
        )));
    }
    data.tasks
        .iter()
        .enumerate()
        .map(|(k, t)| design(k, &t.name, &t.x, &t.y, data.n_features(), binary))
        .collect()
}

/// `[1, x]` for prediction, with the same width and finiteness checks as training.
pub(crate) fn with_intercept(x: &Array2<f64>, features: usize, what: &str) -> Result<Array2<f64>> {
    if x.ncols() != features {
        return Err(Error::shape(
            what.to_string(),
            format!("{features} feature columns"),
            format!("{} columns", x.ncols()),
        ));
    }
    if let Some(((r, c), v)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: format!("{what}: feature column {c} at row {r}"),
            task: None,
            step: None,
            value: v.to_string(),
        });
    }
    let mut xd = Array2::ones((x.nrows(), features + 1));
    xd.slice_mut(s![.., 1..]).assign(x);
    Ok(xd)
}
