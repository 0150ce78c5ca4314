//! The Gram-matrix path of the aggregators: G = J Jᵀ (computed in J's dtype, solved in
//! f64) and the combination wᵀJ, at K ∈ {2, 10, 40} and d ∈ {10⁵, 10⁶} (f32).
// criterion_group!/criterion_main! generate undocumented public items.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mtl::losses::gram::{combine, Gram};
use tch::{Device, Kind, Tensor};

fn gram(c: &mut Criterion) {
    tch::set_num_threads(2);
    tch::manual_seed(0);
    let mut g = c.benchmark_group("gram");
    g.sample_size(10);
    for d in [100_000i64, 1_000_000] {
        for k in [2i64, 10, 40] {
            let j = Tensor::randn([k, d], (Kind::Float, Device::Cpu));
            let w = vec![1.0 / k as f64; k as usize];
            g.throughput(Throughput::Bytes((k * d * 4) as u64));
            let id = format!("K={k},d={d}");
            g.bench_function(BenchmarkId::new("of", &id), |b| {
                b.iter(|| Gram::of(&j).expect("gram"))
            });
            g.bench_function(BenchmarkId::new("combine", &id), |b| {
                b.iter(|| combine(&w, &j).expect("combine"))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, gram);
criterion_main!(benches);
