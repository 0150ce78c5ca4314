//! Training diagnostics, sampled every N steps on request: how the tasks' gradients
//! on the shared parameters relate (the pairwise cosine "conflict" matrix and each
//! task's gradient norm), and task affinity in the sense of TAG (Fifty, Amid, Zhao, Yu,
//! Anil & Finn, "Efficiently Identifying Task Groupings for Multi-Task Learning",
//! NeurIPS 2021): the lookahead change of task j's loss after an SGD step on task i's
//! gradient alone,
//!
//! ```text
//! Z_{i→j} = 1 − L_j(θ − η g_i) / L_j(θ)      (positive: training i helps j)
//! ```
//!
//! Measurements are taken on the step's batch before its update, with the model in
//! evaluation mode (no dropout, so libtorch's generator is untouched and a run with
//! diagnostics trains exactly like one without), through their own backward passes
//! that write no `.grad()`. With diagnostics off the trainer does none of this.

use crate::model::MultiTaskModel;
use crate::step::StepData;
use mtl_core::{check_losses, jacobian_rows, Error, JacobianRequest, ParamGroups, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// What to measure and how often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiagnosticsConfig {
    /// Measure at every step that is a multiple of this (≥ 1); step 0 included.
    pub every_steps: u64,
    /// Also compute TAG task affinity (K extra forward passes per sample).
    #[serde(default)]
    pub affinity: bool,
    /// The lookahead step size η; `None` uses the optimiser's learning rate at that step.
    #[serde(default)]
    pub affinity_lr: Option<f64>,
}

impl DiagnosticsConfig {
    /// Gradient cosines and norms every `every_steps` steps.
    pub fn every(every_steps: u64) -> Self {
        DiagnosticsConfig {
            every_steps,
            affinity: false,
            affinity_lr: None,
        }
    }
    /// Adds TAG task affinity to each sample.
    pub fn with_affinity(mut self) -> Self {
        self.affinity = true;
        self
    }
    /// Sets the lookahead step size of the affinity.
    pub fn affinity_lr(mut self, lr: f64) -> Self {
        self.affinity_lr = Some(lr);
        self
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.every_steps == 0 {
            return Err(Error::config("diagnostics every_steps must be at least 1"));
        }
        if let Some(lr) = self.affinity_lr {
            if !(lr.is_finite() && lr > 0.0) {
                return Err(Error::config(format!(
                    "diagnostics affinity_lr must be positive, got {lr}"
                )));
            }
        }
        Ok(())
    }

    /// Whether `step` is sampled.
    pub(crate) fn due(&self, step: u64) -> bool {
        step.checked_rem(self.every_steps) == Some(0)
    }
}

/// One sample of the diagnostics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradientSample {
    /// The global step (before its update).
    pub step: u64,
    /// The epoch.
    pub epoch: usize,
    /// `cosine[i][j]`: cosine similarity of the gradients of tasks i and j on the shared
    /// parameters (0 where either gradient is zero).
    pub cosine: Vec<Vec<f64>>,
    /// The L2 norm of each task's gradient on the shared parameters.
    pub norms: Vec<f64>,
    /// `affinity[i][j]` = Z_{i→j}, when requested.
    pub affinity: Option<Vec<Vec<f64>>>,
}

/// Pairwise cosines and norms of the rows of a K×d Jacobian, in f64.
pub fn gradient_cosines(jacobian: &Tensor) -> Result<(Vec<Vec<f64>>, Vec<f64>)> {
    let j = jacobian.f_to_kind(Kind::Double)?;
    let gram = j.f_matmul(&j.f_tr()?)?;
    let k = gram.size()[0];
    let g: Vec<f64> = Vec::<f64>::try_from(gram.f_reshape([-1])?)?;
    let norms: Vec<f64> = (0..k as usize)
        .map(|i| g[i * k as usize + i].max(0.0).sqrt())
        .collect();
    let cos = (0..k as usize)
        .map(|i| {
            (0..k as usize)
                .map(|l| {
                    let d = norms[i] * norms[l];
                    if d > 0.0 {
                        (g[i * k as usize + l] / d).clamp(-1.0, 1.0)
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect();
    Ok((cos, norms))
}

/// Measures one sample on a step's data (a task absent from a per-task step has a
/// zero gradient, so zero cosines and no affinity).
pub(crate) fn sample(
    cfg: &DiagnosticsConfig,
    model: &MultiTaskModel,
    groups: &ParamGroups,
    data: &StepData,
    step: u64,
    epoch: usize,
    lr: f64,
) -> Result<GradientSample> {
    let _span = tracing::debug_span!("diagnostics", step).entered();
    let shared = groups.shared_tensors();
    if shared.is_empty() {
        return Err(Error::config(
            "gradient diagnostics need shared parameters, and the model has none",
        ));
    }
    let out = data.losses(model, false, step)?;
    let mut before = check_losses(&out.losses, Some(step))?;
    for (b, _) in before.iter_mut().zip(&out.absent).filter(|(_, a)| **a) {
        *b = 0.0;
    }
    // The one Jacobian builder, with no task parameters: no `.grad()` is written.
    let jac = jacobian_rows(
        &JacobianRequest::new(&out.losses, &shared)
            .absent(&out.absent)
            .at_step(step),
    )?;
    let (cosine, norms) = gradient_cosines(&jac)?;
    let affinity = if cfg.affinity {
        let eta = cfg.affinity_lr.unwrap_or(lr);
        Some(lookahead_affinity(
            model, &shared, &jac, &before, data, step, eta,
        )?)
    } else {
        None
    };
    Ok(GradientSample {
        step,
        epoch,
        cosine,
        norms,
        affinity,
    })
}

/// Z_{i→j} for every pair: the shared parameters are moved by −η gᵢ, the losses
/// re-evaluated, and the parameters restored from a copy (exactly, not by adding back).
fn lookahead_affinity(
    model: &MultiTaskModel,
    shared: &[Tensor],
    jac: &Tensor,
    before: &[f64],
    data: &StepData,
    step: u64,
    eta: f64,
) -> Result<Vec<Vec<f64>>> {
    let k = before.len();
    tch::no_grad(|| -> Result<Vec<Vec<f64>>> {
        let saved: Vec<Tensor> = shared.iter().map(|p| p.detach().copy()).collect();
        let mut z = vec![vec![0.0; k]; k];
        let result = (|| -> Result<()> {
            for (i, row) in z.iter_mut().enumerate() {
                let g = jac.f_get(i as i64)?;
                let mut offset = 0;
                for p in shared {
                    let n = p.numel() as i64;
                    let gi = g
                        .f_narrow(0, offset, n)?
                        .f_view(p.size().as_slice())?
                        .f_to_kind(p.kind())?;
                    let _ = p.shallow_clone().f_sub_(&(gi * eta))?;
                    offset += n;
                }
                let after = data.losses(model, false, step)?.losses;
                for (j, l) in after.iter().enumerate() {
                    let lj = l.f_double_value(&[])?;
                    row[j] = if before[j] > 0.0 {
                        1.0 - lj / before[j]
                    } else {
                        0.0
                    };
                }
                for (p, s) in shared.iter().zip(&saved) {
                    p.shallow_clone().f_copy_(s)?;
                }
            }
            Ok(())
        })();
        if result.is_err() {
            for (p, s) in shared.iter().zip(&saved) {
                p.shallow_clone().f_copy_(s)?;
            }
        }
        result.map(|()| z)
    })
}

/// The element-wise mean of K×K matrices (the conflict or affinity over a run).
pub fn mean_matrix<'a>(
    matrices: impl IntoIterator<Item = &'a Vec<Vec<f64>>>,
) -> Option<Vec<Vec<f64>>> {
    let mut sum: Option<Vec<Vec<f64>>> = None;
    let mut n = 0.0;
    for m in matrices {
        match &mut sum {
            None => sum = Some(m.clone()),
            Some(s) => {
                for (row, mrow) in s.iter_mut().zip(m) {
                    for (a, b) in row.iter_mut().zip(mrow) {
                        *a += b;
                    }
                }
            }
        }
        n += 1.0;
    }
    sum.map(|mut s| {
        for row in &mut s {
            for a in row.iter_mut() {
                *a /= n;
            }
        }
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosines_of_known_rows() {
        // g0 = (1, 0), g1 = (1, 1), g2 = (−2, 0): cos(0,1) = 1/√2, cos(0,2) = −1.
        let j = Tensor::from_slice(&[1.0f32, 0.0, 1.0, 1.0, -2.0, 0.0]).view([3, 2]);
        let (c, n) = gradient_cosines(&j).unwrap();
        assert!((c[0][1] - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-12);
        assert_eq!(c[0][2], -1.0);
        assert!((c[1][1] - 1.0).abs() < 1e-12);
        assert_eq!(n, [1.0, 2f64.sqrt(), 2.0]);
        let zero = Tensor::zeros([2, 2], (Kind::Float, tch::Device::Cpu));
        assert_eq!(gradient_cosines(&zero).unwrap().0, [[0.0, 0.0], [0.0, 0.0]]);
    }

    #[test]
    fn mean_of_matrices() {
        let a = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        let b = vec![vec![0.0, 2.0], vec![2.0, 0.0]];
        assert_eq!(mean_matrix([&a, &b]).unwrap(), [[0.5, 1.0], [1.0, 0.5]]);
        assert!(mean_matrix(std::iter::empty()).is_none());
    }
}
