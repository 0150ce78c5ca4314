//! Configs derived from a user's config for the runs that `mtl sweep` and `mtl group`
//! start: made standalone (every path absolute, so the derived file can live in the run's
//! own directory), and restricted to a subset of the tasks (for a task group).
//!
//! A restricted CSV config drops the other targets and, when the feature columns are
//! not listed, excludes their columns too: a dropped task's labels must not become a
//! feature of the tasks kept.

use crate::config::RunConfig;
use mtl::core::{Error, Result};
use mtl::Monitor;
use std::path::{Path, PathBuf};

/// `cfg` with its input file, image masks' folder and pretrained weights as absolute
/// paths resolved as `mtl train` resolves them from `config_path`, and no output
/// directory (each derived run is given its own).
pub fn standalone(cfg: &RunConfig, config_path: &Path) -> Result<RunConfig> {
    let mut out = cfg.clone();
    let input = absolute(&cfg.csv_path(config_path))?;
    let d = &mut out.data;
    for slot in [
        &mut d.csv,
        &mut d.npz,
        &mut d.safetensors,
        &mut d.image_folder,
    ] {
        if slot.is_some() {
            *slot = Some(input.clone());
        }
    }
    if let Some(p) = &mut out.model.pretrained {
        p.path = absolute(&p.resolve(config_path))?;
    }
    out.output.dir = None;
    Ok(out)
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// `task<j>` components of a parameter prefix renamed by `map` (`None`: the prefix
/// belongs to a task that is not kept).
fn remap_prefix(prefix: &str, map: &dyn Fn(usize) -> Option<usize>) -> Option<String> {
    let mut parts = Vec::new();
    for c in prefix.split('.') {
        match c.strip_prefix("task").and_then(|t| t.parse::<usize>().ok()) {
            Some(j) => parts.push(format!("task{}", map(j)?)),
            None => parts.push(c.to_string()),
        }
    }
    Some(parts.join("."))
}

/// `cfg` with only the tasks `keep` (indices into `data.targets`, in that order). Task
/// indices elsewhere follow: an early-stopping metric of a dropped task becomes the
/// mean primary metric, frozen prefixes of dropped tasks go, per-task method
/// hyper-parameters (arrays of one entry per task) keep the kept tasks' entries. An
/// error for an empty, repeated or out-of-range `keep`.
pub fn restrict_tasks(cfg: &RunConfig, keep: &[usize]) -> Result<RunConfig> {
    let k = cfg.data.targets.len();
    if keep.is_empty() {
        return Err(Error::config("a task group must keep at least one task"));
    }
    if let Some(&bad) = keep.iter().find(|&&i| i >= k) {
        return Err(Error::config(format!(
            "task {bad} is not a task of the config, which has {k}"
        )));
    }
    if (1..keep.len()).any(|i| keep[..i].contains(&keep[i])) {
        return Err(Error::config(format!("task group {keep:?} repeats a task")));
    }
    let mut out = cfg.clone();
    let map = |j: usize| keep.iter().position(|&i| i == j);
    out.data.targets = keep.iter().map(|&i| cfg.data.targets[i].clone()).collect();
    if cfg.data.csv.is_some() && cfg.data.features.is_none() {
        for (i, t) in cfg.data.targets.iter().enumerate() {
            let column = t.source().to_string();
            let still_read = out.data.targets.iter().any(|t| t.source() == column);
            if !keep.contains(&i) && !still_read && !out.data.exclude.contains(&column) {
                out.data.exclude.push(column);
            }
        }
    }
    if let Some(es) = &mut out.train.early_stopping {
        if let Monitor::Metric { task, name } = &es.monitor {
            es.monitor = match map(*task) {
                Some(t) => Monitor::Metric {
                    task: t,
                    name: name.clone(),
                },
                None => Monitor::MeanPrimary,
            };
        }
    }
    out.train.frozen = cfg
        .train
        .frozen
        .iter()
        .filter_map(|p| remap_prefix(p, &map))
        .collect();
    out.train.unfreeze = cfg
        .train
        .unfreeze
        .iter()
        .filter_map(|u| Some(mtl::Unfreeze::new(remap_prefix(&u.prefix, &map)?, u.epoch)))
        .collect();
    for value in out.train.method_params.values_mut() {
        if let Some(items) = value.as_array().filter(|a| a.len() == k) {
            *value = keep.iter().map(|&i| items[i].clone()).collect();
        }
    }
    out.check()?;
    Ok(out)
}

/// Writes `cfg` as `config.json` in `dir` (atomically) and returns its path and text.
pub fn write_run_config(cfg: &RunConfig, dir: &Path) -> Result<(PathBuf, String)> {
    let text = serde_json::to_string_pretty(cfg)
        .map_err(|e| Error::config(format!("the run config is not serialisable: {e}")))?;
    mtl::core::files::check_writable(dir)?;
    let path = dir.join("config.json");
    mtl::core::files::write_atomically(&path, text.as_bytes())?;
    Ok((path, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[data]
csv = "olive-oil/olive.csv"
targets = [
  { column = "a", kind = "classes" },
  { column = "b", kind = "regression" },
  { column = "c", kind = "binary" },
]
[train]
method = "static"
method_params = { weights = [1.0, 2.0, 3.0] }
frozen = ["task2.head.", "trunk.0."]
early_stopping = { monitor = { kind = "metric", task = 2, name = "accuracy" }, patience = 3 }
"#;

    #[test]
    fn restricting_drops_tasks_and_follows_indices() {
        let cfg = RunConfig::parse(CONFIG, Path::new("c.toml")).unwrap();
        let sub = restrict_tasks(&cfg, &[2, 0]).unwrap();
        let names: Vec<String> = sub.data.targets.iter().map(|t| t.task_name()).collect();
        assert_eq!(names, ["c", "a"]);
        assert_eq!(sub.data.exclude, ["b"]);
        assert_eq!(sub.train.frozen, ["task0.head.", "trunk.0."]);
        assert_eq!(
            sub.train.method_params["weights"],
            serde_json::json!([3.0, 1.0])
        );
        let Monitor::Metric { task, .. } = &sub.train.early_stopping.as_ref().unwrap().monitor
        else {
            panic!("monitor changed kind");
        };
        assert_eq!(*task, 0);
        let only_b = restrict_tasks(&cfg, &[1]).unwrap();
        assert_eq!(
            only_b.train.early_stopping.unwrap().monitor,
            Monitor::MeanPrimary
        );
        assert_eq!(only_b.train.frozen, ["trunk.0."]);
        assert!(restrict_tasks(&cfg, &[]).is_err());
        assert!(restrict_tasks(&cfg, &[3])
            .unwrap_err()
            .to_string()
            .contains("has 3"));
        assert!(restrict_tasks(&cfg, &[0, 0]).is_err());
    }

    #[test]
    fn standalone_paths_are_absolute() {
        let cfg = RunConfig::parse(CONFIG, Path::new("c.toml")).unwrap();
        let out = standalone(&cfg, Path::new("examples/configs/c.toml")).unwrap();
        assert!(out.data.csv.unwrap().is_absolute());
        assert!(out.output.dir.is_none());
    }
}
