//! Which shared latent dimension tracks which task or covariate: for a trained model of
//! any architecture, each dimension of its shared representation is compared with each
//! task's target and with covariates the user supplies (age, inflammation, a batch
//! label), by correlation and by mutual information. A dimension that follows a
//! nuisance covariate closely (a batch effect) or serves one task alone shows up at the
//! top of the ranked list and as a bright cell of the heatmap.
//!
//! The representation is [`TaskFeatures::shared`](mtl_core::TaskFeatures) from an
//! evaluation-mode forward pass; architectures without one (MMoE, cross-stitch) are read
//! through one task's features instead ([`LatentSource::Task`]). A representation with
//! more than two dimensions is averaged to one value per row and channel: `[B, T, D]`
//! (tokens) over `T`, `[B, C, H, W]` (feature maps) over `H` and `W`.
//!
//! The measures:
//!
//! * **correlation**: Pearson's r for a numeric variable (binary targets included:
//!   the point-biserial r); the correlation ratio η = √(SS_between / SS_total) ∈ [0, 1]
//!   for a categorical one (class targets, categorical covariates), since a signed
//!   correlation with unordered labels means nothing;
//! * **mutual information** in nats, the plug-in estimate over equal-frequency bins
//!   (`bins` of them; categorical variables use their own levels), which catches
//!   dependence a correlation misses (a dimension that encodes |age − 50|). It is biased
//!   upward by about (cells − 1) / 2n for independent variables, so compare dimensions
//!   with each other rather than against zero.
//!
//! Rows where a task has no label are left out of that task's association only.

use crate::model::MultiTaskModel;
use crate::plots::plot_grid;
use mtl_core::{Error, Result};
use mtl_data::JointData;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Kind, Tensor};

/// Where the latent dimensions come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatentSource {
    /// The representation every task reads (hard sharing's trunk output).
    #[default]
    Shared,
    /// The features head `k` reads (for architectures with no single shared tensor).
    Task(usize),
}

/// Values per row of a variable to compare the latents with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Values {
    /// Real values (NaN marks a missing value, left out).
    Numeric(Vec<f64>),
    /// Labels (any strings; the empty string marks a missing value, left out).
    Categorical(Vec<String>),
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::Numeric(v) => v.len(),
            Values::Categorical(v) => v.len(),
        }
    }
}

/// A covariate: a named value per dataset row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Covariate {
    /// Its name in the report.
    pub name: String,
    /// One value per row, in the dataset's row order.
    pub values: Values,
}

impl Covariate {
    /// A numeric covariate.
    pub fn numeric(name: impl Into<String>, values: Vec<f64>) -> Self {
        Covariate {
            name: name.into(),
            values: Values::Numeric(values),
        }
    }
    /// A categorical covariate.
    pub fn categorical(name: impl Into<String>, values: Vec<String>) -> Self {
        Covariate {
            name: name.into(),
            values: Values::Categorical(values),
        }
    }
}

/// Settings of [`latent_associations`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatentConfig {
    /// Which representation to read.
    pub source: LatentSource,
    /// Equal-frequency bins per numeric variable for the mutual information (≥ 2).
    pub bins: usize,
    /// Rows per forward pass.
    pub batch_size: usize,
}

impl Default for LatentConfig {
    fn default() -> Self {
        LatentConfig {
            source: LatentSource::Shared,
            bins: 10,
            batch_size: 256,
        }
    }
}

/// One latent dimension against one variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Association {
    /// The latent dimension.
    pub dim: usize,
    /// The task target or covariate.
    pub variable: String,
    /// Pearson's r (numeric) or the correlation ratio η (categorical).
    pub correlation: f64,
    /// Mutual information in nats.
    pub mutual_information: f64,
    /// The rows compared (labelled and not missing).
    pub rows: usize,
}

/// Every latent dimension against every task target and covariate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatentReport {
    /// Where the latents came from.
    pub source: LatentSource,
    /// The number of latent dimensions.
    pub dims: usize,
    /// The variables, task targets first (a multi-output regression target as
    /// `task[j]`), then covariates.
    pub variables: Vec<String>,
    /// `correlation[d][v]`.
    pub correlation: Vec<Vec<f64>>,
    /// `mutual_information[d][v]`, nats.
    pub mutual_information: Vec<Vec<f64>>,
    /// Tasks whose targets are not one value per row (dense maps, token tags), left out.
    pub skipped_tasks: Vec<String>,
    /// Every (dimension, variable) pair, strongest mutual information first.
    pub ranked: Vec<Association>,
}

impl LatentReport {
    /// The `n` dimensions most associated with `variable`, strongest first.
    pub fn top_for(&self, variable: &str, n: usize) -> Vec<&Association> {
        self.ranked
            .iter()
            .filter(|a| a.variable == variable)
            .take(n)
            .collect()
    }

    /// The `n` strongest associations as a text table, one line each.
    pub fn ranked_table(&self, n: usize) -> String {
        let mut out = format!(
            "{:>5}  {:<24} {:>12} {:>10} {:>7}\n",
            "dim", "variable", "correlation", "MI (nats)", "rows"
        );
        for a in self.ranked.iter().take(n) {
            out.push_str(&format!(
                "{:>5}  {:<24} {:>+12.3} {:>10.3} {:>7}\n",
                format!("z{}", a.dim),
                a.variable,
                a.correlation,
                a.mutual_information,
                a.rows
            ));
        }
        out
    }

    /// Writes the correlation heatmap (dimensions as rows, variables as columns) as PNG.
    pub fn write_heatmap(&self, path: impl AsRef<Path>) -> Result<()> {
        let rows: Vec<String> = (0..self.dims).map(|d| format!("z{d}")).collect();
        plot_grid(
            &self.correlation,
            &rows,
            &self.variables,
            "latent dimension vs variable: correlation (η for categorical)",
            1.0,
            path,
        )
    }
}

/// Reads the latents of `model` over every row of `data` and compares each dimension
/// with each task's target and each covariate.
///
/// Errors: a covariate whose length is not the row count ([`Error::RowCount`]), a
/// non-finite latent or covariate value, `bins < 2`, an architecture with no shared
/// representation under [`LatentSource::Shared`], a task index out of range, or no rows.
pub fn latent_associations(
    model: &MultiTaskModel,
    data: &dyn JointData,
    covariates: &[Covariate],
    config: &LatentConfig,
) -> Result<LatentReport> {
    check_request(model, data.len(), covariates, config)?;
    let (latents, targets, skipped) = collect(model, data, config)?;
    let mut variables: Vec<(String, Values)> = targets.into_values().collect();
    variables.extend(
        covariates
            .iter()
            .map(|c| (c.name.clone(), c.values.clone())),
    );
    Ok(associate(&latents, variables, skipped, config))
}

/// [`latent_associations`] on raw feature rows (as [`MultiTaskModel::predict`] takes
/// them: the model's feature standardisation is applied) against `covariates` alone,
/// for data without task targets, such as a CSV file read through a saved bundle.
///
/// Errors: as [`latent_associations`], and a non-finite feature.
pub fn latent_associations_of_rows(
    model: &MultiTaskModel,
    x: ndarray::ArrayView2<'_, f32>,
    covariates: &[Covariate],
    config: &LatentConfig,
) -> Result<LatentReport> {
    check_request(model, x.nrows(), covariates, config)?;
    let mut latents = Vec::with_capacity(x.nrows());
    model.for_each_input_chunk(x, config.batch_size, "latent input", |start, xs| {
        latents.extend(batch_latents(model, xs, config.source, start)?);
        Ok(())
    })?;
    let variables = covariates
        .iter()
        .map(|c| (c.name.clone(), c.values.clone()))
        .collect();
    Ok(associate(&latents, variables, Vec::new(), config))
}

/// The checks every entry point makes before reading any latent.
fn check_request(
    model: &MultiTaskModel,
    n: usize,
    covariates: &[Covariate],
    config: &LatentConfig,
) -> Result<()> {
    if config.bins < 2 {
        return Err(Error::config(format!(
            "latent associations need at least 2 bins, got {}",
            config.bins
        )));
    }
    if n == 0 {
        return Err(Error::config("latent associations need at least one row"));
    }
    for c in covariates {
        if c.values.len() != n {
            return Err(Error::RowCount {
                what: format!("covariate `{}`", c.name),
                expected: n,
                got: c.values.len(),
            });
        }
        if let Values::Numeric(v) = &c.values {
            if let Some(i) = v.iter().position(|x| x.is_infinite()) {
                return Err(Error::config(format!(
                    "covariate `{}` is infinite at row {i}",
                    c.name
                )));
            }
        }
    }
    if let LatentSource::Task(k) = config.source {
        if k >= model.num_tasks() {
            return Err(Error::TaskCount {
                context: "latent source task".into(),
                expected: model.num_tasks(),
                got: k + 1,
            });
        }
    }
    Ok(())
}

/// Every latent dimension against every variable, ranked.
fn associate(
    latents: &[Vec<f64>],
    variables: Vec<(String, Values)>,
    skipped: Vec<String>,
    config: &LatentConfig,
) -> LatentReport {
    let n = latents.len();
    let dims = latents.first().map_or(0, Vec::len);
    let mut correlation = vec![vec![0.0; variables.len()]; dims];
    let mut mutual_information = vec![vec![0.0; variables.len()]; dims];
    let mut ranked = Vec::with_capacity(dims * variables.len());
    for (v, (name, values)) in variables.iter().enumerate() {
        let present: Vec<usize> = match values {
            Values::Numeric(x) => (0..n).filter(|&i| !x[i].is_nan()).collect(),
            Values::Categorical(x) => (0..n).filter(|&i| !x[i].is_empty()).collect(),
        };
        let var_bins = match values {
            Values::Numeric(x) => equal_frequency_bins(
                &present.iter().map(|&i| x[i]).collect::<Vec<_>>(),
                config.bins,
            ),
            Values::Categorical(x) => level_codes(present.iter().map(|&i| x[i].as_str())),
        };
        for d in 0..dims {
            let z: Vec<f64> = present.iter().map(|&i| latents[i][d]).collect();
            let r = match values {
                Values::Numeric(x) => {
                    pearson(&z, &present.iter().map(|&i| x[i]).collect::<Vec<_>>())
                }
                Values::Categorical(_) => correlation_ratio(&z, &var_bins),
            };
            let mi = mutual_information_of(&equal_frequency_bins(&z, config.bins), &var_bins);
            correlation[d][v] = r;
            mutual_information[d][v] = mi;
            ranked.push(Association {
                dim: d,
                variable: name.clone(),
                correlation: r,
                mutual_information: mi,
                rows: present.len(),
            });
        }
    }
    ranked.sort_by(|a, b| {
        b.mutual_information
            .total_cmp(&a.mutual_information)
            .then(b.correlation.abs().total_cmp(&a.correlation.abs()))
    });
    LatentReport {
        source: config.source,
        dims,
        variables: variables.into_iter().map(|(name, _)| name).collect(),
        correlation,
        mutual_information,
        skipped_tasks: skipped,
        ranked,
    }
}

/// Latents (row-major, one `Vec` per row) and each per-row task target by name.
type Collected = (
    Vec<Vec<f64>>,
    BTreeMap<usize, (String, Values)>,
    Vec<String>,
);

fn collect(
    model: &MultiTaskModel,
    data: &dyn JointData,
    config: &LatentConfig,
) -> Result<Collected> {
    let names = data.task_names();
    let mut latents: Vec<Vec<f64>> = Vec::with_capacity(data.len());
    // Keyed by (task, output) so the variables keep task order.
    let mut targets: BTreeMap<usize, (String, Values)> = BTreeMap::new();
    let mut skipped: Vec<String> = Vec::new();
    let _guard = tch::no_grad_guard();
    for batch in data.joint_batches(config.batch_size.max(1), None)? {
        let batch = batch?;
        let x = batch.x.to_device(model.device());
        latents.extend(batch_latents(model, &x, config.source, latents.len())?);
        for (k, target) in batch.targets.iter().enumerate() {
            let values = &target.values;
            let mask: Option<Vec<bool>> = match &target.mask {
                Some(m) => Some(Vec::<bool>::try_from(
                    &m.to_kind(Kind::Bool).flatten(0, -1),
                )?),
                None => None,
            };
            let labelled = |i: usize| mask.as_ref().is_none_or(|m| m[i]);
            match (values.kind(), values.dim()) {
                (Kind::Int64, 1) => {
                    let v = Vec::<i64>::try_from(values)?;
                    let entry = targets
                        .entry(k * 1_000)
                        .or_insert_with(|| (names[k].clone(), Values::Categorical(Vec::new())));
                    if let Values::Categorical(out) = &mut entry.1 {
                        out.extend(v.iter().enumerate().map(|(i, c)| {
                            if labelled(i) {
                                c.to_string()
                            } else {
                                String::new()
                            }
                        }));
                    }
                }
                (_, 1) | (_, 2) if values.is_floating_point() => {
                    let cols = if values.dim() == 1 {
                        1
                    } else {
                        values.size()[1] as usize
                    };
                    let v = Vec::<Vec<f64>>::try_from(
                        &values.to_kind(Kind::Double).reshape([-1, cols as i64]),
                    )?;
                    for j in 0..cols {
                        let name = if cols == 1 {
                            names[k].clone()
                        } else {
                            format!("{}[{j}]", names[k])
                        };
                        let entry = targets
                            .entry(k * 1_000 + j)
                            .or_insert_with(|| (name, Values::Numeric(Vec::new())));
                        if let Values::Numeric(out) = &mut entry.1 {
                            out.extend(v.iter().enumerate().map(|(i, row)| {
                                if labelled(i) {
                                    row[j]
                                } else {
                                    f64::NAN
                                }
                            }));
                        }
                    }
                }
                _ => {
                    if !skipped.contains(&names[k]) {
                        skipped.push(names[k].clone());
                    }
                }
            }
        }
    }
    Ok((latents, targets, skipped))
}

/// The latents of one batch `xs` (rows numbered from `first_row` in errors).
fn batch_latents(
    model: &MultiTaskModel,
    xs: &Tensor,
    source: LatentSource,
    first_row: usize,
) -> Result<Vec<Vec<f64>>> {
    let fwd = model.forward_t(xs, false)?;
    let rep = match source {
        LatentSource::Shared => fwd.features.shared.ok_or_else(|| {
            Error::config(format!(
                "the {} architecture has no shared representation; read one task's \
                 features with LatentSource::Task(k)",
                model.architecture().name()
            ))
        })?,
        LatentSource::Task(k) => fwd.features.per_task[k].shallow_clone(),
    };
    let rep = per_row(&rep)?;
    let rows: Vec<Vec<f64>> = Vec::<Vec<f64>>::try_from(&rep)?;
    if let Some(bad) = rows.iter().flatten().position(|v| !v.is_finite()) {
        let width = rows[0].len().max(1);
        return Err(Error::NonFinite {
            what: format!(
                "latent dimension {} of row {}",
                bad % width,
                first_row + bad / width
            ),
            task: None,
            step: None,
            value: format!("{}", rows[bad / width][bad % width]),
        });
    }
    Ok(rows)
}

/// One value per row and channel: `[B, D]` as is, `[B, T, D]` averaged over `T`,
/// `[B, C, H, W]` over `H` and `W`.
fn per_row(rep: &Tensor) -> Result<Tensor> {
    let rep = rep.to_device(tch::Device::Cpu).to_kind(Kind::Double);
    Ok(match rep.dim() {
        2 => rep,
        3 => rep.f_mean_dim(1, false, Kind::Double)?,
        4 => rep.f_mean_dim([2, 3].as_slice(), false, Kind::Double)?,
        d => {
            return Err(Error::shape(
                "latent representation",
                "[B, D], [B, T, D] or [B, C, H, W]",
                format!("{d} dimensions"),
            ))
        }
    })
}

fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    if x.len() < 2 {
        return 0.0;
    }
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    // A constant dimension (a dead unit) carries no information: r = 0, not NaN.
    if sxx <= 0.0 || syy <= 0.0 {
        0.0
    } else {
        sxy / (sxx * syy).sqrt()
    }
}

/// η = √(SS_between / SS_total) of `x` grouped by `codes`.
fn correlation_ratio(x: &[f64], codes: &[usize]) -> f64 {
    let n = x.len() as f64;
    if x.is_empty() {
        return 0.0;
    }
    let mean = x.iter().sum::<f64>() / n;
    let groups = codes.iter().max().map_or(0, |m| m + 1);
    let (mut sum, mut count) = (vec![0.0; groups], vec![0.0; groups]);
    for (&v, &c) in x.iter().zip(codes) {
        sum[c] += v;
        count[c] += 1.0;
    }
    let total: f64 = x.iter().map(|v| (v - mean) * (v - mean)).sum();
    let between: f64 = (0..groups)
        .filter(|&g| count[g] > 0.0)
        .map(|g| count[g] * (sum[g] / count[g] - mean).powi(2))
        .sum();
    if total <= 0.0 {
        0.0
    } else {
        (between / total).clamp(0.0, 1.0).sqrt()
    }
}

/// Each value's bin among `bins` equal-frequency bins (ties share a bin, so a
/// variable with few distinct values gets fewer bins).
fn equal_frequency_bins(x: &[f64], bins: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut codes = vec![0; x.len()];
    let n = x.len().max(1);
    let mut bin = 0;
    for (rank, &i) in order.iter().enumerate() {
        let target = rank * bins / n;
        // Move to a new bin only between distinct values.
        if target > bin && rank > 0 && x[i] != x[order[rank - 1]] {
            bin = target;
        }
        codes[i] = bin;
    }
    codes
}

fn level_codes<'a>(values: impl Iterator<Item = &'a str>) -> Vec<usize> {
    let mut levels: BTreeMap<&str, usize> = BTreeMap::new();
    let values: Vec<&str> = values.collect();
    for v in &values {
        let next = levels.len();
        levels.entry(v).or_insert(next);
    }
    values.iter().map(|v| levels[v]).collect()
}

/// Plug-in mutual information (nats) of two discrete codings of the same rows.
fn mutual_information_of(a: &[usize], b: &[usize]) -> f64 {
    let n = a.len() as f64;
    if a.is_empty() {
        return 0.0;
    }
    let mut joint: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    let mut pa: BTreeMap<usize, f64> = BTreeMap::new();
    let mut pb: BTreeMap<usize, f64> = BTreeMap::new();
    for (&x, &y) in a.iter().zip(b) {
        *joint.entry((x, y)).or_default() += 1.0;
        *pa.entry(x).or_default() += 1.0;
        *pb.entry(y).or_default() += 1.0;
    }
    joint
        .iter()
        .map(|(&(x, y), &c)| c / n * (c * n / (pa[&x] * pb[&y])).ln())
        .sum::<f64>()
        .max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutual_information_of_a_copy_is_its_entropy_and_of_independent_codes_near_zero() {
        let a: Vec<usize> = (0..1000).map(|i| i % 4).collect();
        assert!((mutual_information_of(&a, &a) - 4f64.ln()).abs() < 1e-12);
        let b: Vec<usize> = (0..1000).map(|i| (i / 4) % 4).collect();
        assert!(mutual_information_of(&a, &b) < 1e-2);
    }

    #[test]
    fn equal_frequency_bins_split_evenly_and_keep_ties_together() {
        let x: Vec<f64> = (0..100).map(f64::from).collect();
        let codes = equal_frequency_bins(&x, 4);
        for b in 0..4 {
            assert_eq!(codes.iter().filter(|&&c| c == b).count(), 25);
        }
        let ties = equal_frequency_bins(&[1.0, 1.0, 1.0, 1.0, 2.0, 2.0], 3);
        assert_eq!(ties, [0, 0, 0, 0, 2, 2]);
    }

    #[test]
    fn correlation_ratio_is_one_for_separated_groups_and_zero_for_equal_means() {
        let x = [0.0, 0.0, 5.0, 5.0];
        assert!((correlation_ratio(&x, &[0, 0, 1, 1]) - 1.0).abs() < 1e-12);
        assert!(correlation_ratio(&x, &[0, 1, 0, 1]).abs() < 1e-12);
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-12);
        assert_eq!(pearson(&[1.0, 1.0, 1.0], &[2.0, 4.0, 6.0]), 0.0);
    }
}
