//! The plain-PyTorch twins of W5 and W6: `torch/dense_twin.py` and `torch/text_twin.py`
//! (beside this crate's `src/`) build the workload's network in `torch.nn` and time EW
//! and PCGrad as plain PyTorch loops on the batches the `mtl` rows trained on, written
//! here to an `.npz` file, with the same threads, warm-up and timed steps. LibMTL has no
//! dense or text harness, so these loops are W5's and W6's peers; their rows carry
//! `impl` = [`TWIN_IMPL`] and the matching `mtl` rows get `torch_ms` and
//! `torch_over_mtl` (PyTorch ms/step ÷ mtl ms/step, higher is better).
//!
//! W6's twin (`torch.nn.TransformerEncoder`) also checks that its parameter count is
//! ours ([`text_param_count`], passed as `--expect-params`) and fails otherwise; like the
//! `mtl` rows it times fewer steps when warm-up predicts more than the method budget.

use super::cli::{medians_of, Options};
use super::job::IMPL;
use super::spec::{make_data, text_param_count, Workload};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tch::{Device, Tensor};

/// The `impl` of the twin's rows.
pub const TWIN_IMPL: &str = "torch_plain";

/// Our registry names of the methods the twin has, with the names its rows carry.
const TWIN_METHODS: [(&str, &str); 2] = [("ew", "EW"), ("pcgrad", "PCGrad")];

/// The workloads that have a plain-PyTorch twin.
pub const TWIN_WORKLOADS: [Workload; 2] = [Workload::Dense, Workload::Text];

/// The twins to run for a run's workloads, in run order.
pub fn workloads_of_run(o: &Options) -> Vec<Workload> {
    o.workloads
        .iter()
        .copied()
        .filter(|w| TWIN_WORKLOADS.contains(w))
        .collect()
}

/// The twin script of workload `w` (`torch/<name>_twin.py`).
pub fn script(w: Workload) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("torch")
        .join(format!("{}_twin.py", w.name()))
}

/// The twin's names of the run's methods it has (none: the twin is not run).
pub fn twin_methods(methods: &[String]) -> Vec<&'static str> {
    TWIN_METHODS
        .iter()
        .filter(|(ours, _)| methods.iter().any(|m| m == ours))
        .map(|(_, theirs)| *theirs)
        .collect()
}

/// Writes the batches of workload `w` (`seed`, `n_batches`) as its twin reads them. W5:
/// `x` `[NB, B, 1, S, S]`, `segment` `[NB, B, S, S]` (int64), `depth` `[NB, B, S, S]`,
/// `normals` `[NB, B, 3, S, S]`. W6: `x` `[NB, B, T]` token ids (int64, 0 = padding),
/// `sentence` `[NB, B]` classes, `tags` `[NB, B, T]` (−1 on padding).
pub fn write_batches(w: Workload, path: &Path, seed: u64, n_batches: i64) -> Result<()> {
    let data = make_data(w, seed, n_batches, Device::Cpu);
    let stack = |f: &dyn Fn(&super::spec::FixedBatch) -> Tensor| {
        Tensor::stack(&data.iter().map(f).collect::<Vec<_>>(), 0)
    };
    let x = stack(&|b| b.x.shallow_clone());
    let mut named = vec![("x".to_string(), x)];
    for (t, (name, _)) in w.tasks().into_iter().enumerate() {
        named.push((
            name.to_string(),
            stack(&|b| b.targets[t].values.shallow_clone()),
        ));
    }
    Tensor::write_npz(&named, path).with_context(|| format!("writing {}", path.display()))
}

/// Runs workload `w`'s twin under `python` with the run's settings and returns its rows
/// (one per method, or one failed row saying why, so the run's own rows are still
/// written).
pub fn run(python: &Path, o: &Options, w: Workload) -> Result<Vec<Value>> {
    let methods = twin_methods(&super::cli::methods_for(o, w));
    if methods.is_empty() {
        return Ok(Vec::new());
    }
    let dir = o
        .out
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        .join(format!("{}_twin", w.name()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let data = dir.join("batches.npz");
    let out = dir.join("rows.json");
    let _ = std::fs::remove_file(&out);
    write_batches(w, &data, o.cfg.seed, o.cfg.n_batches)?;
    let device = match o.cfg.device {
        Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".into(),
    };
    let mut cmd = Command::new(python);
    cmd.arg(script(w))
        .arg("--data")
        .arg(&data)
        .args(["--steps", &o.cfg.steps.to_string()])
        .args(["--warmup", &o.cfg.warmup.to_string()])
        .args(["--threads", &o.cfg.threads.to_string()])
        .args(["--seed", &o.cfg.seed.to_string()])
        .args(["--device", &device])
        .args(["--methods", &methods.join(",")])
        .arg("--out")
        .arg(&out)
        .stdin(Stdio::null());
    if w == Workload::Text {
        cmd.args(["--expect-params", &text_param_count().to_string()])
            .args(["--min-steps", &o.cfg.min_steps.to_string()])
            .args(["--budget-s", &o.cfg.method_budget_s.to_string()]);
    }
    let result = cmd.output();
    let failed = |why: String| {
        Ok(vec![json!({
            "impl": TWIN_IMPL, "workload": w.name(), "method": methods.join(","),
            "status": "failed", "error": why,
        })])
    };
    let output = match result {
        Ok(out) => out,
        Err(e) => return failed(format!("cannot start {}: {e}", python.display())),
    };
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = err.lines().rev().take(4).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return failed(format!("{}: {}", output.status, tail.join(" | ")));
    }
    let text =
        std::fs::read_to_string(&out).with_context(|| format!("reading {}", out.display()))?;
    let parsed: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", out.display()))?;
    let Some(rows) = parsed["rows"].as_array() else {
        bail!("{} has no rows", out.display());
    };
    Ok(rows
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r["num_tasks"] = json!(w.num_tasks());
            r["arch"] = json!(w.arch());
            r["device"] = json!(format!("{:?}", o.cfg.device));
            r
        })
        .collect())
}

/// Adds `torch_ms` and `torch_over_mtl` to each `mtl` parameter-mode row the twin has a
/// row for (same workload and method).
pub fn add_torch_ratios(rows: &mut [Value]) {
    let twin = medians_of(rows, TWIN_IMPL);
    for r in rows.iter_mut() {
        if r["impl"] != IMPL || r["grad_mode"] != "param" {
            continue;
        }
        let (Some(w), Some(m), Some(ms)) = (
            r["workload"].as_str(),
            r["method"].as_str(),
            r["median_ms"].as_f64(),
        ) else {
            continue;
        };
        if let Some((_, _, t)) = twin.iter().find(|(tw, tm, _)| tw == w && tm == m) {
            let t = *t;
            r["torch_ms"] = json!(t);
            r["torch_over_mtl"] = json!(t / ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_are_there_and_know_our_methods() {
        for w in TWIN_WORKLOADS {
            let text = std::fs::read_to_string(script(w)).unwrap();
            for (_, theirs) in TWIN_METHODS {
                assert!(text.contains(&format!("\"{theirs}\"")), "{theirs}");
            }
        }
        let ours = ["ew".to_string(), "mgda".to_string()];
        assert_eq!(twin_methods(&ours), ["EW"]);
    }

    #[test]
    fn batches_round_trip_through_npz() {
        let dir = std::env::temp_dir().join(format!("mtl-bench-twin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("b.npz");
        write_batches(Workload::Dense, &path, 0, 2).unwrap();
        let back = Tensor::read_npz(&path).unwrap();
        let size = |n: &str| back.iter().find(|(k, _)| k == n).unwrap().1.size();
        assert_eq!(size("x"), [2, 16, 1, 32, 32]);
        assert_eq!(size("segment"), [2, 16, 32, 32]);
        assert_eq!(size("depth"), [2, 16, 32, 32]);
        assert_eq!(size("normals"), [2, 16, 3, 32, 32]);
        let seg = &back.iter().find(|(k, _)| k == "segment").unwrap().1;
        assert_eq!(seg.kind(), tch::Kind::Int64);
        write_batches(Workload::Text, &path, 0, 2).unwrap();
        let back = Tensor::read_npz(&path).unwrap();
        let get = |n: &str| back.iter().find(|(k, _)| k == n).unwrap().1.shallow_clone();
        assert_eq!(get("x").size(), [2, 32, 128]);
        assert_eq!(get("sentence").size(), [2, 32]);
        assert_eq!(get("tags").size(), [2, 32, 128]);
        // Padding (id 0) is where the tags are −1, and only there.
        assert!(get("x").eq(0).equal(&get("tags").eq(-1)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ratios_go_to_the_matching_param_rows() {
        let mut rows = vec![
            json!({"impl": TWIN_IMPL, "workload": "dense", "method": "PCGrad", "status": "ok", "median_ms": 30.0}),
            json!({"impl": IMPL, "workload": "dense", "method": "PCGrad", "grad_mode": "param", "median_ms": 20.0}),
            json!({"impl": IMPL, "workload": "dense", "method": "PCGrad", "grad_mode": "rep", "median_ms": 10.0}),
            json!({"impl": IMPL, "workload": "dense", "method": "EW", "grad_mode": "param", "median_ms": 10.0}),
        ];
        add_torch_ratios(&mut rows);
        assert_eq!(rows[1]["torch_over_mtl"], 1.5);
        assert!(rows[2].get("torch_over_mtl").is_none());
        assert!(rows[3].get("torch_over_mtl").is_none());
    }
}
