//! PCGrad against TorchJD (`torchjd_PCGrad.json`: j ≠ i, ε = 0) and LibMTL
//! (`libmtl_PCGrad.json`: i included, ε = 1e-8), replaying the recorded visiting
//! orders; plus the projection's guarantees and edge cases.

mod common;

use mtl_core::Error;
use mtl_losses::gram::Gram;
use mtl_losses::methods::{pcgrad_coefficients, pcgrad_weights, PcGrad, PcGradConfig};
use mtl_losses::{by_name, Aggregator, Method, StepContext};
use proptest::prelude::*;
use tch::Tensor;

fn orders(v: &serde_json::Value) -> Vec<Vec<usize>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|o| common::vec_f64(o).into_iter().map(|x| x as usize).collect())
        .collect()
}

fn run_golden(file: &str, draws: &str, config: PcGradConfig) {
    let doc = common::load(file);
    let cases = common::cases(&doc);
    assert!(!cases.is_empty());
    assert!(doc["skipped_cases"].as_array().is_none_or(|s| s.is_empty()));
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (tol_rel, tol_abs) = common::tolerances(case);
        let g = common::matrix(&case["G"]);
        let k = g.size()[0] as usize;
        let orders = orders(&case["random_draws"][draws]);
        let pc = PcGrad::with_config(k, 0, config).unwrap();
        let out = pc.aggregate_with_orders(&g, &orders).unwrap();
        common::assert_close(
            &common::to_vec(&out.gradient),
            &common::vec_f64(&case["expected"]),
            tol_rel,
            tol_abs,
            &format!("{file} {name}: expected"),
        );
        if case["weights_check"].as_bool() != Some(false) {
            common::assert_close(
                out.weights.as_ref().unwrap(),
                &common::vec_f64(&case["weights"]),
                tol_rel,
                tol_abs,
                &format!("{file} {name}: weights"),
            );
        }
    }
}

#[test]
fn golden_torchjd_pcgrad() {
    run_golden("torchjd_PCGrad.json", "randperm", PcGradConfig::paper());
}

#[test]
fn golden_libmtl_pcgrad() {
    run_golden("libmtl_PCGrad.json", "shuffle", PcGradConfig::libmtl());
}

/// The Gram matrix of a row-major `k × d` matrix, in plain f64.
fn gram_of(rows: &[f64], k: usize, d: usize) -> Gram {
    let mut g = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..k {
            g[i * k + j] = (0..d).map(|c| rows[i * d + c] * rows[j * d + c]).sum();
        }
    }
    Gram::from_vec(k, g).unwrap()
}

/// gᵢ'·gⱼ from the coefficients.
fn projected_dot(c: &[Vec<f64>], gram: &Gram, i: usize, j: usize) -> f64 {
    (0..gram.k()).map(|l| c[i][l] * gram.get(l, j)).sum()
}

/// How far below 0 gᵢ'·gⱼ may stay after projecting row i off gⱼ: rounding (relative
/// to the largest squared norm) plus, with ε > 0, the part ε leaves unremoved,
/// (gᵢ'·gⱼ)·ε/(‖gⱼ‖² + ε) ≤ ‖gᵢ‖·√ε/2 (projections never lengthen gᵢ').
fn slack(gram: &Gram, config: PcGradConfig, i: usize) -> f64 {
    let scale = (0..gram.k()).map(|l| gram.get(l, l)).fold(0.0, f64::max);
    1e-9 * scale + 0.5 * config.eps.sqrt() * gram.get(i, i).sqrt()
}

/// (K, d, row-major Jacobian, one permutation of 0..K per row).
fn problem(
    ks: std::ops::Range<usize>,
) -> impl Strategy<Value = (usize, usize, Vec<f64>, Vec<Vec<usize>>)> {
    (ks, 1usize..8).prop_flat_map(|(k, d)| {
        let perm = Just((0..k).collect::<Vec<usize>>()).prop_shuffle();
        (
            Just(k),
            Just(d),
            prop::collection::vec(-5.0f64..5.0, k * d),
            prop::collection::vec(perm, k),
        )
    })
}

proptest! {
    /// K = 2: each projected gradient ends orthogonal to or aligned with the other.
    #[test]
    fn two_tasks_never_conflict_after_projection((k, d, rows, orders) in problem(2..3)) {
        let gram = gram_of(&rows, k, d);
        for config in [PcGradConfig::paper(), PcGradConfig::libmtl()] {
            let c = pcgrad_coefficients(&gram, &orders, config).unwrap();
            for (i, j) in [(0, 1), (1, 0)] {
                let dot = projected_dot(&c, &gram, i, j);
                prop_assert!(dot >= -slack(&gram, config, i), "{config:?}: g{i}'·g{j} = {dot}");
            }
        }
    }

    /// K ≥ 3: a later projection may re-create a conflict with an earlier task, so the
    /// guarantee is only against the last task each row visits.
    #[test]
    fn no_conflict_with_the_last_visited_task((k, d, rows, orders) in problem(3..7)) {
        let gram = gram_of(&rows, k, d);
        for config in [PcGradConfig::paper(), PcGradConfig::libmtl()] {
            let c = pcgrad_coefficients(&gram, &orders, config).unwrap();
            for (i, order) in orders.iter().enumerate() {
                let last = *order.iter().rev().find(|j| !(config.skip_self && **j == i)).unwrap();
                let dot = projected_dot(&c, &gram, i, last);
                prop_assert!(dot >= -slack(&gram, config, i), "{config:?}: g{i}'·g{last} = {dot}");
            }
        }
    }

    /// Without conflicts (all entries ≥ 0, so every gᵢ·gⱼ ≥ 0) PCGrad is the plain sum.
    #[test]
    fn plain_sum_without_conflicts(
        (k, d, rows) in (1usize..7, 1usize..8).prop_flat_map(|(k, d)| {
            (Just(k), Just(d), prop::collection::vec(0.0f64..5.0, k * d))
        }),
        seed in any::<u64>(),
    ) {
        let j = Tensor::from_slice(&rows).view([k as i64, d as i64]);
        for config in [PcGradConfig::paper(), PcGradConfig::libmtl()] {
            let mut pc = PcGrad::with_config(k, seed, config).unwrap();
            let out = pc.aggregate(&j, &StepContext::default()).unwrap();
            prop_assert_eq!(out.weights.unwrap(), vec![1.0; k]);
            let sum: Vec<f64> = (0..d).map(|c| (0..k).map(|r| rows[r * d + c]).sum()).collect();
            common::assert_close(&common::to_vec(&out.gradient), &sum, 1e-12, 1e-12, "sum");
        }
    }

    /// The aggregator's output is wᵀJ with the weights it reports, and each weight is
    /// Σᵢ cᵢⱼ ≥ 1 (projections only add positive multiples of the conflicting row).
    #[test]
    fn output_is_the_reported_combination((k, d, rows, _orders) in problem(1..7), seed in any::<u64>()) {
        let j = Tensor::from_slice(&rows).view([k as i64, d as i64]);
        let mut pc = PcGrad::new(k, seed);
        let out = pc.aggregate(&j, &StepContext::default()).unwrap();
        let w = out.weights.unwrap();
        prop_assert!(w.iter().all(|w| *w >= 1.0), "{w:?}");
        let expected: Vec<f64> = (0..d).map(|c| (0..k).map(|r| w[r] * rows[r * d + c]).sum()).collect();
        common::assert_close(&common::to_vec(&out.gradient), &expected, 1e-12, 1e-12, "wᵀJ");
    }
}

#[test]
fn same_seed_same_orders() {
    // Three mutually conflicting rows: the result depends on the order.
    let j = Tensor::from_slice(&[1.0f64, 0.0, -0.6, 0.8, -0.6, -0.8]).view([3, 2]);
    let run = |seed| {
        let mut pc = PcGrad::new(3, seed);
        (0..20)
            .map(|_| {
                pc.aggregate(&j, &StepContext::default())
                    .unwrap()
                    .weights
                    .unwrap()
            })
            .collect::<Vec<_>>()
    };
    let a = run(7);
    assert_eq!(a, run(7));
    // Orders are redrawn each step, so the weights vary along the run.
    assert!(a.iter().any(|w| *w != a[0]), "{a:?}");
}

#[test]
fn single_task_is_the_gradient() {
    let j = Tensor::from_slice(&[1.0f64, -2.0, 3.0]).view([1, 3]);
    for config in [PcGradConfig::paper(), PcGradConfig::libmtl()] {
        let mut pc = PcGrad::with_config(1, 0, config).unwrap();
        let out = pc.aggregate(&j, &StepContext::default()).unwrap();
        assert_eq!(out.weights, Some(vec![1.0]));
        assert_eq!(common::to_vec(&out.gradient), vec![1.0, -2.0, 3.0]);
    }
}

#[test]
fn zero_row_is_skipped_not_divided_by() {
    let j = Tensor::from_slice(&[1.0f64, 0.0, 0.0, 0.0, -1.0, 1.0]).view([3, 2]);
    let pc = PcGrad::new(3, 0);
    let orders = vec![vec![1, 2, 0], vec![0, 2, 1], vec![1, 0, 2]];
    let out = pc.aggregate_with_orders(&j, &orders).unwrap();
    let w = out.weights.unwrap();
    assert!(w.iter().all(|w| w.is_finite()), "{w:?}");
    // g₀ and g₂ conflict (−1): g₀' = g₀ + g₂/2, g₂' = g₂ + g₀; the zero row adds nothing.
    assert_eq!(common::to_vec(&out.gradient), vec![0.5, 1.5]);
}

#[test]
fn nan_in_the_jacobian_names_the_task() {
    let j = Tensor::from_slice(&[1.0f64, 2.0, 3.0, 4.0, f64::INFINITY, 0.0]).view([3, 2]);
    let mut pc = PcGrad::new(3, 0);
    let err = pc.aggregate(&j, &StepContext::default()).unwrap_err();
    assert!(
        matches!(err, Error::NonFinite { task: Some(2), .. }),
        "{err}"
    );
}

#[test]
fn wrong_task_count_is_an_error() {
    let j = Tensor::from_slice(&[1.0f64, 2.0, 3.0, 4.0]).view([2, 2]);
    let mut pc = PcGrad::new(3, 0);
    common::assert_task_count(pc.aggregate(&j, &StepContext::default()), 3, 2);
}

#[test]
fn bad_orders_and_config_are_errors() {
    let gram = Gram::from_vec(2, vec![1.0, -1.0, -1.0, 2.0]).unwrap();
    let cfg = PcGradConfig::paper();
    assert!(matches!(
        pcgrad_weights(&gram, &[vec![0, 1]], cfg).unwrap_err(),
        Error::TaskCount { .. }
    ));
    assert!(matches!(
        pcgrad_weights(&gram, &[vec![0, 2], vec![0, 1]], cfg).unwrap_err(),
        Error::Config(_)
    ));
    let bad = PcGradConfig {
        skip_self: true,
        eps: -1.0,
    };
    assert!(pcgrad_weights(&gram, &[vec![1], vec![0]], bad).is_err());
    assert!(PcGrad::with_config(2, 0, bad).is_err());
    assert!(PcGrad::with_config(0, 0, cfg).is_err());
}

#[test]
fn registry_pcgrad() {
    match by_name("pcgrad", 2, 3).unwrap() {
        Method::Aggregator(mut a) => {
            assert_eq!(a.name(), "pcgrad");
            // Conflicting pair: K = 2 PCGrad is order-independent.
            let j = Tensor::from_slice(&[1.0f64, 0.0, -1.0, 1.0]).view([2, 2]);
            let out = a.aggregate(&j, &StepContext::default()).unwrap();
            assert_eq!(out.weights, Some(vec![2.0, 1.5]));
        }
        Method::Weighting(_) => panic!("pcgrad is gradient-level"),
    }
}
