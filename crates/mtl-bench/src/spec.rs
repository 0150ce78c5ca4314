//! The benchmark workloads: the peer harness's `WORKLOAD_SPECS`
//! (`shared/peer_bench/libmtl_bench.py`) rebuilt with `mtl`, their fixed synthetic data
//! (the harness's `make_data`, draw for draw), and the names LibMTL gives our methods.

use mtl::core::arch::{MlpBuilder, MmoeConfig, TaskTowers};
use mtl::core::{
    task_path, CnnConfig, ConvNetConfig, HardSharing, MlpConfig, Pooling, Result, TaskTarget,
    TransformerConfig,
};
use mtl::data::{dense_scenes, DenseScenesConfig, SCENE_CLASSES};
use mtl::heads::{
    BinaryHead, ClassificationHead, DepthHead, NormalHead, RegressionHead, RegressionLoss,
    SegmentationHead, SentenceHead, SequenceHead, TaskHead,
};
use mtl::MultiTaskModel;
use tch::{nn, Device, Kind, Tensor};

/// One benchmark workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workload {
    /// W1: `x[256,128]`, HPS trunk Linear(128,256)-ReLU-Linear(256,256)-ReLU; heads
    /// cls_a, cls_b (Linear(256,10) + CE) and reg (Linear(256,1) + MSE).
    Mlp,
    /// W2: `x[256,1,36,36]` (rows of 1296), HPS LeNet trunk; heads left, right
    /// (Linear(50,10) + CE).
    Lenet,
    /// W3: `x[1024,100]`, MMoE with 8 experts Linear(100,64)-ReLU, a softmax gate per
    /// task, towers Linear(64,32)-ReLU-Linear(32,1); ctr (BCE) and val (MSE).
    Mmoe,
    /// The W1 trunk with K = 10 classification heads: parameter vs representation
    /// gradients for the gradient-level methods (not in the LibMTL harness).
    MlpK10,
    /// W5: `x[16,1,32,32]` generated scenes (`mtl_data::dense_scenes`); the dilated-ResNet
    /// encoder (widths 16, 32, 32) shared, a decoder per task (16 channels out) and
    /// 1×1-conv heads: segment (4 classes, pixel CE), depth (L1 over measured pixels)
    /// and normals (1 − cosine). Not in the LibMTL harness: its peer is a plain-PyTorch
    /// loop (`crates/mtl-bench/torch/dense_twin.py`).
    Dense,
    /// W6: `ids[32,128]` random token ids with a key-padding mask (lengths 32–128,
    /// padding id 0); a 4-layer pre-LN Transformer encoder (d = 256, 4 heads, FFN 1024,
    /// GELU, dropout 0.1) shared; heads: sentence (the `[CLS]` position's output,
    /// Linear(256,4) + CE) and tags (Linear(256,9) per token + CE over the real tokens).
    /// Not in the LibMTL harness: its peer is a plain-PyTorch loop
    /// (`crates/mtl-bench/torch/text_twin.py`, `torch.nn.TransformerEncoder`).
    Text,
}

/// How a task's loss is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossKind {
    /// Softmax cross-entropy over 10 classes.
    Ce,
    /// Mean squared error on one output.
    Mse,
    /// Binary cross-entropy on one logit.
    Bce,
    /// Per-pixel cross-entropy over the scene classes, ignoring label −1.
    PixelCe,
    /// Mean absolute depth error over the measured (positive-depth) pixels.
    DepthL1,
    /// One minus the mean cosine between unit normals, over the measured pixels.
    NormalCos,
    /// Cross-entropy over [`TEXT_CLASSES`] of the first (`[CLS]`) position's output.
    SentenceCe,
    /// Per-token cross-entropy over [`TEXT_TAGS`], ignoring tag −1 (padding).
    TokenCe,
}

impl Workload {
    /// The workloads a run times by default, in run order.
    pub const ALL: [Workload; 4] = [
        Workload::Mlp,
        Workload::Lenet,
        Workload::Mmoe,
        Workload::MlpK10,
    ];

    /// Every workload, [`Workload::ALL`] and those run only when named: `dense` (W5)
    /// takes longer than the other four together (a conv net of ~30 layers per step on 2
    /// cores), and `text` (W6) longer still (a 4-layer Transformer over 4096 tokens per
    /// step), so the default run stays a few minutes and W5 and W6 run with `--workloads
    /// dense` or `--workloads text`.
    pub const KNOWN: [Workload; 6] = [
        Workload::Mlp,
        Workload::Lenet,
        Workload::Mmoe,
        Workload::MlpK10,
        Workload::Dense,
        Workload::Text,
    ];

    /// The methods a workload runs when `--methods` is not given, when not every
    /// registered method: W6's step is about a second on 2 cores, so by default it times
    /// the loss-level EW and UW and the gradient-level PCGrad (the one its PyTorch twin
    /// also has).
    pub fn default_methods(self) -> Option<&'static [&'static str]> {
        match self {
            Workload::Text => Some(&["ew", "uw", "pcgrad"]),
            _ => None,
        }
    }

    /// The name used on the command line and in the JSON rows.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Mlp => "mlp",
            Workload::Lenet => "lenet",
            Workload::Mmoe => "mmoe",
            Workload::MlpK10 => "mlp_k10",
            Workload::Dense => "dense",
            Workload::Text => "text",
        }
    }

    /// Parses a workload name.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        Workload::KNOWN
            .into_iter()
            .find(|w| w.name() == s.trim())
            .ok_or_else(|| {
                format!(
                    "unknown workload `{s}` (known: {})",
                    Workload::KNOWN.map(|w| w.name()).join(", ")
                )
            })
    }

    /// Whether the LibMTL harness has this workload.
    pub fn in_peer_harness(self) -> bool {
        !matches!(self, Workload::MlpK10 | Workload::Dense | Workload::Text)
    }

    /// Rows (images) per batch.
    pub fn batch(self) -> i64 {
        match self {
            Workload::Mmoe => 1024,
            // The batch of `examples/dense.rs`: at 32×32 a step is tens of ms on 2 cores
            // (the gradient methods' three backward passes a few times that).
            Workload::Dense => 16,
            Workload::Text => TEXT_BATCH,
            _ => 256,
        }
    }

    /// Adam's learning rate.
    pub fn lr(self) -> f64 {
        1e-3
    }

    /// The sharing architecture, as the harness names it.
    pub fn arch(self) -> &'static str {
        match self {
            Workload::Mmoe => "MMoE",
            Workload::Dense => "ConvNet+decoders",
            Workload::Text => "Transformer",
            _ => "HPS",
        }
    }

    /// The task names and loss kinds, in LibMTL's task order.
    pub fn tasks(self) -> Vec<(String, LossKind)> {
        let named = |v: &[(&str, LossKind)]| v.iter().map(|(n, k)| (n.to_string(), *k)).collect();
        match self {
            Workload::Mlp => named(&[
                ("cls_a", LossKind::Ce),
                ("cls_b", LossKind::Ce),
                ("reg", LossKind::Mse),
            ]),
            Workload::Lenet => named(&[("left", LossKind::Ce), ("right", LossKind::Ce)]),
            Workload::Mmoe => named(&[("ctr", LossKind::Bce), ("val", LossKind::Mse)]),
            Workload::MlpK10 => (0..10).map(|k| (format!("cls{k}"), LossKind::Ce)).collect(),
            Workload::Dense => named(&[
                ("segment", LossKind::PixelCe),
                ("depth", LossKind::DepthL1),
                ("normals", LossKind::NormalCos),
            ]),
            Workload::Text => named(&[
                ("sentence", LossKind::SentenceCe),
                ("tags", LossKind::TokenCe),
            ]),
        }
    }

    /// K, the number of tasks.
    pub fn num_tasks(self) -> usize {
        self.tasks().len()
    }

    /// The width of the trunk's output every head reads (the tower output for MMoE).
    pub fn feature_dim(self) -> i64 {
        match self {
            Workload::Mlp | Workload::MlpK10 => 256,
            Workload::Lenet => 50,
            Workload::Mmoe => 32,
            // The channels of each task decoder's output.
            Workload::Dense => DENSE_FEATURES,
            Workload::Text => TEXT_D,
        }
    }

    /// The harness's description of the workload.
    pub fn desc(self) -> &'static str {
        match self {
            Workload::Mlp => {
                "x[256,128]; HPS encoder Linear(128,256)-ReLU-Linear(256,256)-ReLU; heads cls_a: \
                 Linear(256,10)+CE, cls_b: Linear(256,10)+CE, reg: Linear(256,1)+MSE"
            }
            Workload::Lenet => {
                "x[256,1,36,36]; HPS encoder Conv(1,10,5)-MaxPool2-ReLU-Conv(10,20,5)-MaxPool2-\
                 ReLU-Flatten-Linear(720,50)-ReLU; heads left/right: Linear(50,10)+CE"
            }
            Workload::Mmoe => {
                "x[1024,100]; MMoE, 8 experts Linear(100,64)-ReLU, per-task gate \
                 Linear(100,8)-Softmax; towers Linear(64,32)-ReLU-Linear(32,1); ctr: \
                 BCE-with-logits, val: MSE"
            }
            Workload::MlpK10 => {
                "x[256,128]; the mlp workload's HPS encoder with 10 heads Linear(256,10)+CE \
                 (labels: argmax of 10 random projections); not in the LibMTL harness"
            }
            Workload::Dense => {
                "x[16,1,32,32] dense_scenes images; ConvNet encoder: conv3x3(1,16)-BN-ReLU, \
                 residual blocks 16 / 32 (stride 2) / 32 (dilation 2), BN; per task a \
                 decoder bilinear x2-conv3x3(32,16)-BN-ReLU-conv3x3(16,16)-BN-ReLU and a \
                 1x1-conv head; segment: 4-class pixel CE (ignore -1), depth: L1 over \
                 measured pixels, normals: 1 - cosine; not in the LibMTL harness (peer: \
                 plain PyTorch)"
            }
            Workload::Text => {
                "ids[32,128] random token ids (vocab 8192), lengths uniform in 32..=128, \
                 padding id 0 masked out of attention; pre-LN Transformer encoder: token + \
                 learned position embeddings, 4 layers d=256, 4 heads (SDPA), FFN 1024 GELU, \
                 dropout 0.1, final LayerNorm; sentence: [CLS] position Linear(256,4)+CE, \
                 tags: per-token Linear(256,9)+CE over real tokens; not in the LibMTL \
                 harness (peer: plain PyTorch nn.TransformerEncoder)"
            }
        }
    }

    /// The image side of the image workloads.
    pub fn image_size(self) -> Option<i64> {
        match self {
            Workload::Lenet => Some(36),
            Workload::Dense => Some(DENSE_SIZE),
            _ => None,
        }
    }
}

/// W5's image side, stage widths and decoder output channels (those of
/// `examples/dense.rs`).
pub const DENSE_SIZE: i64 = 32;
/// W5's encoder stage widths; the last stage is dilated, so the encoder halves the side.
pub const DENSE_WIDTHS: [i64; 3] = [16, 32, 32];
/// W5's decoder output channels, the width every head reads.
pub const DENSE_FEATURES: i64 = 16;

/// W6's batch, sequence length (T, also the encoder's `max_len`), vocabulary, width,
/// heads, layers, feed-forward width and dropout.
pub const TEXT_BATCH: i64 = 32;
/// W6's sequence length T.
pub const TEXT_LEN: i64 = 128;
/// W6's vocabulary (id 0 is padding).
pub const TEXT_VOCAB: i64 = 8192;
/// W6's model width d.
pub const TEXT_D: i64 = 256;
/// W6's attention heads.
pub const TEXT_HEADS: i64 = 4;
/// W6's encoder layers.
pub const TEXT_LAYERS: usize = 4;
/// W6's feed-forward width (4·d).
pub const TEXT_FF: i64 = 1024;
/// W6's dropout (embeddings, attention weights, after attention, inside and after the
/// feed-forward block), as `torch.nn.TransformerEncoderLayer`'s default.
pub const TEXT_DROPOUT: f64 = 0.1;
/// W6's sentence classes.
pub const TEXT_CLASSES: i64 = 4;
/// W6's token tags (CoNLL-2003's nine BIO tags).
pub const TEXT_TAGS: i64 = 9;
/// W6's shortest sequence (real tokens, before padding to [`TEXT_LEN`]).
pub const TEXT_MIN_LEN: i64 = 32;

/// W6's encoder configuration (the `mtl` model's; the floor and the PyTorch twin build
/// the same layers).
pub fn text_config() -> TransformerConfig {
    TransformerConfig::new(TEXT_VOCAB, TEXT_LEN)
        .d_model(TEXT_D)
        .heads(TEXT_HEADS)
        .layers(TEXT_LAYERS)
        .ff(TEXT_FF)
        .dropout(TEXT_DROPOUT)
        .pad_id(Some(0))
}

/// W6's parameter count, as the twin must match it: embeddings, per layer the two layer
/// norms, the packed QKV projection, the output projection and the two FFN layers, the
/// final layer norm, and the two heads.
pub fn text_param_count() -> i64 {
    let (d, ff) = (TEXT_D, TEXT_FF);
    let layer = 2 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d + (d * ff + ff) + (ff * d + d);
    (TEXT_VOCAB + TEXT_LEN) * d
        + TEXT_LAYERS as i64 * layer
        + 2 * d
        + (d * TEXT_CLASSES + TEXT_CLASSES)
        + (d * TEXT_TAGS + TEXT_TAGS)
}

/// W5's network configuration, shared by the `mtl` model and (in its layout) the floor.
pub fn dense_config() -> ConvNetConfig {
    ConvNetConfig::new(1)
        .widths(DENSE_WIDTHS)
        .out_channels(DENSE_FEATURES)
}

/// One fixed batch: the input rows and one target per task.
#[derive(Debug)]
pub struct FixedBatch {
    /// `Float [B, in]` (LeNet images flattened to rows of 1296; W5 images
    /// `[B, 1, 32, 32]`).
    pub x: Tensor,
    /// One target per task: `Int64 [B]` classes, `Float [B, 1]` regression and binary;
    /// W5's `Int64 [B, H, W]` classes, `Float [B, H, W]` depths, `Float [B, 3, H, W]`
    /// normals.
    pub targets: Vec<TaskTarget>,
}

/// Serialises use of libtorch's global random generator, so concurrent callers (tests
/// run in threads) cannot interleave their draws.
pub use mtl::core::torch_rng_lock as rng_lock;

/// The harness's `make_data`: `torch.manual_seed(seed)`, then the same draws in the same
/// order from libtorch's CPU generator, so the batches are the ones LibMTL trains on.
/// `n_batches` batches, moved to `device`. W5 (not in the harness) draws
/// `mtl_data::dense_scenes` with the seed instead.
pub fn make_data(w: Workload, seed: u64, n_batches: i64, device: Device) -> Vec<FixedBatch> {
    let _rng = rng_lock();
    tch::manual_seed(seed as i64);
    let b = w.batch();
    let k = n_batches;
    let f = (Kind::Float, Device::Cpu);
    let (x, labels): (Tensor, Vec<Tensor>) = match w {
        Workload::Mlp => {
            let x = Tensor::randn([k, b, 128], f);
            let wa = Tensor::randn([128, 10], f);
            let wb = Tensor::randn([128, 10], f);
            let wr = Tensor::randn([128, 1], f);
            let ya = x.matmul(&wa).argmax(-1, false);
            let yb = x.matmul(&wb).argmax(-1, false);
            let yr = x.matmul(&wr) / (128f64).sqrt() + Tensor::randn([k, b, 1], f) * 0.1;
            (x, vec![ya, yb, yr])
        }
        Workload::Lenet => {
            let x = Tensor::rand([k, b, 1, 36, 36], f).reshape([k, b, 36 * 36]);
            let left = Tensor::randint(10, [k, b], (Kind::Int64, Device::Cpu));
            let right = Tensor::randint(10, [k, b], (Kind::Int64, Device::Cpu));
            (x, vec![left, right])
        }
        Workload::Mmoe => {
            let x = Tensor::randn([k, b, 100], f);
            let w1 = Tensor::randn([100, 1], f);
            let w2 = Tensor::randn([100, 1], f);
            let y1 = x.matmul(&w1).gt(0.0).to_kind(Kind::Float);
            let y2 = x.matmul(&w2) / 10.0 + Tensor::randn([k, b, 1], f) * 0.1;
            (x, vec![y1, y2])
        }
        Workload::MlpK10 => {
            let x = Tensor::randn([k, b, 128], f);
            let ys = (0..10)
                .map(|_| x.matmul(&Tensor::randn([128, 10], f)).argmax(-1, false))
                .collect();
            (x, ys)
        }
        // Its own seeded generator, not libtorch's.
        Workload::Dense => return dense_data(seed, n_batches, device),
        Workload::Text => {
            // Lengths uniform in 32..=128: ids in 1..vocab up to the length, padding (0)
            // after; a tag per real token, −1 on padding; a class per sentence.
            let i = (Kind::Int64, Device::Cpu);
            let t = TEXT_LEN;
            let len = Tensor::randint_low(TEXT_MIN_LEN, t + 1, [k, b, 1], i);
            let real = Tensor::arange(t, i).view([1, 1, t]).lt_tensor(&len);
            let ids = Tensor::randint_low(1, TEXT_VOCAB, [k, b, t], i) * &real;
            let classes = Tensor::randint(TEXT_CLASSES, [k, b], i);
            let tags =
                Tensor::randint(TEXT_TAGS, [k, b, t], i).where_self(&real, &Tensor::from(-1i64));
            (ids, vec![classes, tags])
        }
    };
    (0..k)
        .map(|i| FixedBatch {
            x: x.get(i).contiguous().to_device(device),
            targets: labels
                .iter()
                .map(|y| TaskTarget::new(y.get(i).contiguous().to_device(device)))
                .collect(),
        })
        .collect()
}

/// W5's batches: `n_batches × 16` generated scenes of 32×32 (one pixel in 20 with no
/// depth), cut into consecutive batches.
fn dense_data(seed: u64, n_batches: i64, device: Device) -> Vec<FixedBatch> {
    let b = Workload::Dense.batch();
    let scenes = dense_scenes(&DenseScenesConfig {
        images: (n_batches * b) as usize,
        size: DENSE_SIZE as usize,
        seed,
        ..Default::default()
    })
    .expect("W5's scene settings are valid");
    (0..n_batches)
        .map(|i| FixedBatch {
            x: scenes
                .features()
                .narrow(0, i * b, b)
                .contiguous()
                .to_device(device),
            targets: scenes
                .tasks()
                .iter()
                .map(|t| {
                    TaskTarget::new(t.values.narrow(0, i * b, b).contiguous().to_device(device))
                })
                .collect(),
        })
        .collect()
}

/// The workload's model built with `mtl` (hard sharing or MMoE with towers, and the
/// library's heads), on `device`.
pub fn build_model(w: Workload, device: Device) -> Result<MultiTaskModel> {
    let _rng = rng_lock();
    let vs = nn::VarStore::new(device);
    let root = vs.root();
    let feat = w.feature_dim();
    let heads: Vec<Box<dyn TaskHead>> = w
        .tasks()
        .into_iter()
        .enumerate()
        .map(|(k, (name, kind))| -> Result<Box<dyn TaskHead>> {
            let p = task_path(&root, k) / "head";
            Ok(match kind {
                LossKind::Ce => Box::new(ClassificationHead::new(&p, name, feat, 10)?),
                LossKind::Mse => {
                    Box::new(RegressionHead::new(&p, name, feat, 1, RegressionLoss::Mse)?)
                }
                LossKind::Bce => Box::new(BinaryHead::new(&p, name, feat)?),
                LossKind::PixelCe => {
                    Box::new(SegmentationHead::new(&p, name, feat, SCENE_CLASSES)?)
                }
                LossKind::DepthL1 => Box::new(DepthHead::new(&p, name, feat)?),
                LossKind::NormalCos => Box::new(NormalHead::new(&p, name, feat)?),
                LossKind::SentenceCe => Box::new(SentenceHead::new(
                    &p,
                    name,
                    feat,
                    TEXT_CLASSES,
                    Pooling::Cls,
                )?),
                LossKind::TokenCe => Box::new(SequenceHead::new(&p, name, feat, TEXT_TAGS)?),
            })
        })
        .collect::<Result<_>>()?;
    let k = heads.len();
    match w {
        Workload::Mlp | Workload::MlpK10 => {
            let trunk = MlpConfig::new([128, 256, 256]).build(&(&root / "trunk"))?;
            MultiTaskModel::new(vs, HardSharing::new(trunk, k)?, heads)
        }
        Workload::Lenet => {
            let trunk = CnnConfig::new(36, 36).build(&(&root / "trunk"))?;
            MultiTaskModel::new(vs, HardSharing::new(trunk, k)?, heads)
        }
        Workload::Mmoe => {
            let mmoe =
                MmoeConfig::new(100, 8, k).build(&(&root / "mmoe"), &MlpBuilder::new([64]))?;
            let arch = TaskTowers::build(mmoe, &root, &MlpBuilder::new([32]))?;
            MultiTaskModel::new(vs, arch, heads)
        }
        Workload::Dense => {
            // The encoder's output is the shared representation rep-grad rows
            // differentiate against.
            let arch = dense_config().build_with_task_decoders(&(&root / "net"), k)?;
            MultiTaskModel::new(vs, arch, heads)
        }
        Workload::Text => {
            // The encoder's `[B, T, d]` token features are the shared representation.
            let trunk = text_config().build(&(&root / "trunk"))?;
            MultiTaskModel::new(vs, HardSharing::new(trunk, k)?, heads)
        }
    }
}

/// LibMTL's name for one of our registry names, when LibMTL has the method.
pub fn libmtl_name(ours: &str) -> Option<&'static str> {
    const LIBMTL: [&str; 15] = [
        "EW",
        "UW",
        "GradNorm",
        "DWA",
        "RLW",
        "MGDA",
        "PCGrad",
        "GradVac",
        "IMTL",
        "CAGrad",
        "Nash_MTL",
        "Aligned_MTL",
        "DB_MTL",
        "FAMO",
        "UPGrad",
    ];
    let norm = |s: &str| s.to_ascii_lowercase().replace(['_', '-'], "");
    let ours = match ours {
        // IMTL-G is LibMTL's IMTL (its gradient half; LibMTL has no IMTL-L).
        "imtl_g" | "imtl" => "imtl",
        other => other,
    };
    LIBMTL.into_iter().find(|l| norm(l) == norm(ours))
}

/// The name a row carries in `method`: LibMTL's when it has the method, ours otherwise.
pub fn row_method_name(ours: &str) -> String {
    libmtl_name(ours).map_or_else(|| ours.to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_libmtl() {
        assert_eq!(libmtl_name("ew"), Some("EW"));
        assert_eq!(libmtl_name("imtl_g"), Some("IMTL"));
        assert_eq!(libmtl_name("nash_mtl"), Some("Nash_MTL"));
        assert_eq!(libmtl_name("upgrad"), Some("UPGrad"));
        assert_eq!(libmtl_name("mean"), None);
        assert_eq!(row_method_name("dualproj"), "dualproj");
    }

    /// Sums and entries of `make_data(w, 0, 8)` as the peer harness computes them with
    /// torch 2.13.0 (`libmtl_bench.make_data`), so both sides train on the same batches.
    #[test]
    fn data_is_the_harness_data() {
        type Expect = (Workload, f64, [f64; 2], &'static [(f64, f64)]);
        let expect: [Expect; 3] = [
            (
                Workload::Mlp,
                -888.9204999630147,
                [-1.1258398294448853, -2.7204272747039795],
                &[
                    (9386.0, 1.0),
                    (8924.0, 3.0),
                    (19.42793827969581, 0.8439006805419922),
                ],
            ),
            (
                Workload::Lenet,
                1327441.0535655618,
                [0.49625658988952637, 0.6502350568771362],
                &[(9460.0, 2.0), (9294.0, 9.0)],
            ),
            (
                Workload::Mmoe,
                -1040.7046193622182,
                [-1.1258398294448853, -2.7204272747039795],
                &[(4097.0, 0.0), (-75.52863783063367, -0.4321810305118561)],
            ),
        ];
        for (w, x_sum, x_at, ys) in expect {
            let data = make_data(w, 0, 8, Device::Cpu);
            let x = Tensor::stack(
                &data.iter().map(|b| b.x.shallow_clone()).collect::<Vec<_>>(),
                0,
            )
            .reshape([-1]);
            // libtorch's CPU kernels (the normal sampler, matmul) round differently
            // on different instruction sets (AVX2, AVX-512), so values recorded on one
            // machine are checked to a few f32 ulps, not bit for bit. A sum's rounding
            // grows with the sum of magnitudes, so sums are held to that scale.
            let close = |a: f64, b: f64, tol: f64| (a - b).abs() <= tol * b.abs().max(1.0);
            let sum_close = |t: &Tensor, want: f64| {
                let t = t.to_kind(Kind::Double);
                let got = t.sum(Kind::Double).double_value(&[]);
                let scale = t.abs().sum(Kind::Double).double_value(&[]);
                ((got - want).abs() <= 1e-6 * scale.max(1.0), got)
            };
            // The class labels (argmax, sign) are exact: in these draws the top two
            // projections, and the mmoe score and 0, are ≥ 6e-4 apart (measured), far
            // beyond the ~1e-5 a reordered dot product can move them.
            let (ok, got) = sum_close(&x, x_sum);
            assert!(ok, "{} x sum: {got} vs {x_sum}", w.name());
            for (i, want) in [0, 12345].into_iter().zip(x_at) {
                let got = x.double_value(&[i]);
                assert!(
                    close(got, want, 1e-6),
                    "{} x[{i}]: {got} vs {want}",
                    w.name()
                );
            }
            for (t, (sum, at7)) in ys.iter().enumerate() {
                let y = Tensor::stack(
                    &data
                        .iter()
                        .map(|b| b.targets[t].values.shallow_clone())
                        .collect::<Vec<_>>(),
                    0,
                )
                .reshape([-1])
                .to_kind(Kind::Double);
                let (ok, got) = sum_close(&y, *sum);
                assert!(ok, "{} task {t}: {got} vs {sum}", w.name());
                // Regression targets are sums of 100 or 128 products: 1e-5 covers the
                // accumulated rounding of a differently ordered f32 dot product.
                let got = y.double_value(&[7]);
                assert!(
                    close(got, *at7, 1e-5),
                    "{} task {t}: y[7] {got} vs {at7}",
                    w.name()
                );
            }
        }
    }

    /// W6: the model has the parameter count the PyTorch twin must match, and every
    /// sequence is real tokens (32 to 128 of them) then padding, tagged −1 exactly there.
    #[test]
    fn text_model_and_data() {
        let model = build_model(Workload::Text, Device::Cpu).unwrap();
        let n: usize = model
            .var_store()
            .trainable_variables()
            .iter()
            .map(Tensor::numel)
            .sum();
        assert_eq!(n as i64, text_param_count());
        for b in make_data(Workload::Text, 0, 2, Device::Cpu) {
            assert_eq!(b.x.size(), [TEXT_BATCH, TEXT_LEN]);
            let real = b.x.ne(0);
            assert!(real.equal(&b.targets[1].values.ne(-1)));
            let lens = real.sum_dim_intlist(1, false, Kind::Int64);
            assert!(lens.min().int64_value(&[]) >= TEXT_MIN_LEN);
            // Real tokens first: the length-prefix of each row is all real.
            let prefix = Tensor::arange(TEXT_LEN, (Kind::Int64, Device::Cpu))
                .view([1, TEXT_LEN])
                .lt_tensor(&lens.view([TEXT_BATCH, 1]));
            assert!(prefix.equal(&real));
            assert_eq!(b.targets[0].values.size(), [TEXT_BATCH]);
        }
    }

    #[test]
    fn every_workload_builds_and_fits_its_data() {
        for w in Workload::KNOWN {
            let data = make_data(w, 0, 2, Device::Cpu);
            assert_eq!(data.len(), 2);
            let model = build_model(w, Device::Cpu).unwrap();
            assert_eq!(model.num_tasks(), w.num_tasks());
            let x = data[0].x.narrow(0, 0, 4);
            let targets: Vec<TaskTarget> = data[0]
                .targets
                .iter()
                .map(|t| TaskTarget::new(t.values.narrow(0, 0, 4)))
                .collect();
            let fwd = model.forward_t(&x, true).unwrap();
            let losses = model.losses(&fwd.outputs, &targets).unwrap();
            assert_eq!(losses.len(), w.num_tasks(), "{}", w.name());
        }
    }
}
