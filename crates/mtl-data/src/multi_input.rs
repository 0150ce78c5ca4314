//! Heterogeneous multi-task data: each task brings its own dataset, with its own rows and
//! its own inputs ("D₁ for task 1, D₂ for task 2"), instead of K labels on shared rows.
//! A task's dataset is a table ([`MultiTaskDataset`]) or tensors of any shape
//! ([`TensorDataset`]: token ids, images), one task each.

use crate::batch::Batch;
use crate::dataset::MultiTaskDataset;
use crate::joint_data::JointData;
use crate::target::{TargetData, TaskData};
use crate::tensor_dataset::TensorDataset;
use mtl_core::{Error, Result, TaskTarget};
use ndarray::{concatenate, Array1, Array2, Axis};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// K tasks, each with its own single-task dataset — a [`MultiTaskDataset`] or a
/// [`TensorDataset`] (rows, features, and possibly feature widths differ between
/// tasks). Cheap to clone: the datasets are shared.
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
    tasks: Vec<Source>,
}

/// One task's dataset, as given to [`MultiInputData::from_inputs`].
#[derive(Debug, Clone)]
pub enum TaskInput {
    /// A table with one task.
    Table(MultiTaskDataset),
    /// Tensors with one task.
    Tensor(TensorDataset),
}

impl From<MultiTaskDataset> for TaskInput {
    fn from(d: MultiTaskDataset) -> Self {
        TaskInput::Table(d)
    }
}

impl From<TensorDataset> for TaskInput {
    fn from(d: TensorDataset) -> Self {
        TaskInput::Tensor(d)
    }
}

/// A task's dataset, shared between clones (and prefetching threads). A tensor dataset
/// is held by value: its clones already share the tensors' storage, and an `Arc` of it
/// would not be `Send` (a libtorch tensor is not `Sync`), which would keep a schedule
/// from moving to a prefetching thread.
#[derive(Debug, Clone)]
enum Source {
    Table(Arc<MultiTaskDataset>),
    Tensor(TensorDataset),
}

impl Source {
    fn joint(&self) -> &dyn JointData {
        match self {
            Source::Table(d) => d.as_ref(),
            Source::Tensor(d) => d,
        }
    }

    fn name(&self) -> String {
        self.joint().task_names().remove(0)
    }

    /// The shape of one row's features.
    fn feature_shape(&self) -> Vec<i64> {
        match self {
            Source::Table(d) => vec![d.num_features() as i64],
            Source::Tensor(d) => d.features().size()[1..].to_vec(),
        }
    }
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
        Self::from_inputs(datasets.into_iter().map(TaskInput::from).collect())
    }

    /// Builds from one single-task [`TensorDataset`] per task (token ids of text tasks,
    /// images); task names must be unique. See [`from_inputs`](Self::from_inputs).
    pub fn from_tensor_datasets(datasets: Vec<TensorDataset>) -> Result<Self> {
        Self::from_inputs(datasets.into_iter().map(TaskInput::from).collect())
    }

    /// Builds from one single-task dataset per task, tables and tensors mixed; task
    /// names must be unique. A [`TensorDataset`] with an augmentation is refused: the
    /// task schedule draws plain rows, and dropping the augmentation silently would
    /// train on other data than asked.
    pub fn from_inputs(datasets: Vec<TaskInput>) -> Result<Self> {
        if datasets.is_empty() {
            return Err(Error::TaskCount {
                context: "MultiInputData".into(),
                expected: 0,
                got: 0,
            });
        }
        let mut tasks: Vec<Source> = Vec::with_capacity(datasets.len());
        for (k, ds) in datasets.into_iter().enumerate() {
            let source = match ds {
                TaskInput::Table(d) => Source::Table(Arc::new(d)),
                TaskInput::Tensor(d) => {
                    if d.has_augmentation() {
                        return Err(Error::config(format!(
                            "MultiInputData dataset {k}: task schedules do not apply a \
                             TensorDataset's augmentation; build it without one"
                        )));
                    }
                    Source::Tensor(d)
                }
            };
            let n = source.joint().num_tasks();
            if n != 1 {
                return Err(Error::TaskCount {
                    context: format!("MultiInputData dataset {k}"),
                    expected: 1,
                    got: n,
                });
            }
            let name = source.name();
            if let Some(j) = tasks.iter().position(|d| d.name() == name) {
                return Err(Error::config(format!(
                    "MultiInputData: tasks {j} and {k} are both named `{name}`"
                )));
            }
            tasks.push(source);
        }
        Ok(MultiInputData { tasks })
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
        self.tasks.iter().map(Source::name).collect()
    }

    fn source(&self, k: usize) -> Result<&Source> {
        self.tasks.get(k).ok_or_else(|| {
            Error::config(format!(
                "task index {k} out of range 0..{}",
                self.num_tasks()
            ))
        })
    }

    /// Task `k`'s dataset, when it is a table; for a [`TensorDataset`] task use
    /// [`task_data`](Self::task_data) or [`tensor_dataset`](Self::tensor_dataset).
    pub fn dataset(&self, k: usize) -> Result<&MultiTaskDataset> {
        match self.source(k)? {
            Source::Table(d) => Ok(d.as_ref()),
            Source::Tensor(_) => Err(Error::config(format!(
                "task {k} (`{}`) holds a TensorDataset, not a table; use task_data({k})",
                self.tasks[k].name()
            ))),
        }
    }

    /// Task `k`'s dataset, when it is a [`TensorDataset`].
    pub fn tensor_dataset(&self, k: usize) -> Result<&TensorDataset> {
        match self.source(k)? {
            Source::Tensor(d) => Ok(d),
            Source::Table(_) => Err(Error::config(format!(
                "task {k} (`{}`) holds a table, not a TensorDataset; use dataset({k})",
                self.tasks[k].name()
            ))),
        }
    }

    /// Task `k`'s dataset, whatever it holds: batches for evaluation, its fingerprint.
    pub fn task_data(&self, k: usize) -> Result<&dyn JointData> {
        Ok(self.source(k)?.joint())
    }

    /// The batch of task `k`'s rows `rows` (valid rows of its dataset), one target.
    pub(crate) fn task_batch(&self, k: usize, rows: &[usize]) -> Result<Batch> {
        match self.source(k)? {
            Source::Table(d) => Ok(crate::batch::build_batch(d, rows)),
            Source::Tensor(d) => d.batch(rows),
        }
    }

    /// The number of rows of each task.
    pub fn sizes(&self) -> Vec<usize> {
        self.tasks.iter().map(|d| d.joint().len()).collect()
    }

    /// The feature width of each task: the columns of a table, the values per row of a
    /// tensor dataset (`T` for token ids `[N, T]`).
    pub fn feature_widths(&self) -> Vec<usize> {
        self.tasks
            .iter()
            .map(|d| d.feature_shape().iter().product::<i64>() as usize)
            .collect()
    }

    /// The head width each task needs: for a table the classes, 1 for binary, the
    /// outputs for regression; for a tensor dataset with integer targets the largest
    /// class id + 1 (negative padding labels ignored), with real-valued targets the
    /// values per row.
    pub fn output_dims(&self) -> Result<Vec<usize>> {
        self.tasks
            .iter()
            .map(|d| match d {
                Source::Table(d) => Ok(d.tasks()[0].data.output_dim()),
                Source::Tensor(d) => {
                    let values = &d.tasks()[0].values;
                    if values.is_floating_point() {
                        Ok(values.size()[1..].iter().product::<i64>().max(1) as usize)
                    } else if values.numel() == 0 {
                        Ok(0)
                    } else {
                        Ok((values.f_max()?.f_int64_value(&[])? + 1).max(0) as usize)
                    }
                }
            })
            .collect()
    }

    /// Splits every task's rows with [`MultiTaskDataset::split`], task `k` seeded with
    /// `seed + k` so the tasks' splits are independent.
    pub fn split(&self, validation: f64, test: f64, seed: u64) -> Result<MultiInputSplit> {
        let mut parts: (Vec<TaskInput>, Vec<TaskInput>, Vec<TaskInput>) =
            (Vec::new(), Vec::new(), Vec::new());
        for (k, d) in self.tasks.iter().enumerate() {
            let seed = seed.wrapping_add(k as u64);
            match d {
                Source::Table(d) => {
                    let s = d.split(validation, test, seed)?;
                    parts.0.push(s.train.into());
                    parts.1.push(s.validation.into());
                    parts.2.push(s.test.into());
                }
                Source::Tensor(d) => {
                    let s = d.split(validation, test, seed)?;
                    parts.0.push(s.train.into());
                    parts.1.push(s.validation.into());
                    parts.2.push(s.test.into());
                }
            }
        }
        Ok(MultiInputSplit {
            train: Self::from_inputs(parts.0)?,
            validation: Self::from_inputs(parts.1)?,
            test: Self::from_inputs(parts.2)?,
        })
    }

    /// All rows of all tasks stacked into one K-task dataset in which task `k` is
    /// labelled exactly on the rows that came from its own dataset. Needs one feature
    /// width across tasks. This is what partial labels look like to the ordinary
    /// trainer, and it is what `mtl::evaluate` needs to score every
    /// task on its own rows. Needs every task to be a table.
    pub fn to_masked(&self) -> Result<MultiTaskDataset> {
        let width = self.common_width("to_masked")?;
        let tables = (0..self.num_tasks())
            .map(|k| self.dataset(k))
            .collect::<Result<Vec<_>>>()?;
        let views: Vec<_> = tables.iter().map(|d| d.features().view()).collect();
        let features = concatenate(Axis(0), &views)
            .map_err(|e| Error::shape("MultiInputData::to_masked", format!("[n, {width}]"), e))?;
        let total = features.nrows();
        let mut tasks = Vec::with_capacity(self.num_tasks());
        let mut names = Vec::with_capacity(self.num_tasks());
        let mut start = 0;
        for d in tables {
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
        self.source(task)?;
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
        let values = match &self.tasks[j] {
            Source::Table(d) => match &d.tasks()[0].data {
                TargetData::Classes { .. } => Tensor::f_zeros([b], (Kind::Int64, device))?,
                TargetData::Binary(_) => Tensor::f_zeros([b], (Kind::Float, device))?,
                TargetData::Regression(v) => {
                    Tensor::f_zeros([b, v.ncols() as i64], (Kind::Float, device))?
                }
            },
            // The target's own per-row shape and dtype, all rows masked out.
            Source::Tensor(d) => {
                let values = &d.tasks()[0].values;
                let mut shape = values.size();
                shape[0] = b;
                Tensor::f_zeros(shape.as_slice(), (values.kind(), device))?
            }
        };
        Ok(TaskTarget::masked(
            values,
            Tensor::f_zeros([b], (Kind::Bool, device))?,
        ))
    }

    /// Fails unless every task's rows have one feature shape (and so can be stacked
    /// into one batch), naming the shapes.
    pub(crate) fn common_shape(&self, context: &str) -> Result<()> {
        let shapes: Vec<Vec<i64>> = self.tasks.iter().map(Source::feature_shape).collect();
        match shapes.iter().all(|s| *s == shapes[0]) {
            true => Ok(()),
            false => Err(Error::shape(
                format!("MultiInputData::{context}"),
                "one feature shape per row across tasks",
                format!("shapes {shapes:?}"),
            )),
        }
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
