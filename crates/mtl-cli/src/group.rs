//! `mtl group CONFIG`: task grouping after TAG (Fifty et al., NeurIPS 2021) on the
//! user's data, end to end.
//!
//! 1. One all-in-one run of the config with the TAG lookahead affinity sampled
//!    (`train.diagnostics` with `affinity = true`; every 5 steps unless the config or
//!    `--affinity-every` says otherwise) that also trains the single-task baselines.
//!    Diagnostics run in evaluation mode and leave training unchanged, so this run is
//!    the all-in-one model too.
//! 2. The affinity averaged over the samples, and groups chosen by
//!    [`mtl::grouping::select_groups`]: at most `--max-groups` (default K) groups,
//!    overlapping as in the paper unless `--disjoint`.
//! 3. Each group of two or more tasks that is not all of them trained alone, from the
//!    config restricted to its tasks ([`crate::subset::restrict_tasks`]); a group of all
//!    tasks is the all-in-one run, a group of one task is that task's baseline.
//! 4. Each task evaluated on the test rows by the group that serves it, and Δm of the
//!    grouping set beside the all-in-one Δm and single-task training (Δm = 0 by
//!    definition), with the number of networks each trains.
//!
//! Runs are child processes as in `mtl sweep`, resumable the same way.

use crate::config::RunConfig;
use crate::jobs::{self, Reference, TrainJob};
use crate::subset::{restrict_tasks, standalone};
use mtl::core::files;
use mtl::core::{Error, Result};
use mtl::grouping::{mean_affinity, select_groups, GroupingOptions, TaskGrouping};
use mtl::{DeltaM, DiagnosticsConfig, Evaluation};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The arguments of `mtl group`.
#[derive(Debug, Clone, clap::Args)]
pub struct GroupArgs {
    /// The run configuration (`.toml` or `.json`), as for `mtl train`.
    pub config: PathBuf,
    /// Output directory (default: `groups/<config stem>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The most groups, i.e. networks to train (default: the number of tasks).
    #[arg(long)]
    pub max_groups: Option<usize>,
    /// Disjoint groups only (a partition), rather than the paper's overlapping groups.
    #[arg(long)]
    pub disjoint: bool,
    /// Runs at a time (default: half the cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Override `train.epochs` in every run.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Sample the affinity every N steps (default: the config's diagnostics'
    /// `every_steps`, else 5).
    #[arg(long)]
    pub affinity_every: Option<u64>,
}

/// One way of training the tasks, scored by Δm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arrangement {
    /// `single-task`, `all-in-one` or `grouping`.
    pub name: String,
    /// Its groups, by task name.
    pub groups: Vec<Vec<String>>,
    /// Networks trained.
    pub networks: usize,
    /// Test Δm against the single-task baselines, with each task's term.
    pub delta_m: DeltaM,
}

/// `group.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    /// The task names.
    pub tasks: Vec<String>,
    /// The mean TAG affinity, `affinity[i][j]` = Z_{i→j}.
    pub affinity: Vec<Vec<f64>>,
    /// The affinity samples averaged.
    pub samples: usize,
    /// The options of the selection.
    pub options: GroupingOptions,
    /// The selection (task indices), with the task each group serves.
    pub grouping: TaskGrouping,
    /// Single-task, all-in-one and the grouping.
    pub arrangements: Vec<Arrangement>,
}

/// What `mtl group` produced.
#[derive(Debug)]
pub struct GroupOutcome {
    /// `group.json`'s contents.
    pub report: GroupReport,
    /// The files written.
    pub files: Vec<PathBuf>,
}

impl GroupOutcome {
    /// The affinity, the groups and a Δm table of the three arrangements.
    pub fn table(&self) -> String {
        let r = &self.report;
        let mut s =
            String::from("TAG affinity Z[i→j] (row i helps column j), mean over samples:\n");
        s += &format!("{:>16}", "");
        for t in &r.tasks {
            s += &format!(" {t:>12.12}");
        }
        s += "\n";
        for (i, row) in r.affinity.iter().enumerate() {
            s += &format!("{:>16.16}", r.tasks[i]);
            for z in row {
                s += &format!(" {z:>12.4}");
            }
            s += "\n";
        }
        s += &format!(
            "groups ({}, total affinity {:.4}):\n",
            if r.grouping.exact {
                "exhaustive search"
            } else {
                "greedy search"
            },
            r.grouping.score
        );
        for (gi, g) in r.grouping.groups.iter().enumerate() {
            let serves: Vec<&str> = (0..r.tasks.len())
                .filter(|&i| r.grouping.served_by[i] == gi)
                .map(|i| r.tasks[i].as_str())
                .collect();
            let names: Vec<&str> = g.iter().map(|&i| r.tasks[i].as_str()).collect();
            s += &format!("  {{{}}} serves {}\n", names.join(", "), serves.join(", "));
        }
        s += "| arrangement | networks | Δm % |";
        for t in &r.tasks {
            s += &format!(" {t} |");
        }
        s += "\n|---|---|---|";
        s += &"---|".repeat(r.tasks.len());
        s += "\n";
        for a in &r.arrangements {
            s += &format!(
                "| {} | {} | {:+.2} |",
                a.name, a.networks, a.delta_m.delta_m
            );
            for t in &a.delta_m.tasks {
                s += &format!(
                    " {} {:.4} ({:+.2}%) |",
                    t.metric, t.value, t.relative_change
                );
            }
            s += "\n";
        }
        s
    }
}

/// A directory name for a group: its task names joined by `+`, other characters `_`.
fn group_dir_name(names: &[&str]) -> String {
    let joined = names.join("+");
    let clean: String = joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("group-{clean}")
}

/// Runs `mtl group` as `args` describes.
pub fn group(args: &GroupArgs) -> Result<GroupOutcome> {
    if args.jobs == Some(0) {
        return Err(Error::config("--jobs must be at least 1"));
    }
    let cfg = RunConfig::read(&args.config)?;
    let k = cfg.data.targets.len();
    if k < 2 {
        return Err(Error::config(format!(
            "task grouping needs at least two tasks; the config has {k}"
        )));
    }
    if cfg.data.test <= 0.0 {
        return Err(Error::config(
            "task grouping compares test Δm: set data.test to a fraction above 0",
        ));
    }
    let options = GroupingOptions {
        max_groups: args.max_groups.unwrap_or(k),
        overlap: !args.disjoint,
    };
    if options.max_groups == 0 {
        return Err(Error::config("--max-groups must be at least 1"));
    }
    let mut base = standalone(&cfg, &args.config)?;
    base.train.progress = false;
    // Baselines are trained by the runs that need them (`--baselines`), once.
    base.output.baselines = false;
    if let Some(e) = args.epochs {
        base.train.epochs = e;
    }
    let every = args
        .affinity_every
        .or(cfg.train.diagnostics.as_ref().map(|d| d.every_steps))
        .unwrap_or(5);
    let mut measured = base.clone();
    let mut diagnostics = cfg
        .train
        .diagnostics
        .clone()
        .unwrap_or_else(|| DiagnosticsConfig::every(every));
    diagnostics.every_steps = every;
    measured.train.diagnostics = Some(diagnostics.with_affinity());
    measured.check()?;
    // The group runs need no diagnostics (they cost time and change nothing).
    base.train.diagnostics = None;

    let (out, _lock) = jobs::claim_out_dir(args.out.as_deref(), &args.config, "groups", "group")?;
    let exe = jobs::mtl_exe()?;
    let parallel = args.jobs.unwrap_or_else(jobs::default_jobs);

    // 1. All-in-one with affinity and baselines.
    let all = TrainJob {
        label: "all-in-one".into(),
        dir: out.join("all-in-one"),
        reference: Reference::Train,
    };
    if jobs::prepare(&all, &measured)? {
        let failures = jobs::run_all(&exe, vec![all.clone()], 1)?;
        if !failures.is_empty() {
            return Err(jobs::failed(&failures));
        }
    }
    let all_report = jobs::read_report(&all.report_path())?;
    let baselines = jobs::baselines_of(&all)?;
    let tasks = all_report.tasks.clone();
    let affinity = mean_affinity(&all_report.diagnostics)?;
    let samples = all_report
        .diagnostics
        .iter()
        .filter(|s| s.affinity.is_some())
        .count();

    // 2. The selection.
    let grouping = select_groups(&affinity, &options)?;

    // 3. The groups to train.
    let mut evaluations: Vec<Option<Evaluation>> = vec![None; grouping.groups.len()];
    let mut group_jobs = Vec::new();
    let mut wave = Vec::new();
    for (gi, g) in grouping.groups.iter().enumerate() {
        if g.len() == k {
            evaluations[gi] = all_report.test.clone();
        } else if let [only] = g.as_slice() {
            evaluations[gi] = baselines.test.get(*only).cloned();
        } else {
            let names: Vec<&str> = g.iter().map(|&i| tasks[i].as_str()).collect();
            let job = TrainJob {
                label: format!("group {{{}}}", names.join(", ")),
                dir: out.join(group_dir_name(&names)),
                reference: Reference::None,
            };
            if jobs::prepare(&job, &restrict_tasks(&base, g)?)? {
                wave.push(job.clone());
            }
            group_jobs.push((gi, job));
        }
    }
    let failures = jobs::run_all(&exe, wave, parallel)?;
    if !failures.is_empty() {
        return Err(jobs::failed(&failures));
    }
    for (gi, job) in &group_jobs {
        evaluations[*gi] = jobs::read_report(&job.report_path())?.test;
    }

    // 4. Each task from the group serving it.
    let mut composed = Evaluation {
        tasks: tasks.clone(),
        losses: vec![0.0; k],
        metrics: vec![Vec::new(); k],
    };
    for (i, name) in tasks.iter().enumerate() {
        let gi = grouping.served_by[i];
        let eval = evaluations[gi].as_ref().ok_or_else(|| {
            Error::config(format!(
                "the group serving task `{name}` has no test evaluation"
            ))
        })?;
        let t = eval.tasks.iter().position(|n| n == name).ok_or_else(|| {
            Error::config(format!(
                "the group serving task `{name}` evaluates {:?}",
                eval.tasks
            ))
        })?;
        let (Some(loss), Some(metrics)) = (eval.losses.get(t), eval.metrics.get(t)) else {
            return Err(Error::config(format!(
                "the evaluation of the group serving task `{name}` lacks its metrics"
            )));
        };
        composed.losses[i] = *loss;
        composed.metrics[i] = metrics.clone();
    }
    let all_test = all_report.test.clone().ok_or_else(|| {
        Error::config(format!(
            "{}: the all-in-one run has no test evaluation",
            all.report_path().display()
        ))
    })?;
    let names_of = |g: &[usize]| -> Vec<String> { g.iter().map(|&i| tasks[i].clone()).collect() };
    let single = DeltaM::compute(
        &baselines_test_as_one(&baselines.test, &tasks)?,
        &baselines.test,
    )?;
    let arrangements = vec![
        Arrangement {
            name: "single-task".into(),
            groups: (0..k).map(|i| names_of(&[i])).collect(),
            networks: k,
            delta_m: single,
        },
        Arrangement {
            name: "all-in-one".into(),
            groups: vec![tasks.clone()],
            networks: 1,
            delta_m: DeltaM::compute(&all_test, &baselines.test)?,
        },
        Arrangement {
            name: "grouping".into(),
            groups: grouping.groups.iter().map(|g| names_of(g)).collect(),
            networks: grouping.groups.len(),
            delta_m: DeltaM::compute(&composed, &baselines.test)?,
        },
    ];
    let report = GroupReport {
        tasks,
        affinity,
        samples,
        options,
        grouping,
        arrangements,
    };
    let json = out.join("group.json");
    let text = serde_json::to_string_pretty(&report)
        .map_err(|e| Error::config(format!("the group report is not serialisable: {e}")))?;
    files::write_atomically(&json, text.as_bytes())?;
    Ok(GroupOutcome {
        report,
        files: vec![json],
    })
}

/// The single-task models' test evaluations as one K-task evaluation.
fn baselines_test_as_one(tests: &[Evaluation], tasks: &[String]) -> Result<Evaluation> {
    let mut e = Evaluation {
        tasks: tasks.to_vec(),
        losses: Vec::new(),
        metrics: Vec::new(),
    };
    for (name, b) in tasks.iter().zip(tests) {
        let t = b.tasks.iter().position(|n| n == name).ok_or_else(|| {
            Error::config(format!(
                "the baseline for task `{name}` evaluates {:?}",
                b.tasks
            ))
        })?;
        let (Some(loss), Some(metrics)) = (b.losses.get(t), b.metrics.get(t)) else {
            return Err(Error::config(format!(
                "the baseline evaluation of task `{name}` lacks its metrics"
            )));
        };
        e.losses.push(*loss);
        e.metrics.push(metrics.clone());
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::group_dir_name;

    #[test]
    fn group_directories_are_plain_names() {
        assert_eq!(group_dir_name(&["a", "b c"]), "group-a+b_c");
        assert_eq!(group_dir_name(&["x/y"]), "group-x_y");
    }
}
