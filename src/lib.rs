//! Shared support for the examples and benchmarks of the `mtl` workspace.

pub mod bench;
