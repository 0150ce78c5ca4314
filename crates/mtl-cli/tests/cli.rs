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
    cfg.data.csv = Some(mtl::data::data_dir().join("olive-oil/olive.csv"));
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

#[test]
fn model_init_is_configurable() {
    use mtl::core::Init;
    let text = std::fs::read_to_string(repo().join("examples/configs/olive.toml")).unwrap();
    let default: mtl_cli::RunConfig = toml::from_str(&text).unwrap();
    assert_eq!(default.model.init, Init::Pytorch);
    let text = text.replace(
        "dropout = 0.1",
        "dropout = 0.1\ninit = \"kaiming_relu\"\nhead_init = \"zeros\"",
    );
    let cfg: mtl_cli::RunConfig = toml::from_str(&text).unwrap();
    assert_eq!(
        (cfg.model.init, cfg.model.head_init),
        (Init::KaimingRelu, Some(Init::Zeros))
    );
    let data = mtl::data::olive_oil(mtl::data::data_dir()).unwrap();
    let targets: Vec<&mtl_cli::config::TargetConfig> = cfg.data.targets.iter().collect();
    let model = mtl_cli::run::build_model(&cfg, &data, &targets).unwrap();
    let vars = model.var_store().variables();
    let max = |n: &str| vars[n].abs().max().double_value(&[]);
    // The trunk reads 8 fatty acids: tch's old bound √(6/8), not PyTorch's 1/√8.
    assert!(max("trunk.0.weight") > 1.0 / 8f64.sqrt());
    assert_eq!(max("task0.head.weight") + max("task1.head.bias"), 0.0);
}

/// A deterministic stream of numbers in [-1, 1) (xorshift), so fixtures need no crate.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// Writes `csv` and a config (`[data] csv = "data.csv"` plus `data`, then `rest`) into a
/// fresh directory and runs it through the library.
fn run_config(
    name: &str,
    csv: &str,
    data: &str,
    rest: &str,
) -> (mtl::core::Result<mtl_cli::RunOutcome>, PathBuf) {
    let dir = temp(name);
    std::fs::write(dir.join("data.csv"), csv).unwrap();
    let config = dir.join("run.toml");
    std::fs::write(
        &config,
        format!("[data]\ncsv = \"data.csv\"\n{data}\n{rest}\n[output]\nplots = false\n"),
    )
    .unwrap();
    let overrides = mtl_cli::Overrides {
        out: Some(dir.join("out")),
        quiet: true,
        ..Default::default()
    };
    (mtl_cli::run(&config, &overrides), dir)
}

/// Two regression targets on scales 10⁵ apart: `big` ≈ 1200 ± 50, `small` ≈ −0.24 ±
/// 0.01, each a linear function of one feature plus a little noise.
fn two_scales_csv(rows: usize) -> String {
    let mut noise = Noise(7);
    let mut csv = String::from("a,b,c,big,small\n");
    for _ in 0..rows {
        let (a, b, c) = (noise.next(), noise.next(), noise.next());
        let big = 1200.0 + 80.0 * a + 2.0 * noise.next();
        let small = -0.24 + 0.016 * b + 0.0004 * noise.next();
        csv += &format!("{a:.5},{b:.5},{c:.5},{big:.4},{small:.6}\n");
    }
    csv
}

const TWO_TARGETS: &str = "targets = [{ column = \"big\", kind = \"regression\" }, \
                           { column = \"small\", kind = \"regression\" }]";
const SHORT_EW: &str = "[train]\nepochs = 6\nbatch_size = 32\nmethod = \"ew\"\nseed = 1\n\
                        optimizer = { kind = \"adam\", lr = 1e-2 }";

fn test_mae(outcome: &mtl_cli::RunOutcome, task: usize) -> f64 {
    outcome
        .report
        .test
        .as_ref()
        .unwrap()
        .metric(task, "mae")
        .unwrap()
}

#[test]
fn regression_targets_are_standardised_and_reported_in_original_units() {
    // Mean predictors have MAE 40 (big) and 0.008 (small); measured: 1.8 and 0.0004
    // standardised, 142 and 3.0 without.
    let csv = two_scales_csv(1500);
    let (on, dir) = run_config("targets-on", &csv, TWO_TARGETS, SHORT_EW);
    let on = on.unwrap();
    let (big, small) = (test_mae(&on, 0), test_mae(&on, 1));
    eprintln!("standardised: big {big}, small {small}");
    assert!(big < 5.0 && small < 0.002, "big {big}, small {small}");
    // The report holds original units: the big target's MSE is in its own (large)
    // units, and validation metrics too.
    let mse = on.report.test.as_ref().unwrap().metric(0, "mse").unwrap();
    assert!(mse > 1.0, "{mse}");
    let last = on.report.epochs.last().unwrap();
    let val_mae = last.validation.as_ref().unwrap().metric(0, "mae").unwrap();
    assert!(val_mae > 0.5 && val_mae < 10.0, "{val_mae}");
    std::fs::remove_dir_all(&dir).unwrap();

    // Without standardisation (the old behaviour) the big head does not even reach its
    // target's mean, and EW neglects the small target.
    let data = format!("{TWO_TARGETS}\nstandardize_targets = false");
    let (off, dir) = run_config("targets-off", &csv, &data, SHORT_EW);
    let off = off.unwrap();
    let (big_off, small_off) = (test_mae(&off, 0), test_mae(&off, 1));
    eprintln!("raw: big {big_off}, small {small_off}");
    assert!(big_off > 40.0, "big without standardisation {big_off}");
    assert!(small_off > 0.008, "small {small_off} vs {small}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn extreme_feature_values_are_named_and_clipping_tames_them() {
    let csv = two_scales_csv(400);
    // One cell at about 300 deviations in feature `c` (uniform on [-1, 1): sd 0.58).
    let mut lines: Vec<String> = csv.lines().map(String::from).collect();
    let cells: Vec<String> = lines[40].split(',').map(String::from).collect();
    lines[40] = format!("{},{},300.0,{},{}", cells[0], cells[1], cells[3], cells[4]);
    let csv = lines.join("\n") + "\n";
    let rest = "[train]\nepochs = 1\n";
    let data = format!("{TWO_TARGETS}\nvalidation = 0.0\ntest = 0.0");
    let (outcome, dir) = run_config("extreme", &csv, &data, rest);
    let warnings = outcome.unwrap().warnings;
    let warning = warnings.iter().find(|w| w.contains("extreme")).unwrap();
    assert!(
        warning.contains("`c`") && warning.contains("line 41"),
        "{warning}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let data = format!("{data}\nfeature_scaling = \"clip\"");
    let (outcome, dir) = run_config("clipped", &csv, &data, rest);
    let warnings = outcome.unwrap().warnings;
    assert!(
        !warnings.iter().any(|w| w.contains("extreme")),
        "{warnings:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let data = format!("{TWO_TARGETS}\nstandardize = false\nfeature_scaling = \"robust\"");
    let (outcome, dir) = run_config("conflict", &csv, &data, rest);
    assert!(outcome.unwrap_err().to_string().contains("feature_scaling"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn class_labels_follow_the_declared_set_or_the_training_rows() {
    // Twenty rows of classes 0/1; one row of class 2 lands in the test rows.
    let mut csv = String::from("a,y\n");
    for i in 0..40 {
        csv += &format!("{i},{}\n", i % 2);
    }
    let target = "targets = [{ column = \"y\", kind = \"classes\" }]";
    let rest = "[train]\nepochs = 1\n";
    // Find a row that the split sends to the test rows: try each until the error names
    // it (a class only in the training rows is fine).
    let mut named_test_line = false;
    for row in 0..40 {
        let mut lines: Vec<String> = csv.lines().map(String::from).collect();
        lines[row + 1] = format!("{row},2");
        let text = lines.join("\n") + "\n";
        let (outcome, dir) = run_config("unseen", &text, target, rest);
        std::fs::remove_dir_all(&dir).unwrap();
        if let Err(e) = outcome {
            let shown = e.to_string();
            assert!(
                shown.contains(&format!("data.csv:{}:", row + 2)) && shown.contains("`2`"),
                "{shown}"
            );
            named_test_line = true;
            // Declared, the same class is accepted, and the head has three classes.
            let declared =
                "targets = [{ column = \"y\", kind = \"classes\", classes = [0, 1, 2] }]";
            let (outcome, dir) = run_config("declared", &text, declared, rest);
            outcome.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
            break;
        }
    }
    assert!(named_test_line);
    // A label outside the declared classes names its line and value.
    let declared = "targets = [{ column = \"y\", kind = \"classes\", classes = [\"0\", \"1\"] }]";
    let text = csv.replacen("5,1\n", "5,7\n", 1);
    let (outcome, dir) = run_config("outside", &text, declared, rest);
    let shown = outcome.unwrap_err().to_string();
    assert!(
        shown.contains("data.csv:7:") && shown.contains("`7`"),
        "{shown}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_blank_feature_cell_in_the_first_row_stops_the_run_unless_a_policy_is_chosen() {
    let mut csv = String::from("a,b,y\n,1,0\n");
    for i in 0..30 {
        csv += &format!("{i},{},{}\n", i * 2, i % 2);
    }
    let target = "targets = [{ column = \"y\", kind = \"classes\" }]";
    let rest = "[train]\nepochs = 1\n";
    let (outcome, dir) = run_config("blank", &csv, target, rest);
    let shown = outcome.unwrap_err().to_string();
    assert!(
        shown.contains("data.csv:2:") && shown.contains("`a`"),
        "{shown}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let data = format!("{target}\nmissing = \"drop_rows\"");
    let (outcome, dir) = run_config("dropped", &csv, &data, rest);
    assert_eq!(outcome.unwrap().report.epochs.len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn loss_scales_are_checked_and_metrics_tracked_by_mtl_train() {
    let csv = two_scales_csv(300);
    let dir = temp("tracked");
    std::fs::write(dir.join("data.csv"), &csv).unwrap();
    let config = dir.join("run.toml");
    let write_config = |data: &str| {
        std::fs::write(
            &config,
            format!(
                "[data]\ncsv = \"data.csv\"\n{data}\n[train]\nepochs = 2\nmethod = \"ew\"\n\
                 [output]\nplots = false\ntensorboard = true\nmetrics_csv = true\n\
                 log_every_steps = 5\n"
            ),
        )
        .unwrap();
    };
    let overrides = mtl_cli::Overrides {
        out: Some(dir.join("out")),
        quiet: true,
        ..Default::default()
    };
    // Raw targets 10⁵ apart under EW: warned, naming both tasks.
    write_config(&format!("{TWO_TARGETS}\nstandardize_targets = false"));
    let outcome = mtl_cli::run(&config, &overrides).unwrap();
    let warning = outcome
        .warnings
        .iter()
        .find(|w| w.contains("scale-invariant"))
        .unwrap();
    assert!(
        warning.contains("`big`") && warning.contains("`small`"),
        "{warning}"
    );
    let out = dir.join("out");
    let steps = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    // 180 training rows in batches of 32: 6 steps an epoch, 12 in all, every 5th logged.
    assert_eq!(steps.lines().count(), 1 + 3, "{steps}");
    assert!(steps.starts_with("step,epoch,lr,grad_norm,loss/big,loss/small"));
    assert_eq!(
        std::fs::read_to_string(out.join("epochs.csv"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    assert!(outcome
        .files
        .iter()
        .any(|f| f.to_string_lossy().contains("tfevents")));
    // Standardised (the default): no warning.
    write_config(TWO_TARGETS);
    let outcome = mtl_cli::run(&config, &overrides).unwrap();
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn method_hyper_parameters_are_read_from_train_and_checked_before_the_data() {
    let csv = two_scales_csv(200);
    let rest =
        |params: &str| format!("[train]\nepochs = 1\nmethod = \"static\"\nseed = 1\n{params}");
    let (outcome, dir) = run_config(
        "static-weights",
        &csv,
        TWO_TARGETS,
        &rest("method_params = { weights = [1.0, 0.3] }"),
    );
    let report = outcome.unwrap().report;
    assert_eq!(
        report.config.method_params["weights"],
        serde_json::json!([1.0, 0.3])
    );
    std::fs::remove_dir_all(&dir).unwrap();
    // A misspelt key is refused before the CSV is read: an unreadable CSV is not reached.
    let (outcome, dir) = run_config(
        "static-typo",
        "not, a, csv\n1\n",
        TWO_TARGETS,
        &rest("method_params = { weight = [1.0, 0.3] }"),
    );
    let shown = outcome.unwrap_err().to_string();
    assert!(shown.contains("did you mean `weights`"), "{shown}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mmoe_cross_stitch_and_ltb_train_from_the_example_configs_and_predict_from_their_bundles() {
    for (config, arch, method) in [
        ("examples/configs/olive_mmoe.toml", "mmoe", "upgrad"),
        (
            "examples/configs/olive_cross_stitch.toml",
            "cross_stitch",
            "cagrad",
        ),
        ("examples/configs/olive_ltb.toml", "ltb", "ew"),
    ] {
        let out = temp(arch);
        let overrides = mtl_cli::Overrides {
            out: Some(out.clone()),
            epochs: Some(3),
            quiet: true,
            ..Default::default()
        };
        let outcome = mtl_cli::run(&repo().join(config), &overrides).unwrap();
        assert_eq!(outcome.report.method, method);
        assert_eq!(outcome.report.epochs.len(), 3);
        let test = outcome.report.test.as_ref().unwrap();
        assert!(test.metric(0, "accuracy").unwrap() > 0.4, "{arch}");
        // The bundle rebuilds the same architecture and answers the training file's rows.
        let bundle = mtl::Bundle::load(&out).unwrap();
        let kind = serde_json::to_value(&bundle.model().spec().unwrap().architecture).unwrap();
        assert_eq!(kind["kind"], arch);
        let rows = mtl::ndarray::Array2::<f32>::from_elem((3, 8), 1000.0);
        let answers = bundle.predict(rows.view()).unwrap();
        assert_eq!(answers.len(), 2);
        std::fs::remove_dir_all(&out).unwrap();
    }
    // Settings of another architecture are refused by name.
    let text = std::fs::read_to_string(repo().join("examples/configs/olive.toml")).unwrap();
    let text = text.replace("dropout = 0.1", "dropout = 0.1\nexperts = 4");
    let cfg: mtl_cli::RunConfig = toml::from_str(&text).unwrap();
    let shown = cfg.check().unwrap_err().to_string();
    assert!(shown.contains("arch = \"mmoe\""), "{shown}");
}

/// `[model] pretrained` starts a run from another run's weights (its bundle's
/// `weights.safetensors`) by name, and `[train] unfreeze` keeps the loaded trunk frozen
/// for the first epoch; a rename that loads nothing is refused in strict mode, naming
/// what is missing.
#[test]
fn a_run_starts_from_pretrained_weights_with_an_unfreeze_schedule() {
    let csv = two_scales_csv(300);
    let (first, first_dir) = run_config("pretrain", &csv, TWO_TARGETS, SHORT_EW);
    first.unwrap();
    let weights = first_dir.join("out/model/weights.safetensors");
    assert!(weights.exists());
    let trained = mtl::core::pretrained::read_weights(&weights).unwrap();

    let rest = format!(
        "[model]\npretrained = {{ path = {:?}, skip = [\"task1.\"], strict = false }}\n\
         {SHORT_EW}\nunfreeze = [{{ prefix = \"trunk.\", epoch = 1 }}]\nepochs = 2\n",
        weights.display().to_string()
    )
    .replace("epochs = 6\n", "");
    // With baselines, which start from the same weights (loaded non-strictly).
    let dir = temp("finetune");
    std::fs::write(dir.join("data.csv"), &csv).unwrap();
    std::fs::write(
        dir.join("run.toml"),
        format!(
            "[data]\ncsv = \"data.csv\"\n{TWO_TARGETS}\n{rest}\n\
             [output]\nplots = false\nbaselines = true\n"
        ),
    )
    .unwrap();
    let overrides = mtl_cli::Overrides {
        out: Some(dir.join("out")),
        quiet: true,
        ..Default::default()
    };
    let second = mtl_cli::run(&dir.join("run.toml"), &overrides).unwrap();
    assert!(second.report.delta_m.is_some());
    assert_eq!(
        second.report.config.unfreeze,
        [mtl::Unfreeze::new("trunk.", 1)]
    );
    // The fine-tuned trunk started from the loaded one and moved from epoch 1 on.
    let tuned =
        mtl::core::pretrained::read_weights(dir.join("out/model/weights.safetensors")).unwrap();
    let trunk = |w: &[(String, tch::Tensor)]| -> Vec<f64> {
        w.iter()
            .filter(|(n, _)| n.starts_with("trunk."))
            .flat_map(|(_, t)| {
                Vec::<f64>::try_from(t.reshape([-1]).to_kind(tch::Kind::Double)).unwrap()
            })
            .collect()
    };
    assert_ne!(trunk(&trained), trunk(&tuned));
    std::fs::remove_dir_all(&dir).unwrap();

    // Strict, with a rename that maps the file onto nothing in the model.
    let rest = format!(
        "[model]\npretrained = {{ path = {:?}, rename = [[\"trunk.\", \"encoder.\"]] }}\n{SHORT_EW}\n",
        weights.display().to_string()
    );
    let (refused, dir) = run_config("strict", &csv, TWO_TARGETS, &rest);
    let msg = refused.unwrap_err().to_string();
    assert!(
        msg.contains("missing") && msg.contains("`trunk.0.weight`"),
        "{msg}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&first_dir).unwrap();
}
