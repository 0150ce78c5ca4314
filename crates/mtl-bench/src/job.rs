//! One measurement ("job"), run in its own process by default so its peak resident memory
//! (`VmHWM`) is its own: a method on a workload, a workload's floor, or the aggregators
//! alone at one K (W4).

use super::floor::{FloorKind, FloorModel};
use super::spec::{build_model, make_data, row_method_name, FixedBatch, Workload};
use super::timing::{proc_status_mib, round3, CpuSnapshot, Summary};
use mtl::core::TaskTarget;
use mtl::core::{params, OptimizerConfig};
use mtl::data::Batch;
use mtl::losses::bilevel::VirtualStep;
use mtl::losses::{by_name, list, Method, MethodLevel, StepContext};
use mtl::{backward_step, GradMode, StepData};
use serde_json::{json, Map, Value};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// The implementation name of our rows.
pub const IMPL: &str = "mtl";
/// The implementation name of the floor rows.
pub const FLOOR_IMPL: &str = "tch_floor";

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// A registered method's full training step on a workload.
    Method {
        /// The workload.
        workload: Workload,
        /// Our registry name.
        method: String,
        /// Parameter or representation gradients (gradient-level methods).
        mode: GradMode,
    },
    /// A workload's plain-`tch` floor.
    Floor {
        /// The workload.
        workload: Workload,
        /// Which floor.
        kind: FloorKind,
    },
    /// Every gradient-level method's `aggregate` alone on a random K×d Jacobian, with the
    /// floor of reading it once.
    Aggregators {
        /// K.
        k: usize,
    },
    /// W6's tokenization throughput: `TextTokenizer::encode_batch` on generated sentences,
    /// on one thread and on a rayon pool.
    Tokenize,
}

/// `param` or `rep`.
pub fn mode_name(mode: GradMode) -> &'static str {
    match mode {
        GradMode::Parameters => "param",
        GradMode::Representation => "rep",
    }
}

impl Job {
    /// The job as one command-line word: `method:mlp:pcgrad:param`, `floor:mlp:grad`,
    /// `agg:40`.
    pub fn encode(&self) -> String {
        match self {
            Job::Method {
                workload,
                method,
                mode,
            } => format!("method:{}:{method}:{}", workload.name(), mode_name(*mode)),
            Job::Floor { workload, kind } => format!("floor:{}:{}", workload.name(), kind.short()),
            Job::Aggregators { k } => format!("agg:{k}"),
            Job::Tokenize => "tok".into(),
        }
    }

    /// Parses [`Job::encode`].
    pub fn decode(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        match parts[..] {
            ["method", w, m, mode] => Ok(Job::Method {
                workload: Workload::parse(w)?,
                method: m.to_string(),
                mode: match mode {
                    "param" => GradMode::Parameters,
                    "rep" => GradMode::Representation,
                    o => return Err(format!("unknown grad mode `{o}`")),
                },
            }),
            ["floor", w, k] => Ok(Job::Floor {
                workload: Workload::parse(w)?,
                kind: FloorKind::parse(k).ok_or_else(|| format!("unknown floor `{k}`"))?,
            }),
            ["agg", k] => Ok(Job::Aggregators {
                k: k.parse().map_err(|_| format!("bad K `{k}`"))?,
            }),
            ["tok"] => Ok(Job::Tokenize),
            _ => Err(format!("bad job `{s}`")),
        }
    }

    /// A short label for the progress bar.
    pub fn label(&self) -> String {
        match self {
            Job::Method {
                workload,
                method,
                mode,
            } => format!("{}/{method} ({})", workload.name(), mode_name(*mode)),
            Job::Floor { workload, kind } => format!("{}/floor {}", workload.name(), kind.short()),
            Job::Aggregators { k } => format!("aggregators K={k}"),
            Job::Tokenize => "text/tokenization".into(),
        }
    }
}

/// Which Adam the `mtl` rows step with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StepOptimizer {
    /// `mtl_core::Optimizer`, as the `Trainer` uses (the real rows).
    #[default]
    Mtl,
    /// libtorch's C++ Adam (the floors' optimiser), with the gradients zeroed in place as
    /// `mtl_core::Optimizer::zero_grad` does: a diagnostic that isolates the optimiser's
    /// share of a method's overhead. Learnable weighting parameters (UW's) are not
    /// stepped. Rows carry `impl` = `mtl+libtorch_adam`.
    Libtorch,
}

/// The optimiser of a method row.
enum Adam {
    Mtl(mtl::core::Optimizer),
    Libtorch(tch::nn::Optimizer, Vec<Tensor>),
}

impl Adam {
    fn zero_grad(&mut self) {
        match self {
            Adam::Mtl(o) => o.zero_grad(),
            Adam::Libtorch(_, params) => params::zero_grads(params),
        }
    }
    fn step(&mut self) -> anyhow::Result<()> {
        match self {
            Adam::Mtl(o) => o.step()?,
            Adam::Libtorch(o, _) => o.step(),
        }
        Ok(())
    }
}

/// Settings shared by every job.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Timed steps.
    pub steps: usize,
    /// Untimed warm-up steps.
    pub warmup: usize,
    /// Fewest timed steps when the budget cuts a slow row.
    pub min_steps: usize,
    /// When warm-up predicts more than this many seconds of timed steps, time fewer.
    pub method_budget_s: f64,
    /// Intra-op threads (`tch::set_num_threads`).
    pub threads: i32,
    /// The data and method seed.
    pub seed: u64,
    /// Distinct fixed batches cycled through.
    pub n_batches: i64,
    /// The device.
    pub device: Device,
    /// The epoch passed to methods (2, as the harness pins LibMTL's, so GradNorm and DWA
    /// run their steady-state branches).
    pub epoch: usize,
    /// Foreign CPU fraction above which a measurement is repeated.
    pub contention_threshold: f64,
    /// How many times a contended measurement is repeated.
    pub contention_retries: usize,
    /// W4: the Jacobian's width d.
    pub agg_dim: i64,
    /// W4: timed calls per aggregator.
    pub agg_reps: usize,
    /// W4: the registry names to time (empty: every gradient-level method).
    pub agg_methods: Vec<String>,
    /// The optimiser of the method rows.
    pub optimizer: StepOptimizer,
    /// Time each method's floor in the same process, interleaved with its steps.
    pub pair_floor: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            steps: 100,
            warmup: 10,
            min_steps: 30,
            method_budget_s: 40.0,
            threads: 2,
            seed: 0,
            n_batches: 8,
            device: Device::Cpu,
            epoch: 2,
            contention_threshold: 0.10,
            contention_retries: 2,
            agg_dim: 1_000_000,
            agg_reps: 10,
            agg_methods: Vec::new(),
            optimizer: StepOptimizer::Mtl,
            pair_floor: true,
        }
    }
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// One timed measurement: the method's per-step times and, when paired, the floor's.
struct Measured {
    summary: Summary,
    floor: Option<Summary>,
    steps: usize,
    floor_steps: usize,
    reduced: bool,
    warmup_est_ms: f64,
    foreign: f64,
    own_cores: f64,
}

type StepFn<'a> = dyn FnMut(usize) -> anyhow::Result<()> + 'a;

fn timed(
    cfg: &RunConfig,
    i: &mut usize,
    step: &mut StepFn<'_>,
    n: usize,
    out: &mut Vec<f64>,
) -> anyhow::Result<()> {
    for _ in 0..n {
        let t0 = Instant::now();
        step(*i)?;
        sync(cfg.device);
        out.push(t0.elapsed().as_secs_f64());
        *i += 1;
    }
    Ok(())
}

/// The number of timed steps once warm-up has estimated a step's time: fewer when the
/// method budget would be exceeded (as the harness's `decide_steps`).
fn decide_steps(cfg: &RunConfig, warm: &[f64]) -> (usize, f64) {
    let mut tail: Vec<f64> = warm[warm.len() / 2..].to_vec();
    tail.sort_by(f64::total_cmp);
    let est = if tail.is_empty() {
        0.0
    } else {
        super::timing::percentile(&tail, 50.0)
    };
    let mut steps = cfg.steps;
    if est > 0.0 && est * steps as f64 > cfg.method_budget_s {
        steps = cfg.min_steps.max((cfg.method_budget_s / est) as usize);
    }
    (steps.min(cfg.steps).max(1), est)
}

/// The method's timed steps, and the floor's interleaved with them in up to four blocks
/// (`floor`: the floor's step function and its step counter), so both see the same
/// machine state; the floor gets half as many steps (at least 5).
fn measure(
    cfg: &RunConfig,
    i: &mut usize,
    step: &mut StepFn<'_>,
    mut floor: Option<(&mut StepFn<'_>, &mut usize)>,
    steps: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>, f64, f64)> {
    let blocks = if floor.is_some() {
        steps.clamp(1, 4)
    } else {
        1
    };
    let floor_steps = (steps / 2).max(5);
    let mut times = Vec::with_capacity(steps);
    let mut floor_times = Vec::with_capacity(floor_steps);
    let s0 = CpuSnapshot::now();
    for b in 0..blocks {
        let chunk = |total: usize| total * (b + 1) / blocks - total * b / blocks;
        timed(cfg, i, step, chunk(steps), &mut times)?;
        if let Some((f, fi)) = floor.as_mut() {
            timed(cfg, fi, *f, chunk(floor_steps), &mut floor_times)?;
        }
    }
    let (foreign, own) = s0.contention_since(&CpuSnapshot::now());
    Ok((times, floor_times, foreign, own))
}

/// Warm-up, then the timed steps (paired with the floor's when given), repeated while
/// other processes use more than the threshold of the machine; keeps the least
/// contended attempt (as the harness's `with_retries`).
fn measure_with_retries(
    cfg: &RunConfig,
    start: usize,
    step: &mut StepFn<'_>,
    mut floor: Option<&mut StepFn<'_>>,
) -> anyhow::Result<Map<String, Value>> {
    let mut i = start;
    let mut warm = Vec::with_capacity(cfg.warmup);
    timed(cfg, &mut i, step, cfg.warmup, &mut warm)?;
    let (steps, est) = decide_steps(cfg, &warm);
    let mut fi = 0;
    if let Some(f) = floor.as_mut() {
        timed(cfg, &mut fi, *f, (cfg.warmup / 2).max(2), &mut Vec::new())?;
    }
    let mut attempts: Vec<Measured> = Vec::new();
    loop {
        let (t, ft, foreign, own_cores) = measure(
            cfg,
            &mut i,
            step,
            floor.as_mut().map(|f| (&mut **f, &mut fi)),
            steps,
        )?;
        attempts.push(Measured {
            summary: Summary::of_seconds(&t),
            floor: (!ft.is_empty()).then(|| Summary::of_seconds(&ft)),
            steps: t.len(),
            floor_steps: ft.len(),
            reduced: steps < cfg.steps,
            warmup_est_ms: est * 1e3,
            foreign,
            own_cores,
        });
        let best = attempts
            .iter()
            .map(|a| a.foreign)
            .fold(f64::INFINITY, f64::min);
        if best <= cfg.contention_threshold || attempts.len() > cfg.contention_retries {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
    let best = attempts
        .iter()
        .min_by(|a, b| a.foreign.total_cmp(&b.foreign))
        .expect("one attempt");
    let mut row = best.summary.to_json();
    row.insert("steps".into(), json!(best.steps));
    row.insert("warmup".into(), json!(cfg.warmup));
    row.insert("steps_reduced".into(), json!(best.reduced));
    row.insert("warmup_est_ms".into(), json!(best.warmup_est_ms));
    if let Some(f) = best.floor {
        row.insert("floor_paired_ms".into(), json!(f.median_ms));
        row.insert("floor_paired_p10_ms".into(), json!(f.p10_ms));
        row.insert("floor_paired_p90_ms".into(), json!(f.p90_ms));
        row.insert("floor_paired_steps".into(), json!(best.floor_steps));
        row.insert(
            "floor_ratio".into(),
            json!(best.summary.median_ms / f.median_ms),
        );
    }
    row.insert("foreign_cpu_frac".into(), json!(round3(best.foreign)));
    row.insert(
        "self_cpu_cores".into(),
        json!((best.own_cores * 100.0).round() / 100.0),
    );
    row.insert(
        "contended".into(),
        json!(best.foreign > cfg.contention_threshold),
    );
    if attempts.len() > 1 {
        let a: Vec<Value> = attempts
            .iter()
            .map(|a| json!({"median_ms": a.summary.median_ms, "foreign_cpu_frac": round3(a.foreign)}))
            .collect();
        row.insert("attempts".into(), Value::Array(a));
    }
    Ok(row)
}

fn memory_keys(row: &mut Map<String, Value>, rss_after_init: Option<f64>) {
    row.insert("peak_rss_mib".into(), json!(proc_status_mib("VmHWM")));
    row.insert("rss_after_init_mib".into(), json!(rss_after_init));
}

/// Sets the thread count and the device's deterministic settings for a job.
pub fn init_torch(cfg: &RunConfig) {
    tch::set_num_threads(cfg.threads);
}

/// Runs a job in this process and returns its rows (one for a method or a floor, one
/// per method plus the floor for W4).
pub fn run(job: &Job, cfg: &RunConfig) -> Vec<Value> {
    init_torch(cfg);
    let t0 = Instant::now();
    let mut base = Map::new();
    let result = match job {
        Job::Method {
            workload,
            method,
            mode,
        } => {
            let imp = match cfg.optimizer {
                StepOptimizer::Mtl => IMPL,
                StepOptimizer::Libtorch => "mtl+libtorch_adam",
            };
            base.insert("impl".into(), json!(imp));
            base.insert("workload".into(), json!(workload.name()));
            base.insert("method".into(), json!(row_method_name(method)));
            base.insert("mtl_method".into(), json!(method));
            base.insert("grad_mode".into(), json!(mode_name(*mode)));
            base.insert("num_tasks".into(), json!(workload.num_tasks()));
            base.insert("arch".into(), json!(workload.arch()));
            if let Some(info) = list().into_iter().find(|i| i.name == method.as_str()) {
                base.insert("level".into(), json!(info.level));
                base.insert("mtl_defaults".into(), json!(info.defaults));
            }
            run_method(*workload, method, *mode, cfg).map(|r| vec![r])
        }
        Job::Floor { workload, kind } => {
            base.insert("impl".into(), json!(FLOOR_IMPL));
            base.insert("workload".into(), json!(workload.name()));
            base.insert("method".into(), json!(kind.row_method()));
            base.insert("floor".into(), json!(kind.short()));
            base.insert("num_tasks".into(), json!(workload.num_tasks()));
            base.insert("arch".into(), json!(workload.arch()));
            base.insert(
                "note".into(),
                json!("plain tch: tch::nn layers, libtorch losses, libtorch's C++ Adam; no mtl"),
            );
            run_floor(*workload, *kind, cfg).map(|r| vec![r])
        }
        Job::Aggregators { k } => run_aggregators(*k, cfg),
        Job::Tokenize => super::tokenize::run(cfg),
    };
    let wall = t0.elapsed().as_secs_f64();
    match result {
        Ok(rows) => rows
            .into_iter()
            .map(|r| {
                let mut row = base.clone();
                row.extend(r.as_object().cloned().unwrap_or_default());
                row.entry("status").or_insert(json!("ok"));
                row.entry("wall_s").or_insert(json!(wall));
                row.insert("device".into(), json!(format!("{:?}", cfg.device)));
                Value::Object(row)
            })
            .collect(),
        Err(e) => {
            let mut row = base;
            row.insert("status".into(), json!("failed"));
            row.insert("error".into(), json!(format!("{e:#}")));
            row.insert("wall_s".into(), json!(wall));
            if let Job::Aggregators { k } = job {
                row.insert("workload".into(), json!(format!("agg_k{k}")));
                row.insert("method".into(), json!("*"));
            }
            if let Job::Tokenize = job {
                row.insert("impl".into(), json!(IMPL));
                row.insert("workload".into(), json!(super::tokenize::TOKENIZE_WORKLOAD));
                row.insert("method".into(), json!("*"));
            }
            vec![Value::Object(row)]
        }
    }
}

fn cycle(data: &[FixedBatch], i: usize) -> &FixedBatch {
    &data[i % data.len()]
}

/// A fixed batch as the trainer's step data (sharing its tensors).
fn step_data(b: &FixedBatch) -> StepData {
    StepData::Joint(Batch {
        x: b.x.shallow_clone(),
        targets: b
            .targets
            .iter()
            .map(|t| TaskTarget {
                values: t.values.shallow_clone(),
                mask: t.mask.as_ref().map(Tensor::shallow_clone),
            })
            .collect(),
        rows: Vec::new(),
    })
}

fn run_method(w: Workload, name: &str, mode: GradMode, cfg: &RunConfig) -> anyhow::Result<Value> {
    let rss0 = proc_status_mib("VmRSS");
    let data = make_data(w, cfg.seed, cfg.n_batches, cfg.device);
    tch::manual_seed(cfg.seed as i64);
    let model = build_model(w, cfg.device)?;
    let mut method = by_name(name, w.num_tasks(), cfg.seed)?;
    let groups = model.param_groups()?;
    let mut trainable = groups.all_tensors();
    trainable.extend(method.parameters());
    params::ensure_grads(&trainable)?;
    let mut opt = match cfg.optimizer {
        StepOptimizer::Mtl => Adam::Mtl(OptimizerConfig::adam(w.lr()).build(trainable)?),
        StepOptimizer::Libtorch => Adam::Libtorch(
            tch::nn::OptimizerConfig::build(tch::nn::Adam::default(), model.var_store(), w.lr())?,
            trainable,
        ),
    };
    let epoch = cfg.epoch;
    let mut last = None;
    let mut step = |i: usize| -> anyhow::Result<()> {
        let b = cycle(&data, i);
        if method.meta().is_some() {
            // Auto-λ's meta step, timed with the step: the next fixed batch stands in
            // for the validation batch (the reference draws it from the training set).
            let parameters = groups.all_tensors();
            mtl::meta_step(
                &model,
                &mut method,
                &parameters,
                &[],
                VirtualStep::sgd(w.lr()),
                &step_data(b),
                &step_data(cycle(&data, i + 1)),
                i as u64,
                cfg.seed,
            )?;
        }
        opt.zero_grad();
        let out = backward_step(
            &model,
            &groups,
            &mut method,
            mode,
            &b.x,
            &b.targets,
            i as u64,
            epoch,
        )?;
        opt.step()?;
        last = Some(out);
        Ok(())
    };
    // The peak memory is the method's own: read after two untimed steps, before the
    // paired floor model exists.
    const PROBE: usize = 2;
    for i in 0..PROBE {
        step(i)?;
    }
    let peak = proc_status_mib("VmHWM");
    let mut floor = if cfg.pair_floor {
        let kind = match (&method_level(name), mode) {
            (MethodLevel::Loss, _) => FloorKind::Loss,
            (MethodLevel::Gradient, GradMode::Parameters) => FloorKind::Grad,
            (MethodLevel::Gradient, GradMode::Representation) => FloorKind::Rep,
        };
        Some((FloorModel::new(w, cfg.device)?, kind))
    } else {
        None
    };
    let mut row = {
        let mut floor_step = floor.as_mut().map(|(fm, kind)| {
            let kind = *kind;
            let data = &data;
            move |i: usize| -> anyhow::Result<()> {
                let _ = fm.step(kind, cycle(data, i))?;
                Ok(())
            }
        });
        measure_with_retries(
            cfg,
            PROBE,
            &mut step,
            floor_step.as_mut().map(|f| f as &mut StepFn<'_>),
        )?
    };
    if let Some((_, kind)) = &floor {
        row.insert("floor_paired".into(), json!(kind.row_method()));
    }
    if let Some(out) = last {
        row.insert("loss_last".into(), json!(out.losses));
        if !out.weights.is_empty() {
            row.insert("weights_last".into(), json!(out.weights));
        }
    }
    row.insert("peak_rss_mib".into(), json!(peak));
    row.insert("rss_after_init_mib".into(), json!(rss0));
    Ok(Value::Object(row))
}

fn method_level(name: &str) -> MethodLevel {
    list()
        .into_iter()
        .find(|i| i.name == name)
        .map_or(MethodLevel::Loss, |i| i.level)
}

fn run_floor(w: Workload, kind: FloorKind, cfg: &RunConfig) -> anyhow::Result<Value> {
    let rss0 = proc_status_mib("VmRSS");
    let data = make_data(w, cfg.seed, cfg.n_batches, cfg.device);
    tch::manual_seed(cfg.seed as i64);
    let mut model = FloorModel::new(w, cfg.device)?;
    let mut last = None;
    let mut step = |i: usize| -> anyhow::Result<()> {
        last = Some(model.step(kind, cycle(&data, i))?);
        Ok(())
    };
    let mut row = measure_with_retries(cfg, 0, &mut step, None)?;
    if let Some(l) = last {
        row.insert("loss_sum_last".into(), json!(l.double_value(&[])));
    }
    memory_keys(&mut row, rss0);
    Ok(Value::Object(row))
}

/// The gradient-level methods W4 times.
pub fn aggregator_names(cfg: &RunConfig) -> Vec<String> {
    list()
        .into_iter()
        .filter(|i| i.level == MethodLevel::Gradient)
        .map(|i| i.name.to_string())
        .filter(|n| cfg.agg_methods.is_empty() || cfg.agg_methods.contains(n))
        .collect()
}

/// W4: seconds of timed calls per aggregator before it stops short of `agg_reps`.
const AGG_BUDGET_S: f64 = 1.5;

/// W4 at one K: J ~ N(0, 1) of `[K, d]` f32; the floors are `J.sum()` (J read once),
/// `J.sum(0)` (J read, d values written: what any method producing a d-vector does),
/// `J Jᵀ` (the K×K Gram matrix, what the Gram-path methods cannot avoid), d uniform
/// draws (GradDrop's) and a K×d running average (DB-MTL's and MoCo's state); each
/// aggregator gets `agg_reps` timed calls after two untimed ones, with fresh state. Each
/// method row's `floor_ratio` is to reading J; the Gram row lets a reader divide by the
/// Gram instead for the methods that need it.
fn run_aggregators(k: usize, cfg: &RunConfig) -> anyhow::Result<Vec<Value>> {
    let d = cfg.agg_dim;
    tch::manual_seed(cfg.seed as i64);
    let jac = Tensor::randn([k as i64, d], (Kind::Float, cfg.device));
    let losses = vec![1.0; k];
    let time = |f: &mut dyn FnMut(u64) -> anyhow::Result<()>| -> anyhow::Result<Summary> {
        for i in 0..2 {
            f(i)?;
        }
        sync(cfg.device);
        let mut t = Vec::with_capacity(cfg.agg_reps);
        let start = Instant::now();
        for i in 0..cfg.agg_reps {
            // A slow aggregator stops after the budget, with at least 3 timed calls.
            if t.len() >= 3 && start.elapsed().as_secs_f64() > AGG_BUDGET_S {
                break;
            }
            let t0 = Instant::now();
            f(2 + i as u64)?;
            sync(cfg.device);
            t.push(t0.elapsed().as_secs_f64());
        }
        Ok(Summary::of_seconds(&t))
    };
    let s0 = CpuSnapshot::now();
    let floor = time(&mut |_| {
        let s = jac.sum(Kind::Float);
        drop(std::hint::black_box(s));
        Ok(())
    })?;
    let gram = time(&mut |_| {
        let g = jac.matmul(&jac.tr());
        drop(std::hint::black_box(g));
        Ok(())
    })?;
    // What a method producing a d-vector from J cannot avoid: read J, write d values.
    let columns = time(&mut |_| {
        let s = jac.sum_dim_intlist([0i64].as_slice(), false, Kind::Float);
        drop(std::hint::black_box(s));
        Ok(())
    })?;
    // GradDrop draws one uniform number per coordinate.
    let draws = time(&mut |_| {
        let u = Tensor::rand([d], (Kind::Float, cfg.device));
        drop(std::hint::black_box(u));
        Ok(())
    })?;
    // DB-MTL and MoCo keep a K×d running average of J.
    let mut ema_buffer = jac.zeros_like();
    let ema = time(&mut |_| {
        let _ = ema_buffer.f_lerp_(&jac, 0.1)?;
        Ok(())
    })?;
    let workload = format!("agg_k{k}");
    let mut rows = Vec::new();
    for (summary, method) in [
        (&floor, "read J once (sum)"),
        (&columns, "column sums J.sum(0)"),
        (&gram, "Gram J J^T"),
        (&draws, "draw d uniforms"),
        (&ema, "EMA of a K x d buffer"),
    ] {
        let mut floor_row = summary.to_json();
        floor_row.insert("impl".into(), json!(FLOOR_IMPL));
        floor_row.insert("workload".into(), json!(workload));
        floor_row.insert("method".into(), json!(method));
        floor_row.insert("num_tasks".into(), json!(k));
        floor_row.insert("dim".into(), json!(d));
        floor_row.insert("steps".into(), json!(summary.n));
        rows.push(Value::Object(floor_row));
    }
    for name in aggregator_names(cfg) {
        // Methods with a minimum task count (Krum, the trimmed mean) have no row below
        // it; the table shows `-` there.
        if by_name(&name, k, cfg.seed).is_err() {
            continue;
        }
        let mut row = Map::new();
        row.insert("impl".into(), json!(IMPL));
        row.insert("workload".into(), json!(workload));
        row.insert("method".into(), json!(row_method_name(&name)));
        row.insert("mtl_method".into(), json!(name));
        row.insert("num_tasks".into(), json!(k));
        row.insert("dim".into(), json!(d));
        let t0 = Instant::now();
        let r = (|| -> anyhow::Result<Summary> {
            let Method::Aggregator(mut a) = by_name(&name, k, cfg.seed)? else {
                anyhow::bail!("`{name}` is not an aggregator");
            };
            time(&mut |step| {
                let ctx = StepContext {
                    step,
                    epoch: cfg.epoch,
                    losses: &losses,
                };
                let out = a.aggregate(&jac, &ctx)?;
                drop(std::hint::black_box(out.gradient));
                Ok(())
            })
        })();
        match r {
            Ok(s) => {
                row.extend(s.to_json());
                row.insert("status".into(), json!("ok"));
                row.insert("steps".into(), json!(s.n));
                row.insert("floor_ms".into(), json!(floor.median_ms));
                row.insert("floor_ratio".into(), json!(s.median_ms / floor.median_ms));
            }
            Err(e) => {
                row.insert("status".into(), json!("failed"));
                row.insert("error".into(), json!(format!("{e:#}")));
            }
        }
        row.insert("wall_s".into(), json!(t0.elapsed().as_secs_f64()));
        rows.push(Value::Object(row));
    }
    let (foreign, _) = s0.contention_since(&CpuSnapshot::now());
    for r in &mut rows {
        if let Value::Object(m) = r {
            m.insert("foreign_cpu_frac".into(), json!(round3(foreign)));
            m.insert(
                "contended".into(),
                json!(foreign > cfg.contention_threshold),
            );
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_round_trip() {
        for j in [
            Job::Method {
                workload: Workload::Mmoe,
                method: "pcgrad".into(),
                mode: GradMode::Representation,
            },
            Job::Floor {
                workload: Workload::Lenet,
                kind: FloorKind::Grad,
            },
            Job::Aggregators { k: 40 },
            Job::Tokenize,
        ] {
            assert_eq!(Job::decode(&j.encode()).unwrap(), j);
        }
        assert!(Job::decode("method:mlp:ew").is_err());
    }

    #[test]
    fn a_tiny_run_of_each_job_kind() {
        let cfg = RunConfig {
            steps: 2,
            warmup: 1,
            min_steps: 1,
            agg_dim: 1000,
            agg_reps: 2,
            agg_methods: vec!["mean".into(), "upgrad".into()],
            ..RunConfig::default()
        };
        let rows = run(
            &Job::Method {
                workload: Workload::Mlp,
                method: "pcgrad".into(),
                mode: GradMode::Parameters,
            },
            &cfg,
        );
        assert_eq!(rows[0]["status"], "ok", "{}", rows[0]);
        assert_eq!(rows[0]["method"], "PCGrad");
        assert!(rows[0]["peak_rss_mib"].as_f64().unwrap() > 0.0);
        let rows = run(
            &Job::Floor {
                workload: Workload::Mmoe,
                kind: FloorKind::Rep,
            },
            &cfg,
        );
        assert_eq!(rows[0]["status"], "ok", "{}", rows[0]);
        // W5: a loss-level row, a rep-grad row and the rep floor, each paired or alone.
        for (method, mode) in [
            ("ew", GradMode::Parameters),
            ("pcgrad", GradMode::Representation),
        ] {
            let rows = run(
                &Job::Method {
                    workload: Workload::Dense,
                    method: method.into(),
                    mode,
                },
                &cfg,
            );
            assert_eq!(rows[0]["status"], "ok", "{}", rows[0]);
            assert!(rows[0]["floor_ratio"].as_f64().unwrap() > 0.0);
            assert_eq!(rows[0]["loss_last"].as_array().unwrap().len(), 3);
        }
        let rows = run(
            &Job::Floor {
                workload: Workload::Dense,
                kind: FloorKind::Rep,
            },
            &cfg,
        );
        assert_eq!(rows[0]["status"], "ok", "{}", rows[0]);
        let rows = run(&Job::Aggregators { k: 3 }, &cfg);
        // The five floors (J read once, column sums, the Gram, draws, running average),
        // then the two methods.
        assert_eq!(rows.len(), 7);
        assert!(rows.iter().all(|r| r["status"] != "failed"), "{rows:?}");
    }
}
