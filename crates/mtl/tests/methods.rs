//! Every registered method trains through the Trainer — on olive oil and on a
//! synthetic problem, in parameter and rep-grad modes — to a lower loss than at start.

mod common;

use mtl::data::{olive_oil, MultiTaskDataset, Standardizer, TaskData};
use mtl::heads::{ClassificationHead, RegressionHead, RegressionLoss};
use mtl::losses::{list, MethodLevel};
use mtl::prelude::*;
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use tch::{nn, Device};

/// K tasks over 6 features: even tasks classify the sign of a random projection, odd
/// tasks regress another; enough tasks for the robust aggregators (Krum needs K ≥ 4).
fn synthetic(k: usize, n: usize) -> MultiTaskDataset {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let x = Array2::from_shape_fn((n, 6), |_| rng.gen_range(-1.0f32..1.0));
    let tasks = (0..k)
        .map(|t| {
            let w: Vec<f32> = (0..6).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
            let proj: Vec<f32> = x
                .rows()
                .into_iter()
                .map(|r| r.iter().zip(&w).map(|(a, b)| a * b).sum())
                .collect();
            if t % 2 == 0 {
                TaskData::classes(
                    format!("cls{t}"),
                    proj.iter()
                        .map(|&p| i64::from(p > 0.0))
                        .collect::<Array1<i64>>(),
                    2,
                )
            } else {
                TaskData::regression(
                    format!("reg{t}"),
                    Array2::from_shape_vec((n, 1), proj).unwrap(),
                )
            }
        })
        .collect();
    MultiTaskDataset::new(x, tasks).unwrap()
}

fn model(data: &MultiTaskDataset, classes: &[i64]) -> MultiTaskModel {
    seed_everything(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let trunk = MlpConfig::new([data.num_features() as i64, 32, 16])
        .build(&(vs.root() / "trunk"))
        .unwrap();
    let heads = classes
        .iter()
        .enumerate()
        .map(|(k, &c)| {
            let p = task_path(&vs.root(), k) / "head";
            if c > 0 {
                Box::new(ClassificationHead::new(&p, format!("t{k}"), 16, c).unwrap())
                    as Box<dyn TaskHead>
            } else {
                Box::new(
                    RegressionHead::new(&p, format!("t{k}"), 16, 1, RegressionLoss::Mse).unwrap(),
                )
            }
        })
        .collect();
    MultiTaskModel::new(vs, HardSharing::new(trunk, classes.len()).unwrap(), heads).unwrap()
}

/// Trains with `method` and returns (first-epoch, last-epoch) summed training loss, or
/// `None` when the method cannot be built for this many tasks (a typed error).
fn train(
    method: &str,
    mode: GradMode,
    data: &MultiTaskDataset,
    classes: &[i64],
) -> Option<(f64, f64)> {
    if mtl::losses::by_name(method, classes.len(), 0).is_err() {
        return None;
    }
    let mut m = model(data, classes);
    let config = TrainerConfig::default()
        .epochs(8)
        .batch_size(if data.len().is_multiple_of(64) {
            64
        } else {
            52
        })
        .optimizer(OptimizerConfig::adam(1e-2))
        .method(method)
        .grad_mode(mode);
    // A method that learns its weights on validation batches (Auto-λ) gets the training
    // set again, as its reference implementation uses it.
    let needs_validation =
        mtl::losses::by_name(method, classes.len(), 0).is_ok_and(|m| m.meta().is_some());
    let report = Trainer::new(config)
        .unwrap()
        .fit(&mut m, data, needs_validation.then_some(data))
        .unwrap_or_else(|e| panic!("{method} {mode:?}: {e}"));
    let sum = |l: &[f64]| l.iter().sum::<f64>();
    Some((
        sum(&report.epochs[0].train_losses),
        sum(&report.epochs.last().unwrap().train_losses),
    ))
}

fn modes(level: MethodLevel) -> Vec<GradMode> {
    match level {
        MethodLevel::Loss => vec![GradMode::Parameters],
        MethodLevel::Gradient => vec![GradMode::Parameters, GradMode::Representation],
    }
}

#[test]
fn every_method_lowers_the_loss_on_a_synthetic_problem() {
    // Models are seeded through libtorch's process-wide generator; the lock keeps the
    // other test's draws out of their start.
    let _torch = common::torch_lock();
    let two = synthetic(2, 256);
    let four = synthetic(4, 256);
    for info in list() {
        for mode in modes(info.level) {
            let result = train(info.name, mode, &two, &[2, 0])
                .or_else(|| train(info.name, mode, &four, &[2, 0, 2, 0]));
            let (first, last) = result
                .unwrap_or_else(|| panic!("{} builds for neither K = 2 nor K = 4", info.name));
            assert!(last < first, "{} {mode:?}: {first} -> {last}", info.name);
        }
    }
}

#[test]
fn every_method_lowers_the_loss_on_olive_oil() {
    let _torch = common::torch_lock();
    let data = olive_oil(mtl::data::data_dir()).unwrap();
    assert!(data.len().is_multiple_of(52));
    let data = Standardizer::fit(&data).apply(&data).unwrap();
    let mut trained = 0;
    for info in list() {
        for mode in modes(info.level) {
            // Robust aggregators that need K ≥ 3 or 4 refuse olive oil's two tasks with a
            // typed error; the synthetic test covers them.
            if let Some((first, last)) = train(info.name, mode, &data, &[3, 9]) {
                assert!(last < first, "{} {mode:?}: {first} -> {last}", info.name);
                trained += 1;
            }
        }
    }
    assert!(trained >= list().len(), "only {trained} runs");
}
