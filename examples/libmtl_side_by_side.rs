//! `mtl` side by side with LibMTL (Lin & Zhang, JMLR 2023) on Census-Income: the same
//! data, model, epochs, batch size, learning rate and seeds, seven weighting methods in
//! each library, and each task's test AUC compared against the two libraries'
//! seed-to-seed spread.
//!
//! Data: Census-Income (KDD) with the MMoE paper's task group 1 (`income` > 50K,
//! `never_married`), split as the paper does (training file; the test file halved into
//! validation and test), standardised on the training rows. This example builds it
//! with `mtl::data::census_income` and writes the arrays it trains on to `.npy` files
//! (`<out>/data/{x,y}_{train,val,test}.npy`); LibMTL reads those same files.
//!
//! Model, in both libraries: hard parameter sharing (LibMTL's `HPS`), an MLP encoder
//! `d → 128 → 64` with ReLU after each layer, one `Linear(64, 1)` per task, binary
//! cross-entropy on the logits. Adam (PyTorch's defaults, no weight decay), a fixed
//! number of epochs and the last epoch's weights (no early stopping). Layers start
//! from PyTorch's initialisation in both; the heads are built before the encoder on
//! this side because LibMTL's Trainer takes its decoders ready-made, so after the same
//! seed both libraries start from the same numbers (the run records a checksum of the
//! first layer on each side and says whether they agree). The mini-batch order is each
//! library's own (`mtl`'s seeded shuffle, PyTorch's `RandomSampler`).
//!
//! Methods, at LibMTL's defaults (LibMTL/config.py): EW, UW, DWA (T = 2), PCGrad, MGDA
//! (no normalisation), CAGrad (c = 0.5, rescale 1) and Nash-MTL (max_norm 1, 20
//! iterations). Where `mtl`'s default differs, this run takes LibMTL's: PCGrad projects
//! against every task including itself with ε = 1e-8 in the denominator
//! (`skip_self = false, eps = 1e-8`), and MGDA uses LibMTL's min-norm solver
//! (`Mgda::libmtl`) rather than the exact QP.
//!
//! Verdict per method and task: "within spread" when |mean_mtl − mean_LibMTL| ≤
//! max(sd_mtl, sd_LibMTL), the sample standard deviations over seeds.
//!
//! Quick mode (default): 40 000 training rows, 10 seeds, 5 epochs, batch 256, lr 1e-3
//! (three seeds are too few for the spread rule on an AUC this close to 1).
//! `--full`: every training row (199 523), 10 seeds, 10 epochs. `--seeds N`,
//! `--epochs N`, `--train-rows N`, `--methods EW,UW,...`, `--batch-size N`, `--lr X`
//! override either; `--out DIR` writes elsewhere than `runs/libmtl_side_by_side`.
//! Needs a LibMTL checkout (`--libmtl PATH` or `LIBMTL_PATH`) and a Python that imports
//! torch and LibMTL's dependencies (`--python`, default the virtualenv
//! `cargo xtask bench --peer` and `cargo xtask repro libmtl` prepare in the cache).
//!
//! Each finished (library, method, seed) cell is appended to `<out>/cells.jsonl` with
//! the setup it ran under (LibMTL's cells by `examples/torch/libmtl_side_by_side.py`);
//! a rerun skips cells already there with the same setup, so an interrupted run resumes
//! (`--fresh` starts over). The comparison goes to `<out>/result.json` and, with
//! `--docs`, into `docs/reproductions.md` between its `libmtl-side-by-side` markers.
//!
//! Run with `cargo xtask repro libmtl -- --libmtl PATH`.

mod common;

use anyhow::{bail, Context, Result};
use common::repro::{append_cell, arg, flag, load_cells, mean_std, open_run, write_doc, DOC};
use common::{census_standardised, task_heads};
use mtl::data::{data_root, write_npy, CensusGroup, DenseArray, TargetData};
use mtl::losses::methods::{Mgda, MgdaNormalization};
use mtl::ndarray::{Array2, Axis};
use mtl::prelude::*;
use mtl::stats::t_cdf;
use mtl::Evaluation;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use tch::{nn, Device, Kind};

const HIDDEN: [i64; 2] = [128, 64];
/// Seeds the validation / test halving of the Census test file.
const DATA_SEED: u64 = 0;
const OUT_DIR: &str = "runs/libmtl_side_by_side";
const SCRIPT: &str = "examples/torch/libmtl_side_by_side.py";
/// What the Python side imports besides LibMTL itself.
const PYTHON_PROBE: &str = "import torch, numpy, scipy, cvxpy, qpsolvers, quadprog, ecos";

/// The methods compared: LibMTL's name (also the cells' label) and `mtl`'s.
const METHODS: [(&str, &str); 7] = [
    ("EW", "ew"),
    ("UW", "uw"),
    ("DWA", "dwa"),
    ("PCGrad", "pcgrad"),
    ("MGDA", "mgda"),
    ("CAGrad", "cagrad"),
    ("Nash_MTL", "nash_mtl"),
];

/// What a cell's numbers depend on besides its own (library, method, seed); both
/// libraries store it, and a cell counts only under an equal setup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Setup {
    data: String,
    train_rows: usize,
    validation_rows: usize,
    test_rows: usize,
    features: usize,
    data_seed: u64,
    hidden: Vec<i64>,
    epochs: usize,
    batch_size: usize,
    lr: f64,
}

/// One trained model: either library, one method, one seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cell {
    library: String,
    method: String,
    seed: u64,
    setup: Setup,
    /// Test ROC-AUC per task (`income`, `never_married`).
    test_auc: Vec<Option<f64>>,
    seconds: f64,
    /// The sum of the first encoder layer's initial weights.
    #[serde(default)]
    init_first_layer_sum: Option<f64>,
    /// Test ROC-AUC per task of the untrained model: equal on both sides when the
    /// initial weights, the test arrays and the metric are.
    #[serde(default)]
    init_test_auc: Vec<Option<f64>>,
}

/// One line of the comparison: a method on a task.
#[derive(Debug, Clone, Serialize)]
struct Comparison {
    method: String,
    task: String,
    seeds: usize,
    mtl_mean: f64,
    mtl_sd: f64,
    libmtl_mean: f64,
    libmtl_sd: f64,
    difference: f64,
    threshold: f64,
    within_spread: bool,
    /// Welch's two-sided t-test of equal means (a guide: the seeds are few).
    welch_p: f64,
}

fn parsed<T: std::str::FromStr>(name: &str, default: T) -> Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match arg(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .with_context(|| format!("{name}: `{v}` is not a valid value")),
    }
}

/// The LibMTL checkout: `--libmtl`, else `LIBMTL_PATH`; it must hold `LibMTL/__init__.py`.
fn libmtl_path() -> Result<PathBuf> {
    let Some(path) = arg("--libmtl")
        .or_else(|| std::env::var("LIBMTL_PATH").ok())
        .filter(|p| !p.is_empty())
    else {
        bail!(
            "no LibMTL checkout given: pass `--libmtl PATH` (or set LIBMTL_PATH) to a clone of \
             https://github.com/median-research-group/LibMTL, e.g. \
             `cargo xtask repro libmtl -- --libmtl ~/src/LibMTL`"
        );
    };
    let path = PathBuf::from(path);
    if !path.join("LibMTL").join("__init__.py").is_file() {
        bail!(
            "{} is not a LibMTL checkout (no LibMTL/__init__.py inside); pass the folder \
             a `git clone https://github.com/median-research-group/LibMTL` made",
            path.display()
        );
    }
    Ok(std::fs::canonicalize(&path)?)
}

/// The Python that runs LibMTL: `--python`, else the cache's `peer-venv`; it must
/// import torch and LibMTL's dependencies.
fn python() -> Result<PathBuf> {
    let python = match arg("--python") {
        Some(p) => PathBuf::from(p),
        None => {
            let cache = std::env::var_os("MTL_CACHE_DIR")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/mtl")))
                .context("neither MTL_CACHE_DIR nor HOME is set; pass --python")?;
            cache.join("peer-venv").join("bin").join("python")
        }
    };
    let ok = Command::new(&python)
        .args(["-c", PYTHON_PROBE])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        bail!(
            "{} cannot run `{PYTHON_PROBE}`: run this through `cargo xtask repro libmtl -- \
             --libmtl PATH`, which prepares that virtualenv (as `cargo xtask bench --peer` \
             does), or pass `--python` a Python that has torch and LibMTL's dependencies",
            python.display()
        );
    }
    Ok(python)
}

/// One task's 0/1 labels.
fn labels(task: &TaskData) -> Result<&mtl::ndarray::Array1<f32>> {
    match &task.data {
        TargetData::Binary(v) => Ok(v),
        other => bail!("task {} is {}, not binary", task.name, other.kind_name()),
    }
}

/// Writes `x_<name>.npy` (features) and `y_<name>.npy` (`[n, 2]`, one column per task).
fn write_arrays(dir: &Path, name: &str, data: &MultiTaskDataset) -> Result<()> {
    let columns = data
        .tasks()
        .iter()
        .map(|t| labels(t).map(|v| v.view().insert_axis(Axis(1))))
        .collect::<Result<Vec<_>>>()?;
    let y: Array2<f32> = mtl::ndarray::concatenate(Axis(1), &columns)?;
    let x = DenseArray::from_array(&data.features().clone().into_dyn())?;
    write_npy(dir.join(format!("x_{name}.npy")), &x)?;
    write_npy(
        dir.join(format!("y_{name}.npy")),
        &DenseArray::from_array(&y.into_dyn())?,
    )?;
    Ok(())
}

/// The shared-bottom model; the heads are built first, as LibMTL's decoders are.
fn build(features: usize, tasks: &[String]) -> Result<MultiTaskModel> {
    let vs = nn::VarStore::new(Device::Cpu);
    let heads = task_heads(&vs.root(), tasks, |path, _, name| {
        BinaryHead::new(path, name, HIDDEN[1])
    })?;
    let mut sizes = vec![features as i64];
    sizes.extend(HIDDEN);
    let trunk = MlpConfig::new(sizes).build(&(vs.root() / "trunk"))?;
    let arch = HardSharing::new(trunk, tasks.len())?;
    Ok(MultiTaskModel::new(vs, arch, heads)?)
}

/// The method as LibMTL configures it by default.
fn trainer(setup: &Setup, libmtl_name: &str, mtl_name: &str, seed: u64) -> Result<Trainer> {
    let mut config = TrainerConfig::default()
        .epochs(setup.epochs)
        .batch_size(setup.batch_size)
        .optimizer(OptimizerConfig::adam(setup.lr))
        .method(mtl_name)
        .progress(false)
        .seed(seed);
    if libmtl_name == "PCGrad" {
        config = config
            .method_param("skip_self", json!(false))
            .method_param("eps", json!(1e-8));
    }
    let trainer = Trainer::new(config)?;
    Ok(if libmtl_name == "MGDA" {
        trainer.with_method(Method::Aggregator(Box::new(
            Mgda::libmtl(MgdaNormalization::None).for_tasks(2),
        )))
    } else {
        trainer
    })
}

fn train_mtl(
    setup: &Setup,
    (libmtl_name, mtl_name): (&str, &str),
    seed: u64,
    train: &MultiTaskDataset,
    test: &MultiTaskDataset,
) -> Result<Cell> {
    seed_everything(seed);
    let mut model = build(train.num_features(), &train.task_names())?;
    let first = model
        .var_store()
        .trainable_variables()
        .into_iter()
        .find(|v| v.size() == [HIDDEN[0], train.num_features() as i64])
        .context("the model has no first encoder layer")?;
    let init_sum = first.sum(Kind::Double).double_value(&[]);
    let auc = |eval: &Evaluation| -> Vec<Option<f64>> {
        (0..train.num_tasks())
            .map(|k| eval.metric(k, "roc_auc"))
            .collect()
    };
    let init_test_auc = auc(&evaluate(&model, test, 4096)?);
    let t0 = Instant::now();
    trainer(setup, libmtl_name, mtl_name, seed)?.fit(&mut model, train, None)?;
    let eval = evaluate(&model, test, 4096)?;
    Ok(Cell {
        library: "mtl".into(),
        method: libmtl_name.into(),
        seed,
        setup: setup.clone(),
        test_auc: auc(&eval),
        seconds: t0.elapsed().as_secs_f64(),
        init_first_layer_sum: Some(init_sum),
        init_test_auc,
    })
}

/// Welch's two-sided p-value for equal means of `a` and `b` (NaN when both are constant).
fn welch_p(a: &[f64], b: &[f64]) -> f64 {
    let ((ma, sa), (mb, sb)) = (mean_std(a), mean_std(b));
    let (va, vb) = (sa * sa / a.len() as f64, sb * sb / b.len() as f64);
    let se = (va + vb).sqrt();
    let df =
        (va + vb).powi(2) / (va * va / (a.len() as f64 - 1.0) + vb * vb / (b.len() as f64 - 1.0));
    2.0 * (1.0 - t_cdf(((ma - mb) / se).abs(), df))
}

fn compare(
    cells: &[&Cell],
    method: &str,
    task: usize,
    name: &str,
    seeds: &[u64],
) -> Result<Comparison> {
    let values = |library: &str| -> Result<Vec<f64>> {
        seeds
            .iter()
            .map(|&s| {
                cells
                    .iter()
                    .find(|c| c.library == library && c.method == method && c.seed == s)
                    .and_then(|c| c.test_auc.get(task).copied().flatten())
                    .with_context(|| format!("{library} {method} seed {s}: no test AUC for {name}"))
            })
            .collect()
    };
    let (ours, theirs) = (values("mtl")?, values("libmtl")?);
    let (mtl_mean, mtl_sd) = mean_std(&ours);
    let (libmtl_mean, libmtl_sd) = mean_std(&theirs);
    let difference = mtl_mean - libmtl_mean;
    let threshold = mtl_sd.max(libmtl_sd);
    Ok(Comparison {
        method: method.into(),
        task: name.into(),
        seeds: seeds.len(),
        mtl_mean,
        mtl_sd,
        libmtl_mean,
        libmtl_sd,
        difference,
        threshold,
        within_spread: difference.abs() <= threshold,
        welch_p: welch_p(&ours, &theirs),
    })
}

fn table(rows: &[Comparison]) -> String {
    let mut s = String::from(
        "| method | task | mtl | LibMTL | Δ (mtl − LibMTL) | max sd | verdict | Welch p |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s += &format!(
            "| {} | {} | {:.4} ± {:.4} | {:.4} ± {:.4} | {:+.4} | {:.4} | {} | {:.2} |\n",
            r.method,
            r.task,
            r.mtl_mean,
            r.mtl_sd,
            r.libmtl_mean,
            r.libmtl_sd,
            r.difference,
            r.threshold,
            if r.within_spread {
                "within spread"
            } else {
                "**outside**"
            },
            r.welch_p
        );
    }
    s
}

fn main() -> Result<()> {
    let wall = Instant::now();
    // Small matrices: one thread each side, the same for both libraries.
    tch::set_num_threads(1);
    let full = flag("--full");
    let libmtl = libmtl_path()?;
    let python = python()?;
    let n_seeds: u64 = parsed("--seeds", 10)?;
    let epochs: usize = parsed("--epochs", if full { 10 } else { 5 })?;
    let batch_size: usize = parsed("--batch-size", 256)?;
    let lr: f64 = parsed("--lr", 1e-3)?;
    let train_rows: Option<usize> = match arg("--train-rows") {
        Some(v) => Some(v.parse().with_context(|| format!("--train-rows: `{v}`"))?),
        None if full => None,
        None => Some(40_000),
    };
    let methods: Vec<(&str, &str)> = match arg("--methods") {
        None => METHODS.to_vec(),
        Some(list) => list
            .split(',')
            .map(|m| {
                METHODS
                    .iter()
                    .find(|(l, r)| l.eq_ignore_ascii_case(m.trim()) || *r == m.trim())
                    .copied()
                    .with_context(|| {
                        format!(
                            "--methods: `{m}` is not one of {}",
                            METHODS.map(|(l, _)| l).join(", ")
                        )
                    })
            })
            .collect::<Result<_>>()?,
    };
    if n_seeds < 2 || epochs == 0 || batch_size == 0 || lr.is_nan() || lr <= 0.0 {
        bail!("need at least two seeds (for a spread), one epoch, a batch and a positive lr");
    }
    let seeds: Vec<u64> = (0..n_seeds).collect();

    let root = data_root("census-income-kdd")?;
    let (train, val, test) =
        census_standardised(&root, CensusGroup::Income, DATA_SEED, train_rows)?;
    let tasks = train.task_names();
    let setup = Setup {
        data: "census-income-kdd, MMoE group 1 (income, never_married), standardised".into(),
        train_rows: train.len(),
        validation_rows: val.len(),
        test_rows: test.len(),
        features: train.num_features(),
        data_seed: DATA_SEED,
        hidden: HIDDEN.to_vec(),
        epochs,
        batch_size,
        lr,
    };
    let (out, cells_path, mut cells): (_, _, Vec<Cell>) = open_run(OUT_DIR)?;
    let data_dir = out.join("data");
    std::fs::create_dir_all(&data_dir)?;
    for (name, ds) in [("train", &train), ("val", &val), ("test", &test)] {
        write_arrays(&data_dir, name, ds)?;
    }
    println!(
        "Census-Income group 1: {} train / {} validation / {} test rows, {} features, tasks \
         {tasks:?}; {} methods × {n_seeds} seeds × 2 libraries, {epochs} epochs, batch \
         {batch_size}, Adam {lr:e}; cells in {}",
        setup.train_rows,
        setup.validation_rows,
        setup.test_rows,
        setup.features,
        methods.len(),
        cells_path.display()
    );

    for &(libmtl_name, mtl_name) in &methods {
        for &seed in &seeds {
            let done = cells.iter().any(|c| {
                c.library == "mtl" && c.method == libmtl_name && c.seed == seed && c.setup == setup
            });
            if done {
                continue;
            }
            let c = train_mtl(&setup, (libmtl_name, mtl_name), seed, &train, &test)
                .with_context(|| format!("mtl {mtl_name}, seed {seed}"))?;
            println!(
                "  mtl    {libmtl_name:>9} seed {seed}: test AUC {}  ({:.1} s)",
                c.test_auc
                    .iter()
                    .map(|a| a.map_or("-".into(), |v| format!("{v:.4}")))
                    .collect::<Vec<_>>()
                    .join(" "),
                c.seconds
            );
            append_cell(&cells_path, &c)?;
            cells.push(c);
        }
    }

    let list = |v: &[String]| v.join(",");
    let status = Command::new(&python)
        .arg(SCRIPT)
        .arg("--libmtl")
        .arg(&libmtl)
        .arg("--data")
        .arg(&data_dir)
        .arg("--cells")
        .arg(&cells_path)
        .args(["--setup", &serde_json::to_string(&setup)?])
        .args([
            "--methods",
            &list(&methods.iter().map(|m| m.0.to_string()).collect::<Vec<_>>()),
        ])
        .args([
            "--seeds",
            &list(&seeds.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        ])
        .args(["--epochs", &epochs.to_string()])
        .args(["--batch-size", &batch_size.to_string()])
        .args(["--lr", &lr.to_string()])
        .args(["--hidden", &list(&HIDDEN.map(|h| h.to_string()))])
        .status()
        .with_context(|| format!("starting {}", python.display()))?;
    if !status.success() {
        bail!("{SCRIPT} failed ({status}); the cells it finished are kept for a rerun");
    }
    let cells: Vec<Cell> = load_cells(&cells_path)?;
    let mine: Vec<&Cell> = cells
        .iter()
        .filter(|c| {
            c.setup == setup
                && seeds.contains(&c.seed)
                && methods.iter().any(|(l, _)| *l == c.method)
        })
        .collect();
    let mut rows = Vec::new();
    for &(method, _) in &methods {
        for (k, name) in tasks.iter().enumerate() {
            rows.push(compare(&mine, method, k, name, &seeds)?);
        }
    }
    // Same seed, same numbers: does each library start from the same weights?
    let (mut same_init, mut pairs, mut same_auc, mut auc_pairs) = (0, 0, 0, 0);
    for c in mine.iter().filter(|c| c.library == "mtl") {
        let peer = mine
            .iter()
            .find(|p| p.library == "libmtl" && p.method == c.method && p.seed == c.seed);
        if let (Some(a), Some(b)) = (
            c.init_first_layer_sum,
            peer.and_then(|p| p.init_first_layer_sum),
        ) {
            pairs += 1;
            if (a - b).abs() <= 1e-4 * (1.0 + a.abs()) {
                same_init += 1;
            }
        }
        let before = |c: &Cell| -> Option<Vec<f64>> {
            let v: Option<Vec<f64>> = c.init_test_auc.iter().copied().collect();
            v.filter(|v| !v.is_empty())
        };
        if let (Some(a), Some(b)) = (before(c), peer.and_then(|p| before(p))) {
            auc_pairs += 1;
            if a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= 1e-6) {
                same_auc += 1;
            }
        }
    }
    let within = rows.iter().filter(|r| r.within_spread).count();
    let md = table(&rows);
    let seconds = |lib: &str| -> f64 {
        mine.iter()
            .filter(|c| c.library == lib)
            .map(|c| c.seconds)
            .sum()
    };
    let (mtl_s, lib_s) = (seconds("mtl"), seconds("libmtl"));
    println!("\ntest ROC-AUC, mean ± sd over {n_seeds} seeds:\n\n{md}");
    println!(
        "{within}/{} within spread; identical initial first layer in {same_init}/{pairs} \
         (method, seed) pairs, identical untrained test AUC (±1e-6) in {same_auc}/{auc_pairs}; \
         training time mtl {mtl_s:.0} s, LibMTL {lib_s:.0} s; wall {:.0} s",
        rows.len(),
        wall.elapsed().as_secs_f64()
    );
    let result = json!({
        "experiment": "mtl vs LibMTL on Census-Income (MMoE group 1): same data, model, epochs, seeds",
        "setup": setup,
        "libmtl": libmtl.display().to_string(),
        "seeds": seeds,
        "methods": methods.iter().map(|(l, m)| json!({"libmtl": l, "mtl": m})).collect::<Vec<_>>(),
        "rule": "within spread when |mean_mtl - mean_libmtl| <= max(sd_mtl, sd_libmtl) (sample sd over seeds)",
        "comparisons": rows,
        "within_spread": within,
        "identical_init_pairs": [same_init, pairs],
        "identical_untrained_test_auc_pairs": [same_auc, auc_pairs],
        "training_seconds": {"mtl": mtl_s, "libmtl": lib_s},
        "cells": mine,
    });
    let json_path = out.join("result.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&result)?)?;
    println!("wrote {}", json_path.display());
    if flag("--docs") {
        let body = format!(
            "Test ROC-AUC, mean ± sample standard deviation over seeds {seeds:?} \
             ({} training rows, {} features, {epochs} epochs, batch {batch_size}, Adam \
             {lr:e}; {} validation and {} test rows). **{within} of {} within spread**; \
             the first encoder layer started from identical weights in {same_init} of \
             {pairs} (method, seed) pairs, and the untrained models' test AUCs agreed to \
             1e-6 in {same_auc} of {auc_pairs}. Training time summed over the cells: mtl \
             {mtl_s:.0} s, LibMTL {lib_s:.0} s (one thread each).\n\n{md}",
            setup.train_rows,
            setup.features,
            setup.validation_rows,
            setup.test_rows,
            rows.len(),
        );
        write_doc("libmtl-side-by-side", &body)?;
        println!("wrote the table in {DOC}");
    }
    Ok(())
}
