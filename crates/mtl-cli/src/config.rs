//! The run configuration file (TOML or JSON): where the data is (a CSV file, or the
//! arrays of an `.npz` archive or a safetensors file) and which columns or arrays are
//! tasks, the architecture, and the trainer settings, which are [`TrainerConfig`]
//! itself, so every trainer option is available under `[train]`.
//!
//! Reading is strict: a key that is not a setting, in any table or nested table, is an
//! error naming the key, its table and the closest valid key (`momentm` → `momentum`,
//! `learning_rate` under `[train]` → `optimizer.lr`), rather than a setting silently
//! ignored; and every value's range is checked before any data is read.

use mtl::core::{Error, Init, Result};
use mtl::data::{
    EncoderOptions, FeatureScaling, HighCardinality, MissingValues, TargetKind, DEFAULT_CLIP,
    MAX_CLASSES,
};
use mtl::heads::RegressionLoss;
use mtl::ConvDecoders;
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

/// The data: a CSV file with one column per task target, or a file of named arrays
/// (`npz` or `safetensors`) with one array of features and one per task target.
/// Exactly one of `csv`, `npz` and `safetensors` is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// The CSV file. A relative path is looked up beside the config file first, then
    /// under the data directory (`$MTL_DATA_DIR`, the repository's `data/`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<PathBuf>,
    /// A NumPy `.npz` archive (`np.savez`), looked up as `csv` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npz: Option<PathBuf>,
    /// A safetensors file, looked up as `csv` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safetensors: Option<PathBuf>,
    /// A folder of PNG images in one sub-folder per class (torchvision's
    /// `ImageFolder`), looked up as `csv` is. Its arrays are `image` (the features),
    /// `class` and, with `masks`, `segment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_folder: Option<PathBuf>,
    /// With `image_folder`: a folder of per-pixel label maps (gray PNGs, one class per
    /// pixel) with the images' relative paths, looked up beside the image folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masks: Option<PathBuf>,
    /// The task targets, in task order.
    pub targets: Vec<TargetConfig>,
    /// The features: for a CSV file the feature columns (every other column when left
    /// out: numbers, yes/no and text alike, typed over all rows); for arrays the name of
    /// the features' array (required).
    #[serde(default)]
    pub features: Option<FeaturesConfig>,
    /// Columns never used as features.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// CSV: feature columns read as categories whatever they hold (integer codes such
    /// as an occupation recode); each must be a column of the file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categorical: Vec<String>,
    /// CSV: feature columns that must hold numbers (text in one is an error naming the
    /// line, rather than making the column categorical).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub numeric: Vec<String>,
    /// CSV: the most categories (missing counting as one) a column may have, in the
    /// training rows, to be one-hot encoded (16 when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_hot_max: Option<usize>,
    /// CSV: a column with more categories than `one_hot_max`: `"embed"` (a learned
    /// embedding table in the shared trunk, the default), `"hash"` (the hashing trick
    /// into `hash_buckets` embedding rows) or `"error"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_cardinality: Option<HighCardinality>,
    /// CSV: the width of every categorical embedding (left out: by the column's
    /// category count, `round(1.6 · n^0.56)` from 2 to 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_dim: Option<usize>,
    /// CSV: the buckets of `high_cardinality = "hash"` (1024 when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_buckets: Option<usize>,
    /// Column names replacing the file's header line (for a header that does not match
    /// its rows).
    #[serde(default)]
    pub header: Option<Vec<String>>,
    /// CSV: the file has no header line (its first line is a row); `header` names the
    /// columns.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub headerless: bool,
    /// The validation fraction.
    #[serde(default = "default_fraction")]
    pub validation: f64,
    /// The test fraction.
    #[serde(default = "default_fraction")]
    pub test: f64,
    /// Scale the features with statistics of the training rows (`false`: leave them as
    /// they are, whatever `feature_scaling` says); true when left out. CSV only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standardize: Option<bool>,
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
    /// original units. True when left out; CSV only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standardize_targets: Option<bool>,
    /// A missing number or yes/no (an empty cell or one of `na_values`): `"error"` (the
    /// default), `"drop_rows"`, `"mean"` (the column's mean over the file) or
    /// `"indicator"` (the training rows' mean, and a 0/1 column marking the cell; new
    /// rows with missing values are then accepted at prediction). A missing category is
    /// always a category of its own.
    #[serde(default)]
    pub missing: MissingConfig,
    /// Cell texts that mean a missing value, besides the empty cell (`["NA", "?"]`).
    #[serde(default)]
    pub na_values: Vec<String>,
}

fn default_clip() -> f64 {
    f64::from(DEFAULT_CLIP)
}

/// `data.features`: columns of a CSV file, or the name of an array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FeaturesConfig {
    /// An array's name (`features = "x"`), for `npz` and `safetensors` input.
    Array(String),
    /// CSV feature columns (`features = ["a", "b"]`).
    Columns(Vec<String>),
}

/// Where the data comes from (exactly one of `data.csv`, `data.npz`,
/// `data.safetensors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// A CSV file.
    Csv,
    /// A NumPy `.npz` archive.
    Npz,
    /// A safetensors file.
    Safetensors,
    /// A folder of class sub-folders of PNG images.
    ImageFolder,
}

impl InputKind {
    /// The key that names the file.
    pub fn key(self) -> &'static str {
        match self {
            InputKind::Csv => "csv",
            InputKind::Npz => "npz",
            InputKind::Safetensors => "safetensors",
            InputKind::ImageFolder => "image_folder",
        }
    }
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
    /// Filled with the training mean, marked in an indicator column.
    Indicator,
}

impl From<MissingConfig> for MissingValues {
    fn from(m: MissingConfig) -> Self {
        match m {
            MissingConfig::Error => MissingValues::Error,
            MissingConfig::DropRows => MissingValues::DropRows,
            MissingConfig::Mean => MissingValues::FillMean,
            MissingConfig::Indicator => MissingValues::Indicator,
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
    /// Which input the section names: an error unless exactly one of `csv`, `npz`,
    /// `safetensors` is given.
    pub fn input(&self) -> Result<InputKind> {
        let given: Vec<InputKind> = [
            (self.csv.is_some(), InputKind::Csv),
            (self.npz.is_some(), InputKind::Npz),
            (self.safetensors.is_some(), InputKind::Safetensors),
            (self.image_folder.is_some(), InputKind::ImageFolder),
        ]
        .into_iter()
        .filter_map(|(set, k)| set.then_some(k))
        .collect();
        if self.masks.is_some() && self.image_folder.is_none() {
            return Err(Error::config(
                "data.masks is a setting of image_folder input (label maps beside the images)",
            ));
        }
        match given.as_slice() {
            [one] => Ok(*one),
            [] => Err(Error::config(
                "[data] names no input: give one of csv = \"file.csv\", npz = \"file.npz\", \
                 safetensors = \"file.safetensors\" or image_folder = \"dir\"",
            )),
            many => Err(Error::config(format!(
                "[data] names {} inputs ({}); give exactly one",
                many.len(),
                many.iter().map(|k| k.key()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// The input file as written in the config.
    pub fn input_file(&self) -> Option<&Path> {
        self.csv
            .as_deref()
            .or(self.npz.as_deref())
            .or(self.safetensors.as_deref())
            .or(self.image_folder.as_deref())
    }

    /// How categorical columns are encoded (`one_hot_max`, `high_cardinality`,
    /// `embedding_dim`, `hash_buckets`; defaults for what is left out).
    pub fn encoder_options(&self) -> EncoderOptions {
        let d = EncoderOptions::default();
        EncoderOptions {
            one_hot_max: self.one_hot_max.unwrap_or(d.one_hot_max),
            high_cardinality: self.high_cardinality.unwrap_or(d.high_cardinality),
            embedding_dim: self.embedding_dim.or(d.embedding_dim),
            hash_buckets: self.hash_buckets.unwrap_or(d.hash_buckets),
        }
    }

    /// Whether feature scaling is on (`standardize`, true when left out).
    pub fn standardize(&self) -> bool {
        self.standardize.unwrap_or(true)
    }

    /// Whether regression targets are standardised (true when left out).
    pub fn standardize_targets(&self) -> bool {
        self.standardize_targets.unwrap_or(true)
    }

    /// The feature scaling to fit on the training rows, `None` for none.
    pub fn feature_scaling(&self) -> Option<FeatureScaling> {
        if !self.standardize() {
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

/// How a target column or array is read, and so which head predicts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKindConfig {
    /// Class labels (integers or names): a softmax classification head.
    Classes,
    /// 0/1 labels: a sigmoid binary head.
    Binary,
    /// A real number (or, for arrays, a row of them): a regression head.
    Regression,
    /// Arrays only: a class per pixel, integer `[N, H, W]`.
    Segmentation,
    /// Arrays only: a depth per pixel, float `[N, H, W]` or `[N, 1, H, W]`, 0 where
    /// not measured.
    Depth,
    /// Arrays only: a surface normal per pixel, float `[N, 3, H, W]`.
    Normals,
    /// Arrays only: several 0/1 labels per row, `[N, L]`.
    Multilabel,
    /// Arrays only: a tag per token, integer `[N, T]`.
    Sequence,
}

impl TargetKindConfig {
    /// The CSV reader's kind, `None` for kinds only arrays can hold.
    pub fn csv_kind(self) -> Option<TargetKind> {
        match self {
            TargetKindConfig::Classes => Some(TargetKind::Classes),
            TargetKindConfig::Binary => Some(TargetKind::Binary),
            TargetKindConfig::Regression => Some(TargetKind::Regression),
            _ => None,
        }
    }

    /// The name as a config writes it.
    pub fn name(self) -> &'static str {
        match self {
            TargetKindConfig::Classes => "classes",
            TargetKindConfig::Binary => "binary",
            TargetKindConfig::Regression => "regression",
            TargetKindConfig::Segmentation => "segmentation",
            TargetKindConfig::Depth => "depth",
            TargetKindConfig::Normals => "normals",
            TargetKindConfig::Multilabel => "multilabel",
            TargetKindConfig::Sequence => "sequence",
        }
    }

    /// Whether the target is a map over the image's pixels (read from feature maps).
    pub fn is_dense(self) -> bool {
        matches!(
            self,
            TargetKindConfig::Segmentation | TargetKindConfig::Depth | TargetKindConfig::Normals
        )
    }
}

/// `classes` of a target: the declared labels of a CSV class column, or the number of
/// classes of an array's target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClassesConfig {
    /// The number of classes (arrays: labels run from 0 to `classes - 1`).
    Count(i64),
    /// The classes of a CSV column, in class order.
    Labels(Vec<ClassLabel>),
}

/// One task: a target column (CSV) or array and its head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// The column in the CSV header (CSV input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// The array holding the targets (`npz` and `safetensors` input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array: Option<String>,
    /// Arrays only: a boolean array marking the labelled rows (`[N]`) or elements (the
    /// target's shape); everything is labelled when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<String>,
    /// Arrays only, segmentation and sequence targets: the label of pixels or tokens
    /// without a class, as `torch.nn.functional.cross_entropy`'s `ignore_index`
    /// (-1 when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_index: Option<i64>,
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
    /// CSV: the classes of a class target, in class order (names, or codes as the
    /// file writes them): the head has exactly these, and any other label is an error
    /// naming its line. Left out: the file's codes (which must run without gaps) or
    /// names, and every label in the validation and test rows must occur in the
    /// training rows.
    /// Arrays: the number of classes of a `classes`, `segmentation` or `sequence`
    /// target (left out: the largest label plus one).
    #[serde(default)]
    pub classes: Option<ClassesConfig>,
    /// CSV binary targets: the labels read as 1 (`positive = ["50000+."]`); any other
    /// label is 0. Left out: the cells are 0 or 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive: Option<Vec<String>>,
}

impl TargetConfig {
    /// The column or array the target is read from.
    pub fn source(&self) -> &str {
        self.column
            .as_deref()
            .or(self.array.as_deref())
            .unwrap_or_default()
    }

    /// The task's name: `name`, else the column's or array's.
    pub fn task_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.source().to_string())
    }

    /// The declared labels of a CSV class column.
    pub fn class_labels(&self) -> Option<&[ClassLabel]> {
        match &self.classes {
            Some(ClassesConfig::Labels(l)) => Some(l),
            _ => None,
        }
    }
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
    /// Learning to branch (Guo et al., ICML 2020): one layer of nodes per width of
    /// `hidden` (K nodes each, the last one per task), each node reading one node of the
    /// layer before, chosen by learned Gumbel-softmax logits; `fix_branches_at` freezes
    /// the argmax tree.
    Ltb,
    /// A convolutional encoder–decoder over `[N, C, H, W]` images (a dilated ResNet,
    /// [`mtl::core::ConvNetConfig`]): `widths`, `blocks`, `dilated_stages`,
    /// `out_channels`, `decoders`.
    ConvNet,
}

impl ArchKind {
    /// The name as a config writes it.
    pub fn name(self) -> &'static str {
        match self {
            ArchKind::HardSharing => "hard_sharing",
            ArchKind::Mmoe => "mmoe",
            ArchKind::CrossStitch => "cross_stitch",
            ArchKind::Ltb => "ltb",
            ArchKind::ConvNet => "conv_net",
        }
    }
}

/// The network: the architecture and its sizes, with one head per target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// How the tasks share the network: `"hard_sharing"` (the default), `"mmoe"`,
    /// `"cross_stitch"`, `"ltb"` or `"conv_net"`.
    #[serde(default)]
    pub arch: ArchKind,
    /// Hidden layer widths: of the shared trunk (the heads read the last), of each
    /// MMoE expert, or of the cross-stitch stages or LTB layers (one layer each); `[64, 32]` when
    /// left out. Not for `conv_net`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Vec<i64>>,
    /// `conv_net` only: the channels of each encoder stage (`[16, 32, 64]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widths: Option<Vec<i64>>,
    /// `conv_net` only: residual blocks per stage (1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<usize>,
    /// `conv_net` only: how many of the last stages are dilated instead of strided (1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dilated_stages: Option<usize>,
    /// `conv_net` only: the decoder's output channels, what the heads read
    /// (`widths[0]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_channels: Option<i64>,
    /// `conv_net` only: `"per_task"` (the default: one decoder per task over the shared
    /// encoder) or `"shared"` (one decoder for all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoders: Option<ConvDecoders>,
    /// `conv_net` only: the image channels the model is built for; the features'
    /// when left out, an error naming the array when they differ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_channels: Option<i64>,
    /// MMoE only: the number of experts (8 by default).
    #[serde(default)]
    pub experts: Option<usize>,
    /// Cross-stitch only: each unit's initial weight on its own task (0.9 by default).
    #[serde(default)]
    pub alpha_self: Option<f64>,
    /// LTB only: the epoch at whose start the argmax branching tree is frozen (never
    /// by default, as LibMTL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix_branches_at: Option<usize>,
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

impl ModelConfig {
    /// The hidden widths (`[64, 32]` when left out).
    pub fn hidden(&self) -> Vec<i64> {
        self.hidden.clone().unwrap_or_else(default_hidden)
    }

    /// The image encoder–decoder `arch = "conv_net"` describes over `in_channels`
    /// channels.
    pub fn conv_net(&self, in_channels: i64) -> mtl::core::ConvNetConfig {
        let mut c = mtl::core::ConvNetConfig::new(in_channels).init(self.init);
        if let Some(w) = &self.widths {
            c = c.widths(w.clone());
        }
        if let Some(b) = self.blocks {
            c = c.blocks(b);
        }
        if let Some(d) = self.dilated_stages {
            c = c.dilated_stages(d);
        }
        if let Some(o) = self.out_channels {
            c = c.out_channels(o);
        }
        c
    }

    /// Refuses the keys of another architecture than `arch`, naming the key and the
    /// architecture it belongs to.
    fn check_arch_keys(&self) -> Result<()> {
        use ArchKind::*;
        let keys: [(&str, bool, &[ArchKind]); 10] = [
            (
                "hidden",
                self.hidden.is_some(),
                &[HardSharing, Mmoe, CrossStitch, Ltb],
            ),
            ("fix_branches_at", self.fix_branches_at.is_some(), &[Ltb]),
            ("experts", self.experts.is_some(), &[Mmoe]),
            ("alpha_self", self.alpha_self.is_some(), &[CrossStitch]),
            ("widths", self.widths.is_some(), &[ConvNet]),
            ("blocks", self.blocks.is_some(), &[ConvNet]),
            ("dilated_stages", self.dilated_stages.is_some(), &[ConvNet]),
            ("out_channels", self.out_channels.is_some(), &[ConvNet]),
            ("decoders", self.decoders.is_some(), &[ConvNet]),
            ("in_channels", self.in_channels.is_some(), &[ConvNet]),
        ];
        for (key, set, archs) in keys {
            if set && !archs.contains(&self.arch) {
                let owners: Vec<String> =
                    archs.iter().map(|a| format!("\"{}\"", a.name())).collect();
                return Err(Error::config(format!(
                    "model.{key} is a setting of arch = {}, not of arch = \"{}\"",
                    owners.join(" or "),
                    self.arch.name()
                )));
            }
        }
        if self.arch == ConvNet && self.dropout != 0.0 {
            return Err(Error::config(
                "model.dropout is a setting of the MLP architectures; arch = \"conv_net\" \
                 has batch norm and no dropout",
            ));
        }
        Ok(())
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            arch: ArchKind::default(),
            hidden: None,
            widths: None,
            blocks: None,
            dilated_stages: None,
            out_channels: None,
            decoders: None,
            in_channels: None,
            experts: None,
            alpha_self: None,
            fix_branches_at: None,
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
        let input = self.data.input()?;
        if input == InputKind::Csv {
            self.check_csv()?;
        } else {
            self.check_arrays(input)?;
        }
        let (v, t) = (self.data.validation, self.data.test);
        if !(0.0..1.0).contains(&v) || !(0.0..1.0).contains(&t) || v + t >= 1.0 {
            return Err(Error::config(format!(
                "data.validation ({v}) and data.test ({t}) must be fractions leaving rows to train on"
            )));
        }
        self.model.check_arch_keys()?;
        let hidden = self.model.hidden();
        if hidden.is_empty() || hidden.iter().any(|&w| !(1..=MAX_WIDTH).contains(&w)) {
            return Err(Error::config(format!(
                "model.hidden must list widths from 1 to {MAX_WIDTH}, got {hidden:?}"
            )));
        }
        if let Some(w) = &self.model.widths {
            if w.is_empty() || w.iter().any(|&w| !(1..=MAX_WIDTH).contains(&w)) {
                return Err(Error::config(format!(
                    "model.widths must list channel counts from 1 to {MAX_WIDTH}, got {w:?}"
                )));
            }
        }
        for (key, v) in [
            ("out_channels", self.model.out_channels),
            ("in_channels", self.model.in_channels),
        ] {
            if let Some(c) = v.filter(|c| !(1..=MAX_WIDTH).contains(c)) {
                return Err(Error::config(format!(
                    "model.{key} must be from 1 to {MAX_WIDTH}, got {c}"
                )));
            }
        }
        if self.model.arch == ArchKind::ConvNet {
            // The sizes' own rules (a block per stage, fewer dilated stages than
            // stages) are the encoder's; asked now, before any data is read.
            self.model
                .conv_net(1)
                .downsampling_factor()
                .map_err(|e| Error::config(format!("[model] arch = \"conv_net\": {e}")))?;
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
        if self.model.experts == Some(0) {
            return Err(Error::config("model.experts must be at least 1"));
        }
        if let Some(a) = self.model.alpha_self.filter(|a| !(0.0..=1.0).contains(a)) {
            return Err(Error::config(format!(
                "model.alpha_self must be in [0, 1], got {a}"
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

    /// The checks of a CSV input: its targets name columns, of the kinds a CSV file
    /// holds, and the scaling settings agree.
    fn check_csv(&self) -> Result<()> {
        if let Some(FeaturesConfig::Array(a)) = &self.data.features {
            return Err(Error::config(format!(
                "data.features = \"{a}\" names an array; a CSV input takes a list of columns \
                 (features = [\"a\", \"b\"])"
            )));
        }
        for (i, t) in self.data.targets.iter().enumerate() {
            let Some(column) = &t.column else {
                return Err(Error::config(format!(
                    "data.targets[{i}]: a CSV target names its column (column = \"...\"){}",
                    if t.array.is_some() {
                        "; `array` is for npz and safetensors input"
                    } else {
                        ""
                    }
                )));
            };
            for (key, set) in [
                ("array", t.array.is_some()),
                ("mask", t.mask.is_some()),
                ("ignore_index", t.ignore_index.is_some()),
            ] {
                if set {
                    return Err(Error::config(format!(
                        "target `{column}`: {key} is a setting of npz and safetensors targets; \
                         a CSV file marks missing labels with empty cells"
                    )));
                }
            }
            if t.kind.csv_kind().is_none() {
                return Err(Error::config(format!(
                    "target `{column}`: kind = \"{}\" needs an array per row (npz or \
                     safetensors input); a CSV column holds classes, binary or regression",
                    t.kind.name()
                )));
            }
            if let Some(ClassesConfig::Count(n)) = t.classes {
                return Err(Error::config(format!(
                    "target `{column}`: classes = {n} counts the classes of an array; a CSV \
                     target declares its labels (classes = [\"a\", \"b\"])"
                )));
            }
        }
        let d = &self.data;
        if d.embedding_dim == Some(0) || !(1..=4096).contains(&d.embedding_dim.unwrap_or(1)) {
            return Err(Error::config(format!(
                "data.embedding_dim must be from 1 to 4096, got {}",
                d.embedding_dim.unwrap_or(0)
            )));
        }
        if let Some(b) = d.hash_buckets {
            if !(1..=1 << 24).contains(&b) {
                return Err(Error::config(format!(
                    "data.hash_buckets must be from 1 to 2^24 (ids travel as f32), got {b}"
                )));
            }
        }
        if d.headerless && d.header.is_none() {
            return Err(Error::config(
                "data.headerless = true: the file has no header line, so data.header must name \
                 its columns",
            ));
        }
        for t in &d.targets {
            if t.positive.is_some() && t.kind != TargetKindConfig::Binary {
                return Err(Error::config(format!(
                    "target `{}`: positive labels are for binary targets",
                    t.source()
                )));
            }
        }
        let clip = self.data.clip_at;
        if !(clip.is_finite() && clip > 0.0 && clip <= f64::from(f32::MAX)) {
            return Err(Error::config(format!(
                "data.clip_at must be positive and finite, got {clip}"
            )));
        }
        if let (false, Some(s)) = (self.data.standardize(), self.data.feature_scaling) {
            if s != FeatureScalingConfig::None {
                return Err(Error::config(format!(
                    "data.standardize = false turns feature scaling off, but \
                     data.feature_scaling asks for {s:?}; keep one of them"
                )));
            }
        }
        for t in &self.data.targets {
            if t.class_labels().is_some() && t.kind != TargetKindConfig::Classes {
                return Err(Error::config(format!(
                    "target `{}`: classes are only declared for class targets",
                    t.source()
                )));
            }
            if t.class_labels().is_some() && t.first_class.is_some() {
                return Err(Error::config(format!(
                    "target `{}`: declared classes are already in class order; leave out \
                     first_class",
                    t.source()
                )));
            }
            if t.first_class.is_some() && t.kind != TargetKindConfig::Classes {
                return Err(Error::config(format!(
                    "target `{}`: first_class is only for class targets",
                    t.source()
                )));
            }
            if let Some(first) = t.first_class {
                // Class codes are non-negative and below the class bound.
                if !(0..MAX_CLASSES as i64).contains(&first) {
                    return Err(Error::config(format!(
                        "target `{}`: first_class must be from 0 to {}, got {first}",
                        t.source(),
                        MAX_CLASSES - 1
                    )));
                }
            }
            if t.loss.is_some() && t.kind != TargetKindConfig::Regression {
                return Err(Error::config(format!(
                    "target `{}`: a loss is only chosen for regression targets",
                    t.source()
                )));
            }
        }
        Ok(())
    }

    /// The checks of an array input: `features` names an array, each target names its
    /// array with the settings its kind takes, and nothing asks for CSV-only scaling.
    fn check_arrays(&self, input: InputKind) -> Result<()> {
        let key = input.key();
        match &self.data.features {
            Some(FeaturesConfig::Array(a)) if !a.is_empty() => {}
            // An image folder's features are its images (the array `image`).
            None if input == InputKind::ImageFolder => {}
            _ => {
                return Err(Error::config(format!(
                    "data.features must name the features' array of the {key} file \
                     (features = \"x\")"
                )))
            }
        }
        // Scaling is fitted on table columns; images and per-pixel targets keep their
        // values (normalise them when writing the file, as torchvision's Normalize).
        let d = &self.data;
        let csv_only = [
            ("standardize", d.standardize.is_some()),
            ("feature_scaling", d.feature_scaling.is_some()),
            ("standardize_targets", d.standardize_targets.is_some()),
            ("clip_at", d.clip_at != default_clip()),
            ("missing", d.missing != MissingConfig::default()),
            ("na_values", !d.na_values.is_empty()),
            ("exclude", !d.exclude.is_empty()),
            ("header", d.header.is_some()),
            ("headerless", d.headerless),
            ("categorical", !d.categorical.is_empty()),
            ("numeric", !d.numeric.is_empty()),
            ("one_hot_max", d.one_hot_max.is_some()),
            ("high_cardinality", d.high_cardinality.is_some()),
            ("embedding_dim", d.embedding_dim.is_some()),
            ("hash_buckets", d.hash_buckets.is_some()),
        ];
        if let Some((k, _)) = csv_only.iter().find(|(_, set)| *set) {
            return Err(Error::config(format!(
                "data.{k} is a setting of CSV input; {key} arrays are used as they are \
                 (scale them when writing the file)"
            )));
        }
        for (i, t) in d.targets.iter().enumerate() {
            let Some(array) = t.array.as_deref().filter(|a| !a.is_empty()) else {
                return Err(Error::config(format!(
                    "data.targets[{i}]: a {key} target names its array (array = \"...\"){}",
                    if t.column.is_some() {
                        "; `column` is for CSV input"
                    } else {
                        ""
                    }
                )));
            };
            let refuse = |what: &str| {
                Err(Error::config(format!(
                    "target `{array}` (kind = \"{}\"): {what}",
                    t.kind.name()
                )))
            };
            if t.column.is_some() {
                return refuse("`column` is for CSV input; an array target names `array`");
            }
            if t.positive.is_some() {
                return refuse("positive is a setting of CSV binary columns");
            }
            if t.first_class.is_some() {
                return refuse("first_class is a setting of CSV class columns");
            }
            if t.loss.is_some() && t.kind != TargetKindConfig::Regression {
                return refuse("a loss is only chosen for regression targets");
            }
            let counted = matches!(
                t.kind,
                TargetKindConfig::Classes
                    | TargetKindConfig::Segmentation
                    | TargetKindConfig::Sequence
            );
            match &t.classes {
                Some(ClassesConfig::Labels(_)) => {
                    return refuse("classes is a number for an array target (classes = 4)")
                }
                Some(ClassesConfig::Count(_)) if !counted => {
                    return refuse(
                        "classes is a setting of classes, segmentation and sequence targets",
                    )
                }
                Some(ClassesConfig::Count(n)) if !(2..=MAX_CLASSES as i64).contains(n) => {
                    return refuse(&format!("classes must be from 2 to {MAX_CLASSES}, got {n}"))
                }
                _ => {}
            }
            if t.ignore_index.is_some()
                && !matches!(
                    t.kind,
                    TargetKindConfig::Segmentation | TargetKindConfig::Sequence
                )
            {
                return refuse(
                    "ignore_index is a setting of segmentation and sequence targets (other \
                     targets mark missing labels with a mask)",
                );
            }
        }
        if let Some(j) = d.targets.iter().enumerate().find_map(|(i, t)| {
            d.targets[..i]
                .iter()
                .any(|u| u.task_name() == t.task_name())
                .then_some(i)
        }) {
            return Err(Error::config(format!(
                "data.targets: two tasks are named `{}`; give one a `name`",
                d.targets[j].task_name()
            )));
        }
        Ok(())
    }

    /// The input file (CSV, npz or safetensors): beside the config file, else under
    /// the data directory.
    pub fn csv_path(&self, config_path: &Path) -> PathBuf {
        let Some(csv) = self.data.input_file() else {
            return PathBuf::new();
        };
        if csv.is_absolute() {
            return csv.to_path_buf();
        }
        let beside = config_path
            .parent()
            .map(|d| d.join(csv))
            .unwrap_or_else(|| csv.to_path_buf());
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
