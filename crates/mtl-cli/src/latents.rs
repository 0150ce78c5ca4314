//! `mtl latents RUN_DIR_OR_BUNDLE --csv FILE --vars a,b,… [--out DIR]`: which shared
//! latent dimension of a saved model tracks which variable. The model's feature columns
//! are read from the CSV file as `mtl predict` reads them; each `--vars` column (a task's
//! target, or any covariate: age, a batch label) is numeric when every value parses as
//! a number (empty and `NA` are missing) and categorical otherwise. Writes
//! `latents.json` and `latents.png` (see `mtl::latents`).

use clap::Args;
use mtl::core::checkpoint::write_atomically;
use mtl::core::{Error, Result};
use mtl::{
    latent_associations_of_rows, Bundle, Covariate, LatentConfig, LatentReport, LatentSource,
};
use std::path::{Path, PathBuf};

/// What `mtl latents` is asked to do.
#[derive(Debug, Clone, Args)]
pub struct LatentArgs {
    /// An `mtl train` output directory, or the model bundle inside it (`model/`).
    pub bundle: PathBuf,
    /// The rows: a CSV file with the model's feature columns and the `--vars` columns.
    #[arg(long)]
    pub csv: PathBuf,
    /// The columns to compare the latent dimensions with (comma-separated).
    #[arg(long, value_delimiter = ',', required = true)]
    pub vars: Vec<String>,
    /// Read task K's features instead of the shared representation (for architectures
    /// without one, such as MMoE).
    #[arg(long)]
    pub task: Option<usize>,
    /// Equal-frequency bins per numeric variable for the mutual information.
    #[arg(long, default_value_t = 10)]
    pub bins: usize,
    /// Where to write latents.json and latents.png (default: `latents/<stem>` under the
    /// current directory, `<stem>` the CSV file's name without its extension).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Column names replacing the CSV file's header line (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub header: Option<Vec<String>>,
}

/// Computes the report and writes it; returns it with the directory written.
///
/// Errors: those of [`Bundle::load`] and [`Bundle::read_features_csv`]; a `--vars`
/// column that the file lacks ([`Error::Parse`] naming the header's columns); those of
/// [`latent_associations_of_rows`].
pub fn latents(args: &LatentArgs) -> Result<(LatentReport, PathBuf)> {
    let bundle = Bundle::load(&args.bundle)?;
    let x = bundle.read_features_csv(&args.csv, args.header.as_deref())?;
    let covariates = read_columns(&args.csv, args.header.as_deref(), &args.vars)?;
    let config = LatentConfig {
        source: args.task.map_or(LatentSource::Shared, LatentSource::Task),
        bins: args.bins,
        ..LatentConfig::default()
    };
    let report = latent_associations_of_rows(bundle.model(), x.view(), &covariates, &config)?;
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args
            .csv
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "rows".into());
        PathBuf::from("latents").join(stem)
    });
    std::fs::create_dir_all(&out).map_err(|source| Error::Io {
        path: out.clone(),
        source,
    })?;
    let json = serde_json::to_string_pretty(&report).map_err(|e| Error::config(e.to_string()))?;
    write_atomically(&out.join("latents.json"), json.as_bytes())?;
    report.write_heatmap(out.join("latents.png"))?;
    Ok((report, out))
}

/// The `names` columns of a CSV file, each numeric or categorical.
fn read_columns(
    path: &Path,
    header: Option<&[String]>,
    names: &[String],
) -> Result<Vec<Covariate>> {
    let parse = |line: u64, message: String| Error::Parse {
        path: path.to_path_buf(),
        line,
        message,
    };
    // A replacement header stands for the file's own header line, which may have
    // another number of names than the rows have fields.
    let mut reader = csv::ReaderBuilder::new()
        .flexible(header.is_some())
        .from_path(path)
        .map_err(|e| parse(1, e.to_string()))?;
    let columns: Vec<String> = match header {
        Some(h) => h.to_vec(),
        None => reader
            .headers()
            .map_err(|e| parse(1, e.to_string()))?
            .iter()
            .map(String::from)
            .collect(),
    };
    let index = names
        .iter()
        .map(|n| {
            columns
                .iter()
                .position(|c| c == n)
                .ok_or_else(|| parse(1, format!("no column `{n}` (the columns are {columns:?})")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut text: Vec<Vec<String>> = vec![Vec::new(); names.len()];
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| parse(i as u64 + 2, e.to_string()))?;
        for (j, &c) in index.iter().enumerate() {
            text[j].push(record.get(c).unwrap_or("").trim().to_string());
        }
    }
    let missing = |v: &str| v.is_empty() || v == "NA";
    Ok(names
        .iter()
        .zip(text)
        .map(|(name, values)| {
            let numeric: Option<Vec<f64>> = values
                .iter()
                .map(|v| {
                    if missing(v) {
                        Some(f64::NAN)
                    } else {
                        v.parse().ok()
                    }
                })
                .collect();
            match numeric {
                Some(v) => Covariate::numeric(name.clone(), v),
                None => Covariate::categorical(
                    name.clone(),
                    values
                        .into_iter()
                        .map(|v| if missing(&v) { String::new() } else { v })
                        .collect(),
                ),
            }
        })
        .collect())
}
