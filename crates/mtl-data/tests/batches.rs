//! Mini-batch iteration: coverage, seeded order, masks.

use mtl_core::derive_rng;
use mtl_data::{MultiTaskDataset, TaskData};
use ndarray::{Array1, Array2};
use proptest::prelude::*;

fn dataset(n: usize) -> MultiTaskDataset {
    let mask = Array1::from_shape_fn(n, |i| i % 3 != 0);
    MultiTaskDataset::new(
        Array2::from_shape_fn((n, 2), |(r, c)| (r * 2 + c) as f32),
        vec![
            TaskData::classes("c", Array1::from_shape_fn(n, |i| (i % 4) as i64), 4),
            TaskData::regression("r", Array2::from_shape_fn((n, 1), |(r, _)| r as f32))
                .with_mask(mask),
        ],
    )
    .unwrap()
}

fn visited(ds: &MultiTaskDataset, batch_size: usize, seed: Option<u64>) -> Vec<usize> {
    let mut rng = seed.map(|s| derive_rng(s, "batches"));
    ds.batches(batch_size, rng.as_mut())
        .unwrap()
        .flat_map(|b| b.rows)
        .collect()
}

#[test]
fn unshuffled_batches_are_in_order_with_a_partial_last_batch() {
    let ds = dataset(10);
    let sizes: Vec<usize> = ds.batches(4, None).unwrap().map(|b| b.len()).collect();
    assert_eq!(sizes, [4, 4, 2]);
    assert_eq!(visited(&ds, 4, None), (0..10).collect::<Vec<_>>());
}

#[test]
fn same_seed_same_order_different_seed_different_order() {
    let ds = dataset(50);
    let a = visited(&ds, 8, Some(1));
    assert_eq!(a, visited(&ds, 8, Some(1)));
    assert_ne!(a, visited(&ds, 8, Some(2)));
    assert_ne!(a, (0..50).collect::<Vec<_>>());
}

#[test]
fn batch_contents_follow_their_rows() {
    let ds = dataset(9);
    let mut rng = derive_rng(3, "batches");
    for batch in ds.batches(4, Some(&mut rng)).unwrap() {
        let x: Vec<f32> = Vec::try_from(batch.x.reshape([-1])).unwrap();
        let labels: Vec<i64> = Vec::try_from(&batch.targets[0].values).unwrap();
        let mask: Vec<bool> = Vec::try_from(batch.targets[1].mask.as_ref().unwrap()).unwrap();
        for (i, &r) in batch.rows.iter().enumerate() {
            assert_eq!(x[2 * i], (2 * r) as f32);
            assert_eq!(labels[i], (r % 4) as i64);
            assert_eq!(mask[i], r % 3 != 0);
        }
        assert!(batch.targets[0].mask.is_none());
    }
}

proptest! {
    #[test]
    fn batches_cover_every_row_exactly_once(n in 0usize..60, bs in 1usize..20, seed in any::<u64>()) {
        let ds = dataset(n);
        let mut rows = visited(&ds, bs, Some(seed));
        prop_assert_eq!(ds.batches(bs, None).unwrap().count(), n.div_ceil(bs));
        rows.sort_unstable();
        prop_assert_eq!(rows, (0..n).collect::<Vec<_>>());
    }
}

#[test]
fn large_batches_and_column_major_features_hold_the_right_rows() {
    let n = 300;
    let f = 300;
    let x = Array2::from_shape_fn((n, f), |(r, c)| (r * 1000 + c) as f32);
    let y = TaskData::binary("b", Array1::from_shape_fn(n, |i| (i % 2) as f32));
    for features in [x.clone(), x.t().to_owned().reversed_axes()] {
        let ds = MultiTaskDataset::new(features, vec![y.clone()]).unwrap();
        let mut rng = derive_rng(9, "batches");
        // 256 × 300 values: the parallel copy.
        let batch = ds.batches(256, Some(&mut rng)).unwrap().next().unwrap();
        let got: Vec<f32> = Vec::try_from(batch.x.reshape([-1])).unwrap();
        let want: Vec<f32> = batch
            .rows
            .iter()
            .flat_map(|&r| (0..f).map(move |c| (r * 1000 + c) as f32))
            .collect();
        assert_eq!(got, want);
    }
}

#[test]
fn shared_and_prefetched_batches_match_borrowed_ones() {
    let ds = std::sync::Arc::new(dataset(37));
    let mut a = derive_rng(4, "batches");
    let mut b = derive_rng(4, "batches");
    let borrowed: Vec<Vec<usize>> = ds
        .batches(5, Some(&mut a))
        .unwrap()
        .map(|b| b.rows)
        .collect();
    let shared: Vec<Vec<usize>> =
        mtl_data::prefetch(ds.shared_batches(5, Some(&mut b)).unwrap(), 3)
            .map(|b| b.rows)
            .collect();
    assert_eq!(borrowed, shared);
    let scoped: Vec<Vec<usize>> = std::thread::scope(|s| {
        mtl_data::prefetch_scoped(s, ds.batches(5, None).unwrap(), 2)
            .map(|b| b.rows)
            .collect()
    });
    assert_eq!(scoped.concat(), (0..37).collect::<Vec<_>>());
}
