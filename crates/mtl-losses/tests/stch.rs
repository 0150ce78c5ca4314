//! STCH: the warm-up, the nadir point measured over the warm-up epoch, the closed-form
//! weights of the smooth Tchebycheff function against autograd, its μ → 0 limit (the
//! Tchebycheff maximum), state round trip and edge cases. No golden file exists for it.

mod common;

use common::ctx_at;
use mtl_core::Error;
use mtl_losses::methods::Stch;
use mtl_losses::Weighting;
use tch::Tensor;

/// K μ log Σ exp(λₖ log(Lₖ/νₖ)/μ) computed naively.
fn g_mu(l: &[f64], nadir: &[f64], pref: &[f64], mu: f64) -> f64 {
    let k = l.len() as f64;
    let s: f64 = (0..l.len())
        .map(|i| (pref[i] * (l[i] / nadir[i]).ln() / mu).exp())
        .sum();
    k * mu * s.ln()
}

#[test]
fn warm_up_then_nadir_then_smooth_tchebycheff() {
    let mut m = common::weighting("stch", 2, 0);
    // Epochs 0..=3: Σ log L, weights 1/L.
    for epoch in 0..4 {
        let (t, g) = common::weighting_grad(m.as_mut(), &[2.0, 0.5], &ctx_at(0, epoch)).unwrap();
        assert!((t - (2.0f64.ln() + 0.5f64.ln())).abs() < 1e-12);
        common::assert_close(&g, &[0.5, 2.0], 1e-12, 0.0, "warm-up weights");
    }
    // Epoch 4 measures ν = mean = (1.5, 0.75).
    common::weighting_grad(m.as_mut(), &[1.0, 0.5], &ctx_at(1, 4)).unwrap();
    common::weighting_grad(m.as_mut(), &[2.0, 1.0], &ctx_at(2, 4)).unwrap();
    let nadir = [1.5, 0.75];
    let l = [1.2, 0.9];
    let (t, g) = common::weighting_grad(m.as_mut(), &l, &ctx_at(3, 5)).unwrap();
    assert!((t - g_mu(&l, &nadir, &[1.0, 1.0], 1.0)).abs() < 1e-12);
    // ∂/∂Lₖ = K softmax(l/μ)ₖ / Lₖ.
    let lk: Vec<f64> = (0..2).map(|i| (l[i] / nadir[i]).ln()).collect();
    let z: f64 = lk.iter().map(|x| x.exp()).sum();
    let expected: Vec<f64> = (0..2).map(|i| 2.0 * lk[i].exp() / z / l[i]).collect();
    common::assert_close(&g, &expected, 1e-9, 1e-15, "stch weights (autograd)");
    common::assert_close(&m.weights(), &expected, 1e-9, 1e-15, "stch weights");
}

#[test]
fn preference_and_mu_against_closed_form() {
    let mut m = Stch::new(3)
        .with_warmup_epochs(0)
        .with_mu(0.3)
        .unwrap()
        .with_preference(vec![1.0, 2.0, 0.5])
        .unwrap();
    let nadir = [1.0, 2.0, 4.0];
    common::weighting_grad(&mut m, &nadir, &ctx_at(0, 0)).unwrap();
    // ν is fixed by the first step after the measuring epoch.
    assert_eq!(m.nadir(), None);
    let l = [0.8, 2.5, 3.0];
    let (t, g) = common::weighting_grad(&mut m, &l, &ctx_at(1, 1)).unwrap();
    assert_eq!(m.nadir(), Some(&nadir[..]));
    let pref = [1.0, 2.0, 0.5];
    assert!((t - g_mu(&l, &nadir, &pref, 0.3)).abs() < 1e-12);
    // Finite differences of the closed form.
    for i in 0..3 {
        let h = 1e-6;
        let mut up = l;
        up[i] += h;
        let mut down = l;
        down[i] -= h;
        let fd = (g_mu(&up, &nadir, &pref, 0.3) - g_mu(&down, &nadir, &pref, 0.3)) / (2.0 * h);
        assert!((g[i] - fd).abs() < 1e-6, "task {i}: {} vs {fd}", g[i]);
    }
    common::assert_close(&m.weights(), &g, 1e-9, 1e-15, "weights");
}

#[test]
fn small_mu_tends_to_the_tchebycheff_maximum() {
    let mut m = Stch::new(3).with_warmup_epochs(0).with_mu(1e-4).unwrap();
    common::weighting_grad(&mut m, &[1.0, 1.0, 1.0], &ctx_at(0, 0)).unwrap();
    let l = [1.5, 3.0, 0.2];
    let (t, g) = common::weighting_grad(&mut m, &l, &ctx_at(1, 1)).unwrap();
    assert!((t - 3.0 * 3.0f64.ln()).abs() < 1e-3);
    // All the weight on the worst task: K / L₁.
    assert!((g[1] - 1.0).abs() < 1e-9 && g[0].abs() < 1e-9 && g[2].abs() < 1e-9);
    // No overflow with losses far above the nadir.
    let (t, g) = common::weighting_grad(&mut m, &[1e200, 1.0, 1.0], &ctx_at(2, 1)).unwrap();
    assert!(t.is_finite() && g.iter().all(|g| g.is_finite()));
}

#[test]
fn identical_normalised_losses_and_k1() {
    let mut m = Stch::new(3).with_warmup_epochs(0);
    common::weighting_grad(&mut m, &[1.0, 2.0, 4.0], &ctx_at(0, 0)).unwrap();
    // Each task at twice its nadir: equal softmax, weight 1/Lₖ.
    let (t, g) = common::weighting_grad(&mut m, &[2.0, 4.0, 8.0], &ctx_at(1, 1)).unwrap();
    assert!((t - 3.0 * (2.0f64.ln() + 3.0f64.ln())).abs() < 1e-12);
    common::assert_close(&g, &[0.5, 0.25, 0.125], 1e-12, 0.0, "identical");
    let mut one = Stch::new(1).with_warmup_epochs(1);
    common::weighting_grad(&mut one, &[4.0], &ctx_at(0, 0)).unwrap();
    common::weighting_grad(&mut one, &[2.0], &ctx_at(1, 1)).unwrap();
    let (t, g) = common::weighting_grad(&mut one, &[1.0], &ctx_at(2, 2)).unwrap();
    assert!((t - 0.5f64.ln()).abs() < 1e-12 && (g[0] - 1.0).abs() < 1e-12);
}

#[test]
fn unmeasured_nadir_comes_from_the_first_losses_after_warm_up() {
    let mut m = Stch::new(2).with_warmup_epochs(1);
    common::weighting_grad(&mut m, &[1.0, 1.0], &ctx_at(0, 0)).unwrap();
    // Epoch 1 (the measuring epoch) is skipped.
    let (t, _) = common::weighting_grad(&mut m, &[3.0, 0.5], &ctx_at(1, 2)).unwrap();
    assert_eq!(m.nadir(), Some(&[3.0, 0.5][..]));
    assert!((t - 2.0 * 2.0f64.ln()).abs() < 1e-12);
}

#[test]
fn state_round_trip() {
    let mut a = Stch::new(2).with_warmup_epochs(0);
    common::weighting_grad(&mut a, &[1.0, 3.0], &ctx_at(0, 0)).unwrap();
    let mut b = Stch::new(2).with_warmup_epochs(0);
    b.load_state(&a.state()).unwrap();
    let ga = common::weighting_grad(&mut a, &[0.5, 2.0], &ctx_at(1, 1)).unwrap();
    let gb = common::weighting_grad(&mut b, &[0.5, 2.0], &ctx_at(1, 1)).unwrap();
    assert_eq!(ga, gb);
    assert_eq!(b.nadir(), Some(&[1.0, 3.0][..]));
    assert!(Stch::new(3).load_state(&a.state()).is_err());
    let bad = serde_json::json!({"sums": [0.0, 0.0], "count": 0, "nadir": [1.0, 0.0]});
    assert!(Stch::new(2).load_state(&bad).is_err());
}

#[test]
fn edge_cases() {
    common::weighting_edge_cases(|k| Box::new(Stch::new(k)), 3);
    common::weighting_edge_cases(|k| Box::new(Stch::new(k).with_warmup_epochs(0)), 2);
    assert!(matches!(
        Stch::new(2).combine(&Tensor::from_slice(&[1.0f64, -0.1]), &ctx_at(0, 0)),
        Err(Error::Config(_))
    ));
    // A zero-mean nadir cannot normalise.
    let mut m = Stch::new(2).with_warmup_epochs(0);
    common::weighting_grad(&mut m, &[0.0, 1.0], &ctx_at(0, 0)).unwrap();
    assert!(matches!(
        m.combine(&Tensor::from_slice(&[1.0f64, 1.0]), &ctx_at(1, 1)),
        Err(Error::Config(_))
    ));
    assert!(Stch::new(2).with_mu(0.0).is_err());
    assert!(Stch::new(2).with_preference(vec![1.0]).is_err());
    assert!(Stch::new(2).with_preference(vec![1.0, -1.0]).is_err());
}
