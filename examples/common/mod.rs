//! What the examples share: one head per task on top of a shared model, and the table
//! that sets single-task models beside shared ones, task by task. Cargo builds no
//! example from this folder (it has no `main.rs`); an example takes it in with
//! `mod common;`.

// Each example uses only part of this module.
#![allow(dead_code)]

pub mod moe;
pub mod repro;

use mtl::prelude::*;
use tch::nn;

/// One head per task in `names`: head `k` is `head(path, k, name)` built under
/// `task_path(root, k) / "head"`, so that its variables are task `k`'s parameters.
pub fn task_heads<H: TaskHead + 'static>(
    root: &nn::Path,
    names: &[String],
    head: impl Fn(&nn::Path, usize, &str) -> mtl::core::Result<H>,
) -> mtl::core::Result<Vec<Box<dyn TaskHead>>> {
    names
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let head = head(&(task_path(root, k) / "head"), k, name)?;
            Ok(Box::new(head) as Box<dyn TaskHead>)
        })
        .collect()
}

/// One model's line in [`print_results`].
pub struct Row {
    /// What was trained, e.g. `single-task region` or `shared + pcgrad`.
    pub label: String,
    /// The test accuracy on each task; `None` on the tasks the model did not learn.
    pub accuracy: Vec<Option<f64>>,
    /// Δm against the single-task models, in percent; `None` for those models.
    pub delta_m: Option<f64>,
    /// The epochs it trained for.
    pub epochs: usize,
    /// Its wall-clock training time in seconds.
    pub seconds: f64,
}

/// The width of the Δm, epochs and wall-time columns, the spaces before them included.
const TAIL_WIDTH: usize = 1 + 9 + 1 + 7 + 1 + 9;

/// Prints `rows` as a table: a first column `label_width` wide headed `first`, one
/// accuracy column `accuracy_width` wide per task in `tasks`, then Δm, epochs and wall
/// time.
pub fn print_results(
    first: &str,
    label_width: usize,
    accuracy_width: usize,
    tasks: &[String],
    rows: &[Row],
) {
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let mut header = format!("{first:<label_width$}");
    for task in tasks {
        header += &format!(" {:>accuracy_width$}", format!("{task} acc"));
    }
    println!("{header} {:>9} {:>7} {:>9}", "Δm (%)", "epochs", "wall (s)");
    let width = label_width + tasks.len() * (1 + accuracy_width) + TAIL_WIDTH;
    println!("{}", "-".repeat(width));
    for r in rows {
        let mut line = format!("{:<label_width$}", r.label);
        for a in &r.accuracy {
            line += &format!(
                " {:>accuracy_width$}",
                or_dash(a.map(|v| format!("{v:.3}")))
            );
        }
        let delta_m = or_dash(r.delta_m.map(|d| format!("{d:+.2}")));
        println!("{line} {delta_m:>9} {:>7} {:>9.2}", r.epochs, r.seconds);
    }
}

/// LeNet (Sener & Koltun's MultiMNIST widths) shared by one 10-class head per task of
/// `data`.
pub fn lenet(data: &MultiTaskDataset) -> mtl::core::Result<MultiTaskModel> {
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let cnn = mtl::core::CnnConfig::new(28, 28);
    let width = cnn.out_dim;
    let trunk = cnn.build(&(vs.root() / "trunk"))?;
    let arch = HardSharing::new(trunk, data.num_tasks())?;
    let heads = task_heads(&vs.root(), &data.task_names(), |path, _, name| {
        mtl::heads::ClassificationHead::new(path, name, width, 10)
    })?;
    MultiTaskModel::new(vs, arch, heads)
}

/// Census-Income (KDD) for one of the MMoE paper's task groups, its features
/// standardised on the training rows: `(train, validation, test)`.
pub fn census_standardised(
    root: &std::path::Path,
    group: mtl::data::CensusGroup,
    seed: u64,
    max_train_rows: Option<usize>,
) -> mtl::core::Result<(MultiTaskDataset, MultiTaskDataset, MultiTaskDataset)> {
    let mut config = mtl::data::CensusConfig::new(group).seed(seed);
    config.max_train_rows = max_train_rows;
    let census = mtl::data::census_income(root, &config)?;
    let s = &census.split;
    let scaler = mtl::data::Standardizer::fit(&s.train);
    Ok((
        scaler.apply(&s.train)?,
        scaler.apply(&s.validation)?,
        scaler.apply(&s.test)?,
    ))
}
