//! A crate outside this workspace, set up as docs/using-mtl.md says: a path dependency
//! on the facade (package `mtl-torch`, library `mtl`) and the cargo config that
//! `cargo xtask setup --cargo-config DIR` merges into it. It must build with no
//! `LIBTORCH` in the environment and its binary must run with no library path (the
//! rpath), training, saving, loading and predicting with `mtl`'s re-exported `ndarray`
//! and `tch`.
//!
//! It shares this workspace's target directory and lock file, so the dependencies are
//! the versions the workspace uses, fetched from nowhere (`--offline`), and what the
//! workspace already compiled with the same features is reused.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the root")
        .to_path_buf()
}

/// A command without what the outer `cargo test` put in the environment (cargo's
/// variables for this package, the libtorch settings of this workspace's config), so
/// the outside crate gets only what its own config gives it.
fn clean(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let cargo_own =
            key.starts_with("CARGO_") && !matches!(key.as_str(), "CARGO_HOME" | "CARGO_TARGET_DIR");
        if cargo_own
            || matches!(
                key.as_str(),
                "LIBTORCH"
                    | "LD_LIBRARY_PATH"
                    | "DYLD_LIBRARY_PATH"
                    | "RUSTFLAGS"
                    | "RUSTDOCFLAGS"
                    | "MTL_DATA_DIR"
            )
        {
            cmd.env_remove(&key);
        }
    }
    cmd
}

fn check(what: &str, out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

const MAIN: &str = r#"
use mtl::ndarray::Array2;
use mtl::prelude::*;

fn main() -> Result<()> {
    let x = Array2::from_shape_fn((32, 2), |(i, j)| ((i + 3 * j) % 7) as f32 - 3.0);
    let y = x.column(0).mapv(|v| i64::from(v > 0.0));
    let data = MultiTaskDataset::new(x.clone(), vec![TaskData::classes("sign", y, 2)])?;
    let spec = ModelSpec::hard_sharing(2, &[4], vec![HeadSpec::for_task(&data.tasks()[0], RegressionLoss::Mse)]);
    seed_everything(0);
    let mut model = MultiTaskModel::from_spec(&spec, mtl::tch::Device::Cpu)?;
    Trainer::new(TrainerConfig::default().epochs(2).progress(false))?.fit(&mut model, &data, None)?;
    let dir = std::env::args().nth(1).expect("a bundle directory");
    Bundle::save(&dir, &model, "ew")?;
    let loaded = Bundle::load(&dir)?;
    assert_eq!(loaded.predict(x.view())?, model.predict(x.view())?);
    println!("outside crate: {} rows predicted", x.nrows());
    Ok(())
}
"#;

#[test]
fn a_crate_outside_the_workspace_builds_and_runs_against_mtl() {
    let root = workspace_root();
    let dir = std::env::temp_dir().join(format!("mtl-outside-crate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let facade = root.join("crates").join("mtl");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"outside-user\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nmtl = {{ package = \"mtl-torch\", path = {:?} }}\n\n\
             # Its own workspace, wherever the temporary directory is.\n[workspace]\n",
            facade.display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src").join("main.rs"), MAIN).unwrap();
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    // A setting of the user's own, which the merge must keep.
    std::fs::create_dir_all(dir.join(".cargo")).unwrap();
    std::fs::write(
        dir.join(".cargo").join("config.toml"),
        "# the user's own settings\n[alias]\nb = \"build\"\n",
    )
    .unwrap();

    // `cargo xtask setup --cargo-config DIR`, run from the workspace as a user would.
    check(
        "xtask setup --cargo-config",
        clean(env!("CARGO_BIN_EXE_xtask"))
            .current_dir(&root)
            .args(["setup", "--cargo-config"])
            .arg(&dir)
            .output()
            .unwrap(),
    );
    let config = std::fs::read_to_string(dir.join(".cargo").join("config.toml")).unwrap();
    assert!(
        config.contains("# the user's own settings") && config.contains("b = \"build\""),
        "{config}"
    );
    assert!(
        config.contains("LIBTORCH") && config.contains("-rpath"),
        "{config}"
    );

    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    check(
        "cargo build of the outside crate",
        clean(&cargo)
            .current_dir(&dir)
            .args(["build", "--offline", "--quiet"])
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .unwrap(),
    );
    let bundle = dir.join("bundle");
    let stdout = check(
        "the outside crate's binary",
        clean(target.join("debug").join("outside-user"))
            .arg(&bundle)
            .output()
            .unwrap(),
    );
    assert!(
        stdout.contains("outside crate: 32 rows predicted"),
        "{stdout}"
    );
    assert!(bundle.join("bundle.json").is_file());
    let _ = std::fs::remove_file(target.join("debug").join("outside-user"));
    std::fs::remove_dir_all(&dir).unwrap();
}
