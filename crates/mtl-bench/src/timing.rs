//! Measuring: per-step wall times and their percentiles (as numpy computes them), the
//! CPU other processes used meanwhile (as the peer harness accounts it), and this
//! process's memory from `/proc/self/status`.

use serde_json::{json, Map, Value};
use std::time::Instant;

/// Percentiles of a sample, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// The median.
    pub median_ms: f64,
    /// The 10th percentile.
    pub p10_ms: f64,
    /// The 90th percentile.
    pub p90_ms: f64,
    /// The mean.
    pub mean_ms: f64,
    /// The minimum.
    pub min_ms: f64,
    /// The maximum.
    pub max_ms: f64,
    /// The number of samples.
    pub n: usize,
}

/// numpy's default (linear) percentile of sorted data, `q` in `[0, 100]`.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

impl Summary {
    /// Summarises per-step times in seconds.
    pub fn of_seconds(times: &[f64]) -> Self {
        let mut ms: Vec<f64> = times.iter().map(|t| t * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let n = ms.len().max(1) as f64;
        Summary {
            median_ms: percentile(&ms, 50.0),
            p10_ms: percentile(&ms, 10.0),
            p90_ms: percentile(&ms, 90.0),
            mean_ms: ms.iter().sum::<f64>() / n,
            min_ms: ms.first().copied().unwrap_or(f64::NAN),
            max_ms: ms.last().copied().unwrap_or(f64::NAN),
            n: ms.len(),
        }
    }

    /// The row keys of the peer harness's schema.
    pub fn to_json(self) -> Map<String, Value> {
        let v = json!({
            "median_ms": self.median_ms,
            "p10_ms": self.p10_ms,
            "p90_ms": self.p90_ms,
            "mean_ms": self.mean_ms,
            "min_ms": self.min_ms,
            "max_ms": self.max_ms,
        });
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }
}

/// A CPU snapshot: (machine busy CPU-seconds, this process's CPU-seconds, wall clock).
#[derive(Debug, Clone, Copy)]
pub struct CpuSnapshot {
    busy_s: f64,
    own_s: f64,
    at: Instant,
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// The number of CPUs the machine has (for the foreign-CPU fraction).
pub fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl CpuSnapshot {
    /// Takes a snapshot now.
    pub fn now() -> Self {
        let tck = clock_ticks();
        let busy_s = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                let vals: Vec<f64> = s
                    .lines()
                    .next()?
                    .split_whitespace()
                    .skip(1)
                    .take(8)
                    .filter_map(|v| v.parse().ok())
                    .collect();
                (vals.len() == 8).then(|| (vals.iter().sum::<f64>() - vals[3] - vals[4]) / tck)
            })
            .unwrap_or(f64::NAN);
        let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage writes a rusage into the pointer it is given.
        let own_s = if unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) } == 0 {
            // SAFETY: initialised by the successful call above.
            let ru = unsafe { ru.assume_init() };
            let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
            tv(ru.ru_utime) + tv(ru.ru_stime)
        } else {
            f64::NAN
        };
        CpuSnapshot {
            busy_s,
            own_s,
            at: Instant::now(),
        }
    }

    /// The fraction of the machine's CPU capacity other processes used since `self`,
    /// and the cores this process used, as the peer harness's `contention()` does.
    pub fn contention_since(&self, end: &CpuSnapshot) -> (f64, f64) {
        let wall = end.at.duration_since(self.at).as_secs_f64();
        if wall <= 0.0 {
            return (f64::NAN, f64::NAN);
        }
        let own = end.own_s - self.own_s;
        let foreign = ((end.busy_s - self.busy_s) - own) / (wall * num_cpus() as f64);
        (foreign.max(0.0), own / wall)
    }
}

/// A field of `/proc/self/status` in MiB (`VmHWM` is the peak resident set, `VmRSS`
/// the current one), when readable.
pub fn proc_status_mib(field: &str) -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The 1-minute load average, when readable.
pub fn load_average() -> Option<[f64; 3]> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    let v: Vec<f64> = s
        .split_whitespace()
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect();
    (v.len() == 3).then(|| [v[0], v[1], v[2]])
}

/// Rounds to 3 decimals (for fractions in the JSON).
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_match_numpy() {
        // numpy.percentile([1, 2, 3, 4], [10, 50, 90]) = [1.3, 2.5, 3.7]
        let s = [1.0, 2.0, 3.0, 4.0];
        assert!((percentile(&s, 10.0) - 1.3).abs() < 1e-12);
        assert!((percentile(&s, 50.0) - 2.5).abs() < 1e-12);
        assert!((percentile(&s, 90.0) - 3.7).abs() < 1e-12);
        let sum = Summary::of_seconds(&[0.004, 0.001, 0.003, 0.002]);
        assert!((sum.median_ms - 2.5).abs() < 1e-9 && sum.max_ms == 4.0);
    }

    #[test]
    fn proc_status_has_a_peak() {
        let hwm = proc_status_mib("VmHWM").unwrap();
        assert!(hwm > 0.0);
        let a = CpuSnapshot::now();
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        let (foreign, own) = a.contention_since(&CpuSnapshot::now());
        assert!(foreign >= 0.0 && own >= 0.0);
    }
}
