//! The benchmark crate of the `mtl` workspace: the `mtl-bench` runner behind
//! `cargo xtask bench`, and the criterion micro-benchmarks in `benches/` (`cargo bench
//! -p mtl-bench`). It is for measuring `mtl`: training-step speed and peak memory of
//! every registered method on the LibMTL peer harness's workloads, each next to its
//! plain-`tch` floor, plus the aggregators alone on large Jacobians (W4). It is not a
//! library for users of `mtl` (nothing here is needed to train a model, and it is not
//! published), and its Rust API is only what the binary and the benches share; its
//! stable interface is the command line (`mtl-bench --help`) and the JSON it writes.
//!
//! * [`spec`]: the workloads (W1 `mlp`, W2 `lenet`, W3 `mmoe`, `mlp_k10` for the
//!   rep-grad comparison, and W5 `dense` and W6 `text`, run when named), their fixed
//!   data and the LibMTL method names.
//! * [`floor`]: the same networks as plain `tch` loops, the floor every ratio divides by.
//! * [`job`]: one measurement (a method, a floor, or W4 at one K), in its own process.
//! * [`timing`]: percentiles, CPU contention and `/proc/self/status` memory.
//! * [`scaling`]: data-parallel scaling on loopback (`mtl-bench scaling --nproc N`).
//! * [`twin`]: W5's and W6's plain-PyTorch twins (`torch/dense_twin.py`,
//!   `torch/text_twin.py`), run beside the rows.
//! * [`tokenize`]: W6's tokenization throughput (sentences/s, one thread vs rayon).
//! * [`cli`] and [`report`]: the command line, the JSON and the tables.
//!
//! The JSON rows follow `shared/peer_bench/README.md` (schema 1), so the runner also serves
//! as the harness's `--peer-cmd`.

pub mod cli;
pub mod floor;
pub mod job;
pub mod report;
pub mod scaling;
pub mod spec;
pub mod timing;
pub mod tokenize;
pub mod twin;
