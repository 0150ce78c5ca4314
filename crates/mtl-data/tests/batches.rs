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
