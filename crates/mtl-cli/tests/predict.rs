//! `mtl train` saves the model as a bundle in its output directory, and `mtl predict`
//! loads it in a new process and writes one column per task: classes as their labels
//! (names, or codes shifted back by `first_class`), binary as 0/1, regression values.

use mtl::{Bundle, Predicted};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mtl-predict-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn mtl(args: &[&str], paths: &[&Path]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtl"));
    cmd.args(args);
    for p in paths {
        cmd.arg(p);
    }
    cmd.output().unwrap()
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn err(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// 120 rows: features a, b (and an id); a named class, a coded class (1..=3), a binary
/// label and a regression target on a large scale, all functions of the features.
fn write_data(dir: &Path) -> PathBuf {
    let mut text = String::from("id,a,b,colour,grade,big,price\n");
    for i in 0..120 {
        let a = (i % 12) as f32 / 4.0 - 1.5;
        let b = (i % 7) as f32 / 3.0 - 1.0;
        let colour = ["red", "green", "blue"][(i % 3) as usize];
        let grade = 1 + (i % 3);
        let big = u8::from(a + b > 0.0);
        let price = 1000.0 + 50.0 * a - 20.0 * b;
        text += &format!("{i},{a},{b},{colour},{grade},{big},{price}\n");
    }
    let path = dir.join("rows.csv");
    std::fs::write(&path, text).unwrap();
    path
}

fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("run.toml");
    std::fs::write(
        &path,
        r#"
[data]
csv = "rows.csv"
exclude = ["id"]
targets = [
  { column = "colour", kind = "classes" },
  { column = "grade", kind = "classes", first_class = 1 },
  { column = "big", kind = "binary" },
  { column = "price", name = "cost", kind = "regression" },
]
validation = 0.2
test = 0.2

[model]
hidden = [16]

[train]
epochs = 3
batch_size = 16
method = "pcgrad"

[output]
plots = false
"#,
    )
    .unwrap();
    path
}

fn read_csv(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
}

#[test]
fn train_saves_a_bundle_that_predict_loads_in_a_new_process() {
    let dir = temp("round-trip");
    let rows = write_data(&dir);
    let config = write_config(&dir);
    let run = dir.join("run");
    let stdout = ok(&mtl(
        &["train", "--quiet"],
        &[&config, Path::new("--out"), &run],
    ));
    assert!(stdout.contains("model/bundle.json"), "{stdout}");

    let preds = dir.join("preds.csv");
    let stdout = ok(&mtl(
        &["predict"],
        &[&run, Path::new("--csv"), &rows, Path::new("--out"), &preds],
    ));
    assert!(stdout.contains("predicted 120 rows"), "{stdout}");
    let table = read_csv(&preds);
    assert_eq!(table[0], ["colour", "grade", "big", "cost"]);
    assert_eq!(table.len(), 121);
    for row in &table[1..] {
        assert!(
            ["red", "green", "blue"].contains(&row[0].as_str()),
            "{row:?}"
        );
        assert!(["1", "2", "3"].contains(&row[1].as_str()), "{row:?}");
        assert!(["0", "1"].contains(&row[2].as_str()), "{row:?}");
        assert!(row[3].parse::<f32>().unwrap().is_finite(), "{row:?}");
    }

    // The file the command wrote is what the library predicts for the same rows.
    let bundle = Bundle::load(&run).unwrap();
    assert_eq!(bundle.method(), "pcgrad");
    let lib = bundle.predict_csv(&rows).unwrap();
    assert_eq!(lib.len(), 4);
    let Predicted::Values(cost) = &lib[3].output else {
        panic!("{:?}", lib[3])
    };
    for (row, v) in table[1..].iter().zip(cost.column(0)) {
        assert_eq!(row[3], v.to_string());
    }

    // A file with only the features, in another order, and the bundle directory itself.
    let mut only = String::from("b,a\n");
    for row in std::fs::read_to_string(&rows).unwrap().lines().skip(1) {
        let f: Vec<&str> = row.split(',').collect();
        only += &format!("{},{}\n", f[2], f[1]);
    }
    let features = dir.join("features.csv");
    std::fs::write(&features, only).unwrap();
    let preds2 = dir.join("preds2.csv");
    ok(&mtl(
        &["predict"],
        &[
            &run.join("model"),
            Path::new("--csv"),
            &features,
            Path::new("--out"),
            &preds2,
        ],
    ));
    assert_eq!(read_csv(&preds2), table);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn predict_refuses_what_it_cannot_do_safely() {
    let dir = temp("refusals");
    let rows = write_data(&dir);
    let config = write_config(&dir);
    let run = dir.join("run");
    ok(&mtl(
        &["train", "--quiet"],
        &[&config, Path::new("--out"), &run],
    ));
    let predict = |bundle: &Path, csv: &Path, out: &Path| {
        mtl(
            &["predict"],
            &[bundle, Path::new("--csv"), csv, Path::new("--out"), out],
        )
    };

    // A missing feature column is named; nothing is written.
    let no_b = dir.join("no_b.csv");
    std::fs::write(&no_b, "a\n1\n").unwrap();
    let out = dir.join("out.csv");
    let e = err(&predict(&run, &no_b, &out));
    assert!(e.contains("feature column `b`"), "{e}");
    assert!(!out.exists());

    // The input is never overwritten.
    let before = std::fs::read(&rows).unwrap();
    let e = err(&predict(&run, &rows, &rows));
    assert!(e.contains("input CSV"), "{e}");
    assert_eq!(std::fs::read(&rows).unwrap(), before);

    // No bundle there.
    let e = err(&predict(&dir, &rows, &out));
    assert!(e.contains("no model bundle"), "{e}");

    // Weights that do not match their digest.
    let weights = run.join("model/weights.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&weights, bytes).unwrap();
    let e = err(&predict(&run, &rows, &out));
    assert!(e.contains("SHA-256"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
