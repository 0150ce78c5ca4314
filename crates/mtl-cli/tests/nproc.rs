//! `mtl train CONFIG --nproc 2`: two local ranks train the olive-oil example and the
//! report says world size 2; a rank environment that contradicts itself is refused
//! with the variables named.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn two_local_ranks_train_the_olive_example() {
    let out = std::env::temp_dir().join(format!("mtl-nproc-{}", std::process::id()));
    let run = Command::new(env!("CARGO_BIN_EXE_mtl"))
        .args([
            "train", "--quiet", "--nproc", "2", "--epochs", "2", "--method", "upgrad",
        ])
        .arg(root().join("examples/configs/olive.toml"))
        .arg("--out")
        .arg(&out)
        .env("MTL_DIST_TIMEOUT_S", "60")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // Rank 0 alone prints its summary and writes.
    assert_eq!(stdout.matches("method upgrad").count(), 1, "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["world_size"], 2);
    assert_eq!(report["epochs"].as_array().unwrap().len(), 2);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn contradictory_rank_variables_are_named() {
    let run = Command::new(env!("CARGO_BIN_EXE_mtl"))
        .args(["train", "--quiet"])
        .arg(root().join("examples/configs/olive.toml"))
        .env("RANK", "2")
        .env("WORLD_SIZE", "2")
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", "29400")
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("RANK=2 is out of range for WORLD_SIZE=2"),
        "{err}"
    );
    let run = Command::new(env!("CARGO_BIN_EXE_mtl"))
        .args(["train", "--quiet"])
        .arg(root().join("examples/configs/olive.toml"))
        .env("RANK", "0")
        .env("WORLD_SIZE", "2")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("missing: MASTER_ADDR, MASTER_PORT"), "{err}");
}
