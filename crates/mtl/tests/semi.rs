//! Semi-supervised training: the consistency term, its ramp-up, the mean teacher's
//! average and checkpoint, and the errors for data or plans it cannot use.

mod common;

use common::{config, model, synthetic, torch_lock, weights};
use mtl::data::MultiTaskDataset;
use mtl::prelude::*;
use mtl::semi::{consistency_loss, ramp_up, Teacher};
use mtl::{CheckpointPolicy, ConsistencyRows, SemiSupervised};
use std::path::PathBuf;
use tch::Tensor;

/// The synthetic problem with only every third row labelled (for both tasks).
fn partly_labelled(n: usize, seed: u64) -> MultiTaskDataset {
    let d = synthetic(n, seed);
    let mask = ndarray::Array1::from_shape_fn(n, |i| i % 3 == 0);
    let tasks = d
        .tasks()
        .iter()
        .map(|t| t.clone().with_mask(mask.clone()))
        .collect();
    MultiTaskDataset::new(d.features().clone(), tasks).unwrap()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mtl-semi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn consistency_is_zero_when_predictions_agree_and_positive_otherwise() {
    let _torch = torch_lock();
    let m = model(1);
    let x = Tensor::randn([6, 4], (tch::Kind::Float, tch::Device::Cpu));
    let a = m.forward_t(&x, false).unwrap().outputs;
    let b = m.forward_t(&(&x + 0.5), false).unwrap().outputs;
    let same = consistency_loss(&m, &a, &a, None)
        .unwrap()
        .double_value(&[]);
    let apart = consistency_loss(&m, &a, &b, None)
        .unwrap()
        .double_value(&[]);
    assert_eq!(same, 0.0);
    assert!(apart > 0.0, "{apart}");
    // Restricted to rows: none selected gives 0, and selecting rows averages over them.
    let none = Tensor::zeros([6], (tch::Kind::Bool, tch::Device::Cpu));
    let all = Tensor::ones([6], (tch::Kind::Bool, tch::Device::Cpu));
    let c0 = consistency_loss(&m, &a, &b, Some(&none))
        .unwrap()
        .double_value(&[]);
    let c1 = consistency_loss(&m, &a, &b, Some(&all))
        .unwrap()
        .double_value(&[]);
    assert_eq!(c0, 0.0);
    assert!((c1 - apart).abs() < 1e-6, "{c1} vs {apart}");
    // The classification task compares softmax probabilities, not logits: shifting
    // every logit by one constant changes nothing.
    let shifted: Vec<Tensor> = vec![&a[0] + 3.0, a[1].shallow_clone()];
    let c = consistency_loss(&m, &a, &shifted, None)
        .unwrap()
        .double_value(&[]);
    assert!(c.abs() < 1e-12, "{c}");
    // A wrong number of outputs is a typed error.
    assert!(consistency_loss(&m, &a[..1], &a, None).is_err());
}

#[test]
fn the_ramp_up_follows_exp_minus_five_one_minus_t_squared() {
    let eps = 1e-12;
    assert!((ramp_up(0.0, 10.0) - (-5.0f64).exp()).abs() < eps);
    assert!((ramp_up(5.0, 10.0) - (-1.25f64).exp()).abs() < eps);
    assert!((ramp_up(8.0, 10.0) - (-0.2f64).exp()).abs() < eps);
    assert_eq!(ramp_up(10.0, 10.0), 1.0);
    assert_eq!(ramp_up(25.0, 10.0), 1.0);
    assert_eq!(ramp_up(0.0, 0.0), 1.0);
    let w: Vec<f64> = (0..=10).map(|t| ramp_up(t as f64, 10.0)).collect();
    assert!(w.windows(2).all(|p| p[0] < p[1]), "{w:?}");
    let s = SemiSupervised::pi_model().weight(4.0).ramp_up_epochs(10.0);
    assert!((s.weight_at(5.0) - 4.0 * (-1.25f64).exp()).abs() < eps);
}

#[test]
fn data_without_unlabelled_rows_is_refused() {
    let _torch = torch_lock();
    let data = synthetic(40, 1);
    let mut m = model(1);
    let err = Trainer::new(config("ew").semi_supervised(SemiSupervised::pi_model()))
        .unwrap()
        .fit(&mut m, &data, None)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, mtl::core::Error::Config(_)), "{msg}");
    assert!(msg.contains("unlabelled") && msg.contains("40"), "{msg}");
    // A row labelled for one task only is not unlabelled either.
    let mut tasks = data.tasks().to_vec();
    tasks[0] = tasks[0]
        .clone()
        .with_mask(ndarray::Array1::from_elem(40, false));
    let one_task = MultiTaskDataset::new(data.features().clone(), tasks).unwrap();
    assert!(
        Trainer::new(config("ew").semi_supervised(SemiSupervised::pi_model()))
            .unwrap()
            .fit(&mut m, &one_task, None)
            .is_err()
    );
}

#[test]
fn bad_settings_are_refused() {
    let bad = [
        SemiSupervised::pi_model().noise_std(-1.0),
        SemiSupervised::pi_model().weight(f64::NAN),
        SemiSupervised::pi_model().ramp_up_epochs(-2.0),
        SemiSupervised::mean_teacher().ema_decay(1.5),
    ];
    for s in bad {
        assert!(
            Trainer::new(config("ew").semi_supervised(s.clone())).is_err(),
            "{s:?}"
        );
    }
    // Serde: the field is optional and its own keys are checked.
    let cfg: TrainerConfig =
        serde_json::from_str(r#"{"semi_supervised": {"consistency": "mean_teacher"}}"#).unwrap();
    assert_eq!(cfg.semi_supervised, Some(SemiSupervised::mean_teacher()));
    assert!(serde_json::from_str::<TrainerConfig>(r#"{"semi_supervised": {"noise": 1}}"#).is_err());
    let plain: TrainerConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(plain.semi_supervised, None);
}

#[test]
fn the_teacher_is_an_exponential_moving_average() {
    let _torch = torch_lock();
    let m = model(1);
    let mut teacher = Teacher::new(&m, 0.99);
    let before = teacher.weights()[0].1.copy();
    let name = teacher.weights()[0].0.clone();
    let v = m.var_store().variables()[&name].shallow_clone();
    tch::no_grad(|| {
        let _ = v.shallow_clone().fill_(2.0);
    });
    teacher.update(&m).unwrap();
    // First update: alpha = min(1 - 1/2, 0.99) = 0.5.
    let expected = &before * 0.5 + 1.0;
    let got = &teacher.weights()[0].1;
    assert!(f64::try_from((got - expected).abs().max()).unwrap() < 1e-6);
    assert_eq!(teacher.updates(), 1);
    // The swap puts the student's weights back exactly.
    let student = weights(&m);
    teacher.with_weights(&m, || Ok(())).unwrap();
    assert_eq!(weights(&m), student);
}

#[test]
fn works_with_a_weighting_and_an_aggregator_and_the_term_changes_training() {
    let _torch = torch_lock();
    let data = partly_labelled(60, 2);
    for method in ["ew", "pcgrad"] {
        for semi in [SemiSupervised::pi_model(), SemiSupervised::mean_teacher()] {
            let semi = semi.weight(5.0).ramp_up_epochs(1.0).noise_std(0.1);
            let c = config(method).epochs(3);
            let mut plain = model(3);
            Trainer::new(c.clone())
                .unwrap()
                .fit(&mut plain, &data, None)
                .unwrap();
            let mut with = model(3);
            let report = Trainer::new(c.clone().semi_supervised(semi.clone()))
                .unwrap()
                .fit(&mut with, &data, None)
                .unwrap();
            assert_eq!(report.epochs.len(), 3);
            assert!(report
                .epochs
                .iter()
                .all(|e| e.train_losses.iter().all(|l| l.is_finite())));
            assert_ne!(weights(&plain), weights(&with), "{method} {semi:?}");
            // Only unlabelled rows in the term is an option too.
            let mut only = model(3);
            Trainer::new(c.semi_supervised(semi.rows(ConsistencyRows::Unlabelled)))
                .unwrap()
                .fit(&mut only, &data, None)
                .unwrap();
            assert_ne!(weights(&only), weights(&with), "{method}");
        }
    }
}

#[test]
fn mean_teacher_resume_continues_exactly() {
    let _torch = torch_lock();
    let data = partly_labelled(50, 4);
    let c = config("ew").epochs(4).semi_supervised(
        SemiSupervised::mean_teacher()
            .weight(3.0)
            .ramp_up_epochs(2.0),
    );
    let mut full = model(5);
    let full_report = Trainer::new(c.clone())
        .unwrap()
        .fit(&mut full, &data, None)
        .unwrap();
    let path = temp("mt.safetensors");
    let mut first = model(5);
    Trainer::new(c.clone().epochs(2).checkpoint(CheckpointPolicy::new(&path)))
        .unwrap()
        .fit(&mut first, &data, None)
        .unwrap();
    let mut resumed = model(77);
    let report = Trainer::new(c.clone())
        .unwrap()
        .resume_from(&path)
        .fit(&mut resumed, &data, None)
        .unwrap();
    for (a, b) in report.epochs.iter().zip(&full_report.epochs) {
        assert_eq!(a.train_losses, b.train_losses, "epoch {}", a.epoch);
    }
    assert_eq!(weights(&resumed), weights(&full));
    // A checkpoint without a teacher cannot resume a mean-teacher run.
    let plain_path = temp("plain.safetensors");
    let plain = config("ew").epochs(2);
    Trainer::new(plain.clone().checkpoint(CheckpointPolicy::new(&plain_path)))
        .unwrap()
        .fit(&mut model(5), &data, None)
        .unwrap();
    let err = Trainer::new(c)
        .unwrap()
        .resume_from(&plain_path)
        .force_resume(true)
        .fit(&mut model(5), &data, None)
        .unwrap_err();
    assert!(err.to_string().contains("mean teacher"), "{err}");
}

#[test]
fn per_task_data_is_refused() {
    let _torch = torch_lock();
    let d = partly_labelled(30, 1);
    let tasks = d.tasks();
    let t0 = MultiTaskDataset::new(d.features().clone(), vec![tasks[0].clone()]).unwrap();
    let t1 = MultiTaskDataset::new(d.features().clone(), vec![tasks[1].clone()]).unwrap();
    let multi = MultiInputData::new(vec![t0, t1]).unwrap();
    let err = Trainer::new(config("ew").semi_supervised(SemiSupervised::pi_model()))
        .unwrap()
        .fit_multi_input(&mut model(1), &multi, None, TaskSampling::All)
        .unwrap_err();
    assert!(err.to_string().contains("fit_multi_input"), "{err}");
}
