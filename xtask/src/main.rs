//! Project automation in plain Rust (the cargo-xtask pattern): `cargo xtask <command>`.
//!
//! Every command that builds Rust code first runs [`setup`], so a fresh clone needs
//! nothing but `cargo xtask demo` or `cargo xtask test`.

mod bench;
mod data;
mod doctor;
mod libtorch;
mod util;

use anyhow::{bail, Result};
use std::process::Command;
use util::{project_root, run};

const HELP: &str = "\
cargo xtask <command> [options]

commands:
  setup [--cuda]   find or install libtorch 2.13.0 and point cargo at it
  doctor           report the libtorch install, CUDA, the cache, and how to fix problems
  test             setup, then fmt check, clippy -D warnings, and every test
  demo             setup, then train the olive-oil multi-task demo
  bench [--peer]   setup, then time every method per training step (target/bench/bench.json)
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
    std::env::set_current_dir(project_root())?;
    match cmd {
        "setup" => {
            let cuda = rest.iter().any(|a| a == "--cuda");
            libtorch::setup(cuda)?;
        }
        "doctor" => doctor::doctor()?,
        "test" => test()?,
        "demo" => example("olive_oil", rest)?,
        "bench" => bench::bench(rest)?,
        "data" => data::data(rest)?,
        "methods" => example("methods", rest)?,
        "help" | "--help" | "-h" => print!("{HELP}"),
        other => bail!("unknown command `{other}`\n\n{HELP}"),
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn test() -> Result<()> {
    libtorch::setup(false)?;
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

/// Runs one of the root package's examples (in the test profile's build, so it
/// reuses what `cargo xtask test` compiled).
fn example(name: &str, rest: &[String]) -> Result<()> {
    libtorch::setup(false)?;
    let mut cmd = cargo();
    cmd.args(["run", "--example", name, "--"]);
    cmd.args(rest);
    run(&mut cmd)
}
