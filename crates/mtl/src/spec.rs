//! A model described as data: the architecture and one head per task, serialisable, so
//! a saved [`Bundle`](crate::Bundle) can rebuild the exact model in a new process
//! without the code that first built it.
//!
//! A spec covers the models `mtl` can name: an MLP trunk shared by every task (hard
//! sharing), MMoE over MLP experts, cross-stitch towers of MLP stages, a learned
//! branching tree of MLP layers (LTB), or a
//! convolutional encoder–decoder over images ([`ConvNetConfig`]) with one decoder or
//! one per task, or a Transformer encoder over token ids ([`TransformerConfig`]); with
//! classification, binary, regression and multi-label heads on rows, segmentation,
//! depth and normals heads on feature maps, per-token sequence heads, and the text
//! heads: sentence classification over pooled tokens and BIO entity tagging.
//! A model assembled by hand from other parts trains the same way but has no spec, so
//! it cannot be bundled.

use crate::model::MultiTaskModel;
use mtl_core::{
    task_path, Architecture, BackboneBuilder, ConvNetConfig, CrossStitchConfig,
    EmbeddingInputConfig, Error, HardSharing, LtbConfig, MlpBuilder, MlpConfig, MmoeConfig,
    Pooling, Result, SharedBottom, TransformerConfig,
};
use mtl_data::{TargetData, TaskData};
use mtl_heads::{
    BinaryHead, ClassificationHead, DepthHead, MultiLabelHead, NormalHead, RegressionHead,
    RegressionLoss, SegmentationHead, SentenceHead, SequenceHead, TaskHead, DEFAULT_IGNORE_INDEX,
};
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
    /// Learning to branch ([`Ltb`](mtl_core::Ltb), Guo et al., ICML 2020) under `ltb`:
    /// layer `l` of nodes built by `layers[l]`, each node of a layer after the first
    /// reading one node of the layer before, chosen by learned Gumbel-softmax branching
    /// logits; the last layer has one node per task.
    Ltb {
        /// Input width, number of tasks, nodes per layer and the branching schedule.
        config: LtbConfig,
        /// Each node of layer `l`: an MLP from the previous layer's width.
        layers: Vec<MlpBuilder>,
    },
    /// A convolutional encoder–decoder over `[B, C, H, W]` images ([`ConvNet`](
    /// mtl_core::ConvNet)): with [`ConvDecoders::Shared`] the whole network under
    /// `trunk`, shared by every task; with [`ConvDecoders::PerTask`] the encoder under
    /// `net/encoder` and task `k`'s decoder under `net/task<k>/tower`
    /// ([`ConvNetConfig::build_with_task_decoders`]). Heads read `[B, C_out, H, W]`.
    ConvNet {
        /// The encoder (and decoder) sizes; `in_channels` is the images'.
        config: ConvNetConfig,
        /// One decoder for all tasks or one per task.
        decoders: ConvDecoders,
    },
    /// A Transformer encoder over token ids `Int64 [B, T]`
    /// ([`TransformerEncoder`](mtl_core::TransformerEncoder)) under `trunk`, shared by
    /// every task (hard sharing); heads read its `[B, T, d]` token features (or `[B, d]`
    /// rows when the config pools). Pretrained weights saved from another model with
    /// the encoder under `trunk` load into it by name.
    Transformer {
        /// The encoder; its `vocab` is the tokenizer's vocabulary size.
        encoder: TransformerConfig,
    },
}

/// Whether the tasks of an [`ArchSpec::ConvNet`] share its decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConvDecoders {
    /// One decoder; the heads read its output (hard sharing of the whole network).
    Shared,
    /// A decoder per task over the shared encoder, as LibMTL's NYUv2 models.
    #[default]
    PerTask,
}

impl ArchSpec {
    /// The width of the input rows (the channels of an image, the most tokens of a
    /// sequence).
    pub fn input_width(&self) -> i64 {
        match self {
            ArchSpec::HardSharing { trunk } => trunk.sizes.first().copied().unwrap_or(0),
            ArchSpec::Mmoe { config, .. } => config.in_dim,
            ArchSpec::CrossStitch { config, .. } => config.in_dim,
            ArchSpec::Ltb { config, .. } => config.in_dim,
            ArchSpec::ConvNet { config, .. } => config.in_channels,
            ArchSpec::Transformer { encoder } => encoder.max_len,
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
    /// A [`SegmentationHead`]: a class per pixel of `[B, C, H, W]` feature maps.
    Segmentation {
        /// The task's name.
        name: String,
        /// The number of classes.
        classes: i64,
        /// The label of unlabelled pixels.
        #[serde(default = "default_ignore_index")]
        ignore_index: i64,
    },
    /// A [`DepthHead`]: a depth per pixel, 0 where not measured.
    Depth {
        /// The task's name.
        name: String,
    },
    /// A [`NormalHead`]: a unit surface normal per pixel.
    Normals {
        /// The task's name.
        name: String,
    },
    /// A [`MultiLabelHead`]: `labels` independent 0/1 labels per row.
    MultiLabel {
        /// The task's name.
        name: String,
        /// The number of labels.
        labels: i64,
    },
    /// A [`SequenceHead`]: a tag per token of `[B, T, d]` features.
    Sequence {
        /// The task's name.
        name: String,
        /// The number of tags.
        classes: i64,
        /// The tag that marks padding (`None`: padding only by the mask).
        padding_label: Option<i64>,
    },
    /// A [`SentenceHead`]: token features `[B, T, d]` pooled to one row per sentence,
    /// then classified into `classes` classes.
    Sentence {
        /// The task's name.
        name: String,
        /// The number of classes.
        classes: i64,
        /// How the tokens are pooled.
        pooling: Pooling,
    },
    /// A [`SequenceHead`] over BIO (or IOBES) entity tags, scored by span F1
    /// ([`SequenceHead::with_bio_tags`]); tag id i is `tags[i]`, padding is −1.
    Entities {
        /// The task's name.
        name: String,
        /// The tag names, in id order (`"O"`, `"B-PER"`, `"I-PER"`…).
        tags: Vec<String>,
    },
}

fn default_ignore_index() -> i64 {
    DEFAULT_IGNORE_INDEX
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
            | HeadSpec::Regression { name, .. }
            | HeadSpec::Segmentation { name, .. }
            | HeadSpec::Depth { name }
            | HeadSpec::Normals { name }
            | HeadSpec::MultiLabel { name, .. }
            | HeadSpec::Sequence { name, .. }
            | HeadSpec::Sentence { name, .. }
            | HeadSpec::Entities { name, .. } => name,
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
            HeadSpec::Segmentation {
                name,
                classes,
                ignore_index,
            } => Box::new(
                SegmentationHead::new(path, name.as_str(), in_dim, *classes)?
                    .with_ignore_index(*ignore_index),
            ),
            HeadSpec::Depth { name } => Box::new(DepthHead::new(path, name.as_str(), in_dim)?),
            HeadSpec::Normals { name } => Box::new(NormalHead::new(path, name.as_str(), in_dim)?),
            HeadSpec::MultiLabel { name, labels } => {
                Box::new(MultiLabelHead::new(path, name.as_str(), in_dim, *labels)?)
            }
            HeadSpec::Sequence {
                name,
                classes,
                padding_label,
            } => Box::new(
                SequenceHead::new(path, name.as_str(), in_dim, *classes)?
                    .with_padding_label(*padding_label),
            ),
            HeadSpec::Sentence {
                name,
                classes,
                pooling,
            } => Box::new(SentenceHead::new(
                path,
                name.as_str(),
                in_dim,
                *classes,
                *pooling,
            )?),
            HeadSpec::Entities { name, tags } => Box::new(
                SequenceHead::new(path, name.as_str(), in_dim, tags.len() as i64)?
                    .with_bio_tags(tags.clone())?,
            ),
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
    /// Category-id columns embedded in front of the architecture (shared parameters
    /// under `input`): the rows are `dense` numbers and one id per table, and the
    /// architecture reads the numbers and the embeddings (its input width is
    /// [`EmbeddingInputConfig::out_dim`]). `None`: the architecture reads the rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<EmbeddingInputConfig>,
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
            input: None,
        }
    }

    /// The model of task `k` alone, for its single-task baseline: the same
    /// architecture sized for one task, with head `k` only.
    pub fn only_task(&self, k: usize) -> Result<ModelSpec> {
        let head = self.heads.get(k).cloned().ok_or_else(|| Error::TaskCount {
            context: format!("ModelSpec::only_task({k})"),
            expected: self.heads.len(),
            got: k + 1,
        })?;
        let mut architecture = self.architecture.clone();
        match &mut architecture {
            ArchSpec::Mmoe { config, .. } => config.num_tasks = 1,
            ArchSpec::CrossStitch { config, .. } => config.num_tasks = 1,
            ArchSpec::Ltb { config, .. } => {
                config.num_tasks = 1;
                if let Some(last) = config.nodes.as_mut().and_then(|n| n.last_mut()) {
                    *last = 1;
                }
            }
            ArchSpec::HardSharing { .. }
            | ArchSpec::ConvNet { .. }
            | ArchSpec::Transformer { .. } => {}
        }
        Ok(ModelSpec {
            architecture,
            heads: vec![head],
            input: self.input.clone(),
        })
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
    /// under `trunk` (an MLP, a shared conv net, a Transformer), `mmoe`, `cross_stitch`, `ltb` or `net`, head k's under `task_path(root, k)/head`, so the split
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
        if let Some(input) = &self.input {
            if input.out_dim() != self.architecture.input_width() {
                return Err(Error::shape(
                    "model spec: the embedding input's output vs the architecture's input",
                    format!("width {}", self.architecture.input_width()),
                    format!("width {}", input.out_dim()),
                ));
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
                self.assemble(vs, arch, heads)?
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
                self.assemble(vs, arch, heads)?
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
                self.assemble(vs, arch, heads)?
            }
            ArchSpec::Ltb { config, layers } => {
                if config.num_tasks != k {
                    return Err(Error::TaskCount {
                        context: "model spec: LTB task nodes vs heads".into(),
                        expected: config.num_tasks,
                        got: k,
                    });
                }
                let layers: Vec<&dyn BackboneBuilder> =
                    layers.iter().map(|b| b as &dyn BackboneBuilder).collect();
                let arch = config.build(&(&root / "ltb"), &layers)?;
                let heads = build_heads(&mtl_core::Architecture::feature_dims(&arch))?;
                self.assemble(vs, arch, heads)?
            }
            ArchSpec::Transformer { encoder } => {
                let trunk = encoder.build(&(&root / "trunk"))?;
                let arch = HardSharing::new(trunk, k)?;
                let heads = build_heads(&mtl_core::Architecture::feature_dims(&arch))?;
                MultiTaskModel::new(vs, arch, heads)?
            }
            ArchSpec::ConvNet {
                config,
                decoders: ConvDecoders::Shared,
            } => {
                let trunk = config.build(&(&root / "trunk"))?;
                let arch = HardSharing::new(trunk, k)?;
                let heads = build_heads(&mtl_core::Architecture::feature_dims(&arch))?;
                self.assemble(vs, arch, heads)?
            }
            ArchSpec::ConvNet {
                config,
                decoders: ConvDecoders::PerTask,
            } => {
                let arch = config.build_with_task_decoders(&(&root / "net"), k)?;
                let heads = build_heads(&mtl_core::Architecture::feature_dims(&arch))?;
                self.assemble(vs, arch, heads)?
            }
        };
        Ok(model.with_spec(self.clone()))
    }

    /// The model over `arch`, behind the embedding input when the spec has one.
    fn assemble(
        &self,
        vs: nn::VarStore,
        arch: impl Architecture + 'static,
        heads: Vec<Box<dyn TaskHead>>,
    ) -> Result<MultiTaskModel> {
        match &self.input {
            Some(input) => {
                let bottom = input.build(&(vs.root() / "input"))?;
                MultiTaskModel::new(vs, SharedBottom::new(bottom, arch), heads)
            }
            None => MultiTaskModel::new(vs, arch, heads),
        }
    }
}
