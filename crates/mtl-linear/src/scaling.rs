//! Feature standardisation shared by every task, so one penalty weight means the same
//! for every feature.

use mtl_core::{Error, Result};
use mtl_data::GroupedData;
use ndarray::Array1;

/// Per-feature mean and standard deviation over every task's rows (pooled), fitted on
/// training data and applied unchanged to held-out data. A constant feature keeps
/// scale 1 (it is only centred).
#[derive(Debug, Clone, PartialEq)]
pub struct Scaling {
    /// `[features]` means.
    pub mean: Array1<f64>,
    /// `[features]` population standard deviations (1 for a constant feature).
    pub scale: Array1<f64>,
}

impl Scaling {
    /// Fits the scaling on `data`'s rows.
    ///
    /// Errors: no rows.
    pub fn fit(data: &GroupedData) -> Result<Scaling> {
        let (x, _, _) = data.pooled();
        if x.nrows() == 0 {
            return Err(Error::config("scaling: the data have no rows"));
        }
        let mean = x
            .mean_axis(ndarray::Axis(0))
            .unwrap_or_else(|| Array1::zeros(x.ncols()));
        let scale =
            x.std_axis(ndarray::Axis(0), 0.0)
                .mapv(|s| if s > 0.0 && s.is_finite() { s } else { 1.0 });
        Ok(Scaling { mean, scale })
    }

    /// `data` with every feature standardised.
    ///
    /// Errors: another feature count.
    pub fn apply(&self, data: &GroupedData) -> Result<GroupedData> {
        if data.n_features() != self.mean.len() {
            return Err(Error::shape(
                "scaling",
                format!("{} features", self.mean.len()),
                data.n_features(),
            ));
        }
        let mut out = data.clone();
        for t in &mut out.tasks {
            for mut row in t.x.rows_mut() {
                row -= &self.mean;
                row /= &self.scale;
            }
        }
        Ok(out)
    }
}
