//! Experiment tracking: per-step metrics in `metrics.csv`, per-epoch ones in
//! `epochs.csv`, and TensorBoard event files that parse as TFRecords of `Event`
//! protocol buffers; a resumed run continues the files without duplicate steps;
//! observers see every step and the loss-scale warning.

mod common;

use common::{config, model, synthetic, torch_lock};
use mtl::prelude::*;
use mtl::{RunStart, StepRecord, TrackingConfig, TrainingObserver};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mtl-tracking-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A protocol-buffer reader for the few fields an event file uses.
struct Proto<'a>(&'a [u8]);

impl<'a> Proto<'a> {
    fn varint(&mut self) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.0[0];
            self.0 = &self.0[1..];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
        }
        v
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    /// The next field: its number and its value (varints as 8 LE bytes).
    fn field(&mut self) -> Option<(u64, Vec<u8>)> {
        if self.0.is_empty() {
            return None;
        }
        let key = self.varint();
        let value = match key & 7 {
            0 => self.varint().to_le_bytes().to_vec(),
            1 => self.take(8).to_vec(),
            2 => {
                let n = self.varint() as usize;
                self.take(n).to_vec()
            }
            5 => self.take(4).to_vec(),
            w => panic!("unexpected wire type {w}"),
        };
        Some((key >> 3, value))
    }
}

/// One decoded event: step, file version or scalars.
#[derive(Debug, Default)]
struct Event {
    step: u64,
    file_version: Option<String>,
    scalars: Vec<(String, f32)>,
}

/// Reads an event file, checking every record's framing and both masked CRCs.
fn read_events(path: &Path) -> Vec<Event> {
    let bytes = std::fs::read(path).unwrap();
    let mut rest = &bytes[..];
    let mut events = Vec::new();
    while !rest.is_empty() {
        let len_bytes = &rest[..8];
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        let len_crc = u32::from_le_bytes(rest[8..12].try_into().unwrap());
        assert_eq!(len_crc, mtl::tracking::masked_crc32c(len_bytes));
        let data = &rest[12..12 + len];
        let data_crc = u32::from_le_bytes(rest[12 + len..16 + len].try_into().unwrap());
        assert_eq!(data_crc, mtl::tracking::masked_crc32c(data));
        rest = &rest[16 + len..];
        let mut event = Event::default();
        let mut p = Proto(data);
        while let Some((field, value)) = p.field() {
            match field {
                1 => assert!(f64::from_le_bytes(value.try_into().unwrap()) > 1.6e9),
                2 => event.step = u64::from_le_bytes(value.try_into().unwrap()),
                3 => event.file_version = Some(String::from_utf8(value).unwrap()),
                5 => {
                    let mut summary = Proto(&value);
                    while let Some((1, v)) = summary.field() {
                        let mut value = Proto(&v);
                        let (mut tag, mut x) = (String::new(), f32::NAN);
                        while let Some((f, bytes)) = value.field() {
                            match f {
                                1 => tag = String::from_utf8(bytes).unwrap(),
                                2 => x = f32::from_le_bytes(bytes.try_into().unwrap()),
                                _ => panic!("unexpected value field {f}"),
                            }
                        }
                        event.scalars.push((tag, x));
                    }
                }
                f => panic!("unexpected event field {f}"),
            }
        }
        events.push(event);
    }
    events
}

fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("tfevents"))
        .collect();
    files.sort();
    files
}

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
}

#[test]
fn steps_and_epochs_go_to_csv_and_tensorboard() {
    let _torch = torch_lock();
    let dir = temp("files");
    let data = synthetic(64, 1);
    let split = data.split(0.25, 0.0, 1).unwrap();
    let cfg = config("ew").epochs(2).tracking(TrackingConfig::new(&dir));
    let mut m = model(1);
    let report = Trainer::new(cfg)
        .unwrap()
        .fit(&mut m, &split.train, Some(&split.validation))
        .unwrap();
    let steps_per_epoch = 3; // 48 rows in batches of 16

    let steps = csv_rows(&dir.join("metrics.csv"));
    assert_eq!(
        steps[0],
        [
            "step",
            "epoch",
            "lr",
            "grad_norm",
            "loss/sign",
            "loss/linear",
            "weight/sign",
            "weight/linear"
        ]
    );
    assert_eq!(steps.len(), 1 + 2 * steps_per_epoch);
    let logged: Vec<&str> = steps[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(logged, ["0", "1", "2", "3", "4", "5"]);
    assert!(steps[1][4].parse::<f64>().unwrap() > 0.0);

    let epochs = csv_rows(&dir.join("epochs.csv"));
    assert_eq!(epochs.len(), 3);
    assert!(
        epochs[0].contains(&"val/sign/accuracy".to_string()),
        "{:?}",
        epochs[0]
    );
    let col = epochs[0]
        .iter()
        .position(|c| c == "train_loss/linear")
        .unwrap();
    let logged: f64 = epochs[2][col].parse().unwrap();
    assert!((logged - report.epochs[1].train_losses[1]).abs() < 1e-12);

    let files = event_files(&dir);
    assert_eq!(files.len(), 1);
    let events = read_events(&files[0]);
    assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
    let loss_steps: Vec<u64> = events
        .iter()
        .filter(|e| e.scalars.iter().any(|(t, _)| t == "train/loss/sign"))
        .map(|e| e.step)
        .collect();
    assert_eq!(loss_steps, [0, 1, 2, 3, 4, 5]);
    let last = events.last().unwrap();
    assert_eq!(last.step, 6);
    let acc = last
        .scalars
        .iter()
        .find(|(t, _)| t == "epoch/val/sign/accuracy")
        .unwrap()
        .1;
    let expected = report.epochs[1]
        .validation
        .as_ref()
        .unwrap()
        .metric(0, "accuracy")
        .unwrap();
    assert!((f64::from(acc) - expected).abs() < 1e-6);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_resumed_run_continues_the_files_without_duplicate_steps() {
    let _torch = torch_lock();
    let dir = temp("resume");
    let data = synthetic(64, 2);
    let ckpt = dir.join("run.safetensors");
    let tracking = TrackingConfig {
        every_steps: 2,
        ..TrackingConfig::new(&dir)
    };
    let cfg = config("ew").epochs(3).tracking(tracking);
    let mut m = model(2);
    Trainer::new(
        cfg.clone()
            .epochs(2)
            .checkpoint(CheckpointPolicy::new(&ckpt)),
    )
    .unwrap()
    .fit(&mut m, &data, None)
    .unwrap();
    // A run killed after its checkpoint may have logged steps past it.
    let path = dir.join("metrics.csv");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text += "8,2,0.01,,9,9,1,1\n";
    std::fs::write(&path, text).unwrap();

    let mut m = model(2);
    Trainer::new(cfg)
        .unwrap()
        .resume_from(&ckpt)
        .fit(&mut m, &data, None)
        .unwrap();
    let steps: Vec<String> = csv_rows(&path)[1..].iter().map(|r| r[0].clone()).collect();
    // 4 steps per epoch, every second one logged, 3 epochs.
    assert_eq!(steps, ["0", "2", "4", "6", "8", "10"]);
    assert!(!std::fs::read_to_string(&path).unwrap().contains(",9,9,"));
    let epochs: Vec<String> = csv_rows(&dir.join("epochs.csv"))[1..]
        .iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(epochs, ["0", "1", "2"]);
    assert_eq!(event_files(&dir).len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Counts steps and keeps warnings.
struct Recorder {
    seen: Arc<Mutex<(usize, Vec<String>)>>,
}

impl TrainingObserver for Recorder {
    fn start(&mut self, run: &RunStart<'_>) -> mtl::core::Result<()> {
        assert_eq!(run.tasks, ["sign", "linear"]);
        Ok(())
    }
    fn step(&mut self, _step: &StepRecord<'_>) -> mtl::core::Result<()> {
        self.seen.lock().unwrap().0 += 1;
        Ok(())
    }
    fn warning(&mut self, message: &str) {
        self.seen.lock().unwrap().1.push(message.to_string());
    }
}

#[test]
fn observers_see_every_step_and_the_loss_scale_warning() {
    let _torch = torch_lock();
    // The regression target on a scale 10⁴ times the classification loss's.
    let data = synthetic(48, 3);
    let tasks = data.tasks().to_vec();
    let mut scaled = tasks.clone();
    if let mtl::data::TargetData::Regression(v) = &mut scaled[1].data {
        v.mapv_inplace(|y| 1000.0 * y + 5000.0);
    }
    let big = mtl::data::MultiTaskDataset::new(data.features().clone(), scaled).unwrap();
    for (method, data, warned) in [
        ("ew", &big, true),
        ("nash_mtl", &big, false),
        ("ew", &data, false),
    ] {
        let seen = Arc::new(Mutex::new((0, Vec::new())));
        let mut m = model(3);
        Trainer::new(config(method).epochs(2))
            .unwrap()
            .observe(Recorder { seen: seen.clone() })
            .fit(&mut m, data, None)
            .unwrap();
        let (steps, warnings) = &*seen.lock().unwrap();
        assert_eq!(*steps, 6, "{method}");
        assert_eq!(!warnings.is_empty(), warned, "{method}: {warnings:?}");
        if warned {
            assert!(warnings[0].contains("`linear`") && warnings[0].contains("`ew`"));
        }
    }
}

#[test]
fn tracking_needs_a_positive_interval() {
    let t = TrackingConfig {
        every_steps: 0,
        ..TrackingConfig::new("unused")
    };
    assert!(Trainer::new(TrainerConfig::default().tracking(t)).is_err());
}
