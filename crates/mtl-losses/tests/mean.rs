//! Mean against TorchJD's `Mean` (golden `torchjd_Mean.json`) and the edge cases.

mod common;

use common::{aggregator_edge_cases, ctx, rows, run_golden, to_vec};
use mtl_core::Error;
use mtl_losses::methods::Mean;
use mtl_losses::Aggregator;

#[test]
fn golden_torchjd_mean() {
    let (n, skipped) = run_golden("torchjd_Mean.json", true, |_| Box::new(Mean::new()));
    assert_eq!(n, 21);
    assert!(skipped.is_empty());
}

#[test]
fn edge_cases() {
    aggregator_edge_cases(|| Box::new(Mean::new()), 3, 5);
    // K = 1 is the row itself.
    let out = Mean::new()
        .aggregate(&rows(&[&[1.0, -2.0]]), &ctx())
        .unwrap();
    assert_eq!(to_vec(&out.gradient), vec![1.0, -2.0]);
    // Opposite rows cancel.
    let out = Mean::new()
        .aggregate(&rows(&[&[1.0, -2.0], &[-1.0, 2.0]]), &ctx())
        .unwrap();
    assert_eq!(to_vec(&out.gradient), vec![0.0, 0.0]);
    // Identical rows, a zero row, norms 1e-6 vs 1e6.
    let out = Mean::new()
        .aggregate(&rows(&[&[1.0, 2.0], &[1.0, 2.0]]), &ctx())
        .unwrap();
    assert_eq!(to_vec(&out.gradient), vec![1.0, 2.0]);
    let out = Mean::new()
        .aggregate(&rows(&[&[3.0, 0.0], &[0.0, 0.0], &[0.0, 3.0]]), &ctx())
        .unwrap();
    assert_eq!(to_vec(&out.gradient), vec![1.0, 1.0]);
    let out = Mean::new()
        .aggregate(&rows(&[&[1e-6, 0.0], &[0.0, 1e6]]), &ctx())
        .unwrap();
    assert_eq!(to_vec(&out.gradient), vec![0.5e-6, 0.5e6]);
    // Built for K = 2, given 3.
    let j = rows(&[&[1.0], &[2.0], &[3.0]]);
    assert!(matches!(
        Mean::for_tasks(2).aggregate(&j, &ctx()),
        Err(Error::TaskCount {
            expected: 2,
            got: 3,
            ..
        })
    ));
}
