//! GLS against LibMTL's `GLS` (golden `libmtl_GLS.json`: d total / d losses), plus
//! properties and edge cases.

mod common;

use common::ctx_at;
use mtl_core::Error;
use mtl_losses::methods::Gls;
use mtl_losses::Weighting;
use tch::Tensor;

#[test]
fn golden_libmtl_gls() {
    let doc = common::load("libmtl_GLS.json");
    assert_eq!(doc["kind"], "loss_weighting");
    let cases = common::cases(&doc);
    assert_eq!(cases.len(), 3);
    for case in cases {
        let (name, losses, (rel, abs)) = common::weighting_case(case);
        let mut gls = Gls::new(losses.len());
        let (total, grad) = common::weighting_grad(&mut gls, &losses, &ctx_at(3, 0)).unwrap();
        let expected = common::vec_f64(&case["expected"]);
        common::assert_close(&grad, &expected, rel, abs, name);
        common::assert_close(&gls.weights(), &expected, rel, abs, name);
        common::assert_close(
            &Gls::weights_for(&losses).unwrap(),
            &expected,
            rel,
            abs,
            name,
        );
        let k = losses.len() as f64;
        let geo = losses.iter().product::<f64>().powf(1.0 / k);
        assert!((total - geo).abs() <= 1e-12 * geo);
        // LibMTL's returned weights are losses/(K·Π L), not the effective weights.
        let returned = common::vec_f64(&case["weights_returned"]);
        let prod: f64 = losses.iter().product();
        for (r, l) in returned.iter().zip(&losses) {
            assert!((r - l / (k * prod)).abs() <= 1e-9 * r.abs());
        }
    }
}

#[test]
fn scale_invariance_of_the_direction() {
    // Multiplying one loss by c multiplies the total by c^{1/K} and leaves the relative
    // gradient weights Lₖ·∂L/∂Lₖ equal across tasks.
    let mut gls = Gls::new(3);
    let (t1, g1) = common::weighting_grad(&mut gls, &[1.0, 2.0, 4.0], &ctx_at(3, 0)).unwrap();
    let (t2, _) = common::weighting_grad(&mut gls, &[1000.0, 2.0, 4.0], &ctx_at(3, 0)).unwrap();
    assert!((t2 / t1 - 10.0).abs() < 1e-12);
    let scaled: Vec<f64> = g1.iter().zip([1.0, 2.0, 4.0]).map(|(g, l)| g * l).collect();
    assert!(scaled.iter().all(|s| (s - scaled[0]).abs() < 1e-12));
}

#[test]
fn many_tasks_neither_overflow_nor_underflow() {
    let mut gls = Gls::new(400);
    let big = vec![1e300; 400];
    let (t, g) = common::weighting_grad(&mut gls, &big, &ctx_at(3, 0)).unwrap();
    assert!((t / 1e300 - 1.0).abs() < 1e-12);
    assert!(g.iter().all(|g| (g - 1.0 / 400.0).abs() < 1e-12));
    let small = vec![1e-300; 400];
    let (t, _) = common::weighting_grad(&mut gls, &small, &ctx_at(3, 0)).unwrap();
    assert!((t / 1e-300 - 1.0).abs() < 1e-12);
}

#[test]
fn edge_cases() {
    common::weighting_edge_cases(|k| Box::new(Gls::new(k)), 3);
    // K = 1: L itself.
    let (t, g) = common::weighting_grad(&mut Gls::new(1), &[0.3], &ctx_at(3, 0)).unwrap();
    assert!((t - 0.3).abs() < 1e-15 && (g[0] - 1.0).abs() < 1e-15);
    // Identical losses: L = Lₖ and every weight is 1/K.
    let (t, g) = common::weighting_grad(&mut Gls::new(4), &[0.7; 4], &ctx_at(3, 0)).unwrap();
    assert!((t - 0.7).abs() < 1e-15);
    assert!(g.iter().all(|g| (g - 0.25).abs() < 1e-15));
    // Zero or negative losses are errors.
    for bad in [0.0, -1.0] {
        assert!(matches!(
            Gls::new(2).combine(&Tensor::from_slice(&[1.0f64, bad]), &ctx_at(3, 0)),
            Err(Error::Config(_))
        ));
        assert!(Gls::weights_for(&[1.0, bad]).is_err());
    }
}
