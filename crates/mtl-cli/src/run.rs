//! One run from a [`RunConfig`]: read and split the CSV, build a hard-sharing MLP with
//! one head per target, train, evaluate on the test rows, optionally train single-task
//! baselines for Δm, and write the report and plots.

use crate::config::{RunConfig, TargetConfig};
use mtl::core::{Error, Result};
use mtl::data::{read_csv, CsvSpec, CsvTarget, Standardizer, TargetData};
use mtl::prelude::*;
use mtl::{
    ArchSpec, Baselines, Bundle, Evaluation, HeadSpec, ModelSpec, Preprocessing, TargetEncoding,
    RUN_BUNDLE_DIR,
};
use std::path::{Path, PathBuf};

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

/// The hard-sharing model for `data` (the tasks of `targets`, in order), as a spec: the
/// trunk of `model.hidden` and one head per target.
pub fn model_spec(
    cfg: &RunConfig,
    data: &MultiTaskDataset,
    targets: &[&TargetConfig],
) -> ModelSpec {
    let mut sizes = vec![data.num_features() as i64];
    sizes.extend(&cfg.model.hidden);
    let heads = data
        .tasks()
        .iter()
        .zip(targets)
        .map(|(task, target)| HeadSpec::for_task(task, target.loss.unwrap_or_default()))
        .collect();
    ModelSpec {
        architecture: ArchSpec::HardSharing {
            trunk: MlpConfig::new(sizes).dropout(cfg.model.dropout),
        },
        heads,
    }
}

/// Builds the hard-sharing model for `data` (the tasks of `targets`, in order).
pub fn build_model(
    cfg: &RunConfig,
    data: &MultiTaskDataset,
    targets: &[&TargetConfig],
) -> Result<MultiTaskModel> {
    let spec = model_spec(cfg, data, targets);
    MultiTaskModel::from_spec(&spec, select_device(DeviceRequest::Auto)?)
}

/// What a bundle needs to take raw CSV rows and answer in the file's own terms: the
/// feature columns' names, the feature standardisation, and each class task's labels
/// (its names, or its integer codes shifted back by `first_class`).
fn preprocessing(
    data: &MultiTaskDataset,
    targets: &[TargetConfig],
    features: Option<Standardizer>,
) -> Preprocessing {
    let encodings = data
        .tasks()
        .iter()
        .zip(targets)
        .enumerate()
        .map(
            |(k, (task, target))| match (&task.data, data.class_names(k)) {
                (TargetData::Classes { .. }, Some(names)) => TargetEncoding::Labels {
                    labels: names.to_vec(),
                },
                (TargetData::Classes { classes, .. }, None) => match target.first_class {
                    Some(first) => TargetEncoding::Labels {
                        labels: (0..*classes as i64)
                            .map(|c| (c + first).to_string())
                            .collect(),
                    },
                    None => TargetEncoding::Identity,
                },
                _ => TargetEncoding::Identity,
            },
        )
        .collect();
    Preprocessing {
        feature_names: data.feature_names().map(<[String]>::to_vec),
        features,
        targets: encodings,
    }
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
    let shifted = MultiTaskDataset::new(data.features().clone(), tasks)?;
    let shifted = (0..data.num_tasks()).try_fold(shifted, |ds, k| match data.class_names(k) {
        Some(names) => ds.with_class_names(k, names.to_vec()),
        None => Ok(ds),
    })?;
    match data.feature_names() {
        Some(names) => shifted.with_feature_names(names.to_vec()),
        None => Ok(shifted),
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
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
    std::fs::create_dir_all(&out_dir).map_err(|source| Error::Io {
        path: out_dir.clone(),
        source,
    })?;

    let csv = cfg.csv_path(config_path);
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
    let scaler = cfg
        .data
        .standardize
        .then(|| Standardizer::fit(&split.train));
    let (train, val, test) = match &scaler {
        Some(s) => (
            s.apply(&split.train)?,
            s.apply(&split.validation)?,
            s.apply(&split.test)?,
        ),
        None => (split.train, split.validation, split.test),
    };
    let prep = preprocessing(&train, &cfg.data.targets, scaler);
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
    let mut trainer = Trainer::new(cfg.train.clone())?;
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
            let path = out_dir.join("baselines.json");
            write(
                &path,
                &serde_json::to_string_pretty(&baselines)
                    .map_err(|e| Error::config(format!("baselines are not serialisable: {e}")))?,
            )?;
        } else {
            report.test = Some(test_eval);
        }
    }

    let mut files = Vec::new();
    let report_path = out_dir.join("report.json");
    write(&report_path, &report.to_json())?;
    files.push(report_path);
    // The trained model with what `mtl predict` needs to read raw rows.
    model.set_preprocessing(prep)?;
    files.extend(Bundle::save(
        out_dir.join(RUN_BUNDLE_DIR),
        &model,
        &report.method,
    )?);
    if cfg.output.plots {
        files.extend(report.write_plots(&out_dir)?);
    }
    Ok(RunOutcome {
        report,
        out_dir,
        files,
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
