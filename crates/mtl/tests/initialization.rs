//! Every layer `mtl` builds starts as PyTorch's would: each affine weight and bias of a
//! freshly built architecture or head lies within PyTorch's bound `1/√fan_in` (and
//! fills it: no layer is drawn from a much narrower range by mistake), and the
//! layer-specific starts (DSelect-k's gates, cross-stitch units) are LibMTL's.

use mtl::core::arch::{
    AspMtlConfig, CgcConfig, CrossStitchConfig, DSelectKConfig, MlpBuilder, MmoeConfig, MtanConfig,
    PleConfig, SoftSharingConfig, TaskTowers,
};
use mtl::core::init::{fans, Init};
use mtl::core::{CnnConfig, MlpConfig, MultiInput};
use mtl::heads::{
    BinaryHead, ClassificationHead, DepthHead, MultiLabelHead, NormalHead, RegressionHead,
    RegressionLoss, SegmentationHead, SequenceHead,
};
use tch::{nn, Device, Kind, Tensor};

fn max_abs(t: &Tensor) -> f64 {
    t.abs().max().double_value(&[])
}

/// Checks every `….weight` (≥ 2 dims) and its `….bias` in `vs` against `1/√fan_in`;
/// `narrower` lists name fragments of layers that start deliberately narrower (they
/// must still be within the bound). Returns how many layers it checked.
fn check_bounds(vs: &nn::VarStore, narrower: &[&str]) -> usize {
    let vars = vs.variables();
    let mut checked = 0;
    for (name, w) in &vars {
        let Some(stem) = name.strip_suffix("weight") else {
            continue;
        };
        if w.dim() < 2 {
            continue;
        }
        let (fan_in, _) = fans(&w.size()).unwrap();
        let bound = 1.0 / (fan_in as f64).sqrt();
        let (wmax, bmax) = (max_abs(w), max_abs(&vars[&format!("{stem}bias")]));
        assert!(wmax <= bound * (1.0 + 1e-6), "{name}: {wmax} > 1/√{fan_in}");
        assert!(
            bmax <= bound * (1.0 + 1e-6),
            "{stem}bias: {bmax} > 1/√{fan_in}"
        );
        let narrow = narrower.iter().any(|n| name.contains(n));
        if !narrow && w.numel() >= 64 {
            assert!(wmax > 0.8 * bound, "{name}: {wmax} far inside 1/√{fan_in}");
        }
        checked += 1;
    }
    checked
}

#[test]
fn architectures_start_within_pytorchs_bounds() {
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let experts = MlpBuilder::new([32, 16]);
    MlpConfig::new([20, 64, 64, 8])
        .build(&(&root / "mlp"))
        .unwrap();
    CnnConfig::new(28, 28).build(&(&root / "cnn")).unwrap();
    let mmoe = MmoeConfig::new(20, 4, 2)
        .build(&(&root / "mmoe"), &experts)
        .unwrap();
    TaskTowers::build(mmoe, &(&root / "towers"), &MlpBuilder::new([8])).unwrap();
    CgcConfig::new(20, 2)
        .build(&(&root / "cgc"), &experts)
        .unwrap();
    PleConfig::new(20, 2)
        .build(&(&root / "ple"), &experts)
        .unwrap();
    DSelectKConfig::new(20, 4, 2)
        .build(&(&root / "dselect"), &experts)
        .unwrap();
    CrossStitchConfig::new(20, 2)
        .build(&(&root / "stitch"), &[&experts])
        .unwrap();
    MtanConfig::new(8, 8, 2).build(&(&root / "mtan")).unwrap();
    SoftSharingConfig::new(20, 2)
        .build(&(&root / "soft"), &experts)
        .unwrap();
    AspMtlConfig::new(20, 2)
        .build(&(&root / "asp"), &experts, &experts)
        .unwrap();
    let trunk = MlpConfig::new([16, 16])
        .build(&(&root / "mi_trunk"))
        .unwrap();
    MultiInput::new(&(&root / "mi"), &[5, 7], 16, trunk).unwrap();
    let checked = check_bounds(&vs, &["dselect"]);
    assert!(checked > 40, "{checked}");
}

#[test]
fn heads_start_within_pytorchs_bounds() {
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    ClassificationHead::new(&(&root / "a"), "a", 100, 10).unwrap();
    BinaryHead::new(&(&root / "b"), "b", 100).unwrap();
    RegressionHead::new(&(&root / "c"), "c", 100, 3, RegressionLoss::Mse).unwrap();
    MultiLabelHead::new(&(&root / "d"), "d", 100, 5).unwrap();
    SegmentationHead::new(&(&root / "e"), "e", 64, 4).unwrap();
    DepthHead::new(&(&root / "f"), "f", 64).unwrap();
    NormalHead::new(&(&root / "g"), "g", 64).unwrap();
    SequenceHead::new(&(&root / "h"), "h", 100, 6).unwrap();
    assert_eq!(check_bounds(&vs, &[]), 8);
}

#[test]
fn libmtl_specific_starts() {
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    // DSelect-k: selector logits U(±γ/100), selector-weight logits U(±0.05).
    DSelectKConfig::new(50, 8, 2)
        .gamma(2.0)
        .build(&root, &MlpBuilder::new([4]))
        .unwrap();
    let vars = vs.variables();
    for k in 0..2 {
        for (layer, bound) in [("selectors", 0.02), ("weights", 0.05)] {
            for p in ["weight", "bias"] {
                let name = format!("task{k}.gate.{layer}.{p}");
                let m = max_abs(&vars[&name]);
                // A bias of k = 2 entries may well draw inside half the bound.
                let fills = p == "bias" || m > 0.5 * bound;
                assert!(m <= bound * (1.0 + 1e-6) && fills, "{name}: {m}");
            }
        }
    }
    // Cross-stitch: the paper's near-identity units by default, LibMTL's ones on request.
    let one = CrossStitchConfig::new(4, 2)
        .libmtl_units()
        .build(&(&root / "cs"), &[&MlpBuilder::new([3])])
        .unwrap();
    assert!(one.units()[0].equal(&Tensor::ones([2, 2], (Kind::Float, Device::Cpu))));
}

#[test]
fn the_old_tch_default_is_an_option() {
    let _rng = mtl::core::torch_rng_lock();
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let mlp = MlpConfig::new([600, 400])
        .init(Init::KaimingRelu)
        .last_layer_init(Init::KaimingRelu);
    mlp.build(&vs.root()).unwrap();
    let w = &vs.variables()["0.weight"];
    // libtorch draws in f32 from [-b, b) with b rounded to f32, which may lie a hair
    // above the f64 bound.
    let bound = (6.0f64 / 600.0).sqrt();
    let m = max_abs(w);
    assert!(
        m <= bound * (1.0 + 1e-6) && m > 0.95 * bound,
        "{m} vs {bound}"
    );
    let vs = nn::VarStore::new(Device::Cpu);
    MlpConfig::new([6, 8, 3])
        .last_layer_init(Init::Zeros)
        .build(&vs.root())
        .unwrap();
    let vars = vs.variables();
    assert_eq!(max_abs(&vars["1.weight"]) + max_abs(&vars["1.bias"]), 0.0);
    assert!(max_abs(&vars["0.weight"]) > 0.0);
}
