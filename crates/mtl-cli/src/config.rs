//! The run configuration file (TOML or JSON): where the data is and which columns are
//! tasks, the hard-sharing architecture, and the trainer settings, which are
//! [`TrainerConfig`] itself, so every trainer option is available under `[train]`.

use mtl::core::{Error, Result};
use mtl::data::{FeatureScaling, MissingValues, TargetKind, DEFAULT_CLIP};
use mtl::heads::RegressionLoss;
use mtl::TrainerConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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

/// The hard-sharing MLP trunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Hidden layer widths of the shared trunk (the heads read the last).
    #[serde(default = "default_hidden")]
    pub hidden: Vec<i64>,
    /// Dropout after each hidden layer.
    #[serde(default)]
    pub dropout: f64,
}

fn default_hidden() -> Vec<i64> {
    vec![64, 32]
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            hidden: default_hidden(),
            dropout: 0.0,
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
    /// Reads a config file: JSON for a `.json` extension, TOML otherwise.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let parse_error = |line: u64, message: String| Error::Parse {
            path: path.to_path_buf(),
            line,
            message,
        };
        let cfg: RunConfig = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| parse_error(e.line() as u64, e.to_string()))?
        } else {
            toml::from_str(&text).map_err(|e| {
                let line = e
                    .span()
                    .map(|s| text[..s.start.min(text.len())].lines().count().max(1) as u64)
                    .unwrap_or(1);
                parse_error(line, e.message().to_string())
            })?
        };
        cfg.check()?;
        Ok(cfg)
    }

    /// Checks what serde cannot: at least one target, sensible fractions and widths.
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
        if self.model.hidden.is_empty() || self.model.hidden.iter().any(|&w| w < 1) {
            return Err(Error::config(format!(
                "model.hidden must list positive widths, got {:?}",
                self.model.hidden
            )));
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
            if t.loss.is_some() && t.kind != TargetKindConfig::Regression {
                return Err(Error::config(format!(
                    "target `{}`: a loss is only chosen for regression targets",
                    t.column
                )));
            }
        }
        Ok(())
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
