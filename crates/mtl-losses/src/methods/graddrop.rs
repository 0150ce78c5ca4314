//! GradDrop: gradient sign dropout.
//!
//! Chen, Ngiam, Huang, Luong, Kretzschmar, Chai & Anguelov, "Just Pick a Sign:
//! Optimizing Deep Multitask Models with Gradient Sign Dropout", NeurIPS 2020
//! (Algorithm 1, lines 10–15; TorchJD's `GradDrop`).
//!
//! Update rule: per coordinate j, the positive sign purity P = ½(1 + Σₖ gₖⱼ / Σₖ |gₖⱼ|)
//! ∈ [0, 1]; draw U ~ Uniform[0, 1)ᵈ; keep the positive entries where P > U and the
//! negative ones where P < U: g = Σₖ (ℓₖ + (1 − ℓₖ) Mₖ) ⊙ gₖ with
//! Mₖ = [P > U]·[gₖ > 0] + [P < U]·[gₖ < 0] and leak ℓ (default 0). A column that is
//! zero in every task contributes 0. Not a combination wᵀJ: it works on the d-sized
//! Jacobian, in its dtype and on its device. The draws come from the aggregator's own
//! seeded generator; [`GradDrop::combine_with`] takes U explicitly, for replaying
//! recorded draws. Defaults: identity on P, no leak.

use crate::solvers::{check_vector, checked_rows};
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{derive_rng, Error, Result, SeededRng};
use rand::Rng;
use tch::Tensor;

/// GradDrop with an optional per-task leak.
#[derive(Debug, Clone)]
pub struct GradDrop {
    leak: Option<Vec<f64>>,
    rng: SeededRng,
    num_tasks: Option<usize>,
}

impl GradDrop {
    /// No leak; draws from a generator derived from `seed`; any K.
    pub fn new(seed: u64) -> Self {
        GradDrop {
            leak: None,
            rng: derive_rng(seed, "graddrop"),
            num_tasks: None,
        }
    }
    /// Accepts exactly `num_tasks` rows.
    pub fn for_tasks(mut self, num_tasks: usize) -> Self {
        self.num_tasks = Some(num_tasks);
        self
    }
    /// Lets task k always pass a fraction `leak[k]` ∈ [0, 1] of its gradient (fixes K).
    pub fn with_leak(mut self, leak: Vec<f64>) -> Result<Self> {
        check_vector("graddrop leak", &leak, self.num_tasks)?;
        if leak.iter().any(|l| !(0.0..=1.0).contains(l)) {
            return Err(Error::config("graddrop: leak values must lie in [0, 1]"));
        }
        self.num_tasks = Some(leak.len());
        self.leak = Some(leak);
        Ok(self)
    }

    /// The GradDrop combination of a `[K, d]` Jacobian for the uniform draws `u` (`[d]`).
    pub fn combine_with(&self, jacobian: &Tensor, u: &Tensor) -> Result<Tensor> {
        let size = jacobian.size();
        let (k, d) = (size[0], size[1]);
        if u.size() != [d] {
            return Err(Error::shape(
                "graddrop draws",
                format!("[{d}]"),
                format!("{:?}", u.size()),
            ));
        }
        if let Some(l) = self.leak.as_ref().filter(|l| l.len() as i64 != k) {
            return Err(Error::TaskCount {
                context: "graddrop leak".into(),
                expected: l.len(),
                got: k as usize,
            });
        }
        let kind = jacobian.kind();
        let device = jacobian.device();
        let u = u.f_to_kind(kind)?.f_to_device(device)?;
        let zero_dim = Some([0i64].as_slice());
        let total = jacobian.f_sum_dim_intlist(zero_dim, false, kind)?;
        let abs_total = jacobian.f_abs()?.f_sum_dim_intlist(zero_dim, false, kind)?;
        // Entry (k, j) is kept when gₖⱼ agrees in sign with s = sign(P − U): positive
        // entries where P > U, negative ones where P < U. Then s·relu(s·gₖⱼ) is gₖⱼ
        // where kept and 0 where dropped, exactly, in three vectorised passes. An
        // all-zero column has P = 0/0 = NaN; s is set to 0 there, so the column
        // contributes 0, as in the reference.
        let p = (total.f_div(&abs_total)? + 1.0) * 0.5;
        let side = p
            .f_sub(&u)?
            .f_sign()?
            .f_nan_to_num(0.0, 0.0, 0.0)?
            .f_unsqueeze(0)?;
        let kept = jacobian.f_mul(&side)?.f_relu_()?.f_mul(&side)?;
        match &self.leak {
            None => Ok(kept.f_sum_dim_intlist(zero_dim, false, kind)?),
            Some(leak) => {
                // ℓₖ·gₖ + (1 − ℓₖ)·kept.
                let leak = Tensor::from_slice(leak)
                    .f_to_kind(kind)?
                    .f_to_device(device)?
                    .f_unsqueeze(1)?;
                let mixed = jacobian.f_mul(&leak)? + kept.f_mul(&(leak.f_neg()? + 1.0))?;
                Ok(mixed.f_sum_dim_intlist(zero_dim, false, kind)?)
            }
        }
    }
}

impl Aggregator for GradDrop {
    fn name(&self) -> &'static str {
        "graddrop"
    }
    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        checked_rows("graddrop", jacobian, ctx, self.num_tasks)?;
        let d = jacobian.size()[1] as usize;
        let draws: Vec<f64> = (0..d).map(|_| self.rng.gen::<f64>()).collect();
        let u = Tensor::from_slice(&draws);
        Ok(Aggregation {
            gradient: self.combine_with(jacobian, &u)?,
            weights: None,
        })
    }
}
