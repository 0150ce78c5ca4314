//! What a CSV feature column turned out to be, decided over every row: numbers,
//! yes/no words, or categories. The reader records it in a [`CsvColumn`] per feature
//! column, so a [`TableEncoder`](crate::TableEncoder) fitted on the training rows knows
//! how to encode the column and a saved model knows how to read new rows the same way.

use serde::{Deserialize, Serialize};

/// What a feature column holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ColumnKind {
    /// Finite numbers. With `indicator`, the dataset column after it is 1 where the
    /// value was missing (and the value 0 until an encoder imputes it).
    Numeric {
        /// Whether a missing-value indicator column follows.
        indicator: bool,
    },
    /// Yes/no words (`true`/`false`, `yes`/`no`, `t`/`f`, `y`/`n`, any case), read as
    /// 1/0; missing values are handled as a numeric column's.
    Boolean {
        /// Whether a missing-value indicator column follows.
        indicator: bool,
    },
    /// Categories: the dataset column holds each row's index into `categories`, −1 for
    /// a missing cell. Text columns, columns mixing numbers and text, and columns
    /// declared categorical (integer codes) are categorical.
    Categorical {
        /// The distinct values of the file, in order of first appearance.
        categories: Vec<String>,
        /// How cells become categories: `true` (declared categorical) keeps the text as
        /// written, so ids such as `007` and `7` differ; `false` (inferred) writes a
        /// cell that is a number in its shortest `f32` form, so `1.0` and `1` are one
        /// category.
        exact: bool,
    },
}

/// One feature column of a CSV file as the reader typed it ([`CsvSummary::columns`](
/// crate::CsvSummary::columns)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvColumn {
    /// The column's name in the header.
    pub name: String,
    /// What it holds.
    pub kind: ColumnKind,
    /// How many cells were missing (empty or one of the missing-value texts).
    pub missing: usize,
    /// For a categorical column that also holds numbers: its first text cell (line and
    /// text), so a summary can say why a mostly numeric column became categorical
    /// (often a missing-value marker not listed in `na_values`).
    #[serde(default)]
    pub mixed: Option<(u64, String)>,
}

impl CsvColumn {
    /// How many dataset columns the reader gives it: 2 with a missing-value indicator,
    /// else 1.
    pub fn width(&self) -> usize {
        match self.kind {
            ColumnKind::Numeric { indicator } | ColumnKind::Boolean { indicator } => {
                1 + usize::from(indicator)
            }
            ColumnKind::Categorical { .. } => 1,
        }
    }

    /// Whether a categorical column has at most one value (missing counts as one):
    /// kept as a feature, but worth reporting.
    pub fn is_constant(&self) -> bool {
        match &self.kind {
            ColumnKind::Categorical { categories, .. } => {
                categories.len() + usize::from(self.missing > 0) <= 1
            }
            _ => false,
        }
    }

    /// One line for a summary: `name: categorical, 17 values, 3 missing`.
    pub fn describe(&self) -> String {
        let mut s = format!("{}: ", self.name);
        match &self.kind {
            ColumnKind::Numeric { .. } => s += "numeric",
            ColumnKind::Boolean { .. } => s += "boolean",
            ColumnKind::Categorical {
                categories, exact, ..
            } => {
                s += &format!(
                    "categorical{}, {} values",
                    if *exact { " (declared)" } else { "" },
                    categories.len()
                );
                if self.is_constant() {
                    s += " (constant)";
                }
            }
        }
        if self.missing > 0 {
            s += &format!(", {} missing", self.missing);
        }
        if let Some((line, text)) = &self.mixed {
            s += &format!(
                ", numbers and text (`{text}` at line {line}; list it in na_values if it \
                 marks a missing number)"
            );
        }
        s
    }
}

/// The 0/1 value of a yes/no word, `None` for any other text.
pub(crate) fn boolean_word(text: &str) -> Option<bool> {
    const TRUE: [&str; 4] = ["true", "yes", "t", "y"];
    const FALSE: [&str; 4] = ["false", "no", "f", "n"];
    if TRUE.iter().any(|w| w.eq_ignore_ascii_case(text)) {
        Some(true)
    } else if FALSE.iter().any(|w| w.eq_ignore_ascii_case(text)) {
        Some(false)
    } else {
        None
    }
}

/// The category a cell of a categorical column stands for: the text as written when
/// `exact`, else a finite number in its shortest `f32` form (so a column typed while it
/// held numbers keys them the same before and after its first text).
pub(crate) fn category_key(text: &str, exact: bool) -> std::borrow::Cow<'_, str> {
    if !exact {
        if let Ok(v) = text.parse::<f32>() {
            if v.is_finite() {
                return number_key(v).into();
            }
        }
    }
    text.into()
}

/// A number's category in an inferred categorical column.
pub(crate) fn number_key(v: f32) -> String {
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_keyed_by_value_unless_exact() {
        assert_eq!(category_key("1.0", false), "1");
        assert_eq!(category_key("0.10", false), number_key(0.1));
        assert_eq!(category_key("007", true), "007");
        assert_eq!(category_key("red", false), "red");
        assert_eq!(boolean_word("YES"), Some(true));
        assert_eq!(boolean_word("f"), Some(false));
        assert_eq!(boolean_word("1"), None);
    }
}
