//! Seeding for reproducible runs.
//!
//! libtorch keeps its own global generator (used for weight initialisation and dropout);
//! everything `mtl` draws itself (shuffles, PCGrad's task order, random weights) comes
//! from a [`SeededRng`], whose state can be saved and restored with a checkpoint.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::{Mutex, MutexGuard};

/// Seeds libtorch's generators (CPU and, when loaded, CUDA) and returns a Rust RNG
/// derived from the same seed.
pub fn seed_everything(seed: u64) -> SeededRng {
    tch::manual_seed(seed as i64);
    if crate::device::cuda_available() {
        tch::Cuda::manual_seed_all(seed);
    }
    SeededRng::new(seed)
}

/// Serialises the code that draws from libtorch's process-wide generator.
///
/// [`seed_everything`] seeds one generator that every thread shares: weight
/// initialisation, `randn` and dropout all draw from it. Two threads that seed and draw
/// at once (tests run in parallel, say) interleave their draws, so neither gets the
/// stream its seed promises. Holding this guard from the seed to the last draw keeps a
/// run's draws together; everything in the process that draws should hold it, or it
/// can still take draws from the middle of a guarded run. A panic while the guard is
/// held does not poison the lock for the others.
///
/// ```
/// use mtl_core::{seed_everything, torch_rng_lock};
/// use tch::{kind::FLOAT_CPU, Tensor};
///
/// let draw = || {
///     let _rng = torch_rng_lock();
///     seed_everything(7);
///     Tensor::randn([4], FLOAT_CPU)
/// };
/// let (a, b) = std::thread::scope(|s| {
///     let a = s.spawn(draw);
///     let b = s.spawn(draw);
///     (a.join().unwrap(), b.join().unwrap())
/// });
/// assert!(a.equal(&b));
/// ```
pub fn torch_rng_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A small, fast, portable RNG (ChaCha8) with a stable stream for a given seed.
pub type SeededRng = ChaCha8Rng;

/// Builds a [`SeededRng`] from a seed and a stream label, so components seeded from
/// one run seed draw independent streams (`derive_rng(seed, "pcgrad")`).
pub fn derive_rng(seed: u64, stream: &str) -> SeededRng {
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    for b in stream.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01B3);
    }
    SeededRng::seed_from_u64(h)
}

/// Extension used by [`SeededRng`] users: a `new` that reads like the rest of the API.
pub trait SeedExt {
    /// An RNG seeded from `seed`.
    fn new(seed: u64) -> Self;
}

impl SeedExt for SeededRng {
    fn new(seed: u64) -> Self {
        SeededRng::seed_from_u64(seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn same_seed_same_stream() {
        let a: Vec<u32> = (0..5)
            .map(|_| 0)
            .scan(derive_rng(7, "x"), |r, _: u32| Some(r.gen()))
            .collect();
        let b: Vec<u32> = (0..5)
            .map(|_| 0)
            .scan(derive_rng(7, "x"), |r, _: u32| Some(r.gen()))
            .collect();
        let c: Vec<u32> = (0..5)
            .map(|_| 0)
            .scan(derive_rng(7, "y"), |r, _: u32| Some(r.gen()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn torch_seed_reproduces_draws() {
        let _rng = torch_rng_lock();
        seed_everything(3);
        let a = tch::Tensor::randn([4], (tch::Kind::Float, tch::Device::Cpu));
        seed_everything(3);
        let b = tch::Tensor::randn([4], (tch::Kind::Float, tch::Device::Cpu));
        assert!(a.equal(&b));
    }
}
