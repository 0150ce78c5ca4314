//! A validated multi-task dataset: one feature matrix and K tasks over the same rows.

use crate::batch::{build_batch, Batch, Batches};
use crate::target::{TargetData, TaskData};
use crate::target_scale::TargetScale;
use mtl_core::{derive_rng, Error, Result, SeededRng};
use ndarray::{Array2, Axis};
use rand::seq::SliceRandom;

/// The most classes a classification task may have: a class count is inferred from the
/// largest label, and a column of identifiers or amounts read as classes would otherwise
/// ask its head for billions of outputs (terabytes of weights) instead of failing.
pub const MAX_CLASSES: usize = 1 << 20;

/// Features `[n, F]` and K ≥ 1 tasks, each with a target for every one of the `n` rows
/// (some possibly unlabelled). Construction validates everything, so a dataset that
/// exists is consistent: equal row counts, finite features, labels in range.
#[derive(Debug, Clone)]
pub struct MultiTaskDataset {
    features: Array2<f32>,
    tasks: Vec<TaskData>,
    // Per task: category names of a classification task, when known (CSV string labels).
    class_names: Vec<Option<Vec<String>>>,
    // Per task: the map from the stored (standardised) regression targets back to their
    // original units, set by `TargetStandardizer`.
    target_scales: Vec<Option<TargetScale>>,
    // The feature columns' names, when known (the CSV header), so a saved model can
    // read the same columns from another file.
    feature_names: Option<Vec<String>>,
}

/// A dataset cut into train, validation and test parts (disjoint rows).
#[derive(Debug, Clone)]
pub struct Split {
    /// The training rows.
    pub train: MultiTaskDataset,
    /// The validation rows (may be empty).
    pub validation: MultiTaskDataset,
    /// The test rows (may be empty).
    pub test: MultiTaskDataset,
}

/// The row indices of a split, each part in ascending order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitRows {
    /// Rows of the training part.
    pub train: Vec<usize>,
    /// Rows of the validation part.
    pub validation: Vec<usize>,
    /// Rows of the test part.
    pub test: Vec<usize>,
}

impl MultiTaskDataset {
    /// Builds a dataset, checking that there is at least one task, that every task (and
    /// its mask) has one entry per feature row, that features are finite, and that the
    /// labelled targets are valid: class indices in `0..classes`, binary values 0 or 1,
    /// finite regression values. Unlabelled entries are reset to 0 (so a masked loss
    /// never meets a NaN), and an all-true mask is dropped.
    ///
    /// ```
    /// use mtl_data::{MultiTaskDataset, TaskData};
    /// use ndarray::array;
    /// let ds = MultiTaskDataset::new(
    ///     array![[0.0f32, 1.0], [2.0, 3.0], [4.0, 5.0]],
    ///     vec![
    ///         TaskData::classes("colour", array![0, 2, 1], 3),
    ///         TaskData::binary("big", array![0.0, 1.0, 1.0]).with_mask(array![true, false, true]),
    ///     ],
    /// )?;
    /// assert_eq!((ds.len(), ds.num_features(), ds.num_tasks()), (3, 2, 2));
    /// assert!(MultiTaskDataset::new(array![[0.0f32]], vec![]).is_err());
    /// # Ok::<(), mtl_core::Error>(())
    /// ```
    pub fn new(features: Array2<f32>, tasks: Vec<TaskData>) -> Result<Self> {
        let k = tasks.len();
        Self::with_class_names_unchecked(features, tasks, vec![None; k])
    }

    fn with_class_names_unchecked(
        features: Array2<f32>,
        mut tasks: Vec<TaskData>,
        class_names: Vec<Option<Vec<String>>>,
    ) -> Result<Self> {
        if tasks.is_empty() {
            return Err(Error::TaskCount {
                context: "MultiTaskDataset".into(),
                expected: 0,
                got: 0,
            });
        }
        if features.ncols() == 0 {
            return Err(Error::shape(
                "MultiTaskDataset features",
                "at least one column",
                "0 columns",
            ));
        }
        check_finite_features(&features)?;
        let n = features.nrows();
        for (i, t) in tasks.iter().enumerate() {
            if let Some(j) = tasks[..i].iter().position(|u| u.name == t.name) {
                return Err(Error::config(format!(
                    "tasks {j} and {i} are both named `{}`",
                    t.name
                )));
            }
        }
        for (k, task) in tasks.iter_mut().enumerate() {
            validate_task(k, task, n)?;
        }
        let target_scales = vec![None; tasks.len()];
        Ok(MultiTaskDataset {
            features,
            tasks,
            class_names,
            target_scales,
            feature_names: None,
        })
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.features.nrows()
    }

    /// Whether the dataset has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of feature columns.
    pub fn num_features(&self) -> usize {
        self.features.ncols()
    }

    /// The number of tasks, K.
    pub fn num_tasks(&self) -> usize {
        self.tasks.len()
    }

    /// The features, `[n, F]`.
    pub fn features(&self) -> &Array2<f32> {
        &self.features
    }

    /// The tasks, in order.
    pub fn tasks(&self) -> &[TaskData] {
        &self.tasks
    }

    /// The task names, in order.
    pub fn task_names(&self) -> Vec<String> {
        self.tasks.iter().map(|t| t.name.clone()).collect()
    }

    /// The index of the task called `name`.
    pub fn task_index(&self, name: &str) -> Result<usize> {
        self.tasks
            .iter()
            .position(|t| t.name == name)
            .ok_or_else(|| Error::Unknown {
                kind: "task",
                name: name.to_string(),
                known: self.task_names().join(", "),
            })
    }

    /// The category names of classification task `k` (class `i` is `names[i]`), when
    /// known: set by [`read_csv`](crate::read_csv) for string labels and by
    /// [`with_class_names`](Self::with_class_names).
    pub fn class_names(&self, k: usize) -> Option<&[String]> {
        self.class_names.get(k)?.as_deref()
    }

    /// Records the category names of classification task `k`; there must be one name
    /// per class.
    pub fn with_class_names(mut self, k: usize, names: Vec<String>) -> Result<Self> {
        let task = self.task(k, "with_class_names")?;
        let TargetData::Classes { classes, .. } = task.data else {
            return Err(Error::config(format!(
                "with_class_names: task `{}` is {}, not a classification task",
                task.name,
                task.data.kind_name()
            )));
        };
        if names.len() != classes {
            return Err(Error::shape(
                format!("class names of task `{}`", task.name),
                format!("{classes} names"),
                format!("{} names", names.len()),
            ));
        }
        self.class_names[k] = Some(names);
        Ok(self)
    }

    /// The names of the feature columns, in order, when known: set by
    /// [`read_csv`](crate::read_csv) (the header's names) and by
    /// [`with_feature_names`](Self::with_feature_names), and kept by splits, subsets and
    /// standardisation.
    pub fn feature_names(&self) -> Option<&[String]> {
        self.feature_names.as_deref()
    }

    /// Records the names of the feature columns; there must be one per column.
    ///
    /// ```
    /// # use mtl_data::{MultiTaskDataset, TaskData};
    /// # use ndarray::array;
    /// let ds = MultiTaskDataset::new(
    ///     array![[0.0f32, 1.0]],
    ///     vec![TaskData::binary("b", array![1.0])],
    /// )?
    /// .with_feature_names(vec!["age".into(), "income".into()])?;
    /// assert_eq!(ds.split(0.0, 0.0, 0)?.train.feature_names().unwrap(), ["age", "income"]);
    /// assert!(ds.with_feature_names(vec!["age".into()]).is_err());
    /// # Ok::<(), mtl_core::Error>(())
    /// ```
    pub fn with_feature_names(mut self, names: Vec<String>) -> Result<Self> {
        if names.len() != self.num_features() {
            return Err(Error::shape(
                "feature names",
                format!("{} names (one per feature column)", self.num_features()),
                format!("{} names", names.len()),
            ));
        }
        self.feature_names = Some(names);
        Ok(self)
    }

    /// Per-class counts of the labelled rows of classification task `k`.
    pub fn class_counts(&self, k: usize) -> Result<Vec<usize>> {
        let task = self.task(k, "class_counts")?;
        let TargetData::Classes { labels, classes } = &task.data else {
            return Err(Error::config(format!(
                "class_counts: task `{}` is {}, not a classification task",
                task.name,
                task.data.kind_name()
            )));
        };
        let mut counts = vec![0; *classes];
        for (row, &l) in labels.iter().enumerate() {
            if task.is_labelled(row) {
                // Validated to lie in 0..classes.
                counts[l as usize] += 1;
            }
        }
        Ok(counts)
    }

    fn task(&self, k: usize, context: &str) -> Result<&TaskData> {
        self.tasks.get(k).ok_or_else(|| {
            Error::config(format!(
                "{context}: task index {k} out of range 0..{}",
                self.num_tasks()
            ))
        })
    }

    fn check_rows(&self, rows: &[usize], context: &str) -> Result<()> {
        match rows.iter().position(|&r| r >= self.len()) {
            Some(i) => Err(Error::shape(
                context,
                format!("row indices below {}", self.len()),
                format!("row {} at position {i}", rows[i]),
            )),
            None => Ok(()),
        }
    }

    /// The dataset restricted to `rows`, in that order (repeats allowed).
    ///
    /// ```
    /// # use mtl_data::{MultiTaskDataset, TaskData};
    /// # use ndarray::array;
    /// let ds = MultiTaskDataset::new(
    ///     array![[0.0f32], [1.0], [2.0]],
    ///     vec![TaskData::classes("c", array![0, 1, 0], 2)],
    /// )?;
    /// let sub = ds.subset(&[2, 0])?;
    /// assert_eq!(sub.features(), &array![[2.0f32], [0.0]]);
    /// assert!(ds.subset(&[3]).is_err());
    /// # Ok::<(), mtl_core::Error>(())
    /// ```
    pub fn subset(&self, rows: &[usize]) -> Result<Self> {
        self.check_rows(rows, "subset")?;
        Ok(MultiTaskDataset {
            features: self.features.select(Axis(0), rows),
            tasks: self.tasks.iter().map(|t| t.select(rows)).collect(),
            class_names: self.class_names.clone(),
            target_scales: self.target_scales.clone(),
            feature_names: self.feature_names.clone(),
        })
    }

    /// The rows of a seeded random split: a fraction `validation` of the rows goes to
    /// validation, `test` to test (each rounded to the nearest row), the rest to train.
    /// Fractions must be finite, in `[0, 1)`, and leave at least one training row.
    pub fn split_rows(&self, validation: f64, test: f64, seed: u64) -> Result<SplitRows> {
        split_rows(self.len(), validation, test, seed)
    }

    /// A seeded random split into train, validation and test (see
    /// [`split_rows`](Self::split_rows)); each part keeps the original row order.
    ///
    /// ```
    /// # use mtl_data::{MultiTaskDataset, TaskData};
    /// # use ndarray::{Array1, Array2};
    /// let ds = MultiTaskDataset::new(
    ///     Array2::zeros((100, 2)),
    ///     vec![TaskData::binary("b", Array1::zeros(100))],
    /// )?;
    /// let s = ds.split(0.2, 0.1, 7)?;
    /// assert_eq!((s.train.len(), s.validation.len(), s.test.len()), (70, 20, 10));
    /// # Ok::<(), mtl_core::Error>(())
    /// ```
    pub fn split(&self, validation: f64, test: f64, seed: u64) -> Result<Split> {
        let rows = self.split_rows(validation, test, seed)?;
        Ok(Split {
            train: self.subset(&rows.train)?,
            validation: self.subset(&rows.validation)?,
            test: self.subset(&rows.test)?,
        })
    }

    /// Mini-batches covering every row exactly once: in order when `rng` is `None`,
    /// shuffled with `rng` otherwise. The last batch may be smaller.
    ///
    /// ```
    /// # use mtl_data::{MultiTaskDataset, TaskData};
    /// # use ndarray::{Array1, Array2};
    /// let ds = MultiTaskDataset::new(
    ///     Array2::zeros((10, 3)),
    ///     vec![TaskData::classes("c", Array1::zeros(10), 2)],
    /// )?;
    /// let sizes: Vec<usize> = ds.batches(4, None)?.map(|b| b.len()).collect();
    /// assert_eq!(sizes, [4, 4, 2]);
    /// let mut rng = mtl_core::derive_rng(1, "batches");
    /// assert_eq!(ds.batches(4, Some(&mut rng))?.count(), 3);
    /// # Ok::<(), mtl_core::Error>(())
    /// ```
    pub fn batches(&self, batch_size: usize, rng: Option<&mut SeededRng>) -> Result<Batches<'_>> {
        if batch_size == 0 {
            return Err(Error::config("batch size must be at least 1"));
        }
        let mut order: Vec<usize> = (0..self.len()).collect();
        if let Some(rng) = rng {
            order.shuffle(rng);
        }
        Ok(Batches::new(self, order, batch_size))
    }

    /// As [`batches`](Self::batches), over a shared dataset: the iterator holds the
    /// [`Arc`](std::sync::Arc), so it is `'static` and can move to another thread (see
    /// [`prefetch`](crate::prefetch)).
    ///
    /// ```
    /// # use mtl_data::{MultiTaskDataset, TaskData};
    /// # use ndarray::{Array1, Array2};
    /// let ds = std::sync::Arc::new(MultiTaskDataset::new(
    ///     Array2::zeros((10, 3)),
    ///     vec![TaskData::classes("c", Array1::zeros(10), 2)],
    /// )?);
    /// let sizes: Vec<usize> = mtl_data::prefetch(ds.shared_batches(4, None)?, 2).map(|b| b.len()).collect();
    /// assert_eq!(sizes, [4, 4, 2]);
    /// # Ok::<(), mtl_core::Error>(())
    /// ```
    pub fn shared_batches(
        self: &std::sync::Arc<Self>,
        batch_size: usize,
        rng: Option<&mut SeededRng>,
    ) -> Result<Batches<'static>> {
        let order = self.batches(batch_size, rng)?.order().to_vec();
        Ok(Batches::shared(self.clone(), order, batch_size))
    }

    /// One batch of the given rows, in that order.
    pub fn batch(&self, rows: &[usize]) -> Result<Batch> {
        self.check_rows(rows, "batch")?;
        Ok(build_batch(self, rows))
    }

    /// The same rows with only task `k`, for single-task baselines.
    pub fn only_task(&self, k: usize) -> Result<Self> {
        let task = self.task(k, "only_task")?;
        Ok(MultiTaskDataset {
            features: self.features.clone(),
            tasks: vec![task.clone()],
            class_names: vec![self.class_names[k].clone()],
            target_scales: vec![self.target_scales[k].clone()],
            feature_names: self.feature_names.clone(),
        })
    }

    /// The same dataset with task `k` labelled only where it was labelled and `keep` is
    /// true (the two masks combined), everything else (class names, target scales,
    /// feature names) kept. Federated splits use it to give a client the labels of
    /// some tasks only.
    ///
    /// ```
    /// # use mtl_data::{MultiTaskDataset, TaskData};
    /// # use ndarray::array;
    /// let ds = MultiTaskDataset::new(
    ///     array![[0.0f32], [1.0], [2.0]],
    ///     vec![TaskData::binary("b", array![1.0, 0.0, 1.0]).with_mask(array![true, true, false])],
    /// )?;
    /// let masked = ds.mask_task(0, &array![false, true, true])?;
    /// assert_eq!(masked.tasks()[0].labelled(), 1);
    /// assert!(ds.mask_task(0, &array![true]).is_err());
    /// # Ok::<(), mtl_core::Error>(())
    /// ```
    pub fn mask_task(&self, k: usize, keep: &ndarray::Array1<bool>) -> Result<Self> {
        let mut task = self.task(k, "mask_task")?.clone();
        if keep.len() != self.len() {
            return Err(Error::RowCount {
                what: format!("mask for task `{}`", task.name),
                expected: self.len(),
                got: keep.len(),
            });
        }
        let mask = match &task.mask {
            Some(m) => m & keep,
            None => keep.clone(),
        };
        task.mask = Some(mask);
        // Re-validation zeroes the newly unlabelled entries, as construction does.
        validate_task(k, &mut task, self.len())?;
        let mut out = self.clone();
        out.tasks[k] = task;
        Ok(out)
    }

    /// The same tasks over new features with the same number of rows (finite).
    pub(crate) fn with_features(&self, features: Array2<f32>) -> Result<Self> {
        if features.nrows() != self.len() {
            return Err(Error::RowCount {
                what: "replacement features".into(),
                expected: self.len(),
                got: features.nrows(),
            });
        }
        check_finite_features(&features)?;
        Ok(MultiTaskDataset {
            features,
            tasks: self.tasks.clone(),
            class_names: self.class_names.clone(),
            target_scales: self.target_scales.clone(),
            feature_names: self.feature_names.clone(),
        })
    }

    /// The same dataset with its features changed in place by `f` (which must keep
    /// them finite), without a second copy of the matrix.
    pub(crate) fn map_features_in_place(
        mut self,
        f: impl FnOnce(&mut Array2<f32>),
    ) -> Result<Self> {
        f(&mut self.features);
        check_finite_features(&self.features)?;
        Ok(self)
    }

    /// When regression task `k`'s targets are stored standardised: the map back to
    /// their original units (set by [`TargetStandardizer`](crate::TargetStandardizer)).
    /// Evaluation reports the task's metrics in original units through it.
    pub fn target_scale(&self, k: usize) -> Option<&TargetScale> {
        self.target_scales.get(k)?.as_ref()
    }

    /// Replaces regression task `k`'s targets by standardised ones and records the map
    /// back. The caller has checked the task is regression and not yet standardised.
    pub(crate) fn set_standardised_task(
        &mut self,
        k: usize,
        values: Array2<f32>,
        scale: TargetScale,
    ) {
        if let TargetData::Regression(v) = &mut self.tasks[k].data {
            *v = values;
        }
        self.target_scales[k] = Some(scale);
    }

    /// Builds a dataset with the class names of some tasks already known.
    pub(crate) fn with_all_class_names(
        features: Array2<f32>,
        tasks: Vec<TaskData>,
        class_names: Vec<Option<Vec<String>>>,
    ) -> Result<Self> {
        let ds = Self::new(features, tasks)?;
        class_names
            .into_iter()
            .enumerate()
            .try_fold(ds, |ds, (k, names)| match names {
                Some(names) => ds.with_class_names(k, names),
                None => Ok(ds),
            })
    }
}

fn check_finite_features(features: &Array2<f32>) -> Result<()> {
    if let Some(((r, c), v)) = features.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: format!("features at row {r}, column {c}"),
            task: None,
            step: None,
            value: v.to_string(),
        });
    }
    Ok(())
}

/// Checks task `k` against `n` rows and clears its unlabelled entries.
fn validate_task(k: usize, task: &mut TaskData, n: usize) -> Result<()> {
    if task.len() != n {
        return Err(Error::RowCount {
            what: format!("task `{}`", task.name),
            expected: n,
            got: task.len(),
        });
    }
    if let Some(m) = &task.mask {
        if m.len() != n {
            return Err(Error::RowCount {
                what: format!("mask of task `{}`", task.name),
                expected: n,
                got: m.len(),
            });
        }
        if m.iter().all(|&b| b) {
            task.mask = None;
        }
    }
    let labelled: Vec<bool> = (0..n).map(|r| task.is_labelled(r)).collect();
    let name = &task.name;
    match &mut task.data {
        TargetData::Classes { labels, classes } => {
            if *classes == 0 {
                return Err(Error::config(format!(
                    "task `{name}` is a classification task with 0 classes"
                )));
            }
            if *classes > MAX_CLASSES {
                let largest = labels
                    .iter()
                    .enumerate()
                    .filter(|(row, _)| labelled[*row])
                    .max_by_key(|(_, l)| **l)
                    .map(|(row, l)| format!(" (label {l} at row {row})"))
                    .unwrap_or_default();
                return Err(Error::config(format!(
                    "task `{name}` would have {classes} classes{largest}, more than the \
                     {MAX_CLASSES} supported: is the column an identifier or a number to \
                     regress rather than a class?"
                )));
            }
            for (row, l) in labels.iter_mut().enumerate() {
                if !labelled[row] {
                    *l = 0;
                } else if *l < 0 || *l >= *classes as i64 {
                    return Err(Error::LabelOutOfRange {
                        task: k,
                        row,
                        label: *l,
                        classes: *classes as i64,
                    });
                }
            }
        }
        TargetData::Binary(values) => {
            for (row, v) in values.iter_mut().enumerate() {
                if !labelled[row] {
                    *v = 0.0;
                } else if !v.is_finite() {
                    return Err(Error::NonFinite {
                        what: format!("binary target of task `{name}` at row {row}"),
                        task: Some(k),
                        step: None,
                        value: v.to_string(),
                    });
                } else if *v != 0.0 && *v != 1.0 {
                    return Err(Error::config(format!(
                        "binary target of task `{name}` at row {row} is {v}, expected 0 or 1"
                    )));
                }
            }
        }
        TargetData::Regression(values) => {
            if values.ncols() == 0 {
                return Err(Error::shape(
                    format!("regression target of task `{name}`"),
                    "at least one column",
                    "0 columns",
                ));
            }
            for ((row, col), v) in values.indexed_iter_mut() {
                if !labelled[row] {
                    *v = 0.0;
                } else if !v.is_finite() {
                    return Err(Error::NonFinite {
                        what: format!(
                            "regression target of task `{name}` at row {row}, column {col}"
                        ),
                        task: Some(k),
                        step: None,
                        value: v.to_string(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// The rows of a seeded split of `n` rows (see [`MultiTaskDataset::split_rows`]); every
/// dataset kind splits by this one rule, so the same N and seed give the same rows.
pub(crate) fn split_rows(n: usize, validation: f64, test: f64, seed: u64) -> Result<SplitRows> {
    for (what, f) in [("validation", validation), ("test", test)] {
        if !f.is_finite() || !(0.0..1.0).contains(&f) {
            return Err(Error::config(format!(
                "split: {what} fraction must be in [0, 1), got {f}"
            )));
        }
    }
    let n_val = (n as f64 * validation).round() as usize;
    let n_test = (n as f64 * test).round() as usize;
    if n > 0 && n_val + n_test >= n {
        return Err(Error::config(format!(
            "split: validation {validation} + test {test} of {n} rows leaves no training rows"
        )));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut derive_rng(seed, "split"));
    let part = |range: std::ops::Range<usize>| {
        let mut rows = order[range].to_vec();
        rows.sort_unstable();
        rows
    };
    Ok(SplitRows {
        validation: part(0..n_val),
        test: part(n_val..n_val + n_test),
        train: part(n_val + n_test..n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array1};

    fn small() -> MultiTaskDataset {
        MultiTaskDataset::new(
            array![[0.0f32, 1.0], [2.0, 3.0], [4.0, 5.0]],
            vec![
                TaskData::classes("c", array![0, 2, 1], 3),
                TaskData::regression("r", array![[1.0f32], [f32::NAN], [3.0]])
                    .with_mask(array![true, false, true]),
            ],
        )
        .unwrap()
    }

    #[test]
    fn unlabelled_entries_are_cleared_and_full_masks_dropped() {
        let ds = small();
        assert_eq!(
            ds.tasks()[1].data,
            TargetData::Regression(array![[1.0f32], [0.0], [3.0]])
        );
        let full = MultiTaskDataset::new(
            array![[0.0f32]],
            vec![TaskData::binary("b", array![1.0]).with_mask(array![true])],
        )
        .unwrap();
        assert_eq!(full.tasks()[0].mask, None);
    }

    #[test]
    fn bad_binary_and_regression_targets_are_rejected() {
        let x = array![[0.0f32], [1.0]];
        let half = MultiTaskDataset::new(x.clone(), vec![TaskData::binary("b", array![0.0, 0.5])]);
        assert!(matches!(half, Err(Error::Config(m)) if m.contains("row 1")));
        let inf = MultiTaskDataset::new(
            x.clone(),
            vec![
                TaskData::binary("b", array![0.0, 1.0]),
                TaskData::regression("r", array![[0.0f32], [f32::INFINITY]]),
            ],
        );
        assert!(matches!(inf, Err(Error::NonFinite { task: Some(1), .. })));
        let no_cols =
            MultiTaskDataset::new(x, vec![TaskData::regression("r", Array2::zeros((2, 0)))]);
        assert!(matches!(no_cols, Err(Error::Shape { .. })));
    }

    #[test]
    fn mask_length_and_duplicate_names_are_checked() {
        let x = array![[0.0f32], [1.0]];
        let short = MultiTaskDataset::new(
            x.clone(),
            vec![TaskData::binary("b", array![0.0, 1.0]).with_mask(array![true])],
        );
        assert!(
            matches!(short, Err(Error::RowCount { what, expected: 2, got: 1 }) if what.contains("mask"))
        );
        let dup = MultiTaskDataset::new(
            x,
            vec![
                TaskData::binary("b", array![0.0, 1.0]),
                TaskData::classes("b", array![0, 1], 2),
            ],
        );
        assert!(matches!(dup, Err(Error::Config(_))));
    }

    #[test]
    fn only_task_and_task_index() {
        let ds = small()
            .with_class_names(0, vec!["a".into(), "b".into(), "c".into()])
            .unwrap();
        assert_eq!(ds.task_index("r").unwrap(), 1);
        assert!(matches!(ds.task_index("zz"), Err(Error::Unknown { .. })));
        let one = ds.only_task(0).unwrap();
        assert_eq!(one.task_names(), ["c"]);
        assert_eq!(one.class_names(0).unwrap()[2], "c");
        assert_eq!(one.features(), ds.features());
        assert!(ds.only_task(2).is_err());
        assert!(ds.clone().with_class_names(1, vec![]).is_err());
        assert!(ds.with_class_names(0, vec!["a".into()]).is_err());
    }

    #[test]
    fn bad_split_fractions_are_rejected() {
        let ds = MultiTaskDataset::new(
            Array2::zeros((10, 1)),
            vec![TaskData::binary("b", Array1::zeros(10))],
        )
        .unwrap();
        assert!(ds.split(-0.1, 0.1, 0).is_err());
        assert!(ds.split(0.5, f64::NAN, 0).is_err());
        assert!(ds.split(0.5, 0.5, 0).is_err());
        assert!(ds.split(1.0, 0.0, 0).is_err());
        let s = ds.split(0.0, 0.0, 0).unwrap();
        assert_eq!(
            (s.train.len(), s.validation.len(), s.test.len()),
            (10, 0, 0)
        );
    }
}
