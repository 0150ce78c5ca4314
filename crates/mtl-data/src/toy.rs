//! The two-objective toy problem of CAGrad (Liu et al., NeurIPS 2021), reused by
//! Nash-MTL (Navon et al., ICML 2022) and FAMO (Liu et al., NeurIPS 2023) to show how
//! a method moves through a landscape whose objectives conflict.
//!
//! For `x = (x₁, x₂)`, with `c₁ = max(tanh(x₂/2), 0)` and `c₂ = max(tanh(−x₂/2), 0)`
//! (so only one of them is non-zero, above or below `x₂ = 0`):
//!
//! ```text
//! f₁(x) = c₁ · (log max(|½(−x₁ − 7) − tanh(−x₂)|, 5·10⁻⁶) + 6)
//!       + c₂ · (((−x₁ + 7)² + 0.1·(−x₂ − 8)²) / 10 − 20)
//! f₂(x) = c₁ · (log max(|½(−x₁ + 3) + tanh(−x₂) + 2|, 5·10⁻⁶) + 6)
//!       + c₂ · (((−x₁ − 7)² + 0.1·(−x₂ − 8)²) / 10 − 20)
//! ```
//!
//! Above the axis each objective is a narrow log valley; below it, a wide bowl. The
//! Pareto set is the segment between the valleys' floors, and plain gradient descent on
//! `f₁ + f₂` from many starting points stalls in one valley. Nash-MTL and FAMO also
//! study an imbalanced version with one objective scaled down (multiply the output, e.g.
//! by `[0.1, 1.0]`).

use mtl_core::{Error, Result};
use tch::Tensor;

/// The floor inside the logarithms, `5·10⁻⁶`.
pub const TOY_LOWER: f64 = 5e-6;

/// The two objectives at `x` (a `[..., 2]` tensor), as a `[..., 2]` tensor built from
/// differentiable libtorch operations, so `backward` gives each objective's gradient.
///
/// ```
/// use tch::Tensor;
/// let x = Tensor::from_slice(&[0.5f64, 2.0]).set_requires_grad(true);
/// let f = mtl_data::toy_objectives(&x)?;
/// let [f1, f2] = mtl_data::toy_objectives_f64([0.5, 2.0]);
/// assert!((f.double_value(&[0]) - f1).abs() < 1e-12 && (f.double_value(&[1]) - f2).abs() < 1e-12);
/// f.sum(tch::Kind::Double).backward();
/// assert_eq!(x.grad().size(), [2]);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn toy_objectives(x: &Tensor) -> Result<Tensor> {
    if x.size().last() != Some(&2) {
        return Err(Error::shape(
            "toy_objectives",
            "[..., 2]",
            format!("{:?}", x.size()),
        ));
    }
    let x1 = x.f_select(-1, 0)?;
    let x2 = x.f_select(-1, 1)?;
    let t = (-&x2).f_tanh()?;
    let c1 = (&x2 * 0.5).f_tanh()?.f_clamp_min(0.0)?;
    let c2 = (&x2 * -0.5).f_tanh()?.f_clamp_min(0.0)?;
    let valley =
        |v: Tensor| -> Result<Tensor> { Ok(v.f_abs()?.f_clamp_min(TOY_LOWER)?.f_log()? + 6.0) };
    let bowl = |shift: f64| -> Result<Tensor> {
        let a = (-&x1 + shift).f_square()?;
        let b = (-&x2 - 8.0).f_square()?;
        Ok((a + b * 0.1) / 10.0 - 20.0)
    };
    let v1 = valley((-&x1 - 7.0) * 0.5 - &t)?;
    let v2 = valley((-&x1 + 3.0) * 0.5 + &t + 2.0)?;
    let f1 = &c1 * v1 + &c2 * bowl(7.0)?;
    let f2 = &c1 * v2 + &c2 * bowl(-7.0)?;
    Ok(Tensor::f_stack(&[f1, f2], -1)?)
}

/// The two objectives at one point, in plain `f64` (the same formulas as
/// [`toy_objectives`]).
pub fn toy_objectives_f64(x: [f64; 2]) -> [f64; 2] {
    let [x1, x2] = x;
    let t = (-x2).tanh();
    let c1 = (0.5 * x2).tanh().max(0.0);
    let c2 = (-0.5 * x2).tanh().max(0.0);
    let valley = |v: f64| v.abs().max(TOY_LOWER).ln() + 6.0;
    let bowl = |shift: f64| ((-x1 + shift).powi(2) + 0.1 * (-x2 - 8.0).powi(2)) / 10.0 - 20.0;
    [
        c1 * valley(0.5 * (-x1 - 7.0) - t) + c2 * bowl(7.0),
        c1 * valley(0.5 * (-x1 + 3.0) + t + 2.0) + c2 * bowl(-7.0),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const POINTS: [[f64; 2]; 6] = [
        [-8.5, 7.5],
        [0.0, 0.0],
        [9.0, 9.0],
        [-7.5, -5.0],
        [3.0, 1.0],
        [10.0, -8.0],
    ];

    #[test]
    fn tensor_and_scalar_versions_agree_on_a_batch() {
        let flat: Vec<f64> = POINTS.iter().flatten().copied().collect();
        let x = Tensor::from_slice(&flat).reshape([6, 2]);
        let f = toy_objectives(&x).unwrap();
        assert_eq!(f.size(), [6, 2]);
        for (i, p) in POINTS.iter().enumerate() {
            let want = toy_objectives_f64(*p);
            for (k, w) in want.iter().enumerate() {
                assert!((f.double_value(&[i as i64, k as i64]) - w).abs() < 1e-9);
            }
        }
        assert!(
            toy_objectives(&Tensor::zeros([3], (tch::Kind::Double, tch::Device::Cpu))).is_err()
        );
    }

    #[test]
    fn autograd_matches_finite_differences() {
        for p in POINTS.iter().filter(|p| p[1] != 0.0) {
            let x = Tensor::from_slice(p).set_requires_grad(true);
            for k in 0..2 {
                if let Some(g) = x.grad().defined().then(|| x.grad()) {
                    let _ = g.shallow_clone().zero_();
                }
                toy_objectives(&x).unwrap().select(0, k).backward();
                let g = x.grad();
                for d in 0..2 {
                    let h = 1e-6;
                    let (mut a, mut b) = (*p, *p);
                    a[d] += h;
                    b[d] -= h;
                    let fd = (toy_objectives_f64(a)[k as usize]
                        - toy_objectives_f64(b)[k as usize])
                        / (2.0 * h);
                    let ad = g.double_value(&[d as i64]);
                    assert!(
                        (ad - fd).abs() < 1e-4 * (1.0 + fd.abs()),
                        "{p:?} f{k} d{d}: {ad} vs {fd}"
                    );
                }
            }
        }
    }

    #[test]
    fn valley_floor_and_bowl_values() {
        // On f₁'s valley floor (½(−x₁ − 7) = tanh(−x₂)) the log hits its floor.
        let x2 = 3.0f64;
        let x1 = -7.0 - 2.0 * (-x2).tanh();
        let [f1, _] = toy_objectives_f64([x1, x2]);
        assert!((f1 - (TOY_LOWER.ln() + 6.0) * (0.5 * x2).tanh()).abs() < 1e-9);
        // Far below the axis c₂ → 1 and the bowls rule: f₁'s bowl centre is x₁ = 7.
        let [f1, f2] = toy_objectives_f64([7.0, -8.0]);
        assert!((f1 - (-20.0) * 4.0f64.tanh()).abs() < 1e-9);
        assert!(f2 > f1);
        // On the axis both weights vanish.
        assert_eq!(toy_objectives_f64([1.0, 0.0]), [0.0, 0.0]);
    }
}
