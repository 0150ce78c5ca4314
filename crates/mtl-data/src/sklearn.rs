//! Two of scikit-learn's bundled data sets as multi-task problems: Linnerud (three
//! exercise and three physiological measurements of 20 men) and the 8×8 digits.

use crate::dataset::MultiTaskDataset;
use crate::target::TaskData;
use flate2::read::MultiGzDecoder;
use mtl_core::{Error, Result};
use ndarray::{Array1, Array2};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Which Linnerud measurements are the targets; the other three are the features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinnerudTargets {
    /// Targets `Weight`, `Waist`, `Pulse` from features `Chins`, `Situps`, `Jumps`
    /// (scikit-learn's orientation).
    Physiological,
    /// Targets `Chins`, `Situps`, `Jumps` from features `Weight`, `Waist`, `Pulse`.
    Exercise,
}

/// Linnerud: 20 rows; three regression tasks (one output each) predicted from the other
/// three measurements, unscaled. Reads
/// `<root>/sklearn-bundled/linnerud_{exercise,physiological}.csv` (space-separated, one
/// header line); pass [`data_root("sklearn-bundled")`](crate::data_root).
///
/// ```no_run
/// use mtl_data::{data_root, linnerud, LinnerudTargets};
/// let ds = linnerud(data_root("sklearn-bundled")?, LinnerudTargets::Physiological)?;
/// assert_eq!((ds.len(), ds.num_features()), (20, 3));
/// assert_eq!(ds.task_names(), ["Weight", "Waist", "Pulse"]);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn linnerud(root: impl AsRef<Path>, targets: LinnerudTargets) -> Result<MultiTaskDataset> {
    let dir = root.as_ref().join("sklearn-bundled");
    let (ex_names, exercise) = read_table(&dir.join("linnerud_exercise.csv"), b' ', true)?;
    let (phys_names, physiological) =
        read_table(&dir.join("linnerud_physiological.csv"), b' ', true)?;
    if exercise.nrows() != physiological.nrows() {
        return Err(Error::RowCount {
            what: "linnerud_physiological.csv".into(),
            expected: exercise.nrows(),
            got: physiological.nrows(),
        });
    }
    let (features, names, y) = match targets {
        LinnerudTargets::Physiological => (exercise, phys_names, physiological),
        LinnerudTargets::Exercise => (physiological, ex_names, exercise),
    };
    let tasks = names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let column = y.column(j).to_owned().insert_axis(ndarray::Axis(1));
            TaskData::regression(name.as_str(), column)
        })
        .collect();
    MultiTaskDataset::new(features, tasks)
}

/// The 8×8 digits (1,797 images, UCI optdigits as scikit-learn ships them): features
/// the 64 pixels scaled from `0..=16` to `[0, 1]`; tasks `"digit"` (10 classes),
/// `"odd"` (binary: the digit is odd) and `"ge5"` (binary: the digit is 5 or more). The
/// two binary tasks are functions of the first, so a shared model has an easy time
/// relating them. Reads `<root>/sklearn-bundled/digits.csv.gz` (comma-separated, no
/// header, the label last); pass [`data_root("sklearn-bundled")`](crate::data_root).
///
/// ```no_run
/// use mtl_data::{data_root, digits};
/// let ds = digits(data_root("sklearn-bundled")?)?;
/// assert_eq!((ds.len(), ds.num_features()), (1797, 64));
/// assert_eq!(ds.task_names(), ["digit", "odd", "ge5"]);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn digits(root: impl AsRef<Path>) -> Result<MultiTaskDataset> {
    let path = root.as_ref().join("sklearn-bundled").join("digits.csv.gz");
    let (_, table) = read_table(&path, b',', false)?;
    if table.ncols() != 65 {
        return Err(Error::Parse {
            path,
            line: 1,
            message: format!(
                "expected 65 columns (64 pixels and a label), found {}",
                table.ncols()
            ),
        });
    }
    let mut labels = Array1::<i64>::zeros(table.nrows());
    for (r, &v) in table.column(64).iter().enumerate() {
        if v.fract() != 0.0 || !(0.0..=9.0).contains(&v) {
            return Err(Error::Parse {
                path,
                line: r as u64 + 1,
                message: format!("label `{v}` is not a digit 0-9"),
            });
        }
        labels[r] = v as i64;
    }
    let features = table.slice(ndarray::s![.., ..64]).mapv(|p| p / 16.0);
    let odd = labels.mapv(|d| (d % 2) as f32);
    let ge5 = labels.mapv(|d| f32::from(u8::from(d >= 5)));
    let names = (0..10).map(|d| d.to_string()).collect();
    MultiTaskDataset::new(
        features,
        vec![
            TaskData::classes("digit", labels, 10),
            TaskData::binary("odd", odd),
            TaskData::binary("ge5", ge5),
        ],
    )?
    .with_class_names(0, names)
}

/// Reads a numeric table (gunzipping `.gz` files): optional header names, then rows of
/// finite numbers, all the same length. Separators may repeat (`a  b`).
fn read_table(path: &Path, sep: u8, header: bool) -> Result<(Vec<String>, Array2<f32>)> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut text = String::new();
    if path.extension().is_some_and(|e| e == "gz") {
        MultiGzDecoder::new(file).read_to_string(&mut text)
    } else {
        std::io::BufReader::new(file).read_to_string(&mut text)
    }
    .map_err(|e| Error::Parse {
        path: PathBuf::from(path),
        line: 0,
        message: format!("cannot read the text (a truncated or corrupt gzip stream?): {e}"),
    })?;
    let split = |line: &str| -> Vec<String> {
        line.split(sep as char)
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let names = if header {
        lines.next().map(|(_, l)| split(l)).unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut values = Vec::new();
    let mut width = if header { Some(names.len()) } else { None };
    let mut rows = 0;
    for (i, line) in lines {
        let fields = split(line);
        let expected = *width.get_or_insert(fields.len());
        if fields.len() != expected {
            return Err(Error::Parse {
                path: path.to_path_buf(),
                line: i as u64 + 1,
                message: format!("expected {expected} fields, found {}", fields.len()),
            });
        }
        for f in &fields {
            match f.parse::<f32>() {
                Ok(v) if v.is_finite() => values.push(v),
                _ => {
                    return Err(Error::Parse {
                        path: path.to_path_buf(),
                        line: i as u64 + 1,
                        message: format!("cannot read `{f}` as a number"),
                    })
                }
            }
        }
        rows += 1;
    }
    let width = width.unwrap_or(0);
    let table = Array2::from_shape_vec((rows, width), values)
        .map_err(|e| Error::shape(format!("table {}", path.display()), "rows × columns", e))?;
    Ok((names, table))
}
