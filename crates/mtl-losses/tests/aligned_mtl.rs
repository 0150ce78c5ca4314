//! Aligned-MTL against TorchJD's `AlignedMTL` (p = 1/K, golden
//! `torchjd_AlignedMTL.json`) and LibMTL's `Aligned_MTL` (p = 1, golden
//! `libmtl_Aligned_MTL.json`), the alignment property, and the edge cases.

mod common;

use common::{aggregator_edge_cases, assert_close, ctx, rows, run_golden, sample, to_vec};
use mtl_core::Error;
use mtl_losses::gram::Gram;
use mtl_losses::methods::{AlignedMtl, AlignedPreference, AlignedScale};
use mtl_losses::Aggregator;

#[test]
fn golden_torchjd_aligned_mtl() {
    let (n, skipped) = run_golden("torchjd_AlignedMTL.json", true, |_| {
        Box::new(AlignedMtl::torchjd())
    });
    assert_eq!(n, 21);
    assert!(skipped.is_empty());
}

#[test]
fn golden_libmtl_aligned_mtl() {
    let (n, skipped) = run_golden("libmtl_Aligned_MTL.json", true, |_| {
        Box::new(AlignedMtl::new())
    });
    assert_eq!(n, 21);
    assert!(skipped.is_empty());
}

/// BG Bᵀ = σ·P (P the projector on the kept eigenvectors): the balanced gradients are
/// orthogonal with equal norms √σ along the principal directions. For full-rank G,
/// BGB = σI.
#[test]
fn balance_transformation_equalises() {
    for (k, d, seed) in [(2, 5, 1), (3, 7, 2), (5, 9, 3)] {
        let j = sample(k, d, seed);
        let gram = Gram::of(&j).unwrap();
        // Columns of B are the weights for p = eᵢ.
        let b: Vec<Vec<f64>> = (0..k)
            .map(|i| {
                let mut p = vec![0.0; k];
                p[i] = 1.0;
                AlignedMtl::new()
                    .with_preference(AlignedPreference::Vector(p))
                    .unwrap()
                    .weights(&gram, f64::EPSILON)
                    .unwrap()
            })
            .collect();
        let g = |i: usize, j: usize| gram.get(i, j);
        let mut bgb = vec![0.0; k * k];
        for r in 0..k {
            for c in 0..k {
                bgb[r * k + c] = (0..k)
                    .flat_map(|i| (0..k).map(move |j| (i, j)))
                    .map(|(i, j)| b[r][i] * g(i, j) * b[c][j])
                    .sum();
            }
        }
        let sigma = bgb[0];
        for r in 0..k {
            for c in 0..k {
                let want = if r == c { sigma } else { 0.0 };
                assert!((bgb[r * k + c] - want).abs() < 1e-10 * sigma, "{bgb:?}");
            }
        }
    }
}

#[test]
fn scale_modes() {
    // Orthogonal rows with norms 1, 2, 3: eigenvalues 1, 4, 9, so B = √σ diag(1, 1/2, 1/3).
    let j = rows(&[&[1.0, 0.0, 0.0], &[0.0, 2.0, 0.0], &[0.0, 0.0, 3.0]]);
    for (mode, sigma) in [
        (AlignedScale::Min, 1.0f64),
        (AlignedScale::Median, 4.0),
        (AlignedScale::Rmse, 14.0 / 3.0),
    ] {
        let out = AlignedMtl::new()
            .with_scale(mode)
            .aggregate(&j, &ctx())
            .unwrap();
        let s = sigma.sqrt();
        assert_close(
            &to_vec(&out.gradient),
            &[s, s, s],
            1e-13,
            0.0,
            &format!("{mode:?}"),
        );
    }
}

#[test]
fn edge_cases() {
    aggregator_edge_cases(|| Box::new(AlignedMtl::new()), 3, 6);
    // K = 1: B = 1 (σ = λ), so the row itself.
    let out = AlignedMtl::new()
        .aggregate(&rows(&[&[3.0, -4.0]]), &ctx())
        .unwrap();
    assert_close(&to_vec(&out.gradient), &[3.0, -4.0], 1e-14, 0.0, "K = 1");
    // Rank-deficient inputs (identical, opposite, zero rows) only use the kept
    // eigenvectors and stay finite.
    for j in [
        rows(&[&[1.0, 2.0], &[1.0, 2.0]]),
        rows(&[&[1.0, 2.0], &[-1.0, -2.0]]),
        rows(&[&[1.0, 0.0], &[0.0, 0.0], &[0.0, 2.0]]),
        rows(&[&[1e-6, 0.0], &[0.0, 1e6]]),
    ] {
        let out = AlignedMtl::new().aggregate(&j, &ctx()).unwrap();
        assert!(to_vec(&out.gradient).iter().all(|v| v.is_finite()));
    }
    // Identical rows: the one kept direction is g itself, σ = 2‖g‖², B = 11ᵀ/2, p = 1
    // gives w = (1, 1) and g_out = 2g.
    let out = AlignedMtl::new()
        .aggregate(&rows(&[&[1.0, 2.0], &[1.0, 2.0]]), &ctx())
        .unwrap();
    assert_close(&to_vec(&out.gradient), &[2.0, 4.0], 1e-12, 0.0, "identical");
    // An all-zero Jacobian: B = I.
    let out = AlignedMtl::torchjd()
        .aggregate(&rows(&[&[0.0, 0.0], &[0.0, 0.0]]), &ctx())
        .unwrap();
    assert_eq!(out.weights.unwrap(), vec![0.5, 0.5]);
    assert!(matches!(
        AlignedMtl::new()
            .for_tasks(2)
            .aggregate(&rows(&[&[1.0], &[2.0], &[3.0]]), &ctx()),
        Err(Error::TaskCount {
            expected: 2,
            got: 3,
            ..
        })
    ));
    assert!(AlignedMtl::new()
        .with_preference(AlignedPreference::Vector(vec![f64::NAN]))
        .is_err());
}
