//! `mtl train` on arrays: an `.npz` file of generated dense scenes trains a conv net
//! with segmentation, depth and normals heads (baselines and Δm included), the bundle
//! reloads, the example config runs on data written as its comment says; and each
//! refusal names the file, the array, the task or the key at fault.

use mtl::core::Error;
use mtl::data::{dense_scenes, write_npz, DenseArray, DenseScenesConfig};
use mtl::Bundle;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mtl-cli-tensor-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The arrays of `images` dense scenes of 16×16: `x`, `segment`, `depth`, `normals`.
fn scenes(images: usize) -> Vec<(String, Tensor)> {
    let data = dense_scenes(&DenseScenesConfig {
        images,
        size: 16,
        ..Default::default()
    })
    .unwrap();
    let mut arrays = vec![("x".to_string(), data.features().shallow_clone())];
    for t in data.tasks() {
        arrays.push((t.name.clone(), t.values.shallow_clone()));
    }
    arrays
}

fn write(path: &Path, arrays: &[(String, Tensor)]) {
    let dense: Vec<(String, DenseArray)> = arrays
        .iter()
        .map(|(n, t)| (n.clone(), DenseArray::from_tensor(t).unwrap()))
        .collect();
    let named: Vec<(&str, &DenseArray)> = dense.iter().map(|(n, a)| (n.as_str(), a)).collect();
    write_npz(path, &named).unwrap();
}

const DATA: &str = r#"
[data]
npz = "scenes.npz"
features = "x"
targets = [
  { array = "segment", kind = "segmentation", classes = 4 },
  { array = "depth", kind = "depth" },
  { array = "normals", kind = "normals" },
]
validation = 0.25
test = 0.25
"#;

const MODEL: &str = r#"
[model]
arch = "conv_net"
widths = [4, 8]
dilated_stages = 1
out_channels = 4
"#;

const TRAIN: &str = r#"
[train]
epochs = 2
batch_size = 8
method = "ew"
progress = false
[output]
plots = true
"#;

/// Writes `config` and the arrays into a fresh directory and runs it.
fn run(name: &str, config: &str, arrays: &[(String, Tensor)]) -> mtl::core::Result<PathBuf> {
    let dir = temp(name);
    write(&dir.join("scenes.npz"), arrays);
    let path = dir.join("run.toml");
    std::fs::write(&path, config).unwrap();
    let overrides = mtl_cli::Overrides {
        out: Some(dir.join("out")),
        quiet: true,
        ..Default::default()
    };
    mtl_cli::run(&path, &overrides).map(|_| dir)
}

#[test]
fn a_conv_net_trains_segmentation_depth_and_normals_from_npz() {
    let config = format!("{DATA}{MODEL}{TRAIN}baselines = true\n");
    let dir = run("train", &config, &scenes(32)).unwrap();
    let out = dir.join("out");
    let report: mtl::RunReport =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report.tasks, ["segment", "depth", "normals"]);
    assert_eq!(report.epochs.len(), 2);
    let test = report.test.as_ref().unwrap();
    for (k, metric) in [(0, "miou"), (1, "abs_err"), (2, "mean_angle")] {
        let v = test.metric(k, metric).unwrap();
        assert!(v.is_finite(), "{metric} = {v}");
    }
    // Δm against single-task conv nets: over every metric of the three dense tasks, or,
    // when a baseline scored 0 on one after so short a run, over each primary metric.
    let delta = report.delta_m.as_ref().unwrap();
    for task in ["segment", "depth", "normals"] {
        assert!(
            delta.tasks.iter().any(|t| t.task == task),
            "{:?}",
            delta.tasks
        );
    }
    assert!(out.join("losses.png").is_file());
    let bundle = Bundle::load(&out).unwrap();
    assert_eq!(bundle.model().task_names(), ["segment", "depth", "normals"]);
    let spec = bundle.model().spec().unwrap();
    assert!(matches!(spec.architecture, mtl::ArchSpec::ConvNet { .. }));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn one_shared_decoder_and_a_safetensors_file() {
    let dir = temp("safetensors");
    let arrays = scenes(16);
    let views: Vec<(String, DenseArray)> = arrays
        .iter()
        .map(|(n, t)| (n.clone(), DenseArray::from_tensor(t).unwrap()))
        .collect();
    let data: Vec<(&str, safetensors::tensor::TensorView)> = views
        .iter()
        .map(|(n, a)| {
            let dtype = match a.dtype() {
                mtl::data::DType::I64 => safetensors::Dtype::I64,
                _ => safetensors::Dtype::F32,
            };
            let shape = a.shape().to_vec();
            (
                n.as_str(),
                safetensors::tensor::TensorView::new(dtype, shape, a.as_bytes()).unwrap(),
            )
        })
        .collect();
    let bytes = safetensors::tensor::serialize(data, &None).unwrap();
    std::fs::write(dir.join("scenes.safetensors"), bytes).unwrap();
    let config = format!(
        "{}{MODEL}decoders = \"shared\"\n{TRAIN}",
        DATA.replace(
            "npz = \"scenes.npz\"",
            "safetensors = \"scenes.safetensors\""
        )
    );
    let path = dir.join("run.toml");
    std::fs::write(&path, config).unwrap();
    let overrides = mtl_cli::Overrides {
        out: Some(dir.join("out")),
        quiet: true,
        epochs: Some(1),
        ..Default::default()
    };
    mtl_cli::run(&path, &overrides).unwrap();
    let bundle = Bundle::load(dir.join("out")).unwrap();
    assert!(matches!(
        bundle.model().spec().unwrap().architecture,
        mtl::ArchSpec::ConvNet {
            decoders: mtl::ConvDecoders::Shared,
            ..
        }
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_example_config_runs_on_the_data_its_comment_writes() {
    let dir = temp("example");
    let config =
        std::fs::read_to_string(repo().join("examples/configs/dense_scenes.toml")).unwrap();
    assert!(config.contains("--example dense_scenes_npz"));
    std::fs::write(dir.join("dense_scenes.toml"), &config).unwrap();
    write(&dir.join("dense_scenes.npz"), &scenes(24));
    let overrides = mtl_cli::Overrides {
        out: Some(dir.join("out")),
        quiet: true,
        epochs: Some(1),
        ..Default::default()
    };
    let outcome = mtl_cli::run(&dir.join("dense_scenes.toml"), &overrides).unwrap();
    assert_eq!(outcome.report.tasks, ["segment", "depth", "normals"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The error of running `config` on `arrays`, as (variant, text).
fn refusal(name: &str, config: &str, arrays: &[(String, Tensor)]) -> (Error, String) {
    let err = run(name, config, arrays).unwrap_err();
    let text = err.to_string();
    (err, text)
}

fn assert_input(err: &Error, array: &str, task: Option<&str>) {
    match err {
        Error::Input {
            path,
            array: a,
            task: t,
            ..
        } => {
            assert!(path.ends_with("scenes.npz"), "{err}");
            assert_eq!(a, array, "{err}");
            assert_eq!(t.as_deref(), task, "{err}");
        }
        other => panic!("expected Error::Input, got {other}"),
    }
}

fn replace(arrays: &[(String, Tensor)], name: &str, t: Tensor) -> Vec<(String, Tensor)> {
    arrays
        .iter()
        .map(|(n, a)| {
            let a = if n == name {
                t.shallow_clone()
            } else {
                a.shallow_clone()
            };
            (n.clone(), a)
        })
        .collect()
}

#[test]
fn array_problems_name_the_file_the_array_and_the_task() {
    let arrays = scenes(8);
    let full = format!("{DATA}{MODEL}{TRAIN}");

    // A missing array.
    let (err, text) = refusal(
        "missing",
        &full.replace("array = \"depth\"", "array = \"dept\", name = \"depth\""),
        &arrays,
    );
    assert_input(&err, "dept", Some("depth"));
    assert!(
        text.contains("no such array") && text.contains("depth"),
        "{text}"
    );

    // A row count that differs from the features'.
    let short = replace(&arrays, "depth", arrays[2].1.narrow(0, 0, 6));
    let (err, text) = refusal("rows", &full, &short);
    assert_input(&err, "depth", Some("depth"));
    assert!(
        text.contains("has 6 rows") && text.contains("have 8"),
        "{text}"
    );

    // Float class labels.
    let float = replace(&arrays, "segment", arrays[1].1.to_kind(Kind::Float));
    let (err, text) = refusal("dtype", &full, &float);
    assert_input(&err, "segment", Some("segment"));
    assert!(
        text.contains("float") && text.contains("integer class labels"),
        "{text}"
    );

    // A class outside [0, classes) that is not the ignore index, by task, row and pixel;
    // the ignore index itself is fine.
    let seg = arrays[1].1.copy();
    let _ = seg.get(3).get(5).get(7).fill_(9);
    let bad = replace(&arrays, "segment", seg);
    let (err, text) = refusal("range", &full, &bad);
    assert_input(&err, "segment", Some("segment"));
    assert!(
        text.contains("label 9 at row 3, pixel (y 5, x 7) is outside [0, 4)"),
        "{text}"
    );
    let ignored = full.replace("classes = 4 }", "classes = 4, ignore_index = 255 }");
    let seg = arrays[1].1.copy();
    let _ = seg.get(0).get(0).get(0).fill_(255);
    run("ignored", &ignored, &replace(&arrays, "segment", seg)).unwrap();

    // Images with another channel count than the model's.
    let (err, text) = refusal(
        "channels",
        &full.replace("out_channels = 4", "out_channels = 4\nin_channels = 3"),
        &arrays,
    );
    assert_input(&err, "x", None);
    assert!(
        text.contains("1 channels") && text.contains("in_channels = 3"),
        "{text}"
    );

    // Image sizes the encoder cannot halve.
    let (err, text) = refusal(
        "factor",
        &full
            .replace("dilated_stages = 1", "dilated_stages = 0")
            .replace("widths = [4, 8]", "widths = [4, 4, 4, 4, 4, 4]"),
        &arrays,
    );
    assert_input(&err, "x", None);
    assert!(text.contains("multiples of 32"), "{text}");
}

fn config_error(config: &str) -> String {
    let path = Path::new("run.toml");
    match mtl_cli::RunConfig::parse(config, path).and_then(|c| c.check().map(|_| c)) {
        Ok(_) => panic!("accepted:\n{config}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn settings_of_another_architecture_or_input_are_refused_by_name() {
    let base = format!("{DATA}{TRAIN}");
    for (model, expected) in [
        (
            "[model]\narch = \"mmoe\"\nwidths = [4]\n",
            "model.widths is a setting of arch = \"conv_net\", not of arch = \"mmoe\"",
        ),
        (
            "[model]\narch = \"conv_net\"\nhidden = [4]\n",
            "model.hidden is a setting of arch = \"hard_sharing\" or \"mmoe\" or \"cross_stitch\"",
        ),
        (
            "[model]\narch = \"conv_net\"\nexperts = 2\n",
            "model.experts is a setting of arch = \"mmoe\", not of arch = \"conv_net\"",
        ),
        (
            "[model]\narch = \"conv_net\"\ndecoders = \"sharde\"\n",
            "did you mean `shared`?",
        ),
        (
            "[model]\narch = \"conv_net\"\nwidth = [4]\n",
            "did you mean `widths`?",
        ),
        (
            "[model]\narch = \"conv_net\"\nwidths = [4]\ndilated_stages = 1\n",
            "dilated stages",
        ),
    ] {
        let text = config_error(&base.replace("[train]", &format!("{model}[train]")));
        assert!(text.contains(expected), "{model}: {text}");
    }
    let model = MODEL;
    for (data, expected) in [
        (
            DATA.replace("test = 0.25", "test = 0.25\nfeature_scaling = \"standard\""),
            "data.feature_scaling is a setting of CSV input",
        ),
        (
            DATA.replace("test = 0.25", "test = 0.25\nstandardize_targets = true"),
            "data.standardize_targets is a setting of CSV input",
        ),
        (
            DATA.replace("{ array = \"depth\"", "{ arary = \"depth\""),
            "unknown key `arary` in [data.targets[1]]; did you mean `array`?",
        ),
        (
            DATA.replace(
                "npz = \"scenes.npz\"",
                "npz = \"scenes.npz\"\ncsv = \"a.csv\"",
            ),
            "give exactly one",
        ),
        (
            DATA.replace("features = \"x\"", "features = [\"x\"]"),
            "data.features must name the features' array",
        ),
        (
            DATA.replace("kind = \"depth\"", "kind = \"depth\", classes = 3"),
            "classes is a setting of classes, segmentation and sequence targets",
        ),
        (
            DATA.replace("npz = \"scenes.npz\"", "csv = \"scenes.csv\"")
                .replace("features = \"x\"\n", "")
                .replace("array =", "column ="),
            "kind = \"segmentation\" needs an array per row",
        ),
    ] {
        let text = config_error(&format!("{data}{model}{TRAIN}"));
        assert!(text.contains(expected), "{data}: {text}");
    }
}

#[test]
fn dense_heads_need_feature_maps() {
    // Dense targets over an MLP are refused naming the task and the architecture.
    let config = format!("{DATA}[model]\narch = \"hard_sharing\"\n{TRAIN}");
    let (err, text) = refusal("mlp", &config, &scenes(8));
    assert_input(&err, "segment", Some("segment"));
    assert!(text.contains("arch = \"conv_net\""), "{text}");
}

#[test]
fn an_image_folder_with_label_maps_trains_a_segmentation_model() {
    let dir = temp("image-folder");
    // Two classes of 8×8 gray images; the label map marks the bright pixels.
    for (class, base) in [("a", 40u8), ("b", 90u8)] {
        for i in 0..6u8 {
            let img = image::GrayImage::from_fn(8, 8, |x, y| {
                image::Luma([if (x + y + u32::from(i)) % 3 == 0 {
                    250
                } else {
                    base
                }])
            });
            let mask = image::GrayImage::from_fn(8, 8, |x, y| {
                image::Luma([u8::from((x + y + u32::from(i)) % 3 == 0)])
            });
            for (root, im) in [("images", &img), ("masks", &mask)] {
                let sub = dir.join(root).join(class);
                std::fs::create_dir_all(&sub).unwrap();
                im.save(sub.join(format!("{i}.png"))).unwrap();
            }
        }
    }
    let config = format!(
        "[data]\nimage_folder = \"images\"\nmasks = \"masks\"\n\
         targets = [{{ array = \"segment\", kind = \"segmentation\", classes = 2 }}]\n\
         validation = 0.25\ntest = 0.25\n{MODEL}in_channels = 1\n{TRAIN}"
    );
    let path = dir.join("run.toml");
    std::fs::write(&path, config).unwrap();
    let overrides = mtl_cli::Overrides {
        out: Some(dir.join("out")),
        quiet: true,
        ..Default::default()
    };
    let outcome = mtl_cli::run(&path, &overrides).unwrap();
    assert!(outcome
        .report
        .test
        .as_ref()
        .unwrap()
        .metric(0, "miou")
        .is_some());
    // `masks` without an image folder is refused by name.
    let bad = std::fs::read_to_string(&path)
        .unwrap()
        .replace("image_folder = \"images\"", "npz = \"x.npz\"");
    std::fs::write(&path, bad).unwrap();
    let err = mtl_cli::run(&path, &overrides).unwrap_err().to_string();
    assert!(err.contains("data.masks"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
