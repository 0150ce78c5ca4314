//! Runs of `mtl train` as child processes of this same executable, some at a time: the
//! runs behind `mtl sweep` and `mtl group`.
//!
//! Each run trains in its own directory from the `config.json` written there, its
//! output going to `log.txt` beside it, so parallel runs do not interleave and a failed
//! run's log is where its report would be. A run counts as finished when its
//! `report.json` is complete (written last and atomically by `mtl train`, holding the
//! test evaluation and Δm when asked) and its `config.json` is the one it would be
//! started with now: restarting an interrupted sweep redoes only what is missing or
//! stale.

use crate::config::RunConfig;
use mtl::core::files::{self, OutputLock};
use mtl::core::{Error, Result};
use mtl::{Baselines, RunReport};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a run is compared against.
#[derive(Debug, Clone, PartialEq)]
pub enum Reference {
    /// No Δm (the report holds the test evaluation only).
    None,
    /// Train the single-task baselines too (`--baselines`), written as `baselines.json`.
    Train,
    /// Δm against the baselines in this file (`--baselines-from`).
    From(PathBuf),
}

/// One `mtl train` run.
#[derive(Debug, Clone)]
pub struct TrainJob {
    /// A name for progress lines (`pcgrad seed 3`).
    pub label: String,
    /// Its output directory, holding `config.json`.
    pub dir: PathBuf,
    /// Its single-task reference.
    pub reference: Reference,
}

impl TrainJob {
    /// The run's config file.
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    /// The run's report.
    pub fn report_path(&self) -> PathBuf {
        self.dir.join("report.json")
    }
    /// The run's log.
    pub fn log(&self) -> PathBuf {
        self.dir.join("log.txt")
    }
}

/// Writes `cfg` into `job.dir` unless the job already finished with it; returns
/// whether it must run.
pub fn prepare(job: &TrainJob, cfg: &RunConfig) -> Result<bool> {
    let mut cfg = cfg.clone();
    if let Some(c) = &mut cfg.train.checkpoint {
        // Parallel runs must not share one checkpoint file.
        c.path = job.dir.join("checkpoint.safetensors");
    }
    let text = serde_json::to_string_pretty(&cfg)
        .map_err(|e| Error::config(format!("the run config is not serialisable: {e}")))?;
    if is_finished(job, &text) {
        eprintln!("{}: finished earlier, kept", job.label);
        return Ok(false);
    }
    crate::subset::write_run_config(&cfg, &job.dir)?;
    Ok(true)
}

/// Reads a run's `report.json`.
pub fn read_report(path: &Path) -> Result<RunReport> {
    read_json(path, "a run report")
}

/// Reads a JSON file the CLI wrote as a `T`; a file that does not parse is an
/// [`Error::Parse`] naming it, the line and `what` it should have been.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        line: e.line() as u64,
        message: format!("not {what}: {e}"),
    })
}

/// Whether `job` finished with `config_text` as its config: the report parses, holds a
/// test evaluation, and Δm when the run is compared; a run that trains baselines also
/// has a readable `baselines.json`.
pub fn is_finished(job: &TrainJob, config_text: &str) -> bool {
    let same_config = std::fs::read_to_string(job.config()).is_ok_and(|t| t == config_text);
    if !same_config {
        return false;
    }
    let Ok(report) = read_report(&job.report_path()) else {
        return false;
    };
    let compared = job.reference == Reference::None || report.delta_m.is_some();
    let baselines_ok = job.reference != Reference::Train
        || crate::run::read_baselines(&job.dir.join("baselines.json")).is_ok();
    report.test.is_some() && compared && baselines_ok
}

/// The baselines a [`Reference::Train`] run wrote.
pub fn baselines_of(job: &TrainJob) -> Result<Baselines> {
    crate::run::read_baselines(&job.dir.join("baselines.json"))
}

/// Runs `jobs` with at most `parallel` at a time through `exe train`; prints one line
/// as each ends. Returns the failures as (label, log file, exit status).
pub fn run_all(
    exe: &Path,
    jobs: Vec<TrainJob>,
    parallel: usize,
) -> Result<Vec<(String, PathBuf, String)>> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let total = jobs.len();
    let queue = Arc::new(Mutex::new(
        jobs.into_iter().enumerate().collect::<VecDeque<_>>(),
    ));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(Mutex::new(0usize));
    let parallel = parallel.clamp(1, total);
    // libtorch takes every core for each process; parallel runs share them instead
    // (unless the user chose a thread count).
    let threads = (parallel > 1 && std::env::var_os("OMP_NUM_THREADS").is_none())
        .then(|| std::thread::available_parallelism().map_or(1, |n| (n.get() / parallel).max(1)));
    let workers: Vec<_> = (0..parallel)
        .map(|_| {
            let (queue, failures, done) = (queue.clone(), failures.clone(), done.clone());
            let exe = exe.to_path_buf();
            std::thread::spawn(move || loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                let Some((_, job)) = next else { break };
                let start = Instant::now();
                let outcome = run_one(&exe, &job, threads);
                let n = done.lock().map(|mut d| {
                    *d += 1;
                    *d
                });
                let n = n.unwrap_or(0);
                match outcome {
                    Ok(()) => eprintln!(
                        "[{n}/{total}] {} finished in {:.1} s",
                        job.label,
                        start.elapsed().as_secs_f64()
                    ),
                    Err(status) => {
                        eprintln!(
                            "[{n}/{total}] {} FAILED ({status}); see {}",
                            job.label,
                            job.log().display()
                        );
                        if let Ok(mut f) = failures.lock() {
                            f.push((job.label.clone(), job.log(), status));
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join()
            .map_err(|_| Error::config("a sweep worker thread panicked"))?;
    }
    let failures = failures.lock().map(|f| f.clone()).unwrap_or_default();
    Ok(failures)
}

/// Runs one job to its end; `Err` holds the reason it failed.
fn run_one(exe: &Path, job: &TrainJob, threads: Option<usize>) -> std::result::Result<(), String> {
    let log = std::fs::File::create(job.log()).map_err(|e| format!("cannot write its log: {e}"))?;
    let err = log
        .try_clone()
        .map_err(|e| format!("cannot write its log: {e}"))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("train")
        .arg(job.config())
        .arg("--out")
        .arg(&job.dir)
        .arg("--quiet")
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err);
    if let Some(t) = threads {
        cmd.env("OMP_NUM_THREADS", t.to_string());
    }
    match &job.reference {
        Reference::None => {}
        Reference::Train => {
            cmd.arg("--baselines");
        }
        Reference::From(b) => {
            cmd.arg("--baselines-from").arg(b);
        }
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(status.to_string())
    }
}

/// The error for failed runs: each with its log.
pub fn failed(failures: &[(String, PathBuf, String)]) -> Error {
    let list: Vec<String> = failures
        .iter()
        .map(|(label, log, status)| format!("{label} ({status}, log {})", log.display()))
        .collect();
    Error::config(format!(
        "{} run(s) failed: {}; the finished runs are kept, and running the same command \
         again redoes only the rest",
        failures.len(),
        list.join("; ")
    ))
}

/// The `mtl` executable to start runs with: `MTL_EXE` when set (tests, wrappers), else
/// this process's own executable.
pub fn mtl_exe() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("MTL_EXE") {
        return Ok(PathBuf::from(p));
    }
    std::env::current_exe()
        .map_err(|e| Error::config(format!("cannot find the mtl executable: {e}")))
}

/// The default parallelism: half the cores (training itself uses several threads), at
/// least one.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// The output directory of a sweep or grouping, made this run's: `out`, else
/// `<parent>/<config stem>` (`<parent>/<fallback>` for a config without a stem); checked
/// writable, locked against a second run (hold the lock until the command ends),
/// cleared of stale temporary files, and absolute (child runs start elsewhere).
pub fn claim_out_dir(
    out: Option<&Path>,
    config: &Path,
    parent: &str,
    fallback: &str,
) -> Result<(PathBuf, OutputLock)> {
    let out = out.map(Path::to_path_buf).unwrap_or_else(|| {
        let stem = config
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| fallback.into());
        PathBuf::from(parent).join(stem)
    });
    files::check_writable(&out)?;
    let lock = OutputLock::acquire(OutputLock::for_dir(&out), &out)?;
    files::clean_stale_temps(&out)?;
    let out = std::path::absolute(&out).map_err(|source| Error::Io {
        path: out.clone(),
        source,
    })?;
    Ok((out, lock))
}
