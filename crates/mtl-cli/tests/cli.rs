//! The `mtl` program end to end on the olive-oil CSV: the example config trains and
//! writes a readable report and plots; JSON configs work too; bad configs fail with a
//! message naming the problem.

use mtl::RunReport;
use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mtl-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn the_example_config_trains_on_olive_oil() {
    let out = temp("olive");
    let status = Command::new(env!("CARGO_BIN_EXE_mtl"))
        .current_dir(repo())
        .args([
            "train",
            "examples/configs/olive.toml",
            "--epochs",
            "4",
            "--quiet",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(stdout.contains("test region: accuracy"), "{stdout}");
    let report: RunReport =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report.tasks, ["region", "area"]);
    assert_eq!(report.method, "pcgrad");
    assert_eq!(report.epochs.len(), 4);
    assert!(!report.diagnostics.is_empty());
    let test = report.test.as_ref().unwrap();
    // Three regions (codes 1..=3 shifted by first_class), nine named areas.
    assert!(test.metric(0, "accuracy").unwrap() > 0.5);
    for png in [
        "losses.png",
        "task_weights.png",
        "conflict.png",
        "affinity.png",
    ] {
        let bytes = std::fs::read(out.join(png)).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{png}");
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn json_configs_and_baselines_through_the_library() {
    let dir = temp("json");
    let toml_text = std::fs::read_to_string(repo().join("examples/configs/olive.toml")).unwrap();
    let mut cfg: mtl_cli::RunConfig = toml::from_str(&toml_text).unwrap();
    cfg.data.csv = mtl::data::data_dir().join("olive-oil/olive.csv");
    cfg.train.method = "ew".into();
    cfg.train.epochs = 2;
    cfg.output.plots = false;
    let path = dir.join("olive.json");
    std::fs::write(&path, serde_json::to_string(&cfg).unwrap()).unwrap();
    let overrides = mtl_cli::Overrides {
        out: Some(dir.join("out")),
        baselines: true,
        quiet: true,
        ..Default::default()
    };
    let outcome = mtl_cli::run(&path, &overrides).unwrap();
    let d = outcome.report.delta_m.as_ref().unwrap();
    assert_eq!(d.tasks.len(), 2);
    assert!(d.delta_m.is_finite());
    assert!(dir.join("out/baselines.json").exists());
    assert_eq!(
        outcome.files,
        [
            dir.join("out/report.json"),
            dir.join("out/model/bundle.json"),
            dir.join("out/model/weights.safetensors")
        ]
    );
    assert!(mtl_cli::summary(&outcome.report).contains("Δm"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_configs_fail_with_a_message() {
    let dir = temp("bad");
    let run = |text: &str| {
        let path = dir.join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_mtl"))
            .args(["train", "--quiet"])
            .arg(&path)
            .arg("--out")
            .arg(dir.join("out"))
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run("[data]\ncsv = \"x.csv\"\ntargets = []\n");
    assert!(err.contains("at least one column"), "{err}");
    let err = run(
        "[data]\ncsv = \"x.csv\"\ntargets = [{ column = \"y\", kind = \"classes\" }]\ncolour = 1\n",
    );
    assert!(err.contains("bad.toml") && err.contains("colour"), "{err}");
    let err =
        run("[data]\ncsv = \"no-such.csv\"\ntargets = [{ column = \"y\", kind = \"classes\" }]\n");
    assert!(err.contains("no-such.csv"), "{err}");
    let rows: String = (0..20).map(|i| format!("{i},{}\n", i % 2)).collect();
    std::fs::write(dir.join("small.csv"), format!("a,y\n{rows}")).unwrap();
    let err = run("[data]\ncsv = \"small.csv\"\ntargets = [{ column = \"y\", kind = \"classes\" }]\n[train]\nmethod = \"nope\"\nepochs = 1\n");
    assert!(err.contains("unknown method `nope`"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
