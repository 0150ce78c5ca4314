//! IMTL-L: closed-form gradients of the scaled loss, the stationary point e^{s}L = 1
//! reached by the trainer's optimiser, registry defaults and edge cases. (The golden
//! `libmtl_IMTL.json` covers IMTL's gradient half only; at LibMTL's s = 0 its loss half
//! is the identity, which `initial_weights_are_one` checks.)

mod common;

use common::ctx_at;
use mtl_core::Error;
use mtl_losses::methods::ImtlL;
use mtl_losses::Weighting;
use tch::{Device, Kind, Tensor};

#[test]
fn initial_weights_are_one() {
    let mut m = common::weighting("imtl_l", 3, 0);
    let losses = [0.5, 1.5, 3.0];
    let (total, g) = common::weighting_grad(m.as_mut(), &losses, &ctx_at(1, 0)).unwrap();
    assert_eq!(g, vec![1.0; 3]);
    assert_eq!(m.weights(), vec![1.0; 3]);
    assert!((total - 5.0).abs() < 1e-12);
    assert_eq!(m.parameters().len(), 1);
}

#[test]
fn closed_form_gradients() {
    let s = [0.3f64, -0.7];
    let l = [2.0f64, 0.4];
    let mut m = ImtlL::with_init(2, 0.0, Kind::Double, Device::Cpu).unwrap();
    tch::no_grad(|| m.parameters()[0].copy_(&Tensor::from_slice(&s)));
    let leaf = Tensor::from_slice(&l).set_requires_grad(true);
    let total = m.combine(&leaf, &ctx_at(1, 0)).unwrap();
    let expected_total: f64 = (0..2).map(|i| s[i].exp() * l[i] - s[i]).sum();
    assert!((total.double_value(&[]) - expected_total).abs() < 1e-12);
    let p = m.parameters()[0].shallow_clone();
    let grads = Tensor::run_backward(&[&total], &[&leaf, &p], false, false);
    let dl = common::to_vec(&grads[0]);
    let ds = common::to_vec(&grads[1]);
    for i in 0..2 {
        assert!((dl[i] - s[i].exp()).abs() < 1e-12);
        assert!((ds[i] - (s[i].exp() * l[i] - 1.0)).abs() < 1e-12);
        assert!((m.weights()[i] - s[i].exp()).abs() < 1e-12);
    }
}

#[test]
fn sgd_on_the_scales_balances_the_scaled_losses() {
    let mut m = ImtlL::with_init(3, 0.0, Kind::Double, Device::Cpu).unwrap();
    let losses = Tensor::from_slice(&[0.2f64, 1.0, 5.0]);
    let mut p = m.parameters()[0].shallow_clone();
    for _ in 0..3000 {
        let total = m.combine(&losses, &ctx_at(1, 0)).unwrap();
        let g = Tensor::run_backward(&[&total], &[&p], false, false);
        tch::no_grad(|| {
            let _ = p.f_sub_(&(&g[0] * 0.05)).unwrap();
        });
    }
    // e^{s} L = 1 for every task: s = −log L.
    let s = m.loss_scale().unwrap();
    for (s, l) in s.iter().zip([0.2f64, 1.0, 5.0]) {
        assert!((s + l.ln()).abs() < 1e-6, "s = {s}, −log L = {}", -l.ln());
    }
}

#[test]
fn edge_cases() {
    common::weighting_edge_cases(|k| Box::new(ImtlL::new(k)), 3);
    let (t, g) = common::weighting_grad(&mut ImtlL::new(1), &[0.4], &ctx_at(1, 0)).unwrap();
    assert!((t - 0.4).abs() < 1e-6 && g == vec![1.0]);
    assert!(ImtlL::with_init(0, 0.0, Kind::Float, Device::Cpu).is_err());
    assert!(ImtlL::with_init(2, f64::NAN, Kind::Float, Device::Cpu).is_err());
    assert!(ImtlL::with_init(2, 0.0, Kind::Int64, Device::Cpu).is_err());
    // A scale driven to overflow is reported, not propagated.
    let mut m = ImtlL::with_init(2, 0.0, Kind::Double, Device::Cpu).unwrap();
    tch::no_grad(|| m.parameters()[0].copy_(&Tensor::from_slice(&[0.0f64, 1e4])));
    assert!(matches!(
        m.combine(&Tensor::from_slice(&[1.0f64, 1.0]), &ctx_at(1, 0)),
        Err(Error::NonFinite { task: Some(1), .. })
    ));
}
