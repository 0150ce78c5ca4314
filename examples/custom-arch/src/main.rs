//! Trains this crate's task-routing architecture with `mtl`'s trainer on the synthetic
//! two-task regression of Ma et al. (KDD 2018) at three task correlations, and prints
//! the test MSE of each task and how each task ended up blending the two towers:
//! the more related the tasks, the more they should share.
//!
//! Run with `cargo run -p custom-arch --release`.

use custom_arch::TaskRouting;
use mtl::core::MlpBuilder;
use mtl::data::mmoe_synthetic;
use mtl::heads::{RegressionHead, RegressionLoss};
use mtl::prelude::*;
use tch::{nn, Device};

const SEED: u64 = 5;
const DIM: usize = 50;

fn model(in_dim: i64) -> Result<(MultiTaskModel, Vec<f64>)> {
    let vs = nn::VarStore::new(Device::Cpu);
    let tower = MlpBuilder::new([32, 16]);
    let arch = TaskRouting::new(&(vs.root() / "routing"), in_dim, 2, &tower)?;
    let before = Vec::<f64>::try_from(arch.routing_weights()?.reshape([-1]))
        .map_err(|e| Error::config(e.to_string()))?;
    let heads = (0..2)
        .map(|k| {
            let head = RegressionHead::new(
                &(task_path(&vs.root(), k) / "head"),
                format!("y{}", k + 1),
                16,
                1,
                RegressionLoss::Mse,
            )?;
            Ok(Box::new(head) as Box<dyn TaskHead>)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((MultiTaskModel::new(vs, arch, heads)?, before))
}

/// Task `k`'s share of tower A, read back from the trained model's variables.
fn share_of_a(m: &MultiTaskModel, k: usize) -> Result<f64> {
    let name = format!("routing.task{k}.route");
    let route = m
        .var_store()
        .variables()
        .remove(&name)
        .ok_or_else(|| Error::config(format!("no variable {name}")))?;
    Ok(route.softmax(-1, tch::Kind::Float).double_value(&[0]))
}

fn main() -> Result<()> {
    println!(
        "{:>11} {:>10} {:>10} {:>18} {:>18}",
        "correlation", "y1 mse", "y2 mse", "y1 A-share", "y2 A-share"
    );
    for correlation in [1.0, 0.5, 0.0] {
        seed_everything(SEED);
        let data = mmoe_synthetic(6000, DIM, correlation, SEED)?;
        let split = data.split(0.1, 0.2, SEED)?;
        let (mut m, before) = model(DIM as i64)?;
        let config = TrainerConfig::default()
            .epochs(30)
            .batch_size(64)
            .optimizer(OptimizerConfig::adam(2e-3))
            .method("ew")
            .seed(SEED)
            .early_stopping(EarlyStopping::new(Monitor::TotalLoss, 5));
        Trainer::new(config)?.fit(&mut m, &split.train, Some(&split.validation))?;
        let test = evaluate(&m, &split.test, 512)?;
        let mse = |k| test.metric(k, "mse").unwrap_or(f64::NAN);
        println!(
            "{correlation:>11.1} {:>10.4} {:>10.4} {:>8.2} -> {:>5.2} {:>8.2} -> {:>5.2}",
            mse(0),
            mse(1),
            before[0],
            share_of_a(&m, 0)?,
            before[2],
            share_of_a(&m, 1)?,
        );
    }
    Ok(())
}
