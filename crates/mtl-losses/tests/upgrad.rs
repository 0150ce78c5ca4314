//! UPGrad against TorchJD's `UPGrad` and LibMTL's `UPGrad` (golden
//! `torchjd_UPGrad.json`, `libmtl_UPGrad.json`: the same defaults, identical outputs),
//! and the edge cases.

mod common;

use common::{aggregator_edge_cases, ctx, dot, rows, rows_of, run_golden, to_vec};
use mtl_core::Error;
use mtl_losses::methods::UpGrad;
use mtl_losses::Aggregator;

#[test]
fn golden_torchjd_upgrad() {
    let (n, skipped) = run_golden("torchjd_UPGrad.json", true, |_| Box::new(UpGrad::new()));
    assert_eq!(n, 21);
    assert!(skipped.is_empty());
}

#[test]
fn golden_libmtl_upgrad() {
    let (n, skipped) = run_golden("libmtl_UPGrad.json", true, |_| Box::new(UpGrad::new()));
    assert_eq!(n, 21);
    assert!(skipped.is_empty());
}

#[test]
fn edge_cases() {
    aggregator_edge_cases(|| Box::new(UpGrad::new()), 4, 6);
    // K = 1: the row itself.
    let out = UpGrad::new()
        .aggregate(&rows(&[&[3.0, -4.0]]), &ctx())
        .unwrap();
    support_close(&to_vec(&out.gradient), &[3.0, -4.0], 1e-12);
    // Identical rows: nothing conflicts, the mean is returned.
    let out = UpGrad::new()
        .aggregate(&rows(&[&[1.0, 2.0], &[1.0, 2.0]]), &ctx())
        .unwrap();
    support_close(&to_vec(&out.gradient), &[1.0, 2.0], 1e-12);
    // Exactly opposite rows: the dual cone is a hyperplane ⟂ g, so the output is ~0.
    let out = UpGrad::new()
        .aggregate(&rows(&[&[1.0, 2.0], &[-1.0, -2.0]]), &ctx())
        .unwrap();
    assert!(to_vec(&out.gradient).iter().all(|v| v.abs() < 1e-12));
    // A zero row does not disturb the others (with reg_eps = 0 it is exact).
    let j = rows(&[&[1.0, 0.0], &[0.0, 0.0], &[0.0, 1.0]]);
    let out = UpGrad::new()
        .with_eps(1e-4, 0.0)
        .unwrap()
        .aggregate(&j, &ctx())
        .unwrap();
    support_close(&to_vec(&out.gradient), &[1.0 / 3.0, 1.0 / 3.0], 1e-12);
    // Norms 1e-6 vs 1e6 with reg_eps = 0: the exact projections never conflict.
    let j = rows(&[&[1e-6, 0.0, 1e-6], &[-1e6, 1e6, 0.0]]);
    let out = UpGrad::new()
        .with_eps(0.0, 0.0)
        .unwrap()
        .aggregate(&j, &ctx())
        .unwrap();
    let g = to_vec(&out.gradient);
    for r in rows_of(&j) {
        let n2 = dot(&r, &r);
        assert!(
            dot(&g, &r) >= -1e-12 * n2.sqrt() * dot(&g, &g).sqrt(),
            "{g:?}"
        );
    }
    // K fixed by the constructor or the preference vector.
    assert!(matches!(
        UpGrad::for_tasks(3).aggregate(&rows(&[&[1.0], &[2.0]]), &ctx()),
        Err(Error::TaskCount {
            expected: 3,
            got: 2,
            ..
        })
    ));
    let mut p = UpGrad::new().with_pref_vector(vec![1.0, 0.0]).unwrap();
    assert!(matches!(
        p.aggregate(&rows(&[&[1.0], &[2.0], &[3.0]]), &ctx()),
        Err(Error::TaskCount { .. })
    ));
    assert!(UpGrad::new().with_eps(-1.0, 0.0).is_err());
    assert!(UpGrad::new().with_pref_vector(vec![f64::NAN]).is_err());
}

#[test]
fn preference_vector_selects_projections() {
    // p = e₁ keeps only the projection of g₁: g₁ = (1, 0), g₂ = (-1, 1) → (1/2, 1/2).
    let j = rows(&[&[1.0, 0.0], &[-1.0, 1.0]]);
    let mut a = UpGrad::new()
        .with_pref_vector(vec![1.0, 0.0])
        .unwrap()
        .with_eps(0.0, 0.0)
        .unwrap();
    let out = a.aggregate(&j, &ctx()).unwrap();
    support_close(&to_vec(&out.gradient), &[0.5, 0.5], 1e-14);
}

fn support_close(a: &[f64], e: &[f64], tol: f64) {
    common::assert_close(a, e, tol, tol, "edge case");
}
