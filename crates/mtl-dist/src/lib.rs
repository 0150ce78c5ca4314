//! Data-parallel collectives for `mtl` on libtorch's own distributed engine, c10d: a
//! `TCPStore` rendezvous and a Gloo process group, reached through a small C++ shim
//! (`tch` binds none of c10d). [`ProcessGroup`] implements
//! [`mtl_core::Collective`], which the engine and the trainer reduce through.
//!
//! It is not a launcher and not a trainer: ranks are started by `torchrun --no-python`,
//! Slurm, a Kubernetes PyTorchJob or `mtl train --nproc N`, and read the usual
//! variables ([`DistConfig::from_env`]); what is reduced, and when, is the engine's
//! business (`mtl_losses::engine::Backward::collective`).
//!
//! Gloo runs on CPU tensors. NCCL (CUDA tensors) lives in `libtorch_cuda.so` and is not
//! bound yet: CUDA tensors are staged through the CPU.

mod config;
mod ffi;
mod group;
pub mod launch;

pub use config::DistConfig;
pub use group::ProcessGroup;
