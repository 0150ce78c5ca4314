//! The targets of one task over a whole dataset, with the mask of labelled rows.

use ndarray::{Array1, Array2, Axis};

/// The target values of one task, one entry (or row) per dataset row.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetData {
    /// Class indices in `0..classes`.
    Classes {
        /// One class index per row.
        labels: Array1<i64>,
        /// The number of classes.
        classes: usize,
    },
    /// Binary labels, `0.0` or `1.0`.
    Binary(Array1<f32>),
    /// Real-valued targets, `[n, m]`.
    Regression(Array2<f32>),
}

impl TargetData {
    /// The number of rows.
    pub fn len(&self) -> usize {
        match self {
            TargetData::Classes { labels, .. } => labels.len(),
            TargetData::Binary(v) => v.len(),
            TargetData::Regression(v) => v.nrows(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The width a head needs for this target: the class count, 1 for binary, `m` for
    /// regression.
    pub fn output_dim(&self) -> usize {
        match self {
            TargetData::Classes { classes, .. } => *classes,
            TargetData::Binary(_) => 1,
            TargetData::Regression(v) => v.ncols(),
        }
    }

    /// A short name of the kind: `"classes"`, `"binary"` or `"regression"`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            TargetData::Classes { .. } => "classes",
            TargetData::Binary(_) => "binary",
            TargetData::Regression(_) => "regression",
        }
    }

    /// The targets of the given rows, in that order. Rows must be in range.
    pub(crate) fn select(&self, rows: &[usize]) -> TargetData {
        match self {
            TargetData::Classes { labels, classes } => TargetData::Classes {
                labels: labels.select(Axis(0), rows),
                classes: *classes,
            },
            TargetData::Binary(v) => TargetData::Binary(v.select(Axis(0), rows)),
            TargetData::Regression(v) => TargetData::Regression(v.select(Axis(0), rows)),
        }
    }
}

/// One task of a dataset: its name, its targets and which rows are labelled.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskData {
    /// The task's name (unique within a dataset).
    pub name: String,
    /// The targets.
    pub data: TargetData,
    /// `true` where the row is labelled; `None` when every row is.
    pub mask: Option<Array1<bool>>,
}

impl TaskData {
    /// A classification task with `labels` in `0..classes`.
    ///
    /// ```
    /// use mtl_data::TaskData;
    /// let t = TaskData::classes("digit", ndarray::array![0, 2, 1], 3);
    /// assert_eq!((t.len(), t.labelled()), (3, 3));
    /// ```
    pub fn classes(name: impl Into<String>, labels: Array1<i64>, classes: usize) -> Self {
        Self::from_data(name, TargetData::Classes { labels, classes })
    }

    /// A binary task with 0/1 `values`.
    pub fn binary(name: impl Into<String>, values: Array1<f32>) -> Self {
        Self::from_data(name, TargetData::Binary(values))
    }

    /// A regression task with `[n, m]` `values`.
    pub fn regression(name: impl Into<String>, values: Array2<f32>) -> Self {
        Self::from_data(name, TargetData::Regression(values))
    }

    /// A task from any [`TargetData`], fully labelled.
    pub fn from_data(name: impl Into<String>, data: TargetData) -> Self {
        TaskData {
            name: name.into(),
            data,
            mask: None,
        }
    }

    /// The same task with only the rows where `mask` is true labelled.
    ///
    /// ```
    /// use mtl_data::TaskData;
    /// let t = TaskData::binary("spam", ndarray::array![1.0, 0.0, 0.0])
    ///     .with_mask(ndarray::array![true, false, true]);
    /// assert_eq!(t.labelled(), 2);
    /// ```
    pub fn with_mask(self, mask: Array1<bool>) -> Self {
        TaskData {
            mask: Some(mask),
            ..self
        }
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The number of labelled rows.
    pub fn labelled(&self) -> usize {
        match &self.mask {
            None => self.len(),
            Some(m) => m.iter().filter(|&&b| b).count(),
        }
    }

    /// Whether row `row` is labelled (false for rows out of range).
    pub fn is_labelled(&self, row: usize) -> bool {
        match &self.mask {
            None => row < self.len(),
            Some(m) => m.get(row).copied().unwrap_or(false),
        }
    }

    /// The task restricted to the given rows, in that order. Rows must be in range.
    pub(crate) fn select(&self, rows: &[usize]) -> TaskData {
        TaskData {
            name: self.name.clone(),
            data: self.data.select(rows),
            mask: self.mask.as_ref().map(|m| m.select(Axis(0), rows)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn lengths_and_output_dims() {
        let c = TaskData::classes("c", array![0, 1], 4);
        let b = TaskData::binary("b", array![0.0, 1.0, 1.0]);
        let r = TaskData::regression("r", Array2::zeros((5, 2)));
        assert_eq!((c.len(), c.data.output_dim()), (2, 4));
        assert_eq!((b.len(), b.data.output_dim()), (3, 1));
        assert_eq!((r.len(), r.data.output_dim()), (5, 2));
        assert_eq!(r.data.kind_name(), "regression");
    }

    #[test]
    fn select_keeps_mask_aligned() {
        let t = TaskData::classes("c", array![0, 1, 2], 3).with_mask(array![true, false, true]);
        let s = t.select(&[2, 1, 1]);
        assert_eq!(
            s.data,
            TargetData::Classes {
                labels: array![2, 1, 1],
                classes: 3
            }
        );
        assert_eq!(s.mask, Some(array![true, false, false]));
        assert_eq!(s.labelled(), 1);
        assert!(t.is_labelled(0) && !t.is_labelled(1) && !t.is_labelled(7));
    }
}
