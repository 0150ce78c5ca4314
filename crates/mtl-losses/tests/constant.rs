//! Constant against TorchJD's `Constant` (golden `torchjd_Constant.json`, whose weights
//! are recorded per case) and the edge cases.

mod common;

use common::{aggregator_edge_cases, ctx, rows, run_golden, to_vec, vec_f64};
use mtl_core::Error;
use mtl_losses::methods::Constant;
use mtl_losses::Aggregator;

#[test]
fn golden_torchjd_constant() {
    let (n, skipped) = run_golden("torchjd_Constant.json", true, |case| {
        Box::new(Constant::new(vec_f64(&case["weights"])).unwrap())
    });
    assert_eq!(n, 21);
    assert!(skipped.is_empty());
}

#[test]
fn edge_cases() {
    aggregator_edge_cases(
        || Box::new(Constant::new(vec![0.5, -1.0, 2.0]).unwrap()),
        3,
        4,
    );
    let out = Constant::new(vec![2.0])
        .unwrap()
        .aggregate(&rows(&[&[1.0, -2.0]]), &ctx())
        .unwrap();
    assert_eq!(to_vec(&out.gradient), vec![2.0, -4.0]);
    // Identical, opposite, zero rows and wild norms: just the fixed combination.
    let mut c = Constant::new(vec![1.0, 2.0, 3.0]).unwrap();
    let j = rows(&[&[1.0, 2.0], &[-1.0, -2.0], &[0.0, 0.0]]);
    assert_eq!(
        to_vec(&c.aggregate(&j, &ctx()).unwrap().gradient),
        vec![-1.0, -2.0]
    );
    let j = rows(&[&[1e-6, 0.0], &[1e-6, 0.0], &[0.0, 1e6]]);
    assert_eq!(
        to_vec(&c.aggregate(&j, &ctx()).unwrap().gradient),
        vec![3e-6, 3e6]
    );
    // The number of weights fixes K.
    assert!(matches!(
        Constant::new(vec![1.0, 1.0])
            .unwrap()
            .aggregate(&rows(&[&[1.0], &[2.0], &[3.0]]), &ctx()),
        Err(Error::TaskCount {
            expected: 2,
            got: 3,
            ..
        })
    ));
    assert!(Constant::new(vec![]).is_err());
    assert!(matches!(
        Constant::new(vec![1.0, f64::NAN]),
        Err(Error::NonFinite { task: Some(1), .. })
    ));
}
