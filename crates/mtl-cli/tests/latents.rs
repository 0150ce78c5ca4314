//! `mtl latents` on a model `mtl train` saved: reads the model's features and the named
//! columns from the olive-oil CSV, writes the report and heatmap, and names a missing
//! column.

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mtl-latents-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn mtl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mtl"))
        .current_dir(repo())
        .args(args)
        .output()
        .unwrap()
}

const HEADER: &str = "id,area_name,region_code,area_code,palmitic,palmitoleic,stearic,oleic,\
                      linoleic,linolenic,arachidic,eicosenoic";

#[test]
fn latents_of_a_trained_bundle_are_ranked_and_written() {
    let run = temp("run");
    let run_s = run.to_str().unwrap();
    let trained = mtl(&[
        "train",
        "examples/configs/olive.toml",
        "--epochs",
        "3",
        "--quiet",
        "--out",
        run_s,
    ]);
    assert!(
        trained.status.success(),
        "{}",
        String::from_utf8_lossy(&trained.stderr)
    );
    let out = temp("report");
    let csv = repo().join("data/olive-oil/olive.csv");
    let done = mtl(&[
        "latents",
        run_s,
        "--csv",
        csv.to_str().unwrap(),
        "--header",
        HEADER,
        "--vars",
        "area_name,region_code,oleic",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(stdout.contains("MI (nats)"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("latents.json")).unwrap()).unwrap();
    assert_eq!(
        report["variables"],
        serde_json::json!(["area_name", "region_code", "oleic"])
    );
    // The olive model's trunk ends in 32 units.
    assert_eq!(report["dims"], 32);
    assert_eq!(report["ranked"].as_array().unwrap().len(), 3 * 32);
    // Oleic acid is one of the model's inputs: some dimension must follow it.
    let best_oleic = report["ranked"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["variable"] == "oleic")
        .map(|a| a["correlation"].as_f64().unwrap().abs())
        .fold(0.0, f64::max);
    assert!(best_oleic > 0.5, "{best_oleic}");
    assert!(std::fs::read(out.join("latents.png"))
        .unwrap()
        .starts_with(b"\x89PNG"));

    let missing = mtl(&[
        "latents",
        run_s,
        "--csv",
        csv.to_str().unwrap(),
        "--header",
        HEADER,
        "--vars",
        "acidity",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("no column `acidity`"), "{stderr}");
}
