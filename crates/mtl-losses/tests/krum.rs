//! Krum against TorchJD's `Krum(n_byzantine=1, n_selected=1)` (plain distances, golden
//! `torchjd_Krum.json`; K < 4 cases are skipped there because Krum needs K ≥ f + 3),
//! the paper's squared-distance scores, Multi-Krum, and the edge cases.

mod common;

use common::{aggregator_edge_cases, assert_close, ctx, rows, run_golden, to_vec};
use mtl_core::Error;
use mtl_losses::methods::Krum;
use mtl_losses::Aggregator;

#[test]
fn golden_torchjd_krum() {
    let (n, skipped) = run_golden("torchjd_Krum.json", true, |_| {
        Box::new(Krum::torchjd(1, 1).unwrap())
    });
    assert_eq!(n, 6);
    assert_eq!(skipped.len(), 15);
}

/// Four clustered rows and one outlier: Krum picks a clustered row, Multi-Krum (m = 3)
/// averages three of them; the outlier is never selected.
#[test]
fn outlier_is_rejected() {
    let j = rows(&[
        &[1.0, 0.0],
        &[1.1, 0.0],
        &[0.9, 0.1],
        &[1.0, -0.1],
        &[50.0, 50.0],
    ]);
    let out = Krum::new(1, 1).unwrap().aggregate(&j, &ctx()).unwrap();
    let w = out.weights.unwrap();
    assert_eq!(w.iter().filter(|&&x| x == 1.0).count(), 1);
    assert_eq!(w[4], 0.0);
    let out = Krum::new(1, 3).unwrap().aggregate(&j, &ctx()).unwrap();
    let w = out.weights.unwrap();
    assert_eq!(
        w.iter().filter(|&&x| (x - 1.0 / 3.0).abs() < 1e-15).count(),
        3
    );
    assert_eq!(w[4], 0.0);
    // The selected rows' mean.
    let g = to_vec(&out.gradient);
    assert!(g[0] > 0.8 && g[0] < 1.2 && g[1].abs() < 0.2, "{g:?}");
}

/// The paper scores with squared distances, TorchJD with plain ones; on these five
/// points (f = 0: sums over the 3 nearest) the two pick different rows: squared
/// scores (59.75, 33.16, 36.08, 52.32, 103.74), plain (12.96, 9.84, 9.08, 10.88, 17.58).
#[test]
fn squared_and_plain_distances() {
    let j = rows(&[
        &[2.1, 3.4],
        &[3.4, 1.0],
        &[6.5, 0.9],
        &[7.4, 0.7],
        &[5.9, 6.9],
    ]);
    let paper = Krum::new(0, 1).unwrap().aggregate(&j, &ctx()).unwrap();
    assert_eq!(paper.weights.unwrap(), vec![0.0, 1.0, 0.0, 0.0, 0.0]);
    let torchjd = Krum::torchjd(0, 1).unwrap().aggregate(&j, &ctx()).unwrap();
    assert_eq!(torchjd.weights.unwrap(), vec![0.0, 0.0, 1.0, 0.0, 0.0]);
}

#[test]
fn edge_cases() {
    aggregator_edge_cases(|| Box::new(Krum::new(1, 2).unwrap()), 5, 6);
    aggregator_edge_cases(|| Box::new(Krum::new(0, 1).unwrap()), 3, 4);
    // K too small for f, or fewer rows than m.
    let j = rows(&[&[1.0], &[2.0], &[3.0]]);
    assert!(matches!(
        Krum::new(1, 1).unwrap().aggregate(&j, &ctx()),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        Krum::new(0, 4).unwrap().aggregate(&j, &ctx()),
        Err(Error::Config(_))
    ));
    assert!(Krum::new(1, 0).is_err());
    assert!(matches!(
        Krum::new(0, 1)
            .unwrap()
            .aggregate(&rows(&[&[1.0, 2.0]]), &ctx()),
        Err(Error::Config(_))
    ));
    assert!(Krum::new(1, 1).unwrap().for_tasks(3).is_err());
    // Identical rows, a zero row, opposite rows, wild norms: a valid selection.
    let j = rows(&[
        &[1.0, 2.0],
        &[1.0, 2.0],
        &[0.0, 0.0],
        &[-1.0, -2.0],
        &[1e-6, 1e6],
    ]);
    let out = Krum::new(1, 1).unwrap().aggregate(&j, &ctx()).unwrap();
    let w = out.weights.unwrap();
    assert_eq!(w.iter().sum::<f64>(), 1.0);
    assert_eq!(w[4], 0.0);
    let out = Krum::new(0, 1)
        .unwrap()
        .aggregate(&rows(&[&[1.0], &[1.0], &[1.0]]), &ctx())
        .unwrap();
    assert_close(&to_vec(&out.gradient), &[1.0], 0.0, 0.0, "identical");
    assert!(matches!(
        Krum::new(0, 1)
            .unwrap()
            .for_tasks(4)
            .unwrap()
            .aggregate(&j, &ctx()),
        Err(Error::TaskCount {
            expected: 4,
            got: 5,
            ..
        })
    ));
}
