//! # mtl-data
//!
//! Data for multi-task learning: a validated [`MultiTaskDataset`] (features plus K
//! tasks of class, binary or regression targets, with masks for missing labels),
//! seeded train/validation/test splits, a [`Standardizer`] fitted on training features
//! (standard, robust or clipped) and a [`TargetStandardizer`] for regression targets,
//! and mini-[`Batch`]es as `tch` tensors with one [`mtl_core::TaskTarget`] per task.
//!
//! - **Loaders** with typed errors that name the file and the line or byte: CSV
//!   ([`read_csv`]), IDX ([`read_idx`], raw or gzip), NPY and NPZ ([`read_npy`],
//!   [`read_npz`]) and safetensors ([`read_safetensors`]). The binary ones read each
//!   payload straight into a CPU tensor ([`DenseArray`]), viewable as `ndarray` and
//!   handed to libtorch without a further copy.
//! - **Data sets**, found by [`data_root`]: olive oil, MultiMNIST ([`multi_mnist`]),
//!   Census-Income KDD with the MMoE task groups ([`census_income`]), Linnerud, the 8×8
//!   digits with derived tasks, the MMoE synthetic regression, and the CAGrad toy
//!   objectives ([`toy_objectives`]).
//! - **Augmentation** of image batches that keeps dense targets (class maps, depth,
//!   normals) aligned with the image: seeded random crop, horizontal flip and scale
//!   ([`Augmentation`], one [`TargetLayout`] per task).
//! - **Text** ([`text`]): sub-word tokenization (WordPiece or BPE trained on a corpus,
//!   or a `tokenizer.json`) into padded token ids with word labels aligned to
//!   sub-words, CoNLL column and JSON Lines loaders, the shipped Brown corpus
//!   ([`text::BrownCorpus`]: genres and part-of-speech tags), and [`text_dataset`] for one text
//!   task as a [`TensorDataset`].
//! - **Heterogeneous tasks**, each with its own dataset ([`MultiInputData`]), drawn per
//!   step by a seeded [`TaskSchedule`] (all, round-robin, proportional, temperature,
//!   annealed).
//!
//! It does not build models or train them: heads live in `mtl-heads`, losses and task
//! weightings in `mtl-losses`, the training loop in `mtl`.

mod array;
pub mod augment;
mod batch;
mod census;
mod column_type;
mod csv;
mod csv_features;
mod dataset;
mod dense_scenes;
mod grouped;
mod idx;
mod image_folder;
mod joint_data;
mod locate;
mod mlm;
mod mmoe_synthetic;
mod mnist;
mod multi_input;
mod named;
mod npy;
mod npz;
mod olive;
mod prefetch;
mod safetensors;
mod schedule;
mod sklearn;
mod source;
mod standardize;
mod streamed;
mod table_encoder;
mod target;
mod target_scale;
mod tensor_dataset;
pub mod text;
mod toy;

pub use crate::column_type::{ColumnKind, CsvColumn};
pub use crate::csv::{
    indicator_name, parse_csv, parse_csv_summary, read_csv, read_csv_summary, CsvSpec, CsvSummary,
    CsvTarget, MissingValues, TargetKind,
};
pub use crate::csv_features::{parse_csv_features, read_csv_features};
pub use crate::safetensors::{parse_safetensors, read_safetensors};
pub use array::{ArrayElement, DType, DenseArray};
pub use augment::{Augmentation, AugmentationConfig, TargetLayout};
pub use batch::{Batch, Batches};
pub use census::{
    census_income, CensusConfig, CensusGroup, CensusIncome, CENSUS_COLLEGE_EDUCATION,
    CENSUS_COLUMNS, CENSUS_NUMERIC,
};
pub use dataset::{MultiTaskDataset, Split, SplitRows, MAX_CLASSES};
pub use dense_scenes::{dense_scenes, DenseScenesConfig, SCENE_CLASSES};
pub use grouped::{
    contraception, london_schools, radon, radon_uranium, read_grouped_csv, GroupedCsv, GroupedData,
    GroupedTask,
};
pub use idx::{parse_idx, read_idx};
pub use image_folder::{image_folder_arrays, read_image_folder, ImageFolder};
pub use joint_data::{batch_rows, JointData};
pub use locate::{cache_data_dir, data_dir, data_root};
pub use mlm::{MaskedLmData, MLM_IGNORE};
pub use mmoe_synthetic::{mmoe_synthetic, MmoeSyntheticConfig, SinusoidShapes};
pub use mnist::{mnist, multi_mnist, MultiMnistConfig, MultiMnistPlacement, MultiMnistResize};
pub use multi_input::{MultiInputData, MultiInputSplit, TaskInput};
pub use named::NamedArrays;
pub use npy::{encode_npy, parse_npy, read_npy, write_npy};
pub use npz::{parse_npz, read_npz, write_npz};
pub use olive::{olive_oil, OLIVE_FEATURES, OLIVE_REGIONS};
pub use prefetch::{prefetch, prefetch_scoped, Prefetch};
pub use schedule::{ScheduleConfig, TaskSampling, TaskSchedule};
pub use sklearn::{digits, linnerud, LinnerudTargets};
pub use standardize::{
    extreme_columns, ExtremeColumn, FeatureScaling, Standardizer, DEFAULT_CLIP, EXTREME_Z,
};
pub use streamed::{NpyRows, StreamedDataset, StreamedSplit};
pub use table_encoder::{
    ColumnEncoding, EncodedColumn, EncoderOptions, HighCardinality, TableEncoder,
};
pub use target::{TargetData, TaskData};
pub use target_scale::{TargetScale, TargetStandardizer};
pub use tensor_dataset::{TensorDataset, TensorSplit, TensorTask};
pub use text::{
    read_conll, read_jsonl, text_dataset, Alignment, LabelVocab, TextExample, TextTokenizer,
    Truncation,
};
pub use toy::{toy_objectives, toy_objectives_f64, TOY_LOWER};

// The versions this crate was built with, so a dependent crate converts data with the
// same `ndarray` and `tch` types (another `ndarray` major version is another type).
pub use ndarray;
pub use tch;
