//! Checkpoints: a run interrupted half-way and resumed from its checkpoint ends with
//! exactly the weights of an uninterrupted run; bad checkpoints are typed errors.

mod common;

use common::{config, model, synthetic, torch_lock, weights};
use mtl::core::checkpoint::Checkpoint;
use mtl::core::files::OutputLock;
use mtl::data::MultiTaskDataset;
use mtl::prelude::*;
use mtl::MAX_EPOCHS;
use std::path::PathBuf;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mtl-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn cfg(method: &str) -> TrainerConfig {
    // SGD with momentum and a schedule that depends only on the step, so the state the
    // resume must restore includes momenta and the step count.
    config(method)
        .epochs(4)
        .optimizer(OptimizerConfig::Sgd {
            lr: 0.05,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 1e-4,
        })
        .lr_schedule(LrSchedule::step(5, 0.7))
        .clip_grad_norm(5.0)
        .early_stopping(EarlyStopping::new(Monitor::TotalLoss, 100))
}

#[test]
fn resumed_runs_equal_uninterrupted_runs_bit_for_bit() {
    let _torch = torch_lock();
    let data = synthetic(100, 11); // 7 batches per epoch, the last one short
    let split = data.split(0.2, 0.0, 1).unwrap();
    for method in ["ew", "uw", "pcgrad", "gradnorm"] {
        for adam in [false, true] {
            let mut c = cfg(method);
            if adam {
                c = c.optimizer(OptimizerConfig::adamw(1e-2));
            }
            let mut full = model(4);
            let full_report = Trainer::new(c.clone())
                .unwrap()
                .fit(&mut full, &split.train, Some(&split.validation))
                .unwrap();

            let path = temp(&format!("{method}-{adam}.safetensors"));
            let mut first = model(4);
            Trainer::new(c.clone().epochs(2).checkpoint(CheckpointPolicy::new(&path)))
                .unwrap()
                .fit(&mut first, &split.train, Some(&split.validation))
                .unwrap();
            // A fresh model with other initial weights: everything must come from the file.
            let mut resumed = model(99);
            let report = Trainer::new(c.clone())
                .unwrap()
                .resume_from(&path)
                .fit(&mut resumed, &split.train, Some(&split.validation))
                .unwrap();
            assert_eq!(report.epochs.len(), 4);
            for (a, b) in report.epochs.iter().zip(&full_report.epochs) {
                assert_eq!(a.train_losses, b.train_losses, "{method} epoch {}", a.epoch);
                assert_eq!(a.task_weights, b.task_weights, "{method} epoch {}", a.epoch);
                assert_eq!(a.validation, b.validation);
            }
            assert_eq!(report.best_epoch, full_report.best_epoch);
            assert_eq!(weights(&resumed), weights(&full), "{method} adam={adam}");
        }
    }
}

#[test]
fn the_checkpoint_is_plain_safetensors_with_model_names() {
    let _torch = torch_lock();
    let data = synthetic(64, 12);
    let path = temp("plain.safetensors");
    let mut m = model(1);
    Trainer::new(
        config("uw")
            .epochs(1)
            .checkpoint(CheckpointPolicy::new(&path)),
    )
    .unwrap()
    .fit(&mut m, &data, None)
    .unwrap();
    let ckpt = Checkpoint::load(&path).unwrap();
    let names: Vec<String> = ckpt.group(None).into_iter().map(|(n, _)| n).collect();
    let mut expected: Vec<String> = m.var_store().variables().into_keys().collect();
    expected.sort();
    assert_eq!(names, expected);
    // UW's log-variances and the optimiser moments travel in their own groups.
    assert_eq!(ckpt.group(Some("method")).len(), 1);
    assert!(!ckpt.group(Some("optimizer")).is_empty());
    // tch reads it back as a safetensors file too.
    let raw = tch::Tensor::read_safetensors(&path).unwrap();
    assert_eq!(raw.len(), ckpt.tensors.len());
}

#[test]
fn bad_checkpoints_are_typed_errors() {
    let _torch = torch_lock();
    let data = synthetic(64, 13);
    let path = temp("good.safetensors");
    let mut m = model(2);
    Trainer::new(
        config("ew")
            .epochs(1)
            .checkpoint(CheckpointPolicy::new(&path)),
    )
    .unwrap()
    .fit(&mut m, &data, None)
    .unwrap();

    let resume = |cfg: TrainerConfig, path: &PathBuf, m: &mut MultiTaskModel| {
        Trainer::new(cfg)
            .unwrap()
            .resume_from(path)
            .fit(m, &data, None)
    };
    let is_ckpt = |r: Result<RunReport>| matches!(r, Err(Error::Checkpoint { .. }));

    // Another method, another seed, another model.
    assert!(is_ckpt(resume(config("uw"), &path, &mut model(2))));
    assert!(is_ckpt(resume(config("ew").seed(4), &path, &mut model(2))));
    let mut one_task = common::model_for(2, &[0]);
    let single = data.only_task(0).unwrap();
    assert!(matches!(
        Trainer::new(config("ew"))
            .unwrap()
            .resume_from(&path)
            .fit(&mut one_task, &single, None),
        Err(Error::Checkpoint { .. })
    ));
    // Corrupted bytes.
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 0x40;
    let bad = temp("flipped.safetensors");
    std::fs::write(&bad, &bytes).unwrap();
    assert!(is_ckpt(resume(config("ew"), &bad, &mut model(2))));
    std::fs::write(&bad, &bytes[..n / 2]).unwrap();
    assert!(is_ckpt(resume(config("ew"), &bad, &mut model(2))));
    // A missing file is an I/O error naming it.
    let err = resume(config("ew"), &temp("missing.safetensors"), &mut model(2)).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    // The good one still resumes (and may extend the epoch budget).
    assert!(resume(config("ew").epochs(2), &path, &mut model(2)).is_ok());
}

/// A two-epoch run of `c` on `data` that checkpoints to `path`.
fn checkpointed(c: TrainerConfig, data: &MultiTaskDataset, path: &PathBuf) -> Trainer {
    let mut t = Trainer::new(c.checkpoint(CheckpointPolicy::new(path))).unwrap();
    t.fit(&mut model(2), data, None).unwrap();
    t
}

/// Resume compared only the row count: resuming with unstandardised (or other) data,
/// other preprocessing, or another epoch budget under a cosine schedule trained on
/// without a word. Each is refused naming what differs, and a forced resume goes on.
#[test]
fn resuming_a_different_run_is_refused_naming_the_difference() {
    let _torch = torch_lock();
    let data = synthetic(64, 21);
    let path = temp("identity.safetensors");
    let prep = serde_json::json!({"standardize": true});
    let c = config("ew").epochs(2);
    let mut first = Trainer::new(c.clone().checkpoint(CheckpointPolicy::new(&path)))
        .unwrap()
        .preprocessing(prep.clone());
    first.fit(&mut model(2), &data, None).unwrap();

    let resume = |c: TrainerConfig, data: &MultiTaskDataset, prep: serde_json::Value, force| {
        Trainer::new(c)
            .unwrap()
            .preprocessing(prep)
            .resume_from(&path)
            .force_resume(force)
            .fit(&mut model(2), data, None)
    };
    let message = |r: Result<RunReport>| match r {
        Err(e @ Error::Checkpoint { .. }) => e.to_string(),
        other => panic!("{other:?}"),
    };
    // Same rows, other values (as when standardisation is switched off).
    let other = synthetic(64, 22);
    let m = message(resume(c.clone().epochs(3), &other, prep.clone(), false));
    assert!(
        m.contains("training data") && m.contains("--force-resume"),
        "{m}"
    );
    let m = message(resume(
        c.clone().epochs(3),
        &data,
        serde_json::json!({"standardize": false}),
        false,
    ));
    assert!(
        m.contains("preprocessing `standardize`: saved true, now false"),
        "{m}"
    );
    let m = message(resume(
        c.clone().epochs(3).optimizer(OptimizerConfig::adam(0.5)),
        &data,
        prep.clone(),
        false,
    ));
    assert!(m.contains("`optimizer.lr`: saved 0.01, now 0.5"), "{m}");
    let m = message(resume(
        c.clone().epochs(3),
        &synthetic(80, 21),
        prep.clone(),
        false,
    ));
    assert!(m.contains("training rows: saved [64], now [80]"), "{m}");
    // Forced, the run goes on from the checkpoint.
    let report = resume(c.clone().epochs(3), &other, prep.clone(), true).unwrap();
    assert_eq!(report.epochs.len(), 3);

    // A schedule spread over the total steps: another epoch budget is another run.
    let cosine = config("ew").lr_schedule(LrSchedule::cosine(0.0)).epochs(2);
    let path = temp("cosine.safetensors");
    checkpointed(cosine.clone(), &data, &path);
    let err = Trainer::new(cosine.clone().epochs(4))
        .unwrap()
        .resume_from(&path)
        .fit(&mut model(2), &data, None)
        .unwrap_err();
    assert!(err.to_string().contains("epochs: saved 2, now 4"), "{err}");
    assert!(Trainer::new(cosine.epochs(4))
        .unwrap()
        .resume_from(&path)
        .force_resume(true)
        .fit(&mut model(2), &data, None)
        .is_ok());
}

/// `checkpoint.path` equal to the input CSV overwrote the CSV; equal to another run's
/// checkpoint it destroyed that. Both are refused before the first step, leaving the
/// file as it was; a checkpoint of this same run, or the one resumed, is replaced.
#[test]
fn a_checkpoint_never_replaces_another_file() {
    let _torch = torch_lock();
    let data = synthetic(48, 23);
    let c = config("ew").epochs(1);
    let fit = |c: TrainerConfig, path: &PathBuf| {
        Trainer::new(c.checkpoint(CheckpointPolicy::new(path)))
            .unwrap()
            .fit(&mut model(2), &data, None)
    };
    let csv = temp("input.csv");
    std::fs::write(&csv, "a,b\n1,2\n").unwrap();
    let err = fit(c.clone(), &csv).unwrap_err();
    assert!(err.to_string().contains("not an mtl checkpoint"), "{err}");
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), "a,b\n1,2\n");

    let theirs = temp("theirs.safetensors");
    fit(c.clone().seed(40), &theirs).unwrap();
    let before = std::fs::read(&theirs).unwrap();
    let err = fit(c.clone(), &theirs).unwrap_err();
    assert!(
        err.to_string().contains("another run") && err.to_string().contains("`seed`"),
        "{err}"
    );
    assert_eq!(std::fs::read(&theirs).unwrap(), before);
    // The same run again, or a longer budget of it, may replace its own checkpoint...
    fit(c.clone().seed(40).epochs(2), &theirs).unwrap();
    // ...and a resumed run writes over the checkpoint it resumed from, even forced.
    let resumed = Trainer::new(
        c.clone()
            .epochs(2)
            .checkpoint(CheckpointPolicy::new(&theirs)),
    )
    .unwrap()
    .resume_from(&theirs)
    .force_resume(true)
    .fit(&mut model(2), &data, None);
    assert!(resumed.is_ok(), "{resumed:?}");

    // A directory that cannot be created (its parent is a file) fails before training.
    let err = fit(c.clone().epochs(MAX_EPOCHS), &csv.join("ckpt.safetensors")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

/// Two runs writing one checkpoint mixed their files; now the second is refused with
/// the first one's pid, and a lock left by a killed run is taken over (its temporary
/// files removed).
#[test]
fn a_checkpoint_is_locked_against_a_second_run() {
    let _torch = torch_lock();
    let data = synthetic(48, 24);
    let path = temp("locked.safetensors");
    let lock_path = OutputLock::for_file(&path).unwrap();
    let held = OutputLock::acquire(&lock_path, &path).unwrap();
    let fit = || {
        Trainer::new(
            config("ew")
                .epochs(1)
                .checkpoint(CheckpointPolicy::new(&path)),
        )
        .unwrap()
        .fit(&mut model(2), &data, None)
    };
    match fit().unwrap_err() {
        Error::Locked { pid, .. } => assert_eq!(pid, Some(std::process::id())),
        other => panic!("{other}"),
    }
    drop(held);
    // A killed run's lock and half-written temporary.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::write(&lock_path, format!("{dead}\n")).unwrap();
    let stale = path.with_file_name(format!(".locked.safetensors.tmp{dead}"));
    std::fs::write(&stale, b"half").unwrap();
    fit().unwrap();
    assert!(!stale.exists() && !lock_path.exists() && path.exists());
}

/// A checkpoint's records are checked against the run's task count on load: a
/// shortened record (with a valid digest) made the report's plot panic at
/// `plots.rs:176`.
#[test]
fn checkpoint_records_are_validated_on_load() {
    let _torch = torch_lock();
    let data = synthetic(48, 25);
    let path = temp("records.safetensors");
    checkpointed(config("ew").epochs(2), &data, &path);
    let edit = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut ckpt = Checkpoint::load(&path).unwrap();
        edit(&mut ckpt.state);
        let edited = temp("records-edited.safetensors");
        ckpt.save(&edited).unwrap();
        Trainer::new(config("ew").epochs(3))
            .unwrap()
            .resume_from(&edited)
            .fit(&mut model(2), &data, None)
            .unwrap_err()
            .to_string()
    };
    let err = edit(&|s| {
        s["records"][1]["train_losses"]
            .as_array_mut()
            .unwrap()
            .pop();
    });
    assert!(err.contains("epoch record 1 does not fit"), "{err}");
    let err = edit(&|s| s["epoch"] = 12.into());
    assert!(err.contains("2 epoch records for 12 epochs"), "{err}");
    let err = edit(&|s| s["best"] = serde_json::json!([0.5, 7]));
    assert!(err.contains("best epoch 7"), "{err}");
    let err = edit(&|s| s["step"] = 1.into());
    assert!(err.contains("records step 1"), "{err}");
}
