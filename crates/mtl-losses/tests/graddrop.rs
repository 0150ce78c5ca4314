//! GradDrop against TorchJD's `GradDrop` (golden `torchjd_GradDrop.json`, replaying the
//! recorded uniform draws U), leaks, and the seeded aggregator's behaviour.

mod common;

use common::{
    aggregator_edge_cases, assert_close, cases, ctx, load, matrix, rows, to_vec, tolerances,
    vec_f64,
};
use mtl_core::Error;
use mtl_losses::methods::GradDrop;
use mtl_losses::Aggregator;
use tch::{Kind, Tensor};

#[test]
fn golden_torchjd_graddrop_replayed() {
    let doc = load("torchjd_GradDrop.json");
    for case in cases(&doc) {
        let u = Tensor::from_slice(&vec_f64(&case["random_draws"]["rand"][0]));
        let out = GradDrop::new(0)
            .combine_with(&matrix(&case["G"]), &u)
            .unwrap();
        let (rel, abs) = tolerances(case);
        assert_close(
            &to_vec(&out),
            &vec_f64(&case["expected"]),
            rel,
            abs,
            case["name"].as_str().unwrap(),
        );
    }
    assert_eq!(cases(&doc).len(), 21);
}

#[test]
fn sign_selection_and_leak() {
    // Column 0: both positive (P = 1, always kept). Column 1: +1 and -3, P = 1/4.
    let j = rows(&[&[1.0, 1.0], &[2.0, -3.0]]);
    let gd = GradDrop::new(0);
    // U = 0.5 > P: keep the negative entry of column 1.
    let out = gd
        .combine_with(&j, &Tensor::from_slice(&[0.5, 0.5]))
        .unwrap();
    assert_eq!(to_vec(&out), vec![3.0, -3.0]);
    // U = 0.1 < P: keep the positive entry.
    let out = gd
        .combine_with(&j, &Tensor::from_slice(&[0.5, 0.1]))
        .unwrap();
    assert_eq!(to_vec(&out), vec![3.0, 1.0]);
    // Leak 1 for task 0 passes it whole; leak 1 for both is the sum.
    let leaky = GradDrop::new(0).with_leak(vec![1.0, 0.0]).unwrap();
    let out = leaky
        .combine_with(&j, &Tensor::from_slice(&[0.5, 0.1]))
        .unwrap();
    assert_eq!(to_vec(&out), vec![3.0, 1.0]);
    let out = leaky
        .combine_with(&j, &Tensor::from_slice(&[0.5, 0.5]))
        .unwrap();
    assert_eq!(to_vec(&out), vec![3.0, -2.0]);
    let all = GradDrop::new(0).with_leak(vec![1.0, 1.0]).unwrap();
    let out = all
        .combine_with(&j, &Tensor::from_slice(&[0.5, 0.5]))
        .unwrap();
    assert_eq!(to_vec(&out), vec![3.0, -2.0]);
    assert!(GradDrop::new(0).with_leak(vec![1.5]).is_err());
    assert!(matches!(
        gd.combine_with(&j, &Tensor::from_slice(&[0.5])),
        Err(Error::Shape { .. })
    ));
}

#[test]
fn seeded_draws() {
    let j = common::sample(3, 64, 5);
    let run = |seed| to_vec(&GradDrop::new(seed).aggregate(&j, &ctx()).unwrap().gradient);
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn edge_cases() {
    // The f32 run shares the draws (cast to f32); on these inputs no P is within f32
    // rounding of its U, so it matches the f64 run.
    aggregator_edge_cases(|| Box::new(GradDrop::new(7)), 3, 5);
    // A zero column contributes 0 (0/0 purity); opposite entries have P = 1/2, so U
    // picks the sign: U < 1/2 keeps +1.
    let j = rows(&[&[0.0, 1.0], &[0.0, -1.0]]);
    let out = GradDrop::new(0)
        .combine_with(&j, &Tensor::from_slice(&[0.3, 0.3]))
        .unwrap();
    assert_eq!(to_vec(&out), vec![0.0, 1.0]);
    let out = GradDrop::new(0)
        .combine_with(&j, &Tensor::from_slice(&[0.3, 0.7]))
        .unwrap();
    assert_eq!(to_vec(&out), vec![0.0, -1.0]);
    // Identical rows agree in sign everywhere (P is 0 or 1): nothing is dropped.
    let j2 = rows(&[&[1.0, -2.0], &[1.0, -2.0]]);
    let out = GradDrop::new(0).aggregate(&j2, &ctx()).unwrap();
    assert_eq!(to_vec(&out.gradient), vec![2.0, -4.0]);
    let out = GradDrop::new(0)
        .aggregate(&rows(&[&[3.0, -4.0]]), &ctx())
        .unwrap();
    assert_eq!(to_vec(&out.gradient), vec![3.0, -4.0]);
    let out = GradDrop::new(0)
        .aggregate(&rows(&[&[1e-6, 1e6], &[1e6, -1e-6]]), &ctx())
        .unwrap();
    assert!(to_vec(&out.gradient).iter().all(|v| v.is_finite()));
    assert!(matches!(
        GradDrop::new(0).for_tasks(3).aggregate(&j, &ctx()),
        Err(Error::TaskCount {
            expected: 3,
            got: 2,
            ..
        })
    ));
    // f32 Jacobians give f32 outputs (draws cast to f32).
    let out = GradDrop::new(0)
        .aggregate(&j.to_kind(Kind::Float), &ctx())
        .unwrap();
    assert_eq!(out.gradient.kind(), Kind::Float);
}
