//! Loading pretrained weights by name (`mtl_core::pretrained`): renames, skips, the
//! report's missing / unexpected / shape-mismatch lists, strict mode, dtype conversion,
//! and the file formats (safetensors, an `mtl` checkpoint, tch's libtorch archive; a
//! PyTorch pickle refused with the conversion to use).

use mtl_core::checkpoint::{save_weights, Checkpoint};
use mtl_core::pretrained::{load_weights, read_weights, LoadOptions};
use mtl_core::{Error, MlpConfig};
use std::path::{Path, PathBuf};
use tch::{nn, Device, Kind, Tensor};

/// A per-test scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mtl-pretrained-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Distinct, deterministic values (no draw from libtorch's generator).
fn values(shape: &[i64], offset: f64) -> Tensor {
    let n: i64 = shape.iter().product();
    (Tensor::arange(n, (Kind::Float, Device::Cpu)) * 0.01 + offset).view(shape)
}

/// A "pretrained" model: an encoder of two layers and a classifier.
fn pretrained(path: &Path) -> nn::VarStore {
    let vs = nn::VarStore::new(Device::Cpu);
    let enc = vs.root().sub("encoder");
    let _ = enc.sub("0").var_copy("weight", &values(&[4, 3], 1.0));
    let _ = enc.sub("0").var_copy("bias", &values(&[4], 2.0));
    let _ = enc.sub("1").var_copy("weight", &values(&[5, 4], 3.0));
    let _ = vs
        .root()
        .sub("classifier")
        .var_copy("weight", &values(&[2, 5], 4.0));
    save_weights(&vs, path).unwrap();
    vs
}

fn var(vs: &nn::VarStore, name: &str) -> Tensor {
    vs.variables()[name].shallow_clone()
}

/// A model built under another prefix gets the file's weights through a rename, bit for
/// bit, with a real `Mlp` trunk (the names its layers are given).
#[test]
fn a_renamed_mlp_trunk_loads_bit_for_bit() {
    let dir = Scratch::new("mlp");
    let file = dir.path("trunk.safetensors");
    let src = nn::VarStore::new(Device::Cpu);
    let cfg = MlpConfig::new([3, 8, 4]);
    let _ = cfg.build(&(src.root() / "trunk")).unwrap();
    save_weights(&src, &file).unwrap();

    let dst = nn::VarStore::new(Device::Cpu);
    let _ = cfg.build(&(dst.root() / "backbone")).unwrap();
    let report = load_weights(
        &dst,
        &file,
        &LoadOptions::new().rename("trunk.", "backbone."),
    )
    .unwrap();
    assert!(report.is_exact(), "{report}");
    let (s, d) = (src.variables(), dst.variables());
    assert_eq!(report.loaded.len(), s.len());
    for (name, t) in &s {
        let to = name.replacen("trunk.", "backbone.", 1);
        assert!(d[&to].equal(t), "{name} → {to}");
    }
}

#[test]
fn missing_unexpected_and_skipped_are_named() {
    let dir = Scratch::new("report");
    let file = dir.path("w.safetensors");
    let src = pretrained(&file);

    let dst = nn::VarStore::new(Device::Cpu);
    let trunk = dst.root().sub("trunk");
    let _ = trunk.sub("0").zeros("weight", &[4, 3]);
    let _ = trunk.sub("0").zeros("bias", &[4]);
    let _ = trunk.sub("1").zeros("weight", &[5, 4]);
    let _ = dst.root().sub("task0").zeros("weight", &[1, 5]);
    let before = var(&dst, "task0.weight").copy();

    let opts = LoadOptions::new()
        .rename("encoder.", "trunk.")
        .strict(false);
    let report = load_weights(&dst, &file, &opts).unwrap();
    assert_eq!(
        report.loaded,
        ["trunk.0.bias", "trunk.0.weight", "trunk.1.weight"]
    );
    assert_eq!(report.missing, ["task0.weight"]);
    assert_eq!(report.unexpected, ["classifier.weight"]);
    assert!(report.skipped.is_empty() && report.mismatched.is_empty());
    assert!(!report.is_exact());
    assert!(var(&dst, "trunk.1.weight").equal(&var(&src, "encoder.1.weight")));
    assert!(var(&dst, "task0.weight").equal(&before));
    let shown = report.to_string();
    assert!(shown.contains("missing: task0.weight"), "{shown}");

    // Skipping by the file's own names: the classifier is skipped, not unexpected.
    let report = load_weights(&dst, &file, &opts.clone().skip("classifier.")).unwrap();
    assert_eq!(report.skipped, ["classifier.weight"]);
    assert!(report.unexpected.is_empty());
}

#[test]
fn strict_mode_refuses_naming_each_problem_and_copies_nothing() {
    let dir = Scratch::new("strict");
    let file = dir.path("w.safetensors");
    pretrained(&file);
    let dst = nn::VarStore::new(Device::Cpu);
    let trunk = dst.root().sub("trunk");
    let _ = trunk.sub("0").zeros("weight", &[4, 3]);
    let _ = trunk.sub("0").zeros("bias", &[4]);
    let _ = trunk.sub("1").zeros("weight", &[5, 4]);
    let _ = dst.root().sub("task0").zeros("weight", &[1, 5]);

    let opts = LoadOptions::new().rename("encoder.", "trunk.");
    assert!(
        opts.strict,
        "strict by default, as PyTorch's load_state_dict"
    );
    let err = load_weights(&dst, &file, &opts).unwrap_err();
    assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
    let msg = err.to_string();
    for name in [
        "`task0.weight`",
        "`classifier.weight`",
        "missing",
        "unexpected",
    ] {
        assert!(msg.contains(name), "{name} in {msg}");
    }
    assert!(
        dst.variables()
            .values()
            .all(|t| t.abs().sum(Kind::Float).double_value(&[]) == 0.0),
        "a refused load copies nothing"
    );

    // With the classifier skipped and the head dropped from the model it is exact.
    let exact = nn::VarStore::new(Device::Cpu);
    let trunk = exact.root().sub("trunk");
    let _ = trunk.sub("0").zeros("weight", &[4, 3]);
    let _ = trunk.sub("0").zeros("bias", &[4]);
    let _ = trunk.sub("1").zeros("weight", &[5, 4]);
    let report = load_weights(&exact, &file, &opts.skip("classifier.")).unwrap();
    assert!(report.is_exact(), "{report}");
}

#[test]
fn a_shape_mismatch_is_an_error_even_when_not_strict() {
    let dir = Scratch::new("shape");
    let file = dir.path("w.safetensors");
    pretrained(&file);
    let dst = nn::VarStore::new(Device::Cpu);
    let trunk = dst.root().sub("trunk");
    let _ = trunk.sub("0").zeros("weight", &[8, 3]);
    let _ = trunk.sub("0").zeros("bias", &[4]);
    let opts = LoadOptions::new()
        .rename("encoder.", "trunk.")
        .strict(false);
    let report =
        mtl_core::pretrained::plan_load(&dst, &read_weights(&file).unwrap(), &opts).unwrap();
    assert_eq!(report.mismatched.len(), 1);
    let m = &report.mismatched[0];
    assert_eq!(
        (m.name.as_str(), m.file_name.as_str()),
        ("trunk.0.weight", "encoder.0.weight")
    );
    assert_eq!(
        (m.file_shape.clone(), m.model_shape.clone()),
        (vec![4, 3], vec![8, 3])
    );

    let err = load_weights(&dst, &file, &opts).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("`trunk.0.weight` (from `encoder.0.weight`): file [4, 3], model [8, 3]"),
        "{msg}"
    );
    // Not even the bias, whose shape fits, was copied.
    assert_eq!(
        var(&dst, "trunk.0.bias")
            .abs()
            .sum(Kind::Float)
            .double_value(&[]),
        0.0
    );
}

#[test]
fn dtypes_are_converted_to_the_variables() {
    let dir = Scratch::new("dtype");
    let file = dir.path("w.safetensors");
    let src = nn::VarStore::new(Device::Cpu);
    let _ = src
        .root()
        .var_copy("w", &values(&[3, 2], 0.5).to_kind(Kind::Double));
    save_weights(&src, &file).unwrap();
    let dst = nn::VarStore::new(Device::Cpu);
    let w = dst.root().zeros("w", &[3, 2]);
    load_weights(&dst, &file, &LoadOptions::new()).unwrap();
    assert_eq!(w.kind(), Kind::Float);
    assert!(w.equal(&values(&[3, 2], 0.5)));
}

#[test]
fn two_names_renamed_onto_one_variable_are_refused() {
    let dir = Scratch::new("dup");
    let file = dir.path("w.safetensors");
    let src = nn::VarStore::new(Device::Cpu);
    let _ = src.root().sub("a").zeros("w", &[2]);
    let _ = src.root().sub("b").zeros("w", &[2]);
    save_weights(&src, &file).unwrap();
    let dst = nn::VarStore::new(Device::Cpu);
    let _ = dst.root().sub("c").zeros("w", &[2]);
    let opts = LoadOptions::new().rename("a.", "c.").rename("b.", "c.");
    let err = load_weights(&dst, &file, &opts).unwrap_err();
    assert!(err.to_string().contains("both load into `c.w`"), "{err}");
    // An empty `from` before other renames would shadow them.
    let err = load_weights(
        &dst,
        &file,
        &LoadOptions::new().rename("", "x.").rename("a.", "c."),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    let err = load_weights(&dst, &file, &LoadOptions::new().skip("")).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
}

/// A training checkpoint is a safetensors file too: its model weights load, and its
/// optimiser and method tensors (`group::name`) are not "unexpected".
#[test]
fn an_mtl_checkpoint_loads_as_its_weights() {
    let dir = Scratch::new("ckpt");
    let file = dir.path("run.safetensors");
    let mut ckpt = Checkpoint::new(serde_json::json!({"epoch": 1}));
    ckpt.extend(None, [("trunk.w".to_string(), values(&[2, 2], 1.0))]);
    ckpt.extend(
        Some("optimizer"),
        [("shared.first.0".to_string(), values(&[2, 2], 9.0))],
    );
    ckpt.save(&file).unwrap();
    let dst = nn::VarStore::new(Device::Cpu);
    let w = dst.root().sub("trunk").zeros("w", &[2, 2]);
    let report = load_weights(&dst, &file, &LoadOptions::new()).unwrap();
    assert!(report.is_exact(), "{report}");
    assert!(w.equal(&values(&[2, 2], 1.0)));
}

/// tch's own archive format (`VarStore::save` to `.ot`) goes through libtorch's loader.
#[test]
fn a_tch_archive_loads() {
    let dir = Scratch::new("ot");
    let file = dir.path("w.ot");
    let src = nn::VarStore::new(Device::Cpu);
    let _ = src.root().sub("trunk").var_copy("w", &values(&[3], 7.0));
    src.save(&file).unwrap();
    let dst = nn::VarStore::new(Device::Cpu);
    let w = dst.root().sub("body").zeros("w", &[3]);
    let report = load_weights(&dst, &file, &LoadOptions::new().rename("trunk.", "body.")).unwrap();
    assert_eq!(report.loaded, ["body.w"]);
    assert!(w.equal(&values(&[3], 7.0)));
}

/// What is neither safetensors nor a libtorch archive (a `torch.save` pickle is a zip
/// libtorch's C++ loader cannot read) is a format error giving the conversion.
#[test]
fn other_files_are_refused_with_the_conversion() {
    let dir = Scratch::new("bad");
    let dst = nn::VarStore::new(Device::Cpu);
    let _ = dst.root().zeros("w", &[1]);
    let zip = dir.path("model.pt");
    std::fs::write(&zip, b"PK\x03\x04 not really an archive").unwrap();
    let text = dir.path("notes.txt");
    std::fs::write(&text, b"hello").unwrap();
    for bad in [&zip, &text] {
        let err = load_weights(&dst, bad, &LoadOptions::new()).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{err}");
        assert!(
            err.to_string().contains("safetensors.torch.save_file"),
            "{err}"
        );
    }
    let err = load_weights(&dst, dir.path("absent.safetensors"), &LoadOptions::new()).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

/// The options are plain data for config files: unknown keys are refused.
#[test]
fn options_deserialise_strictly() {
    let opts: LoadOptions = serde_json::from_value(serde_json::json!({
        "rename": [["bert.", "trunk."]],
        "strict": false
    }))
    .unwrap();
    assert_eq!(
        opts,
        LoadOptions::new().rename("bert.", "trunk.").strict(false)
    );
    assert_eq!(opts.map_name("bert.layer.0.w"), "trunk.layer.0.w");
    assert_eq!(opts.map_name("pooler.w"), "pooler.w");
    let bad: Result<LoadOptions, _> =
        serde_json::from_value(serde_json::json!({"renames": [["a", "b"]]}));
    assert!(bad.unwrap_err().to_string().contains("unknown field"));
}
