//! Heterogeneous multi-input training: two tasks with their own datasets and input
//! widths (olive-oil region on the 8 fatty acids, a synthetic regression on 5
//! features) share a trunk behind per-task input adapters, and train with
//! `Trainer::fit_multi_input` under every task sampler. Also `TrainerConfig::drop_last`.

mod common;

use mtl::data::{
    olive_oil, MultiInputData, MultiInputSplit, MultiTaskDataset, Standardizer, TaskData,
    TaskSampling,
};
use mtl::heads::{ClassificationHead, RegressionHead, RegressionLoss};
use mtl::prelude::*;
use mtl::{backward_multi_input_step, evaluate_multi_input};
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use std::sync::{Arc, Mutex};
use tch::{nn, Device};

const HIDDEN: i64 = 16;

/// y = x·w + 0.1·noise on 5 uniform features, in a 1-task dataset named `linear`.
fn linear(n: usize, seed: u64) -> MultiTaskDataset {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let w = [1.0f32, -2.0, 0.5, 1.5, -1.0];
    let x = Array2::from_shape_fn((n, 5), |_| rng.gen_range(-1.0f32..1.0));
    let y = Array2::from_shape_fn((n, 1), |(i, _)| {
        (0..5).map(|j| w[j] * x[[i, j]]).sum::<f32>() + 0.1 * rng.gen_range(-1.0f32..1.0)
    });
    MultiTaskDataset::new(x, vec![TaskData::regression("linear", y)]).unwrap()
}

/// Olive-oil region (8 standardised fatty acids, 572 oils) and `linear` (300 rows, 5
/// features), each split 80/20 into train and validation.
fn data() -> MultiInputSplit {
    let olive = olive_oil(mtl::data::data_dir())
        .unwrap()
        .only_task(0)
        .unwrap();
    let olive = Standardizer::fit(&olive).apply(&olive).unwrap();
    MultiInputData::new(vec![olive, linear(300, 11)])
        .unwrap()
        .split(0.2, 0.0, 5)
        .unwrap()
}

/// Adapters `w_k → 16` in front of a 16→16 trunk (with dropout), a 3-class head for
/// task 0 and a regression head for task 1.
fn model(widths: &[i64], seed: u64, dropout: f64) -> MultiTaskModel {
    seed_everything(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let trunk = MlpConfig::new([HIDDEN, HIDDEN])
        .dropout(dropout)
        .build(&(vs.root() / "trunk"))
        .unwrap();
    let arch = MultiInput::new(&vs.root(), widths, HIDDEN, trunk).unwrap();
    let heads = heads(&vs);
    MultiTaskModel::new(vs, arch, heads).unwrap()
}

/// A 3-class head for task 0 (`region`) and a regression head for task 1 (`linear`).
fn heads(vs: &nn::VarStore) -> Vec<Box<dyn TaskHead>> {
    vec![
        Box::new(
            ClassificationHead::new(&(task_path(&vs.root(), 0) / "head"), "region", HIDDEN, 3)
                .unwrap(),
        ),
        Box::new(
            RegressionHead::new(
                &(task_path(&vs.root(), 1) / "head"),
                "linear",
                HIDDEN,
                1,
                RegressionLoss::Mse,
            )
            .unwrap(),
        ),
    ]
}

fn config(method: &str) -> TrainerConfig {
    TrainerConfig::default()
        .epochs(4)
        .batch_size(32)
        .optimizer(OptimizerConfig::adam(1e-2))
        .method(method)
        .seed(9)
        .progress(false)
}

fn samplers() -> Vec<TaskSampling> {
    vec![
        TaskSampling::All,
        TaskSampling::RoundRobin,
        TaskSampling::Proportional,
        TaskSampling::Temperature(2.0),
        TaskSampling::Annealed {
            start: 1.0,
            end: 5.0,
            steps: 60,
        },
    ]
}

#[test]
fn both_tasks_learn_with_every_sampler_for_ew_and_pcgrad() {
    // libtorch's generator is global: runs compared bit for bit elsewhere need it alone.
    let _lock = common::torch_lock();
    let split = data();
    assert_eq!(split.train.feature_widths(), [8, 5]);
    for method in ["ew", "pcgrad"] {
        for sampling in samplers() {
            let mut m = model(&[8, 5], 1, 0.0);
            let before = evaluate_multi_input(&m, &split.train, 256).unwrap();
            let report = Trainer::new(config(method))
                .unwrap()
                .fit_multi_input(&mut m, &split.train, Some(&split.validation), sampling)
                .unwrap();
            let after = evaluate_multi_input(&m, &split.train, 256).unwrap();
            for k in 0..2 {
                assert!(
                    after.losses[k] < 0.6 * before.losses[k],
                    "{method} {sampling:?} task {k}: {} -> {}",
                    before.losses[k],
                    after.losses[k]
                );
            }
            // The report holds each task's validation metrics, on its own rows.
            let last = report.epochs.last().unwrap();
            let val = last.validation.as_ref().unwrap();
            assert_eq!(val.tasks, ["region", "linear"]);
            assert!(
                val.metric(0, "accuracy").unwrap() > 0.8,
                "{method} {sampling:?}"
            );
            assert!(val.metric(1, "mse").unwrap() < 0.5, "{method} {sampling:?}");
            assert!(last.train_losses.iter().all(|l| l.is_finite() && *l > 0.0));
            assert_eq!(report.method, method);
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let split = data();
    let run = |seed: u64| {
        let _lock = common::torch_lock();
        let mut m = model(&[8, 5], 2, 0.2);
        let report = Trainer::new(config("pcgrad").epochs(2).seed(seed))
            .unwrap()
            .fit_multi_input(
                &mut m,
                &split.train,
                Some(&split.validation),
                TaskSampling::Temperature(2.0),
            )
            .unwrap();
        let losses: Vec<_> = report
            .epochs
            .iter()
            .map(|e| (e.train_losses.clone(), e.validation.clone()))
            .collect();
        (common::weights(&m), losses)
    };
    let (w1, l1) = run(4);
    let (w2, l2) = run(4);
    assert_eq!(w1, w2);
    assert_eq!(l1, l2);
    let (w3, _) = run(5);
    assert_ne!(w1, w3, "another seed draws other tasks and rows");
}

#[test]
fn a_resumed_multi_input_run_equals_the_uninterrupted_run_bit_for_bit() {
    let split = data();
    let dir = std::env::temp_dir().join(format!("mtl-mi-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Momentum, a step schedule, clipping, dropout and per-task optimisers that count
    // their own steps: all of it must come back from the checkpoint. Proportional
    // sampling draws one task per step, so the schedule's position matters too.
    let cfg = |method: &str| {
        config(method)
            .epochs(4)
            .lr_schedule(LrSchedule::step(7, 0.7))
            .clip_grad_norm(5.0)
            .early_stopping(EarlyStopping::new(Monitor::TotalLoss, 100))
            .diagnostics(mtl::DiagnosticsConfig::every(9).with_affinity())
    };
    for (method, sampling) in [
        ("ew", TaskSampling::Proportional),
        ("uw", TaskSampling::All),
        (
            "pcgrad",
            TaskSampling::Annealed {
                start: 1.0,
                end: 5.0,
                steps: 60,
            },
        ),
    ] {
        let _lock = common::torch_lock();
        let mut full = model(&[8, 5], 3, 0.2);
        let full_report = Trainer::new(cfg(method))
            .unwrap()
            .fit_multi_input(&mut full, &split.train, Some(&split.validation), sampling)
            .unwrap();
        let path = dir.join(format!("{method}.safetensors"));
        let mut first = model(&[8, 5], 3, 0.2);
        Trainer::new(
            cfg(method)
                .epochs(2)
                .checkpoint(CheckpointPolicy::new(&path)),
        )
        .unwrap()
        .fit_multi_input(&mut first, &split.train, Some(&split.validation), sampling)
        .unwrap();
        // Other initial weights: everything must come from the file.
        let mut resumed = model(&[8, 5], 77, 0.2);
        let report = Trainer::new(cfg(method))
            .unwrap()
            .resume_from(&path)
            .fit_multi_input(
                &mut resumed,
                &split.train,
                Some(&split.validation),
                sampling,
            )
            .unwrap();
        assert_eq!(report.epochs.len(), 4);
        for (a, b) in report.epochs.iter().zip(&full_report.epochs) {
            assert_eq!(a.train_losses, b.train_losses, "{method} epoch {}", a.epoch);
            assert_eq!(a.task_weights, b.task_weights, "{method} epoch {}", a.epoch);
            assert_eq!(a.validation, b.validation, "{method} epoch {}", a.epoch);
        }
        assert!(!report.diagnostics.is_empty());
        assert_eq!(report.diagnostics, full_report.diagnostics, "{method}");
        assert_eq!(
            common::weights(&resumed),
            common::weights(&full),
            "{method}"
        );
        // A checkpoint of other data is refused.
        let other =
            MultiInputData::new(vec![split.train.dataset(0).unwrap().clone(), linear(50, 1)])
                .unwrap();
        let err = Trainer::new(cfg(method))
            .unwrap()
            .resume_from(&path)
            .fit_multi_input(
                &mut model(&[8, 5], 3, 0.2),
                &other,
                Some(&split.validation),
                sampling,
            )
            .unwrap_err();
        assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
    }
}

/// A batch of `rows` rows of `ds` with its one target, as the schedule makes them.
fn batch(ds: &MultiTaskDataset, rows: std::ops::Range<usize>) -> mtl::data::Batch {
    ds.batch(&rows.collect::<Vec<_>>()).unwrap()
}

#[test]
fn a_batch_without_labels_contributes_nothing() {
    let _lock = common::torch_lock();
    let split = data();
    let unlabelled = {
        let ds = split.train.dataset(1).unwrap();
        let t = ds.tasks()[0]
            .clone()
            .with_mask(Array1::from_elem(ds.len(), false));
        MultiTaskDataset::new(ds.features().clone(), vec![t]).unwrap()
    };
    let m = model(&[8, 5], 3, 0.0);
    let groups = m.param_groups().unwrap();
    let all = groups.all_tensors();
    let b0 = || batch(split.train.dataset(0).unwrap(), 0..32);
    for method in ["ew", "pcgrad", "mgda"] {
        let mut grads = Vec::new();
        let mut losses = Vec::new();
        for parts in [
            vec![(0, b0()), (1, batch(&unlabelled, 0..32))],
            vec![(0, b0())],
        ] {
            let mut method = mtl::losses::by_name(method, 2, 0).unwrap();
            mtl::core::params::ensure_grads(&all).unwrap();
            mtl::core::params::zero_grads(&all);
            let out = backward_multi_input_step(
                &m,
                &groups,
                &mut method,
                GradMode::Parameters,
                &parts,
                0,
                0,
            )
            .unwrap();
            losses.push(out.losses);
            grads.push(mtl::core::params::flat_grad(&all));
        }
        assert_eq!(losses[0], losses[1], "{method}");
        assert_eq!(losses[0][1], 0.0);
        assert!(
            bool::try_from(grads[0].isfinite().all()).unwrap(),
            "{method}"
        );
        assert!(
            grads[0].equal(&grads[1]),
            "{method}: the unlabelled batch changed the gradient"
        );
        assert!(f64::try_from(grads[0].abs().sum(tch::Kind::Double)).unwrap() > 0.0);
    }

    // Trained with a task that never has a label: its own weights stay as they were and
    // the other task still learns.
    let data =
        MultiInputData::new(vec![split.train.dataset(0).unwrap().clone(), unlabelled]).unwrap();
    let mut m = model(&[8, 5], 3, 0.0);
    let before = common::weights(&m);
    let loss0 = evaluate_multi_input(&m, &data, 256).unwrap().losses[0];
    let report = Trainer::new(config("ew").epochs(2))
        .unwrap()
        .fit_multi_input(&mut m, &data, None, TaskSampling::All)
        .unwrap();
    assert!(report
        .epochs
        .iter()
        .all(|e| e.train_losses[1] == 0.0 && e.train_losses[0].is_finite()));
    let after = common::weights(&m);
    for ((name, b), (_, a)) in before.iter().zip(&after) {
        if name.starts_with("task1.") {
            assert_eq!(a, b, "{name} moved without labels");
        }
    }
    assert!(before
        .iter()
        .zip(&after)
        .any(|((n, b), (_, a))| n.starts_with("trunk.") && a != b));
    assert!(evaluate_multi_input(&m, &data, 256).unwrap().losses[0] < 0.6 * loss0);
}

#[test]
fn a_step_without_a_task_gives_its_parameters_no_gradient() {
    let _lock = common::torch_lock();
    let split = data();
    let m = model(&[8, 5], 6, 0.0);
    let groups = m.param_groups().unwrap();
    mtl::core::params::ensure_grads(&groups.all_tensors()).unwrap();
    mtl::core::params::zero_grads(&groups.all_tensors());
    let parts = vec![(0, batch(split.train.dataset(0).unwrap(), 0..32))];
    let mut method = mtl::losses::by_name("pcgrad", 2, 0).unwrap();
    let out =
        backward_multi_input_step(&m, &groups, &mut method, GradMode::Parameters, &parts, 0, 0)
            .unwrap();
    assert_eq!(out.losses[1], 0.0);
    let norm = |p: &mtl::core::params::Param| {
        f64::try_from(p.tensor.grad().abs().sum(tch::Kind::Double)).unwrap()
    };
    assert!(groups.task[1].iter().all(|p| norm(p) == 0.0));
    assert!(groups.task[0].iter().all(|p| norm(p) > 0.0));
    assert!(groups.shared.iter().any(|p| norm(p) > 0.0));
}

#[test]
fn early_stopping_restores_the_best_epoch() {
    let _lock = common::torch_lock();
    let split = data();
    let mut m = model(&[8, 5], 7, 0.1);
    let cfg = config("ew")
        .epochs(40)
        .optimizer(OptimizerConfig::adam(3e-2))
        .early_stopping(EarlyStopping::new(Monitor::TotalLoss, 2));
    let report = Trainer::new(cfg)
        .unwrap()
        .fit_multi_input(
            &mut m,
            &split.train,
            Some(&split.validation),
            TaskSampling::Proportional,
        )
        .unwrap();
    assert!(
        report.stopped_early,
        "40 epochs at a high rate should plateau"
    );
    let totals: Vec<f64> = report
        .epochs
        .iter()
        .map(|e| e.validation.as_ref().unwrap().total_loss())
        .collect();
    let best = totals
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0;
    assert_eq!(report.best_epoch, best);
    assert_eq!(report.epochs.len(), best + 3);
    let now = evaluate_multi_input(&m, &split.validation, 256).unwrap();
    assert!(
        (now.total_loss() - totals[best]).abs() < 1e-6,
        "{} vs {}",
        now.total_loss(),
        totals[best]
    );
}

#[test]
fn one_width_evaluation_matches_the_masked_dataset() {
    let _lock = common::torch_lock();
    // With one width, scoring each task on its own rows equals the ordinary evaluation
    // of the stacked, masked dataset.
    let data = MultiInputData::new(vec![
        {
            let d = linear(40, 1);
            let cls: Array1<i64> = d
                .features()
                .rows()
                .into_iter()
                .map(|r| i64::from(r[0] > 0.0) + i64::from(r[1] > 0.5))
                .collect();
            MultiTaskDataset::new(
                d.features().clone(),
                vec![TaskData::classes("region", cls, 3)],
            )
            .unwrap()
        },
        linear(30, 2),
    ])
    .unwrap();
    let m = model(&[5, 5], 8, 0.0);
    let own = evaluate_multi_input(&m, &data, 16).unwrap();
    let masked = evaluate(&m, &data.to_masked().unwrap(), 16).unwrap();
    for k in 0..2 {
        assert!(
            (own.losses[k] - masked.losses[k]).abs() < 1e-5,
            "{own:?} vs {masked:?}"
        );
        for (a, b) in own.metrics[k].iter().zip(&masked.metrics[k]) {
            assert_eq!(a.name, b.name);
            assert!((a.value - b.value).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }
}

#[test]
fn mismatched_task_counts_and_unsupported_settings_are_typed_errors() {
    let _lock = common::torch_lock();
    let split = data();
    let third = {
        let d = linear(20, 3);
        let t = TaskData::regression("other", Array2::from_shape_fn((20, 1), |(i, _)| i as f32));
        MultiTaskDataset::new(d.features().clone(), vec![t]).unwrap()
    };
    let three = MultiInputData::new(vec![
        split.train.dataset(0).unwrap().clone(),
        split.train.dataset(1).unwrap().clone(),
        third,
    ])
    .unwrap();
    let mut m = model(&[8, 5], 1, 0.0);
    let mut trainer = Trainer::new(config("ew")).unwrap();
    let err = trainer
        .fit_multi_input(&mut m, &three, None, TaskSampling::All)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TaskCount {
                expected: 2,
                got: 3,
                ..
            }
        ),
        "{err}"
    );
    let err = trainer
        .fit_multi_input(&mut m, &split.train, Some(&three), TaskSampling::All)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TaskCount {
                expected: 2,
                got: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        evaluate_multi_input(&m, &three, 8),
        Err(Error::TaskCount { .. })
    ));

    // Rep-grad has no one shared representation here (a weighting does not need one).
    let mut trainer = Trainer::new(config("pcgrad").grad_mode(GradMode::Representation)).unwrap();
    let err = trainer
        .fit_multi_input(&mut m, &split.train, None, TaskSampling::All)
        .unwrap_err();
    assert!(
        matches!(err, Error::Config(_)) && err.to_string().contains("rep-grad"),
        "{err}"
    );
    Trainer::new(config("ew").epochs(1).grad_mode(GradMode::Representation))
        .unwrap()
        .fit_multi_input(&mut m, &split.train, None, TaskSampling::All)
        .unwrap();

    for cfg in [
        config("ew").early_stopping(EarlyStopping::new(Monitor::TotalLoss, 1)),
        config("ew").drop_last(true).batch_size(10_000),
    ] {
        let err = Trainer::new(cfg)
            .unwrap()
            .fit_multi_input(&mut m, &split.train, None, TaskSampling::All)
            .unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
    }
    // The wrong input width for a task names its adapter.
    let swapped = MultiInputData::new(vec![
        split.train.dataset(1).unwrap().clone(),
        split.train.dataset(0).unwrap().clone(),
    ])
    .unwrap();
    let err = Trainer::new(config("ew"))
        .unwrap()
        .fit_multi_input(&mut m, &swapped, None, TaskSampling::All)
        .unwrap_err();
    assert!(err.to_string().contains("adapter of task 0"), "{err}");
}

#[test]
fn drop_last_gives_rep_grad_db_mtl_a_fixed_batch() {
    let _lock = common::torch_lock();
    // 50 rows in batches of 16: the last batch has 2 rows, and DB-MTL's rep-grad
    // buffer is sized to the first batch's representation.
    let train = common::synthetic(50, 1);
    let cfg = common::config("db_mtl")
        .grad_mode(GradMode::Representation)
        .epochs(2)
        .progress(false);
    let err = Trainer::new(cfg.clone())
        .unwrap()
        .fit(&mut common::model(1), &train, None)
        .unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    let report = Trainer::new(cfg.drop_last(true))
        .unwrap()
        .fit(&mut common::model(1), &train, None)
        .unwrap();
    assert_eq!(report.epochs.len(), 2);
    assert!(report
        .epochs
        .iter()
        .flat_map(|e| &e.train_losses)
        .all(|l| l.is_finite()));

    // Too few rows for one full batch.
    let err = Trainer::new(common::config("ew").batch_size(64).drop_last(true))
        .unwrap()
        .fit(&mut common::model(1), &train, None)
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
}

/// A [`MultiInput`] that records the size of every training batch of each task.
#[derive(Debug)]
struct Recording {
    inner: MultiInput,
    seen: Arc<Mutex<Vec<(usize, i64)>>>,
}

impl Architecture for Recording {
    fn num_tasks(&self) -> usize {
        self.inner.num_tasks()
    }
    fn feature_dims(&self) -> Vec<i64> {
        self.inner.feature_dims()
    }
    fn forward_t(&self, xs: &tch::Tensor, train: bool) -> Result<mtl::core::TaskFeatures> {
        self.inner.forward_t(xs, train)
    }
    fn forward_task(
        &self,
        xs: &tch::Tensor,
        task: usize,
        train: bool,
    ) -> Result<mtl::core::TaskFeatures> {
        if train {
            self.seen.lock().unwrap().push((task, xs.size()[0]));
        }
        self.inner.forward_task(xs, task, train)
    }
    fn name(&self) -> &'static str {
        "recording"
    }
}

#[test]
fn drop_last_with_per_task_data_trains_on_full_batches_only() {
    let _lock = common::torch_lock();
    // 70 and 40 rows in batches of 32: each pass ends on a short batch (6 and 8 rows).
    let olive = olive_oil(mtl::data::data_dir())
        .unwrap()
        .only_task(0)
        .unwrap();
    let data = MultiInputData::new(vec![
        olive.subset(&(0..70).collect::<Vec<_>>()).unwrap(),
        linear(40, 3),
    ])
    .unwrap();
    let sizes = |drop_last: bool| {
        seed_everything(4);
        let vs = nn::VarStore::new(Device::Cpu);
        let trunk = MlpConfig::new([HIDDEN, HIDDEN])
            .build(&(vs.root() / "trunk"))
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let arch = Recording {
            inner: MultiInput::new(&vs.root(), &[8, 5], HIDDEN, trunk).unwrap(),
            seen: seen.clone(),
        };
        let heads = heads(&vs);
        let mut m = MultiTaskModel::new(vs, arch, heads).unwrap();
        let before = evaluate_multi_input(&m, &data, 256).unwrap();
        Trainer::new(config("ew").epochs(6).drop_last(drop_last))
            .unwrap()
            .fit_multi_input(&mut m, &data, None, TaskSampling::All)
            .unwrap();
        let after = evaluate_multi_input(&m, &data, 256).unwrap();
        assert!((0..2).all(|k| after.losses[k] < before.losses[k]));
        let seen = seen.lock().unwrap().clone();
        seen
    };
    let kept = sizes(false);
    assert!(kept.contains(&(0, 6)) && kept.contains(&(1, 8)), "{kept:?}");
    let dropped = sizes(true);
    assert!(dropped.iter().all(|&(_, b)| b == 32), "{dropped:?}");
    assert!((0..2).all(|t| dropped.iter().any(|&(k, _)| k == t)));
}
