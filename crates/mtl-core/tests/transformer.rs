//! The Transformer encoder: padding changes nothing at real positions (per token and
//! pooled), every parameter receives a gradient, layers start as PyTorch's, and bad
//! input is a typed error.

use mtl_core::{torch_rng_lock, Backbone, Pooling, TransformerConfig};
use tch::{nn, Device, Kind, Tensor};

fn ids(rows: &[&[i64]], len: usize) -> Tensor {
    let flat: Vec<i64> = rows
        .iter()
        .flat_map(|r| r.iter().copied().chain(std::iter::repeat(0)).take(len))
        .collect();
    Tensor::from_slice(&flat).view([rows.len() as i64, len as i64])
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn padding_changes_nothing_at_real_positions_or_in_the_pooled_rows() {
    let _rng = torch_rng_lock();
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = TransformerConfig::new(30, 12)
        .d_model(16)
        .heads(2)
        .layers(2);
    let enc = cfg.build(&(vs.root() / "enc")).unwrap();
    let rows: [&[i64]; 2] = [&[3, 4, 5], &[7, 8, 9, 10, 11]];
    let short = enc.forward_t(&ids(&rows, 5), false).unwrap();
    let long = enc.forward_t(&ids(&rows, 9), false).unwrap();
    assert!(max_diff(&short, &long.narrow(1, 0, 5)) < 1e-5);
    assert_eq!(
        long.narrow(1, 5, 4)
            .abs()
            .sum(Kind::Float)
            .double_value(&[]),
        0.0
    );
    // A token's output does not depend on another sentence's padding either.
    let alone = enc.forward_t(&ids(&rows[..1], 3), false).unwrap();
    assert!(max_diff(&alone.get(0), &short.get(0).narrow(0, 0, 3)) < 1e-5);
    for pooling in [Pooling::Mean, Pooling::Cls] {
        let vs = nn::VarStore::new(Device::Cpu);
        let pooled = cfg.clone().pooling(pooling).build(&vs.root()).unwrap();
        let a = pooled.forward_t(&ids(&rows, 5), false).unwrap();
        let b = pooled.forward_t(&ids(&rows, 9), false).unwrap();
        assert_eq!(a.size(), [2, 16]);
        assert!(max_diff(&a, &b) < 1e-5, "{pooling:?}");
    }
}

#[test]
fn every_parameter_receives_a_gradient() {
    let _rng = torch_rng_lock();
    tch::manual_seed(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let enc = TransformerConfig::new(20, 8)
        .d_model(8)
        .heads(2)
        .layers(2)
        .build(&vs.root())
        .unwrap();
    let x = Tensor::randint_low(1, 20, [3, 8], (Kind::Int64, Device::Cpu));
    enc.forward_t(&x, true)
        .unwrap()
        .pow_tensor_scalar(2)
        .sum(Kind::Float)
        .backward();
    for (name, v) in vs.variables() {
        let g = v.grad();
        assert!(
            g.defined() && g.abs().sum(Kind::Float).double_value(&[]) > 0.0,
            "{name}"
        );
    }
}

#[test]
fn layers_start_as_pytorchs_modules() {
    let _rng = torch_rng_lock();
    tch::manual_seed(2);
    let vs = nn::VarStore::new(Device::Cpu);
    let d = 64;
    TransformerConfig::new(500, 100)
        .d_model(d)
        .layers(1)
        .build(&vs.root())
        .unwrap();
    let v = vs.variables();
    let max = |n: &str| v[n].abs().max().double_value(&[]);
    // nn.Embedding: N(0, 1).
    let std = v["tok"].std(true).double_value(&[]);
    assert!((std - 1.0).abs() < 0.05, "{std}");
    // nn.MultiheadAttention: xavier_uniform in_proj (bound √(6/(d + 3d))), zero biases.
    let xavier = (6.0 / (4 * d) as f64).sqrt();
    assert!(
        max("layer0.attn.in_proj_weight") <= xavier
            && max("layer0.attn.in_proj_weight") > 0.9 * xavier
    );
    assert_eq!(
        max("layer0.attn.in_proj_bias") + max("layer0.attn.out_proj.bias"),
        0.0
    );
    // nn.Linear: U(±1/√fan_in).
    assert!(max("layer0.ff1.weight") <= 1.0 / (d as f64).sqrt());
    assert!(max("layer0.ff2.weight") <= 1.0 / ((4 * d) as f64).sqrt());
    // nn.LayerNorm: weight 1, bias 0.
    assert_eq!(v["ln.weight"].min().double_value(&[]), 1.0);
    assert_eq!(max("ln.bias"), 0.0);
}

#[test]
fn bad_configs_and_inputs_are_typed_errors() {
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    assert!(TransformerConfig::new(10, 8)
        .d_model(10)
        .heads(3)
        .build(&root)
        .is_err());
    assert!(TransformerConfig::new(10, 8)
        .pad_id(Some(10))
        .build(&root)
        .is_err());
    assert!(TransformerConfig::new(10, 8)
        .dropout(1.0)
        .build(&root)
        .is_err());
    let enc = TransformerConfig::new(10, 4)
        .d_model(8)
        .heads(2)
        .layers(1)
        .build(&(&root / "e"))
        .unwrap();
    let err = |x: Tensor| enc.forward_t(&x, false).unwrap_err().to_string();
    assert!(err(ids(&[&[1, 2, 3, 4, 5]], 5)).contains("max_len = 4"));
    assert!(err(ids(&[&[1, 12]], 2)).contains("token ids in 0..10"));
    assert!(err(Tensor::zeros([1, 2], (Kind::Float, Device::Cpu))).contains("integer token ids"));
}
