//! TrimmedMean against TorchJD's `TrimmedMean(trim_number=1)` (golden
//! `torchjd_TrimmedMean.json`; K < 3 cases are skipped there) and the edge cases.

mod common;

use common::{aggregator_edge_cases, assert_close, ctx, rows, run_golden, to_vec};
use mtl_core::Error;
use mtl_losses::methods::TrimmedMean;
use mtl_losses::Aggregator;

#[test]
fn golden_torchjd_trimmed_mean() {
    let (n, skipped) = run_golden("torchjd_TrimmedMean.json", true, |_| {
        Box::new(TrimmedMean::new(1))
    });
    assert_eq!(n, 12);
    assert_eq!(skipped.len(), 9);
}

#[test]
fn coordinate_wise_trimming() {
    let j = rows(&[
        &[1.0, -5.0],
        &[100.0, 0.0],
        &[2.0, 1.0],
        &[3.0, 2.0],
        &[-7.0, 3.0],
    ]);
    let out = TrimmedMean::new(1).aggregate(&j, &ctx()).unwrap();
    // Column 0 keeps 1, 2, 3; column 1 keeps 0, 1, 2.
    assert_close(&to_vec(&out.gradient), &[2.0, 1.0], 1e-15, 0.0, "trim 1");
    let out = TrimmedMean::new(0).aggregate(&j, &ctx()).unwrap();
    assert_close(
        &to_vec(&out.gradient),
        &[99.0 / 5.0, 0.2],
        1e-15,
        1e-15,
        "trim 0 = mean",
    );
    assert!(out.weights.is_none());
}

#[test]
fn edge_cases() {
    aggregator_edge_cases(|| Box::new(TrimmedMean::new(1)), 4, 6);
    // K = 1 with t = 0 is the row; t = 1 needs K ≥ 3.
    let out = TrimmedMean::new(0)
        .aggregate(&rows(&[&[3.0, -4.0]]), &ctx())
        .unwrap();
    assert_eq!(to_vec(&out.gradient), vec![3.0, -4.0]);
    let j = rows(&[&[1.0, 2.0], &[-1.0, -2.0]]);
    assert!(matches!(
        TrimmedMean::new(1).aggregate(&j, &ctx()),
        Err(Error::Config(_))
    ));
    assert!(TrimmedMean::new(1).for_tasks(2).is_err());
    // Opposite rows with a zero row between them: the median, 0.
    let j = rows(&[&[1.0, 2.0], &[0.0, 0.0], &[-1.0, -2.0]]);
    assert_eq!(
        to_vec(&TrimmedMean::new(1).aggregate(&j, &ctx()).unwrap().gradient),
        vec![0.0, 0.0]
    );
    // Identical rows: the row.
    let j = rows(&[&[1.0, 2.0], &[1.0, 2.0], &[1.0, 2.0]]);
    assert_eq!(
        to_vec(&TrimmedMean::new(1).aggregate(&j, &ctx()).unwrap().gradient),
        vec![1.0, 2.0]
    );
    // Wild norms: the extreme values are exactly the ones dropped.
    let j = rows(&[&[1e-6, 1e6], &[1.0, 1.0], &[1e6, 1e-6]]);
    assert_eq!(
        to_vec(&TrimmedMean::new(1).aggregate(&j, &ctx()).unwrap().gradient),
        vec![1.0, 1.0]
    );
    assert!(matches!(
        TrimmedMean::new(1)
            .for_tasks(4)
            .unwrap()
            .aggregate(&j, &ctx()),
        Err(Error::TaskCount {
            expected: 4,
            got: 3,
            ..
        })
    ));
}
