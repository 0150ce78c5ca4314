//! Every registered gradient-level method's `aggregate` on a random K×d Jacobian
//! (K ∈ {2, 10}, d = 10⁵, f32), state carried across calls as in training.
//! `mtl-bench` times the same at d = 10⁶ and K up to 40 next to the floor of reading J.
// criterion_group!/criterion_main! generate undocumented public items.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use mtl::losses::{by_name, list, Method, MethodLevel, StepContext};
use tch::{Device, Kind, Tensor};

fn aggregators(c: &mut Criterion) {
    tch::set_num_threads(2);
    tch::manual_seed(0);
    let mut g = c.benchmark_group("aggregate");
    g.sample_size(10);
    let d = 100_000;
    for k in [2usize, 10] {
        let j = Tensor::randn([k as i64, d], (Kind::Float, Device::Cpu));
        let losses = vec![1.0; k];
        for info in list()
            .into_iter()
            .filter(|i| i.level == MethodLevel::Gradient)
        {
            let Ok(Method::Aggregator(mut a)) = by_name(info.name, k, 0) else {
                continue;
            };
            let mut step = 0u64;
            let ctx = |step| StepContext {
                step,
                epoch: 2,
                losses: &losses,
            };
            // Methods that cannot take this K (Krum needs K >= 4) are left out.
            if a.aggregate(&j, &ctx(step)).is_err() {
                continue;
            }
            g.bench_function(BenchmarkId::new(info.name, format!("K={k}")), |b| {
                b.iter(|| {
                    step += 1;
                    a.aggregate(&j, &ctx(step)).expect("aggregate")
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, aggregators);
criterion_main!(benches);
