//! Every sharing architecture over backbones whose output is a feature map
//! `[B, C, H, W]` (the `ConvNet` encoder–decoder) rather than a vector: task features
//! keep their maps, every trainable parameter gets a gradient, every convolution starts
//! within PyTorch's bound, and shapes that cannot work are typed errors.

use mtl_core::init::{fans, pytorch_bias_bound, pytorch_weight_bound};
use mtl_core::{
    torch_rng_lock, Architecture, AspMtlConfig, Backbone, CgcConfig, ConvNetConfig, ConvNorm,
    CrossStitchConfig, DSelectKConfig, Error, HardSharing, MmoeConfig, MtanConfig, MultiInput,
    ParamGroups, PleConfig, Result, SoftSharingConfig, TaskFeatures,
};
use tch::{nn, Device, Kind, Tensor};

const CPU: (Kind, Device) = (Kind::Float, Device::Cpu);
/// Batch, input channels, side of the square images, output channels of every conv net.
const B: i64 = 2;
const C: i64 = 3;
const SIDE: i64 = 8;
const OUT: i64 = 5;

/// A small conv net reading `d` channels: two stages (4, 6), the second strided, so the
/// decoder upsamples once; `OUT` channels at the input's resolution.
fn conv(p: &nn::Path, d: i64) -> Result<Box<dyn Backbone>> {
    let net = ConvNetConfig::new(d)
        .widths([4, 6])
        .dilated_stages(0)
        .out_channels(OUT)
        .build(p)?;
    Ok(Box::new(net))
}

fn images() -> Tensor {
    Tensor::randn([B, C, SIDE, SIDE], CPU)
}

/// Backpropagates a random projection of every task's features (plus the auxiliary
/// term) and checks that every trainable variable of `vs` got a non-zero gradient.
fn every_parameter_learns(name: &str, vs: &nn::VarStore, f: &TaskFeatures) {
    let mut total = Tensor::zeros([], CPU);
    for t in &f.per_task {
        total += (t * Tensor::randn(t.size(), CPU)).sum(Kind::Float);
    }
    if let Some(aux) = &f.auxiliary_loss {
        total += aux;
    }
    total.backward();
    for (n, t) in vs.variables() {
        if !t.requires_grad() {
            continue;
        }
        let g = t.grad();
        let sum = if g.defined() {
            g.abs().sum(Kind::Float).double_value(&[])
        } else {
            0.0
        };
        assert!(sum > 0.0, "{name}: `{n}` gets no gradient");
    }
}

/// Builds `arch` under a fresh var store and runs the checks on images.
fn check<A: Architecture>(name: &str, build: impl Fn(&nn::Path) -> Result<A>, want: &[i64]) {
    let vs = nn::VarStore::new(Device::Cpu);
    let arch = build(&(vs.root() / "arch")).unwrap_or_else(|e| panic!("{name}: {e}"));
    let f = arch
        .forward_t(&images(), true)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(f.per_task.len(), 2, "{name}");
    for (k, t) in f.per_task.iter().enumerate() {
        assert_eq!(t.size(), want, "{name}: task {k}");
        assert_eq!(arch.feature_dims()[k], want[1], "{name}: feature_dims");
    }
    let groups = ParamGroups::from_var_store(&vs, 2).unwrap();
    assert!(
        groups
            .shared
            .iter()
            .chain(groups.task.iter().flatten())
            .all(|p| !p.name.contains("running")),
        "{name}: batch-norm statistics are not parameters"
    );
    every_parameter_learns(name, &vs, &f);
}

#[test]
fn every_architecture_keeps_feature_maps() {
    let _rng = torch_rng_lock();
    tch::manual_seed(0);
    let maps = [B, OUT, SIDE, SIDE];
    check("hard sharing", |p| HardSharing::new(conv(p, C)?, 2), &maps);
    check(
        "per-task decoders",
        |p| {
            ConvNetConfig::new(C)
                .widths([4, 6, 6])
                .out_channels(OUT)
                .build_with_task_decoders(p, 2)
        },
        &maps,
    );
    check("mmoe", |p| MmoeConfig::new(C, 3, 2).build(p, &conv), &maps);
    check("cgc", |p| CgcConfig::new(C, 2).build(p, &conv), &maps);
    check(
        "ple",
        |p| PleConfig::new(C, 2).num_layers(2).build(p, &conv),
        &maps,
    );
    check(
        "dselect_k",
        |p| {
            DSelectKConfig::new(C, 4, 2)
                .entropy_weight(0.1)
                .build(p, &conv)
        },
        &maps,
    );
    check(
        "cross_stitch",
        |p| CrossStitchConfig::new(C, 2).build(p, &[&conv, &conv]),
        &maps,
    );
    check(
        "soft_sharing",
        |p| SoftSharingConfig::new(C, 2).build(p, &conv),
        &maps,
    );
    check(
        "asp_mtl",
        |p| AspMtlConfig::new(C, 2).build(p, &conv, &conv),
        &[B, 2 * OUT, SIDE, SIDE],
    );
    check(
        "multi_input",
        |p| MultiInput::new(p, &[C, C], 4, conv(&(p / "trunk"), 4)?),
        &maps,
    );
    // MTAN is a conv net of its own: it reads the images as they are and gives pooled
    // vectors.
    check(
        "mtan",
        |p| {
            MtanConfig::new(SIDE, SIDE, 2)
                .channels(C)
                .block_channels([4, 6])
                .build(p)
        },
        &[B, 6],
    );
}

#[test]
fn cross_stitch_mixes_whole_maps() {
    let _rng = torch_rng_lock();
    tch::manual_seed(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let cs = CrossStitchConfig::new(C, 2)
        .build(&vs.root(), &[&conv, &conv])
        .unwrap();
    let x = images();
    // Training mode, so batch norm normalises with the batch's statistics: in evaluation
    // a fresh net's running statistics (mean 0, variance 1) leave its maps tiny.
    // With identity units the towers run apart; then task 0's maps are its own tower's.
    tch::no_grad(|| {
        for u in cs.units() {
            u.shallow_clone().copy_(&Tensor::eye(2, CPU));
        }
    });
    let apart = cs.forward_t(&x, true).unwrap().per_task;
    tch::no_grad(|| {
        for u in cs.units() {
            u.shallow_clone()
                .copy_(&Tensor::from_slice(&[0.5f32, 0.5, 0.5, 0.5]).view([2, 2]));
        }
    });
    // Averaging units make both tasks read the same (mixed) maps, position by position.
    let mixed = cs.forward_t(&x, true).unwrap().per_task;
    assert!(mixed[0].allclose(&mixed[1], 1e-6, 1e-6, false));
    assert!(!apart[0].allclose(&apart[1], 1e-3, 1e-3, false));
}

#[test]
fn every_conv_starts_within_pytorchs_bound() {
    let _rng = torch_rng_lock();
    tch::manual_seed(2);
    for norm in [ConvNorm::Batch, ConvNorm::None] {
        let vs = nn::VarStore::new(Device::Cpu);
        ConvNetConfig::new(3)
            .widths([8, 16, 16])
            .blocks(2)
            .norm(norm)
            .build(&vs.root())
            .unwrap();
        let vars = vs.variables();
        let mut convs = 0;
        for (name, w) in &vars {
            let shape = w.size();
            if shape.len() != 4 {
                continue;
            }
            convs += 1;
            let (fan_in, _) = fans(&shape).unwrap();
            let bound = pytorch_weight_bound(fan_in);
            let max = w.abs().max().double_value(&[]);
            assert!(max <= bound * (1.0 + 1e-6), "{name}: {max} > {bound}");
            assert!(max > 0.5 * bound, "{name}: {max} far inside {bound}");
            let bias = format!("{}bias", &name[..name.len() - "weight".len()]);
            match (norm, vars.get(&bias)) {
                (ConvNorm::None, Some(b)) => {
                    let max = b.abs().max().double_value(&[]);
                    assert!(max <= pytorch_bias_bound(fan_in) * (1.0 + 1e-6), "{bias}");
                }
                (ConvNorm::None, None) => panic!("{name} has no bias"),
                (ConvNorm::Batch, b) => assert!(b.is_none(), "{bias} before batch norm"),
            }
        }
        // The stem, 3 stages × 2 blocks × 2 convs, one shortcut (stage 1 changes width
        // and resolution; stage 2, dilated, neither), the decoder's up0 and out.
        assert_eq!(convs, 1 + 3 * 2 * 2 + 1 + 2, "{norm:?}");
        // Batch norm starts as PyTorch's: weight 1, bias 0.
        for (name, t) in &vars {
            if name.ends_with("norm.weight") {
                assert!(t.equal(&t.ones_like()), "{name}");
            } else if name.ends_with("norm.bias") {
                assert_eq!(t.abs().sum(Kind::Float).double_value(&[]), 0.0, "{name}");
            }
        }
    }
}

#[test]
fn shapes_that_cannot_work_are_typed_errors() {
    let _rng = torch_rng_lock();
    tch::manual_seed(3);
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let wrong_channels = Tensor::zeros([B, C + 1, SIDE, SIDE], CPU);
    let odd_side = Tensor::zeros([B, C, SIDE + 1, SIDE], CPU);
    let hps = HardSharing::new(conv(&(&root / "h"), C).unwrap(), 2).unwrap();
    let mmoe = MmoeConfig::new(C, 2, 2)
        .build(&(&root / "m"), &conv)
        .unwrap();
    let cs = CrossStitchConfig::new(C, 2)
        .build(&(&root / "c"), &[&conv])
        .unwrap();
    let archs: [(&str, &dyn Architecture); 3] = [
        ("hard-sharing", &hps),
        ("mmoe", &mmoe),
        ("cross_stitch", &cs),
    ];
    for (name, arch) in archs {
        match arch.forward_t(&wrong_channels, false) {
            Err(Error::Shape { context, got, .. }) => {
                assert!(context.contains(name), "{name}: {context}");
                assert!(got.contains(&format!("{}", C + 1)), "{name}: {got}");
            }
            other => panic!("{name}: {other:?}"),
        }
        match arch.forward_t(&odd_side, false) {
            Err(Error::Shape { got, expected, .. }) => {
                assert!(got.contains("9×8"), "{name}: {got}");
                assert!(expected.contains("multiples of 2"), "{name}: {expected}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // MTAN's images of the wrong size name MTAN and the size.
    let mtan = MtanConfig::new(SIDE, SIDE, 2)
        .channels(C)
        .build(&(&root / "mtan"))
        .unwrap();
    let err = mtan.forward_t(&odd_side, false).unwrap_err();
    assert!(err.to_string().contains("mtan input"), "{err}");
    // A conv expert fed vectors: a shape error naming the conv net, not a libtorch one.
    let err = mmoe
        .forward_t(&Tensor::zeros([B, C], CPU), false)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Shape { context, .. } if context.contains("conv net")),
        "{err}"
    );
}
