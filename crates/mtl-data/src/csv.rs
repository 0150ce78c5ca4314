//! Reading a multi-task dataset from a CSV file: which columns are targets, which are
//! features, and errors that point at the file, line and column.
//!
//! The file is read in one streaming pass into one `f32` (or label) buffer per column,
//! never as text rows, so memory stays near the size of the numbers: about 0.4× the
//! file for typical numeric text, well under the 3× the loader promises. Which columns
//! are features is decided over every row, not the first one.

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
        }
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
}

/// What to read from a CSV file. In every target column an empty cell (or one of
/// `na_values`) is a missing label; feature cells must hold finite numbers, and a
/// missing one is handled as `missing` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvSpec {
    /// The target columns, one task each, in task order.
    pub targets: Vec<CsvTarget>,
    /// The feature columns, in order. `None`: every column that is neither a target nor
    /// excluded and holds numbers, in file order. Whether a column holds numbers is
    /// decided over all rows: one that mixes numbers and text is an error naming both
    /// cells, and one that holds only text or nothing is left out (and listed in the
    /// [`CsvSummary`]).
    pub features: Option<Vec<String>>,
    /// Columns never used as features (ids, free text).
    pub exclude: Vec<String>,
    /// Column names to use instead of the file's header line, which is still skipped;
    /// for files whose header does not match their rows.
    pub header: Option<Vec<String>>,
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

/// Why a column is not a feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoredReason {
    /// Every non-missing cell is text (the first at `line`).
    Text {
        /// The line of the first text cell.
        line: u64,
    },
    /// No cell holds a value.
    Empty,
}

/// What [`read_csv_summary`] found besides the dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvSummary {
    /// The feature columns, in the dataset's column order.
    pub features: Vec<String>,
    /// Columns neither target, excluded nor feature, with the reason.
    pub ignored: Vec<(String, IgnoredReason)>,
    /// Feature columns with missing values: the name and how many cells were missing
    /// (filled or dropped as [`CsvSpec::missing`] says).
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
/// use mtl_data::{parse_csv_summary, CsvSpec, CsvTarget, IgnoredReason, TargetKind};
/// let spec = CsvSpec::new(vec![CsvTarget::new("y", TargetKind::Regression)]);
/// let (ds, summary) = parse_csv_summary(b"id,note,a,y\n1,,0.5,2\n2,hi,1.5,3\n", &spec)?;
/// assert_eq!(summary.features, ["id", "a"]);
/// assert_eq!(summary.ignored, [("note".to_string(), IgnoredReason::Text { line: 3 })]);
/// assert_eq!(summary.lines, [2, 3]);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn read_csv_summary(
    path: impl AsRef<Path>,
    spec: &CsvSpec,
) -> Result<(MultiTaskDataset, CsvSummary)> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    from_reader(path, std::io::BufReader::new(file), spec)
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

/// One feature column being read. Missing cells are stored as NaN: parsed values are
/// checked finite, so NaN means missing and nothing else.
struct FeatureColumn {
    header_index: usize,
    declared: bool,
    values: Vec<f32>,
    numbers: usize,
    missing: usize,
    first_number: Option<(u64, String)>,
    first_missing: Option<u64>,
    // Inference only: a text cell seen before any number (the column is then text,
    // unless a number follows, which is an error).
    first_text: Option<(u64, String)>,
}

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
    let header = spec.header.clone().unwrap_or(file_header);
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

    let mut roles: Vec<Role> = (0..header.len()).map(|_| Role::Skip).collect();
    let mut features: Vec<FeatureColumn> = Vec::new();
    let new_feature = |c: usize, declared: bool| FeatureColumn {
        header_index: c,
        declared,
        values: Vec::new(),
        numbers: 0,
        missing: 0,
        first_number: None,
        first_missing: None,
        first_text: None,
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
                features.push(new_feature(c, true));
            }
        }
        None => {
            for (c, role) in roles.iter_mut().enumerate() {
                if !target_cols.contains(&c) && !excluded.contains(&c) {
                    *role = Role::Feature(features.len());
                    features.push(new_feature(c, false));
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
                    read_feature(path, line, &header[c], col, cell, is_missing(cell), spec)?;
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

    // Inferred features: keep the columns that hold numbers.
    let mut ignored = Vec::new();
    if spec.features.is_none() {
        features.retain(|col| {
            if col.numbers > 0 {
                return true;
            }
            let reason = match &col.first_text {
                Some((line, _)) => IgnoredReason::Text { line: *line },
                None => IgnoredReason::Empty,
            };
            ignored.push((header[col.header_index].clone(), reason));
            false
        });
    }
    if features.is_empty() {
        return Err(Error::config(format!(
            "{}: no feature columns (none named, and no other column holds numbers)",
            path.display()
        )));
    }
    let n_rows = lines.len();
    let mut keep = vec![true; n_rows];
    let mut missing_counts = Vec::new();
    for col in &mut features {
        if col.missing == 0 {
            continue;
        }
        let name = &header[col.header_index];
        missing_counts.push((name.clone(), col.missing));
        match spec.missing {
            MissingValues::Error => {
                // Reached only for a blank seen before the column's first number was
                // known; the pass reports every other missing value where it meets it.
                let line = col.first_missing.unwrap_or(0);
                return Err(missing_error(path, line, name));
            }
            MissingValues::DropRows => {
                for (k, v) in keep.iter_mut().zip(&col.values) {
                    *k &= !v.is_nan();
                }
            }
            MissingValues::FillMean => {
                let (sum, n) = col
                    .values
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
                for v in col.values.iter_mut().filter(|v| v.is_nan()) {
                    *v = mean;
                }
            }
        }
    }
    let kept: Vec<usize> = (0..n_rows).filter(|&r| keep[r]).collect();
    let dropped_rows = n_rows - kept.len();

    // Columns into one row-major matrix, each column freed once copied.
    let feature_names: Vec<String> = features
        .iter()
        .map(|c| header[c.header_index].clone())
        .collect();
    let width = features.len();
    let mut matrix = Array2::<f32>::zeros((kept.len(), width));
    for (j, col) in features.into_iter().enumerate() {
        let mut out = matrix.column_mut(j);
        if dropped_rows == 0 {
            for (dst, v) in out.iter_mut().zip(col.values) {
                *dst = v;
            }
        } else {
            for (dst, &r) in out.iter_mut().zip(&kept) {
                *dst = col.values[r];
            }
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
            ignored,
            missing: missing_counts,
            dropped_rows,
            lines,
        },
    ))
}

fn check_target_spec(path: &Path, t: &CsvTarget) -> Result<()> {
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
             missing-value policy: drop the rows or fill with the mean)"
        ),
    )
}

/// Reads one feature cell into its column.
fn read_feature(
    path: &Path,
    line: u64,
    column: &str,
    col: &mut FeatureColumn,
    cell: &[u8],
    missing: bool,
    spec: &CsvSpec,
) -> Result<()> {
    if missing {
        if col.numbers > 0 && spec.missing == MissingValues::Error {
            return Err(missing_error(path, line, column));
        }
        col.missing += 1;
        col.first_missing.get_or_insert(line);
        if col.first_text.is_none() {
            col.values.push(f32::NAN);
        }
        return Ok(());
    }
    let text = std::str::from_utf8(cell).ok();
    match text.map(str::parse::<f32>) {
        Some(Ok(v)) => {
            let text = text.unwrap_or_default();
            if !v.is_finite() {
                return Err(parse_error(
                    path,
                    line,
                    format!("column `{column}`: non-finite value `{text}`"),
                ));
            }
            if let Some((text_line, first)) = &col.first_text {
                return Err(mixed_error(path, line, column, (*text_line, first), text));
            }
            if col.numbers == 0 && spec.missing == MissingValues::Error {
                if let Some(blank) = col.first_missing {
                    return Err(missing_error(path, blank, column));
                }
            }
            col.numbers += 1;
            if col.first_number.is_none() {
                col.first_number = Some((line, text.to_string()));
            }
            col.values.push(v);
        }
        _ => {
            let shown = String::from_utf8_lossy(cell);
            if col.declared {
                return Err(parse_error(
                    path,
                    line,
                    format!("column `{column}`: cannot parse `{shown}` as a number"),
                ));
            }
            if let Some((number_line, number)) = &col.first_number {
                return Err(parse_error(
                    path,
                    line,
                    format!(
                        "column `{column}` holds numbers (`{number}` at line {number_line}) and \
                         the text `{shown}`: fix the cell, give its text in the missing-value \
                         texts, or exclude the column"
                    ),
                ));
            }
            if col.first_text.is_none() {
                col.first_text = Some((line, shown.into_owned()));
                // A text column is never a feature: free what was kept for it.
                col.values = Vec::new();
            }
        }
    }
    Ok(())
}

fn mixed_error(path: &Path, line: u64, column: &str, text: (u64, &str), number: &str) -> Error {
    parse_error(
        path,
        line,
        format!(
            "column `{column}` holds text (`{}` at line {}) and the number `{number}`: fix the \
             cell, give the text in the missing-value texts, or exclude the column",
            text.1, text.0
        ),
    )
}

/// A binary or regression cell.
fn read_real(path: &Path, line: u64, target: &CsvTarget, cell: &[u8]) -> Result<f32> {
    let column = target.column.as_str();
    let text = utf8(path, line, column, cell)?;
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
    fn inferred_features_skip_text_and_excluded_columns() {
        let path = write("infer", "id,name,x,y,t\n1,a,0.5,2,1\n2,b,1.5,3,0\n");
        let mut spec = CsvSpec::new(vec![CsvTarget::new("t", TargetKind::Binary)]);
        spec.exclude = vec!["id".into()];
        let ds = read_csv(&path, &spec).unwrap();
        assert_eq!(ds.features(), &ndarray::array![[0.5f32, 2.0], [1.5, 3.0]]);
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
