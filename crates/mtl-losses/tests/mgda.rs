//! MGDA against TorchJD's `MGDA` (Frank–Wolfe, golden `torchjd_MGDA.json`) and LibMTL's
//! `MGDA` (its min-norm solver, golden `libmtl_MGDA.json`), the exact solver against
//! both where they are exact, the gradient normalisations, and the edge cases.

mod common;

use common::{
    aggregator_edge_cases, assert_close, cases, ctx, dot, load, matrix, rows, rows_of, run_golden,
    to_vec, vec_f64,
};
use mtl_core::Error;
use mtl_losses::methods::{Mgda, MgdaNormalization, MgdaSolver};
use mtl_losses::{Aggregator, StepContext};

#[test]
fn golden_torchjd_mgda() {
    let (n, skipped) = run_golden("torchjd_MGDA.json", true, |_| Box::new(Mgda::torchjd()));
    assert_eq!(n, 21);
    assert!(skipped.is_empty());
}

#[test]
fn golden_libmtl_mgda() {
    let (n, skipped) = run_golden("libmtl_MGDA.json", true, |_| {
        Box::new(Mgda::libmtl(MgdaNormalization::None))
    });
    assert_eq!(n, 20);
    // LibMTL fails on K = 1 (no pair to start from); we return the row.
    assert_eq!(skipped, vec!["k1_d16".to_string()]);
}

/// For K = 2, one Frank–Wolfe step from the midpoint lands on the exact min-norm point
/// of the segment, so TorchJD's outputs are exact there and the exact solver must match
/// them.
#[test]
fn exact_matches_torchjd_on_two_tasks() {
    let doc = load("torchjd_MGDA.json");
    let mut n = 0;
    for case in cases(&doc)
        .iter()
        .filter(|c| c["G"].as_array().unwrap().len() == 2)
    {
        let j = matrix(&case["G"]);
        let out = Mgda::new().aggregate(&j, &ctx()).unwrap();
        let scale = rows_of(&j)
            .iter()
            .fold(0.0f64, |m, r| m.max(dot(r, r).sqrt()));
        assert_close(
            &to_vec(&out.gradient),
            &vec_f64(&case["expected"]),
            1e-9,
            1e-12 * scale,
            case["name"].as_str().unwrap(),
        );
        n += 1;
    }
    assert!(n >= 8);
}

/// The exact solver is at least as good as both references (smaller or equal norm) and
/// satisfies the optimality conditions on every golden input.
#[test]
fn exact_is_the_min_norm_point_on_golden_inputs() {
    let doc = load("torchjd_MGDA.json");
    for case in cases(&doc) {
        let j = matrix(&case["G"]);
        let out = Mgda::new().aggregate(&j, &ctx()).unwrap();
        let g = to_vec(&out.gradient);
        let w = out.weights.unwrap();
        let rs = rows_of(&j);
        let scale = rs.iter().fold(0.0f64, |m, r| m.max(dot(r, r)));
        let n2 = dot(&g, &g);
        let e = vec_f64(&case["expected"]);
        assert!(n2 <= dot(&e, &e) + 1e-12 * scale, "{}", case["name"]);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12 && w.iter().all(|&v| v >= 0.0));
        for (i, r) in rs.iter().enumerate() {
            let ip = dot(&g, r);
            assert!(ip >= n2 - 1e-10 * scale, "{}: row {i}", case["name"]);
            if w[i] > 1e-9 {
                assert!(
                    (ip - n2).abs() <= 1e-10 * scale,
                    "{}: support row {i}",
                    case["name"]
                );
            }
        }
    }
}

#[test]
fn normalisations() {
    let j = rows(&[&[2.0, 0.0], &[0.0, 1.0]]);
    let losses = [4.0, 1.0];
    let c = StepContext {
        step: 3,
        epoch: 0,
        losses: &losses,
    };
    // l2: unit rows, weights 1/2 on them, i.e. (1/4, 1/2) on the raw rows.
    let out = Mgda::new()
        .with_normalization(MgdaNormalization::L2)
        .aggregate(&j, &c)
        .unwrap();
    assert_close(&to_vec(&out.gradient), &[0.5, 0.5], 1e-14, 1e-15, "l2");
    assert_close(
        out.weights.as_ref().unwrap(),
        &[0.25, 0.5],
        1e-14,
        1e-15,
        "l2 weights",
    );
    // loss: rows (1/2, 0) and (0, 1) → min-norm (0.4, 0.2).
    let out = Mgda::new()
        .with_normalization(MgdaNormalization::Loss)
        .aggregate(&j, &c)
        .unwrap();
    assert_close(&to_vec(&out.gradient), &[0.4, 0.2], 1e-14, 1e-15, "loss");
    // loss+: rows (1/4, 0) and (0, 1) → weights 16/17, 1/17 on them.
    let out = Mgda::libmtl(MgdaNormalization::LossPlus)
        .aggregate(&j, &c)
        .unwrap();
    let w0 = 16.0 / 17.0;
    let want = [w0 * 0.25, (1.0 - w0)];
    // LibMTL's pair solver is exact for K = 2 here (no clamp).
    assert_close(&to_vec(&out.gradient), &want, 1e-12, 1e-15, "loss+");
    // The loss normalisations need K finite, non-zero losses.
    assert!(matches!(
        Mgda::new()
            .with_normalization(MgdaNormalization::Loss)
            .aggregate(&j, &ctx()),
        Err(Error::TaskCount {
            expected: 2,
            got: 0,
            ..
        })
    ));
    let zero = [1.0, 0.0];
    let cz = StepContext {
        step: 3,
        epoch: 0,
        losses: &zero,
    };
    assert!(matches!(
        Mgda::new()
            .with_normalization(MgdaNormalization::LossPlus)
            .aggregate(&j, &cz),
        Err(Error::NonFinite {
            task: Some(1),
            step: Some(3),
            ..
        })
    ));
    // l2 with a zero row: the zero row is the min-norm point.
    let jz = rows(&[&[2.0, 0.0], &[0.0, 0.0]]);
    let out = Mgda::new()
        .with_normalization(MgdaNormalization::L2)
        .aggregate(&jz, &ctx())
        .unwrap();
    assert!(to_vec(&out.gradient).iter().all(|v| *v == 0.0));
}

fn all_solvers() -> Vec<Mgda> {
    vec![
        Mgda::new(),
        Mgda::torchjd(),
        Mgda::libmtl(MgdaNormalization::None),
    ]
}

#[test]
fn edge_cases() {
    for make in [Mgda::new, Mgda::torchjd, || {
        Mgda::libmtl(MgdaNormalization::L2)
    }] {
        aggregator_edge_cases(move || Box::new(make()), 4, 6);
    }
    for mut m in all_solvers() {
        // K = 1.
        let out = m.aggregate(&rows(&[&[3.0, -4.0]]), &ctx()).unwrap();
        assert_close(&to_vec(&out.gradient), &[3.0, -4.0], 1e-12, 0.0, "K = 1");
        // Identical rows.
        let out = m
            .aggregate(&rows(&[&[1.0, 2.0], &[1.0, 2.0]]), &ctx())
            .unwrap();
        assert_close(&to_vec(&out.gradient), &[1.0, 2.0], 1e-12, 0.0, "identical");
        // Opposite rows: 0 is in the hull.
        let out = m
            .aggregate(&rows(&[&[1.0, 2.0], &[-1.0, -2.0]]), &ctx())
            .unwrap();
        assert!(to_vec(&out.gradient).iter().all(|v| v.abs() < 1e-12));
        // Built for 3 tasks.
        assert!(matches!(
            m.clone()
                .for_tasks(3)
                .aggregate(&rows(&[&[1.0], &[2.0]]), &ctx()),
            Err(Error::TaskCount {
                expected: 3,
                got: 2,
                ..
            })
        ));
    }
    // A zero row is the exact min-norm point.
    let j = rows(&[&[1.0, 2.0], &[0.0, 0.0], &[-3.0, 1.0]]);
    let out = Mgda::new().aggregate(&j, &ctx()).unwrap();
    assert_eq!(to_vec(&out.gradient), vec![0.0, 0.0]);
    assert_eq!(out.weights.unwrap(), vec![0.0, 1.0, 0.0]);
    // Norms 1e-6 vs 1e6, orthogonal: the min-norm point is ~ the small row.
    let j = rows(&[&[1e-6, 0.0], &[0.0, 1e6]]);
    let out = Mgda::new().aggregate(&j, &ctx()).unwrap();
    let g = to_vec(&out.gradient);
    // Up to rounding relative to the output norm (the exact y-component is 1e-18).
    assert!(
        (g[0] - 1e-6).abs() < 1e-16 && (g[1] - 1e-18).abs() < 1e-16,
        "{g:?}"
    );
}

/// Run long enough, the Frank–Wolfe iteration approaches the exact min-norm point (and
/// never beats it).
#[test]
fn frank_wolfe_converges_to_exact() {
    let j = common::sample(5, 8, 3);
    let exact = to_vec(&Mgda::new().aggregate(&j, &ctx()).unwrap().gradient);
    let mut fw = Mgda::new().with_solver(MgdaSolver::FrankWolfe {
        epsilon: 0.0,
        max_iters: 20_000,
    });
    let approx = to_vec(&fw.aggregate(&j, &ctx()).unwrap().gradient);
    // The objective converges as O(1/t); the iterate itself more slowly.
    let (a2, e2) = (dot(&approx, &approx), dot(&exact, &exact));
    assert!(a2 >= e2 - 1e-12 && a2 - e2 <= 2e-3 * e2, "{a2} vs {e2}");
    assert_close(&approx, &exact, 5e-2, 0.0, "frank-wolfe");
    let mut short = Mgda::torchjd();
    let rough = to_vec(&short.aggregate(&j, &ctx()).unwrap().gradient);
    assert!(dot(&rough, &rough) >= dot(&exact, &exact) - 1e-12);
}
