//! `mtl sweep CONFIG --methods a,b,… --seeds N`: every method × seed trained on the
//! user's data by child `mtl train` processes ([`crate::jobs`]), `--jobs P` at a time,
//! then compared ([`mtl::sweep`]): Δm and each task's primary metric with 95 %
//! intervals over the seeds, paired t-tests against EW and against static weights
//! tuned on validation, a ranking, a pick, `sweep.json` and `ranking.png`.
//!
//! The plan, in three waves:
//! 1. `ew` for every seed, training that seed's single-task baselines (`--baselines`);
//!    every other run of the seed is compared with them (`--baselines-from`), so
//!    baselines are trained once per seed, not once per method.
//! 2. The other methods for every seed, and the static-weight grid on the first seed:
//!    the weights `K · n / G` for every composition n of G into K positive parts
//!    (`--static-grid G`, 6 by default: 5 points for two tasks, 10 for three), so the
//!    weights sum to K as EW's do.
//! 3. The grid point with the lowest Δm on the *validation* rows (against the
//!    baselines' validation metrics at their best epochs; ties go to the weights
//!    closest to equal) trained on the other seeds: the `static*` row (its first seed
//!    is the grid run itself).
//!
//! Seeds are `train.seed`, `train.seed + 1`, …; each seed sets the split, the
//! initialisation and the batches, and the paired tests pair runs of the same seed.
//! The runs train without gradient diagnostics (they do not change training, only
//! cost time). A run whose `report.json` is complete and whose `config.json` matches
//! is not redone, so an interrupted sweep restarted with the same command finishes
//! only what is missing.

use crate::config::RunConfig;
use crate::jobs::{self, Reference, TrainJob};
use crate::subset::standalone;
use mtl::core::files;
use mtl::core::{Error, Result};
use mtl::sweep::{summarize, MethodRuns, SeedResult, SweepSummary, EW, TUNED_STATIC};
use mtl::{DeltaM, Evaluation, RunReport};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The arguments of `mtl sweep`.
#[derive(Debug, Clone, clap::Args)]
pub struct SweepArgs {
    /// The run configuration (`.toml` or `.json`), as for `mtl train`.
    pub config: PathBuf,
    /// The methods (registry names, comma-separated; see `mtl methods`). `ew` always
    /// runs, as the reference.
    #[arg(long, value_delimiter = ',', required = true)]
    pub methods: Vec<String>,
    /// Seeds per method: `train.seed`, `train.seed + 1`, …
    #[arg(long, default_value_t = 3)]
    pub seeds: usize,
    /// Output directory (default: `sweeps/<config stem>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Runs at a time (default: half the cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Override `train.epochs` in every run.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// The static-weight grid's resolution G: weights K·n/G for positive integers n
    /// summing to G.
    #[arg(long, default_value_t = 6)]
    pub static_grid: usize,
    /// Leave out the tuned static weights (`static*`).
    #[arg(long)]
    pub no_static: bool,
}

/// One point of the static-weight grid and its validation Δm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridPoint {
    /// The task weights.
    pub weights: Vec<f64>,
    /// Δm on the validation rows (first seed), in percent.
    pub validation_delta_m: f64,
}

/// `sweep.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    /// The config swept.
    pub config: PathBuf,
    /// The seeds.
    pub seeds: Vec<u64>,
    /// The methods run (registry names; `ew` first).
    pub methods: Vec<String>,
    /// The static-weight grid, scored on validation (empty with `--no-static`).
    pub static_grid: Vec<GridPoint>,
    /// The chosen static weights (the `static*` row).
    pub static_weights: Option<Vec<f64>>,
    /// Every run's Δm and per-task terms, per method.
    pub runs: Vec<MethodRuns>,
    /// The statistics, ranking and pick.
    pub summary: SweepSummary,
}

/// What a sweep produced.
#[derive(Debug)]
pub struct SweepOutcome {
    /// The comparison.
    pub summary: SweepSummary,
    /// `sweep.json`'s contents.
    pub report: SweepReport,
    /// The files written (`sweep.json`, `ranking.png`).
    pub files: Vec<PathBuf>,
}

/// The registry names of `requested`, normalised (lower case, `_` for `-`), repeats
/// dropped, `ew` first; an unknown name is [`Error::Unknown`] listing every valid one,
/// and a method that cannot take the config's tasks or hyper-parameters is refused,
/// before anything runs.
pub fn check_methods(requested: &[String], cfg: &RunConfig) -> Result<Vec<String>> {
    let mut names = vec![EW.to_string()];
    for m in requested {
        let m = m.trim();
        if m.is_empty() {
            continue;
        }
        let info = mtl::losses::registry::info(m)?;
        let name = info.name.to_string();
        let params = if name.eq_ignore_ascii_case(&cfg.train.method) {
            cfg.train.method_params.clone()
        } else {
            Default::default()
        };
        mtl::losses::by_name_with(&name, cfg.data.targets.len(), cfg.train.seed, &params)
            .map_err(|e| Error::config(format!("method `{name}`: {e}")))?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// The static-weight grid: K·n/G for each composition n of `g` into `k` positive
/// parts (just equal weights when k > g), in lexicographic order of n.
pub fn static_grid(k: usize, g: usize) -> Vec<Vec<f64>> {
    let g = g.max(k);
    let mut out = Vec::new();
    let mut parts = Vec::with_capacity(k);
    fn fill(k: usize, left: usize, g: usize, parts: &mut Vec<usize>, out: &mut Vec<Vec<f64>>) {
        if parts.len() + 1 == k {
            parts.push(left);
            out.push(parts.iter().map(|&n| (k * n) as f64 / g as f64).collect());
            parts.pop();
            return;
        }
        // Leave at least one part for each task still to come.
        for n in 1..=left - (k - parts.len() - 1) {
            parts.push(n);
            fill(k, left - n, g, parts, out);
            parts.pop();
        }
    }
    if k > 0 {
        fill(k, g, g, &mut parts, &mut out);
    }
    out
}

/// The grid point to re-run: the lowest validation Δm; among ties (validation metrics
/// of small sets are coarse: accuracy moves in steps of one row) the weights closest to
/// equal, i.e. the least departure from EW.
pub fn pick_static(points: &[GridPoint]) -> Option<usize> {
    let spread = |w: &[f64]| w.iter().map(|x| (x - 1.0).powi(2)).sum::<f64>();
    let low = points
        .iter()
        .map(|p| p.validation_delta_m)
        .fold(f64::INFINITY, f64::min);
    points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.validation_delta_m <= low + 1e-9)
        .min_by(|a, b| spread(&a.1.weights).total_cmp(&spread(&b.1.weights)))
        .map(|(i, _)| i)
}

/// The config of one run: `method` (the file's hyper-parameters only when it is the
/// file's method, else the paper's defaults, as `mtl train --method` does) with `seed`.
fn method_config(base: &RunConfig, method: &str, seed: u64) -> RunConfig {
    let mut c = base.clone();
    if !method.eq_ignore_ascii_case(&base.train.method) {
        c.train.method_params.clear();
    }
    c.train.method = method.to_string();
    c.train.seed = seed;
    c
}

/// Runs the jobs that must run; an error naming every failed run.
fn run_wave(exe: &Path, wave: Vec<TrainJob>, parallel: usize) -> Result<()> {
    let failures = jobs::run_all(exe, wave, parallel)?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(jobs::failed(&failures))
    }
}

/// The evaluation of the epoch whose weights a run kept.
fn best_validation(report: &RunReport, what: &Path) -> Result<Evaluation> {
    report
        .epochs
        .iter()
        .find(|e| e.epoch == report.best_epoch)
        .and_then(|e| e.validation.clone())
        .ok_or_else(|| {
            Error::config(format!(
                "{}: the run has no validation evaluation at its best epoch",
                what.display()
            ))
        })
}

/// A run's test Δm as a seed result.
fn seed_result(job: &TrainJob, seed: u64) -> Result<SeedResult> {
    let report = jobs::read_report(&job.report_path())?;
    let d = report.delta_m.ok_or_else(|| {
        Error::config(format!(
            "{}: the report has no Δm",
            job.report_path().display()
        ))
    })?;
    Ok(SeedResult {
        seed,
        delta_m: d.delta_m,
        tasks: d.tasks,
    })
}

/// Runs the sweep `args` describes.
pub fn sweep(args: &SweepArgs) -> Result<SweepOutcome> {
    if args.seeds == 0 {
        return Err(Error::config("--seeds must be at least 1"));
    }
    if args.jobs == Some(0) {
        return Err(Error::config("--jobs must be at least 1"));
    }
    let cfg = RunConfig::read(&args.config)?;
    let methods = check_methods(&args.methods, &cfg)?;
    if cfg.data.test <= 0.0 {
        return Err(Error::config(
            "a sweep compares test Δm: set data.test to a fraction above 0",
        ));
    }
    let tune_static = !args.no_static;
    if tune_static && cfg.data.validation <= 0.0 {
        return Err(Error::config(
            "static weights are tuned on the validation rows: set data.validation above 0, \
             or pass --no-static",
        ));
    }
    let mut base = standalone(&cfg, &args.config)?;
    base.train.progress = false;
    base.train.diagnostics = None;
    // Baselines are trained by the runs that need them (`--baselines`), once.
    base.output.baselines = false;
    if let Some(e) = args.epochs {
        base.train.epochs = e;
    }
    base.check()?;
    let (out, _lock) = jobs::claim_out_dir(args.out.as_deref(), &args.config, "sweeps", "sweep")?;
    let exe = jobs::mtl_exe()?;
    let parallel = args.jobs.unwrap_or_else(jobs::default_jobs);
    let seeds: Vec<u64> = (0..args.seeds as u64)
        .map(|i| cfg.train.seed.wrapping_add(i))
        .collect();
    let k = cfg.data.targets.len();
    let run_dir = |name: &str, seed: u64| out.join(name).join(format!("seed{seed}"));
    let job = |label: String, dir: PathBuf, reference: Reference| TrainJob {
        label,
        dir,
        reference,
    };
    let baselines_file = |seed: u64| run_dir(EW, seed).join("baselines.json");

    // Wave 1: EW with each seed's baselines.
    let ew_jobs: Vec<TrainJob> = seeds
        .iter()
        .map(|&s| job(format!("ew seed {s}"), run_dir(EW, s), Reference::Train))
        .collect();
    let mut wave = Vec::new();
    for (j, &s) in ew_jobs.iter().zip(&seeds) {
        if jobs::prepare(j, &method_config(&base, EW, s))? {
            wave.push(j.clone());
        }
    }
    run_wave(&exe, wave, parallel)?;

    // Wave 2: the other methods, and the static grid on the first seed.
    let mut method_jobs: Vec<(String, Vec<TrainJob>)> = vec![(EW.to_string(), ew_jobs)];
    let mut wave = Vec::new();
    for m in methods.iter().filter(|m| *m != EW) {
        let mut js = Vec::new();
        for &s in &seeds {
            let j = job(
                format!("{m} seed {s}"),
                run_dir(m, s),
                Reference::From(baselines_file(s)),
            );
            if jobs::prepare(&j, &method_config(&base, m, s))? {
                wave.push(j.clone());
            }
            js.push(j);
        }
        method_jobs.push((m.clone(), js));
    }
    let grid = if tune_static {
        static_grid(k, args.static_grid)
    } else {
        Vec::new()
    };
    let first = seeds[0];
    let grid_config = |weights: &[f64], seed: u64| {
        let mut c = method_config(&base, "static", seed);
        c.train.method_params.clear();
        c.train
            .method_params
            .insert("weights".into(), serde_json::json!(weights));
        c
    };
    let grid_jobs: Vec<TrainJob> = grid
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let label = format!("static {w:.2?} seed {first}");
            job(
                label,
                out.join("static-grid").join(format!("p{i}")),
                Reference::From(baselines_file(first)),
            )
        })
        .collect();
    for (j, w) in grid_jobs.iter().zip(&grid) {
        if jobs::prepare(j, &grid_config(w, first))? {
            wave.push(j.clone());
        }
    }
    run_wave(&exe, wave, parallel)?;

    // Wave 3: the best grid point on validation, over the other seeds.
    let mut scored = Vec::new();
    let mut static_weights = None;
    if tune_static {
        let baselines = jobs::baselines_of(&method_jobs[0].1[0])?;
        let base_val = baselines
            .reports
            .iter()
            .zip(&method_jobs[0].1)
            .map(|(r, j)| best_validation(r, &j.dir.join("baselines.json")))
            .collect::<Result<Vec<_>>>()?;
        for (j, w) in grid_jobs.iter().zip(&grid) {
            let report = jobs::read_report(&j.report_path())?;
            let val = best_validation(&report, &j.report_path())?;
            let d = DeltaM::compute(&val, &base_val)?;
            scored.push(GridPoint {
                weights: w.clone(),
                validation_delta_m: d.delta_m,
            });
        }
        let best =
            pick_static(&scored).ok_or_else(|| Error::config("the static-weight grid is empty"))?;
        let weights = grid[best].clone();
        eprintln!(
            "static weights tuned on validation: {weights:.3?} (validation Δm {:+.2}%)",
            scored[best].validation_delta_m
        );
        let mut js = vec![grid_jobs[best].clone()];
        let mut wave = Vec::new();
        for &s in &seeds[1..] {
            let j = job(
                format!("static* seed {s}"),
                run_dir("static-star", s),
                Reference::From(baselines_file(s)),
            );
            if jobs::prepare(&j, &grid_config(&weights, s))? {
                wave.push(j.clone());
            }
            js.push(j);
        }
        run_wave(&exe, wave, parallel)?;
        method_jobs.push((TUNED_STATIC.to_string(), js));
        static_weights = Some(weights);
    }

    let runs = method_jobs
        .iter()
        .map(|(name, js)| {
            Ok(MethodRuns {
                name: name.clone(),
                runs: js
                    .iter()
                    .zip(&seeds)
                    .map(|(j, &s)| seed_result(j, s))
                    .collect::<Result<_>>()?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let summary = summarize(&runs)?;
    let report = SweepReport {
        config: std::path::absolute(&args.config).unwrap_or_else(|_| args.config.clone()),
        seeds,
        methods,
        static_grid: scored,
        static_weights,
        runs,
        summary: summary.clone(),
    };
    let json = out.join("sweep.json");
    let text = serde_json::to_string_pretty(&report)
        .map_err(|e| Error::config(format!("the sweep report is not serialisable: {e}")))?;
    files::write_atomically(&json, text.as_bytes())?;
    let plot = out.join("ranking.png");
    summary.plot_ranking(&plot)?;
    Ok(SweepOutcome {
        summary,
        report,
        files: vec![json, plot],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_on_validation_go_to_the_most_equal_weights() {
        let point = |w: [f64; 2], dm: f64| GridPoint {
            weights: w.to_vec(),
            validation_delta_m: dm,
        };
        let grid = [
            point([0.5, 1.5], 0.4),
            point([1.0, 1.0], 0.4),
            point([1.5, 0.5], 0.9),
        ];
        assert_eq!(pick_static(&grid), Some(1));
        let grid = [point([0.5, 1.5], 0.1), point([1.0, 1.0], 0.4)];
        assert_eq!(pick_static(&grid), Some(0));
        assert_eq!(pick_static(&[]), None);
    }

    #[test]
    fn grid_covers_the_simplex_scaled_to_k() {
        let g = static_grid(2, 6);
        assert_eq!(g.len(), 5);
        assert_eq!(g[0], [2.0 / 6.0, 10.0 / 6.0]);
        assert!(g.contains(&vec![1.0, 1.0]));
        for w in static_grid(3, 6) {
            assert!((w.iter().sum::<f64>() - 3.0).abs() < 1e-12);
            assert!(w.iter().all(|&x| x > 0.0));
        }
        // C(5, 2) compositions of 6 into 3 positive parts.
        assert_eq!(static_grid(3, 6).len(), 10);
        // More tasks than parts: only equal weights.
        assert_eq!(static_grid(4, 2), [vec![1.0; 4]]);
    }
}
