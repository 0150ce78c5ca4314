//! Grouped data for classical multi-task models: one table whose rows belong to groups
//! (schools, counties, districts), each group a task with its own design matrix `Xₜ`
//! and target `yₜ` over the same features. This is the shape regularized multi-task
//! linear models and hierarchical Bayesian models take, where a deep model would take a
//! [`MultiTaskDataset`](crate::MultiTaskDataset) with one target column per task.
//!
//! Features are `f64` and carry no intercept column: the models fit their own
//! intercepts. A categorical feature becomes one indicator column per level but the
//! first (in sorted order), named `column=level`, so the design stays full rank beside
//! an intercept.

use mtl_core::{Error, Result};
use ndarray::{Array1, Array2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// One task's rows: its design matrix and target.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupedTask {
    /// The group's value in the task column (a school number, a county name).
    pub name: String,
    /// `[rows, features]`.
    pub x: Array2<f64>,
    /// `[rows]`: a real value, or 0/1 for a binary target.
    pub y: Array1<f64>,
}

/// Tasks over one feature set. Every task has at least one row.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupedData {
    /// The design's column names (`column=level` for a categorical level).
    pub feature_names: Vec<String>,
    /// The target column's name.
    pub target_name: String,
    /// Whether the target is 0/1 (logistic models) rather than real (regression).
    pub binary: bool,
    /// The tasks, in the order their groups first appear in the file.
    pub tasks: Vec<GroupedTask>,
}

/// How to read a grouped CSV file: which column names the task, which is the target,
/// which are features.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupedCsv {
    /// The file.
    pub path: PathBuf,
    /// The column whose value names each row's task.
    pub task_column: String,
    /// The target column.
    pub target: String,
    /// For a binary target, the value that counts as 1 (every other value must be one
    /// single other level, which counts as 0); `None` for a real-valued target.
    pub positive: Option<String>,
    /// The feature columns, numeric or categorical (a column with any value that is
    /// not a number is categorical).
    pub features: Vec<String>,
}

impl GroupedData {
    /// The number of tasks.
    pub fn n_tasks(&self) -> usize {
        self.tasks.len()
    }

    /// The number of feature columns.
    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    /// The number of rows over every task.
    pub fn n_rows(&self) -> usize {
        self.tasks.iter().map(|t| t.y.len()).sum()
    }

    /// Every task's rows stacked (the pooled, one-model-for-all baseline), with each
    /// row's task index.
    pub fn pooled(&self) -> (Array2<f64>, Array1<f64>, Vec<usize>) {
        let mut x = Array2::zeros((self.n_rows(), self.n_features()));
        let mut y = Array1::zeros(self.n_rows());
        let mut task = Vec::with_capacity(self.n_rows());
        let mut at = 0;
        for (k, t) in self.tasks.iter().enumerate() {
            let n = t.y.len();
            x.slice_mut(ndarray::s![at..at + n, ..]).assign(&t.x);
            y.slice_mut(ndarray::s![at..at + n]).assign(&t.y);
            task.extend(std::iter::repeat_n(k, n));
            at += n;
        }
        (x, y, task)
    }

    /// A seeded split of each task's rows: `round(test_fraction · n)` rows to the test
    /// side, but every task keeps at least one training row (a task of one row has no
    /// test rows). Tasks with no test rows are still listed on the test side, empty,
    /// so task `k` is task `k` on both sides.
    ///
    /// Errors: a fraction outside `[0, 1)`.
    pub fn split(&self, test_fraction: f64, seed: u64) -> Result<(GroupedData, GroupedData)> {
        if !(0.0..1.0).contains(&test_fraction) {
            return Err(Error::config(format!(
                "test fraction must be in [0, 1), got {test_fraction}"
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for t in &self.tasks {
            let n = t.y.len();
            let mut rows: Vec<usize> = (0..n).collect();
            rows.shuffle(&mut rng);
            let n_test = ((test_fraction * n as f64).round() as usize).min(n - 1);
            let (te, tr) = rows.split_at(n_test);
            let mut tr = tr.to_vec();
            let mut te = te.to_vec();
            tr.sort_unstable();
            te.sort_unstable();
            train.push(t.select(&tr));
            test.push(t.select(&te));
        }
        Ok((self.with_tasks(train), self.with_tasks(test)))
    }

    fn with_tasks(&self, tasks: Vec<GroupedTask>) -> GroupedData {
        GroupedData {
            feature_names: self.feature_names.clone(),
            target_name: self.target_name.clone(),
            binary: self.binary,
            tasks,
        }
    }
}

impl GroupedTask {
    /// The rows `rows` of this task.
    pub fn select(&self, rows: &[usize]) -> GroupedTask {
        GroupedTask {
            name: self.name.clone(),
            x: self.x.select(Axis(0), rows),
            y: self.y.select(Axis(0), rows),
        }
    }
}

/// Reads a grouped CSV file (with a header line).
///
/// Errors: [`Error::Io`] for an unreadable file; [`Error::Parse`] with the file and
/// line for a missing column, an empty or `NA` value, or a binary target with a third
/// level; [`Error::Config`] for no features or no rows.
pub fn read_grouped_csv(spec: &GroupedCsv) -> Result<GroupedData> {
    let path = &spec.path;
    let parse_err = |line: u64, message: String| Error::Parse {
        path: path.clone(),
        line,
        message,
    };
    if spec.features.is_empty() {
        return Err(Error::config(format!(
            "{}: a grouped data set needs at least one feature column",
            path.display()
        )));
    }
    let mut reader = ::csv::ReaderBuilder::new()
        .from_path(path)
        .map_err(|e| Error::Io {
            path: path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
    let header = reader
        .headers()
        .map_err(|e| parse_err(1, e.to_string()))?
        .clone();
    let column = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| {
            let known: Vec<&str> = header.iter().collect();
            parse_err(1, format!("no column `{name}` (the header has {known:?})"))
        })
    };
    let task_col = column(&spec.task_column)?;
    let target_col = column(&spec.target)?;
    let feature_cols = spec
        .features
        .iter()
        .map(|f| column(f))
        .collect::<Result<Vec<_>>>()?;

    // Read every field as text first: a column is categorical if any value is not a
    // number, which is only known after the last row.
    let mut rows: Vec<(String, String, Vec<String>, u64)> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i as u64 + 2;
        let record = record.map_err(|e| parse_err(line, e.to_string()))?;
        let field = |c: usize, name: &str| -> Result<String> {
            let v = record.get(c).unwrap_or("").trim();
            if v.is_empty() || v == "NA" {
                return Err(parse_err(line, format!("column `{name}` has no value")));
            }
            Ok(v.to_string())
        };
        let feats = feature_cols
            .iter()
            .zip(&spec.features)
            .map(|(&c, name)| field(c, name))
            .collect::<Result<Vec<_>>>()?;
        rows.push((
            field(task_col, &spec.task_column)?,
            field(target_col, &spec.target)?,
            feats,
            line,
        ));
    }
    if rows.is_empty() {
        return Err(Error::config(format!("{}: no data rows", path.display())));
    }

    // Each feature: numeric, or the sorted levels whose first is the reference.
    let mut encoders: Vec<Option<Vec<String>>> = Vec::new();
    let mut feature_names = Vec::new();
    for (j, name) in spec.features.iter().enumerate() {
        let numeric = rows.iter().all(|r| r.2[j].parse::<f64>().is_ok());
        if numeric {
            encoders.push(None);
            feature_names.push(name.clone());
        } else {
            let levels: BTreeSet<&str> = rows.iter().map(|r| r.2[j].as_str()).collect();
            let levels: Vec<String> = levels.into_iter().map(String::from).collect();
            feature_names.extend(levels[1..].iter().map(|l| format!("{name}={l}")));
            encoders.push(Some(levels));
        }
    }

    if let Some(pos) = &spec.positive {
        // A binary target has the positive value and exactly one other.
        let mut other: Option<&str> = None;
        for (_, target, _, line) in &rows {
            if target == pos || other == Some(target.as_str()) {
                continue;
            }
            if let Some(first) = other {
                return Err(parse_err(
                    *line,
                    format!(
                        "binary target `{}` has a third level `{target}` besides `{pos}` and `{first}`",
                        spec.target
                    ),
                ));
            }
            other = Some(target);
        }
    }

    let mut order: Vec<String> = Vec::new();
    let mut members: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        members
            .entry(r.0.clone())
            .or_insert_with(|| {
                order.push(r.0.clone());
                Vec::new()
            })
            .push(i);
    }
    let mut tasks = Vec::with_capacity(order.len());
    for name in order {
        let idx = &members[&name];
        let mut x = Array2::zeros((idx.len(), feature_names.len()));
        let mut y = Array1::zeros(idx.len());
        for (r, &i) in idx.iter().enumerate() {
            let (_, target, feats, line) = &rows[i];
            y[r] = match &spec.positive {
                Some(pos) => f64::from(u8::from(target == pos)),
                None => target.parse::<f64>().map_err(|_| {
                    parse_err(
                        *line,
                        format!("target `{}` value `{target}` is not a number", spec.target),
                    )
                })?,
            };
            if !y[r].is_finite() {
                return Err(parse_err(
                    *line,
                    format!("target `{}` is not finite", spec.target),
                ));
            }
            let mut c = 0;
            for (value, encoder) in feats.iter().zip(&encoders) {
                match encoder {
                    None => {
                        let v: f64 = value.parse().unwrap_or(f64::NAN);
                        if !v.is_finite() {
                            return Err(parse_err(
                                *line,
                                format!("feature value `{value}` is not finite"),
                            ));
                        }
                        x[[r, c]] = v;
                        c += 1;
                    }
                    Some(levels) => {
                        for level in &levels[1..] {
                            x[[r, c]] = f64::from(u8::from(level == value));
                            c += 1;
                        }
                    }
                }
            }
        }
        tasks.push(GroupedTask { name, x, y });
    }
    Ok(GroupedData {
        feature_names,
        target_name: spec.target.clone(),
        binary: spec.positive.is_some(),
        tasks,
    })
}

fn spec(data_dir: &Path, file: &str, task: &str, target: &str, features: &[&str]) -> GroupedCsv {
    GroupedCsv {
        path: data_dir.join(file),
        task_column: task.into(),
        target: target.into(),
        positive: None,
        features: features.iter().map(|s| s.to_string()).collect(),
    }
}

/// The 65 London schools (Goldstein et al. 1993; `data/mlmrev/exam.csv`): each school
/// a regression task, the normalised exam score `normexam` as target, and the pupil's
/// London reading test score `standLRT`, `sex`, verbal-reasoning band `vr` and intake
/// band `intake` as features (4 059 pupils). `data_dir` is the folder holding
/// `mlmrev/` ([`data_root`](crate::data_root)`("mlmrev")`).
///
/// ```
/// let d = mtl_data::london_schools(mtl_data::data_root("mlmrev")?)?;
/// assert_eq!((d.n_tasks(), d.n_rows()), (65, 4059));
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn london_schools(data_dir: impl AsRef<Path>) -> Result<GroupedData> {
    read_grouped_csv(&spec(
        data_dir.as_ref(),
        "mlmrev/exam.csv",
        "school",
        "normexam",
        &["standLRT", "sex", "vr", "intake"],
    ))
}

/// The Minnesota radon homes (Gelman & Hill 2007; `data/radon/radon.csv`): each of 85
/// counties a regression task, `log_radon` as target and `floor` (0 basement, 1 first
/// floor) as the feature (919 homes). The county's soil uranium is a group-level
/// covariate; [`radon_uranium`] returns it per task.
pub fn radon(data_dir: impl AsRef<Path>) -> Result<GroupedData> {
    read_grouped_csv(&spec(
        data_dir.as_ref(),
        "radon/radon.csv",
        "county",
        "log_radon",
        &["floor"],
    ))
}

/// The log soil-uranium level of each county of [`radon`], in its task order.
pub fn radon_uranium(data_dir: impl AsRef<Path>) -> Result<Vec<f64>> {
    let d = read_grouped_csv(&spec(
        data_dir.as_ref(),
        "radon/radon.csv",
        "county",
        "log_radon",
        &["log_uranium"],
    ))?;
    Ok(d.tasks.iter().map(|t| t.x[[0, 0]]).collect())
}

/// The Bangladesh Fertility Survey (`data/mlmrev/contraception.csv`): each of 60
/// districts a logistic task, contraceptive use (`use = Y`) as the 0/1 target, and the
/// woman's centred `age`, living children `livch` and `urban` residence as features
/// (1 934 women).
pub fn contraception(data_dir: impl AsRef<Path>) -> Result<GroupedData> {
    let mut s = spec(
        data_dir.as_ref(),
        "mlmrev/contraception.csv",
        "district",
        "use",
        &["age", "livch", "urban"],
    );
    s.positive = Some("Y".into());
    read_grouped_csv(&s)
}
