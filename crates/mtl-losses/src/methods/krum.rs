//! Krum and Multi-Krum: Byzantine-robust selection of task gradients.
//!
//! Blanchard, El Mhamdi, Guerraoui & Stainer, "Machine Learning with Adversaries:
//! Byzantine Tolerant Gradient Descent", NeurIPS 2017 (TorchJD's `Krum`).
//!
//! Update rule: with f = `n_byzantine` rows that may be adversarial, score each row by
//! the sum of its squared distances to its K − f − 2 nearest other rows,
//! sᵢ = Σ_{j ∈ N(i)} ‖gᵢ − gⱼ‖² (the paper), and average the m = `n_selected` rows of
//! lowest score (m = 1: Krum; m > 1: Multi-Krum). TorchJD sums the plain distances
//! ‖gᵢ − gⱼ‖ instead, which can select a different row; [`Krum::torchjd`] does the same. Distances come
//! from the Gram matrix, ‖gᵢ − gⱼ‖² = Gᵢᵢ + Gⱼⱼ − 2Gᵢⱼ (clamped at 0 against rounding).
//! Needs K ≥ f + 3 and K ≥ m. Ties are broken by the lower task index.
//! Defaults: f = 1, m = 1 (so K ≥ 4), squared distances.

use crate::gram::Gram;
use crate::solvers::{checked_gram, weighted};
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{Error, Result};
use tch::Tensor;

/// Krum (m = 1) / Multi-Krum (m > 1).
#[derive(Debug, Clone)]
pub struct Krum {
    n_byzantine: usize,
    n_selected: usize,
    squared: bool,
    num_tasks: Option<usize>,
}

impl Default for Krum {
    fn default() -> Self {
        Krum {
            n_byzantine: 1,
            n_selected: 1,
            squared: true,
            num_tasks: None,
        }
    }
}

impl Krum {
    /// The paper's Krum (squared distances) with f = `n_byzantine` and m =
    /// `n_selected` (≥ 1); any K ≥ max(f + 3, m).
    pub fn new(n_byzantine: usize, n_selected: usize) -> Result<Self> {
        if n_selected == 0 {
            return Err(Error::config("krum: n_selected must be at least 1"));
        }
        Ok(Krum {
            n_byzantine,
            n_selected,
            squared: true,
            num_tasks: None,
        })
    }
    /// TorchJD's variant: scores are sums of plain (not squared) distances.
    pub fn torchjd(n_byzantine: usize, n_selected: usize) -> Result<Self> {
        Ok(Krum {
            squared: false,
            ..Krum::new(n_byzantine, n_selected)?
        })
    }
    /// Accepts exactly `num_tasks` rows; errors when that K is too small for f and m.
    pub fn for_tasks(mut self, num_tasks: usize) -> Result<Self> {
        self.check_k(num_tasks)?;
        self.num_tasks = Some(num_tasks);
        Ok(self)
    }

    fn check_k(&self, k: usize) -> Result<()> {
        if k < self.n_byzantine + 3 || k < self.n_selected {
            return Err(Error::config(format!(
                "krum with n_byzantine = {} and n_selected = {} needs at least {} tasks, got {k}",
                self.n_byzantine,
                self.n_selected,
                (self.n_byzantine + 3).max(self.n_selected)
            )));
        }
        Ok(())
    }

    /// The weights (1/m on the selected rows) from G = JJᵀ.
    pub fn weights(&self, gram: &Gram) -> Result<Vec<f64>> {
        let k = gram.k();
        self.check_k(k)?;
        let n_closest = k - self.n_byzantine - 2;
        let scores: Vec<f64> = (0..k)
            .map(|i| {
                let mut dist: Vec<f64> = (0..k)
                    .map(|j| {
                        let d2 = (gram.get(i, i) + gram.get(j, j) - 2.0 * gram.get(i, j)).max(0.0);
                        if self.squared {
                            d2
                        } else {
                            d2.sqrt()
                        }
                    })
                    .collect();
                dist.sort_by(|a, b| a.total_cmp(b));
                // dist[0] is the distance to itself (0, the smallest).
                dist[1..=n_closest].iter().sum()
            })
            .collect();
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
        let mut w = vec![0.0; k];
        for &i in &order[..self.n_selected] {
            w[i] = 1.0 / self.n_selected as f64;
        }
        Ok(w)
    }
}

impl Aggregator for Krum {
    fn name(&self) -> &'static str {
        "krum"
    }
    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        let gram = checked_gram("krum", jacobian, ctx, self.num_tasks)?;
        weighted(self.weights(&gram)?, jacobian)
    }
}
