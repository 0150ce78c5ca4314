//! The `mtl-bench` runner (`cargo xtask bench`): training-step speed and peak memory of
//! every registered method on the LibMTL peer harness's workloads, each next to its
//! plain-`tch` floor, plus the aggregators alone on large Jacobians (W4).
//!
//! * [`spec`]: the workloads (W1 `mlp`, W2 `lenet`, W3 `mmoe`, and `mlp_k10` for the
//!   rep-grad comparison), their fixed data and the LibMTL method names.
//! * [`floor`]: the same networks as plain `tch` loops, the floor every ratio divides by.
//! * [`job`]: one measurement (a method, a floor, or W4 at one K), in its own process.
//! * [`timing`]: percentiles, CPU contention and `/proc/self/status` memory.
//! * [`cli`] and [`report`]: the command line, the JSON and the tables.
//!
//! The JSON rows follow `shared/peer_bench/README.md` (schema 1), so the runner also serves
//! as the harness's `--peer-cmd`.

pub mod cli;
pub mod floor;
pub mod job;
pub mod report;
pub mod spec;
pub mod timing;
