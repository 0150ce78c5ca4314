//! The synthetic experiment of Ma et al., "Modeling Task Relationships in Multi-task
//! Learning with Multi-gate Mixture-of-Experts", KDD 2018 (section 3.2): two regression
//! tasks whose relatedness is set by the cosine `p` between their weight vectors
//! (`mtl::data::mmoe_synthetic`, with its defaults: `c = 1`, `m = 10` sinusoids with
//! shapes `α_j, β_j ~ N(0, 1)`, label noise of variance 0.01), learned by a
//! shared-bottom model and by MMoE, for `p` = 1.0, 0.9, 0.5 and 0.0 and three seeds.
//!
//! Both models have about the same number of hidden units, as in the paper: the
//! shared bottom is one hidden layer of 128 ReLU units, MMoE has 8 experts of 16; each
//! task has a tower of 8 units and a linear output. Every run trains with equal
//! weighting for the same fixed budget and reports the test MSE (mean over the two
//! tasks) at its end; the label noise alone costs 0.01.
//!
//! Writes `runs/mmoe_synthetic/result.json` (every run and the per-correlation means)
//! and `runs/mmoe_synthetic/test_mse.png`, its text in the DejaVu Sans that `mtl`
//! bundles for its own plots (`mtl::plots::register_font`), so no system font is needed.
//!
//! Run with `cargo run --release --example mmoe_synthetic` (a few minutes on 2 cores).

mod common;

use anyhow::{anyhow, Context, Result};
use common::task_heads;
use mtl::core::{MlpBuilder, MmoeConfig, TaskTowers};
use mtl::data::mmoe_synthetic;
use mtl::heads::{RegressionHead, RegressionLoss};
use mtl::prelude::*;
use plotters::prelude::*;
use serde_json::json;
use std::path::Path;
use tch::{nn, Device};

const DIM: usize = 100;
const ROWS: usize = 6_000;
const TEST_FRACTION: f64 = 0.2;
const CORRELATIONS: [f64; 4] = [1.0, 0.9, 0.5, 0.0];
const SEEDS: [u64; 3] = [0, 1, 2];
const EPOCHS: usize = 10;
const BATCH: usize = 128;
const LR: f64 = 3e-3;
const EXPERTS: usize = 8;
const EXPERT_UNITS: i64 = 16;
const BOTTOM_UNITS: i64 = 128;
const TOWER_UNITS: i64 = 8;
const OUT_DIR: &str = "runs/mmoe_synthetic";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Model {
    SharedBottom,
    Mmoe,
}

impl Model {
    fn label(self) -> &'static str {
        match self {
            Model::SharedBottom => "shared-bottom",
            Model::Mmoe => "MMoE",
        }
    }
}

fn build(model: Model) -> Result<MultiTaskModel> {
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let towers = MlpBuilder::new([TOWER_UNITS]);
    let names = ["y1".to_string(), "y2".to_string()];
    let heads = task_heads(&root, &names, |path, _, name| {
        RegressionHead::new(path, name, TOWER_UNITS, 1, RegressionLoss::Mse)
    })?;
    let m = match model {
        Model::SharedBottom => {
            let bottom = MlpConfig::new([DIM as i64, BOTTOM_UNITS]).build(&(&root / "bottom"))?;
            let arch = TaskTowers::build(HardSharing::new(bottom, 2)?, &root, &towers)?;
            MultiTaskModel::new(vs, arch, heads)?
        }
        Model::Mmoe => {
            let experts = MlpBuilder::new([EXPERT_UNITS]);
            let mmoe =
                MmoeConfig::new(DIM as i64, EXPERTS, 2).build(&(&root / "mmoe"), &experts)?;
            let arch = TaskTowers::build(mmoe, &root, &towers)?;
            MultiTaskModel::new(vs, arch, heads)?
        }
    };
    Ok(m)
}

struct Run {
    correlation: f64,
    model: Model,
    seed: u64,
    test_mse: [f64; 2],
    seconds: f64,
}

impl Run {
    fn mean(&self) -> f64 {
        (self.test_mse[0] + self.test_mse[1]) / 2.0
    }
}

fn train(correlation: f64, model: Model, seed: u64) -> Result<Run> {
    let data = mmoe_synthetic(ROWS, DIM, correlation, seed)?;
    let split = data.split(0.0, TEST_FRACTION, seed)?;
    seed_everything(seed);
    let mut m = build(model)?;
    let config = TrainerConfig::default()
        .epochs(EPOCHS)
        .batch_size(BATCH)
        .optimizer(OptimizerConfig::adam(LR))
        .method("ew")
        .seed(seed);
    let report = Trainer::new(config)?.fit(&mut m, &split.train, None)?;
    let eval = evaluate(&m, &split.test, 1024)?;
    let mse = |k: usize| {
        eval.metric(k, "mse")
            .ok_or_else(|| anyhow!("no test mse for task {k}"))
    };
    Ok(Run {
        correlation,
        model,
        seed,
        test_mse: [mse(0)?, mse(1)?],
        seconds: report.seconds,
    })
}

/// Mean and sample standard deviation.
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// `(correlation, mean, std)` of the runs of one model, in `CORRELATIONS` order.
fn summary(runs: &[Run], model: Model) -> Vec<(f64, f64, f64)> {
    CORRELATIONS
        .iter()
        .map(|&p| {
            let v: Vec<f64> = runs
                .iter()
                .filter(|r| r.model == model && r.correlation == p)
                .map(Run::mean)
                .collect();
            let (m, s) = mean_std(&v);
            (p, m, s)
        })
        .collect()
}

fn plot(path: &Path, runs: &[Run]) -> Result<()> {
    mtl::plots::register_font();
    let lines = [
        (Model::SharedBottom, summary(runs, Model::SharedBottom), RED),
        (Model::Mmoe, summary(runs, Model::Mmoe), BLUE),
    ];
    let top = lines
        .iter()
        .flat_map(|(_, s, _)| s.iter().map(|(_, m, sd)| m + sd))
        .fold(0.0f64, f64::max)
        * 1.15;
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Ma et al. (2018) synthetic data: test MSE vs task correlation",
            ("sans-serif", 24),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.05f64..1.05f64, 0.0f64..top)?;
    chart
        .configure_mesh()
        .x_desc("task correlation p (cosine of the weight vectors)")
        .y_desc(format!(
            "test MSE, mean of 2 tasks ({} seeds, {EPOCHS} epochs)",
            SEEDS.len()
        ))
        .label_style(("sans-serif", 16))
        .draw()?;
    for (model, points, colour) in &lines {
        let style = colour.stroke_width(3);
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|&(p, m, _)| (p, m)),
                style,
            ))?
            .label(model.label())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
        chart.draw_series(
            points
                .iter()
                .map(|&(p, m, _)| Circle::new((p, m), 5, colour.filled())),
        )?;
        // One standard deviation over seeds.
        chart.draw_series(points.iter().map(|&(p, m, s)| {
            PathElement::new(
                vec![(p, (m - s).max(0.0)), (p, m + s)],
                colour.stroke_width(1),
            )
        }))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 18))
        .draw()?;
    root.present()?;
    Ok(())
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    std::fs::create_dir_all(OUT_DIR)?;
    let mut runs = Vec::new();
    println!(
        "{:>11} {:>14} {:>5} {:>9} {:>9} {:>9} {:>7}",
        "correlation", "model", "seed", "y1 mse", "y2 mse", "mean", "secs"
    );
    for &p in &CORRELATIONS {
        for &seed in &SEEDS {
            for model in [Model::SharedBottom, Model::Mmoe] {
                let r = train(p, model, seed).with_context(|| {
                    format!("{} at correlation {p}, seed {seed}", model.label())
                })?;
                println!(
                    "{:>11.1} {:>14} {:>5} {:>9.4} {:>9.4} {:>9.4} {:>7.1}",
                    p,
                    model.label(),
                    seed,
                    r.test_mse[0],
                    r.test_mse[1],
                    r.mean(),
                    r.seconds
                );
                runs.push(r);
            }
        }
    }

    let bottom = summary(&runs, Model::SharedBottom);
    let mmoe = summary(&runs, Model::Mmoe);
    println!(
        "\n{:>11} {:>22} {:>22} {:>10}",
        "correlation", "shared-bottom mse", "MMoE mse", "gap"
    );
    for ((p, bm, bs), (_, mm, ms)) in bottom.iter().zip(&mmoe) {
        println!(
            "{p:>11.1} {:>13.4} ± {:<6.4} {:>13.4} ± {:<6.4} {:>10.4}",
            bm,
            bs,
            mm,
            ms,
            bm - mm
        );
    }
    let result = json!({
        "experiment": "Ma et al. 2018 synthetic two-task regression, shared-bottom vs MMoE",
        "setup": {
            "rows": ROWS, "dim": DIM, "test_fraction": TEST_FRACTION, "epochs": EPOCHS,
            "batch_size": BATCH, "optimizer": format!("adam lr={LR}"), "method": "ew",
            "experts": EXPERTS, "expert_units": EXPERT_UNITS, "bottom_units": BOTTOM_UNITS,
            "tower_units": TOWER_UNITS, "seeds": SEEDS, "noise_floor_mse": 0.01,
        },
        "runs": runs.iter().map(|r| json!({
            "correlation": r.correlation, "model": r.model.label(), "seed": r.seed,
            "test_mse": r.test_mse, "mean_test_mse": r.mean(), "seconds": r.seconds,
        })).collect::<Vec<_>>(),
        "summary": bottom.iter().zip(&mmoe).map(|((p, bm, bs), (_, mm, ms))| json!({
            "correlation": p,
            "shared_bottom": {"mean": bm, "std": bs},
            "mmoe": {"mean": mm, "std": ms},
            "gap": bm - mm,
        })).collect::<Vec<_>>(),
    });
    let json_path = Path::new(OUT_DIR).join("result.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&result)?)?;
    println!("\nwrote {}", json_path.display());

    let png = Path::new(OUT_DIR).join("test_mse.png");
    plot(&png, &runs)?;
    println!("wrote {}", png.display());
    Ok(())
}
