//! DualProj against TorchJD's `DualProj` (golden `torchjd_DualProj.json`) and the edge
//! cases.

mod common;

use common::{aggregator_edge_cases, assert_close, ctx, dot, rows, run_golden, to_vec};
use mtl_core::Error;
use mtl_losses::methods::DualProj;
use mtl_losses::Aggregator;

#[test]
fn golden_torchjd_dualproj() {
    let (n, skipped) = run_golden("torchjd_DualProj.json", true, |_| Box::new(DualProj::new()));
    assert_eq!(n, 21);
    assert!(skipped.is_empty());
}

#[test]
fn edge_cases() {
    aggregator_edge_cases(|| Box::new(DualProj::new()), 4, 6);
    let out = DualProj::new()
        .aggregate(&rows(&[&[3.0, -4.0]]), &ctx())
        .unwrap();
    assert_close(&to_vec(&out.gradient), &[3.0, -4.0], 1e-12, 1e-12, "K = 1");
    let out = DualProj::new()
        .aggregate(&rows(&[&[1.0, 2.0], &[1.0, 2.0]]), &ctx())
        .unwrap();
    assert_close(
        &to_vec(&out.gradient),
        &[1.0, 2.0],
        1e-12,
        1e-12,
        "identical",
    );
    let out = DualProj::new()
        .aggregate(&rows(&[&[1.0, 2.0], &[-1.0, -2.0]]), &ctx())
        .unwrap();
    assert!(to_vec(&out.gradient).iter().all(|v| v.abs() < 1e-12));
    // g₁ = (1, 0), g₂ = (-1, 2): the mean (0, 1) conflicts with nothing; with
    // g₂ = (-3, 1) the mean (-1, 1/2) conflicts with g₁ and is projected onto g₁ ⟂.
    let out = DualProj::new()
        .with_eps(0.0, 0.0)
        .unwrap()
        .aggregate(&rows(&[&[1.0, 0.0], &[-3.0, 1.0]]), &ctx())
        .unwrap();
    let g = to_vec(&out.gradient);
    assert!(
        dot(&g, &[1.0, 0.0]).abs() < 1e-14 && (g[1] - 0.5).abs() < 1e-14,
        "{g:?}"
    );
    // A zero row and wild norms are fine.
    let out = DualProj::new()
        .aggregate(&rows(&[&[1e-6, 0.0], &[0.0, 0.0], &[-1e6, 1e6]]), &ctx())
        .unwrap();
    assert!(to_vec(&out.gradient).iter().all(|v| v.is_finite()));
    assert!(matches!(
        DualProj::for_tasks(3).aggregate(&rows(&[&[1.0], &[2.0]]), &ctx()),
        Err(Error::TaskCount {
            expected: 3,
            got: 2,
            ..
        })
    ));
}
