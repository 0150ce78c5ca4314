//! Turning a CSV file's typed columns ([`CsvColumn`]) into model features, fitted on
//! the training rows only and saved with a model, so new rows are encoded the same way:
//! numbers as they are (a missing one imputed with the training mean beside its
//! indicator), yes/no as 0/1, categories one-hot when they are few and as ids into a
//! learned embedding table (or hashed into buckets) when they are many. A category the
//! training rows never showed is "unknown": all zeros one-hot, id 0 in a table.
//!
//! The encoded row is the numbers and one-hot columns first, then one id column per
//! embedded column; [`TableEncoder::embedding_input`] describes that layout to the
//! model's embedding input layer ([`mtl_core::EmbeddingInput`]).

use crate::column_type::{boolean_word, category_key, ColumnKind, CsvColumn};
use crate::csv::{check_width, csv_error, indicator_name, open_text, parse_error};
use crate::dataset::MultiTaskDataset;
use mtl_core::{EmbeddingInputConfig, EmbeddingTable, Error, Result};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// What to do with a categorical column that has more categories than
/// [`EncoderOptions::one_hot_max`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HighCardinality {
    /// A learned embedding table with a row per training category (the default).
    #[default]
    Embed,
    /// The hashing trick: categories hashed into [`EncoderOptions::hash_buckets`]
    /// embedding rows, so ids never seen in training still share a learned row.
    Hash,
    /// Refuse, naming the column and its count.
    Error,
}

/// How a [`TableEncoder`] encodes categorical columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderOptions {
    /// The most categories (a missing value counting as one) a column may have to be
    /// one-hot encoded.
    pub one_hot_max: usize,
    /// What happens to a column with more.
    pub high_cardinality: HighCardinality,
    /// The embedding width of every embedded column; `None`: by the rule
    /// `round(1.6 · n^0.56)` for `n` categories, from 2 to 32 (fast.ai's rule, capped).
    pub embedding_dim: Option<usize>,
    /// The buckets of [`HighCardinality::Hash`].
    pub hash_buckets: usize,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        EncoderOptions {
            one_hot_max: 16,
            high_cardinality: HighCardinality::Embed,
            embedding_dim: None,
            hash_buckets: 1024,
        }
    }
}

impl EncoderOptions {
    fn dim(&self, n: usize) -> usize {
        self.embedding_dim
            .unwrap_or_else(|| ((1.6 * (n as f64).powf(0.56)).round() as usize).clamp(2, 32))
    }
}

/// How one column is encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "encoding", rename_all = "snake_case", deny_unknown_fields)]
pub enum ColumnEncoding {
    /// The number; with `indicator`, a missing one becomes `fill` (the training mean)
    /// and a 0/1 column after it says so. Without, a missing value is an error.
    Numeric {
        /// Whether a missing-value indicator follows.
        indicator: bool,
        /// The value of a missing cell.
        fill: f32,
    },
    /// Yes/no words as 1/0, missing values as for a number.
    Boolean {
        /// Whether a missing-value indicator follows.
        indicator: bool,
        /// The value of a missing cell.
        fill: f32,
    },
    /// One 0/1 column per training category (and `<missing>` when the training rows
    /// had missing cells); an unknown category is all zeros.
    OneHot {
        /// The training categories, in column order.
        categories: Vec<String>,
        /// Whether a `<missing>` column follows them.
        missing: bool,
    },
    /// An id into an embedding table: 0 unknown, `1..=n` the training categories,
    /// `n + 1` missing when the training rows had missing cells (else missing is
    /// unknown).
    Embedding {
        /// The training categories, in id order from 1.
        categories: Vec<String>,
        /// Whether missing has its own id.
        missing: bool,
        /// The embedding width.
        dim: usize,
    },
    /// An id into a table of `buckets + 1` rows: 0 for missing, else 1 + the
    /// category's FNV-1a hash modulo `buckets`.
    Hashed {
        /// The number of buckets.
        buckets: usize,
        /// The embedding width.
        dim: usize,
    },
}

/// One column's encoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncodedColumn {
    /// The column's name in the file.
    pub name: String,
    /// Whether category keys are the text as written ([`ColumnKind::Categorical`]).
    #[serde(default)]
    pub exact: bool,
    /// How it is encoded.
    pub encoding: ColumnEncoding,
    /// How many categories of the file the training rows never showed (encoded as
    /// unknown); for the summary only.
    #[serde(default, skip_serializing)]
    pub unseen: usize,
}

/// Encoders for every feature column of a table, fitted on training rows
/// ([`TableEncoder::fit`]), serialisable so a model bundle keeps them.
///
/// ```
/// use mtl_data::{parse_csv_summary, CsvSpec, CsvTarget, EncoderOptions, TableEncoder, TargetKind};
/// let spec = CsvSpec::new(vec![CsvTarget::new("y", TargetKind::Binary)]);
/// let text = b"size,colour,y\n1,red,1\n2,blue,0\n3,red,1\n4,green,0\n";
/// let (data, summary) = parse_csv_summary(text, &spec)?;
/// let train = data.subset(&[0, 1, 2])?; // `green` only in the last row
/// let encoder = TableEncoder::fit(&train, &summary.columns, &EncoderOptions::default())?;
/// assert_eq!(encoder.feature_names(), ["size", "colour=red", "colour=blue"]);
/// let all = encoder.apply(&data, &summary.columns)?;
/// // The unseen `green` is all zeros.
/// assert_eq!(all.features().row(3).to_vec(), [4.0, 0.0, 0.0]);
/// // New rows, read by name, are encoded the same way.
/// let x = encoder.encode_csv(b"colour,size\nblue,7\npurple,8\n", None)?;
/// assert_eq!(x, ndarray::array![[7.0f32, 0.0, 1.0], [8.0, 0.0, 0.0]]);
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableEncoder {
    columns: Vec<EncodedColumn>,
    /// Cell texts read as missing besides the empty cell, as in training.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    na_values: Vec<String>,
}

/// FNV-1a, 64 bits: a hash that is the same in every process and version (Rust's
/// `DefaultHasher` is not promised to be), so a saved model hashes new rows as it did
/// its training rows.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl TableEncoder {
    /// Fits an encoder per column of `columns` (the typed feature columns of the file
    /// `train` was read from: [`CsvSummary::columns`](crate::CsvSummary::columns)) on
    /// the rows of `train`: the training mean of each number, the categories the
    /// training rows hold, and one-hot or embedding by their count.
    ///
    /// Errors: [`Error::Shape`] when `train` does not have the columns' layout;
    /// [`Error::Config`] for a column with more categories than
    /// [`EncoderOptions::one_hot_max`] under [`HighCardinality::Error`], or zero hash
    /// buckets.
    pub fn fit(
        train: &MultiTaskDataset,
        columns: &[CsvColumn],
        options: &EncoderOptions,
    ) -> Result<TableEncoder> {
        check_layout(train, columns)?;
        if options.high_cardinality == HighCardinality::Hash && options.hash_buckets == 0 {
            return Err(Error::config("hash_buckets must be at least 1"));
        }
        if options.embedding_dim == Some(0) {
            return Err(Error::config("embedding_dim must be at least 1"));
        }
        let x = train.features();
        let mut at = 0;
        let mut encoded = Vec::with_capacity(columns.len());
        for col in columns {
            let values = x.column(at);
            let (encoding, exact, unseen) = match &col.kind {
                ColumnKind::Numeric { indicator } | ColumnKind::Boolean { indicator } => {
                    let (sum, n) = match indicator {
                        true => values
                            .iter()
                            .zip(x.column(at + 1))
                            .filter(|(_, &m)| m == 0.0)
                            .fold((0.0f64, 0usize), |(s, n), (&v, _)| {
                                (s + f64::from(v), n + 1)
                            }),
                        false => values
                            .iter()
                            .fold((0.0f64, 0usize), |(s, n), &v| (s + f64::from(v), n + 1)),
                    };
                    let fill = if n == 0 { 0.0 } else { (sum / n as f64) as f32 };
                    let indicator = *indicator;
                    let e = if matches!(col.kind, ColumnKind::Numeric { .. }) {
                        ColumnEncoding::Numeric { indicator, fill }
                    } else {
                        ColumnEncoding::Boolean { indicator, fill }
                    };
                    (e, false, 0)
                }
                ColumnKind::Categorical { categories, exact } => {
                    let mut seen = vec![false; categories.len()];
                    let mut missing = false;
                    for &v in values {
                        match v as i64 {
                            c if c < 0 => missing = true,
                            c => {
                                if let Some(s) = seen.get_mut(c as usize) {
                                    *s = true;
                                }
                            }
                        }
                    }
                    let kept: Vec<String> = categories
                        .iter()
                        .zip(&seen)
                        .filter(|(_, s)| **s)
                        .map(|(c, _)| c.clone())
                        .collect();
                    let unseen = categories.len() - kept.len();
                    let n = kept.len() + usize::from(missing);
                    let e = if n <= options.one_hot_max {
                        ColumnEncoding::OneHot {
                            categories: kept,
                            missing,
                        }
                    } else {
                        match options.high_cardinality {
                            HighCardinality::Embed => ColumnEncoding::Embedding {
                                dim: options.dim(n + 1),
                                categories: kept,
                                missing,
                            },
                            HighCardinality::Hash => ColumnEncoding::Hashed {
                                buckets: options.hash_buckets,
                                dim: options.dim(options.hash_buckets.min(n) + 1),
                            },
                            HighCardinality::Error => {
                                return Err(Error::config(format!(
                                    "column `{}` has {n} categories in the training rows, more \
                                     than one_hot_max = {}; raise it, or encode such columns \
                                     with embeddings (high_cardinality = \"embed\") or hashing \
                                     (\"hash\")",
                                    col.name, options.one_hot_max
                                )))
                            }
                        }
                    };
                    (e, *exact, unseen)
                }
            };
            encoded.push(EncodedColumn {
                name: col.name.clone(),
                exact,
                encoding,
                unseen,
            });
            at += col.width();
        }
        Ok(TableEncoder {
            columns: encoded,
            na_values: Vec::new(),
        })
    }

    /// Reads these texts as missing in new rows, besides the empty cell (the
    /// [`CsvSpec::na_values`](crate::CsvSpec::na_values) of training).
    pub fn with_na_values(mut self, na_values: Vec<String>) -> Self {
        self.na_values = na_values;
        self
    }

    /// The column encoders, in file order.
    pub fn columns(&self) -> &[EncodedColumn] {
        &self.columns
    }

    /// The names of the file's columns it reads, in order.
    pub fn input_names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// The number of numeric (and one-hot) columns of an encoded row, which come before
    /// the id columns.
    pub fn dense_width(&self) -> usize {
        self.columns
            .iter()
            .map(|c| match &c.encoding {
                ColumnEncoding::Numeric { indicator, .. }
                | ColumnEncoding::Boolean { indicator, .. } => 1 + usize::from(*indicator),
                ColumnEncoding::OneHot {
                    categories,
                    missing,
                } => categories.len() + usize::from(*missing),
                ColumnEncoding::Embedding { .. } | ColumnEncoding::Hashed { .. } => 0,
            })
            .sum()
    }

    /// The width of an encoded row.
    pub fn width(&self) -> usize {
        self.dense_width() + self.embedding_input().tables.len()
    }

    /// The encoded row's layout for the model's embedding input layer.
    pub fn embedding_input(&self) -> EmbeddingInputConfig {
        let tables = self
            .columns
            .iter()
            .filter_map(|c| match &c.encoding {
                ColumnEncoding::Embedding {
                    categories,
                    missing,
                    dim,
                } => Some(EmbeddingTable {
                    column: c.name.clone(),
                    rows: (categories.len() + 1 + usize::from(*missing)) as i64,
                    dim: *dim as i64,
                }),
                ColumnEncoding::Hashed { buckets, dim } => Some(EmbeddingTable {
                    column: c.name.clone(),
                    rows: (*buckets + 1) as i64,
                    dim: *dim as i64,
                }),
                _ => None,
            })
            .collect();
        EmbeddingInputConfig {
            dense: self.dense_width() as i64,
            tables,
        }
    }

    /// Whether any column is encoded as ids (the model needs an embedding input).
    pub fn has_embeddings(&self) -> bool {
        !self.embedding_input().tables.is_empty()
    }

    /// The names of the encoded columns: `name`, `name=<missing>`, `name=category`…,
    /// then the id columns' `name`.
    pub fn feature_names(&self) -> Vec<String> {
        let mut dense = Vec::new();
        let mut ids = Vec::new();
        for c in &self.columns {
            match &c.encoding {
                ColumnEncoding::Numeric { indicator, .. }
                | ColumnEncoding::Boolean { indicator, .. } => {
                    dense.push(c.name.clone());
                    if *indicator {
                        dense.push(indicator_name(&c.name));
                    }
                }
                ColumnEncoding::OneHot {
                    categories,
                    missing,
                } => {
                    dense.extend(categories.iter().map(|v| format!("{}={v}", c.name)));
                    if *missing {
                        dense.push(indicator_name(&c.name));
                    }
                }
                ColumnEncoding::Embedding { .. } | ColumnEncoding::Hashed { .. } => {
                    ids.push(c.name.clone())
                }
            }
        }
        dense.extend(ids);
        dense
    }

    /// One line per column saying how it is encoded (and why, for a column with more
    /// categories than one-hot takes).
    pub fn describe(&self, options: &EncoderOptions) -> Vec<String> {
        self.columns
            .iter()
            .map(|c| {
                let unseen = if c.unseen > 0 {
                    format!(
                        "; {} categories only outside the training rows, encoded as unknown",
                        c.unseen
                    )
                } else {
                    String::new()
                };
                let why = format!("more than one_hot_max = {}", options.one_hot_max);
                let text = match &c.encoding {
                    ColumnEncoding::Numeric { indicator, fill } => match indicator {
                        true => format!("number, missing imputed with {fill} and marked"),
                        false => "number".into(),
                    },
                    ColumnEncoding::Boolean { indicator, .. } => match indicator {
                        true => "yes/no as 1/0, missing imputed and marked".into(),
                        false => "yes/no as 1/0".into(),
                    },
                    ColumnEncoding::OneHot {
                        categories,
                        missing,
                    } => format!(
                        "one-hot, {} columns{}",
                        categories.len() + usize::from(*missing),
                        if categories.len() + usize::from(*missing) <= 1 {
                            " (constant in the training rows)"
                        } else {
                            ""
                        }
                    ),
                    ColumnEncoding::Embedding {
                        categories,
                        missing,
                        dim,
                    } => format!(
                        "embedding of {} categories in {dim} dimensions ({why})",
                        categories.len() + usize::from(*missing)
                    ),
                    ColumnEncoding::Hashed { buckets, dim } => {
                        format!(
                            "hashed into {buckets} buckets, embedded in {dim} dimensions ({why})"
                        )
                    }
                };
                format!("{}: {text}{unseen}", c.name)
            })
            .collect()
    }

    /// Encodes the rows of a dataset read from the same file as the training rows
    /// (`columns` its typed columns): the features replaced, the tasks kept, the
    /// feature names set.
    pub fn apply(&self, ds: &MultiTaskDataset, columns: &[CsvColumn]) -> Result<MultiTaskDataset> {
        check_layout(ds, columns)?;
        if columns.len() != self.columns.len()
            || columns
                .iter()
                .zip(&self.columns)
                .any(|(a, b)| a.name != b.name)
        {
            return Err(Error::config(
                "table encoder: the columns are not those it was fitted on",
            ));
        }
        // Per categorical column: file category index -> encoded slot.
        let maps: Vec<Vec<Slot>> = columns
            .iter()
            .zip(&self.columns)
            .map(|(col, enc)| match &col.kind {
                ColumnKind::Categorical { categories, .. } => {
                    let lookup = enc.lookup();
                    categories.iter().map(|c| lookup.slot(c)).collect()
                }
                _ => Vec::new(),
            })
            .collect();
        let x = ds.features();
        let width = self.width();
        let dense = self.dense_width();
        let mut out = Array2::<f32>::zeros((x.nrows(), width));
        for (r, row) in x.rows().into_iter().enumerate() {
            let mut writer = RowWriter::new(out.row_mut(r).into_slice().unwrap_or(&mut []), dense);
            let mut at = 0;
            for ((col, enc), map) in columns.iter().zip(&self.columns).zip(&maps) {
                let v = row[at];
                match &enc.encoding {
                    ColumnEncoding::Numeric { indicator, fill }
                    | ColumnEncoding::Boolean { indicator, fill } => {
                        let missing = *indicator && row[at + 1] != 0.0;
                        writer.number(if missing { *fill } else { v }, missing, *indicator);
                    }
                    _ => {
                        let slot = if v < 0.0 {
                            Slot::Missing
                        } else {
                            map.get(v as usize).copied().unwrap_or(Slot::Unknown)
                        };
                        writer.category(&enc.encoding, slot);
                    }
                }
                at += col.width();
            }
        }
        ds.with_features(out)?
            .with_feature_names(self.feature_names())
    }

    /// Encodes the rows of the CSV file at `path` (a `.gz` name is decompressed),
    /// reading the columns the encoder was fitted on by name; `header` replaces the
    /// file's header line, as [`CsvSpec::header`](crate::CsvSpec::header) does.
    ///
    /// Errors ([`Error::Parse`] at the file and line): a column of the encoder missing
    /// from the header (naming it and the columns that are there); text in a column
    /// that was numeric in training (naming the column, line and text); a missing
    /// value in a numeric column trained without a missing-value indicator.
    pub fn read_csv(
        &self,
        path: impl AsRef<Path>,
        header: Option<&[String]>,
    ) -> Result<Array2<f32>> {
        let path = path.as_ref();
        self.encode_from(path, open_text(path)?, header)
    }

    /// [`TableEncoder::read_csv`] on CSV text held in memory (errors name `<memory>`).
    pub fn encode_csv(&self, bytes: &[u8], header: Option<&[String]>) -> Result<Array2<f32>> {
        self.encode_from(Path::new("<memory>"), bytes, header)
    }

    fn encode_from(
        &self,
        path: &Path,
        input: impl std::io::Read,
        header: Option<&[String]>,
    ) -> Result<Array2<f32>> {
        let mut reader = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(::csv::Trim::All)
            .from_reader(input);
        let mut records = reader.records();
        let file_header: Vec<String> = match records.next() {
            Some(r) => r
                .map_err(|e| csv_error(path, e))?
                .iter()
                .map(String::from)
                .collect(),
            None => return Err(parse_error(path, 1, "empty file: no header line".into())),
        };
        let header = header.map(<[String]>::to_vec).unwrap_or(file_header);
        let index = self
            .columns
            .iter()
            .map(|c| {
                header.iter().position(|h| *h == c.name).ok_or_else(|| {
                    parse_error(
                        path,
                        1,
                        format!(
                            "the model reads feature column `{}`, which is not in the header (columns: {})",
                            c.name,
                            header.join(", ")
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let lookups: Vec<Lookup<'_>> = self.columns.iter().map(EncodedColumn::lookup).collect();
        let width = self.width();
        let dense = self.dense_width();
        let mut values = Vec::new();
        let mut row = vec![0.0f32; width];
        for record in records {
            let record = record.map_err(|e| csv_error(path, e))?;
            let line = record.position().map_or(0, |p| p.line());
            check_width(path, line, header.len(), record.len())?;
            row.iter_mut().for_each(|v| *v = 0.0);
            let mut writer = RowWriter::new(&mut row, dense);
            for ((enc, &c), lookup) in self.columns.iter().zip(&index).zip(&lookups) {
                let text = &record[c];
                let missing = text.is_empty() || self.na_values.iter().any(|n| n == text);
                match &enc.encoding {
                    ColumnEncoding::Numeric { indicator, fill }
                    | ColumnEncoding::Boolean { indicator, fill } => {
                        if missing && !indicator {
                            return Err(parse_error(
                                path,
                                line,
                                format!(
                                    "missing value in column `{}`, which the model was trained \
                                     on without missing values (train with missing = \
                                     \"indicator\" to accept them)",
                                    enc.name
                                ),
                            ));
                        }
                        let v = if missing {
                            *fill
                        } else if matches!(enc.encoding, ColumnEncoding::Boolean { .. }) {
                            match boolean_word(text) {
                                Some(b) => f32::from(u8::from(b)),
                                None => {
                                    return Err(parse_error(
                                        path,
                                        line,
                                        format!(
                                        "column `{}` was yes/no in training, but holds `{text}`",
                                        enc.name
                                    ),
                                    ))
                                }
                            }
                        } else {
                            match text.parse::<f32>() {
                                Ok(v) if v.is_finite() => v,
                                _ => {
                                    return Err(parse_error(
                                        path,
                                        line,
                                        format!(
                                            "column `{}` was numeric in training, but holds the \
                                             text `{text}`",
                                            enc.name
                                        ),
                                    ))
                                }
                            }
                        };
                        writer.number(v, missing, *indicator);
                    }
                    _ => {
                        let slot = if missing {
                            Slot::Missing
                        } else {
                            lookup.slot(&category_key(text, enc.exact))
                        };
                        writer.category(&enc.encoding, slot);
                    }
                }
            }
            values.extend_from_slice(&row);
        }
        let rows = values.len() / width.max(1);
        Array2::from_shape_vec((rows, width), values)
            .map_err(|e| Error::config(format!("encoded rows: {e}")))
    }
}

/// Where a category lands in its column's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Training category `i`.
    Known(usize),
    /// A missing cell.
    Missing,
    /// A category the training rows never showed.
    Unknown,
    /// A hashed category's bucket.
    Bucket(usize),
}

/// Category text → slot, for one column.
enum Lookup<'a> {
    None,
    Index(HashMap<&'a str, usize>),
    Hash(usize),
}

impl Lookup<'_> {
    fn slot(&self, key: &str) -> Slot {
        match self {
            Lookup::None => Slot::Unknown,
            Lookup::Index(map) => map.get(key).map_or(Slot::Unknown, |&i| Slot::Known(i)),
            Lookup::Hash(buckets) => Slot::Bucket((fnv1a(key) % *buckets as u64) as usize),
        }
    }
}

impl EncodedColumn {
    fn lookup(&self) -> Lookup<'_> {
        match &self.encoding {
            ColumnEncoding::OneHot { categories, .. }
            | ColumnEncoding::Embedding { categories, .. } => Lookup::Index(
                categories
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.as_str(), i))
                    .collect(),
            ),
            ColumnEncoding::Hashed { buckets, .. } => Lookup::Hash(*buckets),
            _ => Lookup::None,
        }
    }
}

/// Writes one encoded row: dense values from the front, ids from `dense` on.
struct RowWriter<'a> {
    row: &'a mut [f32],
    dense_at: usize,
    id_at: usize,
}

impl<'a> RowWriter<'a> {
    fn new(row: &'a mut [f32], dense: usize) -> Self {
        RowWriter {
            row,
            dense_at: 0,
            id_at: dense,
        }
    }

    fn number(&mut self, v: f32, missing: bool, indicator: bool) {
        self.row[self.dense_at] = v;
        self.dense_at += 1;
        if indicator {
            self.row[self.dense_at] = f32::from(u8::from(missing));
            self.dense_at += 1;
        }
    }

    fn category(&mut self, encoding: &ColumnEncoding, slot: Slot) {
        match encoding {
            ColumnEncoding::OneHot {
                categories,
                missing,
            } => {
                let hot = match slot {
                    Slot::Known(i) => Some(i),
                    Slot::Missing if *missing => Some(categories.len()),
                    _ => None,
                };
                if let Some(i) = hot {
                    self.row[self.dense_at + i] = 1.0;
                }
                self.dense_at += categories.len() + usize::from(*missing);
            }
            ColumnEncoding::Embedding {
                categories,
                missing,
                ..
            } => {
                let id = match slot {
                    Slot::Known(i) => i + 1,
                    Slot::Missing if *missing => categories.len() + 1,
                    _ => 0,
                };
                self.row[self.id_at] = id as f32;
                self.id_at += 1;
            }
            ColumnEncoding::Hashed { .. } => {
                let id = match slot {
                    Slot::Bucket(b) => b + 1,
                    _ => 0,
                };
                self.row[self.id_at] = id as f32;
                self.id_at += 1;
            }
            ColumnEncoding::Numeric { .. } | ColumnEncoding::Boolean { .. } => {}
        }
    }
}

fn check_layout(ds: &MultiTaskDataset, columns: &[CsvColumn]) -> Result<()> {
    let width: usize = columns.iter().map(CsvColumn::width).sum();
    if width != ds.num_features() {
        return Err(Error::shape(
            "table encoder input",
            format!("{width} feature columns (the typed columns' layout)"),
            format!("{} feature columns", ds.num_features()),
        ));
    }
    Ok(())
}
