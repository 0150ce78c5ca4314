//! GradVac against LibMTL's `GradVac` (golden `libmtl_GradVac.json`, a stateful
//! sequence with the recorded task orders replayed: the aggregated gradient and the
//! similarity targets after every step), plus properties, seeding and edge cases.

mod common;

use common::ctx_at;
use mtl_core::Error;
use mtl_losses::gram::Gram;
use mtl_losses::methods::{gradvac_weights, GradVac};
use mtl_losses::Aggregator;

fn orders(v: &serde_json::Value) -> Vec<Vec<usize>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|o| {
            o.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as usize)
                .collect()
        })
        .collect()
}

#[test]
fn golden_libmtl_gradvac_sequence() {
    let doc = common::load("libmtl_GradVac.json");
    assert_eq!(doc["params"]["GradVac_beta"].as_f64(), Some(0.5));
    let cases = common::cases(&doc);
    assert_eq!(cases.len(), 2);
    for case in cases {
        let (name, k, (rel, abs)) = common::sequence_case(case);
        let mut gv = GradVac::new(k, 0);
        for (t, step) in case["steps"].as_array().unwrap().iter().enumerate() {
            let what = |s: &str| format!("{name} step {t}: {s}");
            let j = common::matrix(&step["G"]);
            let order = orders(&step["random_draws"]["shuffle"]);
            let out = gv
                .aggregate_with_orders(&j, &ctx_at(t as u64, 0), &order)
                .unwrap();
            common::assert_close(
                &common::to_vec(&out.gradient),
                &common::vec_f64(&step["expected"]),
                rel,
                abs,
                &what("expected"),
            );
            let rho = common::flat_matrix(&step["rho_T_after"]);
            common::assert_close(gv.targets(), &rho, rel, abs, &what("rho_T_after"));
            // The output is the reported combination of the rows.
            let recombined = mtl_losses::gram::combine(out.weights.as_ref().unwrap(), &j).unwrap();
            common::assert_close(
                &common::to_vec(&recombined),
                &common::to_vec(&out.gradient),
                1e-12,
                1e-12,
                &what("wᵀJ"),
            );
        }
    }
}

#[test]
fn zero_targets_without_memory_is_pcgrad_on_conflicts() {
    // β = 0 keeps φ̂ = 0: a pair is corrected only when its cosine is negative, to
    // exactly orthogonal (PCGrad's projection, up to ε).
    let j = common::rows(&[&[1.0, 0.0], &[-1.0, 1.0]]);
    let gram = Gram::of(&j).unwrap();
    let mut targets = vec![0.0; 4];
    let w = gradvac_weights(&gram, &mut targets, &[vec![1], vec![0]], 0.0).unwrap();
    // PCGrad: g₀' = g₀ + g₁/2, g₁' = g₁ + g₀.
    common::assert_close(&w, &[2.0, 1.5], 1e-7, 0.0, "pcgrad");
    assert_eq!(targets, vec![0.0; 4]);
}

#[test]
fn a_corrected_pair_reaches_its_target_similarity() {
    let j = common::rows(&[&[1.0, 0.2, 0.0], &[-0.3, 1.0, 0.5]]);
    let rows = common::rows_of(&j);
    let gram = Gram::of(&j).unwrap();
    // Task 0 aims at cosine 0.6 with task 1. w = c₀ + c₁ with c₀ = (1, x) and
    // c₁ = (y, 1), so x = w₁ − 1 whatever task 1's own correction is.
    let mut targets = vec![0.0, 0.6, 0.0, 0.0];
    let w = gradvac_weights(&gram, &mut targets, &[vec![1], vec![0]], 0.5).unwrap();
    let x = w[1] - 1.0;
    assert!(x > 0.0);
    let g0p: Vec<f64> = (0..3).map(|d| rows[0][d] + x * rows[1][d]).collect();
    let cos = common::dot(&g0p, &rows[1])
        / (common::dot(&g0p, &g0p).sqrt() * common::dot(&rows[1], &rows[1]).sqrt());
    assert!((cos - 0.6).abs() < 1e-6, "cos = {cos}");
    // The target moved halfway (β = 0.5) towards the cosine seen before the correction.
    let cos0 = common::dot(&rows[0], &rows[1])
        / (common::dot(&rows[0], &rows[0]).sqrt() * common::dot(&rows[1], &rows[1]).sqrt());
    assert!((targets[1] - (0.3 + 0.5 * cos0)).abs() < 1e-7);
}

#[test]
fn seeded_orders_are_reproducible() {
    let run = |seed| {
        let mut gv = common::aggregator("gradvac", 4, seed);
        (0..3)
            .map(|s| {
                common::to_vec(
                    &gv.aggregate(&common::sample(4, 6, s), &ctx_at(s, 0))
                        .unwrap()
                        .gradient,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(1));
}

#[test]
fn edge_cases() {
    common::aggregator_edge_cases(|| Box::new(GradVac::new(3, 0)) as Box<dyn Aggregator>, 3, 5);
    assert!(matches!(
        GradVac::new(3, 0).aggregate(&common::sample(2, 4, 0), &ctx_at(0, 0)),
        Err(Error::TaskCount {
            expected: 3,
            got: 2,
            ..
        })
    ));
    // K = 1: the row itself.
    let out = GradVac::new(1, 0)
        .aggregate(&common::rows(&[&[3.0, 4.0]]), &ctx_at(0, 0))
        .unwrap();
    assert_eq!(common::to_vec(&out.gradient), vec![3.0, 4.0]);
    // Identical rows: cosine 1 ≥ any target, the plain sum.
    let mut gv = GradVac::new(2, 0);
    for s in 0..3 {
        let out = gv
            .aggregate(&common::rows(&[&[1.0, 2.0], &[1.0, 2.0]]), &ctx_at(s, 0))
            .unwrap();
        assert_eq!(out.weights, Some(vec![1.0, 1.0]));
    }
    // A zero row adds nothing and is never amplified, even with positive targets.
    let mut gv = GradVac::new(2, 0);
    let j = common::rows(&[&[1.0, 0.5], &[0.8, 0.6]]);
    gv.aggregate(&j, &ctx_at(0, 0)).unwrap();
    let z = common::rows(&[&[0.0, 0.0], &[0.8, 0.6]]);
    let out = gv.aggregate(&z, &ctx_at(1, 0)).unwrap();
    let w = out.weights.unwrap();
    assert!(w.iter().all(|w| w.is_finite() && w.abs() < 10.0), "{w:?}");
    // Malformed orders.
    let gram = Gram::from_vec(2, vec![1.0, 0.0, 0.0, 1.0]).unwrap();
    for bad in [
        vec![vec![0], vec![0]],
        vec![vec![1]],
        vec![vec![1, 1], vec![0]],
    ] {
        let mut t = vec![0.0; 4];
        assert!(gradvac_weights(&gram, &mut t, &bad, 0.5).is_err());
    }
    assert!(GradVac::new(2, 0).with_beta(1.5).is_err());
}

#[test]
fn state_round_trip() {
    let mut a = GradVac::new(3, 5);
    a.aggregate(&common::sample(3, 6, 1), &ctx_at(0, 0))
        .unwrap();
    let mut b = GradVac::new(3, 77);
    b.load_state(&a.state()).unwrap();
    let j = common::sample(3, 6, 2);
    let oa = a.aggregate(&j, &ctx_at(1, 0)).unwrap();
    let ob = b.aggregate(&j, &ctx_at(1, 0)).unwrap();
    assert_eq!(oa.weights, ob.weights);
    assert_eq!(a.targets(), b.targets());
    assert!(GradVac::new(2, 0).load_state(&a.state()).is_err());
}
