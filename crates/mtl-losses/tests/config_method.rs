//! ConFIG against TorchJD's `ConFIG` (golden `torchjd_ConFIG.json`), its defining
//! property, and the edge cases.

mod common;

use common::{
    aggregator_edge_cases, assert_close, ctx, dot, rows, rows_of, run_golden, sample, to_vec,
};
use mtl_core::Error;
use mtl_losses::methods::ConFig;
use mtl_losses::Aggregator;

#[test]
fn golden_torchjd_config() {
    let (n, skipped) = run_golden("torchjd_ConFIG.json", true, |_| Box::new(ConFig::new()));
    assert_eq!(n, 21);
    assert!(skipped.is_empty());
}

/// For K ≤ d independent rows, the output has the same cosine with every task
/// gradient, and its length is Σₖ ⟨gₖ, x̂⟩.
#[test]
fn equal_cosines() {
    for (k, d, seed) in [(2, 4, 1), (3, 5, 2), (6, 10, 3)] {
        let j = sample(k, d, seed);
        let g = to_vec(&ConFig::new().aggregate(&j, &ctx()).unwrap().gradient);
        let gn = dot(&g, &g).sqrt();
        let rs = rows_of(&j);
        let cos: Vec<f64> = rs
            .iter()
            .map(|r| dot(&g, r) / (gn * dot(r, r).sqrt()))
            .collect();
        for c in &cos {
            assert!((c - cos[0]).abs() < 1e-10 && *c > 0.0, "{cos:?}");
        }
        let length: f64 = rs.iter().map(|r| dot(r, &g) / gn).sum();
        assert!((length - gn).abs() < 1e-10 * gn);
    }
}

#[test]
fn edge_cases() {
    aggregator_edge_cases(|| Box::new(ConFig::new()), 3, 6);
    let out = ConFig::new()
        .aggregate(&rows(&[&[3.0, -4.0]]), &ctx())
        .unwrap();
    assert_close(&to_vec(&out.gradient), &[3.0, -4.0], 1e-14, 0.0, "K = 1");
    let out = ConFig::new()
        .aggregate(&rows(&[&[1.0, 2.0], &[1.0, 2.0]]), &ctx())
        .unwrap();
    assert_close(
        &to_vec(&out.gradient),
        &[2.0, 4.0],
        1e-12,
        0.0,
        "identical: the sum",
    );
    let out = ConFig::new()
        .aggregate(&rows(&[&[1.0, 2.0], &[-1.0, -2.0]]), &ctx())
        .unwrap();
    assert!(to_vec(&out.gradient).iter().all(|v| v.abs() < 1e-12));
    let out = ConFig::new()
        .aggregate(&rows(&[&[0.0, 0.0], &[0.0, 0.0]]), &ctx())
        .unwrap();
    assert_eq!(to_vec(&out.gradient), vec![0.0, 0.0]);
    // A zero row is ignored; wild norms are handled through the unit vectors.
    let out = ConFig::new()
        .aggregate(&rows(&[&[1.0, 0.0], &[0.0, 0.0], &[0.0, 1.0]]), &ctx())
        .unwrap();
    assert_close(&to_vec(&out.gradient), &[1.0, 1.0], 1e-14, 0.0, "zero row");
    let out = ConFig::new()
        .aggregate(&rows(&[&[1e-6, 0.0], &[0.0, 1e6]]), &ctx())
        .unwrap();
    let g = to_vec(&out.gradient);
    assert!((g[0] - g[1]).abs() < 1e-6 * g[1], "{g:?}");
    assert!(matches!(
        ConFig::new()
            .with_pref_vector(vec![1.0, 2.0])
            .unwrap()
            .aggregate(&rows(&[&[1.0]]), &ctx()),
        Err(Error::TaskCount { .. })
    ));
}
