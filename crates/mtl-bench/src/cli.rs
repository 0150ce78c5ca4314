//! The `mtl-bench` command line: plans the jobs, runs each in a fresh process (or all in
//! this one), adds the floor ratios, writes the JSON and prints the tables.
//!
//! The flags are parsed with `clap`, so `mtl-bench --help` lists every one; the
//! `PEER_BENCH_*` variables of the LibMTL harness set the defaults they name, and a flag
//! given on the command line overrides its variable.

use super::job::{self, mode_name, Job, RunConfig, FLOOR_IMPL, IMPL};
use super::report;
use super::spec::{libmtl_name, Workload};
use super::timing::load_average;
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use mtl::losses::{list, MethodLevel};
use mtl::GradMode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;
use tch::Device;

const AFTER_HELP: &str = "\
As the --peer-cmd of shared/peer_bench/libmtl_bench.py it reads PEER_BENCH_OUT,
PEER_BENCH_WORKLOADS, PEER_BENCH_SEED, PEER_BENCH_WARMUP, PEER_BENCH_STEPS and
PEER_BENCH_THREADS, and writes its rows to $PEER_BENCH_OUT in the harness's schema.
`cargo xtask bench` builds and runs this program; `cargo xtask bench --peer` also times
LibMTL in the same run.";

/// mtl-bench: training-step speed of every mtl method on the peer harness's workloads.
///
/// Without a subcommand it runs the benchmark: per workload, its plain-tch floors and
/// every method (each row in its own process), then the aggregators alone (W4); it
/// writes the JSON and prints the tables.
#[derive(Debug, Parser)]
#[command(
    name = "mtl-bench",
    args_conflicts_with_subcommands = true,
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// LibMTL ms/step / mtl ms/step from a merged harness file (with `cargo xtask bench
    /// --peer`'s memory file, the peak memories too)
    Compare {
        /// The merged harness JSON (the harness's --out, with both libraries' rows)
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// LibMTL's peak resident memory per row (libmtl_memory.json of `cargo xtask bench
        /// --peer`)
        #[arg(long, value_name = "MEM.json")]
        memory: Option<PathBuf>,
        /// Also write the comparison as JSON here
        #[arg(long, value_name = "OUT.json")]
        out: Option<PathBuf>,
    },
    /// Print LibMTL's names of our methods, comma-separated (those LibMTL has)
    LibmtlNames {
        /// Registry names or LibMTL names [default: every registered method]
        #[arg(long, value_name = "LIST")]
        methods: Option<String>,
    },
    /// Data-parallel scaling on loopback: one process on the global batch vs N Gloo
    /// ranks on its blocks, per workload and method (speed-up, efficiency, bytes per
    /// step, communication share)
    Scaling {
        /// Ranks of the parallel run
        #[arg(long, default_value_t = 2)]
        nproc: usize,
        /// Workloads [default: mlp,mmoe (W1, W3)]
        #[arg(long, value_name = "LIST", default_value = "mlp,mmoe")]
        workloads: String,
        /// Methods [default: ew,uw,pcgrad,upgrad]
        #[arg(long, value_name = "LIST", default_value = "ew,uw,pcgrad,upgrad")]
        methods: String,
        /// Timed steps per run
        #[arg(long, default_value_t = 40)]
        steps: usize,
        /// Untimed warm-up steps
        #[arg(long, default_value_t = 5)]
        warmup: usize,
        /// Intra-op threads per process
        #[arg(long, default_value_t = 1)]
        threads: i32,
        /// Where the JSON goes
        #[arg(long, default_value = "target/bench/scaling.json")]
        out: PathBuf,
    },
    /// One process of a scaling run (started by `scaling`)
    #[command(name = "__scaling-child", hide = true)]
    ScalingChild {
        #[arg(long)]
        steps: usize,
        #[arg(long)]
        warmup: usize,
        #[arg(long)]
        threads: i32,
    },
    /// Run one job in this process and print its rows as `ROW {json}` lines: what the
    /// benchmark starts for each row
    #[command(name = "__job", hide = true)]
    Job {
        /// The job, as `Job::encode` writes it (`method:mlp:pcgrad:param`, `floor:mlp:grad`,
        /// `agg:40`)
        job: String,
        // Boxed: the one large variant, parsed once per process.
        #[command(flatten)]
        run: Box<RunArgs>,
    },
}

/// The optimiser of the method rows (`--optimizer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OptimizerArg {
    /// mtl_core::Optimizer, as the Trainer uses (the real rows)
    Mtl,
    /// libtorch's C++ Adam, as the floors use (a diagnostic)
    Libtorch,
}

/// The options of a benchmark run, and of each job process it starts.
///
/// The ones a `PEER_BENCH_*` variable can set are `Option`s, so an absent flag falls back
/// to the variable and then to the [`RunConfig`] default; the others carry their default.
#[derive(Debug, Clone, Args)]
struct RunArgs {
    /// Workloads to run, of mlp, lenet, mmoe, mlp_k10, dense (W5) and text (W6; W5 and W6
    /// only when named) [default: mlp,lenet,mmoe,mlp_k10, or PEER_BENCH_WORKLOADS]
    #[arg(long, value_name = "LIST")]
    workloads: Option<String>,
    /// Methods to run, by registry or LibMTL name [default: every registered method; on
    /// text, EW, UW and PCGrad]
    #[arg(long, value_name = "LIST")]
    methods: Option<String>,
    /// Timed steps per row [default: 100, or PEER_BENCH_STEPS]
    #[arg(long, value_name = "N")]
    steps: Option<usize>,
    /// Untimed warm-up steps [default: 10, or PEER_BENCH_WARMUP]
    #[arg(long, value_name = "N")]
    warmup: Option<usize>,
    /// Intra-op threads (tch::set_num_threads) [default: 2, or PEER_BENCH_THREADS]
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Data and method seed [default: 0, or PEER_BENCH_SEED]
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// cpu, cuda (or gpu) or cuda:N
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    device: String,
    /// Where the JSON goes [default: target/bench/bench.json]; with PEER_BENCH_OUT set,
    /// that file is written too
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Workloads whose gradient methods also run in rep-grad mode
    #[arg(long, value_name = "LIST", default_value = "mlp_k10,dense")]
    rep_workloads: String,
    /// A Python with torch: with the dense or text workload, also time its plain-PyTorch
    /// twin (crates/mtl-bench/torch/dense_twin.py, text_twin.py) on the same batches and
    /// threads, and report PyTorch ms/step / mtl ms/step (`cargo xtask bench --peer`
    /// passes its virtualenv's)
    #[arg(long, value_name = "PYTHON")]
    torch_python: Option<PathBuf>,
    /// W4: the task counts K
    #[arg(long = "agg-k", value_name = "LIST", default_value = "2,10,40")]
    agg_k: String,
    /// W4: the Jacobian width d
    #[arg(long, value_name = "N", default_value_t = RunConfig::default().agg_dim as usize)]
    agg_dim: usize,
    /// W4: timed calls per aggregator
    #[arg(long, value_name = "N", default_value_t = RunConfig::default().agg_reps)]
    agg_reps: usize,
    /// W4: the aggregators to time, by registry or LibMTL name [default: every
    /// gradient-level method]
    #[arg(long, value_name = "LIST")]
    agg_methods: Option<String>,
    /// Skip W4
    #[arg(long)]
    no_aggregators: bool,
    /// Skip the plain-tch floors (each method row also times its floor in its own
    /// process, interleaved with its steps; this skips that too)
    #[arg(long)]
    no_floor: bool,
    /// Run every row in this process (faster; the peak memory is then cumulative, not per
    /// row)
    #[arg(long)]
    in_process: bool,
    /// Fewest timed steps when the method budget cuts a row
    #[arg(long, value_name = "N", default_value_t = RunConfig::default().min_steps)]
    min_steps: usize,
    /// Time fewer steps when warm-up predicts more than S seconds of timed steps
    #[arg(long, value_name = "S", default_value_t = RunConfig::default().method_budget_s)]
    method_budget_s: f64,
    /// Repeat a row whose window saw other processes use more than this fraction of the
    /// CPUs
    #[arg(long, value_name = "F", default_value_t = RunConfig::default().contention_threshold)]
    contention_threshold: f64,
    /// How many times a contended row is repeated
    #[arg(long, value_name = "N", default_value_t = RunConfig::default().contention_retries)]
    contention_retries: usize,
    /// Distinct fixed batches each row cycles through
    #[arg(long, value_name = "N", default_value_t = RunConfig::default().n_batches as usize)]
    n_batches: usize,
    /// The epoch passed to the methods (2, as the harness pins LibMTL's, so GradNorm and DWA
    /// run their steady-state branches)
    #[arg(long, value_name = "N", default_value_t = RunConfig::default().epoch)]
    epoch: usize,
    /// No progress bar
    #[arg(long)]
    quiet: bool,
    /// Past S/2 seconds, stop re-measuring contended rows (0: no limit)
    #[arg(long, value_name = "S", default_value_t = 480.0)]
    time_budget_s: f64,
    /// What steps the mtl rows: libtorch is a diagnostic that uses libtorch's C++ Adam (as
    /// the floors do) instead of mtl_core::Optimizer; its rows get impl mtl+libtorch_adam
    #[arg(long, value_enum, value_name = "OPTIMIZER", default_value = "mtl")]
    optimizer: OptimizerArg,
}

/// Parsed options of a benchmark run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Workloads to run.
    pub workloads: Vec<Workload>,
    /// Our registry names.
    pub methods: Vec<String>,
    /// Whether `--methods` named them (otherwise a workload with
    /// [`Workload::default_methods`] runs only those).
    pub methods_given: bool,
    /// Per-job settings.
    pub cfg: RunConfig,
    /// Where the JSON goes.
    pub out: PathBuf,
    /// The harness's output file, in peer mode.
    pub peer_out: Option<PathBuf>,
    /// Workloads whose gradient methods also run in rep-grad mode.
    pub rep_workloads: Vec<Workload>,
    /// W4 task counts (empty: no W4).
    pub agg_ks: Vec<usize>,
    /// Whether to time the floors.
    pub floors: bool,
    /// Run every job in this process.
    pub in_process: bool,
    /// No progress bar.
    pub quiet: bool,
    /// Past half of this many seconds, contended rows are no longer re-measured (0: no
    /// limit), so a run on a busy machine still ends in bounded time.
    pub time_budget_s: f64,
    /// The Python that runs W5's and W6's plain-PyTorch twins, when they are to run.
    pub torch_python: Option<PathBuf>,
}

/// Resolves a comma list of our or LibMTL's method names to registry names.
pub fn resolve_methods(list_arg: &str) -> Result<Vec<String>> {
    let known: Vec<String> = list().into_iter().map(|i| i.name.to_string()).collect();
    let mut out = Vec::new();
    for m in list_arg.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let found = known
            .iter()
            .find(|k| k.eq_ignore_ascii_case(m) || libmtl_name(k) == Some(m))
            .with_context(|| format!("unknown method `{m}` (known: {})", known.join(", ")))?;
        if !out.contains(found) {
            out.push(found.clone());
        }
    }
    Ok(out)
}

fn parse_list<T>(s: &str, f: impl Fn(&str) -> Result<T>) -> Result<Vec<T>> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(f)
        .collect()
}

fn workloads_of(s: &str) -> Result<Vec<Workload>> {
    parse_list(s, |w| Workload::parse(w).map_err(anyhow::Error::msg))
}

fn parse_device(s: &str) -> Result<Device> {
    match s {
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => {
            mtl::core::select_device(mtl::core::DeviceRequest::Cuda(0)).map_err(Into::into)
        }
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => {
                mtl::core::select_device(mtl::core::DeviceRequest::Cuda(i)).map_err(Into::into)
            }
            _ => bail!("unknown device `{other}` (cpu, cuda, cuda:N)"),
        },
    }
}

fn device_arg(d: Device) -> String {
    match d {
        Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".into(),
    }
}

/// The workspace root: this crate lives at `<root>/crates/mtl-bench`.
fn workspace_root() -> PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .unwrap_or(manifest)
        .to_path_buf()
}

fn default_out() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("bench").join("bench.json")
}

impl RunArgs {
    /// The run's options: the `PEER_BENCH_*` variables over the defaults, the flags over
    /// both; the lists resolved and checked.
    fn options(&self) -> Result<Options> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let num = |k: &str| -> Result<Option<usize>> {
            env(k)
                .map(|v| v.parse().with_context(|| format!("{k}={v}")))
                .transpose()
        };
        let mut cfg = RunConfig::default();
        // A zero from the command line or a variable means the smallest that measures.
        cfg.steps = match self.steps {
            Some(n) => n.max(1),
            None => num("PEER_BENCH_STEPS")?.unwrap_or(cfg.steps),
        };
        cfg.warmup = match self.warmup {
            Some(n) => n,
            None => num("PEER_BENCH_WARMUP")?.unwrap_or(cfg.warmup),
        };
        if let Some(n) = self.threads.or(num("PEER_BENCH_THREADS")?) {
            cfg.threads = i32::try_from(n).context("--threads is too large")?;
        }
        if let Some(n) = self.seed.or(num("PEER_BENCH_SEED")?.map(|s| s as u64)) {
            cfg.seed = n;
        }
        cfg.device = parse_device(&self.device)?;
        cfg.agg_dim = i64::try_from(self.agg_dim).context("--agg-dim is too large")?;
        cfg.agg_reps = self.agg_reps.max(1);
        if let Some(m) = &self.agg_methods {
            cfg.agg_methods = resolve_methods(m)?;
        }
        cfg.pair_floor = !self.no_floor;
        cfg.min_steps = self.min_steps.max(1);
        cfg.method_budget_s = self.method_budget_s;
        cfg.contention_threshold = self.contention_threshold;
        cfg.contention_retries = self.contention_retries;
        cfg.n_batches = i64::try_from(self.n_batches.max(1)).context("--n-batches")?;
        cfg.epoch = self.epoch;
        cfg.optimizer = match self.optimizer {
            OptimizerArg::Mtl => job::StepOptimizer::Mtl,
            OptimizerArg::Libtorch => job::StepOptimizer::Libtorch,
        };
        let workloads = match self.workloads.clone().or(env("PEER_BENCH_WORKLOADS")) {
            Some(w) => workloads_of(&w)?,
            None => Workload::ALL.to_vec(),
        };
        let methods = match &self.methods {
            Some(m) => resolve_methods(m)?,
            None => list().into_iter().map(|i| i.name.to_string()).collect(),
        };
        let agg_ks = if self.no_aggregators {
            Vec::new()
        } else {
            parse_list(&self.agg_k, |k| {
                k.parse()
                    .with_context(|| format!("--agg-k: `{k}` is not a count"))
            })?
        };
        Ok(Options {
            workloads,
            methods,
            methods_given: self.methods.is_some(),
            cfg,
            out: self.out.clone().unwrap_or_else(default_out),
            peer_out: env("PEER_BENCH_OUT").map(PathBuf::from),
            rep_workloads: workloads_of(&self.rep_workloads)?,
            agg_ks,
            floors: !self.no_floor,
            in_process: self.in_process,
            quiet: self.quiet,
            time_budget_s: self.time_budget_s,
            torch_python: self.torch_python.clone(),
        })
    }
}

/// Parses the options of a benchmark run from its flags (without the program name);
/// flags override the `PEER_BENCH_*` variables.
pub fn parse_options(args: &[String]) -> Result<Options> {
    let cli =
        Cli::try_parse_from(std::iter::once("mtl-bench").chain(args.iter().map(String::as_str)))?;
    if cli.command.is_some() {
        bail!("expected the options of a benchmark run, got a subcommand");
    }
    cli.run.options()
}

/// The methods of the run that cannot be built for a workload's task count (Krum and
/// the trimmed mean need more tasks than W1–W3 have), with the reason: they are left
/// out of the plan and reported, rather than timed as failures.
pub fn inapplicable(o: &Options) -> Vec<(Workload, String, String)> {
    let mut out = Vec::new();
    for &w in &o.workloads {
        for m in &methods_for(o, w) {
            if let Err(e) = mtl::losses::by_name(m, w.num_tasks(), o.cfg.seed) {
                out.push((w, m.clone(), e.to_string()));
            }
        }
    }
    out
}

/// The methods of the run on workload `w`: those asked for, or, when `--methods` was not
/// given and the workload has [`Workload::default_methods`], those.
pub fn methods_for(o: &Options, w: Workload) -> Vec<String> {
    match w.default_methods().filter(|_| !o.methods_given) {
        Some(defaults) => o
            .methods
            .iter()
            .filter(|m| defaults.contains(&m.as_str()))
            .cloned()
            .collect(),
        None => o.methods.clone(),
    }
}

/// The jobs of a run, in order: per workload its floors then its methods (after W6's,
/// its tokenization throughput), then W4.
pub fn plan(o: &Options) -> Vec<Job> {
    let skipped = inapplicable(o);
    let levels: Vec<(String, MethodLevel)> = list()
        .into_iter()
        .map(|i| (i.name.to_string(), i.level))
        .collect();
    let level = |m: &str| {
        levels
            .iter()
            .find(|(n, _)| n == m)
            .map_or(MethodLevel::Loss, |(_, l)| *l)
    };
    let mut jobs = Vec::new();
    for &w in &o.workloads {
        let rep = o.rep_workloads.contains(&w);
        // The K = 10 workload is there for the gradient methods' two modes.
        let loss_level = w != Workload::MlpK10;
        if o.floors {
            use super::floor::FloorKind;
            let kinds = [
                (loss_level, FloorKind::Loss),
                (true, FloorKind::Grad),
                (rep, FloorKind::Rep),
            ];
            for (on, kind) in kinds {
                if on {
                    jobs.push(Job::Floor { workload: w, kind });
                }
            }
        }
        for m in &methods_for(o, w) {
            if skipped.iter().any(|(sw, sm, _)| *sw == w && sm == m) {
                continue;
            }
            let grad = level(m) == MethodLevel::Gradient;
            let mut modes = Vec::new();
            if grad || loss_level {
                modes.push(GradMode::Parameters);
            }
            if grad && rep {
                modes.push(GradMode::Representation);
            }
            for mode in modes {
                jobs.push(Job::Method {
                    workload: w,
                    method: m.clone(),
                    mode,
                });
            }
        }
        if w == Workload::Text {
            jobs.push(Job::Tokenize);
        }
    }
    for &k in &o.agg_ks {
        jobs.push(Job::Aggregators { k });
    }
    jobs
}

fn child_args(o: &Options) -> Vec<String> {
    let c = &o.cfg;
    let mut a = vec![
        "--steps".to_string(),
        c.steps.to_string(),
        "--warmup".into(),
        c.warmup.to_string(),
        "--threads".into(),
        c.threads.to_string(),
        "--seed".into(),
        c.seed.to_string(),
        "--device".into(),
        device_arg(c.device),
        "--min-steps".into(),
        c.min_steps.to_string(),
        "--method-budget-s".into(),
        c.method_budget_s.to_string(),
        "--contention-threshold".into(),
        c.contention_threshold.to_string(),
        "--contention-retries".into(),
        c.contention_retries.to_string(),
        "--n-batches".into(),
        c.n_batches.to_string(),
        "--epoch".into(),
        c.epoch.to_string(),
        "--agg-dim".into(),
        c.agg_dim.to_string(),
        "--agg-reps".into(),
        c.agg_reps.to_string(),
    ];
    if !c.pair_floor {
        a.push("--no-floor".into());
    }
    if c.optimizer == job::StepOptimizer::Libtorch {
        a.push("--optimizer".into());
        a.push("libtorch".into());
    }
    if !c.agg_methods.is_empty() {
        a.push("--agg-methods".into());
        a.push(c.agg_methods.join(","));
    }
    a
}

/// Runs one job in a fresh copy of this executable and collects its rows.
fn run_child(exe: &std::path::Path, job: &Job, o: &Options) -> Vec<Value> {
    let failed = |e: String| {
        let mut row = json!({"impl": IMPL, "workload": "", "method": "", "status": "failed",
                             "error": e, "job": job.encode()});
        match job {
            Job::Method {
                workload,
                method,
                mode,
            } => {
                row["workload"] = json!(workload.name());
                row["method"] = json!(super::spec::row_method_name(method));
                row["mtl_method"] = json!(method);
                row["grad_mode"] = json!(mode_name(*mode));
            }
            Job::Floor { workload, kind } => {
                row["impl"] = json!(FLOOR_IMPL);
                row["workload"] = json!(workload.name());
                row["method"] = json!(kind.row_method());
            }
            Job::Aggregators { k } => {
                row["workload"] = json!(format!("agg_k{k}"));
                row["method"] = json!("*");
            }
            Job::Tokenize => {
                row["workload"] = json!(super::tokenize::TOKENIZE_WORKLOAD);
                row["method"] = json!("*");
            }
        }
        vec![row]
    };
    let out = Command::new(exe)
        .arg("__job")
        .arg(job.encode())
        .args(child_args(o))
        .env_remove("PEER_BENCH_OUT")
        .stdin(Stdio::null())
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => return failed(format!("cannot start the job process: {e}")),
    };
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("ROW "))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if rows.is_empty() || !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err
            .lines()
            .rev()
            .take(6)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let mut f = failed(format!("job process {}: {}", out.status, tail.join(" | ")));
        if !rows.is_empty() {
            f.extend(rows);
        }
        return f;
    }
    rows
}

/// The floor a method row is compared with: the loss floor for loss-level methods, the
/// K-backward floor (parameter or representation) for gradient-level ones.
fn floor_of(row: &Value) -> Option<&'static str> {
    if !row["impl"].as_str().is_some_and(|i| i.starts_with(IMPL)) {
        return None;
    }
    use super::floor::FloorKind;
    Some(match (row["level"].as_str(), row["grad_mode"].as_str()) {
        (Some("loss"), _) => FloorKind::Loss.row_method(),
        (Some("gradient"), Some("rep")) => FloorKind::Rep.row_method(),
        (Some("gradient"), _) => FloorKind::Grad.row_method(),
        _ => return None,
    })
}

/// (workload, method, median ms) of every successful row of implementation `imp`.
pub fn medians_of(rows: &[Value], imp: &str) -> Vec<(String, String, f64)> {
    rows.iter()
        .filter(|r| r["impl"] == imp && r["status"] == "ok")
        .filter_map(|r| {
            Some((
                r["workload"].as_str()?.to_string(),
                r["method"].as_str()?.to_string(),
                r["median_ms"].as_f64()?,
            ))
        })
        .collect()
}

/// Adds `floor_ms` / `floor_ratio` to every method row whose floor was measured.
pub fn add_floor_ratios(rows: &mut [Value]) {
    let floors = medians_of(rows, FLOOR_IMPL);
    for r in rows.iter_mut() {
        let Some(fm) = floor_of(r) else { continue };
        if r.get("floor_paired_ms").is_some() {
            // Measured in the same process, interleaved: keep that ratio.
            continue;
        }
        let (Some(w), Some(m)) = (r["workload"].as_str(), r["median_ms"].as_f64()) else {
            continue;
        };
        if let Some((_, _, f)) = floors.iter().find(|(fw, fmeth, _)| fw == w && fmeth == fm) {
            let f = *f;
            r["floor_method"] = json!(fm);
            r["floor_ms"] = json!(f);
            r["floor_ratio"] = json!(m / f);
        }
    }
}

/// Parameter vs representation mode for every (workload, method) measured both ways.
pub fn rep_grad_summary(rows: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for r in rows
        .iter()
        .filter(|r| r["impl"] == IMPL && r["grad_mode"] == "rep")
    {
        let (w, m) = (&r["workload"], &r["mtl_method"]);
        let param = rows.iter().find(|p| {
            p["impl"] == IMPL
                && p["grad_mode"] == "param"
                && &p["workload"] == w
                && &p["mtl_method"] == m
        });
        if let (Some(p), Some(rep_ms)) = (param, r["median_ms"].as_f64()) {
            if let Some(param_ms) = p["median_ms"].as_f64() {
                out.push(json!({
                    "workload": w, "method": m, "num_tasks": r["num_tasks"],
                    "param_ms": param_ms, "rep_ms": rep_ms, "speedup": param_ms / rep_ms,
                }));
            }
        }
    }
    out
}

fn cpu_model() -> Value {
    let txt = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let first = |key: &str| {
        txt.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    json!({
        "model_name": first("model name"),
        "logical_cpus_in_cpuinfo": txt.lines().filter(|l| l.starts_with("processor")).count(),
        "cpu_mhz": first("cpu MHz"),
    })
}

/// What the run ran on.
pub fn environment(o: &Options) -> Value {
    let libtorch = option_env!("LIBTORCH");
    let libtorch_version = libtorch.and_then(|root| {
        let py = std::fs::read_to_string(PathBuf::from(root).join("version.py")).ok()?;
        py.lines()
            .find_map(|l| l.strip_prefix("__version__ = "))
            .map(|v| v.trim().trim_matches(['\'', '"']).to_string())
    });
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(workspace_root())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    json!({
        "impl": IMPL,
        "tch": "0.26",
        "libtorch": libtorch,
        "libtorch_version": libtorch_version,
        "torch_num_threads": o.cfg.threads,
        "device": device_arg(o.cfg.device),
        "cuda_available": mtl::core::device::cuda_available(),
        "cpu": cpu_model(),
        "os_cpu_count": super::timing::num_cpus(),
        "git_commit": git(&["rev-parse", "HEAD"]),
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "process_per_row": !o.in_process,
    })
}

/// A private copy of this executable for the job processes, so a rebuild of the
/// original during the run cannot change or remove what they run. Removed on drop.
struct ExeCopy(PathBuf);

impl ExeCopy {
    fn new() -> Result<Self> {
        let me = std::env::current_exe().context("finding this executable")?;
        let dir = std::env::temp_dir().join(format!("mtl-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let copy = dir.join("mtl-bench");
        std::fs::copy(&me, &copy)
            .with_context(|| format!("copying {} to {}", me.display(), copy.display()))?;
        Ok(ExeCopy(copy))
    }
}

impl Drop for ExeCopy {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn run_benchmark(o: &Options, argv: &[String]) -> Result<()> {
    let jobs = plan(o);
    for (w, m, why) in inapplicable(o) {
        eprintln!("not timed: {m} on {} ({why})", w.name());
    }
    let exe_copy = if o.in_process {
        None
    } else {
        Some(ExeCopy::new()?)
    };
    let load_start = load_average();
    let t0 = Instant::now();
    let pb = if o.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(jobs.len() as u64)
    };
    pb.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .expect("template")
            .progress_chars("=> "),
    );
    let mut rows = Vec::new();
    let mut agg_rows = Vec::new();
    let mut tok_rows = Vec::new();
    let mut late = o.clone();
    late.cfg.contention_retries = 0;
    let mut budget_noted = false;
    for j in &jobs {
        pb.set_message(j.label());
        let over = o.time_budget_s > 0.0 && t0.elapsed().as_secs_f64() > o.time_budget_s / 2.0;
        if over && !budget_noted && o.cfg.contention_retries > 0 {
            budget_noted = true;
            let note = format!(
                "past half the time budget ({:.0} s): contended rows are no longer re-measured",
                o.time_budget_s
            );
            if o.quiet {
            } else if pb.is_hidden() {
                eprintln!("{note}");
            } else {
                pb.println(note);
            }
        }
        let opts = if over { &late } else { o };
        let got = match &exe_copy {
            None => job::run(j, &opts.cfg),
            Some(exe) => run_child(&exe.0, j, opts),
        };
        for r in &got {
            let line = report::progress_line(r);
            if o.quiet {
            } else if pb.is_hidden() {
                eprintln!("{line}");
            } else {
                pb.println(line);
            }
        }
        if matches!(j, Job::Aggregators { .. }) {
            agg_rows.extend(got);
        } else if matches!(j, Job::Tokenize) {
            tok_rows.extend(got);
        } else {
            rows.extend(got);
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    if let Some(python) = &o.torch_python {
        for w in super::twin::workloads_of_run(o) {
            let twin = super::twin::run(python, o, w)?;
            for r in &twin {
                let line = report::progress_line(r);
                if !o.quiet {
                    eprintln!("{line}");
                }
            }
            rows.extend(twin);
        }
    }
    add_floor_ratios(&mut rows);
    super::twin::add_torch_ratios(&mut rows);
    let rep = rep_grad_summary(&rows);
    let c = &o.cfg;
    let result = json!({
        "schema_version": 1,
        "created_unix": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0),
        "command": argv.join(" "),
        "environment": environment(o),
        "load_average_start": load_start,
        "load_average_end": load_average(),
        "total_wall_s": t0.elapsed().as_secs_f64(),
        "config": {
            "warmup": c.warmup, "steps": c.steps, "min_steps": c.min_steps,
            "method_budget_s": c.method_budget_s, "seed": c.seed, "n_batches": c.n_batches,
            "pinned_epoch": c.epoch, "threads": c.threads,
            "optimizer": {"type": "Adam", "lr": 1e-3, "weight_decay": 0.0,
                          "impl": "mtl_core::Optimizer (floors: libtorch C++ Adam)"},
            "workloads": o.workloads.iter().map(|w| (w.name().to_string(), json!({
                "arch": w.arch(), "batch": w.batch(), "lr": w.lr(), "num_tasks": w.num_tasks(),
                "image_size": w.image_size(), "desc": w.desc()}))).collect::<serde_json::Map<_, _>>(),
            "torch_twin": o.torch_python.as_ref().map(|p| json!({
                "python": p.display().to_string(),
                "scripts": super::twin::workloads_of_run(o).into_iter()
                    .map(|w| (w.name().to_string(),
                              json!(super::twin::script(w).display().to_string())))
                    .collect::<serde_json::Map<_, _>>()})),
            "tokenization": {"sentences": super::tokenize::SENTENCES,
                             "reps": super::tokenize::REPS,
                             "vocab": super::tokenize::VOCAB,
                             "max_len": super::spec::TEXT_LEN,
                             "tokenizers_parallelism_env":
                                 std::env::var("TOKENIZERS_PARALLELISM").ok()},
            "methods": o.methods,
            "rep_workloads": o.rep_workloads.iter().map(|w| w.name()).collect::<Vec<_>>(),
            "aggregators": {"k": o.agg_ks, "dim": c.agg_dim, "reps": c.agg_reps,
                            "floor": "J.sum() (reads the K x d matrix once)"},
            "timing": "std::time::Instant around each full step (zero_grad, forward, losses, \
                       combination and backward, optimiser step; CUDA synchronised); \
                       percentiles as numpy's linear interpolation",
        },
        "rows": rows,
        "rep_grad": rep,
        "aggregator_rows": agg_rows,
        "tokenization_rows": tok_rows,
    });
    let text = serde_json::to_string_pretty(&result)?;
    for path in std::iter::once(&o.out).chain(o.peer_out.as_ref()) {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    report::print_tables(&result);
    println!(
        "\nwrote {}{} ({:.0} s; load average {} -> {})",
        o.out.display(),
        o.peer_out
            .as_ref()
            .map(|p| format!(" and {}", p.display()))
            .unwrap_or_default(),
        t0.elapsed().as_secs_f64(),
        load_start.map_or("?".into(), |l| format!("{:.2}", l[0])),
        load_average().map_or("?".into(), |l| format!("{:.2}", l[0])),
    );
    Ok(())
}

/// The entry point of `mtl-bench`.
pub fn main() -> Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    let cli = Cli::parse();
    match cli.command {
        None => run_benchmark(&cli.run.options()?, &argv),
        Some(Sub::Job { job, run }) => {
            let job = Job::decode(&job).map_err(anyhow::Error::msg)?;
            let o = run.options()?;
            for row in job::run(&job, &o.cfg) {
                println!("ROW {row}");
            }
            Ok(())
        }
        Some(Sub::Scaling {
            nproc,
            workloads,
            methods,
            steps,
            warmup,
            threads,
            out,
        }) => crate::scaling::run(&crate::scaling::ScalingArgs {
            nproc,
            workloads: workloads
                .split(',')
                .map(|w| Workload::parse(w.trim()).map_err(anyhow::Error::msg))
                .collect::<Result<_>>()?,
            methods: resolve_methods(&methods)?,
            steps,
            warmup,
            threads,
            out,
        }),
        Some(Sub::ScalingChild {
            steps,
            warmup,
            threads,
        }) => crate::scaling::child(steps, warmup, threads),
        Some(Sub::Compare { file, memory, out }) => {
            report::compare(&file, memory.as_deref(), out.as_deref())
        }
        Some(Sub::LibmtlNames { methods }) => {
            let methods = match methods {
                Some(m) => resolve_methods(&m)?,
                None => list().into_iter().map(|i| i.name.to_string()).collect(),
            };
            let names: Vec<&str> = methods.iter().filter_map(|m| libmtl_name(m)).collect();
            println!("{}", names.join(","));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(args: &[&str]) -> Options {
        let a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse_options(&a).unwrap()
    }

    #[test]
    fn plan_covers_modes_floors_and_w4() {
        let o = opts(&[
            "--workloads",
            "mlp,mlp_k10",
            "--methods",
            "EW,pcgrad,krum",
            "--agg-k=2,10",
        ]);
        // Krum needs 4 tasks: not planned on mlp (K = 3), planned on mlp_k10.
        let skipped = inapplicable(&o);
        assert_eq!(skipped.len(), 1);
        assert_eq!(
            (skipped[0].0, skipped[0].1.as_str()),
            (Workload::Mlp, "krum")
        );
        let jobs: Vec<String> = plan(&o).iter().map(Job::encode).collect();
        assert_eq!(
            jobs,
            [
                "floor:mlp:loss",
                "floor:mlp:grad",
                "method:mlp:ew:param",
                "method:mlp:pcgrad:param",
                "floor:mlp_k10:grad",
                "floor:mlp_k10:rep",
                "method:mlp_k10:pcgrad:param",
                "method:mlp_k10:pcgrad:rep",
                "method:mlp_k10:krum:param",
                "method:mlp_k10:krum:rep",
                "agg:2",
                "agg:10",
            ]
        );
    }

    /// W6 runs its default methods unless `--methods` names others, and its
    /// tokenization job after them.
    #[test]
    fn text_plans_its_default_methods_and_tokenization() {
        let jobs: Vec<String> = plan(&opts(&["--workloads", "text", "--no-aggregators"]))
            .iter()
            .map(Job::encode)
            .collect();
        assert_eq!(
            jobs,
            [
                "floor:text:loss",
                "floor:text:grad",
                "method:text:ew:param",
                "method:text:uw:param",
                "method:text:pcgrad:param",
                "tok",
            ]
        );
        let o = opts(&["--workloads", "text,mlp", "--methods", "mgda", "--no-floor"]);
        let jobs: Vec<String> = plan(&o).iter().map(Job::encode).collect();
        assert_eq!(
            jobs,
            [
                "method:text:mgda:param",
                "tok",
                "method:mlp:mgda:param",
                "agg:2",
                "agg:10",
                "agg:40"
            ]
        );
        // Methods that need more than W6's two tasks are not even reported as skipped
        // when the defaults leave them out.
        assert!(inapplicable(&opts(&["--workloads", "text"])).is_empty());
    }

    #[test]
    fn cli_is_consistent_and_help_lists_every_flag() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let help = Cli::command().render_long_help().to_string();
        for arg in Cli::command().get_arguments() {
            if let Some(long) = arg.get_long() {
                assert!(
                    help.contains(&format!("--{long}")),
                    "--{long} not in --help"
                );
                assert!(arg.get_help().is_some(), "--{long} has no help line");
            }
        }
        for sub in ["compare", "libmtl-names"] {
            assert!(help.contains(sub), "{sub} not in --help");
        }
        assert!(!help.contains("__job"));
    }

    /// The flags a job process is started with parse back to the parent's settings, so
    /// every job measures what the run asked for.
    #[test]
    fn child_args_round_trip() {
        let o = opts(&[
            "--steps=7",
            "--warmup",
            "3",
            "--threads",
            "1",
            "--seed",
            "5",
            "--min-steps",
            "4",
            "--method-budget-s",
            "2.5",
            "--contention-threshold",
            "0.2",
            "--contention-retries",
            "1",
            "--n-batches",
            "3",
            "--epoch",
            "4",
            "--agg-dim",
            "1000",
            "--agg-reps",
            "2",
            "--agg-methods",
            "UPGrad,mgda",
            "--no-floor",
            "--optimizer",
            "libtorch",
        ]);
        let back = parse_options(&child_args(&o)).unwrap();
        assert_eq!(format!("{:?}", back.cfg), format!("{:?}", o.cfg));
        assert_eq!(o.cfg.agg_methods, ["upgrad", "mgda"]);
        assert!(!o.floors && !o.cfg.pair_floor);
        assert_eq!(o.cfg.optimizer, job::StepOptimizer::Libtorch);
    }

    #[test]
    fn defaults_and_switches() {
        let o = opts(&["--steps", "0", "--no-aggregators", "--agg-k", "2"]);
        assert_eq!(o.cfg.steps, 1);
        assert!(o.agg_ks.is_empty());
        assert_eq!(o.rep_workloads, [Workload::MlpK10, Workload::Dense]);
        // W5 and W6 run only when named.
        assert!(!o.workloads.contains(&Workload::Dense));
        assert!(!o.workloads.contains(&Workload::Text));
        assert_eq!(opts(&["--workloads", "dense"]).workloads, [Workload::Dense]);
        assert_eq!(opts(&["--workloads", "text"]).workloads, [Workload::Text]);
        assert_eq!(opts(&[]).agg_ks, [2, 10, 40]);
        assert!(parse_options(&["--workloads".to_string(), "nope".to_string()]).is_err());
        assert!(parse_options(&["--optimizer=sgd".to_string()]).is_err());
    }

    #[test]
    fn methods_resolve_from_either_name() {
        assert_eq!(
            resolve_methods("IMTL,mgda,EW").unwrap(),
            ["imtl_g", "mgda", "ew"]
        );
        assert!(resolve_methods("nope").is_err());
        assert!(parse_options(&["--bogus".to_string()]).is_err());
    }

    #[test]
    fn floor_ratios_and_rep_speedups() {
        let mut rows = vec![
            json!({"impl": FLOOR_IMPL, "workload": "mlp", "method": "fwd+K*bwd", "status": "ok", "median_ms": 2.0}),
            json!({"impl": FLOOR_IMPL, "workload": "mlp", "method": "fwd+K*bwd(rep)", "status": "ok", "median_ms": 1.0}),
            json!({"impl": IMPL, "workload": "mlp", "method": "PCGrad", "mtl_method": "pcgrad", "level": "gradient", "grad_mode": "param", "median_ms": 3.0}),
            json!({"impl": IMPL, "workload": "mlp", "method": "PCGrad", "mtl_method": "pcgrad", "level": "gradient", "grad_mode": "rep", "median_ms": 1.5}),
        ];
        add_floor_ratios(&mut rows);
        assert_eq!(rows[2]["floor_ratio"], 1.5);
        assert_eq!(rows[3]["floor_ratio"], 1.5);
        let rep = rep_grad_summary(&rows);
        assert_eq!(rep[0]["speedup"], 2.0);
    }
}
