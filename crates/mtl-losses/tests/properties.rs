//! Property tests of the Gram-path aggregators on random Jacobians: MGDA's exact
//! solution satisfies the min-norm optimality conditions, UPGrad and DualProj do not
//! conflict with any task (up to their documented regularisation), CAGrad with c = 0 is
//! the mean, and Mean/UPGrad/MGDA do not depend on the task order. Also: every
//! registered gradient-level method builds by name and aggregates.

mod common;

use common::{ctx, dot, rows_of, to_vec};
use mtl_losses::methods::{CaGrad, CaGradRescale, DualProj, Mean, Mgda, UpGrad};
use mtl_losses::{by_name, list, Aggregator, Method, MethodLevel, StepContext};
use proptest::prelude::*;
use tch::Tensor;

/// A K×d matrix, kept as plain data so proptest can clone and shrink it.
#[derive(Debug, Clone)]
struct Mat {
    k: usize,
    d: usize,
    v: Vec<f64>,
}

impl Mat {
    fn t(&self) -> Tensor {
        Tensor::from_slice(&self.v).view([self.k as i64, self.d as i64])
    }
}

/// K rows of dimension d with entries in [-1, 1].
fn jacobian(max_k: usize, max_d: usize) -> impl Strategy<Value = Mat> {
    (1..=max_k, 1..=max_d).prop_flat_map(|(k, d)| {
        prop::collection::vec(-1.0f64..1.0, k * d).prop_map(move |v| Mat { k, d, v })
    })
}

/// K rows with norms in [0.5, 2] (comparable), in general position w.h.p.
fn comparable_rows(max_k: usize, max_d: usize) -> impl Strategy<Value = Mat> {
    (1..=max_k, 1..=max_d).prop_flat_map(|(k, d)| {
        (
            prop::collection::vec(-1.0f64..1.0, k * d),
            prop::collection::vec(0.5f64..2.0, k),
        )
            .prop_filter_map("non-zero rows", move |(v, norms)| {
                let mut out = Vec::with_capacity(k * d);
                for (r, n) in v.chunks(d).zip(&norms) {
                    let len = dot(r, r).sqrt();
                    if len < 1e-3 {
                        return None;
                    }
                    out.extend(r.iter().map(|x| x / len * n));
                }
                Some(Mat { k, d, v: out })
            })
    })
}

fn max_sq_norm(rows: &[Vec<f64>]) -> f64 {
    rows.iter().fold(0.0f64, |m, r| m.max(dot(r, r)))
}

fn permuted(j: &Tensor, perm: &[usize]) -> Tensor {
    let idx: Vec<i64> = perm.iter().map(|&p| p as i64).collect();
    j.index_select(0, &Tensor::from_slice(&idx))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// KKT of min ‖Jᵀw‖² on the simplex: ⟨p, gᵢ⟩ ≥ ‖p‖² for every row, with equality
    /// where wᵢ > 0 (p the output).
    #[test]
    fn mgda_exact_is_the_min_norm_point(m in jacobian(8, 6)) {
        let j = m.t();
        let out = Mgda::new().aggregate(&j, &ctx()).unwrap();
        let p = to_vec(&out.gradient);
        let w = out.weights.unwrap();
        let rows = rows_of(&j);
        let tol = 1e-9 * max_sq_norm(&rows).max(1e-300);
        let p2 = dot(&p, &p);
        prop_assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        for (i, r) in rows.iter().enumerate() {
            prop_assert!(w[i] >= 0.0);
            let ip = dot(&p, r);
            prop_assert!(ip >= p2 - tol, "row {}: {} < {}", i, ip, p2);
            if w[i] > 1e-6 {
                prop_assert!((ip - p2).abs() <= tol, "support row {}: {} vs {}", i, ip, p2);
            }
        }
    }

    /// UPGrad and DualProj solve their QPs on G/tr(G) + εI, so the guarantee is
    /// ⟨out, gᵢ⟩ ≥ −ε·tr(G)·wᵢ; with ε = 0 the output never conflicts.
    #[test]
    fn upgrad_and_dualproj_do_not_conflict(m in comparable_rows(6, 8)) {
        let j = m.t();
        let rows = rows_of(&j);
        let trace: f64 = rows.iter().map(|r| dot(r, r)).sum();
        let aggs: Vec<(Box<dyn Aggregator>, f64)> = vec![
            (Box::new(UpGrad::new()), 1e-4),
            (Box::new(DualProj::new()), 1e-4),
            (Box::new(UpGrad::new().with_eps(1e-4, 0.0).unwrap()), 0.0),
            (Box::new(DualProj::new().with_eps(1e-4, 0.0).unwrap()), 0.0),
        ];
        for (mut agg, reg) in aggs {
            let out = agg.aggregate(&j, &ctx()).unwrap();
            let g = to_vec(&out.gradient);
            let w = out.weights.unwrap();
            for (i, r) in rows.iter().enumerate() {
                let bound = -reg * trace * w[i].abs() - 1e-10 * trace;
                prop_assert!(dot(&g, r) >= bound, "{} row {}: {} < {}", agg.name(), i, dot(&g, r), bound);
            }
        }
    }

    #[test]
    fn cagrad_with_c_zero_is_the_mean(m in comparable_rows(6, 8)) {
        let j = m.t();
        let mean = to_vec(&Mean::new().aggregate(&j, &ctx()).unwrap().gradient);
        let scale = rows_of(&j).iter().fold(0.0f64, |m, r| m.max(dot(r, r).sqrt()));
        for mut agg in [
            CaGrad::torchjd(0.0).unwrap(),
            CaGrad::libmtl(0.0, CaGradRescale::OnePlusCSquared).unwrap(),
        ] {
            let g = to_vec(&agg.aggregate(&j, &ctx()).unwrap().gradient);
            for (a, b) in g.iter().zip(&mean) {
                // LibMTL's 1e-8 smoothing leaves c′ = 1e-8 at c = 0.
                prop_assert!((a - b).abs() <= 1e-7 * scale, "{:?} vs {:?}", g, mean);
            }
        }
    }

    #[test]
    fn order_of_tasks_does_not_matter(
        (m, perm) in jacobian(6, 6).prop_flat_map(|m| {
            let k = m.k;
            (Just(m), Just((0..k).collect::<Vec<usize>>()).prop_shuffle())
        })
    ) {
        let j = m.t();
        let jp = permuted(&j, &perm);
        let scale = rows_of(&j).iter().fold(0.0f64, |m, r| m.max(dot(r, r).sqrt())).max(1e-300);
        let makers: Vec<fn() -> Box<dyn Aggregator>> = vec![
            || Box::new(Mean::new()),
            || Box::new(UpGrad::new()),
            || Box::new(Mgda::new()),
        ];
        for make in makers {
            let a = to_vec(&make().aggregate(&j, &ctx()).unwrap().gradient);
            let b = to_vec(&make().aggregate(&jp, &ctx()).unwrap().gradient);
            for (x, y) in a.iter().zip(&b) {
                prop_assert!((x - y).abs() <= 1e-9 * scale, "{:?} vs {:?}", a, b);
            }
        }
    }
}

/// The aggregators of this suite, by registry name.
const SUITE: &[&str] = &[
    "mean",
    "sum",
    "constant",
    "upgrad",
    "dualproj",
    "mgda",
    "imtl_g",
    "cagrad",
    "aligned_mtl",
    "krum",
    "trimmed_mean",
    "config",
    "graddrop",
    "random",
];

/// Every aggregator of the suite is registered as gradient-level with its metadata,
/// builds for K = 4 by name and returns a finite d-vector; another K is refused.
#[test]
fn registered_aggregators_build_and_run() {
    let j = common::sample(4, 9, 21);
    let losses = [1.0, 2.0, 0.5, 3.0];
    let ctx = StepContext {
        step: 0,
        epoch: 0,
        losses: &losses,
    };
    let infos = list();
    for name in SUITE {
        let info = infos
            .iter()
            .find(|i| i.name == *name)
            .unwrap_or_else(|| panic!("{name} not registered"));
        assert_eq!(info.level, MethodLevel::Gradient);
        assert!(
            !info.paper.is_empty() && !info.tested_by.is_empty(),
            "{}",
            info.name
        );
        let Method::Aggregator(mut agg) = by_name(info.name, 4, 0).unwrap() else {
            panic!("{} is not an aggregator", info.name);
        };
        let out = agg
            .aggregate(&j, &ctx)
            .unwrap_or_else(|e| panic!("{}: {e}", info.name));
        assert_eq!(out.gradient.size(), vec![9]);
        assert!(
            to_vec(&out.gradient).iter().all(|v| v.is_finite()),
            "{}",
            info.name
        );
        let j5 = common::sample(5, 9, 22);
        assert!(
            agg.aggregate(&j5, &ctx).is_err(),
            "{} accepted K = 5",
            info.name
        );
    }
    // Methods with a minimum K refuse to build below it.
    assert!(by_name("krum", 3, 0).is_err());
    assert!(by_name("trimmed_mean", 2, 0).is_err());
    assert!(by_name("Trimmed-Mean", 3, 0).is_ok());
}

/// The weighted-sum methods check J through their output: finite rows whose weighted
/// sum overflows f32 are an error too, naming no task (no row is at fault) but the step.
#[test]
fn an_overflowing_weighted_sum_is_an_error_not_an_infinite_gradient() {
    let losses = [1.0, 2.0];
    let ctx = StepContext {
        step: 4,
        epoch: 0,
        losses: &losses,
    };
    let j = Tensor::from_slice(&[3e38f32, 1.0, 3e38, 1.0]).view([2, 2]);
    let overflowing: Vec<Box<dyn Aggregator>> = vec![
        Box::new(mtl_losses::methods::Sum::new()),
        Box::new(mtl_losses::methods::Constant::new(vec![1.0, 1.0]).unwrap()),
    ];
    for mut agg in overflowing {
        match agg.aggregate(&j, &ctx) {
            Err(mtl_core::Error::NonFinite {
                task: None,
                step: Some(4),
                ..
            }) => {}
            other => panic!("{}: {:?}", agg.name(), other.map(|a| a.weights)),
        }
    }
    // Weights summing to one keep 3e38 + 3e38 halved, inside f32.
    for name in ["mean", "random", "constant"] {
        let Method::Aggregator(mut agg) = by_name(name, 2, 0).unwrap() else {
            panic!("{name} is not an aggregator");
        };
        let g = to_vec(&agg.aggregate(&j, &ctx).unwrap().gradient);
        assert!(g.iter().all(|v| v.is_finite()), "{name}: {g:?}");
    }
}

/// NaN or Inf in one task's row is a typed error naming that task and the step, from
/// every aggregator (each checks J where it is cheapest: the Gram diagonal or one
/// reduction), and a rejected Jacobian does not advance a method's random state.
#[test]
fn non_finite_rows_name_the_task_and_step() {
    let losses = [1.0, 2.0, 0.5, 3.0];
    let ctx = StepContext {
        step: 9,
        epoch: 0,
        losses: &losses,
    };
    let every: Vec<&str> = list()
        .into_iter()
        .filter(|i| i.level == MethodLevel::Gradient)
        .map(|i| i.name)
        .collect();
    assert!(every.len() > SUITE.len());
    for name in every {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            for kind in [tch::Kind::Float, tch::Kind::Double] {
                let j = common::sample(4, 9, 21).to_kind(kind);
                let _ = j.get(2).get(5).fill_(bad);
                let Method::Aggregator(mut agg) = by_name(name, 4, 0).unwrap() else {
                    panic!("{name} is not an aggregator");
                };
                match agg.aggregate(&j, &ctx) {
                    Err(mtl_core::Error::NonFinite {
                        task: Some(2),
                        step: Some(9),
                        ..
                    }) => {}
                    other => panic!("{name} {bad} {kind:?}: {:?}", other.map(|a| a.weights)),
                }
            }
        }
        // After a rejected step, the method gives what a fresh one gives.
        let good = common::sample(4, 9, 21);
        let bad = good.copy();
        let _ = bad.get(0).get(0).fill_(f64::NAN);
        let Method::Aggregator(mut used) = by_name(name, 4, 0).unwrap() else {
            unreachable!()
        };
        let Method::Aggregator(mut fresh) = by_name(name, 4, 0).unwrap() else {
            unreachable!()
        };
        assert!(used.aggregate(&bad, &ctx).is_err());
        let a = to_vec(&used.aggregate(&good, &ctx).unwrap().gradient);
        let b = to_vec(&fresh.aggregate(&good, &ctx).unwrap().gradient);
        assert_eq!(
            a, b,
            "{name}: a rejected Jacobian changed the method's state"
        );
    }
}

/// K = 48 > d: the active-set solves stay exact with many dependent rows.
#[test]
fn many_tasks() {
    let j = common::sample(48, 20, 77);
    let rows = rows_of(&j);
    let scale = max_sq_norm(&rows);
    let out = Mgda::new().aggregate(&j, &ctx()).unwrap();
    let (p, w) = (to_vec(&out.gradient), out.weights.unwrap());
    let p2 = dot(&p, &p);
    for (i, r) in rows.iter().enumerate() {
        assert!(dot(&p, r) >= p2 - 1e-9 * scale);
        if w[i] > 1e-6 {
            assert!((dot(&p, r) - p2).abs() <= 1e-9 * scale);
        }
    }
    let trace: f64 = rows.iter().map(|r| dot(r, r)).sum();
    let out = UpGrad::new()
        .with_eps(1e-4, 0.0)
        .unwrap()
        .aggregate(&j, &ctx())
        .unwrap();
    let g = to_vec(&out.gradient);
    for r in &rows {
        assert!(dot(&g, r) >= -1e-10 * trace);
    }
}
