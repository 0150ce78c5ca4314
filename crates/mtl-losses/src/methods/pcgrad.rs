//! PCGrad: project each task gradient off the gradients it conflicts with.
//!
//! Reference: Tianhe Yu, Saurabh Kumar, Abhishek Gupta, Sergey Levine, Karol Hausman and
//! Chelsea Finn, "Gradient Surgery for Multi-Task Learning", NeurIPS 2020
//! (arXiv:2001.06782).
//!
//! Update rule (Algorithm 1): for every task i, start from gᵢ' = gᵢ and visit the other
//! tasks j in a random order; whenever gᵢ' conflicts with gⱼ, remove the component along
//! gⱼ:
//!
//! ```text
//! if gᵢ'·gⱼ < 0:   gᵢ' ← gᵢ' − (gᵢ'·gⱼ) / (‖gⱼ‖² + ε) · gⱼ
//! output = Σᵢ gᵢ'
//! ```
//!
//! Every gᵢ' stays a combination Σⱼ cᵢⱼ gⱼ of the rows, so the whole procedure runs on the
//! Gram matrix G = J Jᵀ (gᵢ'·gⱼ = Σₗ cᵢₗ Gₗⱼ) and the output is wᵀJ with w = Σᵢ cᵢ: no
//! d-sized work beyond G and the final combination (TorchJD works the same way).
//!
//! Two conventions exist, both supported by [`PcGradConfig`]:
//! * the paper's and TorchJD's ([`PcGradConfig::paper`], the default): j ≠ i, ε = 0;
//! * LibMTL's ([`PcGradConfig::libmtl`]): the order includes i itself (gᵢ' can have been
//!   turned against gᵢ by earlier projections), ε = 1e-8.
//!
//! A zero gⱼ cannot conflict with anything; with ε = 0 it is skipped rather than divided
//! by. Defaults: no hyper-parameters beyond the convention; the order is drawn afresh for
//! every row at every step from a seeded [`SeededRng`].
//!
//! # Example
//!
//! ```
//! use mtl_losses::gram::Gram;
//! use mtl_losses::methods::{pcgrad_weights, PcGradConfig};
//!
//! // g₀ = (1, 0), g₁ = (−1, 1): they conflict (g₀·g₁ = −1).
//! let gram = Gram::from_vec(2, vec![1.0, -1.0, -1.0, 2.0]).unwrap();
//! let w = pcgrad_weights(&gram, &[vec![1], vec![0]], PcGradConfig::paper()).unwrap();
//! // g₀' = g₀ + g₁/2 and g₁' = g₁ + g₀, so w = (1 + 1, 1/2 + 1).
//! assert_eq!(w, vec![2.0, 1.5]);
//! ```

use crate::gram::{self, Gram};
use crate::state;
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{derive_rng, Error, Result, SeededRng};
use rand::seq::SliceRandom;
use tch::Tensor;

/// Which PCGrad convention to follow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PcGradConfig {
    /// Skip j = i when projecting row i (paper, TorchJD) or visit it too (LibMTL).
    pub skip_self: bool,
    /// ε added to ‖gⱼ‖² in the projection (0 in the paper and TorchJD, 1e-8 in LibMTL).
    pub eps: f64,
}

impl PcGradConfig {
    /// The paper's and TorchJD's convention: j ≠ i, ε = 0.
    pub fn paper() -> Self {
        PcGradConfig {
            skip_self: true,
            eps: 0.0,
        }
    }
    /// LibMTL's convention: the order includes i, ε = 1e-8.
    pub fn libmtl() -> Self {
        PcGradConfig {
            skip_self: false,
            eps: 1e-8,
        }
    }
}

impl Default for PcGradConfig {
    fn default() -> Self {
        PcGradConfig::paper()
    }
}

/// The coefficients C (K×K, row i = gᵢ' in the basis of the rows: gᵢ' = Σⱼ Cᵢⱼ gⱼ) after
/// PCGrad's projections, with row i visiting the tasks in `orders[i]` (normally a
/// permutation of 0..K; j = i is skipped when `config.skip_self`).
pub fn pcgrad_coefficients(
    gram: &Gram,
    orders: &[Vec<usize>],
    config: PcGradConfig,
) -> Result<Vec<Vec<f64>>> {
    let k = gram.k();
    if orders.len() != k {
        return Err(Error::TaskCount {
            context: "pcgrad orders".into(),
            expected: k,
            got: orders.len(),
        });
    }
    if let Some((i, j)) = orders
        .iter()
        .enumerate()
        .find_map(|(i, o)| o.iter().find(|j| **j >= k).map(|j| (i, *j)))
    {
        return Err(Error::config(format!(
            "pcgrad: the order of task {i} visits task {j}, but there are {k} tasks"
        )));
    }
    if !config.eps.is_finite() || config.eps < 0.0 {
        return Err(Error::config(format!(
            "pcgrad: eps must be finite and >= 0, got {}",
            config.eps
        )));
    }
    let mut coefficients = Vec::with_capacity(k);
    for (i, order) in orders.iter().enumerate() {
        let mut c = vec![0.0; k];
        c[i] = 1.0;
        for &j in order {
            if config.skip_self && j == i {
                continue;
            }
            let dot: f64 = (0..k).map(|l| c[l] * gram.get(l, j)).sum();
            let denom = gram.get(j, j) + config.eps;
            // denom > 0 also keeps a zero gⱼ (which cannot conflict) out of the division.
            if dot < 0.0 && denom > 0.0 {
                c[j] -= dot / denom;
            }
        }
        coefficients.push(c);
    }
    Ok(coefficients)
}

/// PCGrad's weights w = Σᵢ cᵢ, with output = wᵀJ; see [`pcgrad_coefficients`].
pub fn pcgrad_weights(
    gram: &Gram,
    orders: &[Vec<usize>],
    config: PcGradConfig,
) -> Result<Vec<f64>> {
    let c = pcgrad_coefficients(gram, orders, config)?;
    let k = gram.k();
    Ok((0..k).map(|j| c.iter().map(|row| row[j]).sum()).collect())
}

/// PCGrad (Yu et al., NeurIPS 2020) as a gradient aggregator.
#[derive(Debug, Clone)]
pub struct PcGrad {
    num_tasks: usize,
    config: PcGradConfig,
    rng: SeededRng,
}

impl PcGrad {
    /// For `num_tasks` tasks, the paper's convention, orders drawn from a generator
    /// derived from `seed`.
    pub fn new(num_tasks: usize, seed: u64) -> Self {
        PcGrad {
            num_tasks,
            config: PcGradConfig::paper(),
            rng: derive_rng(seed, "pcgrad"),
        }
    }

    /// For `num_tasks` (≥ 1) tasks with the given convention.
    pub fn with_config(num_tasks: usize, seed: u64, config: PcGradConfig) -> Result<Self> {
        if num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "pcgrad".into(),
                expected: 0,
                got: 0,
            });
        }
        if !config.eps.is_finite() || config.eps < 0.0 {
            return Err(Error::config(format!(
                "pcgrad: eps must be finite and >= 0, got {}",
                config.eps
            )));
        }
        Ok(PcGrad {
            config,
            ..PcGrad::new(num_tasks, seed)
        })
    }

    /// The convention in use.
    pub fn config(&self) -> PcGradConfig {
        self.config
    }

    /// Aggregates with the given visiting orders instead of random ones (to replay a
    /// reference run, or for a deterministic order).
    pub fn aggregate_with_orders(
        &self,
        jacobian: &Tensor,
        orders: &[Vec<usize>],
    ) -> Result<Aggregation> {
        let gram = self.checked_gram(jacobian)?;
        let weights = pcgrad_weights(&gram, orders, self.config)?;
        Ok(Aggregation {
            gradient: gram::combine(&weights, jacobian)?,
            weights: Some(weights),
        })
    }

    fn checked_gram(&self, jacobian: &Tensor) -> Result<Gram> {
        gram::check_jacobian_shape(jacobian)?;
        let rows = jacobian.size()[0] as usize;
        if rows != self.num_tasks {
            return Err(Error::TaskCount {
                context: "pcgrad Jacobian rows".into(),
                expected: self.num_tasks,
                got: rows,
            });
        }
        Gram::of(jacobian)
    }
}

impl Aggregator for PcGrad {
    fn name(&self) -> &'static str {
        "pcgrad"
    }
    fn num_tasks(&self) -> Option<usize> {
        Some(self.num_tasks)
    }

    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        let gram = self
            .checked_gram(jacobian)
            .map_err(|e| e.at_step(ctx.step))?;
        let k = self.num_tasks;
        let orders: Vec<Vec<usize>> = (0..k)
            .map(|_| {
                let mut order: Vec<usize> = (0..k).collect();
                order.shuffle(&mut self.rng);
                order
            })
            .collect();
        let weights = pcgrad_weights(&gram, &orders, self.config)?;
        Ok(Aggregation {
            gradient: gram::combine(&weights, jacobian)?,
            weights: Some(weights),
        })
    }
    /// The position of the visiting-order generator, so a resumed run draws the
    /// orders it would have drawn.
    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "rng": mtl_core::checkpoint::rng_state(&self.rng) })
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        self.rng = state::rng("pcgrad", state)?;
        Ok(())
    }
}
