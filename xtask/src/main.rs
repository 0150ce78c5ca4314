//! Project automation in plain Rust (the cargo-xtask pattern): `cargo xtask <command>`.
//!
//! Every command that builds Rust code first runs [`setup`], so a fresh clone needs
//! nothing but `cargo xtask demo` or `cargo xtask test`.

mod bench;
mod cargo_config;
mod data;
mod doctor;
mod libtorch;
mod util;

use anyhow::{bail, Result};
use std::path::Path;
use std::process::Command;
use util::{project_root, run};

const HELP: &str = "\
cargo xtask <command> [options]

commands:
  setup [--cuda] [--cargo-config DIR] [--print-env]
                   find or install libtorch 2.13.0 and point this workspace's cargo at
                   it; --cargo-config DIR also merges LIBTORCH and the rpath into
                   DIR/.cargo/config.toml (your own crate); --print-env prints them as
                   shell exports instead of the progress lines
  doctor           report the libtorch install, CUDA, the cache, and how to fix problems
  test             setup, then fmt check, clippy -D warnings, and every test
  demo [dense|text|semi|robust|federated|bayes|linear]
                   setup, then train the olive-oil multi-task demo; `demo dense` trains
                   segmentation, depth and normals on generated scenes; `demo text`
                   pretrains a small Transformer as a masked language model, fine-tunes it
                   on Brown-corpus genres and part-of-speech tags (`--corpus synthetic`:
                   topics and entity tags), and predicts raw sentences; `demo
                   semi` compares 10 % labels alone with 10 % plus consistency training
                   on the rest (olive oil, several seeds); `demo robust` compares standard
                   and adversarial training on MultiMNIST, clean and under attack;
                   `demo federated` spreads olive oil over 8 simulated clients and
                   compares local-only, FedAvg, FedProx and Ditto per client; `demo
                   bayes` compares hierarchical Bayesian, independent and pooled models
                   on radon, London schools and contraception; `demo linear` compares
                   regularized multi-task linear models with single-task and pooled
                   baselines on London schools, radon and contraception
  bench [--peer]   setup, then time every method per training step (target/bench/bench.json)
  repro NAME|--list [-- ARGS]
                   setup, then rerun a published experiment (release build); --list
                   says which exist; `repro mmoe` runs the MMoE paper's synthetic
                   experiment in quick mode (10 seeds, a few minutes) and writes its
                   table and plot into docs/reproductions.md, `repro mmoe -- --full`
                   runs the paper's 200 seeds and learning-rate grid (hours); it
                   resumes from the cells an interrupted run recorded; `repro libmtl
                   -- --libmtl PATH` trains 7 methods in mtl and in the LibMTL checkout
                   at PATH on the same Census-Income arrays and seeds (quick: 10 seeds,
                   40k rows; --full: all rows), preparing LibMTL's virtualenv
                   in the cache as `bench --peer` does; `repro census` and `repro
                   multimnist` rerun the MMoE paper's Census-Income groups and Sener
                   & Koltun's MultiMNIST (quick modes; --full for the papers' budgets)
  data [NAME|all]  download, verify and unpack the real data sets into the cache
  methods [--json] list every loss weighting and gradient aggregator
  help             this text

environment:
  LIBTORCH         use this libtorch (its version must be 2.13.0)
  MTL_CACHE_DIR    where setup keeps its virtualenv (default ~/.cache/mtl)
";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("help", &[][..]),
    };
    // Paths on the command line are relative to where the caller ran the command.
    let caller = std::env::current_dir()?;
    std::env::set_current_dir(project_root())?;
    match cmd {
        "setup" => setup(rest, &caller)?,
        "doctor" => doctor::doctor()?,
        "test" => test()?,
        "demo" => match rest.split_first() {
            Some((which, rest)) if which == "dense" => example("dense", rest)?,
            Some((which, rest)) if which == "text" => example("text", rest)?,
            Some((which, rest)) if which == "semi" => example("semi", rest)?,
            Some((which, rest)) if which == "robust" => {
                // MultiMNIST is built from MNIST, which lives in the cache (or a
                // verified shared copy linked there).
                data::link_shared_sets()?;
                example("robust", rest)?
            }
            Some((which, rest)) if which == "federated" => example("federated", rest)?,
            Some((which, rest)) if which == "bayes" => example("bayes", rest)?,
            Some((which, rest)) if which == "linear" => example("linear", rest)?,
            _ => example("olive_oil", rest)?,
        },
        "bench" => bench::bench(rest)?,
        "repro" => repro(rest, &caller)?,
        "data" => data::data(rest)?,
        "methods" => example("methods", rest)?,
        "help" | "--help" | "-h" => print!("{HELP}"),
        other => bail!("unknown command `{other}`\n\n{HELP}"),
    }
    Ok(())
}

/// `cargo xtask setup [--cuda] [--cargo-config DIR] [--print-env]`.
fn setup(args: &[String], caller: &Path) -> Result<()> {
    let mut cuda = false;
    let mut print_env = false;
    let mut configs = Vec::new();
    let mut args = args.iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--cuda" => cuda = true,
            "--print-env" => print_env = true,
            "--cargo-config" => match args.next() {
                Some(dir) => configs.push(caller.join(dir)),
                None => bail!("--cargo-config needs a directory (your crate's root)"),
            },
            other => bail!("setup: unknown option `{other}`\n\n{HELP}"),
        }
    }
    let lt = libtorch::setup(cuda)?;
    for dir in configs {
        let (path, changed) = cargo_config::merge_into(&dir, &lt.root, &lt.lib_dir())?;
        eprintln!(
            "setup: {} {}",
            if changed { "wrote" } else { "unchanged:" },
            path.display()
        );
    }
    if print_env {
        print!("{}", cargo_config::env_lines(&lt.root, &lt.lib_dir()));
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn test() -> Result<()> {
    libtorch::setup(false)?;
    data::link_shared_sets()?;
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args(["test", "--workspace", "--all-targets"]))?;
    run(cargo().args(["test", "--workspace", "--doc"]))?;
    Ok(())
}

/// The experiments `cargo xtask repro` reruns: (name, example, arguments it always
/// gets, what it reproduces).
const REPROS: &[(&str, &str, &[&str], &str)] = &[
    (
        "toy",
        "toy",
        &[],
        "the two-objective toy of CAGrad / Nash-MTL / FAMO: 7 methods from the papers' 5 starts",
    ),
    (
        "mmoe",
        "mmoe_synthetic",
        &["--docs"],
        "MMoE paper's synthetic data: shared-bottom, OMoE, MMoE vs task correlation (--full: 200 seeds)",
    ),
    (
        "census",
        "census_repro",
        &["--docs"],
        "MMoE paper's Census-Income: shared-bottom, OMoE, MMoE test AUC, both task groups (--full: all rows, 10 seeds, grid)",
    ),
    (
        "multimnist",
        "multimnist",
        &["--docs"],
        "Sener & Koltun's MultiMNIST: single-task, uniform scaling, MGDA-UB (--full: 50k, 100 epochs)",
    ),
    (
        "libmtl",
        "libmtl_side_by_side",
        &["--docs"],
        "side by side with LibMTL on Census-Income: 7 methods, same data and seeds (-- --libmtl PATH)",
    ),
];

/// `cargo xtask repro NAME [-- args]` or `--list`.
fn repro(rest: &[String], caller: &Path) -> Result<()> {
    let Some((name, rest)) = rest.split_first().filter(|(n, _)| n.as_str() != "--list") else {
        for (name, _, _, what) in REPROS {
            println!("{name:<10} {what}");
        }
        return Ok(());
    };
    let Some((_, example, fixed, _)) = REPROS.iter().find(|(n, _, _, _)| n == name) else {
        let known: Vec<&str> = REPROS.iter().map(|(n, _, _, _)| *n).collect();
        bail!("no experiment `{name}`; known: {}", known.join(", "));
    };
    let lt = libtorch::setup(false)?;
    let mut rest: Vec<String> = rest
        .iter()
        .filter(|a| a.as_str() != "--")
        .cloned()
        .collect();
    if *name == "libmtl" {
        rest = libmtl_args(rest, caller, &lt)?;
    }
    let mut cmd = cargo();
    cmd.args(["run", "--release", "--example", example, "--"]);
    cmd.args(*fixed);
    cmd.args(rest);
    run(&mut cmd)
}

/// `repro libmtl`'s arguments: the LibMTL checkout (`--libmtl PATH` or `LIBMTL_PATH`)
/// made absolute, since the example runs from the project root, and `--python` set to
/// the virtualenv `bench --peer` uses (prepared here when missing) unless given.
fn libmtl_args(
    mut args: Vec<String>,
    caller: &Path,
    lt: &libtorch::Libtorch,
) -> Result<Vec<String>> {
    let given = args.iter().position(|a| a == "--libmtl");
    let path = match given {
        Some(i) => match args.get(i + 1) {
            Some(p) => p.clone(),
            None => bail!("--libmtl needs the path of a LibMTL checkout"),
        },
        None => std::env::var("LIBMTL_PATH").unwrap_or_default(),
    };
    if path.is_empty() {
        bail!(
            "repro libmtl needs a LibMTL checkout: `cargo xtask repro libmtl -- --libmtl PATH` \
             (or LIBMTL_PATH=PATH), PATH a clone of https://github.com/median-research-group/LibMTL"
        );
    }
    let dir = caller.join(&path);
    if !dir.join("LibMTL").join("__init__.py").is_file() {
        bail!(
            "{} is not a LibMTL checkout (no LibMTL/__init__.py); clone \
             https://github.com/median-research-group/LibMTL and pass its folder to --libmtl",
            dir.display()
        );
    }
    let dir = dir.display().to_string();
    match given {
        Some(i) => args[i + 1] = dir,
        None => args.extend(["--libmtl".to_string(), dir]),
    }
    if let Some(i) = args.iter().position(|a| a == "--python") {
        if let Some(p) = args.get_mut(i + 1) {
            *p = caller.join(&*p).display().to_string();
        }
    } else {
        let python = bench::ensure_peer_python(lt)?;
        args.extend(["--python".to_string(), python.display().to_string()]);
    }
    Ok(args)
}

/// Runs one of the root package's examples (in the test profile's build, so it
/// reuses what `cargo xtask test` compiled).
fn example(name: &str, rest: &[String]) -> Result<()> {
    libtorch::setup(false)?;
    let mut cmd = cargo();
    cmd.args(["run", "--example", name, "--"]);
    cmd.args(rest);
    run(&mut cmd)
}
