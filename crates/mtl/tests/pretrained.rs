//! Pretrained trunks and gradual unfreezing: a trunk trained on one task loads into a
//! two-task model by prefix rename and fine-tunes; an unfreeze schedule keeps its
//! prefix bit-identical until its epoch and then trains it; a run resumed across an
//! unfreeze equals the uninterrupted one bit for bit.

mod common;

use common::{config, model, synthetic, torch_lock, weights};
use mtl::core::checkpoint::{save_weights, Checkpoint};
use mtl::heads::{RegressionHead, RegressionLoss};
use mtl::prelude::*;
use mtl::tracking::TrainingObserver;
use mtl::EpochRecord;
use std::path::PathBuf;
use tch::{nn, Device};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mtl-pretrained-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Stops the fit (as a crash would) when epoch `at` has trained, before its checkpoint.
struct StopAfter {
    at: usize,
}

impl TrainingObserver for StopAfter {
    fn epoch(&mut self, record: &EpochRecord, _step: u64) -> mtl::core::Result<()> {
        if record.epoch == self.at {
            return Err(Error::config(format!("stopped after epoch {}", self.at)));
        }
        Ok(())
    }
}

fn moved(before: &[(String, Vec<f32>)], after: &[(String, Vec<f32>)], prefix: &str) -> bool {
    before
        .iter()
        .zip(after)
        .filter(|((n, _), _)| n.starts_with(prefix))
        .any(|((_, b), (_, a))| a != b)
}

#[test]
fn an_unfreezing_prefix_stays_bit_identical_until_its_epoch_then_trains() {
    let _torch = torch_lock();
    let data = synthetic(96, 5);
    let cfg = config("ew").epochs(4).unfreeze_at("trunk.0.", 2);
    let mut m = model(1);
    let before = weights(&m);
    // Epochs 0 and 1 (the fit stops after epoch 1): `trunk.0.` has not moved.
    let err = Trainer::new(cfg.clone())
        .unwrap()
        .observe(StopAfter { at: 1 })
        .fit(&mut m, &data, None)
        .unwrap_err();
    assert!(err.to_string().contains("stopped after epoch 1"), "{err}");
    let frozen_part = weights(&m);
    for ((name, b), (_, a)) in before.iter().zip(&frozen_part) {
        if name.starts_with("trunk.0.") {
            assert_eq!(a, b, "{name} moved before its unfreeze epoch");
        }
    }
    assert!(moved(&before, &frozen_part, "trunk.1."));
    assert!(moved(&before, &frozen_part, "task0."));
    // The whole run: from epoch 2 on it trains.
    let mut m = model(1);
    Trainer::new(cfg).unwrap().fit(&mut m, &data, None).unwrap();
    assert!(moved(&before, &weights(&m), "trunk.0."));
    assert!(m
        .var_store()
        .variables()
        .values()
        .all(|t| t.requires_grad()));
}

/// A run stopped after epoch 0, 1 or 2 and resumed (across the head's unfreeze at
/// epoch 1 and the first trunk layer's at 2, on either side of each) ends with the
/// weights, losses and optimiser state of the uninterrupted run, bit for bit. Adam, so
/// the moments of each unfreeze cohort must come back too.
#[test]
fn a_run_resumed_across_unfreezes_equals_the_uninterrupted_run() {
    let _torch = torch_lock();
    let data = synthetic(100, 11);
    let split = data.split(0.2, 0.0, 1).unwrap();
    for method in ["ew", "pcgrad", "uw"] {
        let cfg = config(method)
            .epochs(4)
            .optimizer(OptimizerConfig::adamw(1e-2))
            .unfreeze_at("task1.", 1)
            .unfreeze_at("trunk.0.", 2);
        let full_path = temp(&format!("{method}-full.safetensors"));
        let mut full = model(4);
        let full_report = Trainer::new(cfg.clone().checkpoint(CheckpointPolicy::new(&full_path)))
            .unwrap()
            .fit(&mut full, &split.train, Some(&split.validation))
            .unwrap();
        // Each unfreeze cohort has its own step count: the steps since its epoch.
        let saved = Checkpoint::load(&full_path).unwrap();
        let steps: Vec<u64> =
            serde_json::from_value(saved.state["optimizer_steps"].clone()).unwrap();
        let per_epoch = steps[0] / 4;
        assert_eq!(
            steps,
            [4 * per_epoch, 3 * per_epoch, 2 * per_epoch],
            "{method}"
        );
        assert!(saved
            .tensors
            .iter()
            .any(|(n, _)| n.starts_with("optimizer::from2.shared.")));

        for stop in [0, 1, 2] {
            let path = temp(&format!("{method}-{stop}.safetensors"));
            let _ = std::fs::remove_file(&path);
            let mut first = model(4);
            let err = Trainer::new(cfg.clone().checkpoint(CheckpointPolicy::new(&path)))
                .unwrap()
                .observe(StopAfter { at: stop + 1 })
                .fit(&mut first, &split.train, Some(&split.validation))
                .unwrap_err();
            assert!(err.to_string().contains("stopped"), "{err}");
            assert_eq!(
                Checkpoint::peek_state(&path).unwrap()["epoch"],
                stop + 1,
                "{method}: the checkpoint holds epochs 0..={stop}"
            );
            // Other initial weights: everything must come from the checkpoint.
            let mut resumed = model(99);
            let report = Trainer::new(cfg.clone().checkpoint(CheckpointPolicy::new(&path)))
                .unwrap()
                .resume_from(&path)
                .fit(&mut resumed, &split.train, Some(&split.validation))
                .unwrap();
            for (a, b) in report.epochs.iter().zip(&full_report.epochs) {
                assert_eq!(a.train_losses, b.train_losses, "{method} stop {stop}");
                assert_eq!(a.validation, b.validation, "{method} stop {stop}");
            }
            assert_eq!(weights(&resumed), weights(&full), "{method} stop {stop}");
            let again = Checkpoint::load(&path).unwrap();
            assert_eq!(
                again.state["optimizer_steps"],
                saved.state["optimizer_steps"]
            );
            for ((na, ta), (nb, tb)) in again
                .group(Some("optimizer"))
                .iter()
                .zip(saved.group(Some("optimizer")))
            {
                assert_eq!(na, &nb);
                assert!(ta.equal(&tb), "{method} stop {stop}: optimiser state {na}");
            }
        }
    }
}

#[test]
fn unfreeze_settings_are_checked() {
    let _torch = torch_lock(); // `model` seeds libtorch's generator
    let refused = |cfg: TrainerConfig, needle: &str| {
        let err = Trainer::new(cfg).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
        assert!(err.to_string().contains(needle), "{needle} in {err}");
    };
    refused(
        config("ew").unfreeze_at(" ", 1),
        "unfreeze[0].prefix is empty",
    );
    refused(config("ew").unfreeze_at("trunk.", 0), "epoch 0");
    refused(
        config("ew").epochs(3).unfreeze_at("trunk.", 3),
        "never train",
    );

    // A prefix naming no parameter is refused at the fit, naming it and the known ones.
    let data = synthetic(32, 2);
    let err = Trainer::new(config("ew").unfreeze_at("trunc.", 1))
        .unwrap()
        .fit(&mut model(0), &data, None)
        .unwrap_err();
    match &err {
        Error::Unknown { name, known, .. } => {
            assert_eq!(name, "trunc.");
            assert!(known.contains("trunk.0.weight"), "{known}");
        }
        other => panic!("{other}"),
    }
    // Strict config files: the schedule parses, an unknown key is refused.
    let cfg: TrainerConfig = serde_json::from_value(serde_json::json!({
        "epochs": 5,
        "unfreeze": [{"prefix": "trunk.", "epoch": 2}]
    }))
    .unwrap();
    assert_eq!(cfg.unfreeze, [Unfreeze::new("trunk.", 2)]);
    let bad = serde_json::from_value::<TrainerConfig>(serde_json::json!({
        "unfreeze": [{"prefix": "trunk.", "epoch": 2, "lr": 0.1}]
    }));
    assert!(bad.unwrap_err().to_string().contains("unknown field"));
}

/// The single-task model a trunk is pretrained in: its trunk under `encoder`, the
/// regression head under `task0`.
fn pretraining_model(seed: u64) -> MultiTaskModel {
    seed_everything(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let trunk = MlpConfig::new([4, 16, 8])
        .build(&(vs.root() / "encoder"))
        .unwrap();
    let head = RegressionHead::new(
        &(task_path(&vs.root(), 0) / "head"),
        "linear",
        8,
        1,
        RegressionLoss::Mse,
    )
    .unwrap();
    MultiTaskModel::new(
        vs,
        HardSharing::new(trunk, 1).unwrap(),
        vec![Box::new(head)],
    )
    .unwrap()
}

/// Pretrain a trunk on one task, save it, load it into a two-task model under another
/// prefix, and fine-tune both tasks: the heads alone for an epoch, then the trunk too.
#[test]
fn a_trunk_pretrained_on_one_task_fine_tunes_on_two() {
    let _torch = torch_lock();
    let data = synthetic(128, 7);
    let path = temp("encoder.safetensors");

    let mut pre = pretraining_model(2);
    Trainer::new(config("ew").epochs(3))
        .unwrap()
        .fit(&mut pre, &data.only_task(1).unwrap(), None)
        .unwrap();
    save_weights(pre.var_store(), &path).unwrap();

    let mut m = model(5);
    let opts = LoadOptions::new()
        .rename("encoder.", "trunk.")
        .skip("task0.")
        .strict(false);
    let report = m.load_pretrained(&path, &opts).unwrap();
    assert_eq!(
        report.loaded,
        [
            "trunk.0.bias",
            "trunk.0.weight",
            "trunk.1.bias",
            "trunk.1.weight"
        ]
    );
    assert!(
        report.missing.iter().all(|n| n.starts_with("task")),
        "{report}"
    );
    assert_eq!(report.skipped, ["task0.head.bias", "task0.head.weight"]);
    assert!(report.unexpected.is_empty());
    let pre_vars = pre.var_store().variables();
    for (name, t) in m.var_store().variables() {
        if let Some(rest) = name.strip_prefix("trunk.") {
            assert!(t.equal(&pre_vars[&format!("encoder.{rest}")]), "{name}");
        }
    }
    // Strict refuses the fresh heads, naming them; a failed strict load changed nothing.
    let err = m
        .load_pretrained(&path, &opts.clone().strict(true))
        .unwrap_err();
    assert!(err.to_string().contains("`task1.head.weight`"), "{err}");

    let loaded = weights(&m);
    let out = Trainer::new(config("ew").epochs(4).unfreeze_at("trunk.", 1))
        .unwrap()
        .fit(&mut m, &data, None)
        .unwrap();
    assert!(moved(&loaded, &weights(&m), "trunk."));
    let (first, last) = (&out.epochs[0].train_losses, &out.epochs[3].train_losses);
    assert!(
        last[0] < first[0] && last[1] < first[1],
        "{first:?} → {last:?}"
    );
    let _ = std::fs::remove_file(&path);
}

/// A method that keeps K×d state (MoCo) cannot follow an unfreeze that widens the
/// shared parameters: the error says so instead of a bare shape mismatch.
#[test]
fn a_widening_unfreeze_under_a_stateful_method_is_explained() {
    let _torch = torch_lock();
    let data = synthetic(64, 3);
    let err = Trainer::new(config("moco").epochs(2).unfreeze_at("trunk.0.", 1))
        .unwrap()
        .fit(&mut model(0), &data, None)
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("unfreeze at epoch 1 widened"), "{msg}");
    assert!(msg.contains("`moco`"), "{msg}");
    // Unfreezing a head leaves the Jacobian's width alone: MoCo trains on.
    Trainer::new(config("moco").epochs(2).unfreeze_at("task1.", 1))
        .unwrap()
        .fit(&mut model(0), &data, None)
        .unwrap();
}

/// With tasks that bring their own rows (per-task optimisers, one task drawn per step),
/// an unfreeze cohort has one optimiser per task too, and a resume across the unfreeze
/// epochs still equals the uninterrupted run.
#[test]
fn a_per_task_run_resumed_across_unfreezes_equals_the_uninterrupted_run() {
    let _torch = torch_lock();
    let data = synthetic(120, 13);
    let train = mtl::data::MultiInputData::new(vec![
        data.only_task(0).unwrap(),
        data.only_task(1).unwrap(),
    ])
    .unwrap();
    let cfg = config("ew")
        .epochs(4)
        .optimizer(OptimizerConfig::adam(1e-2))
        .unfreeze_at("task1.", 1)
        .unfreeze_at("trunk.0.", 2);
    let sampling = TaskSampling::Proportional;
    let mut full = model(6);
    let full_report = Trainer::new(cfg.clone())
        .unwrap()
        .fit_multi_input(&mut full, &train, None, sampling)
        .unwrap();
    for stop in [1, 2] {
        let path = temp(&format!("per-task-{stop}.safetensors"));
        let _ = std::fs::remove_file(&path);
        let mut first = model(6);
        Trainer::new(cfg.clone().checkpoint(CheckpointPolicy::new(&path)))
            .unwrap()
            .observe(StopAfter { at: stop })
            .fit_multi_input(&mut first, &train, None, sampling)
            .unwrap_err();
        let saved = Checkpoint::load(&path).unwrap();
        // Cohorts: the first (shared + 2 tasks), epoch 1's and, once reached, epoch 2's.
        let steps = saved.state["optimizer_steps"].as_array().unwrap().len();
        assert_eq!(steps, 3 * stop, "stop {stop}");
        let mut resumed = model(98);
        let report = Trainer::new(cfg.clone())
            .unwrap()
            .resume_from(&path)
            .fit_multi_input(&mut resumed, &train, None, sampling)
            .unwrap();
        for (a, b) in report.epochs.iter().zip(&full_report.epochs) {
            assert_eq!(a.train_losses, b.train_losses, "stop {stop}");
        }
        assert_eq!(weights(&resumed), weights(&full), "stop {stop}");
    }
}

/// Single-task baselines follow the schedule on their own parameters: task 1's head
/// prefix becomes the baseline's task 0, and is left out of task 0's baseline.
#[test]
fn baselines_follow_the_unfreeze_schedule() {
    let _torch = torch_lock();
    let data = synthetic(120, 17);
    let split = data.split(0.2, 0.2, 3).unwrap();
    let trainer = Trainer::new(
        config("ew")
            .epochs(2)
            .unfreeze_at("task1.", 1)
            .unfreeze_at("trunk.0.", 1),
    )
    .unwrap();
    let baselines = trainer
        .fit_baselines(
            |k, _| Ok(common::model_for(8, &[k])),
            &split.train,
            Some(&split.validation),
            &split.test,
        )
        .unwrap();
    assert_eq!(baselines.reports.len(), 2);
    assert_eq!(
        baselines.reports[0].config.unfreeze,
        [Unfreeze::new("trunk.0.", 1)]
    );
    assert_eq!(
        baselines.reports[1].config.unfreeze,
        [Unfreeze::new("task0.", 1), Unfreeze::new("trunk.0.", 1)]
    );
}
