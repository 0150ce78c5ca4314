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
//!
//! A contiguous f32/f64 Jacobian on the CPU is combined by a column kernel
//! ([`super::columns::graddrop`]) that reads J once and finishes each coordinate while
//! its K values are in cache; the libtorch path (other devices and dtypes) makes K×d
//! temporaries and passes over J about six times. The two agree up to the order of the
//! additions in Σₖgₖ, Σₖ|gₖ| and the output; a coordinate where P and U are within a
//! rounding error of each other can then keep the other sign.

use super::columns::{self, host_rows, Real};
use crate::gram::check_jacobian_shape;
use crate::solvers::{check_task_count, check_vector, checked_rows};
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{derive_rng, Error, Result, SeededRng};
use rand::Rng;
use tch::{Device, Kind, Tensor};

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
        self.check_draws(jacobian, u)?;
        // A NaN, Inf or overflow (`Some(None)`) gets the libtorch path's result for it,
        // as this call always gave.
        if let Some(Some(out)) = self.kernel(jacobian, u)? {
            return Ok(out);
        }
        self.combine_libtorch(jacobian, u)
    }

    fn check_draws(&self, jacobian: &Tensor, u: &Tensor) -> Result<()> {
        check_jacobian_shape(jacobian)?;
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
        Ok(())
    }

    /// The column kernel's combination for the draws `u` (any dtype: they are rounded
    /// to J's, as the libtorch path does): `None` when J is not a contiguous f32/f64 CPU
    /// tensor, `Some(None)` when a column's Σₖ|gₖ| is not finite (a NaN or Inf in J, or
    /// an overflow).
    fn kernel(&self, jacobian: &Tensor, u: &Tensor) -> Result<Option<Option<Tensor>>> {
        fn run<T: Real>(
            j: &Tensor,
            leak: Option<&[f64]>,
            u: &Tensor,
        ) -> Result<Option<Option<Tensor>>> {
            let Some(rows) = host_rows::<T>(j) else {
                return Ok(None);
            };
            let size = j.size();
            let (k, d) = (size[0] as usize, size[1] as usize);
            let u = u
                .f_to_kind(T::KIND)?
                .f_to_device(Device::Cpu)?
                .f_contiguous()?;
            let u = host_rows::<T>(&u).ok_or_else(|| {
                Error::config("graddrop: the draws could not be read on the host")
            })?;
            let leak: Option<Vec<T>> = leak.map(|l| l.iter().map(|&x| T::from_f64(x)).collect());
            Ok(Some(columns::graddrop(rows, k, d, u, leak.as_deref())?))
        }
        let leak = self.leak.as_deref();
        match jacobian.kind() {
            Kind::Float => run::<f32>(jacobian, leak, u),
            Kind::Double => run::<f64>(jacobian, leak, u),
            _ => Ok(None),
        }
    }

    /// The libtorch path of [`GradDrop::combine_with`].
    fn combine_libtorch(&self, jacobian: &Tensor, u: &Tensor) -> Result<Tensor> {
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
        check_jacobian_shape(jacobian)?;
        check_task_count("graddrop", self.num_tasks, jacobian.size()[0] as usize)?;
        let d = jacobian.size()[1] as usize;
        // The draws advance a copy of the generator, kept only once the step succeeds:
        // a rejected Jacobian leaves the random state where it was.
        let mut rng = self.rng.clone();
        let u = if jacobian.kind() == Kind::Float {
            // Rounded to f32 here as `to_kind` would round them, without an f64 tensor.
            let u: Vec<f32> = (0..d).map(|_| rng.gen::<f64>() as f32).collect();
            Tensor::from_slice(&u)
        } else {
            let u: Vec<f64> = (0..d).map(|_| rng.gen::<f64>()).collect();
            Tensor::from_slice(&u)
        };
        let gradient = match self.kernel(jacobian, &u)? {
            Some(Some(out)) => out,
            // A NaN or Inf (the exact check names its row) or an overflow of Σₖ|gₖ|,
            // which the libtorch path handles as it always did.
            Some(None) | None => {
                checked_rows("graddrop", jacobian, ctx, self.num_tasks)?;
                self.combine_libtorch(jacobian, &u)?
            }
        };
        self.rng = rng;
        Ok(Aggregation {
            gradient,
            weights: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The column kernel and the libtorch path agree, with and without leak, on
    /// columns with zeros and all-zero columns, in both dtypes.
    #[test]
    fn kernel_matches_the_libtorch_path() {
        tch::manual_seed(5);
        for kind in [Kind::Float, Kind::Double] {
            for (k, d) in [(1, 5), (2, 64), (3, 65), (10, 300)] {
                let j = Tensor::randn([k, d], (kind, Device::Cpu));
                // Zero a fifth of the entries and every third column.
                let zero = Tensor::rand([k, d], (kind, Device::Cpu)).lt(0.2);
                let j = j.masked_fill(&zero, 0.0);
                let _ = j.slice(1, 0, d, 3).fill_(0.0);
                let u = Tensor::rand([d], (Kind::Double, Device::Cpu));
                let leak: Vec<f64> = (0..k).map(|i| i as f64 / k as f64).collect();
                for gd in [
                    GradDrop::new(0),
                    GradDrop::new(0).with_leak(leak.clone()).unwrap(),
                ] {
                    let fast = gd.kernel(&j, &u).unwrap();
                    let fast = fast.unwrap().unwrap();
                    let slow = gd.combine_libtorch(&j, &u).unwrap();
                    assert!(
                        fast.allclose(&slow, 1e-5, 1e-6, false),
                        "{kind:?} k={k} d={d}: {fast:?} vs {slow:?}"
                    );
                }
            }
        }
        // Non-finite entries are reported, not combined.
        let j = Tensor::from_slice(&[1.0f32, f32::NAN, 2.0, 3.0]).view([2, 2]);
        let u = Tensor::from_slice(&[0.5f32, 0.5]);
        assert!(GradDrop::new(0).kernel(&j, &u).unwrap().unwrap().is_none());
    }
}
