//! Per-task standardisation of regression targets, fitted on the training rows only,
//! with the map back to original units for metrics and predictions.
//!
//! Why: targets whose scales differ by orders of magnitude make the task losses differ
//! by the square of that, so a sum of losses (or any weighting that is not
//! scale-invariant) trains the large-scale tasks and neglects the rest, and a head
//! initialised near zero needs many steps just to reach a target's mean. Training on
//! standardised targets removes both; reporting in original units keeps the numbers
//! meaningful.

use crate::dataset::MultiTaskDataset;
use crate::target::TargetData;
use mtl_core::{Error, Result, TaskTarget};
use ndarray::{Array1, Array2, Axis};
use tch::{Kind, Tensor};

/// The affine map of one regression task between its original units `y` and the
/// standardised values `z = (y − mean) / std` a head trains on, one `mean`/`std` per
/// target column.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetScale {
    mean: Array1<f32>,
    std: Array1<f32>,
}

impl TargetScale {
    /// A scale from saved statistics: equal lengths (at least one column), finite
    /// means, finite positive deviations.
    pub fn from_parts(mean: Array1<f32>, std: Array1<f32>) -> Result<Self> {
        if mean.is_empty() || mean.len() != std.len() {
            return Err(Error::shape(
                "TargetScale::from_parts",
                format!(
                    "equal, non-zero numbers of means and deviations ({})",
                    mean.len()
                ),
                format!("{} deviations", std.len()),
            ));
        }
        crate::standardize::check_moments("target scale", &mean, &std)?;
        Ok(TargetScale { mean, std })
    }

    /// The training rows' mean of each target column, in original units.
    pub fn mean(&self) -> &Array1<f32> {
        &self.mean
    }

    /// The training rows' standard deviation of each target column (1 for a constant
    /// column).
    pub fn std(&self) -> &Array1<f32> {
        &self.std
    }

    /// The number of target columns.
    pub fn width(&self) -> usize {
        self.mean.len()
    }

    fn check_width(&self, context: &str, width: usize) -> Result<()> {
        if width == self.width() {
            return Ok(());
        }
        Err(Error::shape(
            context,
            format!("{} target columns", self.width()),
            format!("{width} columns"),
        ))
    }

    /// Standardises values `[n, m]` in original units.
    pub fn standardize(&self, values: &Array2<f32>) -> Result<Array2<f32>> {
        self.check_width("TargetScale::standardize", values.ncols())?;
        Ok((values - &self.mean) / &self.std)
    }

    /// Maps standardised values `[n, m]` (predictions, say) back to original units.
    ///
    /// ```
    /// use mtl_data::{MultiTaskDataset, TargetStandardizer, TaskData};
    /// use ndarray::array;
    /// let ds = MultiTaskDataset::new(
    ///     array![[0.0f32], [1.0]],
    ///     vec![TaskData::regression("price", array![[1000.0f32], [3000.0]])],
    /// )?;
    /// let scaled = TargetStandardizer::fit(&ds).apply(&ds)?;
    /// let scale = scaled.target_scale(0).unwrap();
    /// assert_eq!((scale.mean()[0], scale.std()[0]), (2000.0, 1000.0));
    /// assert_eq!(scale.to_original(&array![[-1.0f32], [0.5]])?, array![[1000.0f32], [2500.0]]);
    /// # Ok::<(), mtl_core::Error>(())
    /// ```
    pub fn to_original(&self, values: &Array2<f32>) -> Result<Array2<f32>> {
        self.check_width("TargetScale::to_original", values.ncols())?;
        Ok(values * &self.std + &self.mean)
    }

    fn tensors(&self, like: &Tensor) -> Result<(Tensor, Tensor)> {
        let device = like.device();
        let kind = like.kind();
        let mean = Tensor::f_from_slice(self.mean.as_slice().unwrap_or(&self.mean.to_vec()))?
            .f_to_device(device)?
            .f_to_kind(kind)?;
        let std = Tensor::f_from_slice(self.std.as_slice().unwrap_or(&self.std.to_vec()))?
            .f_to_device(device)?
            .f_to_kind(kind)?;
        Ok((mean, std))
    }

    /// Maps a regression head's output back to original units: `[B, m]` means (or `[B]`
    /// when `m = 1`) become `mean + std·z`; a `[B, 2m]` output of means then
    /// log-variances (a Gaussian-NLL head) also has each log-variance shifted by
    /// `2·ln std`. Any other shape is an [`Error::Shape`].
    pub fn output_to_original(&self, output: &Tensor) -> Result<Tensor> {
        let (mean, std) = self.tensors(output)?;
        let m = self.width() as i64;
        let size = output.size();
        match size.as_slice() {
            [_] if m == 1 => Ok(output.f_mul(&std)?.f_add(&mean)?),
            [_, w] if *w == m => Ok(output.f_mul(&std)?.f_add(&mean)?),
            [_, w] if *w == 2 * m => {
                let means = output.f_narrow(1, 0, m)?.f_mul(&std)?.f_add(&mean)?;
                let log_var = output
                    .f_narrow(1, m, m)?
                    .f_add(&std.f_log()?.f_mul_scalar(2.0)?)?;
                Ok(Tensor::f_cat(&[means, log_var], 1)?)
            }
            _ => Err(Error::shape(
                "a standardised regression task's output",
                format!("[batch, {m}] or [batch, {}] values", 2 * m),
                format!("{size:?}"),
            )),
        }
    }

    /// Maps a batch's standardised targets (`[B, m]`, or `[B]` when `m = 1`) back to
    /// original units; the mask is kept.
    pub fn target_to_original(&self, target: &TaskTarget) -> Result<TaskTarget> {
        let values = &target.values;
        let (mean, std) = self.tensors(values)?;
        let m = self.width() as i64;
        let size = values.size();
        let fits = match size.as_slice() {
            [_] => m == 1,
            [_, w] => *w == m,
            _ => false,
        };
        if !fits || !matches!(values.kind(), Kind::Float | Kind::Double | Kind::Half) {
            return Err(Error::shape(
                "a standardised regression task's targets",
                format!("floating [batch, {m}] values"),
                format!("{:?} {size:?}", values.kind()),
            ));
        }
        Ok(TaskTarget {
            values: values.f_mul(&std)?.f_add(&mean)?,
            mask: target.mask.as_ref().map(Tensor::shallow_clone),
        })
    }
}

/// Standardises every regression task's targets with the mean and population standard
/// deviation of its labelled training rows, per target column. Datasets it is
/// [applied](TargetStandardizer::apply) to store standardised targets and remember the
/// map back ([`MultiTaskDataset::target_scale`]), so heads train on standardised
/// values while evaluation reports metrics in original units. Class and binary tasks
/// are left alone.
///
/// ```
/// use mtl_data::{MultiTaskDataset, TargetData, TargetStandardizer, TaskData};
/// use ndarray::array;
/// let train = MultiTaskDataset::new(
///     array![[0.0f32], [1.0], [2.0]],
///     vec![
///         TaskData::regression("kelvin", array![[270.0f32], [280.0], [290.0]]),
///         TaskData::binary("rain", array![0.0, 1.0, 0.0]),
///     ],
/// )?;
/// let scaler = TargetStandardizer::fit(&train);
/// let scaled = scaler.apply(&train)?;
/// let TargetData::Regression(z) = &scaled.tasks()[0].data else { unreachable!() };
/// assert!((z[[2, 0]] - 1.2247).abs() < 1e-4);
/// assert!(scaled.target_scale(0).is_some() && scaled.target_scale(1).is_none());
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TargetStandardizer {
    scales: Vec<Option<TargetScale>>,
}

impl TargetStandardizer {
    /// Fits on the labelled rows of every regression task of `train` (accumulating in
    /// f64). A column with no labelled rows gets mean 0, and a constant one (or one
    /// with no rows) standard deviation 1.
    pub fn fit(train: &MultiTaskDataset) -> Self {
        let scales = train
            .tasks()
            .iter()
            .map(|task| {
                let TargetData::Regression(values) = &task.data else {
                    return None;
                };
                let labelled: Vec<usize> =
                    (0..task.len()).filter(|&r| task.is_labelled(r)).collect();
                let m = values.ncols();
                let n = labelled.len() as f64;
                let mut mean = vec![0.0f64; m];
                let mut var = vec![0.0f64; m];
                if n > 0.0 {
                    for &r in &labelled {
                        for (s, &v) in mean.iter_mut().zip(values.row(r)) {
                            *s += f64::from(v);
                        }
                    }
                    mean.iter_mut().for_each(|s| *s /= n);
                    for &r in &labelled {
                        for ((s, &v), mu) in var.iter_mut().zip(values.row(r)).zip(&mean) {
                            *s += (f64::from(v) - mu).powi(2);
                        }
                    }
                    var.iter_mut().for_each(|s| *s /= n);
                }
                let std = var
                    .iter()
                    .zip(&mean)
                    .map(|(&v, &mu)| {
                        let s = v.sqrt();
                        // Spread at the level of f32 rounding is no spread at all.
                        if s > f64::from(f32::EPSILON) * mu.abs().max(1.0) && s.is_finite() {
                            s as f32
                        } else {
                            1.0
                        }
                    })
                    .collect();
                Some(TargetScale {
                    mean: mean.iter().map(|&m| m as f32).collect(),
                    std,
                })
            })
            .collect();
        TargetStandardizer { scales }
    }

    /// A standardizer from per-task scales (`None` for tasks left alone).
    pub fn from_scales(scales: Vec<Option<TargetScale>>) -> Self {
        TargetStandardizer { scales }
    }

    /// Each task's scale: `None` for class and binary tasks.
    pub fn scales(&self) -> &[Option<TargetScale>] {
        &self.scales
    }

    /// `ds` with its regression targets standardised (unlabelled entries stay 0) and
    /// the scales recorded. `ds` must have the fitted dataset's tasks: the same count,
    /// regression where fitted on regression, of the same width, and not standardised
    /// already.
    pub fn apply(&self, ds: &MultiTaskDataset) -> Result<MultiTaskDataset> {
        self.apply_owned(ds.clone())
    }

    /// As [`apply`](Self::apply), consuming `ds` (no copy of its features).
    pub fn apply_owned(&self, mut ds: MultiTaskDataset) -> Result<MultiTaskDataset> {
        if ds.num_tasks() != self.scales.len() {
            return Err(Error::TaskCount {
                context: "TargetStandardizer::apply".into(),
                expected: self.scales.len(),
                got: ds.num_tasks(),
            });
        }
        for (k, scale) in self.scales.iter().enumerate() {
            let Some(scale) = scale else { continue };
            let task = &ds.tasks()[k];
            let TargetData::Regression(values) = &task.data else {
                return Err(Error::config(format!(
                    "TargetStandardizer: task `{}` is {}, but was fitted on regression targets",
                    task.name,
                    task.data.kind_name()
                )));
            };
            if ds.target_scale(k).is_some() {
                return Err(Error::config(format!(
                    "TargetStandardizer: the targets of task `{}` are standardised already",
                    task.name
                )));
            }
            let mut z = scale.standardize(values)?;
            for (r, mut row) in z.axis_iter_mut(Axis(0)).enumerate() {
                if !task.is_labelled(r) {
                    row.fill(0.0);
                }
            }
            ds.set_standardised_task(k, z, scale.clone());
        }
        Ok(ds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TaskData;
    use ndarray::array;

    fn data() -> MultiTaskDataset {
        MultiTaskDataset::new(
            array![[0.0f32], [1.0], [2.0], [3.0]],
            vec![
                TaskData::regression(
                    "r",
                    array![[1.0f32, 5.0], [3.0, 5.0], [99.0, 5.0], [5.0, 5.0]],
                )
                .with_mask(array![true, true, false, true]),
                TaskData::classes("c", array![0, 1, 0, 1], 2),
            ],
        )
        .unwrap()
    }

    #[test]
    fn fits_labelled_rows_and_keeps_constant_columns_finite() {
        let s = TargetStandardizer::fit(&data());
        let scale = s.scales()[0].as_ref().unwrap();
        assert_eq!(scale.mean(), &array![3.0f32, 5.0]);
        assert!((scale.std()[0] - (8.0f32 / 3.0).sqrt()).abs() < 1e-6);
        assert_eq!(scale.std()[1], 1.0);
        assert!(s.scales()[1].is_none());
        let scaled = s.apply(&data()).unwrap();
        let TargetData::Regression(z) = &scaled.tasks()[0].data else {
            panic!()
        };
        assert_eq!(z[[2, 0]], 0.0);
        assert_eq!(z[[1, 1]], 0.0);
        // Back to original units, row by row.
        let back = scale.to_original(z).unwrap();
        assert!((back[[3, 0]] - 5.0).abs() < 1e-5);
    }

    #[test]
    fn tensors_go_back_to_original_units() {
        let scale = TargetScale::from_parts(array![10.0f32], array![2.0]).unwrap();
        let out = Tensor::from_slice(&[0.5f32, -1.0]).view([2, 1]);
        let back = scale.output_to_original(&out).unwrap();
        assert_eq!(Vec::<f32>::try_from(back.view([-1])).unwrap(), [11.0, 8.0]);
        // Means and log-variances: the variance scales by std².
        let nll = Tensor::from_slice(&[1.0f32, 0.0]).view([1, 2]);
        let back =
            Vec::<f32>::try_from(scale.output_to_original(&nll).unwrap().view([-1])).unwrap();
        assert!((back[0] - 12.0).abs() < 1e-6 && (back[1] - 4f32.ln()).abs() < 1e-6);
        let target = TaskTarget::masked(
            Tensor::from_slice(&[1.0f32, 0.0]),
            Tensor::from_slice(&[true, false]),
        );
        let back = scale.target_to_original(&target).unwrap();
        assert_eq!(Vec::<f32>::try_from(&back.values).unwrap(), [12.0, 10.0]);
        assert!(back.mask.is_some());
        assert!(scale
            .output_to_original(&Tensor::zeros([2, 3], (Kind::Float, tch::Device::Cpu)))
            .is_err());
    }

    #[test]
    fn applying_twice_or_to_other_tasks_is_an_error() {
        let s = TargetStandardizer::fit(&data());
        let once = s.apply(&data()).unwrap();
        assert!(matches!(s.apply(&once), Err(Error::Config(_))));
        let other = MultiTaskDataset::new(
            array![[0.0f32]],
            vec![
                TaskData::binary("b", array![1.0]),
                TaskData::binary("c", array![0.0]),
            ],
        )
        .unwrap();
        assert!(s.apply(&other).is_err());
        assert!(TargetScale::from_parts(array![0.0f32], array![0.0]).is_err());
        assert!(TargetScale::from_parts(array![], array![]).is_err());
    }
}
