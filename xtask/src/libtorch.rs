//! Finding or installing libtorch 2.13.0, and pointing cargo at it.
//!
//! Order of preference: `LIBTORCH` (version checked), an importable `torch==2.13.0`,
//! then a virtualenv under the cache directory. The CPU-only install takes the torch wheel
//! without dependencies plus the two CUDA runtime libraries `libtorch_cpu.so` links
//! against (1.2 GB instead of 4.7 GB); `--cuda`, or a visible NVIDIA GPU, installs the
//! full dependency set so `libtorch_cuda.so` can load.

use crate::util::{output, pip, project_root, run};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The libtorch version `tch` 0.26 is built for.
pub const TORCH_VERSION: &str = "2.13.0";
/// The CUDA runtime pieces that `libtorch_cpu.so` itself needs.
const CUDA_RUNTIME: &str = "cuda-toolkit[cudart,cupti]==13.0.3";

/// Where a libtorch came from, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The `LIBTORCH` environment variable.
    Env,
    /// A `torch` importable by the `python3` on PATH.
    Python,
    /// The virtualenv `setup` manages under the cache directory.
    Venv,
}

/// A located libtorch.
#[derive(Debug, Clone)]
pub struct Libtorch {
    /// The directory that holds `lib/` and `include/` (`site-packages/torch` for a wheel).
    pub root: PathBuf,
    /// Its version, e.g. `2.13.0+cu130`.
    pub version: String,
    /// How it was found.
    pub source: Source,
}

impl Libtorch {
    /// The directory with `libtorch_cpu.so`.
    pub fn lib_dir(&self) -> PathBuf {
        self.root.join("lib")
    }

    /// Whether every library `libtorch_cuda.so` needs can be resolved.
    pub fn cuda_loadable(&self) -> bool {
        let so = self.lib_dir().join("libtorch_cuda.so");
        so.exists()
            && output(Command::new("ldd").arg(&so))
                .map(|s| !s.contains("not found"))
                .unwrap_or(false)
    }
}

/// The cache directory: `MTL_CACHE_DIR`, else `~/.cache/mtl`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MTL_CACHE_DIR") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| ".".into());
    home.join(".cache").join("mtl")
}

fn venv_dir() -> PathBuf {
    cache_dir().join("venv")
}

/// Whether an NVIDIA GPU is visible to this machine.
pub fn gpu_visible() -> bool {
    output(Command::new("nvidia-smi").arg("-L"))
        .map(|s| s.contains("GPU"))
        .unwrap_or(false)
}

/// Reads the version of the libtorch at `root`: `build-version` (the C++ zip),
/// `version.txt`, or `version.py` (the Python wheel).
pub fn read_version(root: &Path) -> Option<String> {
    for f in ["build-version", "version.txt"] {
        if let Ok(s) = std::fs::read_to_string(root.join(f)) {
            return Some(s.trim().to_string());
        }
    }
    let py = std::fs::read_to_string(root.join("version.py")).ok()?;
    py.lines()
        .find_map(|l| l.strip_prefix("__version__ = "))
        .map(|v| v.trim().trim_matches('\'').trim_matches('"').to_string())
}

fn version_ok(v: &str) -> bool {
    v == TORCH_VERSION || v.starts_with(&format!("{TORCH_VERSION}+"))
}

fn python_torch(python: &Path) -> Option<PathBuf> {
    let out = output(Command::new(python).args([
        "-c",
        "import importlib.util as u; s = u.find_spec('torch'); print(s.submodule_search_locations[0])",
    ]))?;
    let root = PathBuf::from(out.lines().last()?);
    root.join("lib")
        .join("libtorch_cpu.so")
        .exists()
        .then_some(root)
}

fn venv_python() -> PathBuf {
    venv_dir().join("bin").join("python")
}

/// `LIBTORCH` as the user set it. Cargo also exports the value our own generated
/// config holds to `cargo xtask`; that one is ours to re-check, not the user's choice.
fn user_libtorch() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("LIBTORCH")?);
    let ours = std::fs::read_to_string(cargo_config_path()).unwrap_or_default();
    let quoted = format!("LIBTORCH = {:?}", dir.display().to_string());
    (!ours.contains(&quoted)).then_some(dir)
}

/// Locates an existing libtorch 2.13.0 without installing anything.
pub fn locate() -> Result<Option<Libtorch>> {
    if let Some(root) = user_libtorch() {
        let version = read_version(&root).with_context(|| {
            format!(
                "LIBTORCH={} has no build-version, version.txt or version.py",
                root.display()
            )
        })?;
        if !version_ok(&version) {
            bail!(
                "LIBTORCH={} is libtorch {version}, but tch 0.26 needs {TORCH_VERSION}; \
                 unset LIBTORCH to let `cargo xtask setup` install it",
                root.display()
            );
        }
        return Ok(Some(Libtorch {
            root,
            version,
            source: Source::Env,
        }));
    }
    let candidates = [
        (venv_python(), Source::Venv),
        (PathBuf::from("python3"), Source::Python),
    ];
    for (python, source) in candidates {
        if source == Source::Venv && !python.exists() {
            continue;
        }
        if let Some(root) = python_torch(&python) {
            if let Some(version) = read_version(&root).filter(|v| version_ok(v)) {
                return Ok(Some(Libtorch {
                    root,
                    version,
                    source,
                }));
            }
        }
    }
    Ok(None)
}

fn install(cuda: bool) -> Result<Libtorch> {
    let venv = venv_dir();
    eprintln!(
        "setup: installing torch {TORCH_VERSION} into {}",
        venv.display()
    );
    std::fs::create_dir_all(cache_dir())?;
    if !venv_python().exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    let install = || pip(venv_python(), &["install", "--quiet"]);
    let torch = format!("torch=={TORCH_VERSION}");
    if cuda {
        run(install().arg(&torch))?;
    } else {
        run(install().args(["--no-deps", &torch]))?;
        run(install().args(["--no-warn-conflicts", CUDA_RUNTIME]))?;
    }
    let root = python_torch(&venv_python()).context("torch installed but cannot be found")?;
    let version = read_version(&root).context("installed torch has no version.py")?;
    Ok(Libtorch {
        root,
        version,
        source: Source::Venv,
    })
}

/// Finds or installs libtorch and writes `.cargo/libtorch.toml`. Idempotent: when
/// everything is in place it only reads a few files.
pub fn setup(cuda: bool) -> Result<Libtorch> {
    let want_cuda = cuda || gpu_visible();
    let lt = match locate()? {
        Some(lt) if want_cuda && !lt.cuda_loadable() && lt.source == Source::Venv => {
            eprintln!(
                "setup: a GPU is wanted but the CUDA libraries are missing; completing the install"
            );
            install(true)?
        }
        Some(lt) => lt,
        None => install(want_cuda)?,
    };
    write_cargo_config(&lt)?;
    eprintln!("setup: libtorch {} at {}", lt.version, lt.root.display());
    Ok(lt)
}

/// The path of the generated, git-ignored cargo config.
pub fn cargo_config_path() -> PathBuf {
    project_root().join(".cargo").join("libtorch.toml")
}

fn write_cargo_config(lt: &Libtorch) -> Result<()> {
    let text = crate::cargo_config::generated_text(&lt.root, &lt.lib_dir());
    let path = cargo_config_path();
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("setup: wrote {}", path.display());
    }
    Ok(())
}
