//! Data-parallel training through the Trainer: two Gloo ranks on loopback end where
//! one process ends, and a run checkpointed with one world size resumes with another.

mod common;

use common::{config, model_without_dropout, synthetic, torch_lock};
use mtl::core::Collective;
use mtl::data::MultiTaskDataset;
use mtl::prelude::*;
use mtl_dist::{launch, DistConfig, ProcessGroup};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tch::Tensor;

const METHODS: [&str; 3] = ["ew", "uw", "upgrad"];

fn data() -> MultiTaskDataset {
    // 80 training rows: 5 batches of 16 per epoch.
    synthetic(100, 11).split(0.2, 0.0, 1).unwrap().train
}

/// Trains with `method` for `epochs` (resuming from `resume`, checkpointing to
/// `checkpoint`), on `group` when given; returns the flat weights and the world size
/// the report records.
fn fit(
    method: &str,
    epochs: usize,
    group: Option<&Arc<ProcessGroup>>,
    resume: Option<&Path>,
    checkpoint: Option<&Path>,
    seed: u64,
) -> (Tensor, usize) {
    let mut cfg = config(method).epochs(epochs);
    if let Some(path) = checkpoint {
        cfg = cfg.checkpoint(CheckpointPolicy::new(path));
    }
    let mut trainer = Trainer::new(cfg).unwrap();
    if let Some(path) = resume {
        trainer = trainer.resume_from(path);
    }
    if let Some(g) = group {
        trainer = trainer.distributed(Arc::clone(g));
    }
    let mut m = model_without_dropout(seed);
    let report = trainer.fit(&mut m, &data(), None).unwrap();
    let flat: Vec<Tensor> = m
        .snapshot()
        .into_iter()
        .map(|(_, t)| t.reshape([-1]))
        .collect();
    (Tensor::cat(&flat, 0), report.world_size)
}

fn out(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

#[test]
fn two_ranks_match_one_process_and_resume_across_world_sizes() {
    if launch::is_test_rank() {
        let config = DistConfig::from_env().unwrap().unwrap();
        let pg = Arc::new(ProcessGroup::init(&config).unwrap());
        let dir = PathBuf::from(std::env::var("MTL_DIST_OUT").unwrap());
        let r = pg.rank();
        for method in METHODS {
            // Rank 1 starts from other weights: the group takes rank 0's.
            let (w, world) = fit(method, 4, Some(&pg), None, None, 5 + r as u64);
            assert_eq!(world, 2);
            w.save(out(&dir, &format!("{method}-full-rank{r}.pt")))
                .unwrap();
            let ckpt = out(&dir, &format!("{method}-two.safetensors"));
            let _ = fit(method, 2, Some(&pg), None, Some(&ckpt), 5);
            let one = out(&dir, &format!("{method}-one.safetensors"));
            let (w, _) = fit(method, 4, Some(&pg), Some(&one), None, 99);
            w.save(out(&dir, &format!("{method}-resumed-rank{r}.pt")))
                .unwrap();
        }
        return;
    }
    let _torch = torch_lock();
    let dir = std::env::temp_dir().join(format!("mtl-dp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut full = Vec::new();
    for method in METHODS {
        full.push(fit(method, 4, None, None, None, 5).0);
        // Half a run in one process, for the ranks to resume.
        let _ = fit(
            method,
            2,
            None,
            None,
            Some(&out(&dir, &format!("{method}-one.safetensors"))),
            5,
        );
    }
    launch::run_test_ranks(
        "two_ranks_match_one_process_and_resume_across_world_sizes",
        2,
        &[("MTL_DIST_OUT", dir.as_os_str())],
    )
    .unwrap();
    for (method, single) in METHODS.iter().zip(&full) {
        let load = |name: &str| Tensor::load(out(&dir, &format!("{method}-{name}.pt"))).unwrap();
        let close = |t: &Tensor| (t - single).abs().max().double_value(&[]);
        let (r0, r1) = (load("full-rank0"), load("full-rank1"));
        assert!(r0.equal(&r1), "{method}: the ranks hold different weights");
        assert!(
            close(&r0) < 1e-5,
            "{method}: 2 ranks vs 1 process: {}",
            close(&r0)
        );
        // 1 → 2: the one-process checkpoint finished by two ranks.
        let resumed = load("resumed-rank0");
        assert!(
            close(&resumed) < 1e-5,
            "{method}: 1→2 resume: {}",
            close(&resumed)
        );
        // 2 → 1: the two ranks' checkpoint (written by rank 0) finished by one process.
        let ckpt = out(&dir, &format!("{method}-two.safetensors"));
        let (w, world) = fit(method, 4, None, Some(&ckpt), None, 99);
        assert_eq!(world, 1);
        assert!(close(&w) < 1e-5, "{method}: 2→1 resume: {}", close(&w));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ranks_with_other_configurations_are_refused() {
    if launch::is_test_rank() {
        let config = DistConfig::from_env().unwrap().unwrap();
        let pg = Arc::new(ProcessGroup::init(&config).unwrap());
        let method = ["ew", "uw"][pg.rank()];
        let err = Trainer::new(config_for(method))
            .unwrap()
            .distributed(Arc::clone(&pg))
            .fit(&mut model_without_dropout(5), &data(), None)
            .unwrap_err()
            .to_string();
        // Each rank names the disagreement and stops before training.
        assert!(
            err.contains("the ranks disagree on the trainer configuration"),
            "{err}"
        );
        assert!(err.contains(&format!("rank {} of 2", pg.rank())), "{err}");
        return;
    }
    launch::run_test_ranks("ranks_with_other_configurations_are_refused", 2, &[]).unwrap();
}

fn config_for(method: &str) -> TrainerConfig {
    config(method).epochs(1)
}
