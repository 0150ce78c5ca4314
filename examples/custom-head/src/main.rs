//! Trains the quantile head of this crate next to a built-in classification head on the
//! olive-oil data: from six of the eight fatty acids, predict the 10th, 50th and 90th
//! percentiles of oleic acid (in percent) and the region the oil comes from. Linoleic
//! acid is left out of the features too: the eight acids sum to 100%, so with the other
//! seven known, oleic acid would follow almost exactly and there would be no spread to
//! put an interval around.
//!
//! Run with `cargo run -p custom-head --release`.

use custom_head::{QuantileHead, QuantileMetrics};
use mtl::data::{olive_oil, MultiTaskDataset, Standardizer, TaskData, OLIVE_FEATURES};
use mtl::heads::{ClassificationHead, Metrics};
use mtl::prelude::*;
use ndarray::{Array2, Axis};
use tch::{nn, Device};

const SEED: u64 = 11;
const QUANTILES: [f64; 3] = [0.1, 0.5, 0.9];
const HIDDEN: [i64; 2] = [64, 32];

/// The olive oils with oleic acid (in percent, standardised with the training rows'
/// mean and spread) as a regression task beside the region, and six fatty acids (all
/// but oleic and linoleic) as features; split into train, validation and test. Also returns the oleic
/// mean and standard deviation, to report in percent.
fn oleic_data() -> Result<([MultiTaskDataset; 3], f32, f32)> {
    let olive = olive_oil(mtl::data::data_dir())?;
    let column = |name: &str| {
        OLIVE_FEATURES
            .iter()
            .position(|&f| f == name)
            .ok_or_else(|| Error::config(format!("olive oil has no {name} column")))
    };
    let (oleic_column, linoleic_column) = (column("oleic")?, column("linoleic")?);
    let others: Vec<usize> = (0..olive.num_features())
        .filter(|&c| c != oleic_column && c != linoleic_column)
        .collect();
    let features = olive.features().select(Axis(1), &others);
    // The file gives fatty acids in hundredths of a percent.
    let oleic = olive.features().column(oleic_column).mapv(|v| v / 100.0);
    let region = olive.tasks()[olive.task_index("region")?].clone();

    let placeholder = MultiTaskDataset::new(features.clone(), vec![region.clone()])?;
    let rows = placeholder.split_rows(0.2, 0.2, SEED)?;
    let train_oleic = oleic.select(Axis(0), &rows.train);
    let mean = train_oleic.mean().unwrap_or(0.0);
    let std = train_oleic.std(1.0).max(1e-6);
    let standardised: Array2<f32> = oleic.mapv(|v| (v - mean) / std).insert_axis(Axis(1));

    let data = MultiTaskDataset::new(
        features,
        vec![TaskData::regression("oleic", standardised), region],
    )?;
    let parts = [
        data.subset(&rows.train)?,
        data.subset(&rows.validation)?,
        data.subset(&rows.test)?,
    ];
    let scaler = Standardizer::fit(&parts[0]);
    let [train, val, test] = parts;
    Ok((
        [
            scaler.apply(&train)?,
            scaler.apply(&val)?,
            scaler.apply(&test)?,
        ],
        mean,
        std,
    ))
}

/// A hard-sharing MLP over the six fatty acids with the quantile head (task 0) and a
/// built-in region classifier (task 1).
fn build_model(features: usize) -> Result<MultiTaskModel> {
    let vs = nn::VarStore::new(Device::Cpu);
    let mut sizes = vec![features as i64];
    sizes.extend(HIDDEN);
    let trunk = MlpConfig::new(sizes).build(&(vs.root() / "trunk"))?;
    let heads: Vec<Box<dyn TaskHead>> = vec![
        Box::new(QuantileHead::new(
            &(task_path(&vs.root(), 0) / "head"),
            "oleic",
            HIDDEN[1],
            &QUANTILES,
        )?),
        Box::new(ClassificationHead::new(
            &(task_path(&vs.root(), 1) / "head"),
            "region",
            HIDDEN[1],
            3,
        )?),
    ];
    MultiTaskModel::new(vs, HardSharing::new(trunk, 2)?, heads)
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    seed_everything(SEED);
    let ([train, val, test], mean, std) = oleic_data()?;
    println!(
        "olive oil: {} train / {} validation / {} test oils; oleic acid {mean:.2}% ± {std:.2}",
        train.len(),
        val.len(),
        test.len(),
    );

    let mut model = build_model(train.num_features())?;
    let config = TrainerConfig::default()
        .epochs(300)
        .batch_size(32)
        .optimizer(OptimizerConfig::adam(3e-3))
        .seed(SEED)
        .early_stopping(EarlyStopping::new(Monitor::MeanPrimary, 30));
    let report = Trainer::new(config)?.fit(&mut model, &train, Some(&val))?;
    println!("trained for {} epochs\n", report.epochs.len());

    let eval = evaluate(&model, &test, 256)?;
    for (task, metrics) in eval.tasks.iter().zip(&eval.metrics) {
        let shown: Vec<String> = metrics
            .iter()
            .map(|m| format!("{} {:.4}", m.name, m.value))
            .collect();
        println!("test {task:<7} {}", shown.join(", "));
    }
    if let Some(pinball) = eval.metric(0, "pinball") {
        println!(
            "        (pinball loss in oleic percent: {:.3})",
            pinball * f64::from(std)
        );
    }

    // The coverage of each quantile, and a few test oils with their predicted interval.
    let mut coverage = QuantileMetrics::new(&QUANTILES);
    let batch = test.batch(&(0..test.len()).collect::<Vec<_>>())?;
    let quantiles = tch::no_grad(|| model.forward_t(&batch.x, false))?.outputs[0].shallow_clone();
    coverage.update(&quantiles, &batch.targets[0])?;
    println!("\ncoverage on test (fraction of oils at or below each predicted quantile):");
    for (level, covered) in coverage.coverage() {
        println!("  q{:<4} {covered:.3}  (ideal {level})", level);
    }
    let to_percent = |z: f64| z * f64::from(std) + f64::from(mean);
    println!("\n  oil   oleic %   predicted q10 / q50 / q90");
    for row in 0..5.min(test.len()) as i64 {
        let truth = batch.targets[0].values.double_value(&[row, 0]);
        let q: Vec<String> = (0..QUANTILES.len() as i64)
            .map(|j| format!("{:.2}", to_percent(quantiles.double_value(&[row, j]))))
            .collect();
        println!(
            "  {row:>3}   {:>7.2}   {}",
            to_percent(truth),
            q.join(" / ")
        );
    }
    Ok(())
}
