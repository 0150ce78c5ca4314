//! The synthetic two-task regression data of Ma, Zhao, Yi, Chen, Hong & Chi, "Modeling
//! Task Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts", KDD
//! 2018, section 3.2, whose task relatedness is set by one number.
//!
//! Construction, for input dimension `d` and correlation score `p ∈ [−1, 1]`:
//!
//! 1. draw two orthogonal unit vectors `u₁, u₂ ∈ ℝ^d` (Gram–Schmidt on Gaussian draws);
//! 2. `w₁ = c·u₁`, `w₂ = c·(p·u₁ + √(1 − p²)·u₂)`, so `cos(w₁, w₂) = u₁ᵀ(w₂/c) = p`;
//! 3. draw rows `x ~ N(0, I_d)`;
//! 4. `y_i = w_iᵀx + Σ_{j=1}^{m} sin(α_j w_iᵀx + β_j) + ε_i`, `ε_i ~ N(0, 0.01)`.
//!
//! `c`, `m`, the scale of `α_j, β_j` (drawn once, shared by both tasks) and the noise
//! are set by [`MmoeSyntheticConfig`]; [`mmoe_synthetic`] uses its defaults. Because
//! of the sinusoids the Pearson correlation of the labels falls with `p` without
//! equalling it. Everything is drawn from one seeded ChaCha8 stream, so a seed fixes
//! the data set.

use crate::{MultiTaskDataset, TaskData};
use mtl_core::{Error, Result};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A standard normal draw (Box–Muller), so no distribution crate is needed.
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // 1 − U lies in (0, 1], keeping the logarithm finite.
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn unit(v: Vec<f64>) -> Vec<f64> {
    let n = dot(&v, &v).sqrt();
    v.into_iter().map(|x| x / n).collect()
}

/// How the sinusoid shapes `α_j, β_j` are chosen; the paper calls them "given
/// parameters" without values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SinusoidShapes {
    /// `α_j, β_j ~ N(0, s²)`, drawn once per seed and shared by both tasks.
    Normal(f64),
    /// `α_j = j`, `β_j = (j − 1)²` for `j = 1..m`, the same for every seed: the fixed
    /// values Google Research's generator for this data uses. Frequencies up to `m`
    /// make the labels oscillate fast along `w_iᵀx`, so a small network is short of
    /// capacity and sharing it between tasks costs more.
    Ladder,
}

/// The constants of the construction. [`Default`] gives `c = 1`, `m = 10`, label noise
/// of variance 0.01 (the paper's values) and sinusoid shapes `α_j, β_j ~ N(0, 1)`.
///
/// The shapes are "given parameters" in the paper's formula; their scale decides how
/// non-linear the tasks are. With unit scale the `m` sinusoids bend each label well
/// away from `w_iᵀx`; with a small one (`shape_std(0.1)`) they are nearly linear in it
/// and both labels are close to linear regressions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MmoeSyntheticConfig {
    /// The scale `c` of the task weight vectors.
    pub scale: f64,
    /// The number of sinusoids `m`.
    pub sinusoids: usize,
    /// The standard deviation of `α_j` and `β_j` (under [`SinusoidShapes::Normal`]).
    pub shape_std: f64,
    /// Fixed `α_j = j, β_j = (j − 1)²` instead of normal draws when true
    /// ([`SinusoidShapes::Ladder`]).
    pub ladder_shapes: bool,
    /// The standard deviation of the label noise `ε_i`.
    pub noise_std: f64,
}

impl Default for MmoeSyntheticConfig {
    fn default() -> Self {
        MmoeSyntheticConfig {
            scale: 1.0,
            sinusoids: 10,
            shape_std: 1.0,
            ladder_shapes: false,
            noise_std: 0.1,
        }
    }
}

impl MmoeSyntheticConfig {
    /// Sets `c`.
    pub fn scale(mut self, c: f64) -> Self {
        self.scale = c;
        self
    }
    /// Sets `m`.
    pub fn sinusoids(mut self, m: usize) -> Self {
        self.sinusoids = m;
        self
    }
    /// Sets the standard deviation of `α_j`, `β_j`.
    pub fn shape_std(mut self, s: f64) -> Self {
        self.shape_std = s;
        self
    }
    /// Sets how the sinusoid shapes are chosen.
    pub fn shapes(mut self, shapes: SinusoidShapes) -> Self {
        match shapes {
            SinusoidShapes::Normal(s) => {
                self.shape_std = s;
                self.ladder_shapes = false;
            }
            SinusoidShapes::Ladder => self.ladder_shapes = true,
        }
        self
    }
    /// Sets the standard deviation of the label noise.
    pub fn noise_std(mut self, s: f64) -> Self {
        self.noise_std = s;
        self
    }

    /// `n` rows with `dim` Gaussian features and task weight vectors at cosine
    /// `correlation`; tasks `"y1"` and `"y2"` are one-dimensional regressions.
    pub fn generate(
        &self,
        n: usize,
        dim: usize,
        correlation: f64,
        seed: u64,
    ) -> Result<MultiTaskDataset> {
        if !(-1.0..=1.0).contains(&correlation) {
            return Err(Error::config(format!(
                "mmoe_synthetic: the correlation must be in [-1, 1], got {correlation}"
            )));
        }
        if n == 0 || dim < 2 {
            return Err(Error::config(format!(
                "mmoe_synthetic: need at least one row and two dimensions (for two \
                 orthogonal vectors), got n = {n}, dim = {dim}"
            )));
        }
        let finite_non_negative = [self.scale, self.shape_std, self.noise_std]
            .iter()
            .all(|v| v.is_finite() && *v >= 0.0);
        if !finite_non_negative {
            return Err(Error::config(format!(
                "mmoe_synthetic: scale and standard deviations must be finite and \
                 non-negative, got {self:?}"
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let u1 = unit((0..dim).map(|_| normal(&mut rng)).collect());
        let raw: Vec<f64> = (0..dim).map(|_| normal(&mut rng)).collect();
        let along = dot(&raw, &u1);
        let u2 = unit(raw.iter().zip(&u1).map(|(r, u)| r - along * u).collect());
        let side = (1.0 - correlation * correlation).max(0.0).sqrt();
        let c = self.scale;
        let w1: Vec<f64> = u1.iter().map(|u| c * u).collect();
        let w2: Vec<f64> = u1
            .iter()
            .zip(&u2)
            .map(|(a, b)| c * (correlation * a + side * b))
            .collect();
        // Normal shapes are drawn even under the ladder, so the rows and noise that
        // follow are the same draws under either choice.
        let mut alpha: Vec<f64> = (0..self.sinusoids)
            .map(|_| self.shape_std * normal(&mut rng))
            .collect();
        let mut beta: Vec<f64> = (0..self.sinusoids)
            .map(|_| self.shape_std * normal(&mut rng))
            .collect();
        if self.ladder_shapes {
            alpha = (1..=self.sinusoids).map(|j| j as f64).collect();
            beta = (0..self.sinusoids).map(|j| (j * j) as f64).collect();
        }
        let label = |z: f64, rng: &mut ChaCha8Rng| -> f32 {
            let waves: f64 = alpha
                .iter()
                .zip(&beta)
                .map(|(a, b)| (a * z + b).sin())
                .sum();
            (z + waves + self.noise_std * normal(rng)) as f32
        };
        let mut x = Array2::<f32>::zeros((n, dim));
        let mut y1 = Array2::<f32>::zeros((n, 1));
        let mut y2 = Array2::<f32>::zeros((n, 1));
        let mut row = vec![0.0f64; dim];
        for i in 0..n {
            for (j, v) in row.iter_mut().enumerate() {
                *v = normal(&mut rng);
                x[[i, j]] = *v as f32;
            }
            y1[[i, 0]] = label(dot(&w1, &row), &mut rng);
            y2[[i, 0]] = label(dot(&w2, &row), &mut rng);
        }
        MultiTaskDataset::new(
            x,
            vec![
                TaskData::regression("y1", y1),
                TaskData::regression("y2", y2),
            ],
        )
    }
}

/// `n` rows of the two-task data of Ma et al. (2018) with `dim` Gaussian features and
/// task weight vectors at cosine `correlation`, with the [`MmoeSyntheticConfig`]
/// defaults; tasks `"y1"` and `"y2"` are one-dimensional regressions.
///
/// ```
/// let ds = mtl_data::mmoe_synthetic(100, 8, 0.5, 7)?;
/// assert_eq!((ds.len(), ds.num_features(), ds.num_tasks()), (100, 8, 2));
/// assert!(mtl_data::mmoe_synthetic(100, 8, 1.5, 7).is_err());
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn mmoe_synthetic(
    n: usize,
    dim: usize,
    correlation: f64,
    seed: u64,
) -> Result<MultiTaskDataset> {
    MmoeSyntheticConfig::default().generate(n, dim, correlation, seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TargetData;

    fn labels(ds: &MultiTaskDataset, k: usize) -> Vec<f64> {
        match &ds.tasks()[k].data {
            TargetData::Regression(v) => v.iter().map(|&x| x as f64).collect(),
            other => panic!("not a regression: {other:?}"),
        }
    }

    fn pearson(a: &[f64], b: &[f64]) -> f64 {
        let n = a.len() as f64;
        let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
        let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
        cov / (va * vb).sqrt()
    }

    #[test]
    fn label_correlation_follows_the_score() {
        let pearson_at = |cfg: MmoeSyntheticConfig, p: f64| {
            let ds = cfg.generate(4000, 50, p, 11).unwrap();
            pearson(&labels(&ds, 0), &labels(&ds, 1))
        };
        for cfg in [
            MmoeSyntheticConfig::default(),
            MmoeSyntheticConfig::default().shape_std(0.1),
        ] {
            let r: Vec<f64> = [1.0, 0.9, 0.5, 0.0]
                .iter()
                .map(|&p| pearson_at(cfg, p))
                .collect();
            assert!(r.windows(2).all(|w| w[1] < w[0]), "{cfg:?}: {r:?}");
            // p = 1: the same function of the same projection, up to the noise.
            assert!(r[0] > 0.98, "{cfg:?}: {r:?}");
            // p = 0: independent projections of a Gaussian, so independent labels.
            assert!(r[3].abs() < 0.05, "{cfg:?}: {r:?}");
        }
        // Nearly linear sinusoids: the label correlation is close to the cosine.
        let r = pearson_at(MmoeSyntheticConfig::default().shape_std(0.1), 0.5);
        assert!((r - 0.5).abs() < 0.05, "{r}");
    }

    #[test]
    fn ladder_shapes_follow_their_formula() {
        let ladder = MmoeSyntheticConfig::default().shapes(SinusoidShapes::Ladder);
        // p = 1 and no noise: y₁ = y₂ = z + Σ_j sin(j·z + (j−1)²) with z = w₁ᵀx.
        let ds = ladder.noise_std(0.0).generate(50, 6, 1.0, 5).unwrap();
        let (y1, y2) = (labels(&ds, 0), labels(&ds, 1));
        let x = ds.features();
        // z rebuilt from the seed's u₁, the stream's first draws.
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let u1 = unit((0..6).map(|_| normal(&mut rng)).collect());
        for i in 0..50 {
            let row: Vec<f64> = (0..6).map(|j| x[[i, j]] as f64).collect();
            let z = dot(&u1, &row);
            let want: f64 = z
                + (1..=10)
                    .map(|j| (j as f64 * z + ((j - 1) * (j - 1)) as f64).sin())
                    .sum::<f64>();
            assert!((y1[i] - want).abs() < 1e-4, "row {i}: {} vs {want}", y1[i]);
            assert_eq!(y1[i], y2[i]);
        }
        // Same rows as under normal shapes: only the label function changes.
        let normal_ds = MmoeSyntheticConfig::default()
            .generate(50, 6, 1.0, 5)
            .unwrap();
        assert_eq!(normal_ds.features(), ds.features());
        assert_ne!(labels(&normal_ds, 0), y1);
    }

    #[test]
    fn seeded_and_shaped() {
        let a = mmoe_synthetic(30, 5, 0.3, 2).unwrap();
        let b = mmoe_synthetic(30, 5, 0.3, 2).unwrap();
        let c = mmoe_synthetic(30, 5, 0.3, 3).unwrap();
        assert_eq!(a.features(), b.features());
        assert_eq!(labels(&a, 1), labels(&b, 1));
        assert_ne!(a.features(), c.features());
        assert_eq!(a.task_names(), ["y1", "y2"]);
        // x ~ N(0, I): the sample variance of all entries is near one.
        let big = mmoe_synthetic(2000, 10, 0.0, 4).unwrap();
        let var = big.features().mapv(|v| (v as f64).powi(2)).mean().unwrap();
        assert!((var - 1.0).abs() < 0.05, "{var}");
    }

    #[test]
    fn bad_arguments_are_config_errors() {
        for (n, d, p) in [(0, 5, 0.5), (10, 1, 0.5), (10, 5, -1.01), (10, 5, f64::NAN)] {
            assert!(matches!(mmoe_synthetic(n, d, p, 0), Err(Error::Config(_))));
        }
    }
}
