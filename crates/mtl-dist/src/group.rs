//! A Gloo process group over a `TCPStore` rendezvous, through the C++ shim.

use crate::config::DistConfig;
use crate::ffi;
use mtl_core::{Collective, Error, Result};
use std::ffi::{c_char, c_void, CStr, CString};
use tch::{Device, Tensor};

/// One rank's membership of a data-parallel group on libtorch's Gloo backend.
///
/// Collectives take tensors of any device and layout: Gloo reduces contiguous CPU
/// tensors, so others are staged through a CPU copy.
pub struct ProcessGroup {
    raw: *mut c_void,
    config: DistConfig,
}

// c10d's process groups and stores are thread-safe (PyTorch calls them from any
// thread); the shim holds only their reference-counted handles.
unsafe impl Send for ProcessGroup {}
unsafe impl Sync for ProcessGroup {}

impl std::fmt::Debug for ProcessGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessGroup")
            .field("rank", &self.config.rank)
            .field("world_size", &self.config.world_size)
            .field(
                "master",
                &format!("{}:{}", self.config.master_addr, self.config.master_port),
            )
            .finish()
    }
}

impl ProcessGroup {
    /// Joins the group: rank 0 hosts the rendezvous store at `master_addr:master_port`,
    /// the others connect to it; returns once all `world_size` ranks have arrived, or
    /// fails after the timeout naming the address.
    pub fn init(config: &DistConfig) -> Result<ProcessGroup> {
        let addr = CString::new(config.master_addr.as_str())
            .map_err(|_| error(config, "MASTER_ADDR contains a NUL byte"))?;
        let mut err: *mut c_char = std::ptr::null_mut();
        let timeout_ms = config.timeout.as_millis().min(i64::MAX as u128) as i64;
        // SAFETY: the shim copies `addr`; `err` is written on failure only.
        let raw = unsafe {
            ffi::mtl_c10d_new(
                addr.as_ptr(),
                i32::from(config.master_port),
                config.rank as i32,
                config.world_size as i32,
                timeout_ms as _,
                &mut err,
            )
        };
        if raw.is_null() {
            let why = take_error(err);
            let role = if config.rank == 0 {
                "host the rendezvous at"
            } else {
                "reach the rendezvous at"
            };
            return Err(error(
                config,
                format!(
                    "could not {role} {}:{} within {:?} (is the port in use, or did a rank \
                     not start?): {why}",
                    config.master_addr, config.master_port, config.timeout
                ),
            ));
        }
        tracing::info!(
            rank = config.rank,
            world_size = config.world_size,
            "joined the data-parallel group"
        );
        Ok(ProcessGroup {
            raw,
            config: config.clone(),
        })
    }

    /// The configuration this rank joined with.
    pub fn config(&self) -> &DistConfig {
        &self.config
    }

    /// In-place maximum over the ranks.
    pub fn all_reduce_max(&self, tensor: &Tensor) -> Result<()> {
        self.reduce(tensor, 1)
    }

    /// Refuses to go on unless every rank holds the same `fingerprint` of `what`
    /// ([`mtl_core::collective::agree`]).
    pub fn agree(&self, what: &str, fingerprint: u64) -> Result<()> {
        mtl_core::collective::agree(self, what, fingerprint)
    }

    fn reduce(&self, tensor: &Tensor, op: i32) -> Result<()> {
        self.staged(tensor, |t| {
            let mut err = std::ptr::null_mut();
            // SAFETY: `t` is a live tensor for the duration of the call.
            let ok = unsafe {
                ffi::mtl_c10d_all_reduce(self.raw, t.as_ptr() as *mut c_void, op, &mut err)
            };
            self.check(ok, err, "all-reduce")
        })
    }

    /// Runs `body` on `tensor` itself when Gloo can take it, or on a contiguous CPU copy
    /// that is then written back.
    fn staged(&self, tensor: &Tensor, body: impl FnOnce(&Tensor) -> Result<()>) -> Result<()> {
        if tensor.device() == Device::Cpu && tensor.is_contiguous() {
            return body(tensor);
        }
        let cpu = tensor.f_to_device(Device::Cpu)?.f_contiguous()?;
        body(&cpu)?;
        tch::no_grad(|| tensor.shallow_clone().f_copy_(&cpu))?;
        Ok(())
    }

    fn check(&self, ok: bool, err: *mut c_char, what: &str) -> Result<()> {
        if ok {
            return Ok(());
        }
        Err(error(
            &self.config,
            format!(
                "{what} failed (another rank died, timed out after {:?}, or called another \
                 collective): {}",
                self.config.timeout,
                take_error(err)
            ),
        ))
    }
}

impl Collective for ProcessGroup {
    fn rank(&self) -> usize {
        self.config.rank
    }

    fn world_size(&self) -> usize {
        self.config.world_size
    }

    fn all_reduce_sum(&self, tensor: &Tensor) -> Result<()> {
        self.reduce(tensor, 0)
    }

    fn all_gather(&self, tensor: &Tensor) -> Result<Vec<Tensor>> {
        let input = tensor.f_to_device(Device::Cpu)?.f_contiguous()?;
        let outputs: Vec<Tensor> = (0..self.config.world_size)
            .map(|_| input.f_empty_like())
            .collect::<std::result::Result<_, _>>()?;
        let mut ptrs: Vec<*mut c_void> =
            outputs.iter().map(|t| t.as_ptr() as *mut c_void).collect();
        let mut err = std::ptr::null_mut();
        // SAFETY: `input` and `outputs` outlive the call; the shim only reads the pointers.
        let ok = unsafe {
            ffi::mtl_c10d_all_gather(
                self.raw,
                ptrs.as_mut_ptr(),
                ptrs.len() as i32,
                input.as_ptr() as *mut c_void,
                &mut err,
            )
        };
        self.check(ok, err, "all-gather")?;
        let device = tensor.device();
        outputs
            .into_iter()
            .map(|t| Ok(t.f_to_device(device)?))
            .collect()
    }

    fn broadcast(&self, tensor: &Tensor, root: usize) -> Result<()> {
        if root >= self.config.world_size {
            return Err(error(
                &self.config,
                format!("broadcast from rank {root}, which is not in the group"),
            ));
        }
        self.staged(tensor, |t| {
            let mut err = std::ptr::null_mut();
            // SAFETY: `t` is a live tensor for the duration of the call.
            let ok = unsafe {
                ffi::mtl_c10d_broadcast(self.raw, t.as_ptr() as *mut c_void, root as i32, &mut err)
            };
            self.check(ok, err, "broadcast")
        })
    }

    fn barrier(&self) -> Result<()> {
        let mut err = std::ptr::null_mut();
        // SAFETY: the group is live.
        let ok = unsafe { ffi::mtl_c10d_barrier(self.raw, &mut err) };
        self.check(ok, err, "barrier")
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: `raw` came from `mtl_c10d_new` and is freed once.
        unsafe { ffi::mtl_c10d_free(self.raw) }
    }
}

fn take_error(err: *mut c_char) -> String {
    if err.is_null() {
        return "no message".into();
    }
    // SAFETY: the shim wrote a NUL-terminated malloc'd string, freed here once.
    let text = unsafe { CStr::from_ptr(err) }
        .to_string_lossy()
        .into_owned();
    unsafe { ffi::mtl_c10d_free_error(err) };
    // c10d messages end with a C++ source location on their own line; keep the first.
    text.lines().next().unwrap_or("").trim().to_string()
}

fn error(config: &DistConfig, message: impl Into<String>) -> Error {
    Error::Distributed {
        rank: config.rank,
        world_size: config.world_size,
        message: message.into(),
    }
}
