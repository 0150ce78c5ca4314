//! Reading a multi-task dataset from a CSV file: which columns are targets, which are
//! features, and errors that point at the file, line and column.
//!
//! The file is read in one streaming pass into one `f32` (or label) buffer per column,
//! never as text rows, so memory stays near the size of the numbers: about 0.4× the
//! file for typical numeric text, well under the 3× the loader promises. Which columns
//! are features is decided over every row, not the first one, and so is each feature
//! column's type ([`ColumnKind`]): numbers, yes/no words or categories. No column is
//! left out unless the spec excludes it; categorical columns come out as category
//! indices, to be encoded by a [`TableEncoder`](crate::TableEncoder) fitted on the
//! training rows.

use crate::column_type::{boolean_word, category_key, number_key, ColumnKind, CsvColumn};
use crate::dataset::MultiTaskDataset;
use crate::target::TaskData;
use mtl_core::{Error, Result};
use ndarray::{Array1, Array2};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// How a target column is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// Class labels: whole-number class codes (`first_class` is class 0, and every
    /// code up to the largest must occur) or category names, mapped in sorted order to
    /// `0..n` and recorded as the task's class names; or, when the target declares its
    /// classes, exactly those. A fractional or non-finite number (`1.5`, `NaN`) is an
    /// error, as is a column that mixes codes and names.
    Classes,
    /// `0` or `1`.
    Binary,
    /// A real number (one output).
    Regression,
}

/// One target column of a CSV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvTarget {
    /// The column's name in the header.
    pub column: String,
    /// The task's name in the dataset.
    pub name: String,
    /// How the column is read.
    pub kind: TargetKind,
    /// For class targets: the declared classes, in class order. Each labelled cell
    /// must be one of them (compared as text), and the head has exactly this many
    /// classes even when some never occur. `None`: the classes are inferred.
    pub classes: Option<Vec<String>>,
    /// For inferred integer class codes: the code of class 0 (1 for codes `1..=n`).
    pub first_class: i64,
    /// For binary targets: the cell texts read as 1; any other present cell is 0.
    /// `None`: the cells must be `0` or `1`.
    pub positive: Option<Vec<String>>,
}

impl CsvTarget {
    /// A target read from `column`, with the task named after the column.
    pub fn new(column: impl Into<String>, kind: TargetKind) -> Self {
        let column = column.into();
        CsvTarget::named(column.clone(), column, kind)
    }

    /// A target read from `column`, with the task called `name`.
    pub fn named(column: impl Into<String>, name: impl Into<String>, kind: TargetKind) -> Self {
        CsvTarget {
            column: column.into(),
            name: name.into(),
            kind,
            classes: None,
            first_class: 0,
            positive: None,
        }
    }

    /// For a binary target read from text: the labels that are 1 (`["50000+."]`);
    /// every other label is 0.
    ///
    /// ```
    /// use mtl_data::{parse_csv, CsvSpec, CsvTarget, TargetData, TargetKind};
    /// let target = CsvTarget::new("status", TargetKind::Binary).with_positive(["single"]);
    /// let ds = parse_csv(b"x,status\n1,married\n2,single\n", &CsvSpec::new(vec![target]))?;
    /// assert_eq!(ds.tasks()[0].data, TargetData::Binary(ndarray::array![0.0, 1.0]));
    /// # Ok::<(), mtl_core::Error>(())
    /// ```
    pub fn with_positive<S: Into<String>>(mut self, labels: impl IntoIterator<Item = S>) -> Self {
        self.positive = Some(labels.into_iter().map(Into::into).collect());
        self
    }

    /// Declares the classes of a class target, in class order: a label outside them
    /// is an error naming its line and value.
    ///
    /// ```
    /// use mtl_data::{parse_csv, CsvSpec, CsvTarget, TargetKind};
    /// let target = CsvTarget::new("size", TargetKind::Classes).with_classes(["s", "m", "l"]);
    /// let spec = CsvSpec::new(vec![target]);
    /// let ds = parse_csv(b"x,size\n1,m\n2,s\n", &spec)?;
    /// assert_eq!(ds.class_names(0).unwrap(), ["s", "m", "l"]);
    /// let err = parse_csv(b"x,size\n1,m\n2,xl\n", &spec).unwrap_err();
    /// assert!(err.to_string().contains(":3:") && err.to_string().contains("`xl`"));
    /// # Ok::<(), mtl_core::Error>(())
    /// ```
    pub fn with_classes<S: Into<String>>(mut self, classes: impl IntoIterator<Item = S>) -> Self {
        self.classes = Some(classes.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the code of class 0 for integer class codes (1 for codes `1..=n`).
    pub fn with_first_class(mut self, code: i64) -> Self {
        self.first_class = code;
        self
    }
}

/// What to do with a missing feature value: an empty cell, or one of the spec's
/// `na_values`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingValues {
    /// An error naming the file, line and column (the default: nothing is guessed).
    #[default]
    Error,
    /// Leave out every row with a missing feature value (from every task).
    DropRows,
    /// Fill with the column's mean over the file's present values. The mean sees every
    /// row, validation and test ones included; drop the rows to keep them apart.
    FillMean,
    /// Keep the row, and add a column after the value that is 1 where it was missing;
    /// the value is 0 until a [`TableEncoder`](crate::TableEncoder) fitted on the
    /// training rows imputes their mean.
    Indicator,
}

/// What to read from a CSV file. In every target column an empty cell (or one of
/// `na_values`) is a missing label. Each feature column is typed over all its rows
/// (numbers, yes/no words, or categories: [`ColumnKind`]) unless `numeric` or
/// `categorical` declares it; a missing number or yes/no is handled as `missing` says,
/// a missing category is a category of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvSpec {
    /// The target columns, one task each, in task order.
    pub targets: Vec<CsvTarget>,
    /// The feature columns, in order. `None`: every column that is neither a target nor
    /// excluded, in file order: none is left out for holding text.
    pub features: Option<Vec<String>>,
    /// Columns read as categories whatever they hold (integer codes such as an
    /// occupation recode), each cell's text as written being its category.
    pub categorical: Vec<String>,
    /// Columns that must hold numbers: a text cell in one is an error naming the
    /// column, line and text (rather than making the column categorical).
    pub numeric: Vec<String>,
    /// Columns never used as features (ids, free text).
    pub exclude: Vec<String>,
    /// Column names to use instead of the file's header line, which is still skipped
    /// (unless `headerless`); for files whose header does not match their rows.
    pub header: Option<Vec<String>>,
    /// The file has no header line: its first line is a row, and `header` names the
    /// columns (required).
    pub headerless: bool,
    /// What to do with a missing feature value.
    pub missing: MissingValues,
    /// Cell texts that mean "missing", besides the empty cell (`"NA"`, `"?"`...), in
    /// feature and target columns alike.
    pub na_values: Vec<String>,
}

impl CsvSpec {
    /// A spec with these targets and every other numeric column as a feature.
    pub fn new(targets: Vec<CsvTarget>) -> Self {
        CsvSpec {
            targets,
            ..CsvSpec::default()
        }
    }
}

/// What [`read_csv_summary`] found besides the dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvSummary {
    /// The names of the dataset's feature columns, in order: each feature column's
    /// name, followed by `name=<missing>` for a missing-value indicator.
    pub features: Vec<String>,
    /// Every feature column of the file as it was typed, in dataset order.
    pub columns: Vec<CsvColumn>,
    /// Feature columns with missing values: the name and how many cells were missing
    /// (filled, dropped or marked as [`CsvSpec::missing`] says, or a category).
    pub missing: Vec<(String, usize)>,
    /// Rows left out by [`MissingValues::DropRows`].
    pub dropped_rows: usize,
    /// The file line each dataset row starts on.
    pub lines: Vec<u64>,
}

/// Reads a multi-task dataset from the CSV file at `path` (comma-separated, first line a
/// header, fields trimmed, blank lines skipped).
///
/// Errors: a missing or unreadable file is [`Error::Io`]; a column named in `spec` but
/// absent from the header is [`Error::Parse`] at line 1; a row with the wrong number of
/// fields, a malformed or non-finite number, a missing feature value (unless
/// [`CsvSpec::missing`] says otherwise), a column mixing numbers and text, a binary
/// value other than 0/1 or a bad class label is [`Error::Parse`] at that row's line,
/// naming the column and text.
///
/// ```
/// use mtl_data::{read_csv, CsvSpec, CsvTarget, TargetKind};
/// let path = std::env::temp_dir().join(format!("mtl-data-doc-{}.csv", std::process::id()));
/// std::fs::write(&path, "x,y,colour,price\n1,2,red,3.5\n4,5,blue,\n")?;
/// let spec = CsvSpec::new(vec![
///     CsvTarget::new("colour", TargetKind::Classes),
///     CsvTarget::new("price", TargetKind::Regression),
/// ]);
/// let ds = read_csv(&path, &spec)?;
/// std::fs::remove_file(&path)?;
/// assert_eq!((ds.len(), ds.num_features()), (2, 2));
/// assert_eq!(ds.class_names(0).unwrap(), ["blue", "red"]);
/// assert_eq!(ds.feature_names().unwrap(), ["x", "y"]);
/// assert_eq!(ds.tasks()[1].labelled(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_csv(path: impl AsRef<Path>, spec: &CsvSpec) -> Result<MultiTaskDataset> {
    read_csv_summary(path, spec).map(|(ds, _)| ds)
}

/// As [`read_csv`], with a [`CsvSummary`] of the columns used, left out and filled,
/// and the line of every row.
///
/// ```
/// use mtl_data::{parse_csv_summary, ColumnKind, CsvSpec, CsvTarget, TargetKind};
/// let spec = CsvSpec::new(vec![CsvTarget::new("y", TargetKind::Regression)]);
/// let (ds, summary) = parse_csv_summary(b"id,note,a,y\n1,,0.5,2\n2,hi,1.5,3\n", &spec)?;
/// assert_eq!(summary.features, ["id", "note", "a"]);
/// // `note` is a category index: -1 for the missing cell, 0 for `hi`.
/// assert_eq!(ds.features().column(1).to_vec(), [-1.0, 0.0]);
/// assert!(matches!(&summary.columns[1].kind, ColumnKind::Categorical { categories, .. } if categories == &["hi"]));
/// assert_eq!(summary.lines, [2, 3]);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn read_csv_summary(
    path: impl AsRef<Path>,
    spec: &CsvSpec,
) -> Result<(MultiTaskDataset, CsvSummary)> {
    let path = path.as_ref();
    from_reader(path, open_text(path)?, spec)
}

/// Opens a text file for reading, decompressing it when its name ends in `.gz` (the
/// UCI files are shipped that way).
pub(crate) fn open_text(path: &Path) -> Result<Box<dyn std::io::Read>> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file = std::io::BufReader::new(file);
    if path.extension().is_some_and(|e| e == "gz") {
        Ok(Box::new(std::io::BufReader::new(
            flate2::read::MultiGzDecoder::new(file),
        )))
    } else {
        Ok(Box::new(file))
    }
}

/// Parses CSV text held in memory, as [`read_csv`] does a file; errors name the path
/// `<memory>`.
///
/// ```
/// use mtl_data::{parse_csv, CsvSpec, CsvTarget, TargetKind};
/// let spec = CsvSpec::new(vec![CsvTarget::new("y", TargetKind::Binary)]);
/// let ds = parse_csv(b"a,y\n0.5,1\n1.5,0\n", &spec)?;
/// assert_eq!((ds.len(), ds.num_features()), (2, 1));
/// assert!(parse_csv(b"a,y\n0.5,1,7\n", &spec).is_err());
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn parse_csv(bytes: &[u8], spec: &CsvSpec) -> Result<MultiTaskDataset> {
    parse_csv_summary(bytes, spec).map(|(ds, _)| ds)
}

/// As [`parse_csv`], with the [`CsvSummary`].
pub fn parse_csv_summary(bytes: &[u8], spec: &CsvSpec) -> Result<(MultiTaskDataset, CsvSummary)> {
    from_reader(Path::new("<memory>"), bytes, spec)
}

/// What the pass does with one column.
enum Role {
    /// Not read (excluded, or not named when features are).
    Skip,
    /// Target `k` of the spec.
    Target(usize),
    /// Feature column `j` (declared, or a candidate while inferring).
    Feature(usize),
}

/// How a feature column's type is decided.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Declared {
    /// Over its rows.
    Inferred,
    /// Numbers only.
    Numeric,
    /// Categories, as written.
    Categorical,
}

/// One feature column being read. Until its first text cell a column holds numbers
/// (missing cells as NaN: parsed values are checked finite, so NaN means missing and
/// nothing else); from then on, category codes (−1 for missing), the numbers before
/// converted to their categories, so one pass types the column over every row.
struct FeatureColumn {
    header_index: usize,
    declared: Declared,
    values: Vec<f32>,
    numbers: usize,
    missing: usize,
    first_missing: Option<u64>,
    first_text: Option<(u64, String)>,
    /// Category codes, once the column is categorical.
    codes: Option<Vec<i32>>,
    categories: Vec<String>,
    index: HashMap<String, i32>,
    /// Whether every text cell so far is a yes/no word.
    all_boolean: bool,
}

impl FeatureColumn {
    fn code(&mut self, key: &str) -> i32 {
        if let Some(&c) = self.index.get(key) {
            return c;
        }
        let c = self.categories.len() as i32;
        self.categories.push(key.to_string());
        self.index.insert(key.to_string(), c);
        c
    }

    /// Turns the numbers read so far into categories.
    fn make_categorical(&mut self) {
        let values = std::mem::take(&mut self.values);
        let mut codes = Vec::with_capacity(values.capacity());
        for v in values {
            codes.push(if v.is_nan() {
                MISSING_CATEGORY
            } else {
                self.code(&number_key(v))
            });
        }
        self.codes = Some(codes);
    }
}

/// The code of a missing cell in a categorical column.
const MISSING_CATEGORY: i32 = -1;

/// One target column being read.
enum TargetColumn {
    /// Binary or regression values; NaN marks a missing label.
    Real(Vec<f32>),
    /// Class labels as indices into `keys`; `u32::MAX` marks a missing label.
    Classes {
        codes: Vec<u32>,
        keys: Vec<ClassKey>,
        index: HashMap<ClassKey, u32>,
    },
}

/// A distinct class label, with the line it first appears on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum ClassKey {
    Code(i64),
    Name(String),
}

const MISSING_CLASS: u32 = u32::MAX;

fn from_reader(
    path: &Path,
    input: impl std::io::Read,
    spec: &CsvSpec,
) -> Result<(MultiTaskDataset, CsvSummary)> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(input);
    let mut record = ::csv::ByteRecord::new();
    let header = if spec.headerless {
        spec.header.clone().ok_or_else(|| {
            Error::config(format!(
                "{}: a file without a header line needs the column names (header)",
                path.display()
            ))
        })?
    } else {
        if !reader
            .read_byte_record(&mut record)
            .map_err(|e| csv_error(path, e))?
        {
            return Err(parse_error(path, 1, "empty file: no header line".into()));
        }
        let file_header = record
            .iter()
            .map(|f| {
                String::from_utf8(f.to_vec())
                    .map_err(|e| parse_error(path, 1, format!("header is not UTF-8: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        spec.header.clone().unwrap_or(file_header)
    };
    let columns = Columns {
        path,
        header: &header,
    };
    if spec.targets.is_empty() {
        return Err(Error::TaskCount {
            context: format!("CSV spec for {}", path.display()),
            expected: 0,
            got: 0,
        });
    }
    let target_cols = spec
        .targets
        .iter()
        .map(|t| columns.index(&t.column))
        .collect::<Result<Vec<_>>>()?;
    for t in &spec.targets {
        check_target_spec(path, t)?;
    }
    let excluded = spec
        .exclude
        .iter()
        .map(|c| columns.index(c))
        .collect::<Result<Vec<_>>>()?;

    let declared_numeric = spec
        .numeric
        .iter()
        .map(|c| columns.declared(c, "numeric"))
        .collect::<Result<Vec<_>>>()?;
    let declared_categorical = spec
        .categorical
        .iter()
        .map(|c| columns.declared(c, "categorical"))
        .collect::<Result<Vec<_>>>()?;
    if let Some(&c) = declared_numeric
        .iter()
        .find(|c| declared_categorical.contains(c))
    {
        return Err(Error::config(format!(
            "{}: column `{}` is declared both numeric and categorical",
            path.display(),
            header[c]
        )));
    }
    for (what, list) in [
        ("numeric", &declared_numeric),
        ("categorical", &declared_categorical),
    ] {
        if let Some(&c) = list
            .iter()
            .find(|c| target_cols.contains(c) || excluded.contains(c))
        {
            return Err(Error::config(format!(
                "{}: column `{}` is declared {what} but is a target or excluded",
                path.display(),
                header[c]
            )));
        }
    }
    let mut roles: Vec<Role> = (0..header.len()).map(|_| Role::Skip).collect();
    let mut features: Vec<FeatureColumn> = Vec::new();
    let new_feature = |c: usize| {
        let declared = if declared_numeric.contains(&c) {
            Declared::Numeric
        } else if declared_categorical.contains(&c) {
            Declared::Categorical
        } else {
            Declared::Inferred
        };
        FeatureColumn {
            header_index: c,
            declared,
            values: Vec::new(),
            numbers: 0,
            missing: 0,
            first_missing: None,
            first_text: None,
            codes: (declared == Declared::Categorical).then(Vec::new),
            categories: Vec::new(),
            index: HashMap::new(),
            all_boolean: true,
        }
    };
    match &spec.features {
        Some(names) => {
            for name in names {
                let c = columns.index(name)?;
                if target_cols.contains(&c) {
                    return Err(Error::config(format!(
                        "{}: column `{}` is both a feature and a target",
                        path.display(),
                        header[c]
                    )));
                }
                if matches!(roles[c], Role::Feature(_)) {
                    return Err(Error::config(format!(
                        "{}: feature column `{name}` is named twice",
                        path.display()
                    )));
                }
                roles[c] = Role::Feature(features.len());
                features.push(new_feature(c));
            }
            // A declared type is for a feature: one outside the list is a mistake.
            for &c in declared_numeric.iter().chain(&declared_categorical) {
                if !matches!(roles[c], Role::Feature(_)) {
                    return Err(Error::config(format!(
                        "{}: column `{}` has a declared type but is not among the features \
                         ({})",
                        path.display(),
                        header[c],
                        names.join(", ")
                    )));
                }
            }
        }
        None => {
            for (c, role) in roles.iter_mut().enumerate() {
                if !target_cols.contains(&c) && !excluded.contains(&c) {
                    *role = Role::Feature(features.len());
                    features.push(new_feature(c));
                }
            }
        }
    }
    for (k, &c) in target_cols.iter().enumerate() {
        if let Some(j) = target_cols[..k].iter().position(|&d| d == c) {
            return Err(Error::config(format!(
                "{}: targets {j} and {k} both read column `{}`",
                path.display(),
                header[c]
            )));
        }
        roles[c] = Role::Target(k);
    }
    let mut targets: Vec<TargetColumn> = spec
        .targets
        .iter()
        .map(|t| match t.kind {
            TargetKind::Classes => TargetColumn::Classes {
                codes: Vec::new(),
                keys: Vec::new(),
                index: HashMap::new(),
            },
            TargetKind::Binary | TargetKind::Regression => TargetColumn::Real(Vec::new()),
        })
        .collect();
    // For declared classes: label text -> class index.
    let declared: Vec<Option<HashMap<&str, u32>>> = spec
        .targets
        .iter()
        .map(|t| {
            t.classes.as_ref().map(|cs| {
                cs.iter()
                    .enumerate()
                    .map(|(i, c)| (c.as_str(), i as u32))
                    .collect()
            })
        })
        .collect();
    let mut first_lines: Vec<Vec<u64>> = vec![Vec::new(); spec.targets.len()];
    let is_missing =
        |text: &[u8]| text.is_empty() || spec.na_values.iter().any(|n| n.as_bytes() == text);

    let mut lines: Vec<u64> = Vec::new();
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(path, e))?
    {
        let line = record.position().map_or(0, |p| p.line());
        check_width(path, line, header.len(), record.len())?;
        lines.push(line);
        for (c, cell) in record.iter().enumerate() {
            match roles[c] {
                Role::Skip => {}
                Role::Feature(j) => {
                    let col = &mut features[j];
                    read_feature(path, line, &header[c], col, cell, is_missing(cell))?;
                }
                Role::Target(k) => {
                    let target = &spec.targets[k];
                    let missing = is_missing(cell);
                    match &mut targets[k] {
                        TargetColumn::Real(values) => {
                            values.push(if missing {
                                f32::NAN
                            } else {
                                read_real(path, line, target, cell)?
                            });
                        }
                        TargetColumn::Classes { codes, keys, index } => {
                            let code = if missing {
                                MISSING_CLASS
                            } else {
                                let key = match &declared[k] {
                                    Some(map) => declared_class(path, line, target, map, cell)?,
                                    None => class_key(path, line, target, cell)?,
                                };
                                match index.get(&key) {
                                    Some(&i) => i,
                                    None => {
                                        let i = keys.len() as u32;
                                        if i == MISSING_CLASS {
                                            return Err(parse_error(
                                                path,
                                                line,
                                                format!(
                                                    "column `{}`: too many classes",
                                                    target.column
                                                ),
                                            ));
                                        }
                                        check_class_kinds(
                                            path,
                                            line,
                                            target,
                                            keys,
                                            &first_lines[k],
                                            &key,
                                        )?;
                                        keys.push(key.clone());
                                        first_lines[k].push(line);
                                        index.insert(key, i);
                                        i
                                    }
                                }
                            };
                            codes.push(code);
                        }
                    }
                }
            }
        }
    }

    if features.is_empty() {
        return Err(Error::config(format!(
            "{}: no feature columns (every column is a target or excluded)",
            path.display()
        )));
    }
    let n_rows = lines.len();
    let mut keep = vec![true; n_rows];
    let mut missing_counts = Vec::new();
    let mut typed = Vec::with_capacity(features.len());
    // Each feature column's values as the dataset holds them, with its indicator.
    let mut outputs: Vec<(Vec<f32>, Option<Vec<f32>>)> = Vec::with_capacity(features.len());
    for mut col in features {
        let name = header[col.header_index].clone();
        if col.missing > 0 {
            missing_counts.push((name.clone(), col.missing));
        }
        // Text cells that are all yes/no words make a boolean column, not categories.
        let boolean = col.declared == Declared::Inferred
            && col.numbers == 0
            && !col.categories.is_empty()
            && col.all_boolean;
        // No value at all: a constant categorical column (missing, its one category).
        if col.codes.is_none() && col.numbers == 0 && col.declared != Declared::Numeric {
            col.make_categorical();
        }
        let codes = col.codes.take();
        if let (Some(codes), false) = (&codes, boolean) {
            let values = codes.iter().map(|&c| c as f32).collect();
            let mixed = if col.numbers > 0 {
                col.first_text.clone()
            } else {
                None
            };
            typed.push(CsvColumn {
                name,
                kind: ColumnKind::Categorical {
                    categories: std::mem::take(&mut col.categories),
                    exact: col.declared == Declared::Categorical,
                },
                missing: col.missing,
                mixed,
            });
            outputs.push((values, None));
            continue;
        }
        let mut values = if boolean {
            let word: Vec<f32> = col
                .categories
                .iter()
                .map(|c| f32::from(u8::from(boolean_word(c) == Some(true))))
                .collect();
            codes
                .unwrap_or_default()
                .into_iter()
                .map(|c| {
                    if c == MISSING_CATEGORY {
                        f32::NAN
                    } else {
                        word[c as usize]
                    }
                })
                .collect()
        } else {
            std::mem::take(&mut col.values)
        };
        let mut indicator = None;
        if col.missing > 0 {
            match spec.missing {
                MissingValues::Error => {
                    let line = col.first_missing.unwrap_or(0);
                    return Err(missing_error(path, line, &name));
                }
                MissingValues::DropRows => {
                    for (k, v) in keep.iter_mut().zip(&values) {
                        *k &= !v.is_nan();
                    }
                }
                MissingValues::FillMean => {
                    let (sum, n) = values
                        .iter()
                        .filter(|v| !v.is_nan())
                        .fold((0.0f64, 0usize), |(s, n), &v| (s + f64::from(v), n + 1));
                    if n == 0 {
                        return Err(Error::config(format!(
                            "{}: feature column `{name}` has no values to take a mean of",
                            path.display()
                        )));
                    }
                    let mean = (sum / n as f64) as f32;
                    for v in values.iter_mut().filter(|v| v.is_nan()) {
                        *v = mean;
                    }
                }
                MissingValues::Indicator => {
                    let marks = values
                        .iter_mut()
                        .map(|v| {
                            let missing = v.is_nan();
                            if missing {
                                *v = 0.0;
                            }
                            f32::from(u8::from(missing))
                        })
                        .collect();
                    indicator = Some(marks);
                }
            }
        }
        let has_indicator = indicator.is_some();
        typed.push(CsvColumn {
            name,
            kind: if boolean {
                ColumnKind::Boolean {
                    indicator: has_indicator,
                }
            } else {
                ColumnKind::Numeric {
                    indicator: has_indicator,
                }
            },
            missing: col.missing,
            mixed: None,
        });
        outputs.push((values, indicator));
    }
    let kept: Vec<usize> = (0..n_rows).filter(|&r| keep[r]).collect();
    let dropped_rows = n_rows - kept.len();

    // Columns into one row-major matrix, each column freed once copied.
    let mut feature_names: Vec<String> = Vec::new();
    for (col, (_, indicator)) in typed.iter().zip(&outputs) {
        feature_names.push(col.name.clone());
        if indicator.is_some() {
            feature_names.push(indicator_name(&col.name));
        }
    }
    let width = feature_names.len();
    let mut matrix = Array2::<f32>::zeros((kept.len(), width));
    let mut j = 0;
    for (values, indicator) in outputs {
        for column in std::iter::once(values).chain(indicator) {
            let mut out = matrix.column_mut(j);
            if dropped_rows == 0 {
                for (dst, v) in out.iter_mut().zip(column) {
                    *dst = v;
                }
            } else {
                for (dst, &r) in out.iter_mut().zip(&kept) {
                    *dst = column[r];
                }
            }
            j += 1;
        }
    }

    let mut tasks = Vec::with_capacity(spec.targets.len());
    let mut class_names = Vec::with_capacity(spec.targets.len());
    for ((target, column), first) in spec.targets.iter().zip(targets).zip(&first_lines) {
        let (task, names) = finish_target(path, target, column, first, &kept)?;
        tasks.push(task);
        class_names.push(names);
    }
    let ds = MultiTaskDataset::with_all_class_names(matrix, tasks, class_names)?
        .with_feature_names(feature_names.clone())?;
    let lines = if dropped_rows == 0 {
        lines
    } else {
        kept.iter().map(|&r| lines[r]).collect()
    };
    Ok((
        ds,
        CsvSummary {
            features: feature_names,
            columns: typed,
            missing: missing_counts,
            dropped_rows,
            lines,
        },
    ))
}

fn check_target_spec(path: &Path, t: &CsvTarget) -> Result<()> {
    if t.kind != TargetKind::Binary && t.positive.is_some() {
        return Err(Error::config(format!(
            "{}: target `{}`: positive labels are only for binary targets",
            path.display(),
            t.column
        )));
    }
    if t.kind != TargetKind::Classes && (t.classes.is_some() || t.first_class != 0) {
        return Err(Error::config(format!(
            "{}: target `{}`: classes and first_class are only for class targets",
            path.display(),
            t.column
        )));
    }
    if let Some(classes) = &t.classes {
        if classes.is_empty() {
            return Err(Error::config(format!(
                "{}: target `{}` declares no classes",
                path.display(),
                t.column
            )));
        }
        let mut seen = BTreeSet::new();
        if let Some(dup) = classes.iter().find(|c| !seen.insert(c.as_str())) {
            return Err(Error::config(format!(
                "{}: target `{}` declares class `{dup}` twice",
                path.display(),
                t.column
            )));
        }
        if t.first_class != 0 {
            return Err(Error::config(format!(
                "{}: target `{}`: first_class is for inferred codes; declared classes are \
                 already in class order",
                path.display(),
                t.column
            )));
        }
    }
    Ok(())
}

fn missing_error(path: &Path, line: u64, column: &str) -> Error {
    parse_error(
        path,
        line,
        format!(
            "missing value in feature column `{column}` (leave the column out, or choose a \
             missing-value policy: drop the rows, fill with the mean, or mark them in an \
             indicator column)"
        ),
    )
}

/// The name of the dataset column that marks where `column` was missing.
pub fn indicator_name(column: &str) -> String {
    format!("{column}=<missing>")
}

/// Reads one feature cell into its column: a number while the column holds numbers, a
/// category once it holds text (or was declared categorical).
fn read_feature(
    path: &Path,
    line: u64,
    column: &str,
    col: &mut FeatureColumn,
    cell: &[u8],
    missing: bool,
) -> Result<()> {
    if missing {
        col.missing += 1;
        col.first_missing.get_or_insert(line);
        match &mut col.codes {
            Some(codes) => codes.push(MISSING_CATEGORY),
            None => col.values.push(f32::NAN),
        }
        return Ok(());
    }
    let text = utf8(path, line, column, cell)?;
    let exact = col.declared == Declared::Categorical;
    if col.codes.is_some() {
        if !exact && text.parse::<f32>().is_ok_and(f32::is_finite) {
            col.numbers += 1;
        } else if !exact {
            col.all_boolean &= boolean_word(text).is_some();
            col.first_text
                .get_or_insert_with(|| (line, text.to_string()));
        }
        let key = category_key(text, exact).into_owned();
        let code = col.code(&key);
        if let Some(codes) = &mut col.codes {
            codes.push(code);
        }
        return Ok(());
    }
    match text.parse::<f32>() {
        Ok(v) if v.is_finite() => {
            col.numbers += 1;
            col.values.push(v);
        }
        Ok(_) => {
            // `NaN` or `inf` among numbers is a broken value, not a category.
            return Err(parse_error(
                path,
                line,
                format!(
                    "column `{column}`: non-finite value `{text}` (list it in the \
                     missing-value texts if it marks a missing number)"
                ),
            ));
        }
        _ if col.declared == Declared::Numeric => {
            return Err(parse_error(
                path,
                line,
                format!(
                    "column `{column}` is declared numeric, but holds the text `{text}`: fix \
                     the cell, list the text in the missing-value texts, or declare the \
                     column categorical"
                ),
            ));
        }
        _ => {
            // The first text cell: the column is categorical over every row, the
            // numbers before included.
            col.first_text = Some((line, text.to_string()));
            col.all_boolean = boolean_word(text).is_some();
            col.make_categorical();
            let code = col.code(&category_key(text, false));
            if let Some(codes) = &mut col.codes {
                codes.push(code);
            }
        }
    }
    Ok(())
}

/// A binary or regression cell.
fn read_real(path: &Path, line: u64, target: &CsvTarget, cell: &[u8]) -> Result<f32> {
    let column = target.column.as_str();
    let text = utf8(path, line, column, cell)?;
    if let Some(positive) = &target.positive {
        return Ok(f32::from(u8::from(positive.iter().any(|p| p == text))));
    }
    let v = parse_finite(path, line, column, text)?;
    if target.kind == TargetKind::Binary && v != 0.0 && v != 1.0 {
        return Err(parse_error(
            path,
            line,
            format!("column `{column}`: binary value `{text}` is neither 0 nor 1"),
        ));
    }
    Ok(v)
}

fn utf8<'a>(path: &Path, line: u64, column: &str, cell: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(cell).map_err(|e| {
        parse_error(
            path,
            line,
            format!("column `{column}`: the text is not valid UTF-8 ({e})"),
        )
    })
}

/// A class cell of a target with declared classes: its class index, as a code key.
fn declared_class(
    path: &Path,
    line: u64,
    target: &CsvTarget,
    classes: &HashMap<&str, u32>,
    cell: &[u8],
) -> Result<ClassKey> {
    let text = utf8(path, line, &target.column, cell)?;
    match classes.get(text) {
        Some(&i) => Ok(ClassKey::Code(i64::from(i))),
        None => Err(parse_error(
            path,
            line,
            format!(
                "column `{}`: label `{text}` is not one of the declared classes [{}]",
                target.column,
                target.classes.as_deref().unwrap_or_default().join(", ")
            ),
        )),
    }
}

/// A class cell of a target whose classes are inferred: a whole-number code or a name.
fn class_key(path: &Path, line: u64, target: &CsvTarget, cell: &[u8]) -> Result<ClassKey> {
    let column = target.column.as_str();
    let text = utf8(path, line, column, cell)?;
    if let Ok(code) = text.parse::<i64>() {
        return Ok(ClassKey::Code(code));
    }
    if let Ok(v) = text.parse::<f64>() {
        // Whole numbers written as floats ("2.0", as pandas writes an integer column
        // with gaps) are codes; anything else is not a class.
        if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 {
            return Ok(ClassKey::Code(v as i64));
        }
        let why = if v.is_finite() {
            "class codes are whole numbers"
        } else {
            "leave the cell empty (or list the text as missing) for a missing label"
        };
        return Err(parse_error(
            path,
            line,
            format!("column `{column}`: `{text}` is not a class label: {why}"),
        ));
    }
    Ok(ClassKey::Name(text.to_string()))
}

/// A new label must be of the kind (code or name) the column started with.
fn check_class_kinds(
    path: &Path,
    line: u64,
    target: &CsvTarget,
    keys: &[ClassKey],
    first_lines: &[u64],
    key: &ClassKey,
) -> Result<()> {
    if target.classes.is_some() {
        return Ok(());
    }
    let Some((first, first_line)) = keys.first().zip(first_lines.first()) else {
        return Ok(());
    };
    let show = |k: &ClassKey| match k {
        ClassKey::Code(c) => c.to_string(),
        ClassKey::Name(n) => n.clone(),
    };
    if std::mem::discriminant(first) != std::mem::discriminant(key) {
        return Err(parse_error(
            path,
            line,
            format!(
                "column `{}` mixes class codes and names: `{}` here, `{}` at line {first_line} \
                 (declare the classes to read them all as names)",
                target.column,
                show(key),
                show(first)
            ),
        ));
    }
    Ok(())
}

/// Builds task data from a target column, keeping rows `kept`.
fn finish_target(
    path: &Path,
    target: &CsvTarget,
    column: TargetColumn,
    first_lines: &[u64],
    kept: &[usize],
) -> Result<(TaskData, Option<Vec<String>>)> {
    let n = kept.len();
    let all = kept.len() == kept.last().map_or(0, |&r| r + 1);
    let pick = |r: usize| if all { r } else { kept[r] };
    let (task, mask, names) = match column {
        TargetColumn::Real(values) => {
            let mask: Array1<bool> = (0..n).map(|r| !values[pick(r)].is_nan()).collect();
            let value = |r: usize| {
                let v = values[pick(r)];
                if v.is_nan() {
                    0.0
                } else {
                    v
                }
            };
            let task = match target.kind {
                TargetKind::Binary => {
                    TaskData::binary(&target.name, (0..n).map(value).collect::<Array1<f32>>())
                }
                _ => TaskData::regression(
                    &target.name,
                    Array2::from_shape_fn((n, 1), |(r, _)| value(r)),
                ),
            };
            (task, mask, None)
        }
        TargetColumn::Classes { codes, keys, .. } => {
            let mask: Array1<bool> = (0..n).map(|r| codes[pick(r)] != MISSING_CLASS).collect();
            let (class_of, classes, names) = class_order(path, target, &keys, first_lines)?;
            let labels: Array1<i64> = (0..n)
                .map(|r| match codes[pick(r)] {
                    MISSING_CLASS => 0,
                    i => class_of[i as usize],
                })
                .collect();
            (
                TaskData::classes(&target.name, labels, classes),
                mask,
                names,
            )
        }
    };
    let task = if mask.iter().all(|&b| b) {
        task
    } else {
        task.with_mask(mask)
    };
    Ok((task, names))
}

/// The class index of every distinct label, the class count, and the class names.
fn class_order(
    path: &Path,
    target: &CsvTarget,
    keys: &[ClassKey],
    first_lines: &[u64],
) -> Result<(Vec<i64>, usize, Option<Vec<String>>)> {
    let column = target.column.as_str();
    if let Some(declared) = &target.classes {
        // Declared: the keys are already class indices.
        let class_of = keys
            .iter()
            .map(|k| match k {
                ClassKey::Code(c) => *c,
                ClassKey::Name(_) => 0,
            })
            .collect();
        return Ok((class_of, declared.len(), Some(declared.clone())));
    }
    if keys.iter().all(|k| matches!(k, ClassKey::Name(_))) {
        let sorted: Vec<&ClassKey> = keys.iter().collect::<BTreeSet<_>>().into_iter().collect();
        let class_of = keys
            .iter()
            .map(|k| sorted.binary_search(&k).map_or(0, |i| i as i64))
            .collect();
        let names = sorted
            .iter()
            .map(|k| match k {
                ClassKey::Name(n) => n.clone(),
                ClassKey::Code(c) => c.to_string(),
            })
            .collect::<Vec<_>>();
        let count = names.len();
        return Ok((class_of, count.max(1), (count > 0).then_some(names)));
    }
    // Integer codes, shifted so `first_class` is class 0; every class up to the largest
    // must occur, or the head would be widened by classes the file never shows.
    let mut class_of = Vec::with_capacity(keys.len());
    for (key, &line) in keys.iter().zip(first_lines) {
        let ClassKey::Code(code) = key else {
            return Err(parse_error(
                path,
                line,
                format!("column `{column}`: mixed labels"),
            ));
        };
        let class = code.checked_sub(target.first_class).filter(|c| *c >= 0);
        let Some(class) = class else {
            let what = if target.first_class == 0 {
                "a negative class label".to_string()
            } else {
                format!("below first_class {}", target.first_class)
            };
            return Err(parse_error(
                path,
                line,
                format!("column `{column}`: class code `{code}` is {what}"),
            ));
        };
        class_of.push(class);
    }
    let distinct = class_of.len();
    if let Some((i, &largest)) = class_of.iter().enumerate().max_by_key(|(_, c)| **c) {
        if largest as u64 + 1 != distinct as u64 {
            let present: BTreeSet<i64> = class_of.iter().copied().collect();
            let gap = (0..).find(|c| !present.contains(c)).unwrap_or(0);
            return Err(parse_error(
                path,
                first_lines[i],
                format!(
                    "column `{column}`: class code `{}` would make a head of {} classes, but \
                     only {distinct} codes occur (no row has code `{}`); codes must run from \
                     the first class's code ({}) without gaps, or else declare the classes",
                    largest + target.first_class,
                    largest as u64 + 1,
                    gap + target.first_class,
                    target.first_class,
                ),
            ));
        }
    }
    Ok((class_of, distinct.max(1), None))
}

pub(crate) fn csv_error(path: &Path, e: ::csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    match e.into_kind() {
        ::csv::ErrorKind::Io(source) => Error::Io {
            path: path.to_path_buf(),
            source,
        },
        kind => parse_error(path, line, format!("{kind:?}")),
    }
}

/// A row of another width than the header would put its values under the wrong names.
pub(crate) fn check_width(path: &Path, line: u64, header: usize, fields: usize) -> Result<()> {
    if fields == header {
        return Ok(());
    }
    Err(parse_error(
        path,
        line,
        format!("expected {header} fields (as in the header), found {fields}"),
    ))
}

pub(crate) fn parse_error(path: &Path, line: u64, message: String) -> Error {
    Error::Parse {
        path: PathBuf::from(path),
        line,
        message,
    }
}

/// Looks up column names in the header.
struct Columns<'a> {
    path: &'a Path,
    header: &'a [String],
}

impl Columns<'_> {
    /// A column given a type by the spec: an unknown name is an error naming the
    /// declaration and every column of the file.
    fn declared(&self, name: &str, what: &str) -> Result<usize> {
        self.index(name).map_err(|_| {
            Error::config(format!(
                "{}: the column declared {what}, `{name}`, is not in the header (columns: {})",
                self.path.display(),
                self.header.join(", ")
            ))
        })
    }

    fn index(&self, name: &str) -> Result<usize> {
        let mut hits = self.header.iter().enumerate().filter(|(_, h)| *h == name);
        match (hits.next(), hits.next()) {
            (Some((i, _)), None) => Ok(i),
            (Some(_), Some(_)) => Err(parse_error(
                self.path,
                1,
                format!("column `{name}` appears more than once in the header"),
            )),
            (None, _) => Err(parse_error(
                self.path,
                1,
                format!(
                    "column `{name}` is not in the header (columns: {})",
                    self.header.join(", ")
                ),
            )),
        }
    }
}

fn parse_finite(path: &Path, line: u64, column: &str, text: &str) -> Result<f32> {
    match text.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(parse_error(
            path,
            line,
            format!("column `{column}`: non-finite value `{text}`"),
        )),
        Err(_) => Err(parse_error(
            path,
            line,
            format!("column `{column}`: cannot parse `{text}` as a number"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TargetData;

    fn write(name: &str, text: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("mtl-data-unit-{}-{name}.csv", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn integer_classes_and_binary_with_gaps() {
        let path = write("ints", "a,cls,flag\n0.5,2,1\n1.5,,0\n2.5,0,\n3.5,1,1\n");
        let spec = CsvSpec::new(vec![
            CsvTarget::named("cls", "class", TargetKind::Classes),
            CsvTarget::new("flag", TargetKind::Binary),
        ]);
        let ds = read_csv(&path, &spec).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(ds.task_names(), ["class", "flag"]);
        assert_eq!(
            ds.tasks()[0].data,
            TargetData::Classes {
                labels: ndarray::array![2, 0, 0, 1],
                classes: 3
            }
        );
        assert_eq!(
            ds.tasks()[0].mask,
            Some(ndarray::array![true, false, true, true])
        );
        assert_eq!(
            ds.tasks()[1].mask,
            Some(ndarray::array![true, true, false, true])
        );
        assert!(ds.class_names(0).is_none());
    }

    #[test]
    fn bad_binary_and_negative_label_name_the_line() {
        let path = write("badbin", "a,flag\n1,0\n2,2\n");
        let spec = CsvSpec::new(vec![CsvTarget::new("flag", TargetKind::Binary)]);
        let err = read_csv(&path, &spec).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(err, Error::Parse { line: 3, .. }), "{err}");

        let path = write("neg", "a,c\n1,0\n2,1\n3,-1\n");
        let spec = CsvSpec::new(vec![CsvTarget::new("c", TargetKind::Classes)]);
        let err = read_csv(&path, &spec).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(err, Error::Parse { line: 4, .. }), "{err}");
    }

    #[test]
    fn inferred_features_keep_text_and_skip_excluded_columns() {
        let path = write("infer", "id,name,x,y,t\n1,a,0.5,2,1\n2,b,1.5,3,0\n");
        let mut spec = CsvSpec::new(vec![CsvTarget::new("t", TargetKind::Binary)]);
        spec.exclude = vec!["id".into()];
        let ds = read_csv(&path, &spec).unwrap();
        // `name` is text: a categorical column of indices, not left out.
        assert_eq!(
            ds.features(),
            &ndarray::array![[0.0f32, 0.5, 2.0], [1.0, 1.5, 3.0]]
        );
        spec.features = Some(vec!["y".into(), "t".into()]);
        assert!(matches!(read_csv(&path, &spec), Err(Error::Config(_))));
        spec.features = None;
        spec.targets.clear();
        assert!(matches!(
            read_csv(&path, &spec),
            Err(Error::TaskCount { .. })
        ));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn empty_file_is_a_parse_error() {
        let path = write("empty", "");
        let spec = CsvSpec::new(vec![CsvTarget::new("t", TargetKind::Binary)]);
        assert!(matches!(
            read_csv(&path, &spec),
            Err(Error::Parse { line: 1, .. })
        ));
        std::fs::remove_file(&path).unwrap();
    }
}
