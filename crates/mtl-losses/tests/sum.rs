//! Sum against TorchJD's `Sum` (golden `torchjd_Sum.json`) and the edge cases.

mod common;

use common::{aggregator_edge_cases, ctx, rows, run_golden, to_vec};
use mtl_core::Error;
use mtl_losses::methods::Sum;
use mtl_losses::Aggregator;

#[test]
fn golden_torchjd_sum() {
    let (n, skipped) = run_golden("torchjd_Sum.json", true, |_| Box::new(Sum::new()));
    assert_eq!(n, 21);
    assert!(skipped.is_empty());
}

#[test]
fn edge_cases() {
    aggregator_edge_cases(|| Box::new(Sum::new()), 3, 5);
    let out = Sum::new()
        .aggregate(&rows(&[&[1e-6, 1e6], &[1e6, 0.0]]), &ctx())
        .unwrap();
    assert_eq!(to_vec(&out.gradient), vec![1e6 + 1e-6, 1e6]);
    // K = 1, identical, opposite, and zero rows.
    let out = Sum::new()
        .aggregate(&rows(&[&[3.0, -4.0]]), &ctx())
        .unwrap();
    assert_eq!(to_vec(&out.gradient), vec![3.0, -4.0]);
    let out = Sum::new()
        .aggregate(&rows(&[&[1.0, 2.0], &[1.0, 2.0]]), &ctx())
        .unwrap();
    assert_eq!(to_vec(&out.gradient), vec![2.0, 4.0]);
    let out = Sum::new()
        .aggregate(&rows(&[&[1.0, 2.0], &[0.0, 0.0], &[-1.0, -2.0]]), &ctx())
        .unwrap();
    assert_eq!(to_vec(&out.gradient), vec![0.0, 0.0]);
    let out = Sum::new()
        .aggregate(&rows(&[&[1e-6, 1e6], &[1e6, 0.0]]), &ctx())
        .unwrap();
    assert_eq!(to_vec(&out.gradient), vec![1e6 + 1e-6, 1e6]);
    assert!(matches!(
        Sum::for_tasks(4).aggregate(&rows(&[&[1.0]]), &ctx()),
        Err(Error::TaskCount {
            expected: 4,
            got: 1,
            ..
        })
    ));
}
