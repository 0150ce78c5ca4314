//! Rows with a target for every task, cut into mini-batches: what the trainer's loop
//! over one dataset, evaluation and checkpoints read, whatever the rows hold.
//!
//! [`MultiTaskDataset`] (tables: `[N, F]` features, per-row class, binary or regression
//! targets) and [`TensorDataset`](crate::TensorDataset) (any shapes and dtypes: images,
//! token ids, per-pixel and per-token targets) implement it; so can a user's own
//! data. Tasks that each bring their own rows are [`MultiInputData`](crate::MultiInputData)
//! instead.

use crate::batch::Batch;
use crate::dataset::MultiTaskDataset;
use crate::target::TargetData;
use crate::target_scale::TargetScale;
use mtl_core::{Result, SeededRng};

/// A dataset whose every row carries a target (or a masked gap) for each of K tasks.
pub trait JointData {
    /// The number of rows.
    fn len(&self) -> usize;

    /// Whether there are no rows.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of tasks, K.
    fn num_tasks(&self) -> usize;

    /// The task names, in task order.
    fn task_names(&self) -> Vec<String>;

    /// Mini-batches covering every row exactly once: in order when `rng` is `None`,
    /// shuffled with `rng` otherwise (the same draws give the same batches). The last
    /// batch may be smaller. Assembling a batch may fail (a tensor operation's error),
    /// so each comes as a `Result`.
    fn joint_batches(
        &self,
        batch_size: usize,
        rng: Option<&mut SeededRng>,
    ) -> Result<Box<dyn Iterator<Item = Result<Batch>> + '_>>;

    /// How task `k`'s stored targets map back to their original units, when they are
    /// stored standardised; evaluation reports metrics in the original units.
    fn target_scale(&self, k: usize) -> Option<&TargetScale> {
        let _ = k;
        None
    }

    /// Feeds every byte that identifies the data (shapes, values, masks, names) to
    /// `feed`, so a checkpoint can refuse to resume on other data.
    fn fingerprint(&self, feed: &mut dyn FnMut(&[u8]));
}

impl JointData for MultiTaskDataset {
    fn len(&self) -> usize {
        MultiTaskDataset::len(self)
    }

    fn num_tasks(&self) -> usize {
        MultiTaskDataset::num_tasks(self)
    }

    fn task_names(&self) -> Vec<String> {
        MultiTaskDataset::task_names(self)
    }

    fn joint_batches(
        &self,
        batch_size: usize,
        rng: Option<&mut SeededRng>,
    ) -> Result<Box<dyn Iterator<Item = Result<Batch>> + '_>> {
        Ok(Box::new(self.batches(batch_size, rng)?.map(Ok)))
    }

    fn target_scale(&self, k: usize) -> Option<&TargetScale> {
        MultiTaskDataset::target_scale(self, k)
    }

    fn fingerprint(&self, feed: &mut dyn FnMut(&[u8])) {
        let x = self.features();
        for n in x.shape() {
            feed(&(*n as u64).to_le_bytes());
        }
        feed_values(feed, x.iter().map(|v| v.to_le_bytes()));
        feed(&(self.tasks().len() as u64).to_le_bytes());
        for task in self.tasks() {
            feed_text(feed, &task.name);
            feed_text(feed, task.data.kind_name());
            feed(&(task.data.output_dim() as u64).to_le_bytes());
            match &task.data {
                TargetData::Classes { labels, .. } => {
                    feed_values(feed, labels.iter().map(|v| v.to_le_bytes()))
                }
                TargetData::Binary(v) => feed_values(feed, v.iter().map(|v| v.to_le_bytes())),
                TargetData::Regression(v) => feed_values(feed, v.iter().map(|v| v.to_le_bytes())),
            }
            match &task.mask {
                None => feed(&[0u8]),
                Some(m) => {
                    feed(&[1u8]);
                    feed_values(feed, m.iter().map(|&b| [u8::from(b)]));
                }
            }
        }
    }
}

/// The rows of each mini-batch: `0..n` in order, or shuffled by `rng`, cut into
/// `batch_size` rows (the last batch may be shorter). Every dataset kind batches by this
/// rule, so one generator state gives the same batches whatever holds the rows.
pub fn batch_rows(
    n: usize,
    batch_size: usize,
    rng: Option<&mut SeededRng>,
) -> Result<Vec<Vec<usize>>> {
    if batch_size == 0 {
        return Err(mtl_core::Error::config("batch size must be at least 1"));
    }
    let mut order: Vec<usize> = (0..n).collect();
    if let Some(rng) = rng {
        rand::seq::SliceRandom::shuffle(order.as_mut_slice(), rng);
    }
    Ok(order.chunks(batch_size).map(<[usize]>::to_vec).collect())
}

/// Feeds fixed-size values in blocks (one call per value is slow for a hash).
pub(crate) fn feed_values<const N: usize>(
    feed: &mut dyn FnMut(&[u8]),
    values: impl Iterator<Item = [u8; N]>,
) {
    let mut block = Vec::with_capacity(N * 4096);
    for v in values {
        block.extend_from_slice(&v);
        if block.len() >= N * 4096 {
            feed(&block);
            block.clear();
        }
    }
    feed(&block);
}

/// Feeds a length-prefixed string, so that adjacent strings cannot run together.
pub(crate) fn feed_text(feed: &mut dyn FnMut(&[u8]), text: &str) {
    feed(&(text.len() as u64).to_le_bytes());
    feed(text.as_bytes());
}
