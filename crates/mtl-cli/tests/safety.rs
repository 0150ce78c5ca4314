//! Strict configuration and nothing lost, through the `mtl` program: unknown keys and
//! out-of-range values are refused with the key, its table and the closest valid key;
//! label counts are bounded; a diverging run fails; outputs never replace inputs or
//! each other, are written by rename, and one output directory serves one run at a
//! time; a resume of a different run is refused unless forced.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mtl-cli-safety-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A small CSV: two features, a 3-class column `c` and a regression column `r`.
fn write_csv(dir: &Path, scale: f64) -> PathBuf {
    let rows: String = (0..60)
        .map(|i| {
            let (a, b) = ((i % 7) as f64 * scale, (i % 5) as f64 - 2.0);
            format!("{a},{b},{},{}\n", i % 3, a - b)
        })
        .collect();
    let path = dir.join("data.csv");
    std::fs::write(&path, format!("a,b,c,r\n{rows}")).unwrap();
    path
}

const DATA: &str =
    "[data]\ncsv = \"data.csv\"\ntargets = [{ column = \"c\", kind = \"classes\" }, \
                    { column = \"r\", kind = \"regression\" }]\n";

/// Runs `mtl train` on `config` (written to DIR/run.toml) with `args`.
fn train(dir: &Path, config: &str, args: &[&str]) -> Output {
    let path = dir.join("run.toml");
    std::fs::write(&path, config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_mtl"))
        .current_dir(dir)
        .args(["train", "--quiet"])
        .arg(&path)
        .args(args)
        .output()
        .unwrap()
}

fn failure(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "succeeded: {stderr}");
    stderr
}

fn success(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `learning_rate = 0.1`, `loss_weights = [1, 0.3]` and `momentm = 0.9` ran with exit
/// 0 and the numbers of a run without them.
#[test]
fn unknown_keys_name_their_table_and_the_closest_key() {
    let dir = temp("keys");
    write_csv(&dir, 1.0);
    for (extra, expected) in [
        (
            "[train]\nepochs = 1\nlearning_rate = 0.1\n",
            "run.toml:6: unknown key `learning_rate` in [train]; did you mean `optimizer.lr`?",
        ),
        (
            "[train]\nloss_weights = [1, 0.3]\n",
            "run.toml:5: unknown key `loss_weights` in [train] (valid keys: epochs,",
        ),
        (
            "[train]\noptimizer = { kind = \"sgd\", lr = 0.1, momentm = 0.9 }\n",
            "unknown key `momentm` in [train.optimizer]; did you mean `momentum`?",
        ),
        (
            "[train.early_stopping]\nmonitor = { kind = \"total_loss\" }\npatiance = 3\n",
            "unknown key `patiance` in [train.early_stopping]; did you mean `patience`?",
        ),
        (
            "[train]\ncheckpoint = { path = \"c.safetensors\", every_epoch = 2 }\n",
            "unknown key `every_epoch` in [train.checkpoint]; did you mean `every_epochs`?",
        ),
        (
            "[model]\nhiden = [8]\n",
            "unknown key `hiden` in [model]; did you mean `hidden`?",
        ),
    ] {
        let err = failure(&train(&dir, &format!("{DATA}{extra}"), &[]));
        assert!(err.contains(expected), "{extra}: {err}");
    }
    // The same in a JSON config.
    let json = r#"{"data": {"csv": "data.csv", "targets": [{"column": "c", "kind": "classes"}]},
 "train": {"optimizer": {"kind": "adam", "lr": 0.01, "beta_1": 0.8}}}"#;
    let path = dir.join("run.json");
    std::fs::write(&path, json).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mtl"))
        .args(["train", "--quiet"])
        .arg(&path)
        .output()
        .unwrap();
    let err = failure(&out);
    assert!(
        err.contains(
            "run.json:2: unknown key `beta_1` in [train.optimizer]; did you mean `beta1`?"
        ),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `frozen = [""]` froze everything and trained nothing; epochs near i64::MAX
/// overflowed; labels of 99,999,999,999 or i64::MAX asked for terabytes or wrapped the
/// class count to "0..-9223372036854775808". All fail before training, by name.
#[test]
fn out_of_range_values_are_refused_before_training() {
    let dir = temp("ranges");
    write_csv(&dir, 1.0);
    for (extra, args, expected) in [
        ("[train]\nfrozen = [\"\"]\n", &[][..], "frozen[0] is empty"),
        (
            "[train]\nepochs = 9223372036854775807\n",
            &[],
            "epochs must be at most",
        ),
        (
            "",
            &["--epochs", "18446744073709551615"],
            "epochs must be at most",
        ),
        ("[model]\nhidden = [99999999999]\n", &[], "model.hidden"),
    ] {
        let err = failure(&train(&dir, &format!("{DATA}{extra}"), args));
        assert!(err.contains(expected), "{extra} {args:?}: {err}");
        assert!(!err.contains("train /"), "trained first: {err}");
    }
    for label in ["99999999999", "9223372036854775807"] {
        let mut text = std::fs::read_to_string(dir.join("data.csv")).unwrap();
        text.push_str(&format!("1,1,{label},0\n"));
        std::fs::write(dir.join("big.csv"), text).unwrap();
        let config = DATA.replace("data.csv", "big.csv")
            + "[train]\nepochs = 1\n"
            + "[output]\nplots = false\n";
        // Refused by name (the CSV reader finds the gap in the codes, the dataset the
        // class bound), before any head is built.
        let err = failure(&train(&dir, &config, &[]));
        assert!(
            err.contains(label) && err.contains("classes") && !err.contains("train /"),
            "{err}"
        );
        let shifted = config.replace(
            "kind = \"classes\" }",
            "kind = \"classes\", first_class = 2 }",
        );
        let err = failure(&train(&dir, &shifted, &[]));
        assert!(!err.contains("0..-"), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// lr 10⁶ on a classification task: losses near 10¹⁹, still finite, and exit 0.
#[test]
fn a_diverging_run_fails_naming_the_task_and_step() {
    let dir = temp("diverge");
    write_csv(&dir, 1.0);
    let config = "[data]\ncsv = \"data.csv\"\ntargets = [{ column = \"c\", kind = \"classes\" }]\n\
                  [train]\nepochs = 3\nbatch_size = 8\noptimizer = { kind = \"adam\", lr = 1e6 }\n\
                  [output]\nplots = false\n";
    let err = failure(&train(&dir, config, &["--out", "out"]));
    assert!(
        err.contains("training diverged: the loss of task 0 (`c`)") && err.contains("at step"),
        "{err}"
    );
    // The guard can be turned off.
    let config_off = config.replace(
        "optimizer = { kind = \"adam\", lr = 1e6 }\n",
        "optimizer = { kind = \"adam\", lr = 1e6 }\ndivergence = { enabled = false }\n",
    );
    success(&train(
        &dir,
        &config_off,
        &["--out", "out", "--epochs", "1"],
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `checkpoint.path` equal to the input CSV overwrote it; equal to `<out>/report.json`
/// the report destroyed the checkpoint. Both exit 0 before; now both are refused before
/// training, and the CSV is intact.
#[test]
fn outputs_never_replace_inputs_or_each_other() {
    let dir = temp("clash");
    let csv = write_csv(&dir, 1.0);
    let before = std::fs::read(&csv).unwrap();
    let err = failure(&train(
        &dir,
        &format!("{DATA}[train]\nepochs = 1\ncheckpoint = {{ path = \"data.csv\" }}\n"),
        &["--out", "out"],
    ));
    assert!(
        err.contains("checkpoint `data.csv` is the same file as an input"),
        "{err}"
    );
    assert_eq!(std::fs::read(&csv).unwrap(), before);
    let err = failure(&train(
        &dir,
        &format!("{DATA}[train]\nepochs = 1\ncheckpoint = {{ path = \"out/report.json\" }}\n"),
        &["--out", "out"],
    ));
    assert!(
        err.contains("same file as another output, the report"),
        "{err}"
    );
    // An output directory that cannot be made is found before the data is read.
    let err = failure(&train(&dir, DATA, &["--out", "data.csv/out"]));
    assert!(
        err.contains("data.csv/out") && !err.contains("train /"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// report.json was rewritten in place (readers saw it empty or torn), two runs into one
/// `--out` mixed their files, and killed runs left `*.tmpPID` files behind.
#[test]
fn outputs_are_renamed_into_place_by_one_run_at_a_time() {
    use std::os::unix::fs::MetadataExt;
    let dir = temp("atomic");
    write_csv(&dir, 1.0);
    let config = format!("{DATA}[train]\nepochs = 1\n");
    success(&train(&dir, &config, &["--out", "out"]));
    let report = dir.join("out/report.json");
    let first = std::fs::metadata(&report).unwrap().ino();
    // A killed run's temporary and lock (a pid that has exited).
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = dir.join(format!("out/.report.json.tmp{dead}"));
    std::fs::write(&stale, b"{\"half").unwrap();
    std::fs::write(dir.join("out/.mtl.lock"), format!("{dead}\n")).unwrap();
    let out = train(&dir, &config, &["--out", "out"]);
    success(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("taking over"));
    // A new file was renamed over the old one (an in-place rewrite keeps the inode).
    assert_ne!(std::fs::metadata(&report).unwrap().ino(), first);
    assert!(!stale.exists());
    let names: Vec<String> = std::fs::read_dir(dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(names.is_empty(), "left behind: {names:?}");
    // A live run's lock (this test's own pid) keeps a second run out.
    std::fs::write(
        dir.join("out/.mtl.lock"),
        format!("{}\n", std::process::id()),
    )
    .unwrap();
    let err = failure(&train(&dir, &config, &["--out", "out"]));
    assert!(
        err.contains(&format!("in use by process {}", std::process::id())),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Resume checked only the row count: `standardize = false` or other data trained on
/// (loss 0.03 → 1442), another epoch budget under a cosine schedule gave another run.
#[test]
fn resuming_a_different_run_is_refused_unless_forced() {
    let dir = temp("resume");
    write_csv(&dir, 1.0);
    let config = format!(
        "{DATA}[train]\nepochs = 2\nlr_schedule = {{ kind = \"cosine\", min_factor = 0.0 }}\n\
         checkpoint = {{ path = \"ckpt.safetensors\" }}\n[output]\nplots = false\n"
    );
    success(&train(&dir, &config, &["--out", "out"]));
    let resume = ["--out", "out", "--resume", "ckpt.safetensors"];
    let unstandardised = config.replace("[train]", "standardize = false\n[train]");
    let err = failure(&train(&dir, &unstandardised, &resume));
    assert!(
        err.contains("preprocessing `standardize`: saved true, now false")
            && err.contains("--force-resume"),
        "{err}"
    );
    let err = failure(&train(
        &dir,
        &config,
        &[&resume[..], &["--epochs", "4"]].concat(),
    ));
    assert!(err.contains("epochs: saved 2, now 4"), "{err}");
    write_csv(&dir, 3.0);
    let err = failure(&train(&dir, &config, &resume));
    assert!(err.contains("training data"), "{err}");
    let out = train(&dir, &config, &[&resume[..], &["--force-resume"]].concat());
    success(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: resuming"));
    std::fs::remove_dir_all(&dir).unwrap();
}
