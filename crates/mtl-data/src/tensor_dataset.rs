//! A multi-task dataset of tensors of any shape and dtype: `[N, C, H, W]` images,
//! `[N, T]` token ids, `[N, d]` tables; per task a target of any shape — a class or
//! binary label per row, a real vector, labels per pixel (`[N, H, W]`, with the head's
//! ignore index), depth or normals maps, a tag per token — with missing labels per row
//! (`mask` `[N]`) or per element (`mask` of the target's shape).
//!
//! What a head needs of its target (dtype, shape, ignore index, validity) is the
//! head's to check, with errors naming the task, at the first batch; the dataset
//! checks what it can know: one row count for everything, masks of boolean type whose
//! shape is `[N]` or the target's, unique task names.
//!
//! Rows live in CPU tensors; a batch is an `index_select` of its rows, moved to the
//! model's device by the trainer. Tensors read by [`read_npy`](crate::read_npy),
//! [`read_npz`](crate::read_npz) or [`read_safetensors`](crate::read_safetensors) come
//! in without a copy ([`DenseArray::into_tensor`](crate::DenseArray::into_tensor)).

use crate::augment::Augmentation;
use crate::batch::Batch;
use crate::dataset::split_rows;
use crate::joint_data::{batch_rows, feed_text, JointData};
use mtl_core::{Error, Result, SeededRng, TaskTarget};
use rand::{Rng, SeedableRng};
use tch::{Device, Kind, Tensor};

/// One task's targets over every row of a [`TensorDataset`].
#[derive(Debug)]
pub struct TensorTask {
    /// The task's name.
    pub name: String,
    /// `[N, ...]`: the target of each row, in the layout its head reads.
    pub values: Tensor,
    /// `Bool`, `[N]` (which rows are labelled) or the shape of `values` (which
    /// elements are); `None` when everything is labelled.
    pub mask: Option<Tensor>,
}

impl TensorTask {
    /// A fully labelled task.
    pub fn new(name: impl Into<String>, values: Tensor) -> Self {
        TensorTask {
            name: name.into(),
            values,
            mask: None,
        }
    }

    /// A task labelled where `mask` is true (per row, `[N]`, or per element).
    pub fn masked(name: impl Into<String>, values: Tensor, mask: Tensor) -> Self {
        TensorTask {
            name: name.into(),
            values,
            mask: Some(mask),
        }
    }

    pub(crate) fn select(&self, index: &Tensor) -> Result<TensorTask> {
        Ok(TensorTask {
            name: self.name.clone(),
            values: self.values.f_index_select(0, index)?,
            mask: match &self.mask {
                Some(m) => Some(m.f_index_select(0, index)?),
                None => None,
            },
        })
    }
}

/// A task's rows as a batch target: the values and the mask, the name dropped.
impl From<TensorTask> for TaskTarget {
    fn from(t: TensorTask) -> TaskTarget {
        TaskTarget {
            values: t.values,
            mask: t.mask,
        }
    }
}

impl Clone for TensorTask {
    fn clone(&self) -> Self {
        TensorTask {
            name: self.name.clone(),
            values: self.values.shallow_clone(),
            mask: self.mask.as_ref().map(Tensor::shallow_clone),
        }
    }
}

/// Features and K tasks' targets as tensors with one leading row dimension.
///
/// ```
/// use mtl_data::{JointData, TensorDataset, TensorTask};
/// use tch::{Kind, Tensor};
///
/// // Eight 1×4×4 images, a class per image and a class per pixel.
/// let images = Tensor::rand([8, 1, 4, 4], (Kind::Float, tch::Device::Cpu));
/// let digit = Tensor::arange(8, (Kind::Int64, tch::Device::Cpu)).remainder(3);
/// let pixels = images.squeeze_dim(1).gt(0.5).to_kind(Kind::Int64);
/// let ds = TensorDataset::new(
///     images,
///     vec![TensorTask::new("digit", digit), TensorTask::new("mask", pixels)],
/// )?;
/// let batch = ds.joint_batches(3, None)?.next().unwrap()?;
/// assert_eq!(batch.x.size(), [3, 1, 4, 4]);
/// assert_eq!(batch.targets[1].values.size(), [3, 4, 4]);
/// let split = ds.split(0.25, 0.0, 7)?;
/// assert_eq!((split.train.len(), split.validation.len()), (6, 2));
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug)]
pub struct TensorDataset {
    features: Tensor,
    tasks: Vec<TensorTask>,
    augmentation: Option<Augmentation>,
}

/// A clone shares the tensors' storage: the dataset never writes into them.
impl Clone for TensorDataset {
    fn clone(&self) -> Self {
        TensorDataset {
            features: self.features.shallow_clone(),
            tasks: self.tasks.clone(),
            augmentation: self.augmentation.clone(),
        }
    }
}

/// A seeded train / validation / test split of a [`TensorDataset`].
#[derive(Debug, Clone)]
pub struct TensorSplit {
    /// Training rows.
    pub train: TensorDataset,
    /// Validation rows.
    pub validation: TensorDataset,
    /// Test rows.
    pub test: TensorDataset,
}

impl TensorDataset {
    /// Checks and holds `features` (`[N, ...]`) and one [`TensorTask`] per task, all
    /// moved to the CPU.
    ///
    /// Errors: no tasks ([`Error::TaskCount`]); a scalar feature tensor, a target or a
    /// mask whose row count differs from the features' ([`Error::Shape`], naming the
    /// task); a mask that is not boolean or whose shape is neither `[N]` nor the
    /// target's; two tasks of one name; floating-point features with a NaN or Inf
    /// ([`Error::NonFinite`], naming the row).
    pub fn new(features: Tensor, tasks: Vec<TensorTask>) -> Result<Self> {
        let features = features.f_to_device(Device::Cpu)?;
        let n = *features
            .size()
            .first()
            .ok_or_else(|| Error::shape("TensorDataset features", "[N, ...]", "a scalar"))?;
        if features.is_floating_point() {
            let bad = features
                .f_isfinite()?
                .f_logical_not()?
                .f_reshape([n, -1])?
                .f_any_dim(1, false)?
                .f_nonzero()?;
            if bad.size()[0] > 0 {
                return Err(Error::NonFinite {
                    what: format!("TensorDataset features of row {}", bad.int64_value(&[0, 0])),
                    task: None,
                    step: None,
                    value: "NaN or Inf".into(),
                });
            }
        }
        let checked = check_tasks(n, tasks)?;
        Ok(TensorDataset {
            features,
            tasks: checked,
            augmentation: None,
        })
    }

    /// The features, `[N, ...]`.
    pub fn features(&self) -> &Tensor {
        &self.features
    }

    /// The tasks, in order.
    pub fn tasks(&self) -> &[TensorTask] {
        &self.tasks
    }

    /// The rows `rows`, in that order.
    pub fn subset(&self, rows: &[usize]) -> Result<Self> {
        let n = JointData::len(self);
        if let Some(&r) = rows.iter().find(|&&r| r >= n) {
            return Err(Error::config(format!(
                "TensorDataset subset: row {r} of a dataset of {n} rows"
            )));
        }
        let index: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        let index = Tensor::from_slice(&index);
        Ok(TensorDataset {
            features: self.features.f_index_select(0, &index)?,
            tasks: self
                .tasks
                .iter()
                .map(|t| t.select(&index))
                .collect::<Result<_>>()?,
            augmentation: self.augmentation.clone(),
        })
    }

    /// A seeded random split, with the same rule and rows as
    /// [`MultiTaskDataset::split`](crate::MultiTaskDataset::split) for the same N.
    pub fn split(&self, validation: f64, test: f64, seed: u64) -> Result<TensorSplit> {
        let rows = split_rows(JointData::len(self), validation, test, seed)?;
        Ok(TensorSplit {
            train: self.subset(&rows.train)?,
            validation: self.subset(&rows.validation)?,
            test: self.subset(&rows.test)?,
        })
    }

    /// The dataset with `augmentation` applied to every training batch (those drawn
    /// with a generator, [`JointData::joint_batches`] with `Some(rng)`); evaluation
    /// batches are left alone. The draws come from a generator seeded by the batch
    /// generator after each epoch's shuffle, so a seeded run is repeatable and a
    /// resumed run continues it exactly. Its layouts must be one per task.
    pub fn with_augmentation(mut self, augmentation: Augmentation) -> Result<Self> {
        if augmentation.targets().len() != self.tasks.len() {
            return Err(Error::TaskCount {
                context: "augmentation layouts vs TensorDataset tasks".into(),
                expected: self.tasks.len(),
                got: augmentation.targets().len(),
            });
        }
        self.augmentation = Some(augmentation);
        Ok(self)
    }

    /// Whether batches drawn for training are augmented.
    pub(crate) fn has_augmentation(&self) -> bool {
        self.augmentation.is_some()
    }

    /// The same rows with only task `k`, for a single-task baseline.
    pub fn only_task(&self, k: usize) -> Result<Self> {
        let task = self.tasks.get(k).ok_or_else(|| Error::TaskCount {
            context: format!("TensorDataset::only_task({k})"),
            expected: self.tasks.len(),
            got: k + 1,
        })?;
        // The augmentation's layouts are per task: keep task k's.
        let augmentation = match &self.augmentation {
            Some(a) => Some(a.only_task(k)?),
            None => None,
        };
        Ok(TensorDataset {
            features: self.features.shallow_clone(),
            tasks: vec![task.clone()],
            augmentation,
        })
    }

    /// The batch of rows `rows` (indices into this dataset).
    pub fn batch(&self, rows: &[usize]) -> Result<Batch> {
        let sub = self.subset(rows)?;
        Ok(Batch {
            x: sub.features,
            targets: sub.tasks.into_iter().map(TaskTarget::from).collect(),
            rows: rows.to_vec(),
        })
    }
}

impl JointData for TensorDataset {
    fn len(&self) -> usize {
        self.features.size()[0] as usize
    }

    fn num_tasks(&self) -> usize {
        self.tasks.len()
    }

    fn task_names(&self) -> Vec<String> {
        self.tasks.iter().map(|t| t.name.clone()).collect()
    }

    fn joint_batches(
        &self,
        batch_size: usize,
        rng: Option<&mut SeededRng>,
    ) -> Result<Box<dyn Iterator<Item = Result<Batch>> + '_>> {
        let mut rng = rng;
        let chunks = batch_rows(JointData::len(self), batch_size, rng.as_deref_mut())?;
        // The augmentation's draws are seeded after the shuffle, from the same generator.
        let mut augment = match (&self.augmentation, rng) {
            (Some(a), Some(rng)) => Some((a, SeededRng::seed_from_u64(rng.gen()))),
            _ => None,
        };
        Ok(Box::new(chunks.into_iter().map(move |rows| {
            let batch = self.batch(&rows)?;
            match &mut augment {
                Some((a, draws)) => a.apply(&batch, draws),
                None => Ok(batch),
            }
        })))
    }

    fn fingerprint(&self, feed: &mut dyn FnMut(&[u8])) {
        // The augmentation decides what the model sees: another one is other data.
        feed_text(feed, &format!("{:?}", self.augmentation));
        feed_tensor(feed, &self.features);
        feed(&(self.tasks.len() as u64).to_le_bytes());
        for t in &self.tasks {
            feed_text(feed, &t.name);
            feed_tensor(feed, &t.values);
            match &t.mask {
                None => feed(&[0u8]),
                Some(m) => {
                    feed(&[1u8]);
                    feed_tensor(feed, m);
                }
            }
        }
    }
}

/// Checks K tasks over `n` rows (see [`TensorDataset::new`]) and moves them to the CPU.
pub(crate) fn check_tasks(n: i64, tasks: Vec<TensorTask>) -> Result<Vec<TensorTask>> {
    if tasks.is_empty() {
        return Err(Error::TaskCount {
            context: "dataset tasks".into(),
            expected: 1,
            got: 0,
        });
    }
    let mut checked = Vec::with_capacity(tasks.len());
    for (k, task) in tasks.into_iter().enumerate() {
        if let Some(j) = checked
            .iter()
            .position(|t: &TensorTask| t.name == task.name)
        {
            return Err(Error::config(format!(
                "dataset: tasks {j} and {k} are both named `{}`",
                task.name
            )));
        }
        let values = task.values.f_to_device(Device::Cpu)?;
        let vshape = values.size();
        if vshape.first() != Some(&n) {
            return Err(Error::shape(
                format!("dataset task `{}` targets", task.name),
                format!("[{n}, ...] (one per feature row)"),
                format!("{vshape:?}"),
            ));
        }
        let mask = match task.mask {
            None => None,
            Some(m) => {
                let m = m.f_to_device(Device::Cpu)?;
                let mshape = m.size();
                if m.kind() != Kind::Bool || (mshape != [n] && mshape != vshape) {
                    return Err(Error::shape(
                        format!("dataset task `{}` mask", task.name),
                        format!("Bool [{n}] (rows) or Bool {vshape:?} (elements)"),
                        format!("{:?} {mshape:?}", m.kind()),
                    ));
                }
                Some(m)
            }
        };
        checked.push(TensorTask {
            name: task.name,
            values,
            mask,
        });
    }
    Ok(checked)
}

/// Feeds a tensor's dtype, shape and raw bytes.
pub(crate) fn feed_tensor(feed: &mut dyn FnMut(&[u8]), t: &Tensor) {
    feed_text(feed, &format!("{:?}", t.kind()));
    for n in t.size() {
        feed(&n.to_le_bytes());
    }
    let t = t.contiguous();
    let bytes = t.numel() * t.kind().elt_size_in_bytes();
    let mut buf = vec![0u8; bytes];
    t.copy_data_u8(&mut buf, t.numel());
    feed(&buf);
}
