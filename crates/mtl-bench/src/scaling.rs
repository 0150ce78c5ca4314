//! `mtl-bench scaling --nproc N`: data-parallel scaling on loopback. For each workload
//! and method it times the training step of one process on the global batch and of N
//! Gloo ranks each on its block of it (the engine's exact mode), and reports the
//! speed-up, the efficiency (speed-up ÷ N), the bytes each rank sends into collectives
//! per step and the share of the step spent in them.

use super::spec::{build_model, make_data, Workload};
use super::timing::percentile;
use anyhow::{bail, Context, Result};
use mtl::core::{params, Collective, OptimizerConfig};
use mtl::data::Batch;
use mtl::dist::{launch, DistConfig, ProcessGroup};
use mtl::losses::{by_name, DataParallelMode};
use mtl::{train_step_in, GradMode, StepData};
use serde_json::{json, Value};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use tch::{Device, Tensor};

/// What one scaling run measures.
#[derive(Debug, Clone)]
pub struct ScalingArgs {
    /// Ranks of the parallel run.
    pub nproc: usize,
    /// Workloads.
    pub workloads: Vec<Workload>,
    /// Registry names.
    pub methods: Vec<String>,
    /// Timed steps.
    pub steps: usize,
    /// Untimed steps first.
    pub warmup: usize,
    /// Intra-op threads per process.
    pub threads: i32,
    /// Where the JSON goes.
    pub out: PathBuf,
}

/// A collective that counts the time and bytes spent in it.
struct Counted<'a> {
    inner: &'a dyn Collective,
    seconds: Cell<f64>,
    bytes: Cell<u64>,
}

impl Counted<'_> {
    fn count<T>(
        &self,
        t: &Tensor,
        f: impl FnOnce() -> mtl::core::Result<T>,
    ) -> mtl::core::Result<T> {
        let t0 = Instant::now();
        let out = f();
        self.seconds
            .set(self.seconds.get() + t0.elapsed().as_secs_f64());
        let size = t.numel() as u64 * t.kind().elt_size_in_bytes() as u64;
        self.bytes.set(self.bytes.get() + size);
        out
    }
}

impl Collective for Counted<'_> {
    fn rank(&self) -> usize {
        self.inner.rank()
    }
    fn world_size(&self) -> usize {
        self.inner.world_size()
    }
    fn all_reduce_sum(&self, t: &Tensor) -> mtl::core::Result<()> {
        self.count(t, || self.inner.all_reduce_sum(t))
    }
    fn all_gather(&self, t: &Tensor) -> mtl::core::Result<Vec<Tensor>> {
        self.count(t, || self.inner.all_gather(t))
    }
    fn broadcast(&self, t: &Tensor, root: usize) -> mtl::core::Result<()> {
        self.count(t, || self.inner.broadcast(t, root))
    }
    fn barrier(&self) -> mtl::core::Result<()> {
        self.inner.barrier()
    }
}

/// One process's steps of `method` on `w` (alone, or as a rank of `group`): median
/// step seconds, and per step the seconds and bytes spent in collectives.
fn time_steps(
    w: Workload,
    method: &str,
    mode: DataParallelMode,
    steps: usize,
    warmup: usize,
    group: Option<&dyn Collective>,
) -> Result<(f64, f64, f64)> {
    let data = make_data(w, 0, 8, Device::Cpu);
    tch::manual_seed(0);
    let model = build_model(w, Device::Cpu)?;
    let mut m = by_name(method, w.num_tasks(), 0)?;
    let groups = model.param_groups()?;
    let mut trainable = groups.all_tensors();
    trainable.extend(m.parameters());
    params::ensure_grads(&trainable)?;
    let mut opt = OptimizerConfig::adam(w.lr()).build(trainable)?;
    let counted = group.map(|g| Counted {
        inner: g,
        seconds: Cell::new(0.0),
        bytes: Cell::new(0),
    });
    let mut times = Vec::with_capacity(steps);
    for i in 0..warmup + steps {
        if i == warmup {
            if let Some(c) = &counted {
                c.seconds.set(0.0);
                c.bytes.set(0);
            }
        }
        let b = &data[i % data.len()];
        let whole = StepData::Joint(Batch {
            x: b.x.shallow_clone(),
            targets: b
                .targets
                .iter()
                .map(|t| mtl::core::TaskTarget {
                    values: t.values.shallow_clone(),
                    mask: t.mask.as_ref().map(Tensor::shallow_clone),
                })
                .collect(),
            rows: (0..b.x.size()[0] as usize).collect(),
        });
        let t0 = Instant::now();
        let step_data = match &counted {
            Some(c) => whole.shard(c.rank(), c.world_size()),
            None => whole,
        };
        opt.zero_grad();
        train_step_in(
            &model,
            &groups,
            &mut m,
            GradMode::Parameters,
            &step_data,
            i as u64,
            2,
            counted.as_ref().map(|c| (c as &dyn Collective, mode)),
        )?;
        opt.step()?;
        if i >= warmup {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let (comm_s, bytes) = counted.map_or((0.0, 0.0), |c| {
        (
            c.seconds.get() / steps as f64,
            c.bytes.get() as f64 / steps as f64,
        )
    });
    Ok((percentile(&times, 50.0), comm_s, bytes))
}

/// The child side: `MTL_SCALING_JOB=workload:method:mode` with the rank variables set (or
/// not, for the one-process run); writes its figures as JSON to `MTL_SCALING_OUT`.
pub fn child(steps: usize, warmup: usize, threads: i32) -> Result<()> {
    tch::set_num_threads(threads);
    let job = std::env::var("MTL_SCALING_JOB").context("MTL_SCALING_JOB")?;
    let out = PathBuf::from(std::env::var("MTL_SCALING_OUT").context("MTL_SCALING_OUT")?);
    let parts: Vec<&str> = job.split(':').collect();
    let [w, method, mode] = parts[..] else {
        bail!("MTL_SCALING_JOB is workload:method:mode, not {job}");
    };
    let w = Workload::parse(w).map_err(anyhow::Error::msg)?;
    let mode = match mode {
        "local" => DataParallelMode::Local,
        _ => DataParallelMode::Exact,
    };
    let group = match DistConfig::from_env()? {
        Some(c) => Some(ProcessGroup::init(&c)?),
        None => None,
    };
    let (step_s, comm_s, bytes) = time_steps(
        w,
        method,
        mode,
        steps,
        warmup,
        group.as_ref().map(|g| g as &dyn Collective),
    )?;
    let rank = group.as_ref().map_or(0, |g| g.rank());
    if rank == 0 {
        std::fs::write(
            &out,
            json!({"step_ms": step_s * 1e3, "comm_ms": comm_s * 1e3, "bytes": bytes}).to_string(),
        )?;
    }
    Ok(())
}

fn read(path: &Path) -> Result<Value> {
    Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
}

/// The parent side: one-process and N-rank runs of every workload × method, each in
/// fresh processes; prints a table and writes the JSON.
pub fn run(a: &ScalingArgs) -> Result<()> {
    if a.nproc < 2 {
        bail!("--nproc {} : scaling needs at least 2 ranks", a.nproc);
    }
    let exe = std::env::current_exe()?;
    let tmp = std::env::temp_dir().join(format!("mtl-scaling-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let child_cmd = |job: &str, out: &Path| {
        let mut cmd = Command::new(&exe);
        cmd.args([
            "__scaling-child",
            "--steps",
            &a.steps.to_string(),
            "--warmup",
            &a.warmup.to_string(),
            "--threads",
            &a.threads.to_string(),
        ])
        .env("MTL_SCALING_JOB", job)
        .env("MTL_SCALING_OUT", out)
        .env_remove("RANK")
        .env_remove("WORLD_SIZE");
        cmd
    };
    let mut rows = Vec::new();
    println!(
        "{:<6} {:<8} {:<6} {:>10} {:>10} {:>8} {:>6} {:>12} {:>6}",
        "work", "method", "mode", "1 rank ms", "N ranks ms", "speedup", "eff", "bytes/step", "comm"
    );
    let jobs: Vec<(Workload, String, &str)> = a
        .workloads
        .iter()
        .flat_map(|w| {
            a.methods.iter().flat_map(move |m| {
                let gradient = mtl::losses::registry::info(m)
                    .is_ok_and(|i| i.level == mtl::losses::MethodLevel::Gradient);
                let modes: &[&str] = if gradient {
                    &["exact", "local"]
                } else {
                    &["exact"]
                };
                modes.iter().map(move |mode| (*w, m.clone(), *mode))
            })
        })
        .collect();
    for (w, method, mode) in &jobs {
        {
            let job = format!("{}:{method}:{mode}", w.name());
            let one = tmp.join(format!("{}-{method}-{mode}-1.json", w.name()));
            let status = child_cmd(&job, &one).status()?;
            if !status.success() {
                bail!("the one-process run of {job} failed ({status})");
            }
            let many = tmp.join(format!("{}-{method}-{mode}-n.json", w.name()));
            launch::run_local(a.nproc, launch::free_port()?, |_| child_cmd(&job, &many))?;
            let (one, many) = (read(&one)?, read(&many)?);
            let t1 = one["step_ms"].as_f64().unwrap_or(f64::NAN);
            let tn = many["step_ms"].as_f64().unwrap_or(f64::NAN);
            let comm = many["comm_ms"].as_f64().unwrap_or(f64::NAN);
            let bytes = many["bytes"].as_f64().unwrap_or(f64::NAN);
            let speedup = t1 / tn;
            let eff = speedup / a.nproc as f64;
            println!(
                "{:<6} {:<8} {:<6} {:>10.2} {:>10.2} {:>8.2} {:>6.2} {:>12.0} {:>5.0}%",
                w.name(),
                method,
                mode,
                t1,
                tn,
                speedup,
                eff,
                bytes,
                100.0 * comm / tn
            );
            rows.push(json!({
                "workload": w.name(), "method": method, "mode": mode, "nproc": a.nproc,
                "threads_per_rank": a.threads, "global_batch": w.batch(),
                "one_rank_ms": t1, "n_ranks_ms": tn, "speedup": speedup,
                "efficiency": eff, "bytes_per_step_per_rank": bytes,
                "comm_ms": comm, "comm_share": comm / tn,
            }));
        }
    }
    if let Some(dir) = a.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(
        &a.out,
        serde_json::to_string_pretty(&json!({ "scaling": rows }))?,
    )?;
    println!("wrote {}", a.out.display());
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
