//! DB-MTL against LibMTL's `DB_MTL` (golden `libmtl_DB_MTL.json`, a stateful sequence:
//! the aggregated gradient and the EMA buffer after every step; β = 0.9, σ = 0), plus
//! the balancing properties and edge cases.

mod common;

use common::ctx_with;
use mtl_core::Error;
use mtl_losses::methods::DbMtl;
use mtl_losses::Aggregator;

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

#[test]
fn golden_libmtl_db_mtl_sequence() {
    let doc = common::load("libmtl_DB_MTL.json");
    assert_eq!(doc["kind"], "stateful_sequence");
    assert_eq!(doc["params"]["DB_beta"].as_f64(), Some(0.9));
    assert_eq!(doc["params"]["DB_beta_sigma"].as_f64(), Some(0.0));
    let cases = common::cases(&doc);
    assert_eq!(cases.len(), 2);
    for case in cases {
        let (name, k, (rel, abs)) = common::sequence_case(case);
        let mut agg = common::aggregator("db_mtl", k, 0);
        let mut db = DbMtl::new(k);
        for (t, step) in case["steps"].as_array().unwrap().iter().enumerate() {
            let what = |s: &str| format!("{name} step {t}: {s}");
            let j = common::matrix(&step["G"]);
            let losses = common::vec_f64(&step["losses"]);
            let out = agg.aggregate(&j, &ctx_with(t as u64, &losses)).unwrap();
            assert!(out.weights.is_none());
            let expected = common::vec_f64(&step["expected"]);
            common::assert_close(
                &common::to_vec(&out.gradient),
                &expected,
                rel,
                abs,
                &what("expected"),
            );
            db.aggregate(&j, &ctx_with(t as u64, &losses)).unwrap();
            let buffer = common::flat_matrix(&step["grad_buffer_after"]);
            common::assert_close(
                &common::to_vec(db.buffer().unwrap()),
                &buffer,
                rel,
                abs,
                &what("grad_buffer_after"),
            );
        }
    }
}

#[test]
fn every_task_contributes_the_largest_norm() {
    let j = common::sample(3, 7, 2);
    let mut db = DbMtl::with_config(3, 0.0, 0.0).unwrap();
    let losses = [0.5, 2.0, 10.0];
    db.aggregate(&j, &ctx_with(0, &losses)).unwrap();
    // With β = 0 the buffer is the log-loss gradient gₖ/Lₖ; each αₖ mₖ has the largest norm.
    let rows = common::rows_of(db.buffer().unwrap());
    let target = rows.iter().map(|r| norm(r)).fold(0.0, f64::max);
    for (r, a) in rows.iter().zip(db.last_scales()) {
        assert!((a * norm(r) - target).abs() < 1e-6 * target);
    }
    // Invariance to rescaling a loss (and so its gradient) by a constant.
    let j2 = &j * tch::Tensor::from_slice(&[1.0f64, 100.0, 1.0]).unsqueeze(1);
    let losses2 = [0.5, 200.0, 10.0];
    let a = DbMtl::new(3).aggregate(&j, &ctx_with(0, &losses)).unwrap();
    let b = DbMtl::new(3)
        .aggregate(&j2, &ctx_with(0, &losses2))
        .unwrap();
    common::assert_close(
        &common::to_vec(&b.gradient),
        &common::to_vec(&a.gradient),
        1e-6,
        1e-12,
        "rescaled loss",
    );
}

#[test]
fn beta_sigma_decays_the_ema_factor() {
    // σ = 1: the factor at step 2 is β/2, so m = ĝ₂ + 0.45(m₁ − ĝ₂).
    let j1 = common::rows(&[&[1.0, 0.0]]);
    let j2 = common::rows(&[&[0.0, 1.0]]);
    let mut db = DbMtl::with_config(1, 0.9, 1.0).unwrap();
    db.aggregate(&j1, &ctx_with(0, &[1.0])).unwrap();
    db.aggregate(&j2, &ctx_with(1, &[1.0])).unwrap();
    common::assert_close(
        &common::to_vec(db.buffer().unwrap()),
        &[0.45 * 0.1, 0.55],
        1e-7,
        0.0,
        "buffer",
    );
}

#[test]
fn edge_cases() {
    let losses = [1.0, 2.0, 3.0];
    // NaN/Inf rows name the task and step; shapes; f32 follows f64.
    let j = common::sample(3, 5, 1);
    let bad = common::with_entry(&j, 12, f64::NAN);
    assert!(matches!(
        DbMtl::new(3).aggregate(&bad, &ctx_with(7, &losses)),
        Err(Error::NonFinite {
            task: Some(2),
            step: Some(7),
            ..
        })
    ));
    assert!(matches!(
        DbMtl::new(3).aggregate(
            &tch::Tensor::from_slice(&[1.0f64, 2.0]),
            &ctx_with(7, &losses)
        ),
        Err(Error::Shape { .. })
    ));
    common::assert_f32_follows_f64(
        || Box::new(DbMtl::new(3)),
        &j,
        &ctx_with(0, &losses),
        (1e-5, 1e-6),
        "f32 vs f64",
    );
    // The common helper passes no losses: that is a TaskCount error.
    let j = common::sample(3, 5, 1);
    assert!(matches!(
        DbMtl::new(3).aggregate(&j, &common::ctx()),
        Err(Error::TaskCount { .. })
    ));
    assert!(matches!(
        DbMtl::new(3).aggregate(&j, &ctx_with(4, &[1.0, f64::NAN, 1.0])),
        Err(Error::NonFinite {
            task: Some(1),
            step: Some(4),
            ..
        })
    ));
    assert!(matches!(
        DbMtl::new(3).aggregate(&j, &ctx_with(4, &[1.0, -1.0, 1.0])),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        DbMtl::new(2).aggregate(&j, &ctx_with(0, &losses)),
        Err(Error::TaskCount {
            expected: 2,
            got: 3,
            ..
        })
    ));
    // A Jacobian of another width than the buffer's.
    let mut db = DbMtl::new(3);
    db.aggregate(&j, &ctx_with(0, &losses)).unwrap();
    assert!(matches!(
        db.aggregate(&common::sample(3, 4, 1), &ctx_with(1, &losses)),
        Err(Error::Shape { .. })
    ));
    // K = 1: the direction of g.
    let out = DbMtl::new(1)
        .aggregate(&common::rows(&[&[3.0, 4.0]]), &ctx_with(0, &[2.0]))
        .unwrap();
    let g = common::to_vec(&out.gradient);
    assert!((g[0] / g[1] - 0.75).abs() < 1e-12);
    // Identical rows and losses: twice the shared direction.
    let out = DbMtl::new(2)
        .aggregate(
            &common::rows(&[&[1.0, 2.0], &[1.0, 2.0]]),
            &ctx_with(0, &[1.0, 1.0]),
        )
        .unwrap();
    common::assert_close(
        &common::to_vec(&out.gradient),
        &[0.2, 0.4],
        1e-7,
        0.0,
        "identical",
    );
    // A zero row contributes nothing; an all-zero Jacobian gives zero.
    let out = DbMtl::new(2)
        .aggregate(
            &common::rows(&[&[0.0, 0.0], &[3.0, 4.0]]),
            &ctx_with(0, &[1.0, 1.0]),
        )
        .unwrap();
    common::assert_close(
        &common::to_vec(&out.gradient),
        &[0.3, 0.4],
        1e-7,
        0.0,
        "zero row",
    );
    let out = DbMtl::new(2)
        .aggregate(
            &common::rows(&[&[0.0, 0.0], &[0.0, 0.0]]),
            &ctx_with(0, &[1.0, 1.0]),
        )
        .unwrap();
    assert!(common::to_vec(&out.gradient).iter().all(|v| *v == 0.0));
    assert!(DbMtl::with_config(2, 1.0, 0.0).is_err());
    assert!(DbMtl::with_config(2, 0.9, -1.0).is_err());
}

#[test]
fn state_round_trip() {
    common::assert_state_round_trip(DbMtl::new, &[1.0, 0.5]);
}
