//! Random against TorchJD's `Random` (golden `torchjd_Random.json`, replaying the
//! recorded normal draws), and the seeded aggregator's behaviour.

mod common;

use common::{
    aggregator_edge_cases, assert_close, cases, ctx, load, matrix, rows, to_vec, tolerances,
    vec_f64,
};
use mtl_core::Error;
use mtl_losses::gram::combine;
use mtl_losses::methods::Random;
use mtl_losses::Aggregator;

#[test]
fn golden_torchjd_random_replayed() {
    let doc = load("torchjd_Random.json");
    for case in cases(&doc) {
        let z = vec_f64(&case["random_draws"]["randn"][0]);
        let w = Random::weights_from_normals(&z);
        let (rel, abs) = tolerances(case);
        let what = case["name"].as_str().unwrap();
        assert_close(&w, &vec_f64(&case["weights"]), rel, 1e-15, what);
        let out = combine(&w, &matrix(&case["G"])).unwrap();
        assert_close(&to_vec(&out), &vec_f64(&case["expected"]), rel, abs, what);
    }
    assert_eq!(cases(&doc).len(), 21);
}

#[test]
fn seeded_draws() {
    let j = rows(&[&[1.0, 0.0], &[0.0, 1.0], &[1.0, 1.0]]);
    let draw = |seed| {
        Random::new(seed)
            .aggregate(&j, &ctx())
            .unwrap()
            .weights
            .unwrap()
    };
    assert_eq!(draw(3), draw(3));
    assert_ne!(draw(3), draw(4));
    let mut a = Random::new(3);
    let first = a.aggregate(&j, &ctx()).unwrap().weights.unwrap();
    let second = a.aggregate(&j, &ctx()).unwrap().weights.unwrap();
    assert_ne!(first, second);
    for w in [first, second] {
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-15 && w.iter().all(|&x| x > 0.0));
    }
    // Large draws do not overflow.
    let w = Random::weights_from_normals(&[1000.0, 0.0]);
    assert_eq!(w, vec![1.0, 0.0]);
}

#[test]
fn edge_cases() {
    aggregator_edge_cases(|| Box::new(Random::new(1)), 3, 5);
    let out = Random::new(1)
        .aggregate(&rows(&[&[3.0, -4.0]]), &ctx())
        .unwrap();
    assert_eq!(to_vec(&out.gradient), vec![3.0, -4.0]);
    // Identical rows: any convex combination is the row; opposite rows: a point on
    // the segment between them; a zero row only shrinks the result.
    let out = Random::new(1)
        .aggregate(&rows(&[&[1.0, 2.0], &[1.0, 2.0]]), &ctx())
        .unwrap();
    let g = to_vec(&out.gradient);
    assert!((g[0] - 1.0).abs() < 1e-15 && (g[1] - 2.0).abs() < 1e-15);
    let out = Random::new(1)
        .aggregate(&rows(&[&[1.0, 2.0], &[-1.0, -2.0]]), &ctx())
        .unwrap();
    let w = out.weights.unwrap();
    assert_eq!(
        to_vec(&out.gradient),
        vec![w[0] - w[1], 2.0 * (w[0] - w[1])]
    );
    let out = Random::new(1)
        .aggregate(&rows(&[&[1e-6, 0.0], &[0.0, 0.0], &[0.0, 1e6]]), &ctx())
        .unwrap();
    let (g, w) = (to_vec(&out.gradient), out.weights.unwrap());
    assert_eq!(g, vec![w[0] * 1e-6, w[2] * 1e6]);
    assert!(matches!(
        Random::new(1)
            .for_tasks(2)
            .aggregate(&rows(&[&[1.0]]), &ctx()),
        Err(Error::TaskCount {
            expected: 2,
            got: 1,
            ..
        })
    ));
}
