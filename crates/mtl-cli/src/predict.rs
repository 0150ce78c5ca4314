//! `mtl predict RUN_DIR_OR_BUNDLE --csv FILE --out preds.csv`: loads the model bundle
//! that `mtl train` saved, reads the feature columns it was trained on from a CSV file
//! by name, and writes one column per task (classes as their labels, regression values
//! in the targets' original units).

use mtl::core::checkpoint::write_atomically;
use mtl::core::{Error, Result};
use mtl::Bundle;
use std::path::{Path, PathBuf};

/// What `mtl predict` is asked to do.
#[derive(Debug, Clone)]
pub struct PredictArgs {
    /// A bundle directory, or an `mtl train` output directory holding one in `model/`.
    pub bundle: PathBuf,
    /// The rows to predict.
    pub csv: PathBuf,
    /// Column names replacing the CSV file's header line (for a header that does not
    /// match its rows, as `data.header` in a run config).
    pub header: Option<Vec<String>>,
    /// Where to write the predictions.
    pub out: PathBuf,
}

/// What a prediction run wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictOutcome {
    /// The number of rows predicted.
    pub rows: usize,
    /// The columns written, in order.
    pub columns: Vec<String>,
    /// The file written.
    pub out: PathBuf,
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Predicts the rows of `args.csv` with the bundle and writes them to `args.out`
/// (atomically: a reader sees no half-written file).
///
/// Errors: those of [`Bundle::load`] and of reading the CSV file; [`Error::Config`]
/// when the bundle does not record its feature columns' names, or when `--out` is the
/// input file.
///
/// ```no_run
/// let outcome = mtl_cli::predict(&mtl_cli::PredictArgs {
///     bundle: "runs/olive".into(),
///     csv: "new_rows.csv".into(),
///     header: None,
///     out: "preds.csv".into(),
/// })?;
/// println!("{} rows, columns {:?}", outcome.rows, outcome.columns);
/// # Ok::<(), mtl::core::Error>(())
/// ```
pub fn predict(args: &PredictArgs) -> Result<PredictOutcome> {
    if same_file(&args.out, &args.csv) {
        return Err(Error::config(format!(
            "--out {} is the input CSV file; predictions never overwrite their input",
            args.out.display()
        )));
    }
    let bundle = Bundle::load(&args.bundle)?;
    // Categories and missing values encoded as in training.
    let x = bundle.read_features_csv(&args.csv, args.header.as_deref())?;
    let predictions = bundle.predict(x.view())?;
    let mut columns: Vec<(String, Vec<String>)> = Vec::new();
    for p in &predictions {
        columns.extend(p.columns()?);
    }
    let mut writer = csv_writer();
    writer.push_record(columns.iter().map(|(name, _)| name.as_str()));
    for row in 0..x.nrows() {
        writer.push_record(columns.iter().map(|(_, values)| values[row].as_str()));
    }
    write_atomically(&args.out, writer.text.as_bytes())?;
    Ok(PredictOutcome {
        rows: x.nrows(),
        columns: columns.into_iter().map(|(name, _)| name).collect(),
        out: args.out.clone(),
    })
}

/// A minimal CSV writer: fields with a comma, quote or line break are quoted, quotes
/// doubled (RFC 4180), so labels of any text survive a round trip.
struct CsvText {
    text: String,
}

fn csv_writer() -> CsvText {
    CsvText {
        text: String::new(),
    }
}

impl CsvText {
    fn push_record<'a>(&mut self, fields: impl Iterator<Item = &'a str>) {
        for (i, f) in fields.enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            if f.contains([',', '"', '\n', '\r']) || f != f.trim() {
                self.text.push('"');
                self.text.push_str(&f.replace('"', "\"\""));
                self.text.push('"');
            } else {
                self.text.push_str(f);
            }
        }
        self.text.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_that_need_quotes_get_them() {
        let mut w = csv_writer();
        w.push_record(["a", "b,c", "say \"hi\"", " pad"].into_iter());
        assert_eq!(w.text, "a,\"b,c\",\"say \"\"hi\"\"\",\" pad\"\n");
    }
}
