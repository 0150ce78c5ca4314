//! Task-Jacobian extraction: the K backward passes of a gradient-level step, on the W1
//! model (K = 3) and its K = 10 variant, with respect to the shared parameters (d ≈ 99k)
//! and to the shared representation (d = 256 × 256). The forward graph is built once
//! and kept, so only the extraction is timed.
// criterion_group!/criterion_main! generate undocumented public items.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use mtl::core::task_jacobian;
use mtl_bench::spec::{build_model, make_data, Workload};
use tch::Device;

fn jacobian(c: &mut Criterion) {
    tch::set_num_threads(2);
    let mut g = c.benchmark_group("task_jacobian");
    g.sample_size(20);
    for w in [Workload::Mlp, Workload::MlpK10] {
        let data = make_data(w, 0, 1, Device::Cpu);
        let model = build_model(w, Device::Cpu).expect("model");
        let groups = model.param_groups().expect("groups");
        let fwd = model.forward_t(&data[0].x, true).expect("forward");
        let losses = model
            .losses(&fwd.outputs, &data[0].targets)
            .expect("losses");
        let shared = groups.shared_tensors();
        g.bench_function(BenchmarkId::new("parameters", w.name()), |b| {
            b.iter(|| task_jacobian(&losses, &shared).expect("jacobian"))
        });
        let rep = [fwd
            .features
            .shared
            .as_ref()
            .expect("hps has a trunk")
            .shallow_clone()];
        g.bench_function(BenchmarkId::new("representation", w.name()), |b| {
            b.iter(|| task_jacobian(&losses, &rep).expect("jacobian"))
        });
    }
    g.finish();
}

criterion_group!(benches, jacobian);
criterion_main!(benches);
