//! The three models the MMoE paper (Ma et al., KDD 2018) compares, built one way for
//! both of its experiments (the synthetic data and Census-Income): a shared bottom, the
//! one-gate mixture of experts (OMoE) and the multi-gate one (MMoE), each followed by
//! one ReLU tower per task and a task head. Keeping the builder here makes the two
//! reproductions compare the same models.

use mtl::core::{MlpBuilder, MmoeConfig, TaskTowers};
use mtl::prelude::*;
use serde::{Deserialize, Serialize};
use tch::{nn, Device};

use super::task_heads;

/// Which of the paper's models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Model {
    /// One ReLU layer shared by the tasks (the paper's shared-bottom baseline).
    SharedBottom,
    /// Experts mixed by one softmax gate for all tasks.
    Omoe,
    /// Experts mixed by one softmax gate per task.
    Mmoe,
}

/// The three models, in the order the tables list them.
pub const MODELS: [Model; 3] = [Model::SharedBottom, Model::Omoe, Model::Mmoe];

impl Model {
    /// The name the tables use.
    pub fn label(self) -> &'static str {
        match self {
            Model::SharedBottom => "shared-bottom",
            Model::Omoe => "OMoE",
            Model::Mmoe => "MMoE",
        }
    }
}

/// The sizes of the three models.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MoeShape {
    /// Input width.
    pub in_dim: i64,
    /// Experts of OMoE and MMoE.
    pub experts: usize,
    /// Units of each expert's one ReLU layer.
    pub expert_units: i64,
    /// Units of the shared bottom's one ReLU layer.
    pub bottom_units: i64,
    /// Units of each task tower's one ReLU layer (the head reads this width).
    pub tower_units: i64,
}

/// Builds `model` with the sizes in `shape` for the tasks `names`; head `k` is
/// `head(path, k, name)` and reads `shape.tower_units` features.
pub fn build_model<H: TaskHead + 'static>(
    model: Model,
    shape: &MoeShape,
    names: &[String],
    head: impl Fn(&nn::Path, usize, &str) -> mtl::core::Result<H>,
) -> mtl::core::Result<MultiTaskModel> {
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let k = names.len();
    let towers = MlpBuilder::new([shape.tower_units]);
    let heads = task_heads(&root, names, head)?;
    match model {
        Model::SharedBottom => {
            let bottom =
                MlpConfig::new([shape.in_dim, shape.bottom_units]).build(&(&root / "bottom"))?;
            let arch = TaskTowers::build(HardSharing::new(bottom, k)?, &root, &towers)?;
            MultiTaskModel::new(vs, arch, heads)
        }
        Model::Omoe | Model::Mmoe => {
            let experts = MlpBuilder::new([shape.expert_units]);
            let moe = MmoeConfig::new(shape.in_dim, shape.experts, k)
                .shared_gate(model == Model::Omoe)
                .build(&(&root / "moe"), &experts)?;
            let arch = TaskTowers::build(moe, &root, &towers)?;
            MultiTaskModel::new(vs, arch, heads)
        }
    }
}

/// The number of trainable parameters of `model`.
pub fn parameter_count(model: &MultiTaskModel) -> i64 {
    model
        .var_store()
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}
