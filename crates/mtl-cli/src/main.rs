//! The `mtl` binary: argument parsing around [`mtl_cli::run()`].

use clap::{Parser, Subcommand};
use mtl_cli::{predict, run, summary, Overrides, PredictArgs};
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
        /// No progress bars.
        #[arg(long, short)]
        quiet: bool,
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
            quiet,
        } => {
            let overrides = Overrides {
                out,
                epochs,
                method,
                resume,
                force_resume,
                baselines,
                quiet,
            };
            match run(&config, &overrides) {
                Ok(outcome) => {
                    print!("{}", summary(&outcome.report));
                    for f in &outcome.files {
                        println!("wrote {}", f.display());
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
        Command::Methods => {
            for m in mtl::losses::list() {
                println!("{:<12} {:<9?} {}", m.name, m.level, m.paper);
            }
            ExitCode::SUCCESS
        }
    }
}
