//! Reading a multi-task dataset from a CSV file: which columns are targets, which are
//! features, and errors that point at the file, line and column.

use crate::dataset::MultiTaskDataset;
use crate::target::TaskData;
use mtl_core::{Error, Result};
use ndarray::{Array1, Array2};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// How a target column is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// Class labels. When every non-empty cell is a non-negative integer the integers
    /// are the class indices (classes = largest + 1); otherwise the cells are category
    /// names, mapped in sorted order to `0..n` and recorded as the task's class names.
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
}

impl CsvTarget {
    /// A target read from `column`, with the task named after the column.
    pub fn new(column: impl Into<String>, kind: TargetKind) -> Self {
        let column = column.into();
        CsvTarget {
            name: column.clone(),
            column,
            kind,
        }
    }

    /// A target read from `column`, with the task called `name`.
    pub fn named(column: impl Into<String>, name: impl Into<String>, kind: TargetKind) -> Self {
        CsvTarget {
            column: column.into(),
            name: name.into(),
            kind,
        }
    }
}

/// What to read from a CSV file. In every target column an empty cell is a missing
/// label; feature cells must all hold finite numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvSpec {
    /// The target columns, one task each, in task order.
    pub targets: Vec<CsvTarget>,
    /// The feature columns, in order. `None`: every column that is neither a target nor
    /// excluded and whose first data row holds a number, in file order.
    pub features: Option<Vec<String>>,
    /// Columns never used as features (ids, free text).
    pub exclude: Vec<String>,
    /// Column names to use instead of the file's header line, which is still skipped;
    /// for files whose header does not match their rows.
    pub header: Option<Vec<String>>,
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

/// Reads a multi-task dataset from the CSV file at `path` (comma-separated, first line a
/// header, fields trimmed, blank lines skipped).
///
/// Errors: a missing or unreadable file is [`Error::Io`]; a column named in `spec` but
/// absent from the header is [`Error::Parse`] at line 1; a row with the wrong number of
/// fields, a malformed or non-finite number, an empty feature cell or a binary value
/// other than 0/1 is [`Error::Parse`] at that row's line, naming the column and text.
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
    from_reader(Path::new("<memory>"), bytes, spec)
}

fn from_reader(
    path: &Path,
    reader: impl std::io::Read,
    spec: &CsvSpec,
) -> Result<MultiTaskDataset> {
    let (file_header, rows) = read_records(path, reader)?;
    let header = spec.header.clone().unwrap_or(file_header);
    let columns = Columns {
        path,
        header: &header,
    };
    for row in &rows {
        if row.fields.len() != header.len() {
            return Err(parse_error(
                path,
                row.line,
                format!(
                    "expected {} fields (as in the header), found {}",
                    header.len(),
                    row.fields.len()
                ),
            ));
        }
    }
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
    let excluded = spec
        .exclude
        .iter()
        .map(|c| columns.index(c))
        .collect::<Result<Vec<_>>>()?;
    let feature_cols = match &spec.features {
        Some(names) => {
            let cols = names
                .iter()
                .map(|c| columns.index(c))
                .collect::<Result<Vec<_>>>()?;
            if let Some(c) = cols.iter().find(|c| target_cols.contains(c)) {
                return Err(Error::config(format!(
                    "{}: column `{}` is both a feature and a target",
                    path.display(),
                    header[*c]
                )));
            }
            cols
        }
        None => (0..header.len())
            .filter(|c| !target_cols.contains(c) && !excluded.contains(c))
            .filter(|&c| {
                rows.first()
                    .is_some_and(|r| !r.fields[c].is_empty() && r.fields[c].parse::<f32>().is_ok())
            })
            .collect(),
    };
    if feature_cols.is_empty() {
        return Err(Error::config(format!(
            "{}: no feature columns (none named, and no other column holds numbers)",
            path.display()
        )));
    }

    let mut features = Array2::<f32>::zeros((rows.len(), feature_cols.len()));
    for (r, row) in rows.iter().enumerate() {
        for (j, &c) in feature_cols.iter().enumerate() {
            let text = &row.fields[c];
            if text.is_empty() {
                return Err(parse_error(
                    path,
                    row.line,
                    format!("missing value in feature column `{}`", header[c]),
                ));
            }
            features[[r, j]] = parse_finite(path, row.line, &header[c], text)?;
        }
    }

    let mut tasks = Vec::with_capacity(spec.targets.len());
    let mut class_names = Vec::with_capacity(spec.targets.len());
    for (target, &c) in spec.targets.iter().zip(&target_cols) {
        let (task, names) = read_target(path, &rows, c, target)?;
        tasks.push(task);
        class_names.push(names);
    }
    let names = feature_cols.iter().map(|&c| header[c].clone()).collect();
    MultiTaskDataset::with_all_class_names(features, tasks, class_names)?.with_feature_names(names)
}

/// One data row of the file, with the line it starts on.
struct Row {
    line: u64,
    fields: Vec<String>,
}

/// The file's header line and its data rows.
fn read_records(path: &Path, input: impl std::io::Read) -> Result<(Vec<String>, Vec<Row>)> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(input);
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, e))?;
        let line = record.position().map_or(0, |p| p.line());
        rows.push(Row {
            line,
            fields: record.iter().map(str::to_string).collect(),
        });
    }
    if rows.is_empty() {
        return Err(parse_error(path, 1, "empty file: no header line".into()));
    }
    let header = rows.remove(0).fields;
    Ok((header, rows))
}

fn csv_error(path: &Path, e: ::csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    match e.into_kind() {
        ::csv::ErrorKind::Io(source) => Error::Io {
            path: path.to_path_buf(),
            source,
        },
        kind => parse_error(path, line, format!("{kind:?}")),
    }
}

fn parse_error(path: &Path, line: u64, message: String) -> Error {
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

/// Reads target column `c`; returns the task and, for string classes, the class names.
fn read_target(
    path: &Path,
    rows: &[Row],
    c: usize,
    target: &CsvTarget,
) -> Result<(TaskData, Option<Vec<String>>)> {
    let column = target.column.as_str();
    let mask: Array1<bool> = rows.iter().map(|r| !r.fields[c].is_empty()).collect();
    let labelled = || rows.iter().filter(|r| !r.fields[c].is_empty());
    let (task, names) = match target.kind {
        TargetKind::Classes => {
            if labelled().all(|r| r.fields[c].parse::<i64>().is_ok()) {
                let mut labels = Array1::<i64>::zeros(rows.len());
                for (r, row) in rows.iter().enumerate() {
                    let text = &row.fields[c];
                    if text.is_empty() {
                        continue;
                    }
                    // Parsed above, so this cannot fail.
                    let l: i64 = text.parse().unwrap_or(0);
                    if l < 0 {
                        return Err(parse_error(
                            path,
                            row.line,
                            format!("column `{column}`: negative class label `{text}`"),
                        ));
                    }
                    labels[r] = l;
                }
                let classes = labels.iter().max().map_or(1, |&m| m as usize + 1);
                (TaskData::classes(&target.name, labels, classes), None)
            } else {
                let names: Vec<String> = labelled()
                    .map(|r| r.fields[c].clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let labels: Array1<i64> = rows
                    .iter()
                    .map(|r| names.binary_search(&r.fields[c]).map_or(0, |i| i as i64))
                    .collect();
                let task = TaskData::classes(&target.name, labels, names.len());
                (task, Some(names))
            }
        }
        TargetKind::Binary => {
            let mut values = Array1::<f32>::zeros(rows.len());
            for (r, row) in rows.iter().enumerate() {
                let text = &row.fields[c];
                if text.is_empty() {
                    continue;
                }
                let v = parse_finite(path, row.line, column, text)?;
                if v != 0.0 && v != 1.0 {
                    return Err(parse_error(
                        path,
                        row.line,
                        format!("column `{column}`: binary value `{text}` is neither 0 nor 1"),
                    ));
                }
                values[r] = v;
            }
            (TaskData::binary(&target.name, values), None)
        }
        TargetKind::Regression => {
            let mut values = Array2::<f32>::zeros((rows.len(), 1));
            for (r, row) in rows.iter().enumerate() {
                let text = &row.fields[c];
                if !text.is_empty() {
                    values[[r, 0]] = parse_finite(path, row.line, column, text)?;
                }
            }
            (TaskData::regression(&target.name, values), None)
        }
    };
    let task = if mask.iter().all(|&b| b) {
        task
    } else {
        task.with_mask(mask)
    };
    Ok((task, names))
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
        let path = write("ints", "a,cls,flag\n0.5,2,1\n1.5,,0\n2.5,0,\n");
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
                labels: ndarray::array![2, 0, 0],
                classes: 3
            }
        );
        assert_eq!(ds.tasks()[0].mask, Some(ndarray::array![true, false, true]));
        assert_eq!(ds.tasks()[1].mask, Some(ndarray::array![true, true, false]));
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
