//! Running totals that [`Metrics`](crate::Metrics) accumulators are built from. Public
//! through [`crate::kit`].
//!
//! Each keeps sums and counts (or every value) rather than per-batch means, so what it
//! computes does not depend on how the evaluation set was batched, and each reads a
//! whole batch before changing anything, so a batch that fails leaves it as it was.

use crate::rows::describe;
use mtl_core::{Error, Result};
use tch::{Device, Kind, Tensor};

/// Every value of `t`, detached, flattened and read back to the CPU as `T` (which must
/// be `t`'s element type).
///
/// ```
/// use tch::Tensor;
///
/// let t = Tensor::from_slice(&[1i64, 2, 3, 4]).view([2, 2]);
/// assert_eq!(mtl_heads::kit::to_vec::<i64>(&t)?, [1, 2, 3, 4]);
/// # Ok::<(), mtl_heads::Error>(())
/// ```
pub fn to_vec<T: tch::kind::Element + Copy>(t: &Tensor) -> Result<Vec<T>> {
    let flat = t.f_detach()?.f_flatten(0, -1)?.f_to_device(Device::Cpu)?;
    Ok(Vec::<T>::try_from(&flat)?)
}

/// The running mean of every element of every tensor added: a sum in `f64` and a count.
///
/// ```
/// use mtl_heads::kit::Mean;
/// use tch::Tensor;
///
/// let mut m = Mean::new();
/// assert_eq!(m.value(), None);
/// m.add(&Tensor::from_slice(&[1.0f32, 2.0]))?;
/// m.add(&Tensor::from_slice(&[6.0f32]))?;
/// assert_eq!((m.value(), m.count()), (Some(3.0), 3));
/// # Ok::<(), mtl_heads::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Mean {
    sum: f64,
    count: u64,
}

impl Mean {
    /// An empty mean.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every element of `values` (any numeric or boolean kind, any shape).
    pub fn add(&mut self, values: &Tensor) -> Result<()> {
        let sum = values
            .f_detach()?
            .f_sum(Kind::Double)?
            .f_to_device(Device::Cpu)?
            .f_double_value(&[])?;
        self.sum += sum;
        self.count += values.numel() as u64;
        Ok(())
    }

    /// The mean so far; `None` before any element, rather than NaN.
    pub fn value(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// The number of elements added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Forgets everything added.
    pub fn reset(&mut self) {
        *self = Mean::default();
    }
}

/// The running mean of each column of `[n, columns]` tensors: per column, the sum over
/// every row added, divided by the number of rows. With booleans (a row covered, a
/// prediction right) each mean is a fraction.
///
/// ```
/// use mtl_heads::kit::ColumnMeans;
/// use tch::Tensor;
///
/// let mut m = ColumnMeans::new(2);
/// m.add(&Tensor::from_slice(&[true, false, true, true]).view([2, 2]))?;
/// m.add(&Tensor::from_slice(&[false, true]).view([1, 2]))?;
/// assert_eq!(m.values(), Some(vec![2.0 / 3.0, 2.0 / 3.0]));
/// assert!(m.add(&Tensor::from_slice(&[1.0f32, 2.0, 3.0]).view([1, 3])).is_err());
/// # Ok::<(), mtl_heads::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnMeans {
    sums: Vec<f64>,
    rows: u64,
}

impl ColumnMeans {
    /// Empty means of `columns` columns.
    pub fn new(columns: usize) -> Self {
        ColumnMeans {
            sums: vec![0.0; columns],
            rows: 0,
        }
    }

    /// Adds the rows of `values` `[n, columns]` (any numeric or boolean kind); any other
    /// shape is [`Error::Shape`] and adds nothing.
    pub fn add(&mut self, values: &Tensor) -> Result<()> {
        let size = values.size();
        if size.len() != 2 || size[1] != self.sums.len() as i64 {
            return Err(Error::shape(
                "column means",
                format!("[rows, {}]", self.sums.len()),
                describe(values),
            ));
        }
        let sums = values
            .f_detach()?
            .f_to_kind(Kind::Double)?
            .f_sum_dim_intlist(0, false, Kind::Double)?;
        let sums = to_vec::<f64>(&sums)?;
        for (total, s) in self.sums.iter_mut().zip(sums) {
            *total += s;
        }
        self.rows += size[0] as u64;
        Ok(())
    }

    /// The mean of each column so far; `None` before any row.
    pub fn values(&self) -> Option<Vec<f64>> {
        let n = self.rows as f64;
        (self.rows > 0).then(|| self.sums.iter().map(|s| s / n).collect())
    }

    /// The number of rows added.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Forgets every row added.
    pub fn reset(&mut self) {
        self.sums.iter_mut().for_each(|s| *s = 0.0);
        self.rows = 0;
    }
}

/// The prediction and the truth of every labelled row (or entry) seen, in order: what a
/// metric that needs them all (ROC-AUC, a median, macro-F1) keeps until it computes.
///
/// ```
/// use mtl_heads::kit::Collected;
/// use tch::Tensor;
///
/// let mut seen = Collected::<i64, i64>::new();
/// seen.push(&Tensor::from_slice(&[0i64, 2]), &Tensor::from_slice(&[0i64, 1]))?;
/// assert_eq!((seen.pred(), seen.truth()), (&[0, 2][..], &[0, 1][..]));
/// # Ok::<(), mtl_heads::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Collected<P, T> {
    pred: Vec<P>,
    truth: Vec<T>,
}

impl<P, T> Default for Collected<P, T> {
    fn default() -> Self {
        Collected {
            pred: Vec::new(),
            truth: Vec::new(),
        }
    }
}

impl<P: tch::kind::Element + Copy, T: tch::kind::Element + Copy> Collected<P, T> {
    /// Nothing seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps one batch's predictions and truths (tensors of element types `P` and `T`,
    /// read with [`to_vec`]), both read before either is kept so that a failed read
    /// keeps nothing.
    pub fn push(&mut self, pred: &Tensor, truth: &Tensor) -> Result<()> {
        let pred = to_vec::<P>(pred)?;
        let truth = to_vec::<T>(truth)?;
        self.pred.extend(pred);
        self.truth.extend(truth);
        Ok(())
    }
}

impl<P, T> Collected<P, T> {
    /// The predictions seen, in order.
    pub fn pred(&self) -> &[P] {
        &self.pred
    }

    /// The truths seen, in order.
    pub fn truth(&self) -> &[T] {
        &self.truth
    }

    /// The number of truths seen.
    pub fn len(&self) -> usize {
        self.truth.len()
    }

    /// Whether nothing has been seen.
    pub fn is_empty(&self) -> bool {
        self.truth.is_empty()
    }

    /// Forgets everything seen.
    pub fn clear(&mut self) {
        self.pred.clear();
        self.truth.clear();
    }
}
