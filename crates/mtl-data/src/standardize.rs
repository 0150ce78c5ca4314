//! Per-column feature standardisation, fitted on training data only.

use crate::dataset::MultiTaskDataset;
use mtl_core::{Error, Result};
use ndarray::{Array1, Array2, Axis};
use serde::{Deserialize, Serialize};

/// Subtracts each feature column's mean and divides by its standard deviation, both
/// measured on the dataset it was fitted on (normally the training part, so validation
/// and test statistics do not leak into training).
///
/// It serialises (serde) as `{"mean": [...], "std": [...]}`, so a saved model carries
/// the preprocessing it was trained with; deserialising checks the statistics as
/// [`Standardizer::from_parts`] does.
///
/// ```
/// # use mtl_data::Standardizer;
/// # use ndarray::array;
/// let s = Standardizer::from_parts(array![1.0, -2.0], array![0.5, 4.0])?;
/// let json = serde_json::to_string(&s).unwrap();
/// assert_eq!(json, r#"{"mean":[1.0,-2.0],"std":[0.5,4.0]}"#);
/// assert_eq!(serde_json::from_str::<Standardizer>(&json).unwrap(), s);
/// assert!(serde_json::from_str::<Standardizer>(r#"{"mean":[0.0],"std":[0.0]}"#).is_err());
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StandardizerParts", into = "StandardizerParts")]
pub struct Standardizer {
    mean: Array1<f32>,
    std: Array1<f32>,
}

/// The serialised form of a [`Standardizer`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StandardizerParts {
    mean: Vec<f32>,
    std: Vec<f32>,
}

impl TryFrom<StandardizerParts> for Standardizer {
    type Error = Error;
    fn try_from(p: StandardizerParts) -> Result<Self> {
        Standardizer::from_parts(Array1::from(p.mean), Array1::from(p.std))
    }
}

impl From<Standardizer> for StandardizerParts {
    fn from(s: Standardizer) -> Self {
        StandardizerParts {
            mean: s.mean.to_vec(),
            std: s.std.to_vec(),
        }
    }
}

impl Standardizer {
    /// Fits on the features of `ds`: column means and population standard deviations.
    /// A constant column (or an empty dataset) gets standard deviation 1, so it becomes
    /// all zeros rather than NaN.
    ///
    /// ```
    /// # use mtl_data::{MultiTaskDataset, Standardizer, TaskData};
    /// # use ndarray::array;
    /// let ds = MultiTaskDataset::new(
    ///     array![[1.0f32, 5.0], [3.0, 5.0]],
    ///     vec![TaskData::binary("b", array![0.0, 1.0])],
    /// )?;
    /// let s = Standardizer::fit(&ds);
    /// assert_eq!(s.apply(&ds)?.features(), &array![[-1.0f32, 0.0], [1.0, 0.0]]);
    /// # Ok::<(), mtl_core::Error>(())
    /// ```
    pub fn fit(ds: &MultiTaskDataset) -> Self {
        let x = ds.features().mapv(f64::from);
        let n = x.nrows();
        let width = x.ncols();
        if n == 0 {
            return Standardizer {
                mean: Array1::zeros(width),
                std: Array1::ones(width),
            };
        }
        // f64 accumulation: f32 sums over many rows of large values lose digits.
        let mean = x.sum_axis(Axis(0)) / n as f64;
        let var = (&x - &mean).mapv(|d| d * d).sum_axis(Axis(0)) / n as f64;
        let std = var
            .iter()
            .zip(mean.iter())
            .map(|(&v, &m)| {
                let s = v.sqrt();
                // Spread at the level of f32 rounding noise is no spread at all.
                if s > f64::from(f32::EPSILON) * m.abs().max(1.0) {
                    s as f32
                } else {
                    1.0
                }
            })
            .collect();
        Standardizer {
            mean: mean.mapv(|m| m as f32),
            std,
        }
    }

    /// A standardizer from saved statistics; every `std` must be finite and positive and
    /// every `mean` finite.
    pub fn from_parts(mean: Array1<f32>, std: Array1<f32>) -> Result<Self> {
        if mean.len() != std.len() {
            return Err(Error::shape(
                "Standardizer::from_parts std",
                format!("{} entries (as mean)", mean.len()),
                format!("{} entries", std.len()),
            ));
        }
        if let Some((i, m)) = mean.iter().enumerate().find(|(_, m)| !m.is_finite()) {
            return Err(Error::NonFinite {
                what: format!("standardizer mean of column {i}"),
                task: None,
                step: None,
                value: m.to_string(),
            });
        }
        if let Some((i, s)) = std
            .iter()
            .enumerate()
            .find(|(_, s)| !(s.is_finite() && **s > 0.0))
        {
            return Err(Error::config(format!(
                "standardizer std of column {i} is {s}; it must be finite and positive"
            )));
        }
        Ok(Standardizer { mean, std })
    }

    /// The fitted column means.
    pub fn mean(&self) -> &Array1<f32> {
        &self.mean
    }

    /// The fitted column standard deviations (1 for constant columns).
    pub fn std(&self) -> &Array1<f32> {
        &self.std
    }

    /// Standardises a feature matrix with the fitted statistics.
    pub fn transform(&self, features: &Array2<f32>) -> Result<Array2<f32>> {
        if features.ncols() != self.mean.len() {
            return Err(Error::shape(
                "Standardizer",
                format!("{} feature columns", self.mean.len()),
                format!("{} feature columns", features.ncols()),
            ));
        }
        Ok((features - &self.mean) / &self.std)
    }

    /// Undoes [`Standardizer::transform`]: `z · std + mean` per column, mapping values
    /// on the standardised scale (such as a regression head's predictions of
    /// standardised targets) back to the original units.
    ///
    /// ```
    /// # use mtl_data::Standardizer;
    /// # use ndarray::array;
    /// let s = Standardizer::from_parts(array![10.0], array![2.0])?;
    /// let x = array![[9.0f32], [14.0]];
    /// assert_eq!(s.transform(&x)?, array![[-0.5f32], [2.0]]);
    /// assert_eq!(s.inverse_transform(&s.transform(&x)?)?, x);
    /// # Ok::<(), mtl_core::Error>(())
    /// ```
    pub fn inverse_transform(&self, values: &Array2<f32>) -> Result<Array2<f32>> {
        if values.ncols() != self.mean.len() {
            return Err(Error::shape(
                "Standardizer::inverse_transform",
                format!("{} columns", self.mean.len()),
                format!("{} columns", values.ncols()),
            ));
        }
        Ok(values * &self.std + &self.mean)
    }

    /// `ds` with standardised features and the same tasks.
    pub fn apply(&self, ds: &MultiTaskDataset) -> Result<MultiTaskDataset> {
        ds.with_features(self.transform(ds.features())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TaskData;
    use ndarray::array;

    #[test]
    fn width_mismatch_is_a_shape_error() {
        let s = Standardizer::from_parts(array![0.0, 0.0], array![1.0, 2.0]).unwrap();
        let ds = MultiTaskDataset::new(
            array![[1.0f32, 2.0, 3.0]],
            vec![TaskData::binary("b", array![1.0])],
        )
        .unwrap();
        assert!(matches!(s.apply(&ds), Err(Error::Shape { .. })));
    }

    #[test]
    fn from_parts_rejects_bad_statistics() {
        assert!(Standardizer::from_parts(array![0.0], array![0.0]).is_err());
        assert!(Standardizer::from_parts(array![f32::NAN], array![1.0]).is_err());
        assert!(Standardizer::from_parts(array![0.0], array![1.0, 1.0]).is_err());
    }

    #[test]
    fn empty_fit_is_the_identity() {
        let ds = MultiTaskDataset::new(
            Array2::zeros((0, 2)),
            vec![TaskData::binary("b", Array1::zeros(0))],
        )
        .unwrap();
        let s = Standardizer::fit(&ds);
        assert_eq!(s.mean(), &array![0.0f32, 0.0]);
        assert_eq!(s.std(), &array![1.0f32, 1.0]);
    }
}
