//! Gradient diagnostics: they do not change training, they have the right shape and
//! properties, and the TAG affinity matches a lookahead computed by hand.

mod common;

use common::{config, model, synthetic, torch_lock, weights};
use mtl::core::task_jacobian;
use mtl::prelude::*;
use mtl::DiagnosticsConfig;

#[test]
fn diagnostics_leave_training_unchanged() {
    let _torch = torch_lock();
    let data = synthetic(96, 31);
    for method in ["ew", "pcgrad"] {
        let mut plain = model(3);
        Trainer::new(config(method).epochs(2))
            .unwrap()
            .fit(&mut plain, &data, None)
            .unwrap();
        let mut watched = model(3);
        let report = Trainer::new(
            config(method)
                .epochs(2)
                .diagnostics(DiagnosticsConfig::every(2).with_affinity()),
        )
        .unwrap()
        .fit(&mut watched, &data, None)
        .unwrap();
        assert_eq!(weights(&plain), weights(&watched), "{method}");
        // 6 steps per epoch, 12 in all, sampled at 0, 2, ..., 10.
        let steps: Vec<u64> = report.diagnostics.iter().map(|s| s.step).collect();
        assert_eq!(steps, [0, 2, 4, 6, 8, 10]);
        for s in &report.diagnostics {
            assert_eq!(s.cosine.len(), 2);
            assert!((s.cosine[0][0] - 1.0).abs() < 1e-9);
            assert_eq!(s.cosine[0][1], s.cosine[1][0]);
            assert!(s.cosine[0][1].abs() <= 1.0);
            assert!(s.norms.iter().all(|n| *n > 0.0));
            let z = s.affinity.as_ref().unwrap();
            assert!(
                z[0][0] > 0.0 && z[1][1] > 0.0,
                "own-gradient lookahead: {z:?}"
            );
        }
    }
    assert!(Trainer::new(config("ew").diagnostics(DiagnosticsConfig::every(0))).is_err());
}

#[test]
fn affinity_matches_a_hand_computed_lookahead() {
    let _torch = torch_lock();
    let data = synthetic(64, 32);
    let eta = 0.5;
    // One full batch per epoch: step 0 sees every row at the initial weights.
    let mut m = model(8);
    let reference = model(8);
    let report = Trainer::new(
        config("ew")
            .epochs(1)
            .batch_size(64)
            .diagnostics(DiagnosticsConfig::every(1).with_affinity().affinity_lr(eta)),
    )
    .unwrap()
    .fit(&mut m, &data, None)
    .unwrap();
    let z = report.diagnostics[0].affinity.clone().unwrap();

    let batch = data.batches(64, None).unwrap().next().unwrap();
    let groups = reference.param_groups().unwrap();
    let shared = groups.shared_tensors();
    let losses = |r: &MultiTaskModel| -> Vec<tch::Tensor> {
        let f = r.forward_t(&batch.x, false).unwrap();
        r.losses(&f.outputs, &batch.targets).unwrap()
    };
    let l0 = losses(&reference);
    let before: Vec<f64> = l0.iter().map(|l| l.double_value(&[])).collect();
    let jac = task_jacobian(&l0, &shared).unwrap();
    let (cos, norms) = mtl::diagnostics::gradient_cosines(&jac).unwrap();
    assert!((cos[0][1] - report.diagnostics[0].cosine[0][1]).abs() < 1e-5);
    assert!((norms[1] / report.diagnostics[0].norms[1] - 1.0).abs() < 1e-5);
    for i in 0..2 {
        let saved: Vec<tch::Tensor> = shared.iter().map(|p| p.detach().copy()).collect();
        tch::no_grad(|| {
            let mut offset = 0;
            for p in &shared {
                let n = p.numel() as i64;
                let g = jac.get(i).narrow(0, offset, n).view(p.size().as_slice());
                let _ = p.shallow_clone().f_sub_(&(g * eta)).unwrap();
                offset += n;
            }
        });
        let after: Vec<f64> = losses(&reference)
            .iter()
            .map(|l| l.double_value(&[]))
            .collect();
        for j in 0..2 {
            let expected = 1.0 - after[j] / before[j];
            assert!(
                (z[i as usize][j] - expected).abs() < 1e-5,
                "Z[{i}][{j}] = {} vs {expected}",
                z[i as usize][j]
            );
        }
        tch::no_grad(|| {
            for (p, s) in shared.iter().zip(&saved) {
                p.shallow_clone().copy_(s);
            }
        });
    }
}
