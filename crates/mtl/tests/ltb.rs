//! LTB (learning to branch) through the trainer: a short fit lowers the loss with a
//! weighting and with a gradient aggregator, the trainer drives the temperature
//! schedule and fixes the tree when asked, the same seed gives the same run, and a run
//! resumed from its checkpoint (logits and frozen tree in it) ends where an
//! uninterrupted one does.

mod common;

use common::{config, synthetic, torch_lock, weights};
use mtl::core::{Ltb, LtbConfig, MlpBuilder};
use mtl::prelude::*;
use mtl::ArchSpec;
use std::path::PathBuf;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mtl-ltb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// LTB over the synthetic problem's 4 features: 3 layers of 2 nodes (4 → 16 → 16 → 8),
/// then the sign classifier and the linear regression.
fn spec(config: LtbConfig) -> ModelSpec {
    ModelSpec {
        architecture: ArchSpec::Ltb {
            config,
            layers: vec![
                MlpBuilder::new([16]),
                MlpBuilder::new([16]),
                MlpBuilder::new([8]),
            ],
        },
        heads: common::synthetic_head_specs(),
        input: None,
    }
}

fn model(seed: u64, config: LtbConfig) -> MultiTaskModel {
    seed_everything(seed);
    MultiTaskModel::from_spec(&spec(config), tch::Device::Cpu).unwrap()
}

fn ltb(m: &MultiTaskModel) -> &Ltb {
    m.architecture_as::<Ltb>()
        .expect("the model's architecture is LTB")
}

#[test]
fn a_short_fit_lowers_the_loss_and_schedules_the_branching() {
    let _torch = torch_lock();
    let data = synthetic(192, 5);
    for method in ["ew", "pcgrad"] {
        let mut m = model(1, LtbConfig::new(4, 2));
        let report = Trainer::new(config(method).epochs(8))
            .unwrap()
            .fit(&mut m, &data, None)
            .unwrap();
        let first: f64 = report.epochs[0].train_losses.iter().sum();
        let last: f64 = report.epochs.last().unwrap().train_losses.iter().sum();
        assert!(last < 0.5 * first, "{method}: {first} → {last}");
        // The trainer ran the schedule: after epoch 7 of 8, τ = (8/20)/√8, no warm-up.
        let arch = ltb(&m);
        assert!((arch.temperature() - 0.4 / 8f64.sqrt()).abs() < 1e-12);
        assert!(!arch.in_warmup());
        assert!(!arch.is_fixed().unwrap());
        // The logits trained.
        assert!(arch
            .logits()
            .iter()
            .any(|t| t.abs().sum(tch::Kind::Float).double_value(&[]) > 0.0));
        let tree = arch.derive().unwrap();
        assert_eq!(tree.num_tasks(), 2);
        assert_eq!(tree.to_string().lines().count(), 3);
    }
}

#[test]
fn the_trainer_fixes_the_tree_at_the_configured_epoch() {
    let _torch = torch_lock();
    let data = synthetic(128, 6);
    let mut m = model(2, LtbConfig::new(4, 2).fix_at_epoch(3));
    let report = Trainer::new(config("ew").epochs(6))
        .unwrap()
        .fit(&mut m, &data, None)
        .unwrap();
    let arch = ltb(&m);
    assert!(arch.is_fixed().unwrap());
    let tree = arch.derive().unwrap();
    // Training after the fix went on with the frozen tree and still improved.
    let at_fix: f64 = report.epochs[3].train_losses.iter().sum();
    let last: f64 = report.epochs[5].train_losses.iter().sum();
    assert!(last < at_fix, "{at_fix} → {last}");
    // The frozen tree is what an evaluation forward routes through.
    let x = tch::Tensor::randn([5, 4], (tch::Kind::Float, tch::Device::Cpu));
    let train = m.forward_t(&x, true).unwrap();
    let eval = m.forward_t(&x, false).unwrap();
    for (a, b) in train.outputs.iter().zip(&eval.outputs) {
        assert!(a.allclose(b, 1e-6, 1e-7, false));
    }
    assert_eq!(tree.path(0).map(|p| p.len()), Some(3));
}

#[test]
fn same_seed_same_run() {
    let _torch = torch_lock();
    let data = synthetic(96, 7);
    let run = || {
        let mut m = model(3, LtbConfig::new(4, 2));
        let r = Trainer::new(config("ew").epochs(3))
            .unwrap()
            .fit(&mut m, &data, None)
            .unwrap();
        (weights(&m), r.epochs.last().unwrap().train_losses.clone())
    };
    assert_eq!(run(), run());
}

#[test]
fn resumed_runs_equal_uninterrupted_runs() {
    let _torch = torch_lock();
    let data = synthetic(100, 8);
    // Fixed before the interruption (the checkpoint must carry the tree) and after it
    // (the resumed run must fix it at the same epoch).
    for fix in [1usize, 3] {
        // τ₀ given: the default E/20 depends on the run's length, and the first run
        // here is a shorter one (as a step-based learning-rate schedule must be).
        let cfg = LtbConfig::new(4, 2).temperature(1.0).fix_at_epoch(fix);
        let c = config("pcgrad").epochs(5);
        let mut full = model(4, cfg.clone());
        let full_report = Trainer::new(c.clone())
            .unwrap()
            .fit(&mut full, &data, None)
            .unwrap();

        let path = temp(&format!("fix{fix}.safetensors"));
        let mut first = model(4, cfg.clone());
        Trainer::new(c.clone().epochs(2).checkpoint(CheckpointPolicy::new(&path)))
            .unwrap()
            .fit(&mut first, &data, None)
            .unwrap();
        assert_eq!(ltb(&first).is_fixed().unwrap(), fix < 2);
        let mut resumed = model(99, cfg);
        let report = Trainer::new(c)
            .unwrap()
            .resume_from(&path)
            .fit(&mut resumed, &data, None)
            .unwrap();
        for (a, b) in report.epochs.iter().zip(&full_report.epochs) {
            assert_eq!(
                a.train_losses, b.train_losses,
                "fix {fix} epoch {}",
                a.epoch
            );
        }
        assert_eq!(weights(&resumed), weights(&full), "fix {fix}");
        assert_eq!(
            ltb(&resumed).derive().unwrap(),
            ltb(&full).derive().unwrap()
        );
    }
}

#[test]
fn the_spec_names_ltb_and_refuses_mismatches() {
    let s = spec(LtbConfig::new(4, 2).nodes([1, 2, 2]));
    let json = serde_json::to_string(&s).unwrap();
    assert!(json.contains("\"kind\":\"ltb\""), "{json}");
    assert_eq!(serde_json::from_str::<ModelSpec>(&json).unwrap(), s);
    // The single-task baseline keeps the shape with one task node.
    let one = s.only_task(1).unwrap();
    let ArchSpec::Ltb { config, .. } = &one.architecture else {
        panic!("still LTB")
    };
    assert_eq!(
        (config.num_tasks, config.nodes.clone()),
        (1, Some(vec![1, 2, 1]))
    );
    let _torch = torch_lock();
    assert_eq!(one.build(tch::Device::Cpu).unwrap().num_tasks(), 1);
    // Task nodes vs heads, and a bad config, are typed errors.
    let three = spec(LtbConfig::new(4, 3));
    assert!(matches!(
        three.build(tch::Device::Cpu),
        Err(Error::TaskCount { .. })
    ));
    let zero = spec(LtbConfig::new(4, 2).nodes([2, 0, 2]));
    assert!(matches!(
        zero.build(tch::Device::Cpu),
        Err(Error::Config(_))
    ));
}
