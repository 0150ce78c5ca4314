//! Per-task targets of one batch, with the mask of rows that have a label.

use tch::Tensor;

/// The targets of one task for one batch.
///
/// `values` holds one entry per row: `Int64 [B]` class indices for classification,
/// `Float [B]` 0/1 labels for binary tasks, `Float [B, m]` for regression (or any shape
/// a custom head agrees on with its data). Rows whose label is missing have
/// `mask[row] == false`; their `values` entry is arbitrary and must be ignored.
#[derive(Debug)]
pub struct TaskTarget {
    /// The target values.
    pub values: Tensor,
    /// `Bool [B]`: which rows are labelled; `None` when all are.
    pub mask: Option<Tensor>,
}

impl TaskTarget {
    /// A fully labelled target.
    pub fn new(values: Tensor) -> Self {
        TaskTarget { values, mask: None }
    }
    /// A target with missing labels where `mask` is false.
    pub fn masked(values: Tensor, mask: Tensor) -> Self {
        TaskTarget {
            values,
            mask: Some(mask),
        }
    }
    /// The number of labelled rows.
    pub fn labelled(&self) -> i64 {
        match &self.mask {
            None => self.values.size().first().copied().unwrap_or(0),
            Some(m) => m.sum(tch::Kind::Int64).int64_value(&[]),
        }
    }
    /// Moves the target to a device.
    pub fn to_device(&self, device: tch::Device) -> Self {
        TaskTarget {
            values: self.values.to_device(device),
            mask: self.mask.as_ref().map(|m| m.to_device(device)),
        }
    }
}
