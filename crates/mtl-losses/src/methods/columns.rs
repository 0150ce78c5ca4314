//! Column kernels: per-coordinate work over the K rows of a Jacobian held in host
//! memory, for the aggregators that are not a combination wᵀJ (the trimmed mean,
//! GradDrop).
//!
//! Written with libtorch ops, those methods materialise K×d temporaries (a sort's
//! values and int64 indices, masks, products) and pass over J several times: at
//! K = 40, d = 10⁶ they took 30–170 times as long as reading J once. Here each column is
//! finished while its K values are in cache: the columns are cut into blocks of
//! [`BLOCK`], a block's K rows are read from memory once, and every pass a method needs
//! runs on that cached block. The blocks are shared out to as many threads as libtorch's
//! intra-op pool has, so the kernels scale as the libtorch ops they replace did.
//!
//! The loops run across a block's columns with no branches (selects, and row indices
//! and masks held in J's dtype), so they vectorise; on x86-64 CPUs with AVX2 they are
//! compiled a second time for it and picked at run time, as libtorch picks its own
//! kernels (the AVX2 build computes the same values: Rust never fuses a multiply-add).
//!
//! A kernel computes in J's dtype, as the libtorch ops did, and also proves J finite (a
//! NaN or Inf anywhere is reported to the caller, which then names the row), so the
//! methods need no separate finiteness pass. Tensors that are not contiguous f32/f64 on
//! the CPU take each method's libtorch path instead ([`host_rows`] returns `None`).

use mtl_core::Result;
use std::ops::{Add, Div, Mul, Neg, Sub};
use tch::{Device, Kind, Tensor};

/// Columns per block: 64 f32 values are four cache lines per row, so a block of K = 40
/// rows (10 KiB) stays in L1 across a method's passes. (Wider blocks measured slower:
/// their accumulators no longer fit in registers and L1 together.)
pub(super) const BLOCK: usize = 64;

/// Below this many entries the kernels run on the calling thread: spawning costs more
/// than it saves.
const PARALLEL_MIN: usize = 1 << 17;

/// The element types the kernels handle: f32 and f64, with the arithmetic they need.
pub(super) trait Real:
    Copy
    + Send
    + Sync
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + 'static
{
    /// The libtorch dtype.
    const KIND: Kind;
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// +∞.
    const INFINITY: Self;
    /// `v` rounded to this type (as libtorch's `to_kind` rounds).
    fn from_f64(v: f64) -> Self;
    /// |self|.
    fn abs(self) -> Self;
    /// Neither NaN nor ±∞.
    fn is_finite(self) -> bool;
    /// A small non-negative integer held in this type, as an index.
    fn to_index(self) -> usize;
}

macro_rules! real {
    ($t:ty, $kind:expr) => {
        impl Real for $t {
            const KIND: Kind = $kind;
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const INFINITY: Self = <$t>::INFINITY;
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            fn to_index(self) -> usize {
                self as usize
            }
        }
    };
}
real!(f32, Kind::Float);
real!(f64, Kind::Double);

/// The entries of `t` as a slice when it is a contiguous, dense CPU tensor of `T`'s
/// dtype; `None` otherwise (the caller then takes its libtorch path).
pub(super) fn host_rows<T: Real>(t: &Tensor) -> Option<&[T]> {
    if t.device() != Device::Cpu
        || t.kind() != T::KIND
        || t.is_sparse()
        || t.is_mkldnn()
        || !t.is_contiguous()
    {
        return None;
    }
    let n = t.numel();
    if n == 0 {
        return Some(&[]);
    }
    let ptr = t.data_ptr() as *const T;
    if !(ptr as usize).is_multiple_of(std::mem::align_of::<T>()) {
        return None;
    }
    // SAFETY: `t` is a dense, contiguous CPU tensor of `n` initialised elements of
    // dtype `T` (every bit pattern is a valid f32/f64), aligned (checked above); its
    // storage stays alive while `t` is borrowed, and the kernels only read it.
    Some(unsafe { std::slice::from_raw_parts(ptr, n) })
}

/// Per-block work of a column kernel.
pub(super) trait ColumnKernel<T: Real>: Sync {
    /// Per-thread working memory.
    type Scratch;
    /// A fresh scratch, once per thread.
    fn scratch(&self) -> Self::Scratch;
    /// Fills `out`, the outputs of columns `c0 .. c0 + out.len()` (at most [`BLOCK`]
    /// of them); `false` when the block has a non-finite entry.
    fn block(&self, scratch: &mut Self::Scratch, c0: usize, out: &mut [T]) -> bool;
}

/// The blocks of one thread's columns, starting at column `c0`. Inlined into both
/// builds of [`run_chunk`].
#[inline(always)]
fn run_blocks<T: Real, K: ColumnKernel<T>>(kernel: &K, c0: usize, chunk: &mut [T]) -> bool {
    let mut scratch = kernel.scratch();
    // `&` rather than `&&`: every block is visited even after a bad one, which is
    // simpler than stopping the other threads; the result is discarded then anyway.
    chunk
        .chunks_mut(BLOCK)
        .enumerate()
        .fold(true, |ok, (b, o)| {
            ok & kernel.block(&mut scratch, c0 + b * BLOCK, o)
        })
}

/// [`run_blocks`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn run_blocks_avx2<T: Real, K: ColumnKernel<T>>(
    kernel: &K,
    c0: usize,
    chunk: &mut [T],
) -> bool {
    run_blocks(kernel, c0, chunk)
}

/// [`run_blocks`] in the best build this CPU runs.
fn run_chunk<T: Real, K: ColumnKernel<T>>(kernel: &K, c0: usize, chunk: &mut [T]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, the only feature `run_blocks_avx2` is built with.
        return unsafe { run_blocks_avx2(kernel, c0, chunk) };
    }
    run_blocks(kernel, c0, chunk)
}

/// Runs `kernel` over the column blocks of a `[K, d]` row-major Jacobian, in parallel
/// over libtorch's intra-op thread count, and returns the d outputs as a CPU tensor of
/// `T`; `None` when a block reported a non-finite entry.
pub(super) fn map_column_blocks<T: Real, K: ColumnKernel<T>>(
    k: usize,
    d: usize,
    kernel: &K,
) -> Result<Option<Tensor>> {
    let result = Tensor::f_empty([d as i64], (T::KIND, Device::Cpu))?;
    let out: &mut [T] = if d == 0 {
        &mut []
    } else {
        // SAFETY: `result` is a fresh contiguous CPU tensor of `d` elements of dtype `T`
        // (64-byte aligned by libtorch's allocator), owned here and not aliased; every
        // bit pattern is a valid f32/f64, so its uninitialised contents are too.
        unsafe { std::slice::from_raw_parts_mut(result.data_ptr() as *mut T, d) }
    };
    let threads = if k * d < PARALLEL_MIN {
        1
    } else {
        (tch::get_num_threads().max(1) as usize).min(d.div_ceil(BLOCK))
    };
    let finite = if threads <= 1 {
        run_chunk(kernel, 0, out)
    } else {
        // Whole blocks per thread, so no block straddles two threads.
        let per = d.div_ceil(BLOCK).div_ceil(threads) * BLOCK;
        std::thread::scope(|s| {
            let mut chunks = out.chunks_mut(per).enumerate();
            let first = chunks.next().map(|(_, c)| c);
            let handles: Vec<_> = chunks
                .map(|(i, chunk)| s.spawn(move || run_chunk(kernel, i * per, chunk)))
                .collect();
            let here = first.is_none_or(|c| run_chunk(kernel, 0, c));
            handles.into_iter().fold(here, |ok, h| {
                ok & h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
            })
        })
    };
    Ok(finite.then_some(result))
}

/// The coordinate-wise trimmed mean of `j` (`[k, d]`, row-major): per column, the mean
/// of the K values left after dropping the `trim` largest and the `trim` smallest.
/// `None` when `j` has a non-finite entry. Needs k ≥ 2·trim + 1.
///
/// Only the kept values are summed, so outliers never enter the sum (a sum of every
/// value minus the extremes would cancel catastrophically on them); the kept values are
/// those a sort keeps, so the result differs from the sort's mean only by the order of
/// the additions.
pub(super) fn trimmed_mean<T: Real>(
    j: &[T],
    k: usize,
    d: usize,
    trim: usize,
) -> Result<Option<Tensor>> {
    debug_assert!(k > 2 * trim && j.len() == k * d);
    let rows = Rows { j, d };
    if trim == 1 {
        map_column_blocks(k, d, &TrimOne { rows, k })
    } else {
        map_column_blocks(k, d, &TrimRounds { rows, k, trim })
    }
}

/// A `[k, d]` row-major matrix, read a block of columns at a time.
#[derive(Clone, Copy)]
struct Rows<'a, T> {
    j: &'a [T],
    d: usize,
}

impl<'a, T> Rows<'a, T> {
    /// Row `r` of the block of `w` columns from `c0`.
    #[inline(always)]
    fn row(&self, r: usize, c0: usize, w: usize) -> &'a [T] {
        &self.j[r * self.d + c0..r * self.d + c0 + w]
    }
}

/// The trimmed mean with t = 1, the default. A first pass finds each column's largest
/// value h and smallest l; a second sums the values strictly between them and counts
/// them. When that count is K − 2 in every column of the block (h and l occur once, and
/// are finite), the sum is the kept sum. Otherwise (ties at an extreme, all values equal,
/// or a NaN or Inf) a third pass counts the copies n_h of h and n_l of l and checks the
/// entries, and dropping one copy of each keeps Σ_{l<v<h} v + (n_h − 1)·h + (n_l − 1)·l
/// (h = l: all K values are equal, and so is their mean).
struct TrimOne<'a, T> {
    rows: Rows<'a, T>,
    k: usize,
}

impl<T: Real> ColumnKernel<T> for TrimOne<'_, T> {
    type Scratch = ();

    fn scratch(&self) {}

    #[inline(always)]
    fn block(&self, _: &mut (), c0: usize, out: &mut [T]) -> bool {
        let (k, w) = (self.k, out.len());
        let mut high = [-T::INFINITY; BLOCK];
        let mut low = [T::INFINITY; BLOCK];
        for r in 0..k {
            let lanes = high
                .iter_mut()
                .zip(low.iter_mut())
                .zip(self.rows.row(r, c0, w));
            for ((h, l), &v) in lanes {
                *h = if v > *h { v } else { *h };
                *l = if v < *l { v } else { *l };
            }
        }
        let mut middle = [T::ZERO; BLOCK];
        let mut n_middle = [T::ZERO; BLOCK];
        for r in 0..k {
            let lanes = middle
                .iter_mut()
                .zip(n_middle.iter_mut())
                .zip(self.rows.row(r, c0, w))
                .zip(high.iter().zip(&low));
            for (((m, n), &v), (&h, &l)) in lanes {
                let inside = (v > l) & (v < h);
                *m = *m + if inside { v } else { T::ZERO };
                *n = *n + if inside { T::ONE } else { T::ZERO };
            }
        }
        let kept = T::from_f64((k - 2) as f64);
        let simple = n_middle[..w]
            .iter()
            .zip(&high)
            .zip(&low)
            .all(|((&n, h), l)| n == kept && h.is_finite() && l.is_finite());
        if simple {
            for (o, m) in out.iter_mut().zip(middle) {
                *o = m / kept;
            }
            return true;
        }
        let mut n_high = [T::ZERO; BLOCK];
        let mut n_low = [T::ZERO; BLOCK];
        // v · 0 is ±0 for a finite v and NaN otherwise: it proves the block finite.
        let mut check = [T::ZERO; BLOCK];
        for r in 0..k {
            let lanes = n_high
                .iter_mut()
                .zip(n_low.iter_mut())
                .zip(check.iter_mut())
                .zip(self.rows.row(r, c0, w))
                .zip(high.iter().zip(&low));
            for ((((nh, nl), z), &v), (&h, &l)) in lanes {
                *nh = *nh + if v == h { T::ONE } else { T::ZERO };
                *nl = *nl + if v == l { T::ONE } else { T::ZERO };
                *z = *z + v * T::ZERO;
            }
        }
        let columns = out.iter_mut().zip(middle).zip(n_high.iter().zip(&n_low));
        for (((o, m), (&nh, &nl)), (&h, &l)) in columns.zip(high.iter().zip(&low)) {
            *o = if h == l {
                h
            } else {
                (m + (nh - T::ONE) * h + (nl - T::ONE) * l) / kept
            };
        }
        check[..w].iter().all(|z| *z == T::ZERO)
    }
}

/// The trimmed mean for any t, in 2t + 1 passes per block: t rounds drop each column's
/// largest value not yet dropped (the first such row on ties), t rounds its smallest,
/// and the kept values are summed in row order. Dropping one row per round leaves
/// exactly the multiset a sort keeps (ties are equal values).
struct TrimRounds<'a, T> {
    rows: Rows<'a, T>,
    k: usize,
    trim: usize,
}

impl<T: Real> ColumnKernel<T> for TrimRounds<'_, T> {
    /// −∞ at `r * BLOCK + c` once row r of the block's column c is dropped, else 0: an
    /// addend that keeps a dropped value out of every later round.
    type Scratch = Vec<T>;

    fn scratch(&self) -> Vec<T> {
        vec![T::ZERO; self.k * BLOCK]
    }

    #[inline(always)]
    fn block(&self, dropped: &mut Vec<T>, c0: usize, out: &mut [T]) -> bool {
        let (k, w) = (self.k, out.len());
        dropped.fill(T::ZERO);
        for round in 0..2 * self.trim {
            // The first t rounds take the largest values, the rest the smallest; the
            // smallest are the largest of the negated values.
            let sign = if round < self.trim { T::ONE } else { -T::ONE };
            let mut best = [-T::INFINITY; BLOCK];
            let mut arg = [T::ZERO; BLOCK];
            for r in 0..k {
                let index = T::from_f64(r as f64);
                let flags = &dropped[r * BLOCK..r * BLOCK + w];
                let lanes = best
                    .iter_mut()
                    .zip(arg.iter_mut())
                    .zip(self.rows.row(r, c0, w))
                    .zip(flags);
                for (((b, a), &v), &f) in lanes {
                    let x = sign * v + f;
                    let take = x > *b;
                    *b = if take { x } else { *b };
                    *a = if take { index } else { *a };
                }
            }
            for (c, a) in arg[..w].iter().enumerate() {
                dropped[a.to_index() * BLOCK + c] = -T::INFINITY;
            }
        }
        let mut sum = [T::ZERO; BLOCK];
        let mut check = [T::ZERO; BLOCK];
        for r in 0..k {
            let flags = &dropped[r * BLOCK..r * BLOCK + w];
            let lanes = sum
                .iter_mut()
                .zip(check.iter_mut())
                .zip(self.rows.row(r, c0, w))
                .zip(flags);
            for (((s, z), &v), &f) in lanes {
                *s = if f == T::ZERO { *s + v } else { *s };
                *z = *z + v * T::ZERO;
            }
        }
        let kept = T::from_f64((k - 2 * self.trim) as f64);
        for (o, s) in out.iter_mut().zip(sum) {
            *o = s / kept;
        }
        check[..w].iter().all(|z| *z == T::ZERO)
    }
}

/// GradDrop's combination of `j` (`[k, d]`, row-major) for the draws `u` (d of them,
/// in J's dtype) and the per-task leaks (`None`: no leak), following
/// [`super::GradDrop`]'s update rule per column: P = ½(1 + Σₖgₖ / Σₖ|gₖ|), s =
/// sign(P − U) (0 where P is NaN, an all-zero column), keep gₖ where it has the sign s,
/// and mix ℓₖ·gₖ + (1 − ℓₖ)·kept. `None` when Σₖ|gₖ| is not finite for some column
/// (a NaN or Inf in J, or an overflow: the caller tells them apart).
pub(super) fn graddrop<T: Real>(
    j: &[T],
    k: usize,
    d: usize,
    u: &[T],
    leak: Option<&[T]>,
) -> Result<Option<Tensor>> {
    debug_assert!(j.len() == k * d && u.len() == d);
    let rows = Rows { j, d };
    map_column_blocks(k, d, &GradDropKernel { rows, k, u, leak })
}

struct GradDropKernel<'a, T> {
    rows: Rows<'a, T>,
    k: usize,
    u: &'a [T],
    leak: Option<&'a [T]>,
}

impl<T: Real> ColumnKernel<T> for GradDropKernel<'_, T> {
    type Scratch = ();

    fn scratch(&self) {}

    #[inline(always)]
    fn block(&self, _: &mut (), c0: usize, out: &mut [T]) -> bool {
        let w = out.len();
        let mut total = [T::ZERO; BLOCK];
        let mut abs_total = [T::ZERO; BLOCK];
        for r in 0..self.k {
            let lanes = total.iter_mut().zip(abs_total.iter_mut());
            for ((t, a), &v) in lanes.zip(self.rows.row(r, c0, w)) {
                *t = *t + v;
                *a = *a + v.abs();
            }
        }
        if !abs_total[..w].iter().all(|a| a.is_finite()) {
            return false;
        }
        // s = sign(P − U) as ±1 or 0, P computed as the libtorch path does:
        // (total / |total| + 1) · ½. The kept part of g is then g clamped to [lo, hi] =
        // [0, ∞] (s = 1: g where positive), [−∞, 0] (s = −1) or [0, 0] (s = 0: where
        // P = U, or P is NaN for an all-zero column): the libtorch path's s·relu(s·g),
        // exactly, in two vectorised min/max.
        let half = T::from_f64(0.5);
        let mut lo = [T::ZERO; BLOCK];
        let mut hi = [T::ZERO; BLOCK];
        let draws = &self.u[c0..c0 + w];
        let lanes = lo.iter_mut().zip(hi.iter_mut()).zip(&total).zip(&abs_total);
        for ((((lo, hi), &t), &a), &u) in lanes.zip(draws) {
            let x = (t / a + T::ONE) * half - u;
            *lo = if x < T::ZERO { -T::INFINITY } else { T::ZERO };
            *hi = if x > T::ZERO { T::INFINITY } else { T::ZERO };
        }
        let mut sum = [T::ZERO; BLOCK];
        for r in 0..self.k {
            let lanes = sum
                .iter_mut()
                .zip(lo.iter().zip(&hi))
                .zip(self.rows.row(r, c0, w));
            match self.leak {
                None => {
                    for ((o, (&lo, &hi)), &v) in lanes {
                        *o = *o + clamp(v, lo, hi);
                    }
                }
                Some(l) => {
                    let (l, rest) = (l[r], T::ONE - l[r]);
                    for ((o, (&lo, &hi)), &v) in lanes {
                        *o = *o + (l * v + rest * clamp(v, lo, hi));
                    }
                }
            }
        }
        out.copy_from_slice(&sum[..w]);
        true
    }
}

/// v clamped to [lo, hi] (a finite v), as a max then a min.
#[inline(always)]
fn clamp<T: Real>(v: T, lo: T, hi: T) -> T {
    let x = if v > lo { v } else { lo };
    if x < hi {
        x
    } else {
        hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_rows_only_for_dense_contiguous_cpu_tensors_of_the_type() {
        let t = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([2, 2]);
        assert_eq!(
            host_rows::<f32>(&t),
            Some([1.0f32, 2.0, 3.0, 4.0].as_slice())
        );
        assert!(host_rows::<f64>(&t).is_none());
        assert!(host_rows::<f32>(&t.tr()).is_none());
        assert_eq!(
            host_rows::<f32>(&t.tr().contiguous()),
            Some([1.0f32, 3.0, 2.0, 4.0].as_slice())
        );
    }

    /// Writes each column's index; reports the block at `.0` as non-finite.
    struct Index(Option<usize>);

    impl ColumnKernel<f64> for Index {
        type Scratch = ();
        fn scratch(&self) {}
        fn block(&self, _: &mut (), c0: usize, out: &mut [f64]) -> bool {
            for (c, v) in out.iter_mut().enumerate() {
                *v = (c0 + c) as f64;
            }
            self.0 != Some(c0)
        }
    }

    #[test]
    fn blocks_cover_every_column_across_threads() {
        // Enough entries to run in parallel, a width that is not a multiple of BLOCK.
        let (k, d) = (3, PARALLEL_MIN / 2 + 37);
        let out = map_column_blocks(k, d, &Index(None)).unwrap().unwrap();
        let v = Vec::<f64>::try_from(out).unwrap();
        assert!(v.iter().enumerate().all(|(i, x)| *x == i as f64));
        let bad = map_column_blocks(k, d, &Index(Some(BLOCK)));
        assert!(bad.unwrap().is_none());
    }
}
