//! Heterogeneous multi-task data: each task brings its own dataset, with its own rows and
//! its own inputs ("D₁ for task 1, D₂ for task 2"), instead of K labels on shared rows.

use crate::batch::Batch;
use crate::dataset::MultiTaskDataset;
use crate::target::{TargetData, TaskData};
use mtl_core::{Error, Result, TaskTarget};
use ndarray::{concatenate, Array1, Array2, Axis};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// K tasks, each with its own single-task [`MultiTaskDataset`] (rows, features, and
/// possibly feature widths differ between tasks). Cheap to clone: the datasets are
/// shared.
///
/// Training on it: draw per-step task batches from a
/// [`TaskSchedule`](crate::TaskSchedule) ([`schedule`](Self::schedule)). Each batch
/// holds one task's rows with one target; [`widen`](Self::widen) turns it into a
/// K-target batch whose other tasks are fully masked (their masked losses are exact
/// zeros), and when every task has the same feature width
/// [`TaskSchedule::next_merged`](crate::TaskSchedule::next_merged) gives one such batch
/// per step, which the ordinary training step consumes unchanged.
#[derive(Debug, Clone)]
pub struct MultiInputData {
    tasks: Vec<Arc<MultiTaskDataset>>,
}

/// A [`MultiInputData`] cut into train, validation and test parts, task by task.
#[derive(Debug, Clone)]
pub struct MultiInputSplit {
    /// The training rows of every task.
    pub train: MultiInputData,
    /// The validation rows of every task.
    pub validation: MultiInputData,
    /// The test rows of every task.
    pub test: MultiInputData,
}

impl MultiInputData {
    /// Builds from one single-task dataset per task; task names must be unique.
    ///
    /// ```
    /// use mtl_data::{MultiInputData, MultiTaskDataset, TaskData};
    /// use ndarray::{array, Array2};
    /// let d1 = MultiTaskDataset::new(Array2::zeros((3, 4)), vec![TaskData::classes("a", array![0, 1, 1], 2)])?;
    /// let d2 = MultiTaskDataset::new(Array2::zeros((5, 2)), vec![TaskData::binary("b", array![0., 1., 0., 1., 1.])])?;
    /// let data = MultiInputData::new(vec![d1, d2])?;
    /// assert_eq!((data.sizes(), data.feature_widths()), (vec![3, 5], vec![4, 2]));
    /// # Ok::<(), mtl_core::Error>(())
    /// ```
    pub fn new(datasets: Vec<MultiTaskDataset>) -> Result<Self> {
        if datasets.is_empty() {
            return Err(Error::TaskCount {
                context: "MultiInputData".into(),
                expected: 0,
                got: 0,
            });
        }
        for (k, ds) in datasets.iter().enumerate() {
            if ds.num_tasks() != 1 {
                return Err(Error::TaskCount {
                    context: format!("MultiInputData dataset {k}"),
                    expected: 1,
                    got: ds.num_tasks(),
                });
            }
            let name = &ds.tasks()[0].name;
            if let Some(j) = datasets[..k]
                .iter()
                .position(|d| d.tasks()[0].name == *name)
            {
                return Err(Error::config(format!(
                    "MultiInputData: tasks {j} and {k} are both named `{name}`"
                )));
            }
        }
        Ok(MultiInputData {
            tasks: datasets.into_iter().map(Arc::new).collect(),
        })
    }

    /// Builds from per-task features and target (each pair checked as a dataset).
    pub fn from_parts(parts: Vec<(Array2<f32>, TaskData)>) -> Result<Self> {
        let datasets = parts
            .into_iter()
            .map(|(x, t)| MultiTaskDataset::new(x, vec![t]))
            .collect::<Result<Vec<_>>>()?;
        Self::new(datasets)
    }

    /// Splits a dataset with partial labels into one dataset per task: task `k` keeps
    /// the rows labelled for it (class names carried over).
    pub fn from_dataset(ds: &MultiTaskDataset) -> Result<Self> {
        let datasets = (0..ds.num_tasks())
            .map(|k| {
                let rows: Vec<usize> = (0..ds.len())
                    .filter(|&r| ds.tasks()[k].is_labelled(r))
                    .collect();
                ds.only_task(k)?.subset(&rows)
            })
            .collect::<Result<Vec<_>>>()?;
        Self::new(datasets)
    }

    /// The number of tasks, K.
    pub fn num_tasks(&self) -> usize {
        self.tasks.len()
    }

    /// The task names, in order.
    pub fn task_names(&self) -> Vec<String> {
        self.tasks
            .iter()
            .map(|d| d.tasks()[0].name.clone())
            .collect()
    }

    /// Task `k`'s dataset.
    pub fn dataset(&self, k: usize) -> Result<&MultiTaskDataset> {
        self.tasks.get(k).map(|d| d.as_ref()).ok_or_else(|| {
            Error::config(format!(
                "task index {k} out of range 0..{}",
                self.num_tasks()
            ))
        })
    }

    /// The shared handle of task `k`'s dataset (for prefetching threads).
    pub(crate) fn shared(&self, k: usize) -> &Arc<MultiTaskDataset> {
        &self.tasks[k]
    }

    /// The number of rows of each task.
    pub fn sizes(&self) -> Vec<usize> {
        self.tasks.iter().map(|d| d.len()).collect()
    }

    /// The feature width of each task.
    pub fn feature_widths(&self) -> Vec<usize> {
        self.tasks.iter().map(|d| d.num_features()).collect()
    }

    /// The head width each task needs (classes, 1 for binary, outputs for regression).
    pub fn output_dims(&self) -> Vec<usize> {
        self.tasks
            .iter()
            .map(|d| d.tasks()[0].data.output_dim())
            .collect()
    }

    /// Splits every task's rows with [`MultiTaskDataset::split`], task `k` seeded with
    /// `seed + k` so the tasks' splits are independent.
    pub fn split(&self, validation: f64, test: f64, seed: u64) -> Result<MultiInputSplit> {
        let mut parts = (Vec::new(), Vec::new(), Vec::new());
        for (k, d) in self.tasks.iter().enumerate() {
            let s = d.split(validation, test, seed.wrapping_add(k as u64))?;
            parts.0.push(s.train);
            parts.1.push(s.validation);
            parts.2.push(s.test);
        }
        Ok(MultiInputSplit {
            train: Self::new(parts.0)?,
            validation: Self::new(parts.1)?,
            test: Self::new(parts.2)?,
        })
    }

    /// All rows of all tasks stacked into one K-task dataset in which task `k` is
    /// labelled exactly on the rows that came from its own dataset. Needs one feature
    /// width across tasks. This is what partial labels look like to the ordinary
    /// trainer, and it is what `mtl::evaluate` needs to score every
    /// task on its own rows.
    pub fn to_masked(&self) -> Result<MultiTaskDataset> {
        let width = self.common_width("to_masked")?;
        let views: Vec<_> = self.tasks.iter().map(|d| d.features().view()).collect();
        let features = concatenate(Axis(0), &views)
            .map_err(|e| Error::shape("MultiInputData::to_masked", format!("[n, {width}]"), e))?;
        let total = features.nrows();
        let mut tasks = Vec::with_capacity(self.num_tasks());
        let mut names = Vec::with_capacity(self.num_tasks());
        let mut start = 0;
        for d in &self.tasks {
            let own = &d.tasks()[0];
            let n = d.len();
            let mask = Array1::from_shape_fn(total, |r| {
                (start..start + n).contains(&r) && own.is_labelled(r - start)
            });
            let data = match &own.data {
                TargetData::Classes { labels, classes } => TargetData::Classes {
                    labels: pad(labels.view(), start, total, 0),
                    classes: *classes,
                },
                TargetData::Binary(v) => TargetData::Binary(pad(v.view(), start, total, 0.0)),
                TargetData::Regression(v) => {
                    let mut full = Array2::zeros((total, v.ncols()));
                    full.slice_mut(ndarray::s![start..start + n, ..]).assign(v);
                    TargetData::Regression(full)
                }
            };
            tasks.push(TaskData::from_data(own.name.clone(), data).with_mask(mask));
            names.push(d.class_names(0).map(<[String]>::to_vec));
            start += n;
        }
        MultiTaskDataset::with_all_class_names(features, tasks, names)
    }

    /// A batch of task `task`'s rows (one target) as a K-target batch: task `task`'s
    /// target in its place, every other task an all-unlabelled target of the right kind
    /// and shape, so masked losses of the other heads are exact zeros.
    ///
    /// ```
    /// # use mtl_data::{MultiInputData, MultiTaskDataset, TaskData};
    /// # use ndarray::{array, Array2};
    /// # let d1 = MultiTaskDataset::new(Array2::zeros((3, 2)), vec![TaskData::classes("a", array![0, 1, 1], 2)])?;
    /// # let d2 = MultiTaskDataset::new(Array2::zeros((2, 2)), vec![TaskData::binary("b", array![0., 1.])])?;
    /// let data = MultiInputData::new(vec![d1, d2])?;
    /// let wide = data.widen(1, data.dataset(1)?.batch(&[0, 1])?)?;
    /// assert_eq!(wide.targets.len(), 2);
    /// assert_eq!((wide.targets[0].labelled(), wide.targets[1].labelled()), (0, 2));
    /// # Ok::<(), mtl_core::Error>(())
    /// ```
    pub fn widen(&self, task: usize, batch: Batch) -> Result<Batch> {
        self.dataset(task)?;
        if batch.targets.len() != 1 {
            return Err(Error::TaskCount {
                context: "MultiInputData::widen".into(),
                expected: 1,
                got: batch.targets.len(),
            });
        }
        let b = batch.len() as i64;
        let Batch {
            x,
            mut targets,
            rows,
        } = batch;
        let own = targets.remove(0);
        let device = x.device();
        let targets = (0..self.num_tasks())
            .map(|j| {
                if j == task {
                    Ok(TaskTarget {
                        values: own.values.shallow_clone(),
                        mask: own.mask.as_ref().map(Tensor::shallow_clone),
                    })
                } else {
                    self.empty_target(j, b, device)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Batch { x, targets, rows })
    }

    /// Task `j`'s target for `b` rows none of which is labelled.
    fn empty_target(&self, j: usize, b: i64, device: Device) -> Result<TaskTarget> {
        let values = match &self.tasks[j].tasks()[0].data {
            TargetData::Classes { .. } => Tensor::f_zeros([b], (Kind::Int64, device))?,
            TargetData::Binary(_) => Tensor::f_zeros([b], (Kind::Float, device))?,
            TargetData::Regression(v) => {
                Tensor::f_zeros([b, v.ncols() as i64], (Kind::Float, device))?
            }
        };
        Ok(TaskTarget::masked(
            values,
            Tensor::f_zeros([b], (Kind::Bool, device))?,
        ))
    }

    /// The one feature width of all tasks, or an error naming the widths.
    pub(crate) fn common_width(&self, context: &str) -> Result<usize> {
        let widths = self.feature_widths();
        match widths.iter().all(|&w| w == widths[0]) {
            true => Ok(widths[0]),
            false => Err(Error::shape(
                format!("MultiInputData::{context}"),
                "one feature width across tasks",
                format!("widths {widths:?}"),
            )),
        }
    }
}

/// `values` placed at rows `start..` of a vector of `total` entries, the rest `fill`.
fn pad<T: Clone>(
    values: ndarray::ArrayView1<'_, T>,
    start: usize,
    total: usize,
    fill: T,
) -> Array1<T> {
    let mut out = Array1::from_elem(total, fill);
    out.slice_mut(ndarray::s![start..start + values.len()])
        .assign(&values);
    out
}
