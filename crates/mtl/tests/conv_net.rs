//! Dense prediction end to end: a segmentation and a depth head on the `ConvNet`
//! encoder–decoder, under hard sharing (rep-grad PCGrad on the shared feature map),
//! cross-stitch (EW), per-task decoders (MGDA) and MTAN attending to maps (UPGrad), trained for a few `train_step`s on
//! tiny synthetic images; both losses fall.

use mtl::core::{
    torch_rng_lock, Architecture, ConvNetConfig, CrossStitchConfig, HardSharing, OptimizerConfig,
    ParamGroups, Result, TaskTarget,
};
use mtl::data::Batch;
use mtl::heads::{DepthHead, SegmentationHead, TaskHead};
use mtl::losses::by_name;
use mtl::{train_step, GradMode, MultiTaskModel, StepData};
use tch::{nn, Device, Kind, Tensor};

const CPU: (Kind, Device) = (Kind::Float, Device::Cpu);
const B: i64 = 8;
const SIDE: i64 = 8;
const CLASSES: i64 = 3;

/// Random 3-channel images; each pixel's class is its brightest channel, its depth
/// `2 + ` the mean of its channels: both need the input at every position.
fn batch() -> Batch {
    let x = Tensor::randn([B, CLASSES, SIDE, SIDE], CPU);
    let classes = x.argmax(1, false);
    let depth = x.mean_dim(1, false, Kind::Float) + 2.0;
    Batch {
        x,
        targets: vec![TaskTarget::new(classes), TaskTarget::new(depth)],
        rows: (0..B as usize).collect(),
    }
}

fn model<A: Architecture + 'static>(build: impl Fn(&nn::Path) -> Result<A>) -> MultiTaskModel {
    let vs = nn::VarStore::new(Device::Cpu);
    let arch = build(&(vs.root() / "arch")).unwrap();
    let dims = arch.feature_dims();
    let root = vs.root();
    let heads: Vec<Box<dyn TaskHead>> = vec![
        Box::new(
            SegmentationHead::new(
                &(mtl::core::task_path(&root, 0) / "head"),
                "seg",
                dims[0],
                CLASSES,
            )
            .unwrap(),
        ),
        Box::new(
            DepthHead::new(&(mtl::core::task_path(&root, 1) / "head"), "depth", dims[1]).unwrap(),
        ),
    ];
    MultiTaskModel::new(vs, arch, heads).unwrap()
}

/// Trains `steps` Adam steps on one fixed batch and returns each task's first and last
/// training loss.
fn train(model: &MultiTaskModel, method: &str, mode: GradMode, steps: u64) -> Vec<(f64, f64)> {
    let data = StepData::Joint(batch());
    let groups = ParamGroups::from_var_store(model.var_store(), 2).unwrap();
    let mut method = by_name(method, 2, 0).unwrap();
    let mut opt = OptimizerConfig::adam(1e-2)
        .build(groups.all_tensors())
        .unwrap();
    let mut first = Vec::new();
    let mut last = Vec::new();
    for step in 0..steps {
        opt.zero_grad();
        let out = train_step(model, &groups, &mut method, mode, &data, step, 0).unwrap();
        if step == 0 {
            first = out.losses.clone();
        }
        last = out.losses;
        opt.step().unwrap();
    }
    first.into_iter().zip(last).collect()
}

fn assert_both_fall(name: &str, losses: &[(f64, f64)]) {
    for (k, &(first, last)) in losses.iter().enumerate() {
        assert!(first.is_finite() && last.is_finite(), "{name}: task {k}");
        assert!(
            last < 0.8 * first,
            "{name}: task {k}'s loss went {first} → {last}"
        );
    }
}

fn conv(in_channels: i64) -> ConvNetConfig {
    ConvNetConfig::new(in_channels)
        .widths([8, 16])
        .dilated_stages(0)
        .out_channels(8)
}

#[test]
fn hard_sharing_with_rep_grad_pcgrad() {
    let _rng = torch_rng_lock();
    tch::manual_seed(0);
    let m = model(|p| HardSharing::new(conv(CLASSES).build(p)?, 2));
    let losses = train(&m, "pcgrad", GradMode::Representation, 25);
    assert_both_fall("hard sharing", &losses);
}

#[test]
fn cross_stitch_over_conv_stages() {
    let _rng = torch_rng_lock();
    tch::manual_seed(1);
    let m = model(|p| {
        let first = conv(CLASSES);
        let second = ConvNetConfig::new(8).widths([8]).dilated_stages(0);
        CrossStitchConfig::new(CLASSES, 2).build(p, &[&first, &second])
    });
    let losses = train(&m, "ew", GradMode::Parameters, 25);
    assert_both_fall("cross-stitch", &losses);
}

#[test]
fn shared_encoder_with_per_task_decoders() {
    let _rng = torch_rng_lock();
    tch::manual_seed(2);
    let m = model(|p| conv(CLASSES).build_with_task_decoders(p, 2));
    let losses = train(&m, "mgda", GradMode::Parameters, 25);
    assert_both_fall("per-task decoders", &losses);
}

#[test]
fn mtan_attends_to_feature_maps_for_dense_heads() {
    let _rng = torch_rng_lock();
    tch::manual_seed(3);
    let m = model(|p| {
        mtl::core::MtanConfig::new(SIDE, SIDE, 2)
            .channels(CLASSES)
            .block_channels([16])
            .output(mtl::core::MtanOutput::Maps)
            .build(p)
    });
    assert_eq!(m.architecture().feature_dims(), [16, 16]);
    // Every pixel's class here is noise of its own, which no coarser map can recover:
    // one block keeps the input's resolution (more blocks upsample from H/2^(L−1)).
    let losses = train(&m, "upgrad", GradMode::Parameters, 25);
    assert_both_fall("mtan maps", &losses);
}
