//! Tasks with their own data: the olive oils are dealt into two disjoint halves, as if
//! two laboratories had each measured their own oils. The first labels the region
//! (3 classes) from all 8 fatty acids; the second labels the area (9 classes) but only
//! measured 5 of the acids. Each task has its own rows and its own input width, so the
//! model gives each task an input adapter in front of one shared trunk (`MultiInput`),
//! and `Trainer::fit_multi_input` draws per-task batches every step.
//!
//! Prints each task's test accuracy on its own test rows for single-task models and for
//! the shared model under a few methods and task samplers, with Δm against the
//! single-task models (lower is better).

mod common;

use anyhow::Result;
use common::{print_results, task_heads, Row};
use mtl::data::{olive_oil, MultiInputData, MultiInputSplit, Standardizer, TaskSampling};
use mtl::heads::ClassificationHead;
use mtl::prelude::*;
use mtl::{evaluate_multi_input, DeltaM, Evaluation};
use ndarray::Axis;
use std::time::Instant;
use tch::{nn, Device};

const SEED: u64 = 7;
const ADAPTER: i64 = 32;
const HIDDEN: [i64; 2] = [64, 32];
/// The acids the second laboratory measured (palmitic … linoleic).
const AREA_ACIDS: [usize; 5] = [0, 1, 2, 3, 4];

/// Region on one half of the oils (8 acids), area on the other half (5 acids), each
/// split into train / validation / test and standardised on its own training rows.
fn data() -> Result<MultiInputSplit> {
    let olive = olive_oil(mtl::data::data_dir())?;
    let halves = olive.split_rows(0.5, 0.0, SEED)?;
    let region = olive.subset(&halves.train)?.only_task(0)?;
    let area = olive.subset(&halves.validation)?.only_task(1)?;
    let area = MultiTaskDataset::new(
        area.features().select(Axis(1), &AREA_ACIDS),
        area.tasks().to_vec(),
    )?;
    let split = MultiInputData::new(vec![region, area])?.split(0.2, 0.2, SEED)?;
    let mut parts = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..split.train.num_tasks() {
        let scaler = Standardizer::fit(split.train.dataset(k)?);
        parts.0.push(scaler.apply(split.train.dataset(k)?)?);
        parts.1.push(scaler.apply(split.validation.dataset(k)?)?);
        parts.2.push(scaler.apply(split.test.dataset(k)?)?);
    }
    Ok(MultiInputSplit {
        train: MultiInputData::new(parts.0)?,
        validation: MultiInputData::new(parts.1)?,
        test: MultiInputData::new(parts.2)?,
    })
}

/// Per-task adapters into a shared MLP trunk, one classification head per task of
/// `data`.
fn build_model(data: &MultiInputData) -> mtl::core::Result<MultiTaskModel> {
    seed_everything(SEED);
    let vs = nn::VarStore::new(Device::Cpu);
    let mut sizes = vec![ADAPTER];
    sizes.extend(HIDDEN);
    let trunk = MlpConfig::new(sizes)
        .dropout(0.1)
        .build(&(vs.root() / "trunk"))?;
    let widths: Vec<i64> = data.feature_widths().iter().map(|&w| w as i64).collect();
    let arch = MultiInput::new(&vs.root(), &widths, ADAPTER, trunk)?;
    let classes = data.output_dims()?;
    let heads = task_heads(&vs.root(), &data.task_names(), |path, k, name| {
        ClassificationHead::new(path, name, HIDDEN[1], classes[k] as i64)
    })?;
    MultiTaskModel::new(vs, arch, heads)
}

/// Task `k` of `data` alone.
fn only(data: &MultiInputData, k: usize) -> mtl::core::Result<MultiInputData> {
    MultiInputData::new(vec![data.dataset(k)?.clone()])
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let split = data()?;
    let names = split.train.task_names();
    println!("tasks with their own oils and inputs:");
    for (k, name) in names.iter().enumerate() {
        println!(
            "  {:<7} {} acids, {} train / {} validation / {} test oils",
            name,
            split.train.feature_widths()[k],
            split.train.sizes()[k],
            split.validation.sizes()[k],
            split.test.sizes()[k]
        );
    }
    println!();
    let config = TrainerConfig::default()
        .epochs(300)
        .batch_size(32)
        .optimizer(OptimizerConfig::adam(3e-3))
        .seed(SEED)
        .early_stopping(EarlyStopping::new(Monitor::MeanPrimary, 30));

    let mut rows = Vec::new();
    let mut baselines: Vec<Evaluation> = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let (train, val, test) = (
            only(&split.train, k)?,
            only(&split.validation, k)?,
            only(&split.test, k)?,
        );
        let mut model = build_model(&train)?;
        let t0 = Instant::now();
        let report = Trainer::new(config.clone())?.fit_multi_input(
            &mut model,
            &train,
            Some(&val),
            TaskSampling::All,
        )?;
        let eval = evaluate_multi_input(&model, &test, 256)?;
        let mut accuracy = vec![None; names.len()];
        accuracy[k] = eval.metric(0, "accuracy");
        rows.push(Row {
            label: format!("single-task {name}"),
            accuracy,
            delta_m: None,
            epochs: report.epochs.len(),
            seconds: t0.elapsed().as_secs_f64(),
        });
        baselines.push(eval);
    }

    let runs = [
        ("ew", TaskSampling::All, "all"),
        ("ew", TaskSampling::RoundRobin, "round robin"),
        ("ew", TaskSampling::Temperature(2.0), "temperature 2"),
        ("pcgrad", TaskSampling::All, "all"),
        ("upgrad", TaskSampling::All, "all"),
    ];
    for (method, sampling, sampling_name) in runs {
        let mut model = build_model(&split.train)?;
        let t0 = Instant::now();
        let report = Trainer::new(config.clone().method(method))?.fit_multi_input(
            &mut model,
            &split.train,
            Some(&split.validation),
            sampling,
        )?;
        let seconds = t0.elapsed().as_secs_f64();
        let eval = evaluate_multi_input(&model, &split.test, 256)?;
        let delta_m = DeltaM::compute(&eval, &baselines)?.delta_m;
        rows.push(Row {
            label: format!("shared + {method} ({sampling_name})"),
            accuracy: (0..names.len())
                .map(|k| eval.metric(k, "accuracy"))
                .collect(),
            delta_m: Some(delta_m),
            epochs: report.epochs.len(),
            seconds,
        });
    }

    print_results("model", 32, 12, &names, &rows);
    println!("\nEach task is scored on its own test oils. Δm: mean relative change of test");
    println!("accuracy against the single-task models, signed so that lower is better.");
    Ok(())
}
