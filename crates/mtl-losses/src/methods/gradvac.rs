//! GradVac (Gradient Vaccine): raise the cosine similarity of every task pair to an
//! adaptive target, the EMA of the similarities seen so far.
//!
//! Reference: Zirui Wang, Yulia Tsvetkov, Orhan Firat and Yuan Cao, "Gradient Vaccine:
//! Investigating and Improving Multi-task Optimization in Massively Multilingual Models",
//! ICLR 2021 (arXiv:2010.05874), Algorithm 1, at whole-model granularity.
//!
//! Update rule: with targets φ̂ᵢⱼ (init 0) and EMA factor β, for every task i, starting
//! from gᵢ' = gᵢ, visit the other tasks j in a random order:
//!
//! ```text
//! φᵢⱼ = ⟨gᵢ', gⱼ⟩ / (‖gᵢ'‖‖gⱼ‖ + ε)
//! if φᵢⱼ < φ̂ᵢⱼ:
//!     gᵢ' ← gᵢ' + ‖gᵢ'‖ (φ̂ᵢⱼ √(1−φᵢⱼ²) − φᵢⱼ √(1−φ̂ᵢⱼ²)) / (‖gⱼ‖ √(1−φ̂ᵢⱼ²) + ε) · gⱼ
//! φ̂ᵢⱼ ← (1−β) φ̂ᵢⱼ + β φᵢⱼ
//! output = Σᵢ gᵢ'
//! ```
//!
//! The added multiple of gⱼ is the one that makes the cosine of gᵢ' with gⱼ exactly φ̂ᵢⱼ
//! (up to ε). With φ̂ = 0 and no EMA this is PCGrad; the EMA target also corrects
//! positive but lower-than-usual similarities. Every gᵢ' stays a combination of the rows,
//! so the method runs on the Gram matrix and the output is wᵀJ. A zero gⱼ adds nothing
//! (its multiple is skipped rather than divided by ε). ε = 1e-8 as in LibMTL; 1 − φ² is
//! clamped at 0 against rounding.
//!
//! The visiting orders are drawn each step from the method's seeded generator;
//! [`gradvac_weights`] is the pure step taking the orders and the targets, and
//! [`GradVac::aggregate_with_orders`] replays recorded orders in the stateful method.
//!
//! Defaults: β = 0.5 (LibMTL's `GradVac_beta`; the paper treats β as a per-experiment
//! hyper-parameter), whole-model granularity (LibMTL's `GradVac_group_type = 0`).
//!
//! # Example
//!
//! ```
//! use mtl_losses::gram::Gram;
//! use mtl_losses::methods::gradvac_weights;
//!
//! // Orthogonal gradients with a target similarity of 0.5: each is pulled towards the
//! // other.
//! let gram = Gram::from_vec(2, vec![1.0, 0.0, 0.0, 1.0]).unwrap();
//! let mut targets = vec![0.0, 0.5, 0.5, 0.0];
//! let w = gradvac_weights(&gram, &mut targets, &[vec![1], vec![0]], 0.5).unwrap();
//! assert!(w[0] > 1.0 && w[1] > 1.0);
//! ```

use crate::gram::Gram;
use crate::solvers::{checked_gram, weighted};
use crate::state;
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{derive_rng, Error, Result, SeededRng};
use rand::seq::SliceRandom;
use tch::Tensor;

/// ε in the cosine and in the step (LibMTL's).
const EPS: f64 = 1e-8;

/// One GradVac step on the Gram matrix: visits `orders[i]` (a permutation of the tasks
/// other than i) for every task i, updates the K × K row-major `targets` φ̂ in place and
/// returns the weights w with output = wᵀJ. Errors on malformed orders or sizes; the
/// targets are left unchanged then.
pub fn gradvac_weights(
    gram: &Gram,
    targets: &mut [f64],
    orders: &[Vec<usize>],
    beta: f64,
) -> Result<Vec<f64>> {
    let k = gram.k();
    if targets.len() != k * k {
        return Err(Error::shape(
            "gradvac targets",
            format!("{k}x{k}"),
            format!("{} values", targets.len()),
        ));
    }
    check_orders(orders, k)?;
    let mut phi_hat = targets.to_vec();
    let mut weights = vec![0.0; k];
    let norm = |j: usize| gram.get(j, j).max(0.0).sqrt();
    for (i, order) in orders.iter().enumerate() {
        // gᵢ' = Σₗ c[l] gₗ.
        let mut c = vec![0.0; k];
        c[i] = 1.0;
        for &j in order {
            let dot: f64 = (0..k).map(|l| c[l] * gram.get(l, j)).sum();
            let sq: f64 = (0..k)
                .map(|l| c[l] * (0..k).map(|m| gram.get(l, m) * c[m]).sum::<f64>())
                .sum();
            let norm_i = sq.max(0.0).sqrt();
            let norm_j = norm(j);
            let phi = dot / (norm_i * norm_j + EPS);
            let target = phi_hat[i * k + j];
            if phi < target && norm_j > 0.0 {
                let s_phi = (1.0 - phi * phi).max(0.0).sqrt();
                let s_target = (1.0 - target * target).max(0.0).sqrt();
                c[j] += norm_i * (target * s_phi - phi * s_target) / (norm_j * s_target + EPS);
            }
            phi_hat[i * k + j] = (1.0 - beta) * target + beta * phi;
        }
        for (w, ci) in weights.iter_mut().zip(&c) {
            *w += ci;
        }
    }
    if let Some((task, w)) = weights.iter().enumerate().find(|(_, w)| !w.is_finite()) {
        return Err(Error::NonFinite {
            what: "gradvac weight".into(),
            task: Some(task),
            step: None,
            value: w.to_string(),
        });
    }
    targets.copy_from_slice(&phi_hat);
    Ok(weights)
}

/// Each `orders[i]` must be a permutation of {0..K} \ {i}.
fn check_orders(orders: &[Vec<usize>], k: usize) -> Result<()> {
    if orders.len() != k {
        return Err(Error::TaskCount {
            context: "gradvac orders".into(),
            expected: k,
            got: orders.len(),
        });
    }
    for (i, order) in orders.iter().enumerate() {
        let mut seen = vec![false; k];
        let ok = order.len() + 1 == k
            && order.iter().all(|&j| {
                let fresh = j < k && j != i && !seen[j];
                if fresh {
                    seen[j] = true;
                }
                fresh
            });
        if !ok {
            return Err(Error::config(format!(
                "gradvac: the order of task {i} must visit every other task once, got \
                 {order:?}"
            )));
        }
    }
    Ok(())
}

/// GradVac (Wang et al., ICLR 2021) with EMA similarity targets.
#[derive(Debug, Clone)]
pub struct GradVac {
    num_tasks: usize,
    beta: f64,
    rng: SeededRng,
    /// φ̂, K × K row-major.
    targets: Vec<f64>,
}

impl GradVac {
    /// For `num_tasks` tasks with β = 0.5, drawing orders from a generator derived from
    /// `seed`.
    pub fn new(num_tasks: usize, seed: u64) -> Self {
        GradVac {
            num_tasks,
            beta: 0.5,
            rng: derive_rng(seed, "gradvac"),
            targets: vec![0.0; num_tasks * num_tasks],
        }
    }

    /// The same with EMA factor `beta` ∈ [0, 1].
    pub fn with_beta(mut self, beta: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&beta) {
            return Err(Error::config(format!(
                "gradvac: beta must be in [0, 1], got {beta}"
            )));
        }
        self.beta = beta;
        Ok(self)
    }

    /// The similarity targets φ̂ (K × K row-major; φ̂ᵢⱼ is task i's target towards j).
    pub fn targets(&self) -> &[f64] {
        &self.targets
    }

    /// One step with given visiting orders (`orders[i]`: the other tasks, in the order
    /// task i visits them), e.g. recorded ones; the generator is not advanced.
    pub fn aggregate_with_orders(
        &mut self,
        jacobian: &Tensor,
        ctx: &StepContext,
        orders: &[Vec<usize>],
    ) -> Result<Aggregation> {
        let gram = checked_gram("gradvac", jacobian, ctx, Some(self.num_tasks))?;
        let mut targets = self.targets.clone();
        let w = gradvac_weights(&gram, &mut targets, orders, self.beta)?;
        let out = weighted(w, jacobian)?;
        self.targets = targets;
        Ok(out)
    }
}

impl Aggregator for GradVac {
    fn name(&self) -> &'static str {
        "gradvac"
    }
    fn num_tasks(&self) -> Option<usize> {
        Some(self.num_tasks)
    }

    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        // Orders are drawn from a copy, committed only when the step succeeds, so a
        // rejected Jacobian leaves the generator where it was.
        let mut rng = self.rng.clone();
        let k = self.num_tasks;
        let orders: Vec<Vec<usize>> = (0..k)
            .map(|i| {
                let mut others: Vec<usize> = (0..k).filter(|&j| j != i).collect();
                others.shuffle(&mut rng);
                others
            })
            .collect();
        let out = self.aggregate_with_orders(jacobian, ctx, &orders)?;
        self.rng = rng;
        Ok(out)
    }

    /// The similarity targets and the generator's position.
    fn state(&self) -> serde_json::Value {
        serde_json::json!({
            "targets": self.targets,
            "rng": mtl_core::checkpoint::rng_state(&self.rng),
        })
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        let targets: Vec<f64> =
            serde_json::from_value(state.get("targets").cloned().unwrap_or_default())
                .map_err(|_| Error::config(format!("gradvac state without `targets`: {state}")))?;
        if targets.len() != self.num_tasks * self.num_tasks {
            return Err(Error::shape(
                "gradvac state targets",
                format!("{0}x{0}", self.num_tasks),
                format!("{} values", targets.len()),
            ));
        }
        self.rng = state::rng("gradvac", state)?;
        self.targets = targets;
        Ok(())
    }
}
