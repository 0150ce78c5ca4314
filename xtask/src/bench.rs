//! `cargo xtask bench [--peer] [runner options]`: builds the `mtl-bench` runner in
//! release, runs it and writes `target/bench/bench.json`.
//!
//! With `--peer` it also runs the LibMTL harness (`../shared/peer_bench/libmtl_bench.py`)
//! with the runner as its `--peer-cmd`, so both libraries are timed in one run, on the same
//! data and threads, and prints LibMTL ms/step ÷ mtl ms/step per workload and method. LibMTL
//! is cloned at a pinned commit into the cache directory (never into this repository), and
//! the harness runs in a virtualenv there that reuses the torch `setup` installed.

use crate::libtorch::{self, cache_dir, Libtorch, Source, TORCH_VERSION};
use crate::util::{output, pip, project_root, run};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The LibMTL commit the peer figures use (`shared/peer_bench/RESULTS.md`).
const LIBMTL_COMMIT: &str = "4336804847eaa5e0b924b743d76beec7ac3fdc97";
const LIBMTL_URL: &str = "https://github.com/median-research-group/LibMTL";
/// What LibMTL and the harness import besides torch.
const PEER_PACKAGES: &[&str] = &[
    "numpy",
    "scipy",
    "cvxpy==1.6.5",
    "qpsolvers==4.7.0",
    "quadprog",
    "ecos",
];
const PEER_WORKLOADS: &[&str] = &["mlp", "lenet", "mmoe"];
/// The workloads whose peer is a plain-PyTorch twin the runner starts itself (W5, W6).
const TWIN_WORKLOADS: &[&str] = &["dense", "text"];

/// Runs a script under Python and records the process's peak resident set
/// (`ru_maxrss`, KiB on Linux) in the file named by the first argument.
const MAXRSS_WRAPPER: &str = "\
import json, resource, runpy, sys
out, script = sys.argv[1], sys.argv[2]
sys.argv = [script] + sys.argv[3:]
try:
    runpy.run_path(script, run_name='__main__')
finally:
    with open(out, 'w') as f:
        json.dump({'maxrss_kib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}, f)
";

pub const HELP: &str = "\
cargo xtask bench [--peer] [--libmtl DIR] [--peer-script FILE] [--no-peer-memory] [runner options]

  Builds and runs the mtl-bench runner (release), writing target/bench/bench.json.
  Runner options: --workloads, --methods, --steps, --warmup, --threads, --device, --out,
  ... (see `target/release/mtl-bench --help`).

  --peer             also time LibMTL in the same run (../shared/peer_bench/libmtl_bench.py,
                     LibMTL cloned at a pinned commit into the cache directory) and print
                     LibMTL ms/step / mtl ms/step; writes target/bench/peer.json (all rows),
                     compare.json and libmtl_memory.json. With --workloads naming dense
                     (W5) or text (W6), the runner also times its plain-PyTorch twin
                     (crates/mtl-bench/torch/dense_twin.py, text_twin.py) and prints
                     PyTorch / mtl
  --libmtl DIR       a LibMTL checkout to use instead (or LIBMTL_PATH)
  --peer-script F    the harness (default ../shared/peer_bench/libmtl_bench.py)
  --no-peer-memory   skip measuring LibMTL's peak memory (one process per row)
  --nproc N          data-parallel scaling instead: one process vs N Gloo ranks on loopback
                     at the same global batch, on W1 and W3 (--workloads, --methods,
                     --steps, --threads per rank); writes target/bench/scaling.json
";

#[derive(Debug, Default)]
struct Args {
    peer: bool,
    peer_memory: bool,
    libmtl: Option<PathBuf>,
    peer_script: Option<PathBuf>,
    /// Passed through to the runner.
    runner: Vec<String>,
}

impl Args {
    /// The value of a runner option, when given.
    fn runner_value(&self, flag: &str) -> Option<String> {
        let mut it = self.runner.iter();
        while let Some(a) = it.next() {
            if a == flag {
                return it.next().cloned();
            }
            if let Some(v) = a.strip_prefix(&format!("{flag}=")) {
                return Some(v.to_string());
            }
        }
        None
    }
}

fn parse(args: &[String]) -> Result<Args> {
    let mut a = Args {
        peer_memory: true,
        ..Args::default()
    };
    let mut it = args.iter();
    while let Some(x) = it.next() {
        match x.as_str() {
            "--peer" => a.peer = true,
            "--no-peer-memory" => a.peer_memory = false,
            "--libmtl" => a.libmtl = Some(it.next().context("--libmtl needs a directory")?.into()),
            "--peer-script" => {
                a.peer_script = Some(it.next().context("--peer-script needs a file")?.into())
            }
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            _ => a.runner.push(x.clone()),
        }
    }
    Ok(a)
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"))
}

/// Quotes a word for `sh`.
fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `cargo xtask bench`.
pub fn bench(args: &[String]) -> Result<()> {
    let a = parse(args)?;
    let cuda = a
        .runner_value("--device")
        .is_some_and(|d| d.starts_with("cuda") || d == "gpu");
    let lt = libtorch::setup(cuda)?;
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "mtl-bench",
        "--bin",
        "mtl-bench",
    ]))?;
    let runner = target_dir().join("release").join("mtl-bench");
    let out = a
        .runner_value("--out")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("bench").join("bench.json"));
    // `--nproc N`: data-parallel scaling (one process vs N Gloo ranks on loopback)
    // instead of the per-method table.
    if a.runner_value("--nproc").is_some() {
        let mut scaling = vec!["scaling".to_string()];
        scaling.extend(a.runner.iter().cloned());
        if a.runner_value("--out").is_none() {
            let file = target_dir().join("bench").join("scaling.json");
            scaling.extend(["--out".to_string(), file.display().to_string()]);
        }
        return run(Command::new(&runner).args(&scaling));
    }
    let mut runner_args = a.runner.clone();
    if a.runner_value("--out").is_none() {
        runner_args.extend(["--out".to_string(), out.display().to_string()]);
    }
    if !a.peer {
        return run(Command::new(&runner).args(&runner_args));
    }
    peer(&a, &lt, &runner, runner_args, &out)
}

fn peer(
    a: &Args,
    lt: &Libtorch,
    runner: &Path,
    mut runner_args: Vec<String>,
    out: &Path,
) -> Result<()> {
    let python = ensure_peer_python(lt)?;
    let dir = out
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir)?;

    let steps = a.runner_value("--steps").unwrap_or_else(|| "100".into());
    let warmup = a.runner_value("--warmup").unwrap_or_else(|| "10".into());
    let threads = a.runner_value("--threads").unwrap_or_else(|| "2".into());
    let seed = a.runner_value("--seed").unwrap_or_else(|| "0".into());
    let ours = a.runner_value("--workloads");
    let workloads: Vec<String> = match &ours {
        Some(w) => w
            .split(',')
            .filter(|w| PEER_WORKLOADS.contains(w))
            .map(str::to_string)
            .collect(),
        None => PEER_WORKLOADS.iter().map(|w| w.to_string()).collect(),
    };
    // W5 (dense) and W6 (text) have no LibMTL harness: their peer is the plain-PyTorch
    // twin the runner starts itself under this virtualenv's Python.
    let twin = ours
        .as_deref()
        .is_some_and(|w| w.split(',').any(|w| TWIN_WORKLOADS.contains(&w.trim())));
    if twin {
        runner_args.extend(["--torch-python".into(), python.display().to_string()]);
    }
    if workloads.is_empty() {
        if twin {
            return run(Command::new(runner).args(&runner_args));
        }
        bail!(
            "--peer needs one of the workloads {} (or {}, timed beside plain PyTorch)",
            PEER_WORKLOADS.join(", "),
            TWIN_WORKLOADS.join(" or ")
        );
    }
    let script = a.peer_script.clone().unwrap_or_else(|| {
        project_root()
            .join("..")
            .join("shared")
            .join("peer_bench")
            .join("libmtl_bench.py")
    });
    if !script.exists() {
        bail!(
            "the LibMTL harness is not at {} (pass --peer-script FILE)",
            script.display()
        );
    }
    let libmtl = ensure_libmtl(
        a.libmtl
            .clone()
            .or_else(|| std::env::var_os("LIBMTL_PATH").map(PathBuf::from)),
    )?;
    if ours.is_none() {
        // The harness passes its own workloads; ours add the rep-grad one.
        runner_args.extend(["--workloads".into(), "mlp,lenet,mmoe,mlp_k10".into()]);
    }
    let methods = match a.runner_value("--methods") {
        Some(m) => {
            let names = output(Command::new(runner).args(["libmtl-names", "--methods", &m]))
                .context("mapping --methods to LibMTL's names")?;
            if names.is_empty() {
                bail!("none of --methods {m} exists in LibMTL");
            }
            Some(names)
        }
        None => None,
    };
    let peer_cmd = std::iter::once(runner.display().to_string())
        .chain(runner_args)
        .map(|w| sh_quote(&w))
        .collect::<Vec<_>>()
        .join(" ");
    let merged = dir.join("peer.json");
    let mut cmd = Command::new(&python);
    cmd.arg(&script)
        .arg("--libmtl-path")
        .arg(&libmtl)
        .args(["--workloads", &workloads.join(",")])
        .args([
            "--steps",
            &steps,
            "--warmup",
            &warmup,
            "--threads",
            &threads,
            "--seed",
            &seed,
        ])
        .arg("--out")
        .arg(&merged)
        .args(["--peer-cmd", &peer_cmd]);
    if let Some(m) = &methods {
        cmd.args(["--methods", m]);
    }
    run(&mut cmd)?;

    let mut compare = Command::new(runner);
    compare.arg("compare").arg(&merged);
    if a.peer_memory {
        let mem = dir.join("libmtl_memory.json");
        libmtl_memory(
            &python, &script, &libmtl, &merged, &steps, &warmup, &threads, &mem,
        )?;
        compare.arg("--memory").arg(&mem);
    }
    compare.arg("--out").arg(dir.join("compare.json"));
    run(&mut compare)
}

/// LibMTL's peak resident memory per (workload, method): the harness run once per row in
/// its own Python process (at most 20 timed steps; the peak is reached in the first).
#[allow(clippy::too_many_arguments)]
fn libmtl_memory(
    python: &Path,
    script: &Path,
    libmtl: &Path,
    merged: &Path,
    steps: &str,
    warmup: &str,
    threads: &str,
    out: &Path,
) -> Result<()> {
    let text =
        std::fs::read_to_string(merged).with_context(|| format!("reading {}", merged.display()))?;
    // The (workload, method) pairs LibMTL ran, read without a JSON parser: each LibMTL row
    // starts `"impl": "libmtl", "workload": ..., "method": ...`.
    let mut pairs: Vec<(String, String)> = Vec::new();
    let field = |chunk: &str, key: &str| -> Option<String> {
        let i = chunk.find(&format!("\"{key}\": \""))? + key.len() + 5;
        Some(chunk[i..].split('"').next()?.to_string())
    };
    for chunk in text.split("\"impl\": \"libmtl\"").skip(1) {
        if let (Some(w), Some(m)) = (field(chunk, "workload"), field(chunk, "method")) {
            if !pairs.contains(&(w.clone(), m.clone())) {
                pairs.push((w, m));
            }
        }
    }
    let steps = steps.parse::<usize>().unwrap_or(100).min(20).to_string();
    let tmp = std::env::temp_dir().join(format!("mtl-bench-libmtl-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    // (workload, label) -> MiB; the shim row shares the stock method's process, which
    // runs both.
    let mut measured: Vec<(String, String, f64)> = Vec::new();
    let mut entries = Vec::new();
    for (i, (w, m)) in pairs.iter().enumerate() {
        let base = m.strip_suffix("+eigh_shim").unwrap_or(m);
        if let Some((_, _, mib)) = measured.iter().find(|(mw, mb, _)| mw == w && mb == base) {
            entries.push(format!("  \"{w}/{m}\": {mib:.1}"));
            continue;
        }
        let rss = tmp.join(format!("{i}.json"));
        eprintln!(
            "bench: LibMTL peak memory {w}/{base} ({}/{})",
            i + 1,
            pairs.len()
        );
        let status = Command::new(python)
            .args(["-c", MAXRSS_WRAPPER])
            .arg(&rss)
            .arg(script)
            .arg("--libmtl-path")
            .arg(libmtl)
            .args(["--workloads", w, "--methods", base, "--no-baseline"])
            .args(["--steps", &steps, "--warmup", warmup, "--threads", threads])
            .arg("--out")
            .arg(tmp.join(format!("{i}.rows.json")))
            .stdout(std::process::Stdio::null())
            .status()?;
        let kib = std::fs::read_to_string(&rss).ok().and_then(|s| {
            s.split(':')
                .nth(1)?
                .trim()
                .trim_end_matches('}')
                .trim()
                .parse::<f64>()
                .ok()
        });
        match kib {
            Some(k) if status.success() => {
                let mib = k / 1024.0;
                measured.push((w.clone(), base.to_string(), mib));
                entries.push(format!("  \"{w}/{m}\": {mib:.1}"));
            }
            _ => eprintln!("bench: no memory figure for {w}/{base} ({status})"),
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::write(out, format!("{{\n{}\n}}\n", entries.join(",\n")))?;
    eprintln!("bench: wrote {}", out.display());
    Ok(())
}

/// A LibMTL checkout at [`LIBMTL_COMMIT`]: `dir` when given, else cloned into the cache
/// directory. Writes the `COMMIT` file the harness reads.
fn ensure_libmtl(dir: Option<PathBuf>) -> Result<PathBuf> {
    let given = dir.is_some();
    let dir = dir.unwrap_or_else(|| cache_dir().join("libmtl"));
    let git = |args: &[&str]| -> Command {
        let mut c = Command::new("git");
        c.arg("-C").arg(&dir).args(args);
        c
    };
    if !dir.join("LibMTL").join("__init__.py").exists() {
        if given {
            bail!("{} holds no LibMTL package", dir.display());
        }
        eprintln!("bench: cloning LibMTL into {}", dir.display());
        std::fs::create_dir_all(cache_dir())?;
        run(Command::new("git")
            .args(["clone", "--quiet", LIBMTL_URL])
            .arg(&dir))?;
    }
    if dir.join(".git").exists() {
        let head = output(&mut git(&["rev-parse", "HEAD"])).unwrap_or_default();
        if head != LIBMTL_COMMIT {
            if given {
                eprintln!(
                    "bench: warning: {} is at {head}, not {LIBMTL_COMMIT}",
                    dir.display()
                );
            } else {
                if output(&mut git(&["cat-file", "-t", LIBMTL_COMMIT])).is_none() {
                    run(&mut git(&["fetch", "--quiet", "origin"]))?;
                }
                run(&mut git(&["checkout", "--quiet", LIBMTL_COMMIT]))?;
            }
        }
        let head = output(&mut git(&["rev-parse", "HEAD"])).unwrap_or_default();
        std::fs::write(dir.join("COMMIT"), format!("{head}\n"))?;
    }
    Ok(dir)
}

/// The Python of a virtualenv (in the cache directory) that can import torch 2.13.0,
/// LibMTL's dependencies and the harness's. When `setup` installed torch into its own
/// virtualenv, this one reuses it through a `.pth` file and adds only what Python's
/// `import torch` needs beyond the libraries Rust links.
pub(crate) fn ensure_peer_python(lt: &Libtorch) -> Result<PathBuf> {
    let venv = cache_dir().join("peer-venv");
    let python = venv.join("bin").join("python");
    let imports_ok = || {
        let probe = format!(
            "import torch, numpy, scipy, cvxpy, qpsolvers, quadprog, ecos; \
             assert torch.__version__.split('+')[0] == '{TORCH_VERSION}', torch.__version__"
        );
        python.exists() && output(Command::new(&python).args(["-c", &probe])).is_some()
    };
    if imports_ok() {
        return Ok(python);
    }
    eprintln!(
        "bench: preparing the LibMTL virtualenv at {}",
        venv.display()
    );
    if !python.exists() {
        let base = cache_dir().join("venv").join("bin").join("python");
        let base = if lt.source == Source::Venv && base.exists() {
            base
        } else {
            PathBuf::from("python3")
        };
        run(Command::new(base)
            .args(["-m", "venv", "--system-site-packages"])
            .arg(&venv))?;
    }
    if lt.source == Source::Venv {
        let purelib = output(Command::new(&python).args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ]))
        .context("finding the virtualenv's site-packages")?;
        let torch_site = lt.root.parent().context("torch has no parent directory")?;
        std::fs::write(
            Path::new(&purelib).join("mtl_torch.pth"),
            format!("{}\n", torch_site.display()),
        )?;
    }
    let install = || pip(&python, &["install", "--quiet"]);
    // With torch visible through the .pth file, this installs only its missing
    // dependencies (the CUDA libraries `import torch` loads); otherwise all of it.
    run(install().arg(format!("torch=={TORCH_VERSION}")))?;
    run(install().args(PEER_PACKAGES))?;
    if !imports_ok() {
        bail!(
            "{} still cannot import torch {TORCH_VERSION} and LibMTL's dependencies",
            python.display()
        );
    }
    Ok(python)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_runner_values() {
        assert_eq!(sh_quote("a/b-c.json"), "a/b-c.json");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        let a = parse(&[
            "--peer".into(),
            "--steps=20".into(),
            "--out".into(),
            "x.json".into(),
        ])
        .unwrap();
        assert!(a.peer && a.peer_memory);
        assert_eq!(a.runner_value("--steps").as_deref(), Some("20"));
        assert_eq!(a.runner_value("--out").as_deref(), Some("x.json"));
        assert_eq!(a.runner_value("--threads"), None);
    }
}
