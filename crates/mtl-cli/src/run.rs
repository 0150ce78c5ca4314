//! One run from a [`RunConfig`]: read and split the data (a CSV file, or the arrays of
//! an `.npz` or safetensors file), build the configured architecture with one head per
//! target, train, evaluate on the test rows, optionally train single-task baselines for
//! Δm, and write the report, plots and model bundle. Everything after the data is read
//! is one loop for either kind of data ([`JointData`]).
//!
//! Nothing of the user's is lost on the way: before any data is read the output
//! directory is created, checked writable and locked against a second run (temporary
//! files of killed runs are removed), and no output (report, plots, baselines, metrics,
//! checkpoint) may be the same file as an input (the config, the CSV) or as another
//! output. Every file is written to a temporary beside it and renamed into place.

use crate::config::{ArchKind, InputKind, RunConfig, TargetConfig};
use mtl::core::files::{self, OutputLock};
use mtl::core::init::{self, Init};
use mtl::core::{CrossStitchConfig, Error, LtbConfig, Result};
use mtl::data::{
    extreme_columns, read_csv_summary, CsvSpec, CsvSummary, CsvTarget, FeatureScaling,
    Standardizer, TableEncoder, TargetData, TargetStandardizer, EXTREME_Z,
};
use mtl::data::{JointData, TensorDataset};
use mtl::prelude::*;
use mtl::{
    ArchSpec, Baselines, Bundle, DeltaM, Evaluation, HeadSpec, ModelSpec, OnlyTask, Preprocessing,
    TargetEncoding, TrackingConfig, TrainingObserver, RUN_BUNDLE_DIR,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
    /// Δm against the single-task baselines of an earlier run (its `baselines.json`,
    /// trained on the same data, split and seed) instead of training them again, as
    /// `mtl sweep` shares one set per seed across methods.
    pub baselines_from: Option<PathBuf>,
    /// Override `train.seed` (the split, the initialisation and the batches).
    pub seed: Option<u64>,
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
    /// What the run warned about (also printed to stderr as it happened): features with
    /// extreme values, task losses on very different scales...
    pub warnings: Vec<String>,
}

/// The model for `data` (the tasks of `targets`, in order) as a spec: the
/// architecture `model.arch` with the sizes of `model.hidden`, one head per target.
pub fn model_spec(
    cfg: &RunConfig,
    data: &MultiTaskDataset,
    targets: &[&TargetConfig],
) -> ModelSpec {
    let heads: Vec<HeadSpec> = data
        .tasks()
        .iter()
        .zip(targets)
        .map(|(task, target)| HeadSpec::for_task(task, target.loss.unwrap_or_default()))
        .collect();
    ModelSpec {
        architecture: mlp_arch(cfg, data.num_features() as i64, heads.len()),
        heads,
        input: None,
    }
}

/// The MLP architecture `model.arch` names (hard sharing, MMoE, cross-stitch or LTB) over
/// `inputs` features for `tasks` tasks; a conv net is not an MLP and is built by the
/// array input from the images' shape.
pub fn mlp_arch(cfg: &RunConfig, inputs: i64, tasks: usize) -> ArchSpec {
    let m = &cfg.model;
    let hidden = m.hidden();
    let mlp = |hidden: &[i64]| MlpBuilder::new(hidden).dropout(m.dropout).init(m.init);
    match m.arch {
        ArchKind::Mmoe => ArchSpec::Mmoe {
            config: MmoeConfig::new(inputs, m.experts.unwrap_or(8), tasks),
            expert: mlp(&hidden),
        },
        ArchKind::CrossStitch => ArchSpec::CrossStitch {
            config: CrossStitchConfig::new(inputs, tasks).alpha_self(m.alpha_self.unwrap_or(0.9)),
            stages: hidden.iter().map(|w| mlp(&[*w])).collect(),
        },
        ArchKind::Ltb => {
            let mut config = LtbConfig::new(inputs, tasks);
            config.fix_at_epoch = m.fix_branches_at;
            ArchSpec::Ltb {
                config,
                layers: hidden.iter().map(|w| mlp(&[*w])).collect(),
            }
        }
        // `check` refuses a conv net over CSV rows; the array input builds its own.
        ArchKind::HardSharing | ArchKind::ConvNet => {
            let mut sizes = vec![inputs];
            sizes.extend(&hidden);
            ArchSpec::HardSharing {
                trunk: MlpConfig::new(sizes).dropout(m.dropout).init(m.init),
            }
        }
    }
}

/// Builds the model for `data` (the tasks of `targets`, in order).
pub fn build_model(
    cfg: &RunConfig,
    data: &MultiTaskDataset,
    targets: &[&TargetConfig],
) -> Result<MultiTaskModel> {
    build_from_spec(cfg, &model_spec(cfg, data, targets))
}

/// Builds the model `spec` describes, its heads started as `model.head_init` says.
fn build_from_spec(cfg: &RunConfig, spec: &ModelSpec) -> Result<MultiTaskModel> {
    let model = MultiTaskModel::from_spec(spec, select_device(DeviceRequest::Auto)?)?;
    // The heads are built as torch.nn.Linear; another start is drawn over them.
    let head_init = cfg.model.head_init.unwrap_or(cfg.model.init);
    if head_init != Init::default() {
        init::reinit(model.var_store(), |name| name.contains(".head."), head_init)?;
    }
    Ok(model)
}

/// Whether a var-store name belongs to one task (a `task<k>` component, as
/// [`mtl::core::task_path`] builds).
fn is_task_specific(name: &str) -> bool {
    name.split('.').any(|c| {
        c.strip_prefix("task")
            .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// What a bundle needs to take raw CSV rows and answer in the file's own terms: the
/// column encoders, the feature columns' names, the feature standardisation, and each
/// class task's labels (its names, or its integer codes shifted back by `first_class`).
fn preprocessing(
    data: &MultiTaskDataset,
    targets: &[TargetConfig],
    table: TableEncoder,
    features: Option<Standardizer>,
) -> Result<Preprocessing> {
    let encodings = data
        .tasks()
        .iter()
        .zip(targets)
        .enumerate()
        .map(|(k, (task, target))| -> Result<TargetEncoding> {
            Ok(match (&task.data, data.class_names(k)) {
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
                _ => match data.target_scale(k) {
                    // Trained on standardised targets: predictions go back to the
                    // file's units through the training rows' statistics.
                    Some(scale) => TargetEncoding::Standardized {
                        scaler: Standardizer::from_parts(
                            scale.mean().clone(),
                            scale.std().clone(),
                        )?,
                    },
                    None => TargetEncoding::Identity,
                },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Preprocessing {
        feature_names: data.feature_names().map(<[String]>::to_vec),
        features,
        targets: encodings,
        table: Some(table),
    })
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
fn data_settings(cfg: &RunConfig) -> Result<serde_json::Value> {
    let mut data = serde_json::to_value(&cfg.data)
        .map_err(|e| Error::config(format!("the data settings are not serialisable: {e}")))?;
    if let Some(fields) = data.as_object_mut() {
        for key in ["csv", "npz", "safetensors"] {
            fields.remove(key);
        }
        if cfg.data.csv.is_some() {
            // Written out as before these settings could be left out, so checkpoints
            // of earlier runs compare equal.
            fields.insert("standardize".into(), cfg.data.standardize().into());
            fields.insert(
                "standardize_targets".into(),
                cfg.data.standardize_targets().into(),
            );
        }
    }
    Ok(data)
}

/// Runs the config at `config_path`.
pub fn run(config_path: &Path, overrides: &Overrides) -> Result<RunOutcome> {
    run_in(config_path, overrides, None)
}

/// A data-parallel group a run trains in.
pub type SharedGroup = Arc<dyn mtl::core::Collective + Send + Sync>;

/// [`run()`] as one rank of a data-parallel `group` (`mtl train --nproc N`, or ranks
/// started by `torchrun --no-python`): every rank reads the data and trains on its
/// block of each batch; rank 0 writes the outputs and checkpoints, the others write
/// into a temporary directory they remove.
pub fn run_in(
    config_path: &Path,
    overrides: &Overrides,
    group: Option<SharedGroup>,
) -> Result<RunOutcome> {
    let mut cfg = RunConfig::read(config_path)?;
    if let Some(e) = overrides.epochs {
        cfg.train.epochs = e;
    }
    if let Some(m) = &overrides.method {
        // The file's hyper-parameters belong to the file's method: another method
        // named on the command line starts from its paper defaults.
        if !m.eq_ignore_ascii_case(&cfg.train.method) {
            cfg.train.method_params.clear();
        }
        cfg.train.method = m.clone();
    }
    if let Some(seed) = overrides.seed {
        cfg.train.seed = seed;
    }
    if overrides.quiet {
        cfg.train.progress = false;
    }
    cfg.output.baselines |= overrides.baselines;
    if overrides.baselines_from.is_some() {
        if overrides.baselines {
            return Err(Error::config(
                "--baselines-from reads baselines an earlier run trained; it cannot be \
                 combined with --baselines, which trains them",
            ));
        }
        // The command line overrides the file's `output.baselines`.
        cfg.output.baselines = false;
    }
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
    // Ranks other than 0 train in step with rank 0 but must not write beside it.
    let rank = group.as_ref().map_or(0, |g| g.rank());
    let scratch = (rank != 0)
        .then(|| std::env::temp_dir().join(format!("mtl-rank{rank}-{}", std::process::id())));
    let out_dir = scratch.clone().unwrap_or(out_dir);
    let _scratch = Scratch(scratch);
    // Before reading any data: the output directory is ours, writable, and no output
    // would replace an input or another output.
    files::check_writable(&out_dir)?;
    let _out_lock = OutputLock::acquire(OutputLock::for_dir(&out_dir), &out_dir)?;
    files::clean_stale_temps(&out_dir)?;
    let csv = cfg.csv_path(config_path);
    let report_path = out_dir.join("report.json");
    let baselines_path = out_dir.join("baselines.json");
    let mut output_paths: Vec<(&str, PathBuf)> = vec![
        ("report", report_path.clone()),
        ("baselines report", baselines_path.clone()),
        ("metrics log", mtl::MetricsWriter::steps_path(&out_dir)),
        ("epoch log", mtl::MetricsWriter::epochs_path(&out_dir)),
    ];
    output_paths.extend(PLOTS.iter().map(|p| ("plot", out_dir.join(p))));
    let bundle_dir = out_dir.join(RUN_BUNDLE_DIR);
    output_paths.push(("model bundle", bundle_dir.join(mtl::MANIFEST_FILE)));
    output_paths.push(("model weights", bundle_dir.join(mtl::WEIGHTS_FILE)));
    if let Some(c) = &cfg.train.checkpoint {
        output_paths.push(("checkpoint", c.path.clone()));
    }
    let outputs: Vec<(&str, &Path)> = output_paths
        .iter()
        .map(|(w, p)| (*w, p.as_path()))
        .collect();
    let input_name = match cfg.data.input()? {
        InputKind::Csv => "input CSV",
        InputKind::Npz => "input npz",
        InputKind::Safetensors => "input safetensors",
        InputKind::ImageFolder => "input image folder",
    };
    let mut inputs: Vec<(&str, &Path)> = vec![("config", config_path), (input_name, &csv)];
    if let Some(b) = &overrides.baselines_from {
        inputs.push(("baselines to compare with", b));
    }
    files::check_distinct(&inputs, &outputs)?;
    // Read before training, so a wrong file costs no training time.
    let shared_baselines = overrides
        .baselines_from
        .as_deref()
        .map(read_baselines)
        .transpose()?;
    if let (Some(b), Some(path)) = (&shared_baselines, &overrides.baselines_from) {
        let theirs: Vec<String> = b.test.iter().flat_map(|e| e.tasks.clone()).collect();
        let ours: Vec<String> = cfg.data.targets.iter().map(|t| t.task_name()).collect();
        if theirs != ours {
            return Err(Error::config(format!(
                "{}: the baselines evaluate tasks {theirs:?}, this run's are {ours:?}",
                path.display()
            )));
        }
    }
    let mut warnings = Vec::new();
    let input = cfg.data.input()?;
    let prepared = match input {
        InputKind::Csv => Input::Table(prepare_csv(&cfg, &csv, &mut warnings)?),
        _ => Input::Arrays(prepare_arrays(&cfg, &csv, input)?),
    };
    let out = Outputs {
        dir: out_dir,
        report: report_path,
        baselines: baselines_path,
        bundle: bundle_dir,
    };
    match prepared {
        Input::Table(p) => train_and_report(
            cfg,
            config_path,
            overrides,
            out,
            p,
            warnings,
            group,
            shared_baselines,
        ),
        Input::Arrays(p) => train_and_report(
            cfg,
            config_path,
            overrides,
            out,
            p,
            warnings,
            group,
            shared_baselines,
        ),
    }
}

/// Reads the `baselines.json` of an earlier run.
pub fn read_baselines(path: &Path) -> Result<Baselines> {
    crate::jobs::read_json(
        path,
        "a baselines report written by `mtl train --baselines`",
    )
}

/// A rank's scratch output directory, removed when the run ends.
struct Scratch(Option<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Where a run writes.
struct Outputs {
    dir: PathBuf,
    report: PathBuf,
    baselines: PathBuf,
    bundle: PathBuf,
}

/// The data of a run, split, with the model it calls for.
struct Prepared<D> {
    train: D,
    validation: D,
    test: D,
    /// The multi-task model; task k's baseline is `spec.only_task(k)`.
    spec: ModelSpec,
    /// What the bundle needs to read raw inputs.
    preprocessing: Preprocessing,
    /// Δm over every metric of every task (LibMTL's rule, for dense tasks with several
    /// metrics each) rather than over each task's primary metric.
    all_metrics: bool,
}

enum Input {
    Table(Prepared<MultiTaskDataset>),
    Arrays(Prepared<TensorDataset>),
}

/// Reads the CSV file, splits it, scales features and targets as configured.
fn prepare_csv(
    cfg: &RunConfig,
    csv: &Path,
    warnings: &mut Vec<String>,
) -> Result<Prepared<MultiTaskDataset>> {
    let spec = csv_spec(cfg)?;
    let (data, summary) = read_csv_summary(csv, &spec)?;
    describe_columns(csv, &summary);
    seed_everything(cfg.train.seed);
    let rows = data.split_rows(cfg.data.validation, cfg.data.test, cfg.train.seed)?;
    let (train, val, test) = (
        data.subset(&rows.train)?,
        data.subset(&rows.validation)?,
        data.subset(&rows.test)?,
    );
    // The parts hold every row; the whole is no longer needed (a large file's matrix).
    drop(data);
    let line_of = |part: &[usize], row: usize| summary.lines[part[row]];
    check_classes_seen_in_training(cfg, csv, &train, &val, |r| line_of(&rows.validation, r))?;
    check_classes_seen_in_training(cfg, csv, &train, &test, |r| line_of(&rows.test, r))?;
    // Encoders fitted on the training rows only: a category seen only in validation or
    // test rows is unknown to the model, as it would be in new data.
    let options = cfg.data.encoder_options();
    let encoder = TableEncoder::fit(&train, &summary.columns, &options)?
        .with_na_values(cfg.data.na_values.clone());
    eprintln!("{}: encoded (fitted on the training rows):", csv.display());
    for line in encoder.describe(&options) {
        eprintln!("  {line}");
    }
    let (train, val, test) = (
        encoder.apply(&train, &summary.columns)?,
        encoder.apply(&val, &summary.columns)?,
        encoder.apply(&test, &summary.columns)?,
    );
    let names = encoder.feature_names();
    let ids = encoder.embedding_input().tables.len();
    let scaling = cfg.data.feature_scaling();
    if !matches!(scaling, Some(FeatureScaling::Clip { .. })) {
        // Embedding ids are positions in a table, not values with a scale.
        let extreme: Vec<_> = extreme_columns(&train, EXTREME_Z)
            .into_iter()
            .filter(|e| e.column < names.len() - ids)
            .collect();
        if !extreme.is_empty() {
            let named: Vec<String> = extreme
                .iter()
                .take(5)
                .map(|e| {
                    format!(
                        "`{}` (|z| = {:.0} at line {})",
                        names[e.column],
                        e.max_abs_z,
                        line_of(&rows.train, e.row)
                    )
                })
                .collect();
            warn(
                warnings,
                format!(
                    "feature columns with extreme values (|z| > {EXTREME_Z} on the training rows): \
                     {}{}; they reach the model at full size: consider data.feature_scaling = \
                     \"clip\" (or \"robust\")",
                    named.join(", "),
                    if extreme.len() > 5 { ", ..." } else { "" }
                ),
            );
        }
    }
    let scaler = scaling
        .map(|scaling| Standardizer::fit_with(&train, scaling)?.keep_last(ids))
        .transpose()?;
    let (train, val, test) = match &scaler {
        Some(s) => (
            s.apply_owned(train)?,
            s.apply_owned(val)?,
            s.apply_owned(test)?,
        ),
        None => (train, val, test),
    };
    let (train, val, test) = if cfg.data.standardize_targets() {
        let s = TargetStandardizer::fit(&train);
        (
            s.apply_owned(train)?,
            s.apply_owned(val)?,
            s.apply_owned(test)?,
        )
    } else {
        (train, val, test)
    };
    let input = encoder.embedding_input();
    let prep = preprocessing(&train, &cfg.data.targets, encoder, scaler)?;
    let targets: Vec<&TargetConfig> = cfg.data.targets.iter().collect();
    eprintln!(
        "{}: {} train / {} validation / {} test rows, {} columns as {} features ({} embedded), \
         tasks {:?}, method {}",
        csv.display(),
        train.len(),
        val.len(),
        test.len(),
        summary.columns.len(),
        input.out_dim(),
        input.tables.len(),
        train.task_names(),
        cfg.train.method
    );

    let mut spec = model_spec(cfg, &train, &targets);
    if !input.tables.is_empty() {
        // The architecture reads the numbers and the embeddings.
        spec.architecture = mlp_arch(cfg, input.out_dim(), spec.heads.len());
        spec.input = Some(input);
    }
    Ok(Prepared {
        train,
        validation: val,
        test,
        spec,
        preprocessing: prep,
        all_metrics: false,
    })
}

/// Reads the arrays of an `.npz` or safetensors file and splits them with the CSV
/// path's rule, fractions and seed. Features and targets are used as they are.
fn prepare_arrays(
    cfg: &RunConfig,
    file: &Path,
    input: InputKind,
) -> Result<Prepared<TensorDataset>> {
    let loaded = crate::tensor_input::load(cfg, file, input)?;
    seed_everything(cfg.train.seed);
    let split = loaded
        .data
        .split(cfg.data.validation, cfg.data.test, cfg.train.seed)?;
    // One forward and loss on two rows before any training: a shape or dtype the
    // model or a head cannot take is an error now, naming the task, not after an
    // epoch's work.
    let probe = MultiTaskModel::from_spec(&loaded.spec, tch::Device::Cpu)?;
    let rows: Vec<usize> = (0..JointData::len(&split.train).min(2)).collect();
    evaluate(&probe, &split.train.subset(&rows)?, 2)?;
    let shape = split.train.features().size();
    eprintln!(
        "{}: {} train / {} validation / {} test rows, features {:?}, tasks {:?}, method {}",
        file.display(),
        JointData::len(&split.train),
        JointData::len(&split.validation),
        JointData::len(&split.test),
        &shape[1..],
        JointData::task_names(&split.train),
        cfg.train.method
    );
    let dense = loaded.spec.heads.iter().any(|h| {
        matches!(
            h,
            HeadSpec::Segmentation { .. } | HeadSpec::Depth { .. } | HeadSpec::Normals { .. }
        )
    });
    Ok(Prepared {
        train: split.train,
        validation: split.validation,
        test: split.test,
        spec: loaded.spec,
        // Arrays carry no column names or scalers; each task's outputs are its own.
        preprocessing: Preprocessing {
            targets: vec![TargetEncoding::Identity; cfg.data.targets.len()],
            ..Default::default()
        },
        all_metrics: dense,
    })
}

/// Trains the model on prepared data, evaluates it on the test part, trains the
/// baselines when asked, and writes the report, the plots and the bundle: the same for
/// table rows and for tensors. `shared` holds baselines an earlier run trained.
#[allow(clippy::too_many_arguments)]
fn train_and_report<D: OnlyTask>(
    mut cfg: RunConfig,
    config_path: &Path,
    overrides: &Overrides,
    out: Outputs,
    p: Prepared<D>,
    mut warnings: Vec<String>,
    group: Option<SharedGroup>,
    shared: Option<Baselines>,
) -> Result<RunOutcome> {
    let Outputs {
        dir: out_dir,
        report: report_path,
        baselines: baselines_path,
        bundle: bundle_dir,
    } = out;
    let Prepared {
        train,
        validation: val,
        test,
        spec,
        preprocessing: prep,
        all_metrics,
    } = p;
    let validation = (!JointData::is_empty(&val)).then_some(&val);
    seed_everything(cfg.train.seed);
    let mut model = build_from_spec(&cfg, &spec)?;
    let pretrained = cfg
        .model
        .pretrained
        .as_ref()
        .map(|p| (p.resolve(config_path), p.options()));
    if let Some((path, opts)) = &pretrained {
        let report = model.load_pretrained(path, opts)?;
        eprintln!("{}: {report}", path.display());
    }
    if cfg.output.tensorboard || cfg.output.metrics_csv {
        cfg.train.tracking = Some(TrackingConfig {
            dir: out_dir.clone(),
            tensorboard: cfg.output.tensorboard,
            csv: cfg.output.metrics_csv,
            every_steps: cfg.output.log_every_steps,
        });
    }
    let loop_warnings = Arc::new(Mutex::new(Vec::new()));
    let mut trainer = Trainer::new(cfg.train.clone())?
        .observe(Warnings(loop_warnings.clone()))
        .preprocessing(data_settings(&cfg)?)
        .force_resume(overrides.force_resume);
    if let Some(r) = &overrides.resume {
        trainer = trainer.resume_from(r);
    }
    if let Some(g) = group {
        trainer = trainer.distributed(g);
    }
    let mut report = trainer.fit(&mut model, &train, validation)?;
    warnings.extend(loop_warnings.lock().map(|w| w.clone()).unwrap_or_default());

    if !JointData::is_empty(&test) {
        let test_eval: Evaluation = evaluate(&model, &test, 256)?;
        let trained = if cfg.output.baselines {
            Some(trainer.fit_baselines(
                |k, _single| {
                    seed_everything(cfg.train.seed);
                    let model = build_from_spec(&cfg, &spec.only_task(k)?)?;
                    if let Some((path, opts)) = &pretrained {
                        // Task k's baseline is task 0 of its own model: only the shared
                        // weights carry over, not another task's head.
                        let shared: Vec<(String, tch::Tensor)> =
                            mtl::core::pretrained::read_weights(path)?
                                .into_iter()
                                .filter(|(n, _)| !is_task_specific(&opts.map_name(n)))
                                .collect();
                        mtl::core::pretrained::load_tensors(
                            model.var_store(),
                            &shared,
                            &opts.clone().strict(false),
                            path,
                        )?;
                    }
                    Ok(model)
                },
                &train,
                validation,
                &test,
            )?)
        } else {
            None
        };
        let fresh = trained.is_some();
        if let Some(baselines) = trained.or(shared) {
            if baselines.test.len() != test_eval.tasks.len()
                || baselines
                    .test
                    .iter()
                    .zip(&test_eval.tasks)
                    .any(|(b, t)| !b.tasks.contains(t))
            {
                let theirs: Vec<&String> = baselines.test.iter().flat_map(|b| &b.tasks).collect();
                return Err(Error::config(format!(
                    "the baselines evaluate tasks {theirs:?}, this run's are {:?}",
                    test_eval.tasks
                )));
            }
            // Dense tasks report several metrics each (mIoU and pixel accuracy; abs and
            // rel error; angle statistics): Δm averages over all of them, as LibMTL does.
            // A metric a baseline scored exactly 0 on (no pixel within 11.25° after a
            // short run) has no relative change; Δm then falls back to each task's
            // primary metric rather than losing the trained run.
            let all = all_metrics
                .then(|| DeltaM::compute_all_metrics(&test_eval, &baselines.test))
                .and_then(|d| match d {
                    Ok(d) => Some(d),
                    Err(e) => {
                        warn(
                            &mut warnings,
                            format!(
                                "Δm over every metric: {e}; Δm is over each task's primary metric"
                            ),
                        );
                        None
                    }
                });
            match all {
                Some(delta) => {
                    report.test = Some(test_eval);
                    report.delta_m = Some(delta);
                }
                None => {
                    report.compare_to_baselines(test_eval, &baselines)?;
                }
            }
            if fresh {
                let text = serde_json::to_string_pretty(&baselines)
                    .map_err(|e| Error::config(format!("baselines are not serialisable: {e}")))?;
                files::write_atomically(&baselines_path, text.as_bytes())?;
            }
        } else {
            report.test = Some(test_eval);
        }
    }

    report.save(&report_path)?;
    let mut written = vec![report_path];
    if cfg.output.metrics_csv {
        written.push(mtl::MetricsWriter::steps_path(&out_dir));
        written.push(mtl::MetricsWriter::epochs_path(&out_dir));
    }
    if cfg.output.tensorboard {
        let mut events: Vec<PathBuf> = std::fs::read_dir(&out_dir)
            .map_err(|source| Error::Io {
                path: out_dir.clone(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().contains("tfevents"))
            .collect();
        events.sort();
        written.extend(events);
    }
    // The trained model with what `mtl predict` needs to read raw rows.
    model.set_preprocessing(prep)?;
    written.extend(Bundle::save(&bundle_dir, &model, &report.method)?);
    if cfg.output.plots {
        written.extend(report.write_plots(&out_dir)?);
    }
    Ok(RunOutcome {
        report,
        out_dir,
        files: written,
        warnings,
    })
}

/// Prints the training loop's warnings as they come, and keeps them for the outcome.
struct Warnings(Arc<Mutex<Vec<String>>>);

impl TrainingObserver for Warnings {
    fn warning(&mut self, message: &str) {
        eprintln!("warning: {message}");
        if let Ok(mut w) = self.0.lock() {
            w.push(message.to_string());
        }
    }
}

/// Prints and records a warning.
fn warn(warnings: &mut Vec<String>, message: String) {
    eprintln!("warning: {message}");
    warnings.push(message);
}

/// What to read from the CSV file.
fn csv_spec(cfg: &RunConfig) -> Result<CsvSpec> {
    Ok(CsvSpec {
        targets: cfg
            .data
            .targets
            .iter()
            .map(|t| -> Result<CsvTarget> {
                // `check` allows only the kinds a CSV column holds.
                let kind = t.kind.csv_kind().ok_or_else(|| {
                    Error::config(format!(
                        "target `{}`: kind = \"{}\" is not a CSV column's",
                        t.source(),
                        t.kind.name()
                    ))
                })?;
                let mut target = CsvTarget::named(t.source().to_string(), t.task_name(), kind);
                if let Some(classes) = t.class_labels() {
                    target = target.with_classes(classes.iter().map(|c| c.text()));
                }
                if let Some(positive) = &t.positive {
                    target = target.with_positive(positive.iter().cloned());
                }
                Ok(target.with_first_class(t.first_class.unwrap_or(0)))
            })
            .collect::<Result<_>>()?,
        features: match &cfg.data.features {
            Some(crate::config::FeaturesConfig::Columns(c)) => Some(c.clone()),
            _ => None,
        },
        exclude: cfg.data.exclude.clone(),
        header: cfg.data.header.clone(),
        headerless: cfg.data.headerless,
        categorical: cfg.data.categorical.clone(),
        numeric: cfg.data.numeric.clone(),
        missing: cfg.data.missing.into(),
        na_values: cfg.data.na_values.clone(),
    })
}

/// Says which columns were left out and which values were filled or dropped.
fn describe_columns(csv: &Path, summary: &CsvSummary) {
    eprintln!("{}: feature columns:", csv.display());
    for column in &summary.columns {
        eprintln!("  {}", column.describe());
    }
    for (name, n) in &summary.missing {
        eprintln!("{}: {n} missing values in `{name}`", csv.display());
    }
    if summary.dropped_rows > 0 {
        eprintln!(
            "{}: left out {} rows with missing feature values",
            csv.display(),
            summary.dropped_rows
        );
    }
}

/// Without declared classes, a class target's classes are those of the training rows:
/// a label that occurs only in `part` (validation or test) is one the head never learns,
/// an error naming its line and value. `line` maps a row of `part` to its file line.
fn check_classes_seen_in_training(
    cfg: &RunConfig,
    csv: &Path,
    train: &MultiTaskDataset,
    part: &MultiTaskDataset,
    line: impl Fn(usize) -> u64,
) -> Result<()> {
    for (k, target) in cfg.data.targets.iter().enumerate() {
        if target.class_labels().is_some() {
            continue;
        }
        let (TargetData::Classes { labels, classes }, TargetData::Classes { labels: seen, .. }) =
            (&part.tasks()[k].data, &train.tasks()[k].data)
        else {
            continue;
        };
        let mut in_train = vec![false; *classes];
        for (r, &l) in seen.iter().enumerate() {
            if train.tasks()[k].is_labelled(r) {
                in_train[l as usize] = true;
            }
        }
        let unseen = labels
            .iter()
            .enumerate()
            .find(|&(r, &l)| part.tasks()[k].is_labelled(r) && !in_train[l as usize]);
        if let Some((r, &l)) = unseen {
            let value = match part.class_names(k) {
                Some(names) => names[l as usize].clone(),
                None => (l + target.first_class.unwrap_or(0)).to_string(),
            };
            return Err(Error::Parse {
                path: csv.to_path_buf(),
                line: line(r),
                message: format!(
                    "column `{}`: label `{value}` does not occur in the training rows, so the \
                     head would never learn it; declare the target's classes to keep it",
                    target.source()
                ),
            });
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::is_task_specific;

    #[test]
    fn task_specific_names_have_a_task_component() {
        assert!(is_task_specific("task0.head.weight"));
        assert!(is_task_specific("towers.task12.0.bias"));
        assert!(!is_task_specific("trunk.0.weight"));
        assert!(!is_task_specific("taskbar.w"));
        assert!(!is_task_specific("task.w"));
    }
}
