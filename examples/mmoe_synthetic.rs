//! The synthetic experiment of Ma et al., "Modeling Task Relationships in Multi-task
//! Learning with Multi-gate Mixture-of-Experts", KDD 2018 (data: section 3.2; models and
//! protocol: section 5.1, Figure 4): two regression tasks whose relatedness is set by
//! the cosine `p` between their weight vectors, learned by a shared-bottom model, the
//! one-gate MoE (OMoE) and MMoE, with the test loss plotted against `p`.
//!
//! Data (`mtl::data::mmoe_synthetic`, the paper's construction): `d = 100`, `c = 1`,
//! `m = 10` sinusoids with shapes `α_j, β_j ~ N(0, 1)` (the paper leaves them open),
//! label noise `N(0, 0.01)`. Models (the paper's sizes): MMoE and OMoE have 8 experts,
//! each one ReLU layer of 16 units; every task has a tower of one ReLU layer of 8 units
//! and a linear output; the shared bottom is one ReLU layer of 113 units, so all three
//! have about 13 000 parameters below the towers. Training: Adam, equal weights, a
//! fixed number of epochs; the learning rate is chosen per model and correlation from
//! the paper's grid {1e-4, 1e-3, 1e-2} on a validation split (`--full`), and the test
//! MSE (mean of the two tasks) at the end of training is reported. Each seed draws new
//! data (new `u₁, u₂, α, β`, rows, noise) and a new initialisation, as the paper's
//! repeated runs do; the same seed gives the same `u₁, u₂, α, β` at every correlation.
//!
//! Quick mode (the default) runs 10 seeds at correlations 1.0, 0.9, 0.8, 0.5, 0.0 with
//! learning rate 1e-2 (what the validation split picked for every model in a 3-seed
//! probe of 1e-3 and 1e-2); `--full` runs 200 seeds (the paper's count) over the whole grid.
//! `--seeds N`, `--epochs N`, `--lrs a,b`, `--correlations a,b` override either;
//! `--out DIR` writes elsewhere than `runs/mmoe_synthetic`; `--ladder` uses the fixed
//! shapes `α_j = j, β_j = (j − 1)²` (Google Research's generator for this data) instead
//! of normal draws.
//!
//! Every finished (model, correlation, seed, learning rate) cell is appended to
//! `runs/mmoe_synthetic/cells.jsonl` with the setup it ran under; a rerun skips the
//! cells already there with the same setup, so an interrupted run resumes where it
//! stopped (`--fresh` starts over). At the end it writes `result.json` and
//! `test_mse.png` beside it, and with `--docs` copies the plot to
//! `docs/img/mmoe_synthetic.png` and the table into `docs/reproductions.md` between
//! its `mmoe-synthetic` markers.
//!
//! Run with `cargo xtask repro mmoe` (quick mode: a few minutes on 2 cores).

mod common;

use anyhow::{anyhow, bail, Context, Result};
use common::moe::{build_model, Model, MoeShape, MODELS};
use common::repro::{append_cell, arg, flag, list, mean_std, open_run, write_doc, DOC};
use mtl::data::{MmoeSyntheticConfig, SinusoidShapes};
use mtl::heads::{RegressionHead, RegressionLoss};
use mtl::prelude::*;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;

const DIM: usize = 100;
const TRAIN_ROWS: usize = 10_000;
const HOLDOUT_ROWS: usize = 1_000;
const BATCH: usize = 128;
const EXPERTS: usize = 8;
const EXPERT_UNITS: i64 = 16;
const BOTTOM_UNITS: i64 = 113;
const TOWER_UNITS: i64 = 8;
const OUT_DIR: &str = "runs/mmoe_synthetic";
const DOC_PLOT: &str = "docs/img/mmoe_synthetic.png";

/// What a cell's numbers depend on besides its own (model, correlation, seed, lr).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Setup {
    epochs: usize,
    train_rows: usize,
    batch: usize,
    generator: String,
    #[serde(default)]
    ladder: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cell {
    setup: Setup,
    model: Model,
    correlation: f64,
    seed: u64,
    lr: f64,
    val_mse: f64,
    /// Validation MSE (mean of the two tasks) after each epoch: the learning curve.
    val_curve: Vec<f64>,
    test_mse: [f64; 2],
    final_train_loss: f64,
    seconds: f64,
}

impl Cell {
    fn test(&self) -> f64 {
        (self.test_mse[0] + self.test_mse[1]) / 2.0
    }
    fn same(&self, setup: &Setup, model: Model, p: f64, seed: u64, lr: f64) -> bool {
        self.setup == *setup
            && self.model == model
            && self.correlation == p
            && self.seed == seed
            && self.lr == lr
    }
}

/// The paper's sizes: 8 experts of 16 units or a bottom of 113, towers of 8.
const SHAPE: MoeShape = MoeShape {
    in_dim: DIM as i64,
    experts: EXPERTS,
    expert_units: EXPERT_UNITS,
    bottom_units: BOTTOM_UNITS,
    tower_units: TOWER_UNITS,
};

fn build(model: Model) -> Result<MultiTaskModel> {
    let names = ["y1".to_string(), "y2".to_string()];
    Ok(build_model(model, &SHAPE, &names, |path, _, name| {
        RegressionHead::new(path, name, TOWER_UNITS, 1, RegressionLoss::Mse)
    })?)
}

/// The paper's generator: `α_j, β_j ~ N(0, 1)` per seed, or the fixed ladder
/// `α_j = j, β_j = (j − 1)²` under `--ladder`.
fn generator(ladder: bool) -> MmoeSyntheticConfig {
    let shapes = if ladder {
        SinusoidShapes::Ladder
    } else {
        SinusoidShapes::Normal(1.0)
    };
    MmoeSyntheticConfig::default().shapes(shapes)
}

fn train(setup: &Setup, model: Model, p: f64, seed: u64, lr: f64) -> Result<Cell> {
    let rows = TRAIN_ROWS + 2 * HOLDOUT_ROWS;
    let data = generator(setup.ladder).generate(rows, DIM, p, seed)?;
    let part = HOLDOUT_ROWS as f64 / rows as f64;
    let split = data.split(part, part, seed)?;
    seed_everything(seed);
    let mut m = build(model)?;
    let config = TrainerConfig::default()
        .epochs(setup.epochs)
        .batch_size(BATCH)
        .optimizer(OptimizerConfig::adam(lr))
        .method("ew")
        .progress(false)
        .seed(seed);
    // Without early stopping the validation set only records the curve; the model
    // keeps its last weights.
    let report = Trainer::new(config)?.fit(&mut m, &split.train, Some(&split.validation))?;
    let val_curve = report
        .epochs
        .iter()
        .map(|e| {
            e.validation
                .as_ref()
                .map(|v| v.total_loss() / 2.0)
                .ok_or_else(|| anyhow!("epoch {} has no validation", e.epoch))
        })
        .collect::<Result<Vec<f64>>>()?;
    let mse = |ds: &MultiTaskDataset| -> Result<[f64; 2]> {
        let eval = evaluate(&m, ds, 1024)?;
        let k = |k: usize| {
            eval.metric(k, "mse")
                .ok_or_else(|| anyhow!("no mse for task {k}"))
        };
        Ok([k(0)?, k(1)?])
    };
    let val = mse(&split.validation)?;
    let final_train_loss = report
        .epochs
        .last()
        .map(|e| e.train_losses.iter().sum::<f64>() / e.train_losses.len() as f64)
        .unwrap_or(f64::NAN);
    Ok(Cell {
        setup: setup.clone(),
        model,
        correlation: p,
        seed,
        lr,
        val_mse: (val[0] + val[1]) / 2.0,
        val_curve,
        test_mse: mse(&split.test)?,
        final_train_loss,
        seconds: report.seconds,
    })
}

/// The cells of earlier runs; a torn last line (a run killed mid-write) is skipped.
/// One (model, correlation) point: the learning rate with the lowest mean validation
/// MSE over seeds, and that rate's test MSEs.
#[derive(Debug, Clone, Serialize)]
struct Point {
    model: Model,
    correlation: f64,
    lr: f64,
    seeds: usize,
    mean: f64,
    std: f64,
    median: f64,
    min: f64,
    max: f64,
    /// Mean validation MSE over seeds after a third of the epochs: the models' order
    /// part-way through training, where the paper's curves separate most.
    early: f64,
}

/// The index of the epoch "part-way through": a third of the run.
fn early_epoch(epochs: usize) -> usize {
    (epochs / 3).max(1) - 1
}

fn summarise(cells: &[&Cell], model: Model, p: f64, lrs: &[f64]) -> Result<Point> {
    let mut best: Option<(f64, f64)> = None;
    for &lr in lrs {
        let v: Vec<f64> = cells
            .iter()
            .filter(|c| c.model == model && c.correlation == p && c.lr == lr)
            .map(|c| c.val_mse)
            .collect();
        let (m, _) = mean_std(&v);
        if !v.is_empty() && best.is_none_or(|(_, b)| m < b) {
            best = Some((lr, m));
        }
    }
    let (lr, _) = best.ok_or_else(|| anyhow!("no cells for {} at {p}", model.label()))?;
    let mut t: Vec<f64> = cells
        .iter()
        .filter(|c| c.model == model && c.correlation == p && c.lr == lr)
        .map(|c| c.test())
        .collect();
    t.sort_by(f64::total_cmp);
    let (mean, std) = mean_std(&t);
    let early: Vec<f64> = cells
        .iter()
        .filter(|c| c.model == model && c.correlation == p && c.lr == lr)
        .filter_map(|c| c.val_curve.get(early_epoch(c.val_curve.len())).copied())
        .collect();
    Ok(Point {
        early: mean_std(&early).0,
        model,
        correlation: p,
        lr,
        seeds: t.len(),
        mean,
        std,
        median: t[t.len() / 2],
        min: t[0],
        max: t[t.len() - 1],
    })
}

fn plot(path: &Path, points: &[Point], epochs: usize) -> Result<()> {
    mtl::plots::register_font();
    let top = points.iter().map(|p| p.mean + p.std).fold(0.0f64, f64::max) * 1.15;
    let seeds = points.iter().map(|p| p.seeds).min().unwrap_or(0);
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
            "test MSE, mean of 2 tasks ({seeds} seeds, {epochs} epochs)"
        ))
        .label_style(("sans-serif", 16))
        .draw()?;
    for (model, colour) in MODELS.iter().zip([RED, GREEN, BLUE]) {
        let line: Vec<&Point> = points.iter().filter(|p| p.model == *model).collect();
        let style = colour.stroke_width(3);
        chart
            .draw_series(LineSeries::new(
                line.iter().map(|p| (p.correlation, p.mean)),
                style,
            ))?
            .label(model.label())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
        chart.draw_series(
            line.iter()
                .map(|p| Circle::new((p.correlation, p.mean), 5, colour.filled())),
        )?;
        // One standard deviation over seeds.
        chart.draw_series(line.iter().map(|p| {
            PathElement::new(
                vec![
                    (p.correlation, (p.mean - p.std).max(0.0)),
                    (p.correlation, p.mean + p.std),
                ],
                colour.stroke_width(1),
            )
        }))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 18))
        .draw()?;
    root.present()?;
    Ok(())
}

/// Paired differences `a − b` of test MSE over the seeds both ran (same data, each at
/// its chosen learning rate): mean, standard error and seeds where `a` is lower.
fn paired(cells: &[&Cell], points: &[Point], p: f64, a: Model, b: Model) -> String {
    let lr = |m: Model| {
        points
            .iter()
            .find(|q| q.model == m && q.correlation == p)
            .map(|q| q.lr)
    };
    let (Some(la), Some(lb)) = (lr(a), lr(b)) else {
        return "–".into();
    };
    let of = |m: Model, lr: f64, seed: u64| {
        cells
            .iter()
            .find(|c| c.model == m && c.correlation == p && c.lr == lr && c.seed == seed)
            .map(|c| c.test())
    };
    let d: Vec<f64> = cells
        .iter()
        .filter(|c| c.model == a && c.correlation == p && c.lr == la)
        .filter_map(|c| Some(c.test() - of(b, lb, c.seed)?))
        .collect();
    if d.is_empty() {
        return "–".into();
    }
    let (m, sd) = mean_std(&d);
    let wins = d.iter().filter(|x| **x < 0.0).count();
    format!(
        "{m:+.3} ± {:.3} ({wins}/{})",
        sd / (d.len() as f64).sqrt(),
        d.len()
    )
}

fn paired_table(cells: &[&Cell], points: &[Point], correlations: &[f64]) -> String {
    let mut s = String::from(
        "| correlation p | MMoE − OMoE | MMoE − shared-bottom | OMoE − shared-bottom |\n\
         |---|---|---|---|\n",
    );
    for &p in correlations {
        s.push_str(&format!(
            "| {p:.1} | {} | {} | {} |\n",
            paired(cells, points, p, Model::Mmoe, Model::Omoe),
            paired(cells, points, p, Model::Mmoe, Model::SharedBottom),
            paired(cells, points, p, Model::Omoe, Model::SharedBottom)
        ));
    }
    s
}

fn table(points: &[Point], correlations: &[f64]) -> String {
    let mut s = String::from(
        "| correlation p | shared-bottom | OMoE | MMoE | MMoE ≤ OMoE ≤ shared-bottom | \
         part-way (validation): SB / OMoE / MMoE |\n\
         |---|---|---|---|---|---|\n",
    );
    for &p in correlations {
        let at = |m: Model| points.iter().find(|q| q.model == m && q.correlation == p);
        let (Some(sb), Some(om), Some(mm)) =
            (at(Model::SharedBottom), at(Model::Omoe), at(Model::Mmoe))
        else {
            continue;
        };
        let cell = |q: &Point| {
            format!(
                "{:.3} ± {:.3} (median {:.3}, lr {:e})",
                q.mean, q.std, q.median, q.lr
            )
        };
        let order = if mm.mean <= om.mean && om.mean <= sb.mean {
            "yes"
        } else {
            "no"
        };
        s.push_str(&format!(
            "| {p:.1} | {} | {} | {} | {order} | {:.3} / {:.3} / {:.3} |\n",
            cell(sb),
            cell(om),
            cell(mm),
            sb.early,
            om.early,
            mm.early
        ));
    }
    s
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    // Matrices this small run fastest on one thread.
    tch::set_num_threads(1);
    let full = flag("--full");
    let seeds: u64 = arg("--seeds").map_or(Ok(if full { 200 } else { 10 }), |s| s.parse())?;
    let epochs: usize = arg("--epochs").map_or(Ok(30), |s| s.parse())?;
    let lrs = list("--lrs", if full { &[1e-4, 1e-3, 1e-2] } else { &[1e-2] })?;
    let correlations = list("--correlations", &[1.0, 0.9, 0.8, 0.5, 0.0])?;
    if seeds == 0 || epochs == 0 || lrs.is_empty() {
        bail!("need at least one seed, one epoch and one learning rate");
    }
    if let Some(p) = correlations.iter().find(|p| !(-1.0..=1.0).contains(*p)) {
        bail!("--correlations: {p} is outside [-1, 1]");
    }
    let setup = Setup {
        epochs,
        train_rows: TRAIN_ROWS,
        batch: BATCH,
        generator: format!("{:?}", generator(flag("--ladder"))),
        ladder: flag("--ladder"),
    };
    let (out, cells_path, mut cells): (_, _, Vec<Cell>) = open_run(OUT_DIR)?;
    let total = MODELS.len() * correlations.len() * seeds as usize * lrs.len();
    println!(
        "MMoE synthetic: {} correlations × {seeds} seeds × {} learning rates × 3 models, \
         {epochs} epochs of {TRAIN_ROWS} rows; cells in {}",
        correlations.len(),
        lrs.len(),
        cells_path.display()
    );
    println!(
        "{:>5} {:>14} {:>5} {:>8} {:>9} {:>9} {:>7}",
        "p", "model", "seed", "lr", "val mse", "test mse", "secs"
    );
    let mut done = 0;
    for seed in 0..seeds {
        for &p in &correlations {
            for &lr in &lrs {
                for model in MODELS {
                    done += 1;
                    if cells.iter().any(|c| c.same(&setup, model, p, seed, lr)) {
                        continue;
                    }
                    let c = train(&setup, model, p, seed, lr).with_context(|| {
                        format!("{} at correlation {p}, seed {seed}, lr {lr}", model.label())
                    })?;
                    println!(
                        "{:>5.1} {:>14} {:>5} {:>8.0e} {:>9.4} {:>9.4} {:>7.1}  [{done}/{total}]",
                        p,
                        model.label(),
                        seed,
                        lr,
                        c.val_mse,
                        c.test(),
                        c.seconds
                    );
                    append_cell(&cells_path, &c)?;
                    cells.push(c);
                }
            }
        }
    }

    let mine: Vec<&Cell> = cells
        .iter()
        .filter(|c| {
            c.setup == setup
                && c.seed < seeds
                && lrs.contains(&c.lr)
                && correlations.contains(&c.correlation)
        })
        .collect();
    let mut points = Vec::new();
    for &p in &correlations {
        for model in MODELS {
            points.push(summarise(&mine, model, p, &lrs)?);
        }
    }
    let md = table(&points, &correlations);
    let pairs = paired_table(&mine, &points, &correlations);
    println!("\ntest MSE (mean of the two tasks), mean ± std over {seeds} seeds:\n\n{md}");
    println!(
        "paired differences (mean ± standard error, seeds where the first is lower):\n\n{pairs}"
    );
    let result = json!({
        "experiment": "Ma et al. 2018 synthetic two-task regression: shared-bottom, OMoE, MMoE",
        "setup": {
            "dim": DIM, "train_rows": TRAIN_ROWS, "validation_rows": HOLDOUT_ROWS,
            "test_rows": HOLDOUT_ROWS, "epochs": epochs, "batch_size": BATCH,
            "optimizer": "adam", "learning_rates": lrs, "method": "ew",
            "experts": EXPERTS, "expert_units": EXPERT_UNITS, "bottom_units": BOTTOM_UNITS,
            "tower_units": TOWER_UNITS, "seeds": seeds, "generator": setup.generator,
            "noise_floor_mse": 0.01,
        },
        "points": points,
        "cells": mine,
    });
    let json_path = out.join("result.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&result)?)?;
    let png = out.join("test_mse.png");
    plot(&png, &points, epochs)?;
    println!("wrote {} and {}", json_path.display(), png.display());
    if flag("--docs") {
        std::fs::copy(&png, DOC_PLOT)?;
        let lr_note = if lrs.len() > 1 {
            format!("learning rate per model and correlation from {lrs:?} on the validation split")
        } else {
            format!("learning rate {:e}", lrs[0])
        };
        let early = early_epoch(epochs) + 1;
        let body = format!(
            "Test MSE, mean of the two tasks, mean ± standard deviation over {seeds} seeds \
             ({epochs} epochs of {TRAIN_ROWS} rows, batch {BATCH}, Adam, {lr_note}; the \
             label noise alone costs 0.01; the last column is the validation MSE after \
             epoch {}):\n\n{md}\nPaired differences of test MSE on the same data (mean ± standard error over \
             seeds; in brackets the seeds where the first model is lower):\n\n{pairs}\n\
             ![test MSE against correlation](img/mmoe_synthetic.png)\n",
            early
        );
        write_doc("mmoe-synthetic", &body)?;
        println!("wrote {DOC_PLOT} and the table in {DOC}");
    }
    Ok(())
}
