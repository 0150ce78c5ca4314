//! One run from a [`RunConfig`]: read and split the CSV, build a hard-sharing MLP with
//! one head per target, train, evaluate on the test rows, optionally train single-task
//! baselines for Δm, and write the report and plots.
//!
//! Nothing of the user's is lost on the way: before any data is read the output
//! directory is created, checked writable and locked against a second run (temporary
//! files of killed runs are removed), and no output (report, plots, baselines,
//! checkpoint) may be the same file as an input (the config, the CSV) or as another
//! output. Every file is written to a temporary beside it and renamed into place.

use crate::config::{RunConfig, TargetConfig};
use mtl::core::files::{self, OutputLock};
use mtl::core::{Error, Result};
use mtl::data::{read_csv, CsvSpec, CsvTarget, Standardizer, TargetData};
use mtl::heads::{BinaryHead, ClassificationHead, RegressionHead};
use mtl::prelude::*;
use mtl::{Baselines, Evaluation};
use std::path::{Path, PathBuf};
use tch::nn;

/// Command-line overrides of the config file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The output directory.
    pub out: Option<PathBuf>,
    /// The number of epochs.
    pub epochs: Option<usize>,
    /// The method's registry name.
    pub method: Option<String>,
    /// A checkpoint to resume from.
    pub resume: Option<PathBuf>,
    /// Resume even when the data, preprocessing or settings differ from the
    /// checkpoint's (each difference is a warning).
    pub force_resume: bool,
    /// Train single-task baselines for Δm.
    pub baselines: bool,
    /// No progress bars.
    pub quiet: bool,
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The run report (with the test evaluation and Δm when computed).
    pub report: RunReport,
    /// Where the report and plots were written.
    pub out_dir: PathBuf,
    /// The files written.
    pub files: Vec<PathBuf>,
}

/// Builds the hard-sharing model for `data` (the tasks of `targets`, in order).
pub fn build_model(
    cfg: &RunConfig,
    data: &MultiTaskDataset,
    targets: &[&TargetConfig],
) -> Result<MultiTaskModel> {
    let vs = nn::VarStore::new(select_device(DeviceRequest::Auto)?);
    let mut sizes = vec![data.num_features() as i64];
    sizes.extend(&cfg.model.hidden);
    let width = *sizes.last().unwrap_or(&1);
    let trunk = MlpConfig::new(sizes)
        .dropout(cfg.model.dropout)
        .build(&(vs.root() / "trunk"))?;
    let mut heads: Vec<Box<dyn TaskHead>> = Vec::with_capacity(targets.len());
    for (k, (task, target)) in data.tasks().iter().zip(targets).enumerate() {
        let path = task_path(&vs.root(), k) / "head";
        let head: Box<dyn TaskHead> = match &task.data {
            TargetData::Classes { classes, .. } => Box::new(ClassificationHead::new(
                &path,
                task.name.as_str(),
                width,
                *classes as i64,
            )?),
            TargetData::Binary(_) => Box::new(BinaryHead::new(&path, task.name.as_str(), width)?),
            TargetData::Regression(values) => Box::new(RegressionHead::new(
                &path,
                task.name.as_str(),
                width,
                values.ncols() as i64,
                target.loss.unwrap_or_default(),
            )?),
        };
        heads.push(head);
    }
    MultiTaskModel::new(vs, HardSharing::new(trunk, targets.len())?, heads)
}

/// Applies each target's `first_class`: codes c..=n become classes 0..=n−c.
fn shift_class_codes(data: MultiTaskDataset, targets: &[TargetConfig]) -> Result<MultiTaskDataset> {
    if targets.iter().all(|t| t.first_class.is_none()) {
        return Ok(data);
    }
    let mut tasks = Vec::with_capacity(data.num_tasks());
    for (k, (task, target)) in data.tasks().iter().zip(targets).enumerate() {
        let (Some(first), TargetData::Classes { labels, classes }) =
            (target.first_class, &task.data)
        else {
            tasks.push(task.clone());
            continue;
        };
        let mut shifted = labels.clone();
        for (row, l) in shifted.iter_mut().enumerate() {
            if !task.is_labelled(row) {
                *l = 0;
            } else if *l < first {
                return Err(Error::LabelOutOfRange {
                    task: k,
                    row,
                    label: *l,
                    classes: *classes as i64,
                });
            } else {
                *l -= first;
            }
        }
        let n = (*classes as i64 - first).max(0) as usize;
        let mut t = mtl::data::TaskData::classes(task.name.clone(), shifted, n);
        t.mask = task.mask.clone();
        tasks.push(t);
    }
    MultiTaskDataset::new(data.features().clone(), tasks)
}

/// The plots [`RunReport::write_plots`] may write into the output directory.
const PLOTS: [&str; 4] = [
    "losses.png",
    "task_weights.png",
    "conflict.png",
    "affinity.png",
];

/// What describes the data preparation to the trainer's checkpoints: the data section
/// without the file's location (the same file may move), so a resume with other
/// columns, splits or scaling is refused naming the setting.
fn preprocessing(cfg: &RunConfig) -> Result<serde_json::Value> {
    let mut data = serde_json::to_value(&cfg.data)
        .map_err(|e| Error::config(format!("the data settings are not serialisable: {e}")))?;
    if let Some(fields) = data.as_object_mut() {
        fields.remove("csv");
    }
    Ok(data)
}

/// Runs the config at `config_path`.
pub fn run(config_path: &Path, overrides: &Overrides) -> Result<RunOutcome> {
    let mut cfg = RunConfig::read(config_path)?;
    if let Some(e) = overrides.epochs {
        cfg.train.epochs = e;
    }
    if let Some(m) = &overrides.method {
        cfg.train.method = m.clone();
    }
    if overrides.quiet {
        cfg.train.progress = false;
    }
    cfg.output.baselines |= overrides.baselines;
    // The overrides are checked as the file was.
    cfg.check()?;
    let out_dir = overrides
        .out
        .clone()
        .or(cfg.output.dir.clone())
        .unwrap_or_else(|| {
            let stem = config_path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "run".into());
            PathBuf::from("runs").join(stem)
        });
    // Before reading any data: the output directory is ours, writable, and no output
    // would replace an input or another output.
    files::check_writable(&out_dir)?;
    let _out_lock = OutputLock::acquire(OutputLock::for_dir(&out_dir), &out_dir)?;
    files::clean_stale_temps(&out_dir)?;
    let csv = cfg.csv_path(config_path);
    let report_path = out_dir.join("report.json");
    let baselines_path = out_dir.join("baselines.json");
    let plot_paths: Vec<PathBuf> = PLOTS.iter().map(|p| out_dir.join(p)).collect();
    let mut outputs: Vec<(&str, &Path)> = vec![
        ("report", &report_path),
        ("baselines report", &baselines_path),
    ];
    outputs.extend(plot_paths.iter().map(|p| ("plot", p.as_path())));
    if let Some(c) = &cfg.train.checkpoint {
        outputs.push(("checkpoint", &c.path));
    }
    files::check_distinct(&[("config", config_path), ("input CSV", &csv)], &outputs)?;

    let spec = CsvSpec {
        targets: cfg
            .data
            .targets
            .iter()
            .map(|t| {
                CsvTarget::named(
                    t.column.clone(),
                    t.name.clone().unwrap_or_else(|| t.column.clone()),
                    t.kind.into(),
                )
            })
            .collect(),
        features: cfg.data.features.clone(),
        exclude: cfg.data.exclude.clone(),
        header: cfg.data.header.clone(),
    };
    let data = shift_class_codes(read_csv(&csv, &spec)?, &cfg.data.targets)?;
    seed_everything(cfg.train.seed);
    let split = data.split(cfg.data.validation, cfg.data.test, cfg.train.seed)?;
    let (train, val, test) = if cfg.data.standardize {
        let s = Standardizer::fit(&split.train);
        (
            s.apply(&split.train)?,
            s.apply(&split.validation)?,
            s.apply(&split.test)?,
        )
    } else {
        (split.train, split.validation, split.test)
    };
    let targets: Vec<&TargetConfig> = cfg.data.targets.iter().collect();
    eprintln!(
        "{}: {} train / {} validation / {} test rows, {} features, tasks {:?}, method {}",
        csv.display(),
        train.len(),
        val.len(),
        test.len(),
        train.num_features(),
        train.task_names(),
        cfg.train.method
    );

    let validation = (!val.is_empty()).then_some(&val);
    seed_everything(cfg.train.seed);
    let mut model = build_model(&cfg, &train, &targets)?;
    let mut trainer = Trainer::new(cfg.train.clone())?
        .preprocessing(preprocessing(&cfg)?)
        .force_resume(overrides.force_resume);
    if let Some(r) = &overrides.resume {
        trainer = trainer.resume_from(r);
    }
    let mut report = trainer.fit(&mut model, &train, validation)?;

    if !test.is_empty() {
        let test_eval: Evaluation = evaluate(&model, &test, 256)?;
        if cfg.output.baselines {
            let baselines: Baselines = trainer.fit_baselines(
                |k, single| {
                    seed_everything(cfg.train.seed);
                    build_model(&cfg, single, &targets[k..=k])
                },
                &train,
                validation,
                &test,
            )?;
            report.compare_to_baselines(test_eval, &baselines)?;
            let text = serde_json::to_string_pretty(&baselines)
                .map_err(|e| Error::config(format!("baselines are not serialisable: {e}")))?;
            files::write_atomically(&baselines_path, text.as_bytes())?;
        } else {
            report.test = Some(test_eval);
        }
    }

    report.save(&report_path)?;
    let mut written = vec![report_path];
    if cfg.output.plots {
        written.extend(report.write_plots(&out_dir)?);
    }
    Ok(RunOutcome {
        report,
        out_dir,
        files: written,
    })
}

/// A plain-text summary: per-task test metrics, Δm and negative transfer.
pub fn summary(report: &RunReport) -> String {
    let mut s = format!(
        "method {}: {} epochs (best {}), {:.1} s\n",
        report.method,
        report.epochs.len(),
        report.best_epoch,
        report.seconds
    );
    if let Some(test) = &report.test {
        for (k, task) in test.tasks.iter().enumerate() {
            let metrics: Vec<String> = test.metrics[k]
                .iter()
                .map(|m| format!("{} {:.4}", m.name, m.value))
                .collect();
            s += &format!("  test {task}: {}\n", metrics.join(", "));
        }
    }
    if let Some(d) = &report.delta_m {
        s += &format!("  Δm {:+.2}% (lower is better)\n", d.delta_m);
        for t in &d.tasks {
            s += &format!(
                "    {}: {} {:.4} vs single-task {:.4} ({:+.2}%){}\n",
                t.task,
                t.metric,
                t.value,
                t.baseline,
                t.relative_change,
                if t.negative_transfer {
                    "  <- negative transfer"
                } else {
                    ""
                }
            );
        }
    }
    s
}
