//! Reading only the feature columns of a CSV file, by name: the input of a trained
//! model's predictions, from files that need not have the target columns.

use crate::csv::{check_width, csv_error, parse_error};
use mtl_core::{Error, Result};
use ndarray::Array2;
use std::path::Path;

/// Reads the columns named in `columns`, in that order, from the CSV file at `path`
/// (comma-separated, first line a header, fields trimmed, blank lines skipped) into an
/// `[n, columns.len()]` matrix. Other columns are ignored. `header`, when given,
/// replaces the names of the file's header line (which is still skipped), as
/// [`CsvSpec::header`](crate::CsvSpec::header) does for [`read_csv`](crate::read_csv).
///
/// Errors: a missing or unreadable file is [`Error::Io`]; a named column absent from
/// the header (or named twice in it) is [`Error::Parse`] at line 1; a row whose number
/// of fields differs from the header's, or an empty, malformed or non-finite cell in a
/// named column, is [`Error::Parse`] at that row's line, naming the column.
///
/// ```
/// use mtl_data::parse_csv_features;
/// let cols = ["a".to_string(), "b".to_string()];
/// let x = parse_csv_features(b"id,b,a\n7,2.5,1\n8,-1,0\n", &cols, None)?;
/// assert_eq!(x, ndarray::array![[1.0f32, 2.5], [0.0, -1.0]]);
/// assert!(parse_csv_features(b"id,b\n7,2.5\n", &cols, None).is_err());
/// // A header line that does not match the rows, named anew.
/// let names = ["id".to_string(), "a".to_string(), "b".to_string()];
/// let x = parse_csv_features(b"a,b\n7,1,2\n", &cols, Some(&names))?;
/// assert_eq!(x, ndarray::array![[1.0f32, 2.0]]);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn read_csv_features(
    path: impl AsRef<Path>,
    columns: &[String],
    header: Option<&[String]>,
) -> Result<Array2<f32>> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    features_from(path, std::io::BufReader::new(file), columns, header)
}

/// [`read_csv_features`] on CSV text held in memory; errors name the path `<memory>`.
pub fn parse_csv_features(
    bytes: &[u8],
    columns: &[String],
    header: Option<&[String]>,
) -> Result<Array2<f32>> {
    features_from(Path::new("<memory>"), bytes, columns, header)
}

fn features_from(
    path: &Path,
    input: impl std::io::Read,
    columns: &[String],
    header: Option<&[String]>,
) -> Result<Array2<f32>> {
    if columns.is_empty() {
        return Err(Error::config("read_csv_features: no columns named"));
    }
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(input);
    let csv_error = |e: ::csv::Error| csv_error(path, e);
    let mut records = reader.records();
    let file_header: Vec<String> = match records.next() {
        Some(r) => r.map_err(csv_error)?.iter().map(String::from).collect(),
        None => return Err(parse_error(path, 1, "empty file: no header line".into())),
    };
    let header = header.map(<[String]>::to_vec).unwrap_or(file_header);
    let index = columns
        .iter()
        .map(|name| {
            let mut hits = header.iter().enumerate().filter(|(_, h)| *h == name);
            match (hits.next(), hits.next()) {
                (Some((i, _)), None) => Ok(i),
                (Some(_), Some(_)) => Err(parse_error(
                    path,
                    1,
                    format!("column `{name}` appears more than once in the header"),
                )),
                (None, _) => Err(parse_error(
                    path,
                    1,
                    format!(
                        "feature column `{name}` is not in the header (columns: {})",
                        header.join(", ")
                    ),
                )),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let mut values = Vec::new();
    let mut rows = 0;
    for record in records {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, |p| p.line());
        check_width(path, line, header.len(), record.len())?;
        for (name, &c) in columns.iter().zip(&index) {
            let text = &record[c];
            let value = match text.parse::<f32>() {
                Ok(v) if v.is_finite() => v,
                _ if text.is_empty() => {
                    return Err(parse_error(
                        path,
                        line,
                        format!("missing value in feature column `{name}`"),
                    ))
                }
                _ => {
                    return Err(parse_error(
                        path,
                        line,
                        format!("column `{name}`: `{text}` is not a finite number"),
                    ))
                }
            };
            values.push(value);
        }
        rows += 1;
    }
    Array2::from_shape_vec((rows, columns.len()), values)
        .map_err(|e| Error::config(format!("feature matrix: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let err =
            |text: &str| parse_csv_features(text.as_bytes(), &cols(&["a"]), None).unwrap_err();
        for (text, line, needle) in [
            ("a,b\n1,2\n,3\n", 3, "missing value"),
            ("a,b\n1,2\nx,3\n", 3, "`x` is not a finite number"),
            ("a,b\n1,2\nNaN,3\n", 3, "`NaN` is not a finite number"),
            ("b\n1\n", 1, "not in the header"),
            ("a,a\n1,2\n", 1, "more than once"),
            ("", 1, "empty file"),
        ] {
            match err(text) {
                Error::Parse {
                    line: l, message, ..
                } => {
                    assert_eq!(l, line, "{text:?}: {message}");
                    assert!(message.contains(needle), "{text:?}: {message}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        for text in ["x,a\n1\n", "x,a\n1,2,3\n"] {
            let e = parse_csv_features(text.as_bytes(), &cols(&["a"]), None).unwrap_err();
            assert!(e.to_string().contains("expected 2 fields"), "{e}");
        }
    }

    #[test]
    fn a_header_only_file_has_no_rows() {
        let x = parse_csv_features(b"a,b\n", &cols(&["b", "a"]), None).unwrap();
        assert_eq!(x.dim(), (0, 2));
    }
}
