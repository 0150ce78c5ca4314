//! Batch assembly: one shuffled epoch of 256-row mini-batches (features, two class
//! targets, a regression target, and one task with missing labels) cut from a 16,384-row
//! `MultiTaskDataset`, as the trainer draws them.
// criterion_group!/criterion_main! generate undocumented public items.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mtl::core::derive_rng;
use mtl::data::{MultiTaskDataset, TaskData};
use ndarray::{Array1, Array2};

fn dataset(n: usize) -> MultiTaskDataset {
    let x = Array2::from_shape_fn((n, 128), |(i, j)| ((i * 31 + j * 7) % 97) as f32 / 97.0);
    let ca = Array1::from_shape_fn(n, |i| (i % 10) as i64);
    let cb = Array1::from_shape_fn(n, |i| ((i / 3) % 10) as i64);
    let reg = Array2::from_shape_fn((n, 1), |(i, _)| (i % 13) as f32);
    let bin = Array1::from_shape_fn(n, |i| (i % 2) as f32);
    let mask = Array1::from_shape_fn(n, |i| i % 5 != 0);
    MultiTaskDataset::new(
        x,
        vec![
            TaskData::classes("cls_a", ca, 10),
            TaskData::classes("cls_b", cb, 10),
            TaskData::regression("reg", reg),
            TaskData::binary("bin", bin).with_mask(mask),
        ],
    )
    .expect("dataset")
}

fn batch_assembly(c: &mut Criterion) {
    tch::set_num_threads(2);
    let n = 16_384;
    let ds = dataset(n);
    let mut g = c.benchmark_group("batch_assembly");
    g.sample_size(20);
    g.throughput(Throughput::Elements(n as u64));
    let mut rng = derive_rng(0, "batches");
    g.bench_function("epoch_256_shuffled", |b| {
        b.iter(|| {
            let mut rows = 0;
            for batch in ds.batches(256, Some(&mut rng)).expect("batches") {
                rows += batch.len();
            }
            rows
        })
    });
    g.bench_function("epoch_256_in_order", |b| {
        b.iter(|| {
            ds.batches(256, None)
                .expect("batches")
                .map(|b| b.len())
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, batch_assembly);
criterion_main!(benches);
