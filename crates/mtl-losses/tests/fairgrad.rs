//! FairGrad: the α-fair fixed point (Gw)ₖ = wₖ^(−1/α) in closed form (orthogonal and
//! identical rows) and as a residual on random Jacobians, its scaling law, agreement
//! with Nash-MTL's bargaining solution at α = 1, and edge cases. No golden file exists
//! for it (LibMTL's `least_squares` solve of the same equations is the reference
//! convention).

mod common;

use common::ctx_at;
use mtl_core::Error;
use mtl_losses::gram::Gram;
use mtl_losses::methods::{nash_mtl_alpha, FairGrad};
use mtl_losses::{by_name, Aggregator, Method};

fn fresh(k: usize) -> Box<dyn Aggregator> {
    match by_name("fairgrad", k, 0).unwrap() {
        Method::Aggregator(a) => a,
        Method::Weighting(_) => panic!("fairgrad is a gradient-level method"),
    }
}

fn residual(g: &Gram, w: &[f64], alpha: f64) -> f64 {
    let k = g.k();
    (0..k)
        .map(|i| {
            let gw: f64 = (0..k).map(|j| g.get(i, j) * w[j]).sum();
            let t = w[i].powf(-1.0 / alpha);
            ((gw - t) / t).abs()
        })
        .fold(0.0, f64::max)
}

#[test]
fn orthogonal_rows_closed_form() {
    let j = common::rows(&[&[2.0, 0.0, 0.0], &[0.0, 0.5, 0.0], &[0.0, 0.0, 7.0]]);
    for alpha in [0.5, 1.0, 2.0, 5.0] {
        let mut fg = FairGrad::new(3).with_alpha(alpha).unwrap();
        let w = fg.aggregate(&j, &ctx_at(0, 0)).unwrap().weights.unwrap();
        // nₖ² wₖ = wₖ^(−1/α) ⇒ wₖ = nₖ^(−2α/(α+1)).
        let expected: Vec<f64> = [2.0f64, 0.5, 7.0]
            .iter()
            .map(|n| n.powf(-2.0 * alpha / (alpha + 1.0)))
            .collect();
        common::assert_close(&w, &expected, 1e-9, 0.0, &format!("alpha {alpha}"));
    }
}

#[test]
fn fixed_point_residual_on_random_jacobians() {
    for seed in 0..10u64 {
        let k = 2 + seed as usize % 5;
        let j = common::sample(k, 3 * k, seed);
        let gram = Gram::of(&j).unwrap();
        for alpha in [0.5, 1.0, 3.0] {
            let w = FairGrad::weights(&gram, alpha, f64::EPSILON).unwrap();
            assert!(w.iter().all(|w| *w > 0.0));
            let r = residual(&gram, &w, alpha);
            assert!(r < 1e-9, "seed {seed} alpha {alpha}: residual {r}");
        }
    }
}

#[test]
fn proportional_fairness_is_the_nash_bargaining_solution() {
    for seed in [3u64, 5, 8] {
        let j = common::sample(3, 9, seed);
        let gram = Gram::of(&j).unwrap();
        let fair = FairGrad::weights(&gram, 1.0, f64::EPSILON).unwrap();
        let nash = nash_mtl_alpha(gram.as_slice(), &[1.0; 3], 200).unwrap();
        common::assert_close(&fair, &nash, 1e-6, 0.0, &format!("seed {seed}"));
    }
}

#[test]
fn scaling_law() {
    let j = common::sample(3, 6, 2);
    for alpha in [0.5, 2.0] {
        let a = FairGrad::weights(&Gram::of(&j).unwrap(), alpha, f64::EPSILON).unwrap();
        let b = FairGrad::weights(&Gram::of(&(&j * 3.0)).unwrap(), alpha, f64::EPSILON).unwrap();
        let factor = 9.0f64.powf(-alpha / (alpha + 1.0));
        let scaled: Vec<f64> = a.iter().map(|x| x * factor).collect();
        common::assert_close(&b, &scaled, 1e-9, 0.0, "G ∝ 9");
    }
}

#[test]
fn near_pareto_stationary_rows_still_solve() {
    // Nearly opposite rows: a tiny common descent direction, large weights.
    let j = common::rows(&[&[1.0, 0.0], &[-1.0, 1e-3]]);
    let gram = Gram::of(&j).unwrap();
    let w = FairGrad::weights(&gram, 1.0, f64::EPSILON).unwrap();
    assert!(w.iter().all(|w| *w > 10.0));
    assert!(residual(&gram, &w, 1.0) < 1e-9);
}

#[test]
fn edge_cases() {
    common::aggregator_edge_cases(|| fresh(3), 3, 6);
    assert!(matches!(
        fresh(3).aggregate(&common::sample(2, 4, 0), &ctx_at(0, 0)),
        Err(Error::TaskCount {
            expected: 3,
            got: 2,
            ..
        })
    ));
    // K = 1 (α = 1): w = 1/‖g‖, the unit vector.
    let out = fresh(1)
        .aggregate(&common::rows(&[&[3.0, 4.0]]), &ctx_at(0, 0))
        .unwrap();
    common::assert_close(
        &common::to_vec(&out.gradient),
        &[0.6, 0.8],
        1e-9,
        0.0,
        "K=1",
    );
    // Identical rows: 2n² w = 1/w, w = 1/(n√2) each.
    let out = fresh(2)
        .aggregate(&common::rows(&[&[3.0, 4.0], &[3.0, 4.0]]), &ctx_at(0, 0))
        .unwrap();
    let w = out.weights.unwrap();
    let expected = 1.0 / (5.0 * 2.0f64.sqrt());
    common::assert_close(&w, &[expected, expected], 1e-9, 0.0, "identical");
    // A zero row gets weight 0; the others are solved as if it were absent.
    let with_zero = fresh(3)
        .aggregate(
            &common::rows(&[&[2.0, 0.0], &[0.0, 0.0], &[0.0, 0.5]]),
            &ctx_at(0, 0),
        )
        .unwrap();
    common::assert_close(
        &with_zero.weights.unwrap(),
        &[0.5, 0.0, 2.0],
        1e-9,
        0.0,
        "zero row",
    );
    // Opposite rows: Pareto-stationary, zero update; all-zero Jacobian likewise.
    for rows in [
        common::rows(&[&[1.0, -2.0], &[-1.0, 2.0]]),
        common::rows(&[&[0.0, 0.0], &[0.0, 0.0]]),
    ] {
        let out = fresh(2).aggregate(&rows, &ctx_at(0, 0)).unwrap();
        assert!(common::to_vec(&out.gradient).iter().all(|v| *v == 0.0));
    }
    assert!(FairGrad::new(2).with_alpha(0.0).is_err());
    assert!(FairGrad::new(2).with_alpha(f64::INFINITY).is_err());
}

#[test]
fn every_random_jacobian_is_solved_or_pareto_stationary() {
    let mut stationary = 0;
    for seed in 0..60u64 {
        let k = 2 + seed as usize % 9;
        let d = [2usize, 3, 20][seed as usize % 3];
        let j = common::sample(k, d, 100 + seed);
        let gram = Gram::of(&j).unwrap();
        for alpha in [0.5, 1.0, 2.0] {
            let w = FairGrad::weights(&gram, alpha, f64::EPSILON).unwrap();
            if w.iter().all(|w| *w == 0.0) {
                stationary += 1;
                // Zero only when the min-norm combination vanishes.
                let v = mtl_losses::solvers::min_norm_simplex(gram.as_slice(), k).unwrap();
                let q: f64 = (0..k)
                    .map(|i| v[i] * (0..k).map(|m| gram.get(i, m) * v[m]).sum::<f64>())
                    .sum();
                assert!(q < 1e-12, "seed {seed}: |d|² = {q}");
            } else {
                let r = residual(&gram, &w, alpha);
                assert!(
                    r < 1e-6,
                    "seed {seed} K {k} d {d} alpha {alpha}: residual {r}"
                );
            }
        }
    }
    // Low-dimensional many-task Jacobians are often Pareto-stationary.
    assert!(stationary > 0);
}
