//! `mtl train` on a CSV file with text categorical columns: every column is used (none
//! dropped), low-cardinality ones one-hot, high-cardinality ones embedded in the shared
//! trunk under every MLP architecture, and `mtl predict` encodes new rows the same way
//! (unseen categories as unknown, text in a numeric column an error naming it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mtl-categorical-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn mtl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mtl"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// 300 rows: a number, a 3-valued text column (one-hot), a 40-valued city (embedded),
/// a yes/no column and a column with missing categories; the targets depend on the
/// categories, so dropping them would lose the signal.
fn write_data(dir: &Path) -> PathBuf {
    let mut text = String::from("age,sex,city,smoker,job,married,spend\n");
    for i in 0..300u32 {
        let age = 20 + (i * 7) % 50;
        let sex = ["f", "m", "x"][(i % 3) as usize];
        let city = format!("city{}", (i * 13) % 40);
        let smoker = if i % 4 == 0 { "yes" } else { "no" };
        let job = ["", "cook", "pilot", "?"][(i % 4) as usize];
        let married = u8::from(sex == "f" || (i * 13) % 40 < 10);
        let spend = f32::from(u8::from(smoker == "yes")) * 3.0 + age as f32 / 10.0;
        text += &format!("{age},{sex},{city},{smoker},{job},{married},{spend}\n");
    }
    let path = dir.join("people.csv");
    std::fs::write(&path, text).unwrap();
    path
}

fn write_config(dir: &Path, arch: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("{arch}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"
[data]
csv = "people.csv"
na_values = ["?"]
one_hot_max = 8
{extra}
targets = [
  {{ column = "married", kind = "binary" }},
  {{ column = "spend", kind = "regression" }},
]

[model]
arch = "{arch}"
hidden = [8]

[train]
epochs = 2
batch_size = 64
progress = false
"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn text_columns_are_encoded_embedded_and_predicted_from_raw_rows() {
    let dir = temp("train");
    write_data(&dir);
    for arch in ["hard_sharing", "mmoe", "cross_stitch"] {
        let config = write_config(&dir, arch, "");
        let out_dir = dir.join(format!("run-{arch}"));
        let out = mtl(&[
            "train",
            config.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--quiet",
        ]);
        let text = stderr(&out);
        assert!(out.status.success(), "{arch}: {text}");
        // Every column is a feature and its encoding is said.
        assert!(text.contains("5 columns"), "{text}");
        assert!(text.contains("city: embedding of 40 categories"), "{text}");
        assert!(text.contains("sex: one-hot, 3 columns"), "{text}");
        assert!(text.contains("smoker: boolean"), "{text}");
        assert!(
            text.contains("job: categorical, 2 values, 150 missing"),
            "{text}"
        );
        // The embedding table is a shared parameter saved with the model.
        let bundle = mtl::Bundle::load(&out_dir).unwrap();
        let vars = bundle.model().var_store().variables();
        assert!(vars.contains_key("input.embed0.weight"), "{arch}");
    }

    // Predicting new rows: an unseen city and sex are unknown, not an error.
    let rows = dir.join("new.csv");
    std::fs::write(
        &rows,
        "city,sex,age,smoker,job\ncity3,f,30,no,cook\natlantis,q,40,yes,?\n",
    )
    .unwrap();
    let preds = dir.join("preds.csv");
    let run = dir.join("run-hard_sharing");
    let out = mtl(&[
        "predict",
        run.to_str().unwrap(),
        "--csv",
        rows.to_str().unwrap(),
        "--out",
        preds.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let written = std::fs::read_to_string(&preds).unwrap();
    assert_eq!(written.lines().count(), 3, "{written}");

    // Text where training saw numbers: named with its column, line and value.
    std::fs::write(
        &rows,
        "city,sex,age,smoker,job\ncity3,f,30,no,cook\ncity4,m,old,no,cook\n",
    )
    .unwrap();
    let out = mtl(&[
        "predict",
        run.to_str().unwrap(),
        "--csv",
        rows.to_str().unwrap(),
        "--out",
        preds.to_str().unwrap(),
    ]);
    let text = stderr(&out);
    assert!(!out.status.success());
    assert!(
        text.contains(":3:") && text.contains("`age`") && text.contains("`old`"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn one_hot_limits_and_declared_columns_are_checked() {
    let dir = temp("limits");
    write_data(&dir);
    // Refusing high cardinality names the column.
    let config = write_config(&dir, "hard_sharing", "high_cardinality = \"error\"");
    let out = mtl(&[
        "train",
        config.to_str().unwrap(),
        "--out",
        dir.join("r1").to_str().unwrap(),
        "--quiet",
    ]);
    let text = stderr(&out);
    assert!(!out.status.success());
    assert!(
        text.contains("`city`") && text.contains("one_hot_max = 8"),
        "{text}"
    );
    // A declared categorical column that does not exist names the columns there are.
    let config = write_config(&dir, "hard_sharing", "categorical = [\"region\"]");
    let out = mtl(&[
        "train",
        config.to_str().unwrap(),
        "--out",
        dir.join("r2").to_str().unwrap(),
        "--quiet",
    ]);
    let text = stderr(&out);
    assert!(!out.status.success());
    assert!(
        text.contains("`region`") && text.contains("age, sex, city"),
        "{text}"
    );
    // A misspelt key is named with the closest one.
    let config = write_config(&dir, "hard_sharing", "one_hot_maxx = 3");
    let out = mtl(&[
        "train",
        config.to_str().unwrap(),
        "--out",
        dir.join("r3").to_str().unwrap(),
        "--quiet",
    ]);
    let text = stderr(&out);
    assert!(text.contains("one_hot_max"), "{text}");
    // Hashing: trains, with a table of buckets + 1 rows.
    let config = write_config(
        &dir,
        "hard_sharing",
        "high_cardinality = \"hash\"\nhash_buckets = 16",
    );
    let run = dir.join("r4");
    let out = mtl(&[
        "train",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bundle = mtl::Bundle::load(&run).unwrap();
    let table = &bundle.model().var_store().variables()["input.embed0.weight"];
    assert_eq!(table.size()[0], 17);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_census_configs_are_valid() {
    // Checked without the data (CI may not have it): the keys, values and targets.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for name in ["census.toml", "census_embeddings.toml"] {
        let cfg = mtl_cli::RunConfig::read(&repo.join("examples/configs").join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(cfg.data.header.as_ref().map(Vec::len), Some(42), "{name}");
        assert!(cfg.data.headerless, "{name}");
    }
}
