//! MoCo: two steps computed by hand from the update rule (both simplex maps, ρ > 0),
//! tracking of a constant gradient, convergence of λ to the min-norm weights under the
//! paper's projection, and edge cases. No golden file exists for it.

mod common;

use common::ctx_with;
use mtl_core::Error;
use mtl_losses::gram::Gram;
use mtl_losses::methods::{MoCo, MocoConfig, MocoSimplex};
use mtl_losses::solvers::min_norm_simplex;
use mtl_losses::Aggregator;

/// The update rule on plain vectors.
struct Reference {
    config: MocoConfig,
    t: f64,
    y: Vec<Vec<f64>>,
    lambda: Vec<f64>,
}

impl Reference {
    fn step(&mut self, rows: &[Vec<f64>], losses: &[f64]) -> Vec<f64> {
        let k = rows.len();
        self.t += 1.0;
        let beta = self.config.beta / self.t.powf(self.config.beta_sigma);
        let gamma = self.config.gamma / self.t.powf(self.config.gamma_sigma);
        for i in 0..k {
            let n = common::dot(&rows[i], &rows[i]).sqrt();
            for (y, x) in self.y[i].iter_mut().zip(&rows[i]) {
                let target = x / (n + 1e-8) * losses[i];
                *y -= beta * (*y - target);
            }
        }
        let stepped: Vec<f64> = (0..k)
            .map(|i| {
                let g: f64 = (0..k)
                    .map(|j| common::dot(&self.y[i], &self.y[j]) * self.lambda[j])
                    .sum::<f64>()
                    + self.config.rho * self.lambda[i];
                self.lambda[i] - gamma * g
            })
            .collect();
        self.lambda = match self.config.simplex {
            MocoSimplex::Softmax => {
                let z: f64 = stepped.iter().map(|v| v.exp()).sum();
                stepped.iter().map(|v| v.exp() / z).collect()
            }
            MocoSimplex::Projection => {
                // K = 2: the projection of (a, b) is clamp((1 + a − b)/2) and its rest.
                assert_eq!(k, 2);
                let x = ((1.0 + stepped[0] - stepped[1]) / 2.0).clamp(0.0, 1.0);
                vec![x, 1.0 - x]
            }
        };
        (0..rows[0].len())
            .map(|d| (0..k).map(|i| self.lambda[i] * self.y[i][d]).sum())
            .collect()
    }
}

#[test]
fn steps_match_the_update_rule() {
    for simplex in [MocoSimplex::Softmax, MocoSimplex::Projection] {
        let config = MocoConfig {
            rho: 0.3,
            gamma: 2.0,
            simplex,
            ..MocoConfig::default()
        };
        let mut moco = MoCo::with_config(2, config).unwrap();
        let mut reference = Reference {
            config,
            t: 0.0,
            y: vec![vec![0.0; 4]; 2],
            lambda: vec![0.5, 0.5],
        };
        for (t, seed) in [11u64, 12, 13].iter().enumerate() {
            let j = common::sample(2, 4, *seed);
            let losses = [0.7 + t as f64, 0.3];
            let out = moco.aggregate(&j, &ctx_with(t as u64, &losses)).unwrap();
            assert!(out.weights.is_none());
            let expected = reference.step(&common::rows_of(&j), &losses);
            let what = format!("{simplex:?} step {t}");
            common::assert_close(
                &common::to_vec(&out.gradient),
                &expected,
                1e-9,
                1e-12,
                &what,
            );
            common::assert_close(moco.lambda(), &reference.lambda, 1e-9, 1e-12, &what);
        }
    }
}

#[test]
fn tracking_converges_to_the_normalised_gradients() {
    let j = common::sample(3, 5, 4);
    let losses = [1.0, 2.0, 0.5];
    let mut moco = common::aggregator("moco", 3, 0);
    for t in 0..600 {
        moco.aggregate(&j, &ctx_with(t, &losses)).unwrap();
    }
    let mut check = MoCo::new(3);
    for t in 0..600 {
        check.aggregate(&j, &ctx_with(t, &losses)).unwrap();
    }
    let y = common::rows_of(check.tracked().unwrap());
    for (i, row) in common::rows_of(&j).iter().enumerate() {
        let n = common::dot(row, row).sqrt();
        let target: Vec<f64> = row.iter().map(|x| x / n * losses[i]).collect();
        common::assert_close(&y[i], &target, 1e-6, 1e-9, &format!("row {i}"));
    }
}

#[test]
fn projected_lambda_reaches_the_min_norm_weights() {
    let j = common::rows(&[&[1.0, 0.1], &[-0.2, 1.0], &[0.6, 0.7]]);
    let losses = [1.0, 1.0, 1.0];
    let config = MocoConfig {
        simplex: MocoSimplex::Projection,
        gamma: 1.0,
        ..MocoConfig::default()
    };
    let mut moco = MoCo::with_config(3, config).unwrap();
    for t in 0..4000 {
        moco.aggregate(&j, &ctx_with(t, &losses)).unwrap();
    }
    let y = moco.tracked().unwrap();
    let gram = Gram::of(y).unwrap();
    let w = min_norm_simplex(gram.as_slice(), 3).unwrap();
    common::assert_close(moco.lambda(), &w, 1e-3, 1e-4, "min-norm weights");
}

#[test]
fn projection_onto_the_simplex() {
    // λ − γ(YYᵀ)λ with YYᵀ = diag(−0.8, 0.4)/γ·2 gives (0.9, 0.3): projected (0.8, 0.2).
    let yy = Gram::from_vec(2, vec![-0.8, 0.0, 0.0, 0.4]).unwrap();
    let l = MoCo::lambda_step(&[0.5, 0.5], &yy, 1.0, 0.0, MocoSimplex::Projection);
    common::assert_close(&l, &[0.8, 0.2], 1e-15, 0.0, "projection");
    let l = MoCo::lambda_step(&[0.5, 0.5], &yy, 10.0, 0.0, MocoSimplex::Projection);
    assert_eq!(l, vec![1.0, 0.0]);
    let l = MoCo::lambda_step(&[0.5, 0.5], &yy, 1.0, 0.0, MocoSimplex::Softmax);
    assert!((l[0] - 1.0 / (1.0 + (-0.6f64).exp())).abs() < 1e-15);
}

#[test]
fn edge_cases() {
    let losses = [1.0, 2.0, 3.0];
    let j = common::sample(3, 5, 1);
    let bad = common::with_entry(&j, 2, f64::INFINITY);
    assert!(matches!(
        MoCo::new(3).aggregate(&bad, &ctx_with(7, &losses)),
        Err(Error::NonFinite {
            task: Some(0),
            step: Some(7),
            ..
        })
    ));
    assert!(matches!(
        MoCo::new(3).aggregate(&j, &ctx_with(0, &[])),
        Err(Error::TaskCount { .. })
    ));
    assert!(matches!(
        MoCo::new(3).aggregate(&j, &ctx_with(0, &[1.0, f64::NAN, 1.0])),
        Err(Error::NonFinite { task: Some(1), .. })
    ));
    assert!(matches!(
        MoCo::new(3).aggregate(&j, &ctx_with(0, &[1.0, -1.0, 1.0])),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        MoCo::new(2).aggregate(&j, &ctx_with(0, &losses)),
        Err(Error::TaskCount {
            expected: 2,
            got: 3,
            ..
        })
    ));
    common::assert_f32_follows_f64(
        || Box::new(MoCo::new(3)),
        &j,
        &ctx_with(0, &losses),
        (1e-5, 1e-6),
        "f32",
    );
    // K = 1: λ = 1, the output is β₁·L·g/‖g‖.
    let out = MoCo::new(1)
        .aggregate(&common::rows(&[&[3.0, 4.0]]), &ctx_with(0, &[2.0]))
        .unwrap();
    common::assert_close(
        &common::to_vec(&out.gradient),
        &[0.6, 0.8],
        1e-7,
        0.0,
        "K=1",
    );
    // Identical rows and losses: λ stays uniform.
    let mut moco = MoCo::new(2);
    for t in 0..3 {
        moco.aggregate(
            &common::rows(&[&[1.0, 2.0], &[1.0, 2.0]]),
            &ctx_with(t, &[1.0, 1.0]),
        )
        .unwrap();
        assert!((moco.lambda()[0] - 0.5).abs() < 1e-15);
    }
    // A zero row tracks zero and stays finite.
    let out = MoCo::new(2)
        .aggregate(
            &common::rows(&[&[0.0, 0.0], &[0.0, 1.0]]),
            &ctx_with(0, &[1.0, 1.0]),
        )
        .unwrap();
    assert!(common::to_vec(&out.gradient).iter().all(|v| v.is_finite()));
    // Another width than the tracked one.
    let mut moco = MoCo::new(3);
    moco.aggregate(&j, &ctx_with(0, &losses)).unwrap();
    assert!(matches!(
        moco.aggregate(&common::sample(3, 4, 1), &ctx_with(1, &losses)),
        Err(Error::Shape { .. })
    ));
    let bad_config = MocoConfig {
        beta: 0.0,
        ..MocoConfig::default()
    };
    assert!(MoCo::with_config(2, bad_config).is_err());
}

#[test]
fn state_round_trip() {
    let (a, b) = common::assert_state_round_trip(MoCo::new, &[1.0, 0.5]);
    assert_eq!(a.lambda(), b.lambda());
}
