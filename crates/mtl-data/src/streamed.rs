//! Features larger than memory: the rows of an NPY file read from disk batch by batch,
//! never the whole array. The targets (one label, map or vector per row, far smaller
//! than images) are held in memory as in a [`TensorDataset`](crate::TensorDataset).
//!
//! Only the rows a batch needs are read, each with one positioned read of its bytes, so
//! memory stays at one batch whatever the file's size. The file must be an uncompressed
//! C-order little-endian NPY (what `numpy.save` writes on every common machine;
//! `numpy.ascontiguousarray` fixes a Fortran-order array); a gzipped or Fortran-order
//! file is refused with what to do, since neither can be read row by row.

use crate::batch::Batch;
use crate::dataset::split_rows;
use crate::joint_data::{batch_rows, feed_text, JointData};
use crate::npy::read_layout;
use crate::source::Source;
use crate::tensor_dataset::{check_tasks, TensorTask};
use crate::DType;
use mtl_core::{Error, Result, SeededRng, TaskTarget};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tch::Tensor;

/// An NPY file's rows, read on demand.
#[derive(Debug)]
pub struct NpyRows {
    path: PathBuf,
    file: Mutex<std::fs::File>,
    dtype: DType,
    /// Every dimension but the first.
    row_shape: Vec<i64>,
    rows: usize,
    payload: u64,
    row_bytes: usize,
}

impl NpyRows {
    /// Opens `path` and reads its header; no row is read yet.
    ///
    /// Errors: [`Error::Io`] for a missing file; [`Error::Format`]-like parse errors
    /// naming the byte for a bad header; [`Error::Config`] for a gzipped, Fortran-order
    /// or big-endian file or a zero-dimensional array; a file shorter than its header
    /// says names both sizes.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::File::open(&path).map_err(io)?;
        let mut magic = [0u8; 2];
        let gz = file.read(&mut magic).map_err(io)? == 2 && magic == [0x1f, 0x8b];
        if gz {
            return Err(Error::config(format!(
                "{}: a gzipped NPY cannot be read row by row; gunzip it first",
                path.display()
            )));
        }
        let mut src = Source::open(&path)?;
        let layout = read_layout(&mut src)?;
        let payload = src.offset();
        let refuse = |why: &str| {
            Error::config(format!(
                "{}: {why}, so its rows cannot be read one by one",
                path.display()
            ))
        };
        if layout.swap {
            return Err(refuse(
                "the array is big-endian (numpy: a.astype('<f4') etc.)",
            ));
        }
        if layout.fortran_order && layout.shape.len() > 1 {
            return Err(refuse(
                "the array is in Fortran order (numpy.ascontiguousarray fixes it)",
            ));
        }
        let Some((&rows, rest)) = layout.shape.split_first() else {
            return Err(refuse("the array has no row dimension"));
        };
        let row_bytes = rest.iter().product::<usize>() * layout.dtype.size();
        let len = file.metadata().map_err(io)?.len();
        let need = payload + (rows * row_bytes) as u64;
        if len < need {
            return Err(Error::config(format!(
                "{}: the header promises {rows} rows of {row_bytes} bytes ({need} bytes in \
                 all), the file has {len}",
                path.display()
            )));
        }
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        Ok(NpyRows {
            path: path.clone(),
            file: Mutex::new(file),
            dtype: layout.dtype,
            row_shape: rest.iter().map(|&d| d as i64).collect(),
            rows,
            payload,
            row_bytes,
        })
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether the file has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The shape of one row.
    pub fn row_shape(&self) -> &[i64] {
        &self.row_shape
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Rows `rows` (in that order) as one CPU tensor `[rows.len(), ...row_shape]`.
    pub fn read(&self, rows: &[usize]) -> Result<Tensor> {
        if let Some(&r) = rows.iter().find(|&&r| r >= self.rows) {
            return Err(Error::config(format!(
                "{}: row {r} of a file of {} rows",
                self.path.display(),
                self.rows
            )));
        }
        let mut bytes = vec![0u8; rows.len() * self.row_bytes];
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        {
            // A poisoned lock only means another reader panicked mid-read; every read
            // seeks first, so the file handle is still usable.
            let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
            for (chunk, &r) in bytes.chunks_mut(self.row_bytes.max(1)).zip(rows) {
                file.seek(SeekFrom::Start(self.payload + (r * self.row_bytes) as u64))
                    .map_err(io)?;
                file.read_exact(chunk).map_err(io)?;
            }
        }
        if self.dtype == DType::Bool {
            if let Some(i) = bytes.iter().position(|&b| b > 1) {
                return Err(Error::config(format!(
                    "{}: row {} holds the byte {} where a bool (0 or 1) belongs",
                    self.path.display(),
                    rows[i / self.row_bytes],
                    bytes[i]
                )));
            }
        }
        let mut shape = vec![rows.len() as i64];
        shape.extend(&self.row_shape);
        Ok(Tensor::f_from_data_size(&bytes, &shape, self.dtype.kind())?)
    }
}

/// A multi-task dataset whose features stream from an NPY file ([`NpyRows`]) and whose
/// targets are in memory. Splits are lists of file rows: nothing is copied.
///
/// ```
/// use mtl_data::{encode_npy, DenseArray, JointData, NpyRows, StreamedDataset, TensorTask};
/// use ndarray::Array;
///
/// let dir = std::env::temp_dir().join(format!("mtl-doc-streamed-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("images.npy");
/// let images = Array::from_shape_fn((10, 1, 2, 2), |(i, _, y, x)| (i * 4 + y * 2 + x) as f32);
/// std::fs::write(&path, encode_npy(&DenseArray::from_array(&images.into_dyn())?)?).unwrap();
///
/// let labels = tch::Tensor::arange(10, (tch::Kind::Int64, tch::Device::Cpu)).remainder(2);
/// let ds = StreamedDataset::new(NpyRows::open(&path)?, vec![TensorTask::new("parity", labels)])?;
/// let split = ds.split(0.2, 0.0, 1)?;
/// let batch = split.train.joint_batches(4, None)?.next().unwrap()?;
/// assert_eq!(batch.x.size(), [4, 1, 2, 2]);
/// // Each image is the row the batch says it is.
/// let first = batch.rows[0] as f64;
/// assert_eq!(batch.x.double_value(&[0, 0, 0, 0]), first * 4.0);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct StreamedDataset {
    features: Arc<NpyRows>,
    tasks: Vec<TensorTask>,
    /// The file rows this dataset holds, in order; row i of the dataset is file row
    /// `rows[i]`, and task values are indexed by dataset row.
    rows: Vec<usize>,
}

/// A seeded train / validation / test split of a [`StreamedDataset`].
#[derive(Debug, Clone)]
pub struct StreamedSplit {
    /// Training rows.
    pub train: StreamedDataset,
    /// Validation rows.
    pub validation: StreamedDataset,
    /// Test rows.
    pub test: StreamedDataset,
}

impl StreamedDataset {
    /// Every row of `features` with one [`TensorTask`] per task (`[N, ...]`, N the
    /// file's rows), checked as [`TensorDataset::new`](crate::TensorDataset::new) checks
    /// its tasks.
    pub fn new(features: NpyRows, tasks: Vec<TensorTask>) -> Result<Self> {
        let n = features.len();
        let tasks = check_tasks(n as i64, tasks)?;
        Ok(StreamedDataset {
            features: Arc::new(features),
            tasks,
            rows: (0..n).collect(),
        })
    }

    /// The dataset's rows `rows` (indices into this dataset), in that order.
    pub fn subset(&self, rows: &[usize]) -> Result<Self> {
        let n = self.rows.len();
        if let Some(&r) = rows.iter().find(|&&r| r >= n) {
            return Err(Error::config(format!(
                "StreamedDataset subset: row {r} of a dataset of {n} rows"
            )));
        }
        let index = Tensor::from_slice(&rows.iter().map(|&r| r as i64).collect::<Vec<_>>());
        Ok(StreamedDataset {
            features: self.features.clone(),
            tasks: self
                .tasks
                .iter()
                .map(|t| t.select(&index))
                .collect::<Result<_>>()?,
            rows: rows.iter().map(|&r| self.rows[r]).collect(),
        })
    }

    /// A seeded split by the rule every dataset kind shares
    /// ([`MultiTaskDataset::split`](crate::MultiTaskDataset::split)).
    pub fn split(&self, validation: f64, test: f64, seed: u64) -> Result<StreamedSplit> {
        let rows = split_rows(self.rows.len(), validation, test, seed)?;
        Ok(StreamedSplit {
            train: self.subset(&rows.train)?,
            validation: self.subset(&rows.validation)?,
            test: self.subset(&rows.test)?,
        })
    }

    /// The batch of dataset rows `rows`: their features read from the file.
    pub fn batch(&self, rows: &[usize]) -> Result<Batch> {
        let file_rows: Vec<usize> = rows
            .iter()
            .map(|&r| {
                self.rows.get(r).copied().ok_or_else(|| {
                    Error::config(format!(
                        "StreamedDataset batch: row {r} of a dataset of {} rows",
                        self.rows.len()
                    ))
                })
            })
            .collect::<Result<_>>()?;
        let index = Tensor::from_slice(&rows.iter().map(|&r| r as i64).collect::<Vec<_>>());
        Ok(Batch {
            x: self.features.read(&file_rows)?,
            targets: self
                .tasks
                .iter()
                .map(|t| t.select(&index).map(TaskTarget::from))
                .collect::<Result<_>>()?,
            rows: rows.to_vec(),
        })
    }
}

impl JointData for StreamedDataset {
    fn len(&self) -> usize {
        self.rows.len()
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
        let chunks = batch_rows(self.rows.len(), batch_size, rng)?;
        Ok(Box::new(
            chunks.into_iter().map(move |rows| self.batch(&rows)),
        ))
    }

    /// The file's path, size and modification time, the rows held and the targets:
    /// hashing the features themselves would read the whole file at every checkpoint.
    fn fingerprint(&self, feed: &mut dyn FnMut(&[u8])) {
        let f = &self.features;
        feed_text(feed, &f.path.display().to_string());
        if let Ok(meta) = std::fs::metadata(&f.path) {
            feed(&meta.len().to_le_bytes());
            if let Ok(modified) = meta.modified() {
                feed_text(feed, &format!("{modified:?}"));
            }
        }
        crate::joint_data::feed_values(feed, self.rows.iter().map(|r| (*r as u64).to_le_bytes()));
        for t in &self.tasks {
            feed_text(feed, &t.name);
            crate::tensor_dataset::feed_tensor(feed, &t.values);
            if let Some(m) = &t.mask {
                crate::tensor_dataset::feed_tensor(feed, m);
            }
        }
    }
}
