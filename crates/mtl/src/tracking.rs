//! Experiment tracking: what the training loop tells observers step by step, and the
//! built-in observer that writes per-step metrics to CSV files and TensorBoard event
//! files beside the run report.
//!
//! The loop calls every [`TrainingObserver`] at the start of a fit, after every
//! optimiser step, after every epoch, and at the end; [`TrainerConfig::tracking`]
//! adds a [`MetricsWriter`], and [`Trainer::observe`](crate::Trainer::observe) adds
//! any other. TensorBoard event files are written here directly (TFRecord framing:
//! length, masked CRC-32C, payload, masked CRC-32C; payloads are `Event` protocol
//! buffers with scalar summaries), because the one Rust crate for them is unmaintained
//! and brings an old protobuf and image stack for three message types.
//!
//! [`TrainerConfig::tracking`]: crate::TrainerConfig::tracking

use crate::loss_scale::loss_scale_warning;
use crate::report::EpochRecord;
use mtl_core::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// What the loop knows when a fit starts.
#[derive(Debug, Clone)]
pub struct RunStart<'a> {
    /// The task names.
    pub tasks: &'a [String],
    /// The method's name.
    pub method: &'a str,
    /// The epoch the fit starts at (after the checkpoint's when resuming, else 0).
    pub epoch: usize,
    /// The global step it starts at (0 unless resuming).
    pub step: u64,
    /// Steps per epoch.
    pub steps_per_epoch: u64,
}

/// One optimiser step.
#[derive(Debug, Clone)]
pub struct StepRecord<'a> {
    /// The global step (0-based, counted over the whole run).
    pub step: u64,
    /// The epoch (0-based).
    pub epoch: usize,
    /// Each task's loss (0 for a task the step did not draw).
    pub losses: &'a [f64],
    /// Which tasks the step trained (all, except with per-task data).
    pub drawn: &'a [bool],
    /// The method's task weights (empty for a method without weights).
    pub weights: &'a [f64],
    /// The learning rate of the step.
    pub lr: f64,
    /// The global gradient norm before clipping, when clipping is on.
    pub grad_norm: Option<f64>,
}

/// Something the training loop reports to. Every method has a default that does
/// nothing; an error stops the fit.
pub trait TrainingObserver: Send {
    /// A fit starts (or resumes).
    fn start(&mut self, _run: &RunStart<'_>) -> Result<()> {
        Ok(())
    }
    /// A step is done.
    fn step(&mut self, _step: &StepRecord<'_>) -> Result<()> {
        Ok(())
    }
    /// An epoch is done; `step` is the global step count after it.
    fn epoch(&mut self, _record: &EpochRecord, _step: u64) -> Result<()> {
        Ok(())
    }
    /// The loop warns about the run (task losses on very different scales...). The
    /// warning also goes to `tracing` at warn level.
    fn warning(&mut self, _message: &str) {}
    /// The fit ends (normally; not after an error).
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Which metrics files a fit writes, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingConfig {
    /// The directory (created when missing): normally the run's output directory.
    pub dir: PathBuf,
    /// Write TensorBoard event files (`events.out.tfevents.*`).
    #[serde(default)]
    pub tensorboard: bool,
    /// Write `metrics.csv` (one row per logged step) and `epochs.csv` (one per epoch).
    #[serde(default)]
    pub csv: bool,
    /// Log every N-th step (≥ 1); epochs are always logged.
    #[serde(default = "one")]
    pub every_steps: u64,
}

fn one() -> u64 {
    1
}

impl TrackingConfig {
    /// CSV and TensorBoard files in `dir`, every step.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        TrackingConfig {
            dir: dir.into(),
            tensorboard: true,
            csv: true,
            every_steps: 1,
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.every_steps == 0 {
            return Err(Error::config("tracking every_steps must be at least 1"));
        }
        Ok(())
    }
}

/// The observer behind [`TrackingConfig`]: per-step losses, task weights, learning
/// rate and gradient norm to `metrics.csv` and TensorBoard, per-epoch training and
/// validation losses and metrics to `epochs.csv` and TensorBoard. TensorBoard tags are
/// `train/loss/<task>`, `train/weight/<task>`, `train/lr`, `train/grad_norm`,
/// `epoch/train_loss/<task>`, `epoch/val_loss/<task>` and `epoch/val/<task>/<metric>`,
/// all against the global step. A resumed fit keeps the CSV rows from before the
/// checkpoint and drops later ones (a killed run may have logged past it), and starts a
/// new event file, as TensorBoard expects of a restart.
#[derive(Debug)]
pub struct MetricsWriter {
    config: TrackingConfig,
    tasks: Vec<String>,
    steps: Option<CsvLog>,
    epochs: Option<CsvLog>,
    events: Option<EventWriter>,
}

impl MetricsWriter {
    /// A writer for `config`; files are opened when the fit starts.
    pub fn new(config: TrackingConfig) -> Result<Self> {
        config.check()?;
        Ok(MetricsWriter {
            config,
            tasks: Vec::new(),
            steps: None,
            epochs: None,
            events: None,
        })
    }

    /// The CSV file of steps.
    pub fn steps_path(dir: &Path) -> PathBuf {
        dir.join("metrics.csv")
    }

    /// The CSV file of epochs.
    pub fn epochs_path(dir: &Path) -> PathBuf {
        dir.join("epochs.csv")
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl TrainingObserver for MetricsWriter {
    fn start(&mut self, run: &RunStart<'_>) -> Result<()> {
        let dir = &self.config.dir;
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        self.tasks = run.tasks.to_vec();
        if self.config.csv {
            let mut header = vec![
                "step".to_string(),
                "epoch".into(),
                "lr".into(),
                "grad_norm".into(),
            ];
            header.extend(run.tasks.iter().map(|t| format!("loss/{t}")));
            header.extend(run.tasks.iter().map(|t| format!("weight/{t}")));
            self.steps = Some(CsvLog::open(Self::steps_path(dir), Some(header), run.step)?);
            // The epoch file's columns depend on the validation metrics, known at the
            // first epoch's end.
            self.epochs = Some(CsvLog::open(
                Self::epochs_path(dir),
                None,
                run.epoch as u64,
            )?);
        }
        if self.config.tensorboard {
            self.events = Some(EventWriter::create(dir)?);
        }
        Ok(())
    }

    fn step(&mut self, s: &StepRecord<'_>) -> Result<()> {
        if !s.step.is_multiple_of(self.config.every_steps) {
            return Ok(());
        }
        let k = self.tasks.len();
        if let Some(log) = &mut self.steps {
            let mut row = vec![
                s.step.to_string(),
                s.epoch.to_string(),
                s.lr.to_string(),
                s.grad_norm.map(|g| g.to_string()).unwrap_or_default(),
            ];
            for t in 0..k {
                let drawn = s.drawn.get(t).copied().unwrap_or(true);
                row.push(match s.losses.get(t) {
                    Some(l) if drawn => l.to_string(),
                    _ => String::new(),
                });
            }
            for t in 0..k {
                row.push(s.weights.get(t).map(|w| w.to_string()).unwrap_or_default());
            }
            log.row(&row)?;
        }
        if let Some(events) = &mut self.events {
            let mut scalars = vec![("train/lr".to_string(), s.lr)];
            if let Some(g) = s.grad_norm {
                scalars.push(("train/grad_norm".into(), g));
            }
            for (t, name) in self.tasks.iter().enumerate() {
                if let (Some(l), true) = (s.losses.get(t), s.drawn.get(t).copied().unwrap_or(true))
                {
                    scalars.push((format!("train/loss/{name}"), *l));
                }
                if let Some(w) = s.weights.get(t) {
                    scalars.push((format!("train/weight/{name}"), *w));
                }
            }
            events.scalars(s.step, &scalars)?;
        }
        Ok(())
    }

    fn epoch(&mut self, record: &EpochRecord, step: u64) -> Result<()> {
        let mut columns: Vec<(String, String)> = vec![
            ("epoch".into(), record.epoch.to_string()),
            ("step".into(), step.to_string()),
            ("seconds".into(), record.seconds.to_string()),
            ("lr".into(), record.lr.to_string()),
        ];
        let mut scalars = Vec::new();
        for (t, name) in self.tasks.iter().enumerate() {
            if let Some(l) = record.train_losses.get(t) {
                columns.push((format!("train_loss/{name}"), l.to_string()));
                scalars.push((format!("epoch/train_loss/{name}"), *l));
            }
        }
        if let Some(v) = &record.validation {
            for (t, name) in v.tasks.iter().enumerate() {
                if let Some(l) = v.losses.get(t) {
                    columns.push((format!("val_loss/{name}"), l.to_string()));
                    scalars.push((format!("epoch/val_loss/{name}"), *l));
                }
                for m in v.metrics.get(t).into_iter().flatten() {
                    columns.push((format!("val/{name}/{}", m.name), m.value.to_string()));
                    scalars.push((format!("epoch/val/{name}/{}", m.name), m.value));
                }
            }
        }
        if let Some(log) = &mut self.epochs {
            if log.header.is_none() {
                log.set_header(columns.iter().map(|(h, _)| h.clone()).collect())?;
            }
            let header = log.header.clone().unwrap_or_default();
            // Same columns every epoch; a value missing this epoch is an empty cell.
            let row: Vec<String> = header
                .iter()
                .map(|h| {
                    columns
                        .iter()
                        .find(|(c, _)| c == h)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                })
                .collect();
            log.row(&row)?;
            log.flush()?;
        }
        if let Some(steps) = &mut self.steps {
            steps.flush()?;
        }
        if let Some(events) = &mut self.events {
            events.scalars(step, &scalars)?;
            events.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        for log in [&mut self.steps, &mut self.epochs].into_iter().flatten() {
            log.flush()?;
        }
        if let Some(events) = &mut self.events {
            events.flush()?;
        }
        Ok(())
    }
}

/// A CSV file appended to row by row.
#[derive(Debug)]
struct CsvLog {
    path: PathBuf,
    out: BufWriter<File>,
    header: Option<Vec<String>>,
}

/// One CSV field, quoted when it needs to be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_line(fields: &[String]) -> String {
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

impl CsvLog {
    /// Opens `path` for a fit starting at `resume_from` (a step or an epoch, the
    /// file's first column): from scratch at 0, else keeping the existing rows whose
    /// first column is below it. With `header` given, the kept file must have it.
    fn open(path: PathBuf, header: Option<Vec<String>>, resume_from: u64) -> Result<Self> {
        let mut kept_header = None;
        let mut kept = String::new();
        if resume_from > 0 {
            if let Ok(text) = std::fs::read_to_string(&path) {
                let mut lines = text.lines();
                if let Some(first) = lines.next() {
                    let existing = first.to_string();
                    if let Some(h) = &header {
                        if csv_line(h).trim_end() != existing {
                            return Err(Error::config(format!(
                                "{}: its columns are not this run's; move it away to resume here",
                                path.display()
                            )));
                        }
                    }
                    kept_header = Some(existing);
                    for line in lines {
                        let first_field = line.split(',').next().unwrap_or("");
                        if first_field.parse::<u64>().is_ok_and(|v| v < resume_from) {
                            kept.push_str(line);
                            kept.push('\n');
                        }
                    }
                }
            }
        }
        // Written to a temporary file and renamed, so a crash never leaves a half file
        // (named as mtl_core::files names its temporaries, so a killed run's is cleaned).
        let tmp = mtl_core::files::temp_path(&path)?;
        let mut out = BufWriter::new(File::create(&tmp).map_err(io_error(&tmp))?);
        let header = match (kept_header, header) {
            (Some(existing), _) => {
                out.write_all(format!("{existing}\n{kept}").as_bytes())
                    .map_err(io_error(&tmp))?;
                Some(existing.split(',').map(String::from).collect())
            }
            (None, Some(h)) => {
                out.write_all(csv_line(&h).as_bytes())
                    .map_err(io_error(&tmp))?;
                Some(h)
            }
            (None, None) => None,
        };
        out.flush().map_err(io_error(&tmp))?;
        let file = out.into_inner().map_err(|e| Error::Io {
            path: tmp.clone(),
            source: e.into_error(),
        })?;
        std::fs::rename(&tmp, &path).map_err(io_error(&path))?;
        Ok(CsvLog {
            path,
            out: BufWriter::new(file),
            header,
        })
    }

    fn set_header(&mut self, header: Vec<String>) -> Result<()> {
        self.out
            .write_all(csv_line(&header).as_bytes())
            .map_err(io_error(&self.path))?;
        self.header = Some(header);
        Ok(())
    }

    fn row(&mut self, fields: &[String]) -> Result<()> {
        self.out
            .write_all(csv_line(fields).as_bytes())
            .map_err(io_error(&self.path))
    }

    fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(io_error(&self.path))
    }
}

/// A TensorBoard event file.
#[derive(Debug)]
struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// A new event file in `dir`, opened with the file-version event TensorBoard reads
    /// first.
    fn create(dir: &Path) -> Result<Self> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        // TensorBoard finds event files by "tfevents" in the name and reads them in
        // name order; the time first keeps a resumed run's file after the earlier one.
        let name = format!(
            "events.out.tfevents.{:010}.{:09}.mtl.{}",
            now.as_secs(),
            now.subsec_nanos(),
            std::process::id()
        );
        let path = dir.join(name);
        let file = File::create(&path).map_err(io_error(&path))?;
        let mut writer = EventWriter {
            path,
            out: BufWriter::new(file),
        };
        let event = encode_event(wall_time(), 0, EventBody::FileVersion("brain.Event:2"));
        writer.record(&event)?;
        writer.flush()?;
        Ok(writer)
    }

    fn scalars(&mut self, step: u64, values: &[(String, f64)]) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        let event = encode_event(wall_time(), step, EventBody::Scalars(values));
        self.record(&event)
    }

    fn record(&mut self, data: &[u8]) -> Result<()> {
        let framed = frame_record(data);
        self.out.write_all(&framed).map_err(io_error(&self.path))
    }

    fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(io_error(&self.path))
    }
}

fn wall_time() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// What an event carries.
enum EventBody<'a> {
    FileVersion(&'a str),
    Scalars(&'a [(String, f64)]),
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field (wire type 2).
fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_varint(out, u64::from(field << 3 | 2));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// `tensorflow.Event`: wall_time (1, double), step (2, int64), file_version (3,
/// string) or summary (5, `Summary`); `Summary.value` (1) holds `Summary.Value`s of
/// tag (1, string) and simple_value (2, float).
fn encode_event(wall_time: f64, step: u64, body: EventBody<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, 1 << 3 | 1);
    out.extend_from_slice(&wall_time.to_le_bytes());
    put_varint(&mut out, 2 << 3);
    put_varint(&mut out, step);
    match body {
        EventBody::FileVersion(v) => put_bytes(&mut out, 3, v.as_bytes()),
        EventBody::Scalars(values) => {
            let mut summary = Vec::new();
            for (tag, value) in values {
                let mut v = Vec::new();
                put_bytes(&mut v, 1, tag.as_bytes());
                put_varint(&mut v, 2 << 3 | 5);
                v.extend_from_slice(&(*value as f32).to_le_bytes());
                put_bytes(&mut summary, 1, &v);
            }
            put_bytes(&mut out, 5, &summary);
        }
    }
    out
}

/// The TFRecord framing: length (u64 LE), its masked CRC-32C, the data, its masked
/// CRC-32C (both u32 LE).
fn frame_record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) by table.
const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// The CRC-32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC32C_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// TFRecord's masked CRC: rotated right by 15 and offset, so a CRC stored inside
/// checksummed data does not checksum to a fixed value.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let c = crc32c(data);
    (c.rotate_right(15)).wrapping_add(0xA282_EAD8)
}

/// The observers of a fit, with the loop's own warnings.
pub(crate) struct Hooks<'a> {
    observers: &'a mut [Box<dyn TrainingObserver>],
    writer: Option<MetricsWriter>,
    method: String,
    tasks: Vec<String>,
}

impl<'a> Hooks<'a> {
    /// Starts every observer (and the config's metrics writer).
    pub(crate) fn start(
        observers: &'a mut [Box<dyn TrainingObserver>],
        tracking: Option<&TrackingConfig>,
        run: &RunStart<'_>,
    ) -> Result<Self> {
        let mut writer = tracking.cloned().map(MetricsWriter::new).transpose()?;
        if let Some(w) = &mut writer {
            w.start(run)?;
        }
        for o in observers.iter_mut() {
            o.start(run)?;
        }
        Ok(Hooks {
            observers,
            writer,
            method: run.method.to_string(),
            tasks: run.tasks.to_vec(),
        })
    }

    fn all(&mut self) -> impl Iterator<Item = &mut dyn TrainingObserver> {
        let writer = self
            .writer
            .iter_mut()
            .map(|w| w as &mut dyn TrainingObserver);
        writer.chain(
            self.observers
                .iter_mut()
                .map(|o| o.as_mut() as &mut dyn TrainingObserver),
        )
    }

    pub(crate) fn step(&mut self, step: &StepRecord<'_>) -> Result<()> {
        self.all().try_for_each(|o| o.step(step))
    }

    /// After an epoch; after the run's first, the loss-scale check.
    pub(crate) fn epoch(&mut self, record: &EpochRecord, step: u64) -> Result<()> {
        if record.epoch == 0 {
            if let Some(message) =
                loss_scale_warning(&self.method, &self.tasks, &record.train_losses)
            {
                tracing::warn!("{message}");
                self.all().for_each(|o| o.warning(&message));
            }
        }
        self.all().try_for_each(|o| o.epoch(record, step))
    }

    pub(crate) fn finish(mut self) -> Result<()> {
        self.all().try_for_each(|o| o.finish())
    }
}

/// The observers a trainer was given ([`Trainer::observe`](crate::Trainer::observe)).
#[derive(Default)]
pub(crate) struct Observers(pub(crate) Vec<Box<dyn TrainingObserver>>);

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} observers", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // The CRC-32C check value of "123456789" (RFC 3720's polynomial).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn varints_and_fields_are_protobuf() {
        let mut v = Vec::new();
        put_varint(&mut v, 300);
        assert_eq!(v, [0xAC, 0x02]);
        let event = encode_event(1.0, 5, EventBody::FileVersion("x"));
        assert_eq!(event[0], 0x09); // field 1, 64-bit
        assert_eq!(&event[9..11], &[0x10, 5]); // field 2, varint 5
        assert_eq!(&event[11..], &[0x1A, 1, b'x']); // field 3, one byte
    }

    #[test]
    fn csv_fields_with_commas_are_quoted() {
        assert_eq!(
            csv_line(&["a,b".into(), "c\"d".into(), "e".into()]),
            "\"a,b\",\"c\"\"d\",e\n"
        );
    }
}
