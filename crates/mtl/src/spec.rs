//! A model described as data: the architecture and one head per task, serialisable, so
//! a saved [`Bundle`](crate::Bundle) can rebuild the exact model in a new process
//! without the code that first built it.
//!
//! A spec covers the models `mtl` can name: an MLP trunk shared by every task (hard
//! sharing), MMoE over MLP experts, or cross-stitch towers of MLP stages, with
//! classification, binary and regression heads.
//! A model assembled by hand from other parts trains the same way but has no spec, so
//! it cannot be bundled.

use crate::model::MultiTaskModel;
use mtl_core::{
    task_path, BackboneBuilder, CrossStitchConfig, Error, HardSharing, MlpBuilder, MlpConfig,
    MmoeConfig, Result,
};
use mtl_data::{TargetData, TaskData};
use mtl_heads::{BinaryHead, ClassificationHead, RegressionHead, RegressionLoss, TaskHead};
use serde::{Deserialize, Serialize};
use tch::{nn, Device};

/// The sharing architecture of a [`ModelSpec`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ArchSpec {
    /// One MLP trunk shared by every task ([`HardSharing`]), its variables under
    /// `trunk`; every head reads its last layer.
    HardSharing {
        /// The trunk, input width first.
        trunk: MlpConfig,
    },
    /// Multi-gate mixture of experts ([`Mmoe`](mtl_core::Mmoe)) under `mmoe`: experts
    /// built by `expert`, one softmax gate per task.
    Mmoe {
        /// Input width, number of experts and of tasks.
        config: MmoeConfig,
        /// Each expert: an MLP from the input width.
        expert: MlpBuilder,
    },
    /// Cross-stitch networks ([`CrossStitch`](mtl_core::CrossStitch)) under
    /// `cross_stitch`: one tower per task, stage `l` built by `stages[l]`, a learned
    /// K×K unit mixing the towers after every stage.
    CrossStitch {
        /// Input width, number of tasks and the units' starting weights.
        config: CrossStitchConfig,
        /// Each stage of every tower: an MLP from the previous stage's width.
        stages: Vec<MlpBuilder>,
    },
}

impl ArchSpec {
    /// The width of the input rows.
    pub fn input_width(&self) -> i64 {
        match self {
            ArchSpec::HardSharing { trunk } => trunk.sizes.first().copied().unwrap_or(0),
            ArchSpec::Mmoe { config, .. } => config.in_dim,
            ArchSpec::CrossStitch { config, .. } => config.in_dim,
        }
    }
}

/// One task's head in a [`ModelSpec`]; its input width is the architecture's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum HeadSpec {
    /// A softmax [`ClassificationHead`] over `classes` classes.
    Classification {
        /// The task's name.
        name: String,
        /// The number of classes.
        classes: i64,
    },
    /// A sigmoid [`BinaryHead`].
    Binary {
        /// The task's name.
        name: String,
    },
    /// A [`RegressionHead`] with `outputs` targets.
    Regression {
        /// The task's name.
        name: String,
        /// The number of regression targets.
        outputs: i64,
        /// The training loss.
        loss: RegressionLoss,
    },
}

impl HeadSpec {
    /// The head a task's targets call for: classification for classes, binary for
    /// 0/1 labels, regression (with `loss`) for real values.
    pub fn for_task(task: &TaskData, loss: RegressionLoss) -> HeadSpec {
        let name = task.name.clone();
        match &task.data {
            TargetData::Classes { classes, .. } => HeadSpec::Classification {
                name,
                classes: *classes as i64,
            },
            TargetData::Binary(_) => HeadSpec::Binary { name },
            TargetData::Regression(values) => HeadSpec::Regression {
                name,
                outputs: values.ncols() as i64,
                loss,
            },
        }
    }

    /// The task's name.
    pub fn name(&self) -> &str {
        match self {
            HeadSpec::Classification { name, .. }
            | HeadSpec::Binary { name }
            | HeadSpec::Regression { name, .. } => name,
        }
    }

    fn build(&self, path: &nn::Path, in_dim: i64) -> Result<Box<dyn TaskHead>> {
        Ok(match self {
            HeadSpec::Classification { name, classes } => Box::new(ClassificationHead::new(
                path,
                name.as_str(),
                in_dim,
                *classes,
            )?),
            HeadSpec::Binary { name } => Box::new(BinaryHead::new(path, name.as_str(), in_dim)?),
            HeadSpec::Regression {
                name,
                outputs,
                loss,
            } => Box::new(RegressionHead::new(
                path,
                name.as_str(),
                in_dim,
                *outputs,
                *loss,
            )?),
        })
    }
}

/// A whole model as data: build it with [`ModelSpec::build`] (or
/// [`MultiTaskModel::from_spec`]), save it with the weights in a
/// [`Bundle`](crate::Bundle).
///
/// ```
/// use mtl::{HeadSpec, ModelSpec};
/// use mtl::heads::RegressionLoss;
///
/// let spec = ModelSpec::hard_sharing(
///     4,
///     &[16, 8],
///     vec![
///         HeadSpec::Classification { name: "region".into(), classes: 3 },
///         HeadSpec::Regression { name: "price".into(), outputs: 1, loss: RegressionLoss::Mse },
///     ],
/// );
/// let model = spec.build(tch::Device::Cpu)?;
/// assert_eq!(model.task_names(), ["region", "price"]);
/// let json = serde_json::to_string(&spec).unwrap();
/// assert_eq!(serde_json::from_str::<ModelSpec>(&json).unwrap(), spec);
/// # Ok::<(), mtl::core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The sharing architecture.
    pub architecture: ArchSpec,
    /// One head per task, in task order.
    pub heads: Vec<HeadSpec>,
}

impl ModelSpec {
    /// Hard sharing: a ReLU MLP trunk `inputs → hidden…` and these heads.
    pub fn hard_sharing(inputs: i64, hidden: &[i64], heads: Vec<HeadSpec>) -> ModelSpec {
        let mut sizes = vec![inputs];
        sizes.extend_from_slice(hidden);
        ModelSpec {
            architecture: ArchSpec::HardSharing {
                trunk: MlpConfig::new(sizes),
            },
            heads,
        }
    }

    /// The number of tasks.
    pub fn num_tasks(&self) -> usize {
        self.heads.len()
    }

    /// The task names, in order.
    pub fn task_names(&self) -> Vec<String> {
        self.heads.iter().map(|h| h.name().to_string()).collect()
    }

    /// Builds the model with fresh weights on `device`: the architecture's variables
    /// under `trunk` or `mmoe`, head k's under `task_path(root, k)/head`, so the split
    /// into shared and task parameters finds them and saved weights load by name.
    pub fn build(&self, device: Device) -> Result<MultiTaskModel> {
        if self.heads.is_empty() {
            return Err(Error::TaskCount {
                context: "model spec heads".into(),
                expected: 0,
                got: 0,
            });
        }
        for (i, h) in self.heads.iter().enumerate() {
            if let Some(j) = self.heads[..i].iter().position(|g| g.name() == h.name()) {
                return Err(Error::config(format!(
                    "model spec: heads {j} and {i} are both named `{}`",
                    h.name()
                )));
            }
        }
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let k = self.heads.len();
        let build_heads = |width: &[i64]| -> Result<Vec<Box<dyn TaskHead>>> {
            self.heads
                .iter()
                .zip(width)
                .enumerate()
                .map(|(t, (h, w))| h.build(&(task_path(&root, t) / "head"), *w))
                .collect()
        };
        let model = match &self.architecture {
            ArchSpec::HardSharing { trunk } => {
                let trunk = trunk.build(&(&root / "trunk"))?;
                let arch = HardSharing::new(trunk, k)?;
                let heads = build_heads(&mtl_core::Architecture::feature_dims(&arch))?;
                MultiTaskModel::new(vs, arch, heads)?
            }
            ArchSpec::Mmoe { config, expert } => {
                if config.num_tasks != k {
                    return Err(Error::TaskCount {
                        context: "model spec: MMoE gates vs heads".into(),
                        expected: config.num_tasks,
                        got: k,
                    });
                }
                let arch = config.build(&(&root / "mmoe"), expert)?;
                let heads = build_heads(&mtl_core::Architecture::feature_dims(&arch))?;
                MultiTaskModel::new(vs, arch, heads)?
            }
            ArchSpec::CrossStitch { config, stages } => {
                if config.num_tasks != k {
                    return Err(Error::TaskCount {
                        context: "model spec: cross-stitch towers vs heads".into(),
                        expected: config.num_tasks,
                        got: k,
                    });
                }
                let stages: Vec<&dyn BackboneBuilder> =
                    stages.iter().map(|b| b as &dyn BackboneBuilder).collect();
                let arch = config.build(&(&root / "cross_stitch"), &stages)?;
                let heads = build_heads(&mtl_core::Architecture::feature_dims(&arch))?;
                MultiTaskModel::new(vs, arch, heads)?
            }
        };
        Ok(model.with_spec(self.clone()))
    }
}
