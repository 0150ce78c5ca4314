//! The `mtl-bench` command line: plans the jobs, runs each in a fresh process (or all in
//! this one), adds the floor ratios, writes the JSON and prints the tables.

use super::job::{self, mode_name, Job, RunConfig, FLOOR_IMPL, IMPL};
use super::report;
use super::spec::{libmtl_name, Workload};
use super::timing::load_average;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use mtl::losses::{list, MethodLevel};
use mtl::GradMode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;
use tch::Device;

const HELP: &str = "\
mtl-bench: training-step speed of every mtl method on the peer harness's workloads

usage:
  mtl-bench [options]              run the benchmark
  mtl-bench compare FILE [--memory MEM.json] [--out OUT.json]
                                   LibMTL ms/step / mtl ms/step from a merged harness file
  mtl-bench libmtl-names [--methods LIST]
                                   LibMTL's names of our methods (comma-separated)

options:
  --workloads LIST     mlp,lenet,mmoe,mlp_k10 (default: all; with PEER_BENCH_WORKLOADS, those)
  --methods LIST       registry names or LibMTL names (default: every registered method)
  --steps N            timed steps per row (default 100, or PEER_BENCH_STEPS)
  --warmup N           untimed warm-up steps (default 10, or PEER_BENCH_WARMUP)
  --threads N          tch::set_num_threads (default 2, or PEER_BENCH_THREADS)
  --seed N             data and method seed (default 0, or PEER_BENCH_SEED)
  --device cpu|cuda    (default cpu)
  --out PATH           write the JSON here (default target/bench/bench.json; with
                       PEER_BENCH_OUT set, that file is written too)
  --rep-workloads LIST workloads whose gradient methods also run in rep-grad mode
                       (default mlp_k10)
  --agg-k LIST         W4: the task counts K (default 2,10,40)
  --agg-dim N          W4: the Jacobian width d (default 1000000)
  --agg-reps N         W4: timed calls per aggregator (default 10)
  --no-aggregators     skip W4
  --no-floor           skip the plain-tch floors (each method row also times its floor
                       in its own process, interleaved with its steps; this skips that too)
  --in-process         run every row in this process (faster; the peak memory is then
                       cumulative, not per row)
  --min-steps N        fewest timed steps when the method budget cuts a row (default 30)
  --method-budget-s S  time fewer steps when warm-up predicts more than S s (default 40)
  --contention-threshold F, --contention-retries N
                       repeat a row whose window saw other processes use more than F of
                       the CPUs (default 0.10, up to 2 times)
  --quiet              no progress bar
  --time-budget-s S    past S/2 seconds, stop re-measuring contended rows (default 480;
                       0: no limit)
  --optimizer libtorch diagnostic: step the mtl rows with libtorch's C++ Adam (as the
                       floors do) instead of mtl_core::Optimizer; rows get impl
                       mtl+libtorch_adam

As the --peer-cmd of shared/peer_bench/libmtl_bench.py it reads PEER_BENCH_OUT,
PEER_BENCH_WORKLOADS, PEER_BENCH_SEED, PEER_BENCH_WARMUP, PEER_BENCH_STEPS and
PEER_BENCH_THREADS, and writes its rows to $PEER_BENCH_OUT in the harness's schema.
";

/// Parsed options of a benchmark run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Workloads to run.
    pub workloads: Vec<Workload>,
    /// Our registry names.
    pub methods: Vec<String>,
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

fn default_out() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench").join("bench.json")
}

/// Parses the run options (flags override the `PEER_BENCH_*` variables).
pub fn parse_options(args: &[String]) -> Result<Options> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let peer_out = env("PEER_BENCH_OUT").map(PathBuf::from);
    let mut cfg = RunConfig::default();
    let num = |k: &str| -> Result<Option<usize>> {
        env(k)
            .map(|v| v.parse().with_context(|| format!("{k}={v}")))
            .transpose()
    };
    if let Some(v) = num("PEER_BENCH_STEPS")? {
        cfg.steps = v;
    }
    if let Some(v) = num("PEER_BENCH_WARMUP")? {
        cfg.warmup = v;
    }
    if let Some(v) = num("PEER_BENCH_THREADS")? {
        cfg.threads = v as i32;
    }
    if let Some(v) = num("PEER_BENCH_SEED")? {
        cfg.seed = v as u64;
    }
    let mut workloads = match env("PEER_BENCH_WORKLOADS") {
        Some(w) => workloads_of(&w)?,
        None => Workload::ALL.to_vec(),
    };
    let mut methods: Vec<String> = list().into_iter().map(|i| i.name.to_string()).collect();
    let mut out = default_out();
    let mut rep_workloads = vec![Workload::MlpK10];
    let mut agg_ks = vec![2, 10, 40];
    let (mut floors, mut in_process, mut quiet) = (true, false, false);
    let mut time_budget_s = 480.0;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = || -> Result<String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .with_context(|| format!("{flag} needs a value")),
            }
        };
        let int = |v: String| -> Result<usize> {
            v.parse()
                .with_context(|| format!("{flag}: `{v}` is not a count"))
        };
        match flag {
            "--workloads" => workloads = workloads_of(&value()?)?,
            "--methods" => methods = resolve_methods(&value()?)?,
            "--steps" => cfg.steps = int(value()?)?.max(1),
            "--warmup" => cfg.warmup = int(value()?)?,
            "--threads" => cfg.threads = int(value()?)? as i32,
            "--seed" => cfg.seed = int(value()?)? as u64,
            "--device" => cfg.device = parse_device(&value()?)?,
            "--out" => out = PathBuf::from(value()?),
            "--rep-workloads" => rep_workloads = workloads_of(&value()?)?,
            "--agg-k" => agg_ks = parse_list(&value()?, |k| int(k.to_string()))?,
            "--agg-dim" => cfg.agg_dim = int(value()?)? as i64,
            "--agg-reps" => cfg.agg_reps = int(value()?)?.max(1),
            "--agg-methods" => cfg.agg_methods = resolve_methods(&value()?)?,
            "--no-aggregators" => agg_ks.clear(),
            "--no-floor" => {
                floors = false;
                cfg.pair_floor = false;
            }
            "--in-process" => in_process = true,
            "--quiet" => quiet = true,
            "--time-budget-s" => time_budget_s = value()?.parse().context("--time-budget-s")?,
            "--min-steps" => cfg.min_steps = int(value()?)?.max(1),
            "--method-budget-s" => {
                cfg.method_budget_s = value()?.parse().context("--method-budget-s")?
            }
            "--contention-threshold" => {
                cfg.contention_threshold = value()?.parse().context("--contention-threshold")?
            }
            "--contention-retries" => cfg.contention_retries = int(value()?)?,
            "--n-batches" => cfg.n_batches = int(value()?)?.max(1) as i64,
            "--epoch" => cfg.epoch = int(value()?)?,
            "--optimizer" => {
                cfg.optimizer = match value()?.as_str() {
                    "mtl" => job::StepOptimizer::Mtl,
                    "libtorch" => job::StepOptimizer::Libtorch,
                    o => bail!("--optimizer: `{o}` is not mtl or libtorch"),
                }
            }
            other => bail!("unknown option `{other}`\n\n{HELP}"),
        }
    }
    Ok(Options {
        workloads,
        methods,
        cfg,
        out,
        peer_out,
        rep_workloads,
        agg_ks,
        floors,
        in_process,
        quiet,
        time_budget_s,
    })
}

/// The methods of the run that cannot be built for a workload's task count (Krum and
/// the trimmed mean need more tasks than W1–W3 have), with the reason: they are left
/// out of the plan and reported, rather than timed as failures.
pub fn inapplicable(o: &Options) -> Vec<(Workload, String, String)> {
    let mut out = Vec::new();
    for &w in &o.workloads {
        for m in &o.methods {
            if let Err(e) = mtl::losses::by_name(m, w.num_tasks(), o.cfg.seed) {
                out.push((w, m.clone(), e.to_string()));
            }
        }
    }
    out
}

/// The jobs of a run, in order: per workload its floors then its methods, then W4.
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
        for m in &o.methods {
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

/// Adds `floor_ms` / `floor_ratio` to every method row whose floor was measured.
pub fn add_floor_ratios(rows: &mut [Value]) {
    let floors: Vec<(String, String, f64)> = rows
        .iter()
        .filter(|r| r["impl"] == FLOOR_IMPL && r["status"] == "ok")
        .filter_map(|r| {
            Some((
                r["workload"].as_str()?.to_string(),
                r["method"].as_str()?.to_string(),
                r["median_ms"].as_f64()?,
            ))
        })
        .collect();
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
            .current_dir(env!("CARGO_MANIFEST_DIR"))
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
        } else {
            rows.extend(got);
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    add_floor_ratios(&mut rows);
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
                "desc": w.desc()}))).collect::<serde_json::Map<_, _>>(),
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
    let args = &argv[1..];
    match args.first().map(String::as_str) {
        Some("-h" | "--help" | "help") => {
            print!("{HELP}");
            Ok(())
        }
        Some("__job") => {
            let spec = args.get(1).context("__job needs a job")?;
            let job = Job::decode(spec).map_err(anyhow::Error::msg)?;
            let o = parse_options(&args[2..])?;
            for row in job::run(&job, &o.cfg) {
                println!("ROW {row}");
            }
            Ok(())
        }
        Some("compare") => report::compare_main(&args[1..]),
        Some("libmtl-names") => {
            let o = parse_options(&args[1..])?;
            let names: Vec<&str> = o.methods.iter().filter_map(|m| libmtl_name(m)).collect();
            println!("{}", names.join(","));
            Ok(())
        }
        _ => {
            let o = parse_options(args)?;
            run_benchmark(&o, &argv)
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
