//! Exactness of data-parallel training: two Gloo ranks, each training on its half of
//! every batch, end with the weights one process reaches training on the whole batch,
//! for loss-level and gradient-level methods, stateful and learnable ones, in
//! parameter and rep-grad mode.

use mtl_core::Collective;
use mtl_dist::{launch, DistConfig, ProcessGroup};
use mtl_losses::{by_name, Backward, DataParallelMode, Wrt};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

const STEPS: usize = 20;
const BATCH: i64 = 16;
/// Run in local mode too: a linear aggregator and a nonlinear one.
const LOCAL: [&str; 2] = ["mean", "upgrad"];
const METHODS: [&str; 7] = ["ew", "uw", "pcgrad", "mgda", "upgrad", "nash_mtl", "famo"];

/// A shared tanh layer and two linear heads, as plain tensors.
struct Model {
    shared: Vec<Tensor>,
    heads: Vec<Vec<Tensor>>,
}

impl Model {
    fn new(kind: Kind) -> Model {
        let _rng = mtl_core::torch_rng_lock();
        tch::manual_seed(7);
        let p = |shape: &[i64]| {
            (Tensor::randn(shape, (kind, Device::Cpu)) * 0.5).set_requires_grad(true)
        };
        Model {
            shared: vec![p(&[5, 8]), p(&[8])],
            heads: vec![vec![p(&[8, 1]), p(&[1])], vec![p(&[8, 3]), p(&[3])]],
        }
    }

    fn all(&self) -> Vec<Tensor> {
        self.shared
            .iter()
            .chain(self.heads.iter().flatten())
            .map(Tensor::shallow_clone)
            .collect()
    }
}

/// Step s's whole batch: features, a regression target and a 3-class target.
fn batch(s: usize, kind: Kind) -> (Tensor, Tensor, Tensor) {
    let _rng = mtl_core::torch_rng_lock();
    tch::manual_seed(100 + s as i64);
    let x = Tensor::randn([BATCH, 5], (kind, Device::Cpu));
    let y = Tensor::randn([BATCH, 1], (kind, Device::Cpu));
    let c = Tensor::randint(3, [BATCH], (Kind::Int64, Device::Cpu));
    (x, y, c)
}

/// Trains 20 steps with `method` on rows `rows` of each batch (all of them for one
/// process); returns every parameter flattened.
fn train(
    method: &str,
    rep: bool,
    masked: bool,
    kind: Kind,
    group: Option<(&dyn Collective, DataParallelMode)>,
) -> Tensor {
    let model = Model::new(kind);
    let mut m = by_name(method, 2, 3).unwrap();
    let (lo, n) = match group {
        Some((g, _)) => {
            let n = BATCH / g.world_size() as i64;
            (g.rank() as i64 * n, n)
        }
        None => (0, BATCH),
    };
    let mut learnable = model.all();
    learnable.extend(m.parameters());
    for s in 0..STEPS {
        let (x, y, c) = batch(s, kind);
        let (x, y, c) = (x.narrow(0, lo, n), y.narrow(0, lo, n), c.narrow(0, lo, n));
        let z = (x.matmul(&model.shared[0]) + &model.shared[1]).tanh();
        let out0 = z.matmul(&model.heads[0][0]) + &model.heads[0][1];
        let out1 = z.matmul(&model.heads[1][0]) + &model.heads[1][1];
        // Masked: the regression target is missing on the second half of every batch,
        // which is all of rank 1's block.
        let labelled = Tensor::arange(BATCH, (Kind::Int64, Device::Cpu))
            .lt(if masked { BATCH / 2 } else { BATCH })
            .narrow(0, lo, n);
        let count = labelled.sum(Kind::Double).double_value(&[]);
        let loss0 = if count > 0.0 {
            ((out0 - &y).square().squeeze_dim(-1) * labelled.to_kind(kind)).sum(kind) / count
        } else {
            (out0 * 0.0).sum(kind)
        };
        let losses = [loss0, out1.cross_entropy_for_logits(&c).to_kind(kind)];
        let counts = [count, n as f64];
        for p in &learnable {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        let wrt = if rep {
            Wrt::Representation {
                features: &z,
                parameters: &model.shared,
            }
        } else {
            Wrt::Parameters(&model.shared)
        };
        let mut step = Backward::new(&losses, wrt)
            .task_parameters(&model.heads)
            .counts(&counts)
            .at(s as u64, 0);
        if let Some((g, mode)) = group {
            step = step.collective(g).data_parallel_mode(mode);
        }
        step.run(&mut m).unwrap();
        tch::no_grad(|| {
            for p in &learnable {
                let g = p.grad();
                if g.defined() {
                    let mut p = p.shallow_clone();
                    let _ = p.f_sub_(&(g * 0.1)).unwrap();
                }
            }
        });
    }
    Tensor::cat(
        &model
            .all()
            .iter()
            .map(|p| p.detach().reshape([-1]))
            .collect::<Vec<_>>(),
        0,
    )
}

/// (method, rep-grad, masked, dtype).
type Case = (String, bool, bool, Kind);

fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = METHODS
        .iter()
        .flat_map(|m| {
            [
                (m.to_string(), false, false, Kind::Float),
                (m.to_string(), false, false, Kind::Double),
            ]
        })
        .collect();
    cases.push(("upgrad".into(), true, false, Kind::Double));
    cases.push(("mgda".into(), true, false, Kind::Float));
    // A rank whose block has no label of a task: its share is 0, never a hang.
    for m in ["ew", "uw", "upgrad", "mgda"] {
        cases.push((m.into(), false, true, Kind::Double));
    }
    cases
}

fn file(dir: &Path, case: usize, rank: usize) -> PathBuf {
    dir.join(format!("case{case}-rank{rank}.pt"))
}

#[test]
fn two_ranks_train_what_one_process_trains_on_the_whole_batch() {
    if launch::is_test_rank() {
        let config = DistConfig::from_env().unwrap().unwrap();
        let pg = ProcessGroup::init(&config).unwrap();
        let dir = PathBuf::from(std::env::var("MTL_DIST_OUT").unwrap());
        for (i, (method, rep, masked, kind)) in cases().into_iter().enumerate() {
            let w = train(
                &method,
                rep,
                masked,
                kind,
                Some((&pg, DataParallelMode::Exact)),
            );
            w.save(file(&dir, i, pg.rank())).unwrap();
        }
        for (i, method) in LOCAL.iter().enumerate() {
            let w = train(
                method,
                false,
                false,
                Kind::Double,
                Some((&pg, DataParallelMode::Local)),
            );
            w.save(dir.join(format!("local{i}-rank{}.pt", pg.rank())))
                .unwrap();
        }
        return;
    }
    let dir = std::env::temp_dir().join(format!("mtl-dist-exact-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    launch::run_test_ranks(
        "two_ranks_train_what_one_process_trains_on_the_whole_batch",
        2,
        &[("MTL_DIST_OUT", dir.as_os_str())],
    )
    .unwrap();
    let (mut report, mut failures) = (Vec::new(), Vec::<String>::new());
    for (i, (method, rep, masked, kind)) in cases().into_iter().enumerate() {
        let single = train(&method, rep, masked, kind, None);
        let r0 = Tensor::load(file(&dir, i, 0)).unwrap();
        let r1 = Tensor::load(file(&dir, i, 1)).unwrap();
        assert!(r0.equal(&r1), "{method}: the ranks hold different weights");
        let diff = (&r0 - &single).abs().max().double_value(&[]);
        let moved = (&single - train_zero(kind)).abs().max().double_value(&[]);
        // UW and FAMO keep their learnable state in f32 whatever the losses' dtype,
        // so their f64 runs are exact to f32's rounding of that state.
        let tol = match (kind, method.as_str()) {
            (Kind::Float, _) => 1e-6,
            (_, "uw" | "famo") => 1e-8,
            _ => 1e-12,
        };
        report.push(format!(
            "{method} rep={rep} masked={masked} {kind:?}: |Δ| {diff:.2e} (moved {moved:.2e})"
        ));
        assert!(moved > 1e-3, "{method}: training did not move the weights");
        if diff > tol {
            failures.push(format!(
                "{method} rep={rep} masked={masked} {kind:?}: differ by {diff:e}"
            ));
        }
    }
    // Local mode: the ranks still agree (their d-vectors are averaged); a linear
    // aggregator (the mean of the rows) is exact in it, a nonlinear one is not.
    for (i, method) in LOCAL.iter().enumerate() {
        let r0 = Tensor::load(dir.join(format!("local{i}-rank0.pt"))).unwrap();
        let r1 = Tensor::load(dir.join(format!("local{i}-rank1.pt"))).unwrap();
        assert!(
            r0.equal(&r1),
            "local {method}: the ranks hold different weights"
        );
        let single = train(method, false, false, Kind::Double, None);
        let diff = (&r0 - &single).abs().max().double_value(&[]);
        report.push(format!("{method} local Double: |Δ| {diff:.2e}"));
        match *method {
            "mean" => assert!(diff < 1e-12, "local mean differs by {diff:e}"),
            _ => assert!(
                diff > 1e-9,
                "local {method} should differ from exact: {diff:e}"
            ),
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(failures.is_empty(), "2 ranks vs 1 process: {failures:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The initial weights, flattened.
fn train_zero(kind: Kind) -> Tensor {
    let model = Model::new(kind);
    Tensor::cat(
        &model
            .all()
            .iter()
            .map(|p| p.detach().reshape([-1]))
            .collect::<Vec<_>>(),
        0,
    )
}

/// Ranks whose methods drew different randomness (RLW seeded per rank) are stopped at
/// the first step, naming the rank, instead of training different models.
#[test]
fn ranks_whose_methods_drift_apart_are_stopped() {
    if launch::is_test_rank() {
        let config = DistConfig::from_env().unwrap().unwrap();
        let pg = ProcessGroup::init(&config).unwrap();
        let model = Model::new(Kind::Float);
        let mut method = by_name("rlw", 2, pg.rank() as u64).unwrap();
        let (x, y, c) = batch(0, Kind::Float);
        let n = BATCH / 2;
        let (x, y, c) = (
            x.narrow(0, pg.rank() as i64 * n, n),
            y.narrow(0, pg.rank() as i64 * n, n),
            c.narrow(0, pg.rank() as i64 * n, n),
        );
        let z = (x.matmul(&model.shared[0]) + &model.shared[1]).tanh();
        let losses = [
            (z.matmul(&model.heads[0][0]) + &model.heads[0][1] - y)
                .square()
                .mean(Kind::Float),
            (z.matmul(&model.heads[1][0]) + &model.heads[1][1]).cross_entropy_for_logits(&c),
        ];
        let err = Backward::new(&losses, Wrt::Parameters(&model.shared))
            .task_parameters(&model.heads)
            .collective(&pg)
            .run(&mut method)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`rlw` chose other task weights on rank 1"),
            "{err}"
        );
        return;
    }
    launch::run_test_ranks("ranks_whose_methods_drift_apart_are_stopped", 2, &[]).unwrap();
}
