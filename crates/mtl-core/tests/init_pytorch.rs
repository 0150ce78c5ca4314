//! Same seed, same weights as PyTorch: after `tch::manual_seed(s)`, layers built by
//! `mtl` hold the numbers `torch.manual_seed(s)` and the same `torch.nn` layers hold
//! (`tests/data/init_reference.json`, written by
//! `crates/mtl/tests/data/parity/make_parity.py`). One test in its own binary, because
//! it draws from libtorch's global generator.

use mtl_core::init::{self, Init};
use mtl_core::{CnnConfig, MlpConfig};
use serde_json::Value;
use tch::{nn, Device, Kind, Tensor};

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn compare(name: &str, got: &Tensor, want: &Value) {
    let shape: Vec<i64> = floats(&want["shape"]).iter().map(|&d| d as i64).collect();
    assert_eq!(got.size(), shape, "{name}: shape");
    let flat = got.to_kind(Kind::Double).reshape([-1]);
    for (i, w) in floats(&want["first"]).into_iter().enumerate() {
        let g = flat.double_value(&[i as i64]);
        // The same draw from the same generator; stored floats are compared with a
        // tolerance all the same.
        assert!((g - w).abs() <= 1e-7, "{name}[{i}]: {g} vs PyTorch {w}");
    }
    let n = flat.size()[0] as f64;
    for (what, g, w) in [
        ("sum", flat.sum(Kind::Double), &want["sum"]),
        ("sum_sq", flat.square().sum(Kind::Double), &want["sum_sq"]),
    ] {
        let (g, w) = (g.double_value(&[]), w.as_f64().unwrap());
        assert!(
            (g - w).abs() <= 1e-7 * n.sqrt(),
            "{name} {what}: {g} vs PyTorch {w}"
        );
    }
}

#[test]
fn layers_hold_pytorchs_numbers_for_the_same_seed() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/init_reference.json"
    );
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for case in reference["cases"].as_array().unwrap() {
        let seed = case["seed"].as_i64().unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        tch::manual_seed(seed);
        let built: Vec<(String, Tensor)> = match seed {
            0 => {
                let l = init::linear(&(&root / "linear"), 7, 5, Init::Pytorch).unwrap();
                let c = init::conv2d(
                    &(&root / "conv"),
                    3,
                    4,
                    3,
                    Default::default(),
                    Init::Pytorch,
                )
                .unwrap();
                vec![
                    ("linear.weight".into(), l.ws),
                    ("linear.bias".into(), l.bs.unwrap()),
                    ("conv.weight".into(), c.ws),
                    ("conv.bias".into(), c.bs.unwrap()),
                ]
            }
            1 => {
                MlpConfig::new([128, 256, 256])
                    .build(&(&root / "trunk"))
                    .unwrap();
                vs.variables().into_iter().collect()
            }
            _ => {
                CnnConfig::new(36, 36).build(&(&root / "lenet")).unwrap();
                vs.variables().into_iter().collect()
            }
        };
        let layers = case["layers"].as_object().unwrap();
        assert_eq!(built.len(), layers.len(), "seed {seed}");
        for (name, t) in &built {
            compare(name, t, &layers[name]);
        }
    }
}
