//! The run configuration file (TOML or JSON): where the data is and which columns are
//! tasks, the hard-sharing architecture, and the trainer settings, which are
//! [`TrainerConfig`] itself, so every trainer option is available under `[train]`.
//!
//! Reading is strict: a key that is not a setting, in any table or nested table, is an
//! error naming the key, its table and the closest valid key (`momentm` → `momentum`,
//! `learning_rate` under `[train]` → `optimizer.lr`), rather than a setting silently
//! ignored; and every value's range is checked before any data is read.

use mtl::core::{Error, Init, Result};
use mtl::data::{FeatureScaling, MissingValues, TargetKind, DEFAULT_CLIP, MAX_CLASSES};
use mtl::heads::RegressionLoss;
use mtl::TrainerConfig;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The widest hidden layer a config may ask for (a typo such as `hidden = [640000000]`
/// would otherwise try to allocate gigabytes before failing).
pub const MAX_WIDTH: i64 = 1 << 20;

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The data source and its split.
    pub data: DataConfig,
    /// The shared trunk.
    #[serde(default)]
    pub model: ModelConfig,
    /// The trainer: epochs, batch size, method, optimiser, schedule, early stopping...
    #[serde(default)]
    pub train: TrainerConfig,
    /// What to write besides the report.
    #[serde(default)]
    pub output: OutputConfig,
}

/// A CSV file with one column per task target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// The CSV file. A relative path is looked up beside the config file first, then
    /// under the data directory (`$MTL_DATA_DIR`, the repository's `data/`...).
    pub csv: PathBuf,
    /// The task targets, in task order.
    pub targets: Vec<TargetConfig>,
    /// The feature columns; all other numeric columns when left out.
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// Columns never used as features.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Column names replacing the file's header line (for a header that does not match
    /// its rows).
    #[serde(default)]
    pub header: Option<Vec<String>>,
    /// The validation fraction.
    #[serde(default = "default_fraction")]
    pub validation: f64,
    /// The test fraction.
    #[serde(default = "default_fraction")]
    pub test: f64,
    /// Scale the features with statistics of the training rows (`false`: leave them as
    /// they are, whatever `feature_scaling` says).
    #[serde(default = "yes")]
    pub standardize: bool,
    /// How to scale the features: `"standard"` (mean and deviation, the default),
    /// `"robust"` (median and interquartile range), `"clip"` (standard, then clipped to
    /// ±`clip_at`) or `"none"`.
    #[serde(default)]
    pub feature_scaling: Option<FeatureScalingConfig>,
    /// The bound of `feature_scaling = "clip"`, in standard deviations.
    #[serde(default = "default_clip")]
    pub clip_at: f64,
    /// Standardise each regression target with its training rows' mean and deviation:
    /// the heads train on standardised targets, and metrics are reported in the
    /// original units.
    #[serde(default = "yes")]
    pub standardize_targets: bool,
    /// A missing feature value (an empty cell or one of `na_values`): `"error"` (the
    /// default), `"drop_rows"` or `"mean"` (the column's mean over the file).
    #[serde(default)]
    pub missing: MissingConfig,
    /// Cell texts that mean a missing value, besides the empty cell (`["NA", "?"]`).
    #[serde(default)]
    pub na_values: Vec<String>,
}

fn default_clip() -> f64 {
    f64::from(DEFAULT_CLIP)
}

/// How the features are scaled (`data.feature_scaling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureScalingConfig {
    /// Left as they are.
    None,
    /// Mean and standard deviation.
    Standard,
    /// Median and interquartile range.
    Robust,
    /// Standard, then clipped to ±`clip_at`.
    Clip,
}

/// What a missing feature value does (`data.missing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingConfig {
    /// An error naming the file, line and column.
    #[default]
    Error,
    /// Rows with a missing feature value are left out.
    DropRows,
    /// Filled with the column's mean.
    Mean,
}

impl From<MissingConfig> for MissingValues {
    fn from(m: MissingConfig) -> Self {
        match m {
            MissingConfig::Error => MissingValues::Error,
            MissingConfig::DropRows => MissingValues::DropRows,
            MissingConfig::Mean => MissingValues::FillMean,
        }
    }
}

/// A declared class: a name, or an integer code as the file writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClassLabel {
    /// An integer code.
    Code(i64),
    /// A name.
    Name(String),
}

impl ClassLabel {
    /// The label as the file's cells write it.
    pub fn text(&self) -> String {
        match self {
            ClassLabel::Code(c) => c.to_string(),
            ClassLabel::Name(n) => n.clone(),
        }
    }
}

impl DataConfig {
    /// The feature scaling to fit on the training rows, `None` for none.
    pub fn feature_scaling(&self) -> Option<FeatureScaling> {
        if !self.standardize {
            return None;
        }
        match self
            .feature_scaling
            .unwrap_or(FeatureScalingConfig::Standard)
        {
            FeatureScalingConfig::None => None,
            FeatureScalingConfig::Standard => Some(FeatureScaling::Standard),
            FeatureScalingConfig::Robust => Some(FeatureScaling::Robust),
            FeatureScalingConfig::Clip => Some(FeatureScaling::Clip {
                at: self.clip_at as f32,
            }),
        }
    }
}

fn default_fraction() -> f64 {
    0.2
}
fn yes() -> bool {
    true
}

/// How a target column is read, and so which head predicts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKindConfig {
    /// Class labels (integers or names): a softmax classification head.
    Classes,
    /// 0/1 labels: a sigmoid binary head.
    Binary,
    /// A real number: a regression head.
    Regression,
}

impl From<TargetKindConfig> for TargetKind {
    fn from(k: TargetKindConfig) -> Self {
        match k {
            TargetKindConfig::Classes => TargetKind::Classes,
            TargetKindConfig::Binary => TargetKind::Binary,
            TargetKindConfig::Regression => TargetKind::Regression,
        }
    }
}

/// One task: a target column and its head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// The column in the CSV header.
    pub column: String,
    /// The task name (the column's when left out).
    #[serde(default)]
    pub name: Option<String>,
    /// How the column is read.
    pub kind: TargetKindConfig,
    /// The regression loss (regression targets only; MSE when left out).
    #[serde(default)]
    pub loss: Option<RegressionLoss>,
    /// For integer class codes that do not start at 0: the code of the first class
    /// (1 for codes 1..=n), so the head has exactly n classes.
    #[serde(default)]
    pub first_class: Option<i64>,
    /// The classes of a class target, in class order (names, or codes as the file
    /// writes them): the head has exactly these, and any other label is an error naming
    /// its line. Left out: the file's codes (which must run without gaps) or names, and
    /// every label in the validation and test rows must occur in the training rows.
    #[serde(default)]
    pub classes: Option<Vec<ClassLabel>>,
}

/// How the tasks share the network (`[model] arch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchKind {
    /// One MLP trunk of `hidden` shared by every task.
    #[default]
    HardSharing,
    /// Multi-gate mixture of experts: `experts` MLPs of `hidden`, one gate per task.
    Mmoe,
    /// Cross-stitch networks: one tower per task, one stage per width of `hidden`,
    /// a learned unit mixing the towers after each stage.
    CrossStitch,
}

/// The network: the architecture and its sizes, with one head per target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// How the tasks share the network: `"hard_sharing"` (the default), `"mmoe"` or
    /// `"cross_stitch"`.
    #[serde(default)]
    pub arch: ArchKind,
    /// Hidden layer widths: of the shared trunk (the heads read the last), of each
    /// MMoE expert, or of the cross-stitch stages (one layer each).
    #[serde(default = "default_hidden")]
    pub hidden: Vec<i64>,
    /// MMoE only: the number of experts (8 by default).
    #[serde(default)]
    pub experts: Option<usize>,
    /// Cross-stitch only: each unit's initial weight on its own task (0.9 by default).
    #[serde(default)]
    pub alpha_self: Option<f64>,
    /// Dropout after each hidden layer.
    #[serde(default)]
    pub dropout: f64,
    /// How the trunk's layers start: `"pytorch"` (the default, as `torch.nn.Linear`),
    /// `"kaiming_relu"`, `"xavier_uniform"`, `"zeros"` or `{ uniform = { bound = … } }`.
    #[serde(default)]
    pub init: Init,
    /// How the heads start, when not as the trunk (e.g. `"zeros"`).
    #[serde(default)]
    pub head_init: Option<Init>,
    /// Weights to start from, loaded by name after the model is built (see
    /// [`PretrainedConfig`]).
    #[serde(default)]
    pub pretrained: Option<PretrainedConfig>,
}

/// `[model] pretrained = { path = "encoder.safetensors", rename = [["encoder.",
/// "trunk."]], skip = ["classifier."], strict = false }`: a safetensors file (or tch
/// archive) loaded into the model by name, as [`mtl::LoadOptions`] describes: the
/// first matching `(from, to)` prefix rename applies, `skip` leaves out the file's
/// names with those prefixes, and `strict` (the default, as PyTorch's
/// `load_state_dict`) refuses a model variable the file lacks or a file tensor the
/// model lacks. A shape mismatch is always refused. The single-task baselines load the
/// file's shared weights (after renaming, the names without a `task<k>` component),
/// not strictly, so Δm compares runs from the same trunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainedConfig {
    /// The weights file; a relative path is looked up beside the config file.
    pub path: PathBuf,
    /// `(from, to)` prefix renames of the file's names.
    #[serde(default)]
    pub rename: Vec<(String, String)>,
    /// Prefixes of the file's names to leave out.
    #[serde(default)]
    pub skip: Vec<String>,
    /// Refuse anything missing or unexpected (true when left out).
    #[serde(default = "yes")]
    pub strict: bool,
}

impl PretrainedConfig {
    /// The load options these settings describe.
    pub fn options(&self) -> mtl::LoadOptions {
        mtl::LoadOptions {
            rename: self.rename.clone(),
            skip: self.skip.clone(),
            strict: self.strict,
        }
    }

    /// The file: as given when absolute, else beside the config file.
    pub fn resolve(&self, config_path: &Path) -> PathBuf {
        match config_path.parent() {
            Some(dir) if self.path.is_relative() => dir.join(&self.path),
            _ => self.path.clone(),
        }
    }
}

fn default_hidden() -> Vec<i64> {
    vec![64, 32]
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            arch: ArchKind::default(),
            hidden: default_hidden(),
            experts: None,
            alpha_self: None,
            dropout: 0.0,
            init: Init::default(),
            head_init: None,
            pretrained: None,
        }
    }
}

/// Outputs besides `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// The output directory (`runs/<config file stem>` when left out).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Write PNG plots.
    #[serde(default = "yes")]
    pub plots: bool,
    /// Train single-task baselines and report Δm against them.
    #[serde(default)]
    pub baselines: bool,
    /// Write TensorBoard event files of per-step and per-epoch metrics beside the
    /// report (`tensorboard --logdir <dir>`).
    #[serde(default)]
    pub tensorboard: bool,
    /// Write `metrics.csv` (per step) and `epochs.csv` (per epoch) beside the report.
    #[serde(default)]
    pub metrics_csv: bool,
    /// Log every N-th step to those files (epochs are always logged).
    #[serde(default = "one")]
    pub log_every_steps: u64,
}

fn one() -> u64 {
    1
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            dir: None,
            plots: true,
            baselines: false,
            tensorboard: false,
            metrics_csv: false,
            log_every_steps: 1,
        }
    }
}

impl RunConfig {
    /// Reads a config file: JSON for a `.json` extension, TOML otherwise (see
    /// [`RunConfig::parse`]), and checks it.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let cfg = Self::parse(&text, path)?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Parses config text, JSON when `path` ends in `.json` and TOML otherwise (`path`
    /// only names the file in errors). An unknown key anywhere is an [`Error::Parse`]
    /// naming the key, its table and the closest valid key.
    ///
    /// ```
    /// use mtl_cli::RunConfig;
    /// use std::path::Path;
    /// let text = "[data]\ncsv = \"d.csv\"\ntargets = [{ column = \"y\", kind = \"classes\" }]\n\
    ///             [train]\noptimizer = { kind = \"sgd\", lr = 0.1, momentm = 0.9 }\n";
    /// let err = RunConfig::parse(text, Path::new("run.toml")).unwrap_err().to_string();
    /// assert!(err.starts_with("run.toml:5: unknown key `momentm` in [train.optimizer]"), "{err}");
    /// assert!(err.contains("did you mean `momentum`?"), "{err}");
    /// ```
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let parse_error = |line: usize, message: String| Error::Parse {
            path: path.to_path_buf(),
            line: line as u64,
            message,
        };
        if path.extension().is_some_and(|e| e == "json") {
            // serde_json appends the position, which the error's line replaces.
            let json_error = |table: &str, e: serde_json::Error| {
                let message = e.to_string();
                let message = match message.rfind(" at line ") {
                    Some(at) => &message[..at],
                    None => &message,
                };
                parse_error(e.line().max(1), explain(table, message))
            };
            let mut de = serde_json::Deserializer::from_str(text);
            let cfg = serde_path_to_error::deserialize::<_, RunConfig>(&mut de)
                .map_err(|e| json_error(&e.path().to_string(), e.into_inner()))?;
            de.end().map_err(|e| json_error("", e))?;
            return Ok(cfg);
        }
        let line_of = |e: &toml::de::Error| {
            e.span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(1)
        };
        let de = toml::Deserializer::parse(text)
            .map_err(|e| parse_error(line_of(&e), e.message().to_string()))?;
        serde_path_to_error::deserialize::<_, RunConfig>(de).map_err(|e| {
            let table = e.path().to_string();
            let inner = e.into_inner();
            parse_error(line_of(&inner), explain(&table, inner.message()))
        })
    }

    /// Checks what serde cannot, before any data is read: at least one target, sensible
    /// fractions, widths and class codes, and every trainer setting's range
    /// ([`TrainerConfig::check`]).
    pub fn check(&self) -> Result<()> {
        if self.data.targets.is_empty() {
            return Err(Error::config("data.targets must name at least one column"));
        }
        let (v, t) = (self.data.validation, self.data.test);
        if !(0.0..1.0).contains(&v) || !(0.0..1.0).contains(&t) || v + t >= 1.0 {
            return Err(Error::config(format!(
                "data.validation ({v}) and data.test ({t}) must be fractions leaving rows to train on"
            )));
        }
        if self.model.hidden.is_empty()
            || self
                .model
                .hidden
                .iter()
                .any(|&w| !(1..=MAX_WIDTH).contains(&w))
        {
            return Err(Error::config(format!(
                "model.hidden must list widths from 1 to {MAX_WIDTH}, got {:?}",
                self.model.hidden
            )));
        }
        self.model.init.check()?;
        if let Some(init) = self.model.head_init {
            init.check()?;
        }
        if let Some(p) = &self.model.pretrained {
            if p.path.as_os_str().is_empty() {
                return Err(Error::config("model.pretrained.path is empty"));
            }
            p.options()
                .check()
                .map_err(|e| Error::config(format!("model.pretrained: {e}")))?;
        }
        match (self.model.arch, self.model.experts, self.model.alpha_self) {
            (ArchKind::Mmoe, Some(0), _) => {
                return Err(Error::config("model.experts must be at least 1"));
            }
            (ArchKind::CrossStitch, _, Some(a)) if !(0.0..=1.0).contains(&a) => {
                return Err(Error::config(format!(
                    "model.alpha_self must be in [0, 1], got {a}"
                )));
            }
            (arch, Some(_), _) if arch != ArchKind::Mmoe => {
                return Err(Error::config(
                    "model.experts is a setting of arch = \"mmoe\"",
                ));
            }
            (arch, _, Some(_)) if arch != ArchKind::CrossStitch => {
                return Err(Error::config(
                    "model.alpha_self is a setting of arch = \"cross_stitch\"",
                ));
            }
            _ => {}
        }
        if !(0.0..1.0).contains(&self.model.dropout) {
            return Err(Error::config(format!(
                "model.dropout must be in [0, 1), got {}",
                self.model.dropout
            )));
        }
        if self.output.log_every_steps == 0 {
            return Err(Error::config("output.log_every_steps must be at least 1"));
        }
        let clip = self.data.clip_at;
        if !(clip.is_finite() && clip > 0.0 && clip <= f64::from(f32::MAX)) {
            return Err(Error::config(format!(
                "data.clip_at must be positive and finite, got {clip}"
            )));
        }
        if let (false, Some(s)) = (self.data.standardize, self.data.feature_scaling) {
            if s != FeatureScalingConfig::None {
                return Err(Error::config(format!(
                    "data.standardize = false turns feature scaling off, but \
                     data.feature_scaling asks for {s:?}; keep one of them"
                )));
            }
        }
        for t in &self.data.targets {
            if t.classes.is_some() && t.kind != TargetKindConfig::Classes {
                return Err(Error::config(format!(
                    "target `{}`: classes are only declared for class targets",
                    t.column
                )));
            }
            if t.classes.is_some() && t.first_class.is_some() {
                return Err(Error::config(format!(
                    "target `{}`: declared classes are already in class order; leave out \
                     first_class",
                    t.column
                )));
            }
            if t.first_class.is_some() && t.kind != TargetKindConfig::Classes {
                return Err(Error::config(format!(
                    "target `{}`: first_class is only for class targets",
                    t.column
                )));
            }
            if let Some(first) = t.first_class {
                // Class codes are non-negative and below the class bound.
                if !(0..MAX_CLASSES as i64).contains(&first) {
                    return Err(Error::config(format!(
                        "target `{}`: first_class must be from 0 to {}, got {first}",
                        t.column,
                        MAX_CLASSES - 1
                    )));
                }
            }
            if t.loss.is_some() && t.kind != TargetKindConfig::Regression {
                return Err(Error::config(format!(
                    "target `{}`: a loss is only chosen for regression targets",
                    t.column
                )));
            }
        }
        self.train.check()?;
        // The method's hyper-parameters are checked now, before any data is read: the
        // task count is the number of targets.
        mtl::losses::by_name_with(
            &self.train.method,
            self.data.targets.len().max(1),
            self.train.seed,
            &self.train.method_params,
        )
        .map(drop)
    }

    /// The CSV file: beside the config file, else under the data directory.
    pub fn csv_path(&self, config_path: &Path) -> PathBuf {
        let csv = &self.data.csv;
        if csv.is_absolute() {
            return csv.clone();
        }
        let beside = config_path
            .parent()
            .map(|d| d.join(csv))
            .unwrap_or_else(|| csv.clone());
        if beside.exists() {
            return beside;
        }
        let in_data = mtl::data::data_dir().join(csv);
        if in_data.exists() {
            in_data
        } else {
            beside
        }
    }
}

/// "in [table]" for a dotted path, "at the top level" for the root.
fn table_name(table: &str) -> String {
    if table.is_empty() || table == "." {
        "at the top level".into()
    } else {
        format!("in [{table}]")
    }
}

/// The names between backticks in `text`, in order.
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// Rewrites serde's "unknown field" and "unknown variant" messages to name the table
/// and suggest the closest valid name; other messages gain the table they arose in.
fn explain(table: &str, message: &str) -> String {
    let (what, rest) = if let Some(rest) = message.strip_prefix("unknown field ") {
        ("key", rest)
    } else if let Some(rest) = message.strip_prefix("unknown variant ") {
        ("value", rest)
    } else if table.is_empty() || table == "." {
        return message.to_string();
    } else {
        return format!("{message} ({})", table_name(table));
    };
    let names = backticked(rest);
    let Some((&unknown, valid)) = names.split_first() else {
        return format!("{message} ({})", table_name(table));
    };
    // The error's path ends with the key itself when serde saw it as a map key (plain
    // structs), or with the key whose value is unknown (enum variants); it stops at the
    // table for internally tagged enums.
    let (parent, last) = match table.rfind('.') {
        Some(at) => (&table[..at], &table[at + 1..]),
        None => ("", table),
    };
    let table = if what == "key" && last == unknown {
        parent
    } else {
        table
    };
    let mut text = if what == "value" && !last.is_empty() && !last.ends_with(']') {
        format!(
            "unknown value `{unknown}` for `{last}` {}",
            table_name(parent)
        )
    } else {
        format!("unknown {what} `{unknown}` {}", table_name(table))
    };
    let suggestion = closest(unknown, valid).map(str::to_string).or_else(|| {
        (what == "key")
            .then(|| nested_suggestion(table, unknown))
            .flatten()
    });
    if let Some(s) = suggestion {
        text += &format!("; did you mean `{s}`?");
    }
    if valid.is_empty() {
        text += " (it takes no keys)";
    } else {
        let kind = if what == "key" { "keys" } else { "values" };
        text += &format!(" (valid {kind}: {})", valid.join(", "));
    }
    text
}

/// The valid name closest to `name`: the same up to case and `-`/`_`, its initials
/// (`learning_rate` → `lr`), or within a small edit distance (`momentm` → `momentum`).
fn closest<'a>(name: &str, valid: &[&'a str]) -> Option<&'a str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let name = norm(name);
    let initials = |s: &str| -> String { s.split('_').filter_map(|w| w.chars().next()).collect() };
    if let Some(v) = valid.iter().find(|v| norm(v) == name) {
        return Some(v);
    }
    if let Some(v) = valid
        .iter()
        .find(|v| name.contains('_') && initials(&name) == norm(v))
    {
        return Some(v);
    }
    // An abbreviation (`param` → `parameters`) names one valid key.
    let mut extending = valid
        .iter()
        .filter(|v| name.len() >= 3 && norm(v).starts_with(&name));
    if let (Some(v), None) = (extending.next(), extending.next()) {
        return Some(v);
    }
    valid
        .iter()
        .map(|v| (strsim::damerau_levenshtein(&name, &norm(v)), *v))
        .filter(|(d, v)| *d <= (v.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

/// The keys of the tables nested in `table`, found by asking serde for the fields of a
/// probe (so the list follows the types): a key misplaced one level too high, such as
/// `lr` or `learning_rate` directly under `[train]`, is pointed to its table.
fn nested_suggestion(table: &str, name: &str) -> Option<String> {
    let nested: Vec<(&str, Vec<String>)> = match table {
        "" | "." => vec![
            ("data", fields_of::<DataConfig>("{}")),
            ("model", fields_of::<ModelConfig>("{}")),
            ("train", fields_of::<TrainerConfig>("{}")),
            ("output", fields_of::<OutputConfig>("{}")),
        ],
        "train" => {
            let mut optimizer = fields_of::<mtl::core::OptimizerConfig>(r#""kind":"sgd","#);
            optimizer.extend(fields_of::<mtl::core::OptimizerConfig>(r#""kind":"adam","#));
            optimizer.sort();
            optimizer.dedup();
            vec![
                ("optimizer", optimizer),
                ("early_stopping", fields_of::<mtl::EarlyStopping>("{}")),
                ("checkpoint", fields_of::<mtl::CheckpointPolicy>("{}")),
                ("diagnostics", fields_of::<mtl::DiagnosticsConfig>("{}")),
                ("divergence", fields_of::<mtl::DivergenceGuard>("{}")),
            ]
        }
        _ => Vec::new(),
    };
    nested.iter().find_map(|(child, keys)| {
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        closest(name, &keys).map(|k| format!("{child}.{k}"))
    })
}

/// The field names serde expects for `T`, from the error of a probe with one unknown
/// key (`prefix` holds what must come first, such as an enum's tag, or `{}` for none).
fn fields_of<T: DeserializeOwned>(prefix: &str) -> Vec<String> {
    let prefix = if prefix == "{}" { "" } else { prefix };
    let probe = format!("{{{prefix}\"@\": 0}}");
    match serde_json::from_str::<T>(&probe) {
        Ok(_) => Vec::new(),
        Err(e) => {
            let message = e.to_string();
            match message.split_once("expected ") {
                Some((_, list)) => backticked(list).into_iter().map(String::from).collect(),
                None => Vec::new(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_names_follow_typos_case_and_initials() {
        let valid = ["lr", "momentum", "nesterov", "weight_decay"];
        assert_eq!(closest("momentm", &valid), Some("momentum"));
        assert_eq!(closest("learning_rate", &valid), Some("lr"));
        assert_eq!(closest("Weight-Decay", &valid), Some("weight_decay"));
        assert_eq!(closest("nest", &valid), Some("nesterov"));
        assert_eq!(closest("loss_weights", &valid), None);
        assert_eq!(closest("x", &valid), None);
    }

    #[test]
    fn misplaced_keys_point_to_their_table() {
        assert_eq!(
            nested_suggestion("train", "learning_rate").as_deref(),
            Some("optimizer.lr")
        );
        assert_eq!(
            nested_suggestion("train", "momentum").as_deref(),
            Some("optimizer.momentum")
        );
        assert_eq!(nested_suggestion("", "csv").as_deref(), Some("data.csv"));
        assert_eq!(nested_suggestion("train", "loss_weights"), None);
        assert!(fields_of::<TrainerConfig>("{}").contains(&"epochs".to_string()));
    }
}
