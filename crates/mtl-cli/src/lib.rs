//! # mtl-cli
//!
//! The `mtl` command line: `mtl train CONFIG` trains a multi-task model (hard sharing,
//! MMoE, cross-stitch or a conv net) on a CSV file or the arrays of an `.npz` or
//! safetensors file, described by a TOML or JSON [`RunConfig`], and writes the JSON run
//! report, PNG plots and the trained model as a [`Bundle`](mtl::Bundle) (`model/`);
//! `mtl predict RUN_DIR --csv FILE --out preds.csv` predicts new rows with that bundle;
//! `mtl sweep CONFIG --methods a,b --seeds N` trains every method × seed in child
//! processes and ranks the methods by Δm with confidence intervals and paired tests;
//! `mtl group CONFIG` chooses task groups from the TAG affinity and compares them with
//! all-in-one and single-task training; `mtl methods` lists the registered
//! task-combination methods.
//! The library half exists so the run can be driven and tested without a process.

pub mod config;
pub mod group;
pub mod jobs;
pub mod latents;
pub mod predict;
pub mod run;
pub mod subset;
pub mod sweep;
pub mod tensor_input;

pub use config::RunConfig;
pub use predict::{predict, PredictArgs, PredictOutcome};
pub use run::{run, summary, Overrides, RunOutcome};

// The version this crate was built with.
pub use tch;
