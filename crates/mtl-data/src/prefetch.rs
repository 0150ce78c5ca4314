//! Background batch assembly: a producer thread runs an iterator ahead of its consumer,
//! up to a bounded number of items, so building the next batch overlaps the current
//! training step.

use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::{JoinHandle, Scope};

/// The items of an iterator, produced on another thread at most `depth` ahead. Made by
/// [`prefetch`] (owned iterators) or [`prefetch_scoped`] (borrowing ones). Dropping it
/// stops the producer at its next item.
#[derive(Debug)]
pub struct Prefetch<T> {
    rx: Option<Receiver<T>>,
    handle: Option<JoinHandle<()>>,
}

/// Runs `iter` on a new thread, keeping up to `depth` (at least 1) items ready.
///
/// A panic in the producer is re-raised in the consumer once the items produced before
/// it are used up.
///
/// ```
/// let squares: Vec<u64> = mtl_data::prefetch((0..5u64).map(|i| i * i), 2).collect();
/// assert_eq!(squares, [0, 1, 4, 9, 16]);
/// ```
pub fn prefetch<I>(iter: I, depth: usize) -> Prefetch<I::Item>
where
    I: IntoIterator,
    I::IntoIter: Send + 'static,
    I::Item: Send + 'static,
{
    let (tx, rx) = sync_channel(depth.max(1));
    let iter = iter.into_iter();
    let handle = std::thread::spawn(move || {
        for item in iter {
            if tx.send(item).is_err() {
                break;
            }
        }
    });
    Prefetch {
        rx: Some(rx),
        handle: Some(handle),
    }
}

/// As [`prefetch`], for an iterator that borrows (such as
/// [`MultiTaskDataset::batches`](crate::MultiTaskDataset::batches)): the producer runs
/// in `scope`, which joins it (and re-raises its panic) when the scope ends. Drop the
/// `Prefetch` inside the scope.
///
/// ```
/// # use mtl_data::{MultiTaskDataset, TaskData};
/// # use ndarray::{Array1, Array2};
/// let ds = MultiTaskDataset::new(Array2::zeros((10, 3)), vec![TaskData::binary("b", Array1::zeros(10))])?;
/// let rows = std::thread::scope(|s| -> mtl_core::Result<usize> {
///     Ok(mtl_data::prefetch_scoped(s, ds.batches(4, None)?, 2).map(|b| b.len()).sum())
/// })?;
/// assert_eq!(rows, 10);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn prefetch_scoped<'scope, 'env, I>(
    scope: &'scope Scope<'scope, 'env>,
    iter: I,
    depth: usize,
) -> Prefetch<I::Item>
where
    I: IntoIterator,
    I::IntoIter: Send + 'scope,
    I::Item: Send + 'scope,
{
    let (tx, rx) = sync_channel(depth.max(1));
    let iter = iter.into_iter();
    scope.spawn(move || {
        for item in iter {
            if tx.send(item).is_err() {
                break;
            }
        }
    });
    Prefetch {
        rx: Some(rx),
        handle: None,
    }
}

impl<T> Iterator for Prefetch<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        let item = self.rx.as_ref()?.recv().ok();
        if item.is_none() {
            self.rx = None;
            if let Some(handle) = self.handle.take() {
                if let Err(panic) = handle.join() {
                    std::panic::resume_unwind(panic);
                }
            }
        }
        item
    }
}

impl<T> Drop for Prefetch<T> {
    fn drop(&mut self) {
        // Closing the channel first makes a producer blocked on a full channel stop.
        self.rx = None;
        if let Some(handle) = self.handle.take() {
            // A producer panic during an abandoned iteration is not re-raised from drop.
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn stays_at_most_depth_ahead_and_stops_when_dropped() {
        let made = Arc::new(AtomicUsize::new(0));
        let counter = made.clone();
        let endless = (0u64..).inspect(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let mut p = prefetch(endless, 3);
        assert_eq!(p.next(), Some(0));
        std::thread::sleep(std::time::Duration::from_millis(50));
        // One taken, three buffered, one blocked in `send`.
        assert!(made.load(Ordering::SeqCst) <= 5);
        drop(p);
        let after = made.load(Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(made.load(Ordering::SeqCst), after);
    }

    #[test]
    fn producer_panics_reach_the_consumer() {
        let bad = (0..3).map(|i| if i == 2 { panic!("producer failed") } else { i });
        let mut p = prefetch(bad, 1);
        assert_eq!((p.next(), p.next()), (Some(0), Some(1)));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.next()));
        assert!(caught.is_err());
    }
}
