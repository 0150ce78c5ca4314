//! Shared fixtures of the trainer tests: a small synthetic two-task problem and a
//! hard-sharing model for it.

#![allow(dead_code)]

use mtl::data::{MultiTaskDataset, TaskData};
use mtl::heads::{ClassificationHead, RegressionHead, RegressionLoss};
use mtl::prelude::*;
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use tch::{nn, Device};

/// Task 0: the sign of x0 + x1 (2 classes); task 1: x2 − 2·x3 (regression).
pub fn synthetic(n: usize, seed: u64) -> MultiTaskDataset {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let x = Array2::from_shape_fn((n, 4), |_| rng.gen_range(-1.0f32..1.0));
    let cls: Array1<i64> = x
        .rows()
        .into_iter()
        .map(|r| i64::from(r[0] + r[1] > 0.0))
        .collect();
    let reg = Array2::from_shape_fn((n, 1), |(i, _)| x[[i, 2]] - 2.0 * x[[i, 3]]);
    MultiTaskDataset::new(
        x,
        vec![
            TaskData::classes("sign", cls, 2),
            TaskData::regression("linear", reg),
        ],
    )
    .unwrap()
}

/// A 4→16→8 trunk (with dropout, so resumes must restore the dropout stream too) and
/// one head per task of `tasks` (a subset of the two synthetic tasks, in order).
pub fn model_for(seed: u64, tasks: &[usize]) -> MultiTaskModel {
    build(seed, tasks, true)
}

/// The two-task model without dropout, for tests that compare passes (clean and
/// attacked) or ranks, where a dropout mask drawn anew would differ.
pub fn model_without_dropout(seed: u64) -> MultiTaskModel {
    build(seed, &[0, 1], false)
}

fn build(seed: u64, tasks: &[usize], dropout: bool) -> MultiTaskModel {
    seed_everything(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let mut trunk = MlpConfig::new([4, 16, 8]);
    if dropout {
        trunk = trunk.dropout(0.1);
    }
    let trunk = trunk.build(&(vs.root() / "trunk")).unwrap();
    let heads: Vec<Box<dyn TaskHead>> = tasks
        .iter()
        .enumerate()
        .map(|(k, &t)| {
            let p = task_path(&vs.root(), k) / "head";
            if t == 0 {
                Box::new(ClassificationHead::new(&p, "sign", 8, 2).unwrap()) as Box<dyn TaskHead>
            } else {
                Box::new(RegressionHead::new(&p, "linear", 8, 1, RegressionLoss::Mse).unwrap())
            }
        })
        .collect();
    MultiTaskModel::new(vs, HardSharing::new(trunk, tasks.len()).unwrap(), heads).unwrap()
}

/// The two-task model.
pub fn model(seed: u64) -> MultiTaskModel {
    model_for(seed, &[0, 1])
}

/// Every weight of `m`, flattened, by name.
pub fn weights(m: &MultiTaskModel) -> Vec<(String, Vec<f32>)> {
    m.snapshot()
        .into_iter()
        .map(|(n, t)| (n, Vec::<f32>::try_from(t.reshape([-1])).unwrap()))
        .collect()
}

/// A small configuration that trains the synthetic problem quickly.
pub fn config(method: &str) -> TrainerConfig {
    TrainerConfig::default()
        .epochs(6)
        .batch_size(16)
        .optimizer(OptimizerConfig::adam(1e-2))
        .method(method)
        .seed(3)
}

/// libtorch's generator (initialisation, dropout) is global to the process: tests that
/// compare runs bit for bit hold this lock so parallel tests do not draw from it.
#[allow(unused_imports)] // not every test file draws
pub use mtl::core::torch_rng_lock as torch_lock;

/// The heads of the two synthetic tasks, as a `ModelSpec` lists them.
pub fn synthetic_head_specs() -> Vec<mtl::HeadSpec> {
    vec![
        mtl::HeadSpec::Classification {
            name: "sign".into(),
            classes: 2,
        },
        mtl::HeadSpec::Regression {
            name: "linear".into(),
            outputs: 1,
            loss: RegressionLoss::Mse,
        },
    ]
}
