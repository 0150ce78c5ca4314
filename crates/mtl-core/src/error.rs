//! The error type shared by the `mtl-*` crates.

use std::path::PathBuf;

/// Everything that can go wrong in `mtl`, with enough context to find the cause:
/// the task, the step, the file and line, the shapes involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error raised inside libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// A tensor or array does not have the shape an operation needs.
    #[error("shape mismatch in {context}: expected {expected}, got {got}")]
    Shape {
        /// Where the mismatch was found (layer, head, method).
        context: String,
        /// What was expected.
        expected: String,
        /// What was given.
        got: String,
    },
    /// The number of tasks does not match (including zero tasks).
    #[error("task count mismatch in {context}: expected {expected}, got {got}")]
    TaskCount {
        /// Where the mismatch was found.
        context: String,
        /// The number of tasks expected (0 means "at least one").
        expected: usize,
        /// The number given.
        got: usize,
    },
    /// A NaN or infinite value where a finite one is required.
    #[error("non-finite value ({value}) in {what}{}{}", task.map(|t| format!(" of task {t}")).unwrap_or_default(), step.map(|s| format!(" at step {s}")).unwrap_or_default())]
    NonFinite {
        /// What held the value (features, loss, Jacobian row...).
        what: String,
        /// The task it belongs to, when it belongs to one.
        task: Option<usize>,
        /// The training step, when known.
        step: Option<u64>,
        /// The offending value, printed.
        value: String,
    },
    /// A class label outside `0..classes`.
    #[error("label {label} out of range 0..{classes} for task {task} at row {row}")]
    LabelOutOfRange {
        /// The task index.
        task: usize,
        /// The row of the dataset or batch.
        row: usize,
        /// The label found.
        label: i64,
        /// The number of classes of the task.
        classes: i64,
    },
    /// Rows of a dataset disagree in count.
    #[error("row count mismatch: {what} has {got} rows but the features have {expected}")]
    RowCount {
        /// Which array disagrees.
        what: String,
        /// The number of feature rows.
        expected: usize,
        /// The number of rows found.
        got: usize,
    },
    /// A file could not be parsed.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The 1-based line (or record) number.
        line: u64,
        /// What was wrong.
        message: String,
    },
    /// A binary file (IDX, NPY, NPZ, safetensors, gzip) breaks its format.
    #[error("{}: at byte {offset}: expected {expected}, found {found}", path.display())]
    Format {
        /// The file (an archive member as `archive/member`).
        path: PathBuf,
        /// The byte offset of the problem (in the decompressed stream for compressed data).
        offset: u64,
        /// What the format requires there.
        expected: String,
        /// What the file holds instead.
        found: String,
    },
    /// An I/O error on a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A configuration or hyper-parameter value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// No method, head or architecture of that name is registered.
    #[error("unknown {kind} `{name}`; known: {known}")]
    Unknown {
        /// What was looked up (method, metric, task...).
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The names that exist, comma-separated.
        known: String,
    },
    /// A checkpoint is corrupt or does not match the model.
    #[error("checkpoint {}: {message}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Another live process (or another run in this one) is writing to the same place.
    #[error("{} is in use by {}: its lock {} is held; wait for that run to finish or write elsewhere", path.display(), pid.map(|p| format!("process {p}")).unwrap_or_else(|| "another run".into()), lock.display())]
    Locked {
        /// The output directory or file.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// The pid the lock names, when it names one.
        pid: Option<u32>,
    },
    /// An array of an input file (an `.npz` archive, a safetensors file) that a run
    /// cannot use as its config says: missing, of another row count, of a dtype its
    /// head cannot take, holding a value out of range, or of the wrong shape.
    #[error("{}: array `{array}`{}: {message}", path.display(), task.as_ref().map(|t| format!(" (task `{t}`)")).unwrap_or_default())]
    Input {
        /// The file.
        path: PathBuf,
        /// The array's name in the file.
        array: String,
        /// The task the array is the target (or mask) of; `None` for the features.
        task: Option<String>,
        /// What is wrong, with the row and element where one is at fault.
        message: String,
    },
    /// A data-parallel run failed: the rendezvous, a collective, another rank (dead,
    /// timed out, or running another configuration), or the launch environment.
    #[error("distributed (rank {rank} of {world_size}): {message}")]
    Distributed {
        /// This process's rank (0 when it is not known yet).
        rank: usize,
        /// The number of ranks (0 when it is not known yet).
        world_size: usize,
        /// What went wrong, naming the variable, rank or collective at fault.
        message: String,
    },
    /// A tokenizer whose vocabulary is not the one a model (a checkpoint, a bundle) was
    /// trained with: the same ids would mean other tokens to its embedding. Both
    /// vocabularies are named by their fingerprint (the SHA-256 of every token with its
    /// id).
    #[error("the tokenizer's vocabulary (fingerprint {found}) is not the one {what} was trained with (fingerprint {expected}): its ids would mean other tokens")]
    VocabularyMismatch {
        /// What recorded the expected vocabulary (a bundle's or checkpoint's path).
        what: String,
        /// The fingerprint the model was trained with.
        expected: String,
        /// The fingerprint of the tokenizer given.
        found: String,
    },
    /// A task's training loss grew by orders of magnitude while staying finite: the run
    /// has diverged (a learning rate far too high, exploding gradients).
    #[error("training diverged: the loss of task {task} (`{name}`) reached {loss:.4e} at step {step}, over {factor:e} times its reference {reference:.4e} (its first loss of the run) for {steps} steps in a row; lower the learning rate or clip gradients (`divergence` in the trainer configuration sets or disables this guard)")]
    Diverged {
        /// The task index.
        task: usize,
        /// The task name.
        name: String,
        /// The training step (0-based) that ended the run.
        step: u64,
        /// The task's loss (absolute value) at that step.
        loss: f64,
        /// The task's reference loss.
        reference: f64,
        /// The allowed growth factor.
        factor: f64,
        /// The consecutive steps over the bound that count as a divergence.
        steps: u64,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::Shape`].
    pub fn shape(
        context: impl Into<String>,
        expected: impl std::fmt::Display,
        got: impl std::fmt::Display,
    ) -> Self {
        Error::Shape {
            context: context.into(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }

    /// Shorthand for [`Error::Config`].
    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }

    /// Fills in the training step of a [`Error::NonFinite`] raised by code that did not
    /// know it (an aggregator called on a bare Jacobian); other errors pass unchanged.
    pub fn at_step(self, step: u64) -> Self {
        match self {
            Error::NonFinite {
                what,
                task,
                step: None,
                value,
            } => Error::NonFinite {
                what,
                task,
                step: Some(step),
                value,
            },
            other => other,
        }
    }
}
