//! The `mtl` binary: argument parsing around [`mtl_cli::run()`].

use clap::{Parser, Subcommand};
use mtl_cli::{predict, run::run_in, run::SharedGroup, summary, Overrides, PredictArgs};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "mtl", version, about = "Multi-task learning on libtorch")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train from a TOML or JSON config; writes report.json and plots.
    Train {
        /// The run configuration (`.toml` or `.json`).
        config: PathBuf,
        /// Output directory (default: `output.dir`, else `runs/<config stem>`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override `train.epochs`.
        #[arg(long)]
        epochs: Option<usize>,
        /// Override `train.method` (see `mtl methods`).
        #[arg(long)]
        method: Option<String>,
        /// Continue the run saved in this checkpoint.
        #[arg(long)]
        resume: Option<PathBuf>,
        /// With --resume: go on even when the data, preprocessing or settings differ
        /// from the checkpoint's (each difference is printed as a warning).
        #[arg(long, requires = "resume")]
        force_resume: bool,
        /// Also train single-task baselines and report Δm.
        #[arg(long)]
        baselines: bool,
        /// Report Δm against the `baselines.json` an earlier `--baselines` run wrote
        /// (same data, split and seed) instead of training baselines.
        #[arg(long, value_name = "FILE", conflicts_with = "baselines")]
        baselines_from: Option<PathBuf>,
        /// Override `train.seed` (the split, the initialisation and the batches).
        #[arg(long)]
        seed: Option<u64>,
        /// No progress bars.
        #[arg(long, short)]
        quiet: bool,
        /// Train data-parallel on N local processes (Gloo on loopback), each on its
        /// block of every batch; ranks started by torchrun (RANK, WORLD_SIZE,
        /// MASTER_ADDR, MASTER_PORT set) join their group without it.
        #[arg(long, value_name = "N")]
        nproc: Option<usize>,
    },
    /// Predict the rows of a CSV file with a trained model; writes one column per task.
    Predict {
        /// An `mtl train` output directory, or the model bundle inside it (`model/`).
        bundle: PathBuf,
        /// The rows to predict: a CSV file with the model's feature columns.
        #[arg(long)]
        csv: PathBuf,
        /// Where to write the predictions (CSV).
        #[arg(long)]
        out: PathBuf,
        /// Column names replacing the CSV file's header line (comma-separated).
        #[arg(long, value_delimiter = ',')]
        header: Option<Vec<String>>,
    },
    /// Train every method × seed (child processes, resumable) and rank the methods by
    /// Δm with 95 % intervals and paired t-tests against EW and tuned static weights.
    Sweep(mtl_cli::sweep::SweepArgs),
    /// Choose task groups from the TAG affinity of one all-in-one run, train them, and
    /// compare Δm with all-in-one and single-task training.
    Group(mtl_cli::group::GroupArgs),
    /// Which shared latent dimension of a saved model tracks which column of a CSV
    /// file (correlation and mutual information; writes latents.json and latents.png).
    Latents(mtl_cli::latents::LatentArgs),
    /// List the registered weighting and aggregation methods.
    Methods,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Train {
            config,
            out,
            epochs,
            method,
            resume,
            force_resume,
            baselines,
            baselines_from,
            seed,
            quiet,
            nproc,
        } => {
            let group = match join_group() {
                Ok(g) => g,
                Err(e) => {
                    eprintln!("mtl: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if let (None, Some(n)) = (&group, nproc) {
                if n != 1 {
                    return launch(n);
                }
            }
            let rank = group.as_ref().map_or(0, |g| g.rank());
            let overrides = Overrides {
                out,
                epochs,
                method,
                resume,
                force_resume,
                baselines,
                baselines_from,
                seed,
                quiet,
            };
            match run_in(&config, &overrides, group) {
                Ok(outcome) => {
                    if rank == 0 {
                        print!("{}", summary(&outcome.report));
                        for f in &outcome.files {
                            println!("wrote {}", f.display());
                        }
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("mtl: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Predict {
            bundle,
            csv,
            out,
            header,
        } => match predict(&PredictArgs {
            bundle,
            csv,
            header,
            out,
        }) {
            Ok(outcome) => {
                println!(
                    "predicted {} rows ({}); wrote {}",
                    outcome.rows,
                    outcome.columns.join(", "),
                    outcome.out.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mtl: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Latents(args) => match mtl_cli::latents::latents(&args) {
            Ok((report, out)) => {
                print!("{}", report.ranked_table(15));
                println!("wrote {0}/latents.json and {0}/latents.png", out.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mtl: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Sweep(args) => match mtl_cli::sweep::sweep(&args) {
            Ok(outcome) => {
                print!("{}", outcome.summary.table());
                for f in &outcome.files {
                    println!("wrote {}", f.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mtl: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Group(args) => match mtl_cli::group::group(&args) {
            Ok(outcome) => {
                print!("{}", outcome.table());
                for f in &outcome.files {
                    println!("wrote {}", f.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mtl: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Methods => {
            for m in mtl::losses::list() {
                println!("{:<12} {:<9?} {}", m.name, m.level, m.paper);
            }
            ExitCode::SUCCESS
        }
    }
}

/// The data-parallel group this process belongs to, when the rank variables are set.
#[cfg(feature = "distributed")]
fn join_group() -> mtl::core::Result<Option<SharedGroup>> {
    use mtl::dist::{DistConfig, ProcessGroup};
    match DistConfig::from_env()? {
        Some(config) => Ok(Some(std::sync::Arc::new(ProcessGroup::init(&config)?))),
        None => Ok(None),
    }
}

#[cfg(not(feature = "distributed"))]
fn join_group() -> mtl::core::Result<Option<SharedGroup>> {
    match std::env::var_os("WORLD_SIZE") {
        Some(_) => Err(mtl::core::Error::config(
            "RANK/WORLD_SIZE are set but this mtl was built without the `distributed` feature",
        )),
        None => Ok(None),
    }
}

/// `--nproc N`: starts N ranks of this same command line (without `--nproc`) on
/// loopback and waits for them; a failing rank stops the others.
#[cfg(feature = "distributed")]
fn launch(nproc: usize) -> ExitCode {
    use mtl::dist::launch;
    let mut args: Vec<String> = Vec::new();
    let mut skip = false;
    for a in std::env::args().skip(1) {
        if skip {
            skip = false;
        } else if a == "--nproc" {
            skip = true;
        } else if !a.starts_with("--nproc=") {
            args.push(a);
        }
    }
    let result = std::env::current_exe()
        .map_err(|e| mtl::core::Error::config(format!("cannot find the mtl executable: {e}")))
        .and_then(|exe| {
            let port = launch::free_port()?;
            launch::run_local(nproc, port, |_| {
                let mut cmd = std::process::Command::new(&exe);
                cmd.args(&args);
                cmd
            })
        });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mtl: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "distributed"))]
fn launch(_nproc: usize) -> ExitCode {
    eprintln!("mtl: --nproc needs mtl built with the `distributed` feature");
    ExitCode::FAILURE
}
