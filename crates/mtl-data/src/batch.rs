//! Mini-batches as tensors, and the iterator that cuts a dataset into them.

use crate::array::{DType, DenseArray};
use crate::dataset::MultiTaskDataset;
use crate::target::{TargetData, TaskData};
use mtl_core::TaskTarget;
use rayon::prelude::*;
use std::sync::Arc;
use tch::{Device, Tensor};

/// One mini-batch: features, one target per task, and which dataset rows it holds.
#[derive(Debug)]
pub struct Batch {
    /// `Float [B, F]`.
    pub x: Tensor,
    /// One target per task, in task order: `Int64 [B]` for classes, `Float [B]` for
    /// binary, `Float [B, m]` for regression, with a `Bool [B]` mask when the task has
    /// missing labels (a batch may then have no labelled row for that task).
    pub targets: Vec<TaskTarget>,
    /// The dataset row of each batch row.
    pub rows: Vec<usize>,
}

impl Batch {
    /// The number of rows, B.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Rank `rank`'s rows of the batch when it is split over `world` ranks: the
    /// contiguous block `⌊rank·B/world⌋ .. ⌊(rank+1)·B/world⌋` (possibly empty), so
    /// that the ranks' shards, in rank order, are the batch.
    pub fn shard(&self, rank: usize, world: usize) -> Batch {
        let n = self.len();
        let world = world.max(1);
        let (lo, hi) = (rank * n / world, ((rank + 1) * n / world).min(n));
        let take = |t: &tch::Tensor| t.narrow(0, lo as i64, (hi - lo) as i64);
        Batch {
            x: take(&self.x),
            targets: self
                .targets
                .iter()
                .map(|t| mtl_core::TaskTarget {
                    values: take(&t.values),
                    mask: t.mask.as_ref().map(take),
                })
                .collect(),
            rows: self.rows[lo..hi].to_vec(),
        }
    }

    /// A copy of the batch on device `d`.
    pub fn to_device(&self, d: Device) -> Batch {
        Batch {
            x: self.x.to_device(d),
            targets: self.targets.iter().map(|t| t.to_device(d)).collect(),
            rows: self.rows.clone(),
        }
    }
}

/// The dataset a [`Batches`] reads: borrowed, or shared so the iterator can outlive the
/// borrow (and move to a prefetching thread).
#[derive(Debug, Clone)]
enum Source<'a> {
    Borrowed(&'a MultiTaskDataset),
    Shared(Arc<MultiTaskDataset>),
}

impl std::ops::Deref for Source<'_> {
    type Target = MultiTaskDataset;

    fn deref(&self) -> &MultiTaskDataset {
        match self {
            Source::Borrowed(d) => d,
            Source::Shared(d) => d,
        }
    }
}

/// An iterator over the mini-batches of a dataset, made by
/// [`MultiTaskDataset::batches`] (borrowing the dataset) or
/// [`MultiTaskDataset::shared_batches`] (sharing it, `Batches<'static>`). Wrap it in
/// [`prefetch`](crate::prefetch) or [`prefetch_scoped`](crate::prefetch_scoped) to
/// assemble batches on a background thread.
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    dataset: Source<'a>,
    order: Vec<usize>,
    pos: usize,
    batch_size: usize,
}

impl<'a> Batches<'a> {
    /// `order` must hold valid rows of `dataset` and `batch_size` be at least 1.
    pub(crate) fn new(dataset: &'a MultiTaskDataset, order: Vec<usize>, batch_size: usize) -> Self {
        Batches {
            dataset: Source::Borrowed(dataset),
            order,
            pos: 0,
            batch_size,
        }
    }

    /// The order in which rows are visited over the whole pass.
    pub fn order(&self) -> &[usize] {
        &self.order
    }
}

impl Batches<'static> {
    /// As [`new`](Self::new), over a shared dataset.
    pub(crate) fn shared(
        dataset: Arc<MultiTaskDataset>,
        order: Vec<usize>,
        batch_size: usize,
    ) -> Self {
        Batches {
            dataset: Source::Shared(dataset),
            order,
            pos: 0,
            batch_size,
        }
    }
}

impl Iterator for Batches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.pos >= self.order.len() {
            return None;
        }
        let end = (self.pos + self.batch_size).min(self.order.len());
        let batch = build_batch(&self.dataset, &self.order[self.pos..end]);
        self.pos = end;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.order.len() - self.pos).div_ceil(self.batch_size);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Batches<'_> {}

/// Feature values per batch above which rows are copied on several threads: below it
/// the hand-off costs more than the copy.
const PARALLEL_VALUES: usize = 1 << 16;

/// Gathers `rows` (all valid rows of `ds`) into tensors. The features are copied
/// straight into the batch tensor's memory, row by row, on the rayon pool when the
/// batch is large.
pub(crate) fn build_batch(ds: &MultiTaskDataset, rows: &[usize]) -> Batch {
    let f = ds.num_features();
    let feats = ds.features();
    let x = match DenseArray::zeros(DType::F32, &[rows.len(), f]) {
        Ok(mut dense) => {
            let bytes = dense.bytes_mut();
            let fill = |(chunk, &r): (&mut [u8], &usize)| {
                let row = feats.row(r);
                match row.as_slice() {
                    Some(values) => chunk.copy_from_slice(f32_bytes(values)),
                    None => {
                        for (dst, v) in chunk.chunks_exact_mut(4).zip(row.iter()) {
                            dst.copy_from_slice(&v.to_ne_bytes());
                        }
                    }
                }
            };
            if f > 0 {
                if rows.len() * f >= PARALLEL_VALUES {
                    bytes
                        .par_chunks_mut(4 * f)
                        .zip(rows.par_iter())
                        .for_each(fill);
                } else {
                    bytes.chunks_mut(4 * f).zip(rows.iter()).for_each(fill);
                }
            }
            dense.into_tensor()
        }
        // A batch too large to allocate: the plain path reports it from libtorch.
        Err(_) => {
            let x: Vec<f32> = rows.iter().flat_map(|&r| feats.row(r).to_vec()).collect();
            Tensor::from_slice(&x).reshape([rows.len() as i64, f as i64])
        }
    };
    Batch {
        x,
        targets: ds.tasks().iter().map(|t| task_target(t, rows)).collect(),
        rows: rows.to_vec(),
    }
}

/// The bytes of `f32` values, in native order.
fn f32_bytes(values: &[f32]) -> &[u8] {
    // SAFETY: any initialised `f32`s are valid bytes, and the length is exact.
    unsafe {
        std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
    }
}

fn task_target(task: &TaskData, rows: &[usize]) -> TaskTarget {
    let values = match &task.data {
        TargetData::Classes { labels, .. } => {
            let v: Vec<i64> = rows.iter().map(|&r| labels[r]).collect();
            Tensor::from_slice(&v)
        }
        TargetData::Binary(values) => {
            let v: Vec<f32> = rows.iter().map(|&r| values[r]).collect();
            Tensor::from_slice(&v)
        }
        TargetData::Regression(values) => {
            let m = values.ncols() as i64;
            let v: Vec<f32> = rows.iter().flat_map(|&r| values.row(r).to_vec()).collect();
            Tensor::from_slice(&v).reshape([rows.len() as i64, m])
        }
    };
    match &task.mask {
        None => TaskTarget::new(values),
        Some(mask) => {
            let m: Vec<bool> = rows.iter().map(|&r| mask[r]).collect();
            TaskTarget::masked(values, Tensor::from_slice(&m))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use tch::Kind;

    #[test]
    fn tensors_have_the_documented_kinds_and_shapes() {
        let ds = MultiTaskDataset::new(
            array![[0.0f32, 1.0], [2.0, 3.0], [4.0, 5.0]],
            vec![
                TaskData::classes("c", array![0, 2, 1], 3),
                TaskData::binary("b", array![1.0, 0.0, 1.0]),
                TaskData::regression("r", array![[1.0f32, -1.0], [2.0, -2.0], [3.0, -3.0]])
                    .with_mask(array![true, false, true]),
            ],
        )
        .unwrap();
        let batch = ds.batch(&[2, 0]).unwrap();
        assert_eq!(batch.x.size(), [2, 2]);
        assert_eq!(batch.x.kind(), Kind::Float);
        assert_eq!(
            Vec::<f32>::try_from(batch.x.reshape([-1])).unwrap(),
            [4.0, 5.0, 0.0, 1.0]
        );
        let [c, b, r] = &batch.targets[..] else {
            panic!("three targets expected")
        };
        assert_eq!((c.values.kind(), c.values.size()), (Kind::Int64, vec![2]));
        assert_eq!(Vec::<i64>::try_from(&c.values).unwrap(), [1, 0]);
        assert!(c.mask.is_none() && b.mask.is_none());
        assert_eq!((b.values.kind(), b.values.size()), (Kind::Float, vec![2]));
        assert_eq!(
            (r.values.kind(), r.values.size()),
            (Kind::Float, vec![2, 2])
        );
        let mask = r.mask.as_ref().unwrap();
        assert_eq!(mask.kind(), Kind::Bool);
        assert_eq!(Vec::<bool>::try_from(mask).unwrap(), [true, true]);
        assert_eq!(batch.rows, [2, 0]);
        assert!(ds.batch(&[3]).is_err());
        let moved = batch.to_device(Device::Cpu);
        assert!(moved.x.equal(&batch.x));
    }

    #[test]
    fn size_hint_counts_the_remaining_batches() {
        let ds = MultiTaskDataset::new(
            ndarray::Array2::zeros((7, 1)),
            vec![TaskData::binary("b", ndarray::Array1::zeros(7))],
        )
        .unwrap();
        let mut it = ds.batches(3, None).unwrap();
        assert_eq!(it.len(), 3);
        it.next();
        assert_eq!(it.len(), 2);
        assert_eq!(it.order(), [0, 1, 2, 3, 4, 5, 6]);
        assert!(ds.batches(0, None).is_err());
    }
}
