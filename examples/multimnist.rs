//! MultiMNIST as in Sener & Koltun, "Multi-Task Learning as Multi-Objective
//! Optimization", NeurIPS 2018 (section 6.1, Table 2): two digits on one image, one
//! task per digit (left, right). Trains one single-task network per digit, then one
//! shared network with two task towers combined by uniform scaling (each loss weighted
//! ½) and by MGDA-UB (MGDA's min-norm weights from the gradients of the shared
//! representation), and reports each task's test accuracy beside the paper's.
//!
//! The protocol follows the authors' released code (github.com/isl-org/
//! MultiObjectiveOptimization) where the paper is silent:
//! * data (`mtl::data::multi_mnist`, its default): a 36×36 canvas with the left digit
//!   in the top-left corner and the right digit 6 pixels down and right of it, resized
//!   to 28×28 by nearest neighbour; inputs standardised with MNIST's mean 0.1307 and
//!   standard deviation 0.3081;
//! * model (their `MultiLeNetR`/`MultiLeNetO`): conv 5×5 (1→10), max-pool 2, ReLU; conv
//!   5×5 (10→20), channel dropout ½, max-pool 2, ReLU; linear 320→50, ReLU — the shared
//!   representation; per task linear 50→50, ReLU, dropout ½, linear 50→10;
//! * training (the authors' answer in their issue #14, and their training script): SGD
//!   with momentum 0.9, learning rate 0.05, batch 256, the rate ×0.85 every 10 epochs,
//!   100 epochs, and the epoch with the best validation accuracy (mean of the two
//!   tasks) kept; MGDA-UB without gradient normalisation.
//!
//! Quick mode (the default) trains on 10,000 composites for 3 epochs with 2 seeds
//! (validation 2,000, test 10,000); `--full` uses 50,000 training composites (the
//! other 10,000 MNIST training digits make the validation set), 100 epochs and 3 seeds.
//! `--seeds N`, `--epochs N`, `--train N` override either. To measure one factor of the
//! gap to the paper at a time: `--placement shifted` (Sabour-style random shifts with
//! area resizing, the generator `mtl` had before), `--model lenet` (the LeNet of
//! `examples/common` with linear heads and no dropout), `--optimizer adam` (Adam 1e-3,
//! batch 64, constant rate), `--methods single,ew,mgda` (a subset).
//!
//! Every finished (model, seed) cell is appended to `runs/multimnist/cells.jsonl` with
//! the setup it ran under; a rerun skips the cells already there with the same setup,
//! so an interrupted run resumes (`--fresh` starts over; `--out DIR` writes elsewhere).
//! At the end it writes `result.json`, and with `--docs` the table into
//! `docs/reproductions.md` between its `multimnist` markers.
//!
//! Run with `cargo xtask repro multimnist` (quick mode; needs `cargo xtask data mnist`).

mod common;

use anyhow::{anyhow, bail, Context, Result};
use common::repro::{append_cell, arg, flag, mean_std, open_run, write_doc, DOC};
use common::{lenet, task_heads};
use mtl::core::init::{self, Init};
use mtl::core::{Backbone, MlpBuilder, TaskTowers};
use mtl::data::{data_root, multi_mnist, MultiMnistConfig, Split};
use mtl::heads::ClassificationHead;
use mtl::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Instant;
use tch::{nn, Device, Tensor};

const OUT_DIR: &str = "runs/multimnist";
/// MNIST's pixel mean and standard deviation (torchvision's `Normalize` in the
/// authors' loader).
const MNIST_MEAN: f64 = 0.1307;
const MNIST_STD: f64 = 0.3081;
/// Sener & Koltun, Table 2 (test accuracy in percent, left / right digit).
const PAPER: [(Model, [f64; 2]); 3] = [
    (Model::Single, [97.23, 95.90]),
    (Model::Uniform, [96.46, 94.99]),
    (Model::MgdaUb, [97.26, 95.90]),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Model {
    /// One network per digit; cells of this model carry one accuracy each.
    Single,
    /// Uniform scaling: ½ (L_left + L_right).
    Uniform,
    /// MGDA-UB: min-norm weights of the representation gradients.
    MgdaUb,
}

impl Model {
    fn label(self) -> &'static str {
        match self {
            Model::Single => "single task",
            Model::Uniform => "uniform scaling (EW)",
            Model::MgdaUb => "MGDA-UB",
        }
    }
    fn key(self) -> &'static str {
        match self {
            Model::Single => "single",
            Model::Uniform => "ew",
            Model::MgdaUb => "mgda",
        }
    }
}

/// Everything a cell's numbers depend on besides its (model, seed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Setup {
    train: usize,
    validation: usize,
    test: usize,
    epochs: usize,
    /// `fixed` (Sener & Koltun's generator) or `shifted` (Sabour-style).
    placement: String,
    /// `multilenet` (the authors' model) or `lenet` (linear heads, no dropout).
    network: String,
    /// `sgd` (the authors' protocol) or `adam`.
    optimizer: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cell {
    setup: Setup,
    model: Model,
    seed: u64,
    /// Test accuracy of the left and right digit (for `Single`, each from its own net).
    test: [f64; 2],
    /// The epochs of the kept weights (the best validation epoch), per network.
    best_epoch: Vec<usize>,
    seconds: f64,
}

/// The authors' shared representation `MultiLeNetR`: two conv/pool stages and a linear
/// layer to 50 features, with channel dropout after the second convolution. Rows of
/// 784 pixels in [0, 1] are standardised with MNIST's mean and deviation first.
#[derive(Debug)]
struct MultiLeNet {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    fc: nn::Linear,
}

impl MultiLeNet {
    fn new(path: &nn::Path) -> mtl::core::Result<Self> {
        let conv = |name: &str, c_in, c_out| {
            init::conv2d(
                &(path / name),
                c_in,
                c_out,
                5,
                Default::default(),
                Init::default(),
            )
        };
        Ok(MultiLeNet {
            conv1: conv("conv1", 1, 10)?,
            conv2: conv("conv2", 10, 20)?,
            fc: init::linear(&(path / "fc"), 320, 50, Init::default())?,
        })
    }
}

impl Backbone for MultiLeNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> mtl::core::Result<Tensor> {
        let conv = |x: &Tensor, l: &nn::Conv2D| {
            x.f_conv2d(&l.ws, l.bs.as_ref(), [1, 1], [0, 0], [1, 1], 1)
        };
        let pool = |x: &Tensor| x.f_max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
        let h = ((xs - MNIST_MEAN) / MNIST_STD).f_view([-1, 1, 28, 28])?;
        let h = pool(&conv(&h, &self.conv1)?)?.f_relu()?;
        // Dropout2d: whole channels dropped (the authors draw one mask per batch and do
        // not rescale; this is PyTorch's per-image, rescaled `Dropout2d`).
        let h = conv(&h, &self.conv2)?.f_feature_dropout(0.5, train)?;
        let h = pool(&h)?.f_relu()?;
        Ok(h.f_flatten(1, -1)?
            .f_linear(&self.fc.ws, self.fc.bs.as_ref())?
            .f_relu()?)
    }
    fn out_dim(&self) -> i64 {
        50
    }
    fn in_dim(&self) -> Option<i64> {
        Some(784)
    }
}

/// The authors' model for the tasks of `data`: the shared `MultiLeNet`, then per task a
/// tower 50→50 (ReLU, dropout ½) and a linear 10-class head.
fn multilenet(data: &MultiTaskDataset) -> mtl::core::Result<MultiTaskModel> {
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let trunk = MultiLeNet::new(&(&root / "trunk"))?;
    let mut tower = MlpBuilder::new([50]);
    tower.dropout = 0.5;
    let arch = TaskTowers::build(HardSharing::new(trunk, data.num_tasks())?, &root, &tower)?;
    let heads = task_heads(&root, &data.task_names(), |path, _, name| {
        ClassificationHead::new(path, name, 50, 10)
    })?;
    MultiTaskModel::new(vs, arch, heads)
}

fn trainer(setup: &Setup, seed: u64, steps_per_epoch: usize) -> Result<TrainerConfig> {
    // The best validation epoch is kept: patience over the whole run never stops early.
    let keep_best = EarlyStopping::new(Monitor::MeanPrimary, setup.epochs);
    let config = TrainerConfig::default()
        .epochs(setup.epochs)
        .seed(seed)
        .progress(false)
        .early_stopping(keep_best);
    Ok(match setup.optimizer.as_str() {
        "sgd" => {
            let mut sgd = OptimizerConfig::sgd(0.05);
            if let OptimizerConfig::Sgd { momentum, .. } = &mut sgd {
                *momentum = 0.9;
            }
            config
                .batch_size(256)
                .optimizer(sgd)
                .lr_schedule(LrSchedule::Step {
                    every: 10 * steps_per_epoch as u64,
                    gamma: 0.85,
                })
        }
        "adam" => config.batch_size(64).optimizer(OptimizerConfig::adam(1e-3)),
        other => bail!("--optimizer: `{other}` is neither sgd nor adam"),
    })
}

fn build(setup: &Setup, data: &MultiTaskDataset) -> Result<MultiTaskModel> {
    Ok(match setup.network.as_str() {
        "multilenet" => multilenet(data)?,
        "lenet" => lenet(data)?,
        other => bail!("--model: `{other}` is neither multilenet nor lenet"),
    })
}

fn accuracy(eval: &mtl::Evaluation, k: usize) -> Result<f64> {
    eval.metric(k, "accuracy")
        .ok_or_else(|| anyhow!("no accuracy for task {k}"))
}

fn train(setup: &Setup, split: &Split, model: Model, seed: u64) -> Result<Cell> {
    let batch = if setup.optimizer == "sgd" { 256 } else { 64 };
    let steps = split.train.len().div_ceil(batch);
    let t = Instant::now();
    let (test, best_epoch) = match model {
        Model::Single => {
            let mut test = [0.0; 2];
            let mut best = Vec::new();
            for (k, acc) in test.iter_mut().enumerate() {
                let (tr, va, te) = (
                    split.train.only_task(k)?,
                    split.validation.only_task(k)?,
                    split.test.only_task(k)?,
                );
                seed_everything(seed);
                let mut m = build(setup, &tr)?;
                let report =
                    Trainer::new(trainer(setup, seed, steps)?)?.fit(&mut m, &tr, Some(&va))?;
                *acc = accuracy(&evaluate(&m, &te, 1000)?, 0)?;
                best.push(report.best_epoch);
            }
            (test, best)
        }
        Model::Uniform | Model::MgdaUb => {
            seed_everything(seed);
            let mut m = build(setup, &split.train)?;
            let config = trainer(setup, seed, steps)?;
            let config = match model {
                Model::Uniform => config
                    .method("static")
                    .method_param("weights", json!([0.5, 0.5])),
                _ => config.method("mgda").grad_mode(GradMode::Representation),
            };
            let report =
                Trainer::new(config)?.fit(&mut m, &split.train, Some(&split.validation))?;
            let eval = evaluate(&m, &split.test, 1000)?;
            (
                [accuracy(&eval, 0)?, accuracy(&eval, 1)?],
                vec![report.best_epoch],
            )
        }
    };
    Ok(Cell {
        setup: setup.clone(),
        model,
        seed,
        test,
        best_epoch,
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// One model's line: mean ± standard deviation over seeds of each digit's accuracy.
#[derive(Debug, Clone, Serialize)]
struct Row {
    model: Model,
    seeds: usize,
    paper: [f64; 2],
    mean: [f64; 2],
    std: [f64; 2],
    min: [f64; 2],
    max: [f64; 2],
    seconds: f64,
}

fn summarise(cells: &[&Cell], model: Model, paper: [f64; 2]) -> Option<Row> {
    let mine: Vec<&&Cell> = cells.iter().filter(|c| c.model == model).collect();
    if mine.is_empty() {
        return None;
    }
    let mut row = Row {
        model,
        seeds: mine.len(),
        paper,
        mean: [0.0; 2],
        std: [0.0; 2],
        min: [0.0; 2],
        max: [0.0; 2],
        seconds: mine.iter().map(|c| c.seconds).sum::<f64>() / mine.len() as f64,
    };
    for k in 0..2 {
        let v: Vec<f64> = mine.iter().map(|c| 100.0 * c.test[k]).collect();
        (row.mean[k], row.std[k]) = mean_std(&v);
        row.min[k] = v.iter().copied().fold(f64::INFINITY, f64::min);
        row.max[k] = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    }
    Some(row)
}

fn table(setup: &Setup, rows: &[Row], wall: f64) -> String {
    let seeds = rows.iter().map(|r| r.seeds).max().unwrap_or(0);
    let mut s = format!(
        "Test accuracy (%) on {} composites, mean ± standard deviation over {seeds} seeds \
         [min, max]; {} training and {} validation composites, {} epochs, placement \
         `{}`, network `{}`, optimizer `{}`; the paper's numbers are its Table 2 (one run, \
         60 000 training images, 100 epochs):\n\n",
        setup.test,
        setup.train,
        setup.validation,
        setup.epochs,
        setup.placement,
        setup.network,
        setup.optimizer
    );
    s += "| model | left: paper | left: mtl | right: paper | right: mtl | gap to paper (left / right) | train time per seed |\n";
    s += "|---|---|---|---|---|---|---|\n";
    for r in rows {
        let cell = |k: usize| {
            format!(
                "{:.2} ± {:.2} [{:.2}, {:.2}]",
                r.mean[k], r.std[k], r.min[k], r.max[k]
            )
        };
        s += &format!(
            "| {} | {:.2} | {} | {:.2} | {} | {:+.2} / {:+.2} | {:.0} s |\n",
            r.model.label(),
            r.paper[0],
            cell(0),
            r.paper[1],
            cell(1),
            r.mean[0] - r.paper[0],
            r.mean[1] - r.paper[1],
            r.seconds
        );
    }
    s += &format!("\nWall time of the run that wrote this table: {wall:.0} s.\n");
    s
}

fn main() -> Result<()> {
    tch::set_num_threads(2);
    let full = flag("--full");
    let parse = |name: &str, default: usize| -> Result<usize> {
        arg(name).map_or(Ok(default), |s| {
            s.parse().with_context(|| format!("{name}: `{s}`"))
        })
    };
    let seeds = parse("--seeds", if full { 3 } else { 2 })? as u64;
    let setup = Setup {
        train: parse("--train", if full { 50_000 } else { 10_000 })?,
        validation: if full { 10_000 } else { 2_000 },
        test: 10_000,
        epochs: parse("--epochs", if full { 100 } else { 3 })?,
        placement: arg("--placement").unwrap_or_else(|| "fixed".into()),
        network: arg("--model").unwrap_or_else(|| "multilenet".into()),
        optimizer: arg("--optimizer").unwrap_or_else(|| "sgd".into()),
    };
    let methods: Vec<Model> = match arg("--methods") {
        None => vec![Model::Single, Model::Uniform, Model::MgdaUb],
        Some(s) => s
            .split(',')
            .map(|m| {
                [Model::Single, Model::Uniform, Model::MgdaUb]
                    .into_iter()
                    .find(|x| x.key() == m.trim())
                    .ok_or_else(|| anyhow!("--methods: `{m}` is not single, ew or mgda"))
            })
            .collect::<Result<_>>()?,
    };
    let (out, cells_path, mut cells): (_, _, Vec<Cell>) = open_run(OUT_DIR)?;

    let t0 = Instant::now();
    let mut config = MultiMnistConfig::sized(setup.train, setup.test).validation(setup.validation);
    match setup.placement.as_str() {
        "fixed" => {}
        "shifted" => config = config.shifted(),
        other => bail!("--placement: `{other}` is neither fixed nor shifted"),
    }
    let root = data_root("mnist")?;
    let mut splits: Vec<(u64, Split)> = Vec::new();
    for seed in 0..seeds {
        let todo = methods.iter().any(|&m| {
            !cells
                .iter()
                .any(|c| c.setup == setup && c.model == m && c.seed == seed)
        });
        if !todo {
            continue;
        }
        // Each seed draws its own pairing (and shifts) as well as its own start.
        let split = multi_mnist(&root, &config.clone().seed(seed)).context(
            "building MultiMNIST from the MNIST files (fetch them with `cargo xtask data mnist`)",
        )?;
        splits.push((seed, split));
    }
    println!(
        "MultiMNIST ({} placement): {} train / {} validation / {} test composites per seed, \
         {} seeds to train, built in {:.1} s",
        setup.placement,
        setup.train,
        setup.validation,
        setup.test,
        splits.len(),
        t0.elapsed().as_secs_f64()
    );
    for (seed, split) in &splits {
        for &model in &methods {
            if cells
                .iter()
                .any(|c| c.setup == setup && c.model == model && c.seed == *seed)
            {
                continue;
            }
            let cell = train(&setup, split, model, *seed)?;
            println!(
                "  seed {seed} {:<22} left {:.4} right {:.4} (best epoch {:?}, {:.0} s)",
                model.label(),
                cell.test[0],
                cell.test[1],
                cell.best_epoch,
                cell.seconds
            );
            append_cell(&cells_path, &cell)?;
            cells.push(cell);
        }
    }

    let mine: Vec<&Cell> = cells
        .iter()
        .filter(|c| c.setup == setup && c.seed < seeds && methods.contains(&c.model))
        .collect();
    let rows: Vec<Row> = PAPER
        .iter()
        .filter_map(|&(m, paper)| summarise(&mine, m, paper))
        .collect();
    let wall = t0.elapsed().as_secs_f64();
    let body = table(&setup, &rows, wall);
    println!("\n{body}");
    std::fs::write(
        out.join("result.json"),
        serde_json::to_string_pretty(&json!({
            "setup": setup,
            "seeds": seeds,
            "rows": rows,
            "wall_seconds": wall,
        }))?,
    )?;
    if flag("--docs") {
        write_doc("multimnist", &body)?;
        println!("wrote the table into {DOC}");
    }
    Ok(())
}
