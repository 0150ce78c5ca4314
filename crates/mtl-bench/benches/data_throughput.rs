//! Data throughput against training speed, on real data: how many mini-batches per
//! second the data path assembles (plain, and with background prefetch) next to how
//! many training steps per second a model takes on the same batches. Assembly must be
//! far faster than the step for the data never to be the bottleneck.
//!
//! - MultiMNIST (2,000 composite 28×28 images, batches of 256): LeNet (Sener & Koltun)
//!   with a class head per digit.
//! - Census-Income (first 20,000 training rows, about 490 one-hot and numeric features,
//!   batches of 1,024): an MLP 128-64 with a binary head per task.
//!
//! Criterion's `elem/s` is batches per second. Run with
//! `cargo bench -p mtl-bench --bench data_throughput`.

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mtl::core::{derive_rng, CnnConfig};
use mtl::data::{
    census_income, data_root, multi_mnist, prefetch, Batch, CensusConfig, CensusGroup,
    MultiMnistConfig, MultiTaskDataset, Standardizer,
};
use mtl::heads::{BinaryHead, ClassificationHead};
use mtl::losses::Method;
use mtl::prelude::*;
use std::sync::Arc;
use tch::{nn, Device};

const MNIST_IMAGES: usize = 2_000;
const MNIST_BATCH: usize = 256;
const CENSUS_ROWS: usize = 20_000;
const CENSUS_BATCH: usize = 1_024;

/// The full data set when `cargo xtask data` (or ../shared/data) provides it, else the
/// small slice the mtl-data tests ship, so `cargo test --all-targets` runs anywhere.
fn root_of(name: &str) -> std::path::PathBuf {
    data_root(name).unwrap_or_else(|_| {
        eprintln!("{name}: full data not found (cargo xtask data {name}); using the test slice");
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../mtl-data/tests/data")
    })
}

fn multimnist() -> Arc<MultiTaskDataset> {
    let root = root_of("mnist");
    let split = multi_mnist(root, &MultiMnistConfig::sized(MNIST_IMAGES, 10)).expect("MultiMNIST");
    Arc::new(split.train)
}

fn census() -> Arc<MultiTaskDataset> {
    let root = root_of("census-income-kdd");
    let config = CensusConfig::new(CensusGroup::Income).rows(CENSUS_ROWS, 10);
    let train = census_income(root, &config)
        .expect("Census-Income")
        .split
        .train;
    let scaled = Standardizer::fit(&train)
        .apply(&train)
        .expect("standardize");
    Arc::new(scaled)
}

fn lenet_model() -> MultiTaskModel {
    let vs = nn::VarStore::new(Device::Cpu);
    let cnn = CnnConfig::new(28, 28);
    let out = cnn.out_dim;
    let trunk = cnn.build(&(vs.root() / "trunk")).expect("LeNet");
    let arch = HardSharing::new(trunk, 2).expect("arch");
    let heads = ["left", "right"]
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let path = task_path(&vs.root(), k) / "head";
            Box::new(ClassificationHead::new(&path, *name, out, 10).expect("head"))
                as Box<dyn TaskHead>
        })
        .collect();
    MultiTaskModel::new(vs, arch, heads).expect("model")
}

fn mlp_model(width: usize) -> MultiTaskModel {
    let vs = nn::VarStore::new(Device::Cpu);
    let trunk = MlpConfig::new(vec![width as i64, 128, 64])
        .build(&(vs.root() / "trunk"))
        .expect("MLP");
    let arch = HardSharing::new(trunk, 2).expect("arch");
    let heads = ["income", "never_married"]
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let path = task_path(&vs.root(), k) / "head";
            Box::new(BinaryHead::new(&path, *name, 64).expect("head")) as Box<dyn TaskHead>
        })
        .collect();
    MultiTaskModel::new(vs, arch, heads).expect("model")
}

/// One optimiser step (forward, equal-weight backward, Adam) on `batch`.
struct Stepper {
    model: MultiTaskModel,
    groups: mtl::core::ParamGroups,
    method: Method,
    opt: mtl::core::Optimizer,
    step: u64,
}

impl Stepper {
    fn new(model: MultiTaskModel) -> Self {
        let groups = model.param_groups().expect("groups");
        let method = mtl::losses::by_name("ew", model.num_tasks(), 0).expect("ew");
        let opt = OptimizerConfig::adam(1e-3)
            .build(groups.all_tensors())
            .expect("adam");
        Stepper {
            model,
            groups,
            method,
            opt,
            step: 0,
        }
    }

    fn step(&mut self, batch: &Batch) {
        self.opt.zero_grad();
        mtl::backward_step(
            &self.model,
            &self.groups,
            &mut self.method,
            GradMode::Parameters,
            &batch.x,
            &batch.targets,
            self.step,
            0,
        )
        .expect("step");
        self.opt.step().expect("adam step");
        self.step += 1;
    }
}

fn bench_set(
    c: &mut Criterion,
    name: &str,
    data: Arc<MultiTaskDataset>,
    batch: usize,
    model: MultiTaskModel,
) {
    let batches_per_epoch = data.len().div_ceil(batch) as u64;
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    g.throughput(Throughput::Elements(batches_per_epoch));
    let mut rng = derive_rng(0, "bench");
    g.bench_function("assemble_epoch", |b| {
        b.iter(|| {
            data.batches(batch, Some(&mut rng))
                .expect("batches")
                .count()
        })
    });
    g.bench_function("assemble_epoch_prefetched", |b| {
        b.iter(|| {
            prefetch(
                data.shared_batches(batch, Some(&mut rng)).expect("batches"),
                4,
            )
            .count()
        })
    });
    let fixed: Vec<Batch> = data
        .batches(batch, Some(&mut rng))
        .expect("batches")
        .take(4)
        .collect();
    let mut stepper = Stepper::new(model);
    g.throughput(Throughput::Elements(fixed.len() as u64));
    g.bench_function("train_steps", |b| {
        b.iter(|| fixed.iter().for_each(|batch| stepper.step(batch)))
    });
    g.finish();
}

fn throughput(c: &mut Criterion) {
    tch::set_num_threads(2);
    tch::manual_seed(0);
    let mm = multimnist();
    bench_set(c, "multimnist", mm, MNIST_BATCH, lenet_model());
    let cs = census();
    let width = cs.num_features();
    bench_set(c, "census_income", cs, CENSUS_BATCH, mlp_model(width));
}

criterion_group!(benches, throughput);
criterion_main!(benches);
