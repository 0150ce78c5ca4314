//! Per-column feature scaling, fitted on training data only: standard (mean and
//! deviation), robust (median and interquartile range) or standard then clipped, and a
//! check that names columns with extreme values.

use crate::dataset::MultiTaskDataset;
use mtl_core::{Error, Result};
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

/// The |z| above which [`extreme_columns`] calls a value extreme. A normal sample of a
/// million rows stays below 6; a value at 10 is a one-in-10²³ event for normal data and
/// typical of outliers or heavy tails, which a standard-scaled feature passes on to the
/// model at full size.
pub const EXTREME_Z: f32 = 10.0;

/// The default bound of [`FeatureScaling::Clip`]: standardised values beyond ±5 are
/// clipped.
pub const DEFAULT_CLIP: f32 = 5.0;

/// How [`Standardizer::fit_with`] scales each feature column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FeatureScaling {
    /// Subtract the mean, divide by the standard deviation.
    Standard,
    /// Subtract the median, divide by the interquartile range over 1.349 (which equals
    /// the standard deviation for normal data), so a few outliers do not set the scale.
    /// A column whose quartiles coincide falls back to its standard deviation.
    Robust,
    /// Standard scaling, then values clipped to `±at`: outliers keep their sign and
    /// rank among the rest but cannot reach the model at hundreds of deviations.
    Clip {
        /// The bound, in deviations (positive).
        at: f32,
    },
}

/// Subtracts each feature column's centre and divides by its scale, both measured on
/// the dataset it was fitted on (normally the training part, so validation and test
/// statistics do not leak into training): mean and standard deviation by default, or
/// as a [`FeatureScaling`] says, optionally clipping the result.
///
/// It serialises (serde) as `{"mean": [...], "std": [...]}` (plus `"clip"` when it
/// clips), so a saved model carries the preprocessing it was trained with;
/// deserialising checks the statistics as [`Standardizer::from_parts`] does.
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
    clip: Option<f32>,
    // The last columns are category ids for embedding tables: neither scaled nor
    // clipped, or they would point at other rows of the table.
    keep_last: usize,
}

/// The serialised form of a [`Standardizer`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StandardizerParts {
    mean: Vec<f32>,
    std: Vec<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    clip: Option<f32>,
    #[serde(default, skip_serializing_if = "is_zero")]
    keep_last: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl TryFrom<StandardizerParts> for Standardizer {
    type Error = Error;
    fn try_from(p: StandardizerParts) -> Result<Self> {
        let s = Standardizer::from_parts(Array1::from(p.mean), Array1::from(p.std))?;
        match p.clip {
            Some(at) if !(at.is_finite() && at > 0.0) => Err(Error::config(format!(
                "standardizer clip bound {at}: it must be finite and positive"
            ))),
            clip => Standardizer { clip, ..s }.keep_last(p.keep_last),
        }
    }
}

impl From<Standardizer> for StandardizerParts {
    fn from(s: Standardizer) -> Self {
        StandardizerParts {
            mean: s.mean.to_vec(),
            std: s.std.to_vec(),
            clip: s.clip,
            keep_last: s.keep_last,
        }
    }
}

/// A feature column with values far from its mean ([`extreme_columns`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ExtremeColumn {
    /// The column's index among the features.
    pub column: usize,
    /// The largest |z| in it (deviations from the mean, in standard deviations).
    pub max_abs_z: f32,
    /// The row holding that value.
    pub row: usize,
}

/// The feature columns of `ds` holding a value more than `threshold` standard
/// deviations from the column's mean (use [`EXTREME_Z`]), the most extreme first. Such
/// columns pass outliers to the model at full size under standard scaling; robust
/// scaling or clipping tames them.
///
/// ```
/// use mtl_data::{extreme_columns, MultiTaskDataset, TaskData, EXTREME_Z};
/// use ndarray::{Array1, Array2};
/// let mut x = Array2::<f32>::zeros((1000, 2));
/// for r in 0..1000 {
///     x[[r, 0]] = (r % 7) as f32;
///     x[[r, 1]] = (r % 5) as f32;
/// }
/// x[[500, 1]] = 1e6;
/// let ds = MultiTaskDataset::new(x, vec![TaskData::binary("b", Array1::zeros(1000))])?;
/// let extreme = extreme_columns(&ds, EXTREME_Z);
/// assert_eq!((extreme.len(), extreme[0].column, extreme[0].row), (1, 1, 500));
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn extreme_columns(ds: &MultiTaskDataset, threshold: f32) -> Vec<ExtremeColumn> {
    let x = ds.features();
    let (mean, std) = moments(x);
    let mut worst: Vec<(f32, usize)> = vec![(0.0, 0); x.ncols()];
    for (r, row) in x.rows().into_iter().enumerate() {
        for ((w, &v), (m, s)) in worst.iter_mut().zip(row).zip(mean.iter().zip(&std)) {
            let z = ((f64::from(v) - m) / s).abs() as f32;
            if z > w.0 {
                *w = (z, r);
            }
        }
    }
    let mut out: Vec<ExtremeColumn> = worst
        .into_iter()
        .enumerate()
        .filter(|(_, (z, _))| *z > threshold)
        .map(|(column, (max_abs_z, row))| ExtremeColumn {
            column,
            max_abs_z,
            row,
        })
        .collect();
    out.sort_by(|a, b| b.max_abs_z.total_cmp(&a.max_abs_z));
    out
}

/// Column means and population standard deviations (1 where the spread is at the level
/// of f32 rounding), accumulated in f64 row by row: no copy of the matrix.
fn moments(x: &Array2<f32>) -> (Vec<f64>, Vec<f64>) {
    let width = x.ncols();
    let n = x.nrows() as f64;
    let mut mean = vec![0.0f64; width];
    let mut var = vec![0.0f64; width];
    if x.nrows() == 0 {
        return (mean, vec![1.0; width]);
    }
    for row in x.rows() {
        for (s, &v) in mean.iter_mut().zip(row) {
            *s += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|s| *s /= n);
    for row in x.rows() {
        for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (f64::from(v) - m).powi(2);
        }
    }
    let std = var
        .iter()
        .zip(&mean)
        .map(|(&v, &m)| {
            let s = (v / n).sqrt();
            // Spread at the level of f32 rounding noise is no spread at all.
            if s > f64::from(f32::EPSILON) * m.abs().max(1.0) {
                s
            } else {
                1.0
            }
        })
        .collect();
    (mean, std)
}

/// The `q`-quantile of sorted values, interpolating linearly between ranks.
fn quantile(sorted: &[f32], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (a, b) = (f64::from(sorted[lo]), f64::from(sorted[hi]));
    a + (b - a) * (pos - lo as f64)
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
        let (mean, std) = moments(ds.features());
        Standardizer {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std: std.iter().map(|&s| s as f32).collect(),
            clip: None,
            keep_last: 0,
        }
    }

    /// Fits the given kind of scaling on the features of `ds`.
    ///
    /// ```
    /// # use mtl_data::{FeatureScaling, MultiTaskDataset, Standardizer, TaskData};
    /// # use ndarray::{array, Array1};
    /// // One outlier among small values: it sets the standard deviation, not the IQR.
    /// let x = array![[1.0f32], [2.0], [3.0], [4.0], [1000.0]];
    /// let ds = MultiTaskDataset::new(x, vec![TaskData::binary("b", Array1::zeros(5))])?;
    /// let robust = Standardizer::fit_with(&ds, FeatureScaling::Robust)?;
    /// assert_eq!(robust.mean()[0], 3.0); // the median
    /// let clipped = Standardizer::fit_with(&ds, FeatureScaling::Clip { at: 1.5 })?;
    /// let z = clipped.apply(&ds)?;
    /// assert_eq!(z.features()[[4, 0]], 1.5);
    /// # Ok::<(), mtl_core::Error>(())
    /// ```
    pub fn fit_with(ds: &MultiTaskDataset, scaling: FeatureScaling) -> Result<Self> {
        match scaling {
            FeatureScaling::Standard => Ok(Self::fit(ds)),
            FeatureScaling::Clip { at } => Self::fit(ds).with_clip(at),
            FeatureScaling::Robust => {
                let x = ds.features();
                let (_, std) = moments(x);
                let mut centre = Vec::with_capacity(x.ncols());
                let mut scale = Vec::with_capacity(x.ncols());
                for (j, col) in x.columns().into_iter().enumerate() {
                    if x.nrows() == 0 {
                        centre.push(0.0);
                        scale.push(1.0);
                        continue;
                    }
                    // One column at a time: the copy is n values, not the matrix.
                    let mut sorted = col.to_vec();
                    sorted.sort_unstable_by(f32::total_cmp);
                    let median = quantile(&sorted, 0.5);
                    let iqr = quantile(&sorted, 0.75) - quantile(&sorted, 0.25);
                    let s = iqr / 1.349;
                    centre.push(median as f32);
                    scale.push(if s > f64::from(f32::EPSILON) * median.abs().max(1.0) {
                        s as f32
                    } else {
                        std[j] as f32
                    });
                }
                Ok(Standardizer {
                    mean: Array1::from(centre),
                    std: Array1::from(scale),
                    clip: None,
                    keep_last: 0,
                })
            }
        }
    }

    /// The same scaling, with its results clipped to `±at` (positive and finite).
    pub fn with_clip(mut self, at: f32) -> Result<Self> {
        if !(at.is_finite() && at > 0.0) {
            return Err(Error::config(format!(
                "the clipping bound must be positive and finite, got {at}"
            )));
        }
        self.clip = Some(at);
        Ok(self)
    }

    /// The same scaling with the last `n` columns left exactly as they are (category
    /// ids for an embedding table, which scaling or clipping would turn into other ids).
    ///
    /// ```
    /// # use mtl_data::Standardizer;
    /// # use ndarray::array;
    /// let s = Standardizer::from_parts(array![1.0, 5.0], array![2.0, 3.0])?.with_clip(1.0)?.keep_last(1)?;
    /// assert_eq!(s.transform(&array![[9.0f32, 7.0]])?, array![[1.0f32, 7.0]]);
    /// # Ok::<(), mtl_core::Error>(())
    /// ```
    pub fn keep_last(mut self, n: usize) -> Result<Self> {
        let width = self.mean.len();
        if n > width {
            return Err(Error::shape(
                "Standardizer::keep_last",
                format!("at most {width} columns"),
                format!("{n} columns"),
            ));
        }
        for j in width - n..width {
            self.mean[j] = 0.0;
            self.std[j] = 1.0;
        }
        self.keep_last = n;
        Ok(self)
    }

    /// How many last columns pass through unscaled ([`Standardizer::keep_last`]).
    pub fn kept_last(&self) -> usize {
        self.keep_last
    }

    /// The clipping bound, when the results are clipped.
    pub fn clip(&self) -> Option<f32> {
        self.clip
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
        check_moments("standardizer", &mean, &std)?;
        Ok(Standardizer {
            mean,
            std,
            clip: None,
            keep_last: 0,
        })
    }

    /// The fitted column centres: means (medians under [`FeatureScaling::Robust`]).
    pub fn mean(&self) -> &Array1<f32> {
        &self.mean
    }

    /// The fitted column scales: standard deviations (1 for constant columns), or the
    /// robust scale under [`FeatureScaling::Robust`].
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
        let mut out = features.clone();
        self.transform_in_place(&mut out);
        Ok(out)
    }

    fn transform_in_place(&self, x: &mut Array2<f32>) {
        let scaled = self.mean.len() - self.keep_last;
        for mut row in x.rows_mut() {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std).take(scaled) {
                *v = (*v - m) / s;
                if let Some(at) = self.clip {
                    *v = v.clamp(-at, at);
                }
            }
        }
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

    /// As [`apply`](Self::apply), consuming `ds` and scaling its features in place (no
    /// second copy of a large matrix).
    pub fn apply_owned(&self, ds: MultiTaskDataset) -> Result<MultiTaskDataset> {
        if ds.num_features() != self.mean.len() {
            return Err(Error::shape(
                "Standardizer",
                format!("{} feature columns", self.mean.len()),
                format!("{} feature columns", ds.num_features()),
            ));
        }
        ds.map_features_in_place(|x| self.transform_in_place(x))
    }
}

/// Checks saved statistics before they are used to scale anything: every mean finite,
/// every deviation finite and positive (a zero would divide by zero). `what` names the
/// owner in the error.
pub(crate) fn check_moments(what: &str, mean: &Array1<f32>, std: &Array1<f32>) -> Result<()> {
    if let Some((i, m)) = mean.iter().enumerate().find(|(_, m)| !m.is_finite()) {
        return Err(Error::NonFinite {
            what: format!("{what} mean of column {i}"),
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
            "{what} deviation of column {i} is {s}; it must be finite and positive"
        )));
    }
    Ok(())
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

    fn with_outlier() -> MultiTaskDataset {
        // 99 values spread over 0..9 and one at 10,000: z of the outlier about 9.9.
        let mut x = Array2::<f32>::zeros((200, 2));
        for r in 0..200 {
            x[[r, 0]] = (r % 10) as f32;
            x[[r, 1]] = (r % 4) as f32;
        }
        x[[7, 0]] = 10_000.0;
        MultiTaskDataset::new(x, vec![TaskData::binary("b", Array1::zeros(200))]).unwrap()
    }

    #[test]
    fn an_outlier_is_named_and_tamed_by_robust_scaling_or_clipping() {
        let ds = with_outlier();
        let extreme = extreme_columns(&ds, EXTREME_Z);
        assert_eq!(extreme.len(), 1);
        assert_eq!((extreme[0].column, extreme[0].row), (0, 7));
        assert!(extreme[0].max_abs_z > 14.0, "{extreme:?}");
        // Standard scaling squeezes the ordinary values to almost nothing.
        let standard = Standardizer::fit(&ds).apply(&ds).unwrap();
        let spread = standard.features()[[9, 0]] - standard.features()[[0, 0]];
        assert!(spread < 0.02, "{spread}");
        // Robust scaling keeps them spread (IQR of 0..9 ≈ 4.5 → scale ≈ 3.3).
        let robust = Standardizer::fit_with(&ds, FeatureScaling::Robust).unwrap();
        assert_eq!(robust.mean()[0], 4.5);
        let r = robust.apply(&ds).unwrap();
        assert!(r.features()[[9, 0]] - r.features()[[0, 0]] > 2.0);
        // Clipping bounds the outlier.
        let clipped =
            Standardizer::fit_with(&ds, FeatureScaling::Clip { at: DEFAULT_CLIP }).unwrap();
        let c = clipped.apply_owned(ds.clone()).unwrap();
        assert_eq!(c.features()[[7, 0]], DEFAULT_CLIP);
        assert_eq!(clipped.clip(), Some(DEFAULT_CLIP));
        assert!(Standardizer::fit(&ds).with_clip(0.0).is_err());
    }

    #[test]
    fn scaling_in_place_equals_scaling_a_copy() {
        let ds = with_outlier();
        let s = Standardizer::fit(&ds);
        assert_eq!(
            s.apply(&ds).unwrap().features(),
            s.apply_owned(ds.clone()).unwrap().features()
        );
        let narrow = MultiTaskDataset::new(
            Array2::zeros((1, 3)),
            vec![TaskData::binary("b", Array1::zeros(1))],
        )
        .unwrap();
        assert!(matches!(s.apply_owned(narrow), Err(Error::Shape { .. })));
    }
}
