//! Every head kind trained by the `Trainer` on a `TensorDataset`: per-pixel class, depth
//! and normals on images; class, binary, regression (with missing rows) and multi-label
//! on tensor rows; a tag per token on token ids with padding. Checkpoints resume exactly
//! on tensor data and refuse other data.

mod common;

use common::{torch_lock, weights};
use mtl::data::{JointData, TensorDataset, TensorTask};
use mtl::heads::{
    BinaryHead, ClassificationHead, DepthHead, MultiLabelHead, NormalHead, RegressionHead,
    RegressionLoss, SegmentationHead, SequenceHead,
};
use mtl::prelude::*;
use tch::{nn, Device, Kind, Tensor};

const CPU: (Kind, Device) = (Kind::Float, Device::Cpu);

/// Two 3×3 convolutions: `[B, 1, H, W]` images to `[B, 8, H, W]` feature maps.
#[derive(Debug)]
struct ConvTrunk {
    c1: nn::Conv2D,
    c2: nn::Conv2D,
}

impl ConvTrunk {
    fn new(p: &nn::Path) -> Self {
        let cfg = nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        ConvTrunk {
            c1: nn::conv2d(p / "c1", 1, 8, 3, cfg),
            c2: nn::conv2d(p / "c2", 8, 8, 3, cfg),
        }
    }
}

impl Backbone for ConvTrunk {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> mtl::core::Result<Tensor> {
        Ok(xs.apply(&self.c1).relu().apply(&self.c2).relu())
    }
    fn out_dim(&self) -> i64 {
        8
    }
}

/// Token embeddings and a linear layer: `[B, T]` ids to `[B, T, 8]`.
#[derive(Debug)]
struct TokenTrunk {
    embed: nn::Embedding,
    mix: nn::Linear,
}

impl Backbone for TokenTrunk {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> mtl::core::Result<Tensor> {
        Ok(xs.apply(&self.embed).apply(&self.mix).relu())
    }
    fn out_dim(&self) -> i64 {
        8
    }
}

/// Images whose pixels say everything: class 1 where bright (the border ignored),
/// depth 1 + 2·brightness (0 = not measured on one pixel in nine), a normal leaning with
/// the brightness.
fn images(n: i64) -> TensorDataset {
    let x = Tensor::rand([n, 1, 6, 6], CPU);
    let v = x.squeeze_dim(1);
    let classes = v.gt(0.5).to_kind(Kind::Int64);
    let _ = classes.narrow(2, 0, 1).fill_(255);
    let unmeasured = Tensor::rand([n, 6, 6], CPU).lt(1.0 / 9.0);
    let depth = (&v * 2.0 + 1.0).masked_fill(&unmeasured, 0.0);
    let normals = Tensor::stack(&[&v - 0.5, v.ones_like(), v.zeros_like()], 1);
    let normals = &normals / normals.norm_scalaropt_dim(2, [1], true);
    TensorDataset::new(
        x,
        vec![
            TensorTask::new("segment", classes),
            TensorTask::new("depth", depth),
            TensorTask::new("normals", normals),
        ],
    )
    .unwrap()
}

fn dense_model(seed: i64) -> MultiTaskModel {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let trunk = ConvTrunk::new(&(vs.root() / "trunk"));
    let head = |k| task_path(&vs.root(), k) / "head";
    let heads: Vec<Box<dyn TaskHead>> = vec![
        Box::new(
            SegmentationHead::new(&head(0), "segment", 8, 2)
                .unwrap()
                .with_ignore_index(255),
        ),
        Box::new(DepthHead::new(&head(1), "depth", 8).unwrap()),
        Box::new(NormalHead::new(&head(2), "normals", 8).unwrap()),
    ];
    MultiTaskModel::new(vs, HardSharing::new(trunk, 3).unwrap(), heads).unwrap()
}

fn config(method: &str, epochs: usize) -> TrainerConfig {
    TrainerConfig::default()
        .epochs(epochs)
        .batch_size(8)
        .optimizer(OptimizerConfig::adam(1e-2))
        .method(method)
        .seed(2)
}

/// Each task's training loss in the last epoch is below its loss in the first.
fn assert_learns(report: &RunReport) {
    let (first, last) = (&report.epochs[0], report.epochs.last().unwrap());
    for (k, task) in report.tasks.iter().enumerate() {
        assert!(
            last.train_losses[k] < first.train_losses[k],
            "{task}: {} -> {}",
            first.train_losses[k],
            last.train_losses[k]
        );
    }
}

#[test]
fn dense_heads_train_on_image_tensors_with_any_method() {
    let _torch = torch_lock();
    tch::manual_seed(11);
    let split = images(64).split(0.25, 0.0, 1).unwrap();
    for method in ["ew", "pcgrad"] {
        let mut model = dense_model(3);
        let report = Trainer::new(config(method, 6))
            .unwrap()
            .fit(&mut model, &split.train, Some(&split.validation))
            .unwrap();
        assert_learns(&report);
        let val = report.epochs.last().unwrap().validation.as_ref().unwrap();
        assert!(val.metric(0, "miou").unwrap() > 0.5, "{method}: {val:?}");
        assert!(val.metric(0, "pixel_accuracy").is_some());
        assert!(val.metric(1, "abs_err").is_some() && val.metric(1, "rel_err").is_some());
        assert!(val.metric(2, "mean_angle").is_some());
        let test = evaluate(&model, &split.validation, 5).unwrap();
        assert_eq!(test.tasks, ["segment", "depth", "normals"]);
    }
}

#[test]
fn row_level_heads_train_on_tensor_rows_with_missing_labels() {
    let _torch = torch_lock();
    tch::manual_seed(12);
    let n = 96;
    let x = Tensor::rand([n, 4], CPU) * 2.0 - 1.0;
    let col = |i: i64| x.select(1, i);
    let class = (col(0) + col(1)).gt(0.0).to_kind(Kind::Int64);
    let binary = col(2).gt(0.0).to_kind(Kind::Float);
    let regression = Tensor::stack(&[col(3) * 2.0, col(0) - col(2)], 1);
    // A third of the regression rows are unlabelled.
    let labelled = Tensor::arange(n, (Kind::Int64, Device::Cpu))
        .remainder(3)
        .ne(0);
    let multilabel =
        Tensor::stack(&[col(0).gt(0.0), col(1).gt(0.0), col(3).lt(0.0)], 1).to_kind(Kind::Float);
    let data = TensorDataset::new(
        x,
        vec![
            TensorTask::new("class", class),
            TensorTask::new("binary", binary),
            TensorTask::masked("regression", regression, labelled),
            TensorTask::new("tags", multilabel),
        ],
    )
    .unwrap();
    tch::manual_seed(5);
    let vs = nn::VarStore::new(Device::Cpu);
    let trunk = MlpConfig::new([4, 32, 16])
        .build(&(vs.root() / "trunk"))
        .unwrap();
    let head = |k| task_path(&vs.root(), k) / "head";
    let heads: Vec<Box<dyn TaskHead>> = vec![
        Box::new(ClassificationHead::new(&head(0), "class", 16, 2).unwrap()),
        Box::new(BinaryHead::new(&head(1), "binary", 16).unwrap()),
        Box::new(RegressionHead::new(&head(2), "regression", 16, 2, RegressionLoss::Mse).unwrap()),
        Box::new(MultiLabelHead::new(&head(3), "tags", 16, 3).unwrap()),
    ];
    let mut model = MultiTaskModel::new(vs, HardSharing::new(trunk, 4).unwrap(), heads).unwrap();
    let report = Trainer::new(config("upgrad", 8))
        .unwrap()
        .fit(&mut model, &data, None)
        .unwrap();
    assert_learns(&report);
    let eval = evaluate(&model, &data, 32).unwrap();
    assert!(eval.metric(0, "accuracy").unwrap() > 0.7, "{eval:?}");
    assert!(eval.metric(3, "micro_f1").is_some());
}

#[test]
fn a_tag_per_token_trains_on_padded_token_ids() {
    let _torch = torch_lock();
    tch::manual_seed(13);
    let (n, t) = (64, 7);
    let tokens = Tensor::randint(12, [n, t], (Kind::Int64, Device::Cpu));
    let tags = tokens.remainder(3);
    // Sentences of 3 to 7 tokens: the padding is unlabelled.
    let lengths = Tensor::randint_low(3, 8, [n, 1], (Kind::Int64, Device::Cpu));
    let real = Tensor::arange(t, (Kind::Int64, Device::Cpu))
        .unsqueeze(0)
        .lt_tensor(&lengths);
    let data = TensorDataset::new(
        tokens,
        vec![TensorTask::masked("tag", tags, real.shallow_clone())],
    )
    .unwrap();
    tch::manual_seed(6);
    let vs = nn::VarStore::new(Device::Cpu);
    let trunk = TokenTrunk {
        embed: nn::embedding(vs.root() / "trunk" / "embed", 12, 8, Default::default()),
        mix: nn::linear(vs.root() / "trunk" / "mix", 8, 8, Default::default()),
    };
    let head = SequenceHead::new(&(task_path(&vs.root(), 0) / "head"), "tag", 8, 3).unwrap();
    let mut model = MultiTaskModel::new(
        vs,
        HardSharing::new(trunk, 1).unwrap(),
        vec![Box::new(head)],
    )
    .unwrap();
    let report = Trainer::new(config("ew", 10))
        .unwrap()
        .fit(&mut model, &data, None)
        .unwrap();
    assert_learns(&report);
    let eval = evaluate(&model, &data, 16).unwrap();
    assert!(eval.metric(0, "token_accuracy").unwrap() > 0.9, "{eval:?}");
}

#[test]
fn a_run_on_tensor_data_resumes_exactly_and_refuses_other_data() {
    let _torch = torch_lock();
    tch::manual_seed(14);
    let data = images(40);
    let path = std::env::temp_dir().join(format!("mtl-tensor-resume-{}.ckpt", std::process::id()));
    let mut full = dense_model(8);
    Trainer::new(config("pcgrad", 4))
        .unwrap()
        .fit(&mut full, &data, None)
        .unwrap();
    let mut first = dense_model(8);
    Trainer::new(config("pcgrad", 2).checkpoint(CheckpointPolicy::new(&path)))
        .unwrap()
        .fit(&mut first, &data, None)
        .unwrap();
    let mut resumed = dense_model(99);
    Trainer::new(config("pcgrad", 4))
        .unwrap()
        .resume_from(&path)
        .fit(&mut resumed, &data, None)
        .unwrap();
    assert_eq!(weights(&resumed), weights(&full));

    // Other images of the same shape: refused, naming the data.
    let other = images(40);
    assert_ne!(JointData::len(&other), 0);
    let err = Trainer::new(config("pcgrad", 4))
        .unwrap()
        .resume_from(&path)
        .fit(&mut dense_model(8), &other, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("data"), "{err}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn features_streamed_from_an_npy_file_train_exactly_as_in_memory() {
    use mtl::data::{encode_npy, DenseArray, NpyRows, StreamedDataset};
    let _torch = torch_lock();
    tch::manual_seed(15);
    let data = images(40);
    let dir = std::env::temp_dir().join(format!("mtl-streamed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("images.npy");
    let bytes = encode_npy(&DenseArray::from_tensor(data.features()).unwrap()).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let streamed =
        StreamedDataset::new(NpyRows::open(&path).unwrap(), data.tasks().to_vec()).unwrap();
    let (a, b) = (
        data.split(0.25, 0.0, 3).unwrap(),
        streamed.split(0.25, 0.0, 3).unwrap(),
    );
    let mut in_memory = dense_model(4);
    let mut from_disk = dense_model(4);
    let r1 = Trainer::new(config("pcgrad", 3))
        .unwrap()
        .fit(&mut in_memory, &a.train, Some(&a.validation))
        .unwrap();
    let r2 = Trainer::new(config("pcgrad", 3))
        .unwrap()
        .fit(&mut from_disk, &b.train, Some(&b.validation))
        .unwrap();
    assert_eq!(weights(&in_memory), weights(&from_disk));
    assert_eq!(
        r1.epochs.last().unwrap().validation,
        r2.epochs.last().unwrap().validation
    );

    // Files that cannot be read row by row, or that lie about their size, are refused.
    std::fs::write(&path, &bytes[..bytes.len() - 7]).unwrap();
    let err = NpyRows::open(&path).unwrap_err().to_string();
    assert!(err.contains("the header promises 40 rows"), "{err}");
    std::fs::write(&path, [0x1f, 0x8b, 0, 0]).unwrap();
    assert!(NpyRows::open(&path)
        .unwrap_err()
        .to_string()
        .contains("gunzip"));
    std::fs::remove_dir_all(&dir).unwrap();
}
