//! The Census-Income experiment of Ma et al., "Modeling Task Relationships in Multi-task
//! Learning with Multi-gate Mixture-of-Experts", KDD 2018: shared-bottom, the one-gate
//! MoE (OMoE) and MMoE on the paper's two task groups of UCI Census-Income (KDD) —
//! group 1: income > 50K and never married; group 2: education ≥ college and never
//! married — with each task's test AUC.
//!
//! Protocol, the paper's where it gives one: the training file (199,523 rows) trains,
//! the test file (99,762 rows) is split in half into validation and test; features are
//! the 7 numeric columns and the one-hot categorical ones, standardised on the training
//! rows (`mtl::data::census_income`). Models (`common::moe`): OMoE and MMoE with `E`
//! experts of one ReLU layer of 16 units; shared-bottom with one ReLU layer whose width
//! is chosen so that its parameter count matches MMoE's (the paper matches model sizes);
//! every task has a tower of one ReLU layer of 8 units and a logistic output. Training:
//! Adam, equal task weights (binary cross-entropy), batch 1024, at most `--epochs`
//! epochs, keeping the epoch with the best mean validation AUC (early stopping with
//! patience 2). The paper tunes every model with a Gaussian-process search of 400 runs;
//! out of reach here, `--full` instead picks, per (group, model), the best of a grid of
//! learning rates {1e-4, 1e-3, 1e-2} × experts {4, 8} by mean validation AUC over
//! seeds, and reports that configuration's test AUCs.
//!
//! Quick mode (the default, a CPU budget of < 15 minutes on 2 cores): the first 20,000
//! training rows, 3 epochs, 3 seeds, learning rate 1e-2 and 8 experts (1e-3 leaves
//! every model far from converged in the 60 steps this allows). `--full`: all
//! 199,523 rows, 20 epochs, 10 seeds and the grid. `--seeds N`, `--epochs N`,
//! `--rows N` (0: all), `--lrs a,b`, `--experts a,b` override either; `--out DIR`
//! writes elsewhere than `runs/census_repro`.
//!
//! Each finished (group, model, seed, learning rate, experts) cell is appended to
//! `runs/census_repro/cells.jsonl` with the setup it ran under; a rerun skips the cells
//! already there, so an interrupted run resumes (`--fresh` starts over). At the end it
//! writes `result.json` and `auc.png` beside it, and with `--docs` copies the plot to
//! `docs/img/census_mmoe.png` and the tables into `docs/reproductions.md` between its
//! `census-mmoe` markers.
//!
//! Needs the data: `cargo xtask data census-income-kdd`. Run with
//! `cargo xtask repro census` (quick) or `cargo xtask repro census -- --full`.

mod common;

use anyhow::{anyhow, bail, Context, Result};
use common::census_standardised;
use common::moe::{build_model, parameter_count, Model, MoeShape, MODELS};
use common::repro::{append_cell, arg, flag, list, mean_std, open_run, write_doc, DOC};
use mtl::data::{data_root, CensusGroup, TargetData};
use mtl::heads::BinaryHead;
use mtl::prelude::*;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;
use std::time::Instant;

const BATCH: usize = 1024;
const EXPERT_UNITS: i64 = 16;
const TOWER_UNITS: i64 = 8;
const PATIENCE: usize = 2;
/// The validation/test halving of the test file: one split for every seed, so the seeds
/// differ only in initialisation and batch order, and paired differences compare
/// models on the same rows.
const SPLIT_SEED: u64 = 0;
const QUICK_ROWS: usize = 20_000;
const OUT_DIR: &str = "runs/census_repro";
const DOC_PLOT: &str = "docs/img/census_mmoe.png";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Group {
    Income,
    Education,
}

const GROUPS: [Group; 2] = [Group::Income, Group::Education];

impl Group {
    fn census(self) -> CensusGroup {
        match self {
            Group::Income => CensusGroup::Income,
            Group::Education => CensusGroup::Education,
        }
    }
    fn label(self) -> &'static str {
        match self {
            Group::Income => "group 1 (income, never married)",
            Group::Education => "group 2 (education, never married)",
        }
    }
    fn short(self) -> &'static str {
        match self {
            Group::Income => "group 1",
            Group::Education => "group 2",
        }
    }
}

/// What a cell's numbers depend on besides its own (group, model, seed, lr, experts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Setup {
    epochs: usize,
    /// Training rows read (`None`: the whole file).
    train_rows: Option<usize>,
    batch: usize,
    patience: usize,
    expert_units: i64,
    tower_units: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cell {
    setup: Setup,
    group: Group,
    model: Model,
    seed: u64,
    lr: f64,
    experts: usize,
    /// Width of the shared bottom (matched to MMoE's parameters; 0 for the MoE models).
    bottom_units: i64,
    parameters: i64,
    /// Validation AUC per task at the kept epoch.
    val_auc: [f64; 2],
    test_auc: [f64; 2],
    /// The kept epoch (1-based) and the epochs run.
    best_epoch: usize,
    epochs_run: usize,
    seconds: f64,
}

impl Cell {
    fn val(&self) -> f64 {
        (self.val_auc[0] + self.val_auc[1]) / 2.0
    }
    fn same(&self, setup: &Setup, g: Group, m: Model, seed: u64, lr: f64, e: usize) -> bool {
        self.setup == *setup
            && self.group == g
            && self.model == m
            && self.seed == seed
            && self.lr == lr
            && self.experts == e
    }
}

/// One group's data, standardised on its training rows.
struct GroupData {
    train: MultiTaskDataset,
    validation: MultiTaskDataset,
    test: MultiTaskDataset,
    names: Vec<String>,
    /// |Pearson correlation| of the two tasks' labels on the training rows (the paper's
    /// measure of how related a group's tasks are).
    label_correlation: f64,
}

fn load(root: &Path, group: Group, rows: Option<usize>) -> Result<GroupData> {
    let (train, validation, test) = census_standardised(root, group.census(), SPLIT_SEED, rows)?;
    let labels = |k: usize| -> Result<Vec<f64>> {
        match &train.tasks()[k].data {
            TargetData::Binary(v) => Ok(v.iter().map(|&x| f64::from(x)).collect()),
            _ => bail!("task {k} of {} is not binary", group.label()),
        }
    };
    Ok(GroupData {
        label_correlation: pearson(&labels(0)?, &labels(1)?).abs(),
        names: train.task_names(),
        validation,
        test,
        train,
    })
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let (ma, _) = mean_std(a);
    let (mb, _) = mean_std(b);
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        ab += (x - ma) * (y - mb);
        aa += (x - ma).powi(2);
        bb += (y - mb).powi(2);
    }
    ab / (aa * bb).sqrt()
}

fn shape(in_dim: i64, experts: usize, bottom_units: i64) -> MoeShape {
    MoeShape {
        in_dim,
        experts,
        expert_units: EXPERT_UNITS,
        bottom_units,
        tower_units: TOWER_UNITS,
    }
}

fn build(model: Model, shape: &MoeShape, names: &[String]) -> Result<MultiTaskModel> {
    Ok(build_model(model, shape, names, |path, _, name| {
        BinaryHead::new(path, name, TOWER_UNITS)
    })?)
}

/// The shared-bottom width whose parameter count is closest to MMoE's with `experts`
/// experts (a bottom unit costs `in_dim + 1 + 2 · TOWER_UNITS` parameters).
fn matched_bottom(in_dim: i64, experts: usize, names: &[String]) -> Result<(i64, i64)> {
    let mmoe = parameter_count(&build(Model::Mmoe, &shape(in_dim, experts, 1), names)?);
    let one = parameter_count(&build(
        Model::SharedBottom,
        &shape(in_dim, experts, 1),
        names,
    )?);
    let per_unit = in_dim + 1 + 2 * TOWER_UNITS;
    let units = (1 + ((mmoe - one) as f64 / per_unit as f64).round() as i64).max(1);
    Ok((units, mmoe))
}

#[allow(clippy::too_many_arguments)]
fn train(
    setup: &Setup,
    data: &GroupData,
    group: Group,
    model: Model,
    seed: u64,
    lr: f64,
    experts: usize,
) -> Result<Cell> {
    let in_dim = data.train.num_features() as i64;
    let bottom_units = match model {
        Model::SharedBottom => matched_bottom(in_dim, experts, &data.names)?.0,
        _ => 0,
    };
    seed_everything(seed);
    let mut m = build(model, &shape(in_dim, experts, bottom_units), &data.names)?;
    let config = TrainerConfig::default()
        .epochs(setup.epochs)
        .batch_size(setup.batch)
        .optimizer(OptimizerConfig::adam(lr))
        .method("ew")
        .progress(false)
        .seed(seed)
        .early_stopping(EarlyStopping::new(Monitor::MeanPrimary, setup.patience));
    let report = Trainer::new(config)?.fit(&mut m, &data.train, Some(&data.validation))?;
    let auc = |ds: &MultiTaskDataset| -> Result<[f64; 2]> {
        let eval = evaluate(&m, ds, 8192)?;
        let k = |k: usize| {
            eval.metric(k, "roc_auc")
                .ok_or_else(|| anyhow!("no roc_auc for task {k}"))
        };
        Ok([k(0)?, k(1)?])
    };
    Ok(Cell {
        setup: setup.clone(),
        group,
        model,
        seed,
        lr,
        experts,
        bottom_units,
        parameters: parameter_count(&m),
        val_auc: auc(&data.validation)?,
        test_auc: auc(&data.test)?,
        best_epoch: report.best_epoch + 1,
        epochs_run: report.epochs.len(),
        seconds: report.seconds,
    })
}

/// One (group, model): the configuration with the best mean validation AUC over seeds,
/// and that configuration's test AUCs.
#[derive(Debug, Clone, Serialize)]
struct Point {
    group: Group,
    model: Model,
    lr: f64,
    experts: usize,
    parameters: i64,
    seeds: usize,
    val_auc: f64,
    /// Per task: mean and sample standard deviation of the test AUC over seeds.
    test_mean: [f64; 2],
    test_std: [f64; 2],
    mean_epochs: f64,
}

fn summarise(cells: &[&Cell], group: Group, model: Model, grid: &[(f64, usize)]) -> Result<Point> {
    let of = |lr: f64, e: usize| -> Vec<&Cell> {
        cells
            .iter()
            .copied()
            .filter(|c| c.group == group && c.model == model && c.lr == lr && c.experts == e)
            .collect()
    };
    let mut best: Option<(f64, usize, f64)> = None;
    for &(lr, e) in grid {
        let v: Vec<f64> = of(lr, e).iter().map(|c| c.val()).collect();
        if v.is_empty() {
            continue;
        }
        let (m, _) = mean_std(&v);
        if best.is_none_or(|(_, _, b)| m > b) {
            best = Some((lr, e, m));
        }
    }
    let (lr, experts, val_auc) =
        best.ok_or_else(|| anyhow!("no cells for {} in {}", model.label(), group.label()))?;
    let chosen = of(lr, experts);
    let task = |k: usize| mean_std(&chosen.iter().map(|c| c.test_auc[k]).collect::<Vec<_>>());
    let (t0, t1) = (task(0), task(1));
    Ok(Point {
        group,
        model,
        lr,
        experts,
        parameters: chosen[0].parameters,
        seeds: chosen.len(),
        val_auc,
        test_mean: [t0.0, t1.0],
        test_std: [t0.1, t1.1],
        mean_epochs: mean_std(
            &chosen
                .iter()
                .map(|c| c.best_epoch as f64)
                .collect::<Vec<_>>(),
        )
        .0,
    })
}

/// Paired differences `a − b` of task `k`'s test AUC over the seeds both ran (same rows,
/// each at its chosen configuration): mean ± standard error, and the seeds where `a`
/// is higher.
fn paired(cells: &[&Cell], points: &[Point], g: Group, k: usize, a: Model, b: Model) -> String {
    let at = |m: Model| points.iter().find(|p| p.group == g && p.model == m);
    let (Some(pa), Some(pb)) = (at(a), at(b)) else {
        return "–".into();
    };
    let cell = |p: &Point, seed: u64| {
        cells.iter().find(|c| {
            c.group == g
                && c.model == p.model
                && c.lr == p.lr
                && c.experts == p.experts
                && c.seed == seed
        })
    };
    let d: Vec<f64> = cells
        .iter()
        .filter(|c| c.group == g && c.model == a && c.lr == pa.lr && c.experts == pa.experts)
        .filter_map(|c| Some(c.test_auc[k] - cell(pb, c.seed)?.test_auc[k]))
        .collect();
    if d.is_empty() {
        return "–".into();
    }
    let (m, sd) = mean_std(&d);
    let wins = d.iter().filter(|x| **x > 0.0).count();
    format!(
        "{m:+.4} ± {:.4} ({wins}/{})",
        sd / (d.len() as f64).sqrt(),
        d.len()
    )
}

fn tables(cells: &[&Cell], points: &[Point], data: &[(Group, Vec<String>, f64)]) -> String {
    let mut s = String::from(
        "| group (label correlation) | task | shared-bottom | OMoE | MMoE | MMoE ≥ OMoE ≥ SB | \
         MMoE − shared-bottom | MMoE − OMoE |\n|---|---|---|---|---|---|---|---|\n",
    );
    for (g, names, corr) in data {
        let at = |m: Model| points.iter().find(|p| p.group == *g && p.model == m);
        let (Some(sb), Some(om), Some(mm)) =
            (at(Model::SharedBottom), at(Model::Omoe), at(Model::Mmoe))
        else {
            continue;
        };
        for (k, name) in names.iter().enumerate() {
            let v = |p: &Point| format!("{:.4} ± {:.4}", p.test_mean[k], p.test_std[k]);
            let order = mm.test_mean[k] >= om.test_mean[k] && om.test_mean[k] >= sb.test_mean[k];
            s.push_str(&format!(
                "| {} ({corr:.3}) | {name} | {} | {} | {} | {} | {} | {} |\n",
                g.short(),
                v(sb),
                v(om),
                v(mm),
                if order { "yes" } else { "no" },
                paired(cells, points, *g, k, Model::Mmoe, Model::SharedBottom),
                paired(cells, points, *g, k, Model::Mmoe, Model::Omoe),
            ));
        }
    }
    s.push_str(
        "\n| group | model | parameters | learning rate | experts | seeds | validation AUC \
         (mean of tasks) | kept epoch (mean) |\n|---|---|---|---|---|---|---|---|\n",
    );
    for p in points {
        s.push_str(&format!(
            "| {} | {} | {} | {:e} | {} | {} | {:.4} | {:.1} |\n",
            p.group.short(),
            p.model.label(),
            p.parameters,
            p.lr,
            if p.model == Model::SharedBottom {
                format!("(matched to {})", p.experts)
            } else {
                p.experts.to_string()
            },
            p.seeds,
            p.val_auc,
            p.mean_epochs
        ));
    }
    s
}

fn plot(path: &Path, points: &[Point], data: &[(Group, Vec<String>, f64)]) -> Result<()> {
    mtl::plots::register_font();
    // One panel per (group, task); each shows the three models' test AUC ± 1 sd.
    let panels: Vec<(Group, usize, String)> = data
        .iter()
        .flat_map(|(g, names, _)| {
            names
                .iter()
                .enumerate()
                .map(move |(k, n)| (*g, k, format!("{}: {n}", g.short())))
        })
        .collect();
    let root = BitMapBackend::new(path, (1100, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(40);
    title.draw_text(
        "Ma et al. (2018) Census-Income: test AUC (mean ± sd over seeds)",
        &("sans-serif", 22).into_text_style(&title),
        (180, 10),
    )?;
    let areas = body.split_evenly((1, panels.len().max(1)));
    let colours = [RED, GREEN, BLUE];
    for ((g, k, name), area) in panels.iter().zip(areas.iter()) {
        let ps: Vec<&Point> = MODELS
            .iter()
            .filter_map(|m| points.iter().find(|p| p.group == *g && p.model == *m))
            .collect();
        let lo = ps
            .iter()
            .map(|p| p.test_mean[*k] - p.test_std[*k])
            .fold(f64::INFINITY, f64::min);
        let hi = ps
            .iter()
            .map(|p| p.test_mean[*k] + p.test_std[*k])
            .fold(f64::NEG_INFINITY, f64::max);
        let pad = ((hi - lo) * 0.25).max(1e-3);
        let mut chart = ChartBuilder::on(area)
            .caption(name, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(62)
            .build_cartesian_2d(-0.5f64..2.5f64, (lo - pad)..(hi + pad))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(3)
            .x_label_formatter(&|x| {
                let i = x.round() as usize;
                MODELS
                    .get(i)
                    .map_or(String::new(), |m| m.label().to_string())
            })
            .y_label_formatter(&|y| format!("{y:.4}"))
            .label_style(("sans-serif", 14))
            .draw()?;
        for (i, p) in ps.iter().enumerate() {
            let c = colours[i % 3];
            let x = i as f64;
            let (m, sd) = (p.test_mean[*k], p.test_std[*k]);
            chart.draw_series(std::iter::once(Circle::new((x, m), 6, c.filled())))?;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x, m - sd), (x, m + sd)],
                c.stroke_width(2),
            )))?;
        }
    }
    root.present()?;
    Ok(())
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    tch::set_num_threads(2);
    let full = flag("--full");
    let seeds: u64 = arg("--seeds").map_or(Ok(if full { 10 } else { 3 }), |s| s.parse())?;
    let epochs: usize = arg("--epochs").map_or(Ok(if full { 20 } else { 3 }), |s| s.parse())?;
    let rows: usize = arg("--rows").map_or(Ok(if full { 0 } else { QUICK_ROWS }), |s| s.parse())?;
    let lrs = list("--lrs", if full { &[1e-4, 1e-3, 1e-2] } else { &[1e-2] })?;
    let experts: Vec<usize> = list("--experts", if full { &[4.0, 8.0] } else { &[8.0] })?
        .into_iter()
        .map(|e| e as usize)
        .collect();
    if seeds == 0 || epochs == 0 || lrs.is_empty() || experts.contains(&0) {
        bail!("need at least one seed, one epoch, one learning rate and one expert");
    }
    let grid: Vec<(f64, usize)> = lrs
        .iter()
        .flat_map(|&lr| experts.iter().map(move |&e| (lr, e)))
        .collect();
    let setup = Setup {
        epochs,
        train_rows: (rows > 0).then_some(rows),
        batch: BATCH,
        patience: PATIENCE,
        expert_units: EXPERT_UNITS,
        tower_units: TOWER_UNITS,
    };
    let root = data_root("census-income-kdd")?;
    let (out, cells_path, mut cells): (_, _, Vec<Cell>) = open_run(OUT_DIR)?;
    let total = GROUPS.len() * MODELS.len() * seeds as usize * grid.len();
    println!(
        "Census-Income (MMoE paper): 2 groups × 3 models × {seeds} seeds × {} configurations, \
         at most {epochs} epochs of {} training rows; cells in {}",
        grid.len(),
        setup
            .train_rows
            .map_or("all".to_string(), |r| r.to_string()),
        cells_path.display()
    );
    let started = Instant::now();
    let mut done = 0;
    let mut group_info = Vec::new();
    for group in GROUPS {
        let t = Instant::now();
        let data = load(&root, group, setup.train_rows)?;
        println!(
            "\n{}: {} train / {} validation / {} test rows, {} features, |label correlation| \
             {:.4} (loaded in {:.1} s)",
            group.label(),
            data.train.len(),
            data.validation.len(),
            data.test.len(),
            data.train.num_features(),
            data.label_correlation,
            t.elapsed().as_secs_f64()
        );
        let in_dim = data.train.num_features() as i64;
        for &e in &experts {
            let (units, mmoe) = matched_bottom(in_dim, e, &data.names)?;
            let sb = parameter_count(&build(
                Model::SharedBottom,
                &shape(in_dim, e, units),
                &data.names,
            )?);
            let omoe = parameter_count(&build(Model::Omoe, &shape(in_dim, e, 0), &data.names)?);
            println!(
                "  {e} experts of {EXPERT_UNITS} units: parameters MMoE {mmoe}, OMoE {omoe}, \
                 shared-bottom of {units} units {sb}"
            );
        }
        println!(
            "  {:>14} {:>4} {:>7} {:>3} {:>17} {:>17} {:>6} {:>7}",
            "model", "seed", "lr", "E", "val AUC", "test AUC", "epoch", "secs"
        );
        for seed in 0..seeds {
            for &(lr, e) in &grid {
                for model in MODELS {
                    done += 1;
                    if cells
                        .iter()
                        .any(|c| c.same(&setup, group, model, seed, lr, e))
                    {
                        continue;
                    }
                    let c = train(&setup, &data, group, model, seed, lr, e).with_context(|| {
                        format!(
                            "{} on {}, seed {seed}, lr {lr}, {e} experts",
                            model.label(),
                            group.label()
                        )
                    })?;
                    println!(
                        "  {:>14} {:>4} {:>7.0e} {:>3} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>3}/{:<2} {:>7.1}  [{done}/{total}]",
                        model.label(),
                        seed,
                        lr,
                        e,
                        c.val_auc[0],
                        c.val_auc[1],
                        c.test_auc[0],
                        c.test_auc[1],
                        c.best_epoch,
                        c.epochs_run,
                        c.seconds
                    );
                    append_cell(&cells_path, &c)?;
                    cells.push(c);
                }
            }
        }
        group_info.push((group, data.names.clone(), data.label_correlation));
    }

    let mine: Vec<&Cell> = cells
        .iter()
        .filter(|c| c.setup == setup && c.seed < seeds && grid.contains(&(c.lr, c.experts)))
        .collect();
    let mut points = Vec::new();
    for group in GROUPS {
        for model in MODELS {
            points.push(summarise(&mine, group, model, &grid)?);
        }
    }
    let md = tables(&mine, &points, &group_info);
    println!(
        "\ntest AUC, mean ± sd over {seeds} seeds; paired differences mean ± standard error \
         (seeds where MMoE is higher):\n\n{md}"
    );
    let wall = started.elapsed().as_secs_f64();
    let result = json!({
        "experiment": "Ma et al. 2018 Census-Income: shared-bottom, OMoE, MMoE test AUC",
        "setup": setup,
        "seeds": seeds,
        "learning_rates": lrs,
        "experts": experts,
        "split_seed": SPLIT_SEED,
        "groups": group_info.iter().map(|(g, n, c)| json!({
            "group": g, "tasks": n, "label_correlation": c,
        })).collect::<Vec<_>>(),
        "points": points,
        "cells": mine,
        "wall_seconds_this_run": wall,
    });
    let json_path = out.join("result.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&result)?)?;
    let png = out.join("auc.png");
    plot(&png, &points, &group_info)?;
    println!(
        "wrote {} and {} ({wall:.0} s this run)",
        json_path.display(),
        png.display()
    );
    if flag("--docs") {
        std::fs::copy(&png, DOC_PLOT)?;
        let rows_note = setup
            .train_rows
            .map_or("all 199,523 training rows".to_string(), |r| {
                format!("the first {r} training rows")
            });
        let grid_note = if grid.len() > 1 {
            format!(
                "configuration per (group, model) chosen by mean validation AUC from learning \
                 rates {lrs:?} × experts {experts:?}"
            )
        } else {
            format!(
                "learning rate {:e}, {} experts of {EXPERT_UNITS} units",
                lrs[0], experts[0]
            )
        };
        let body = format!(
            "Test AUC per task, mean ± standard deviation over {seeds} seeds ({rows_note}, at \
             most {epochs} epochs of batch {BATCH}, Adam, equal weights, the epoch with the \
             best mean validation AUC kept; {grid_note}). In brackets after the group: the \
             |Pearson correlation| of its two labels on the training rows. Paired \
             differences: mean ± standard error over seeds (same rows, same seed), in \
             brackets the seeds where MMoE is higher.\n\n{md}\n\
             ![test AUC per model](img/census_mmoe.png)\n"
        );
        write_doc("census-mmoe", &body)?;
        println!("wrote {DOC_PLOT} and the tables in {DOC}");
    }
    Ok(())
}
