//! Device selection, including making sure libtorch's CUDA half is really loaded.
//!
//! Binaries linked with `--as-needed` (the default) drop `libtorch_cuda.so` because no
//! symbol of it is referenced directly, and then `tch::Cuda::is_available()` is false
//! even on a GPU machine. [`load_cuda`] opens the library at run time with
//! `RTLD_GLOBAL`, which registers the CUDA backend with libtorch before first use.

use std::sync::OnceLock;
use tch::Device;

/// Which device a run should use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceRequest {
    /// CUDA device 0 when one is usable, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// The given CUDA device; an error when CUDA is not usable.
    Cuda(usize),
}

/// Loads `libtorch_cuda.so` once per process. Returns whether it is loaded.
///
/// Looks on the binary's rpath first, then in the libtorch the build used.
pub fn load_cuda() -> bool {
    static LOADED: OnceLock<bool> = OnceLock::new();
    *LOADED.get_or_init(|| {
        let mut candidates = vec!["libtorch_cuda.so".to_string()];
        if let Some(root) = option_env!("LIBTORCH") {
            candidates.push(format!("{root}/lib/libtorch_cuda.so"));
        }
        candidates.iter().any(|c| dlopen_global(c))
    })
}

fn dlopen_global(path: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(path) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string; dlopen does not retain it. The handle
    // is leaked on purpose: the library must stay loaded for the life of the process.
    let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    !handle.is_null()
}

/// Whether a CUDA device is usable (loads the CUDA backend first).
pub fn cuda_available() -> bool {
    load_cuda() && tch::Cuda::is_available()
}

/// Resolves a [`DeviceRequest`] to a device.
pub fn select_device(req: DeviceRequest) -> crate::Result<Device> {
    match req {
        DeviceRequest::Cpu => Ok(Device::Cpu),
        DeviceRequest::Auto => Ok(if cuda_available() {
            Device::Cuda(0)
        } else {
            Device::Cpu
        }),
        DeviceRequest::Cuda(i) => {
            if !cuda_available() {
                return Err(crate::Error::config(
                    "CUDA was requested but libtorch_cuda could not be loaded or no GPU is visible \
                     (run `cargo xtask doctor`)",
                ));
            }
            let n = tch::Cuda::device_count() as usize;
            if i >= n {
                return Err(crate::Error::config(format!(
                    "CUDA device {i} requested but only {n} visible"
                )));
            }
            Ok(Device::Cuda(i))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_always_selectable() {
        assert_eq!(select_device(DeviceRequest::Cpu).unwrap(), Device::Cpu);
    }

    #[test]
    fn auto_agrees_with_cuda_availability() {
        let d = select_device(DeviceRequest::Auto).unwrap();
        assert_eq!(d.is_cuda(), cuda_available());
    }

    #[test]
    fn missing_cuda_device_is_a_typed_error() {
        let n = if cuda_available() {
            tch::Cuda::device_count() as usize
        } else {
            0
        };
        assert!(select_device(DeviceRequest::Cuda(n + 3)).is_err());
    }
}
