//! The mean-regularized model; its objective and solver are on its type.

use crate::fitted::{Extra, FittedLinear};
use crate::model::{fitted, to_array1, MultiTaskLinear};
use crate::problem::{check_penalty, Problem};
use crate::{coupled, shared, Loss};
use mtl_core::{Error, Result};
use mtl_data::GroupedData;
use nalgebra::{DMatrix, DVector};

/// Mean-regularized multi-task learning (Evgeniou & Pontil, "Regularized multi-task
/// learning", KDD 2004): every task's weights are a shared mean plus a task-specific
/// offset, `wₜ = w₀ + vₜ`, and
///
/// `min_{w₀, v, b} Σₜ cₜ Σᵢ ℓ(yₜᵢ, xₜᵢᵀ(w₀ + vₜ) + bₜ) + λ Σₜ ‖vₜ‖² + γ ‖w₀‖²`.
///
/// Minimising over `w₀` first gives `w₀ = λ Σₜ wₜ / (Tλ + γ)` and leaves a penalty
/// `tr(W A Wᵀ)` with `A = λ I − λ²/(Tλ + γ) 𝟙𝟙ᵀ`, which is positive semi-definite, so
/// the problem is one smooth convex problem in `(W, b)`: for the squared loss its joint
/// normal equations are solved once (Cholesky), for the logistic loss Newton's method
/// runs on the same system. `λ → ∞` forces `vₜ = 0`: one weight vector shared by all
/// tasks with their own intercepts, which `lambda = f64::INFINITY` solves exactly;
/// `λ = 0` fits every task alone.
///
/// Its special case `λ = ∞` with two tasks is the two-task linear model with a shared
/// `β`, biases `b₁, b₂`, a ridge `λ‖β‖²` (here `γ`) and weight `γ` on the second task
/// (here the task weight `c₂`):
/// `min Σᵢ(y₁ᵢ − b₁ − x₁ᵢᵀβ)² + c₂ Σᵢ(y₂ᵢ − b₂ − x₂ᵢᵀβ)² + γ‖β‖²`, whose normal
/// equations this example solves by hand:
///
/// ```
/// use mtl_data::{GroupedData, GroupedTask};
/// use mtl_linear::{Loss, MeanRegularized, MultiTaskLinear};
/// use nalgebra::{DMatrix, DVector};
/// use ndarray::array;
///
/// let t1 = GroupedTask { name: "a".into(), x: array![[0.0, 1.0], [1.0, 0.5], [2.0, -1.0]],
///                        y: array![1.0, 2.5, 2.0] };
/// let t2 = GroupedTask { name: "b".into(), x: array![[1.0, 1.0], [-1.0, 2.0], [0.5, 0.0]],
///                        y: array![0.0, -2.0, 1.5] };
/// let data = GroupedData { feature_names: vec!["x1".into(), "x2".into()],
///                          target_name: "y".into(), binary: false, tasks: vec![t1, t2] };
/// let (ridge, c2) = (0.7, 2.5);
/// let model = MeanRegularized { lambda: f64::INFINITY, gamma: ridge,
///                               task_weights: Some(vec![1.0, c2]) };
/// let fit = model.fit(&data, Loss::Squared)?;
///
/// // By hand: unknowns (β₁, β₂, b₁, b₂); rows of task 2 carry weight c₂.
/// let (mut h, mut g) = (DMatrix::<f64>::zeros(4, 4), DVector::<f64>::zeros(4));
/// for (k, (t, c)) in data.tasks.iter().zip([1.0, c2]).enumerate() {
///     for i in 0..3 {
///         let z = DVector::from_vec(vec![t.x[[i, 0]], t.x[[i, 1]],
///                                        (k == 0) as u8 as f64, (k == 1) as u8 as f64]);
///         h += c * &z * z.transpose();
///         g += c * t.y[i] * &z;
///     }
/// }
/// h[(0, 0)] += ridge;
/// h[(1, 1)] += ridge;
/// let exact = h.lu().solve(&g).unwrap();
/// for k in 0..2 {
///     assert!((fit.weights[[0, k]] - exact[0]).abs() < 1e-9);
///     assert!((fit.weights[[1, k]] - exact[1]).abs() < 1e-9);
///     assert!((fit.intercepts[k] - exact[2 + k]).abs() < 1e-9);
/// }
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MeanRegularized {
    /// `λ`, the weight on the task offsets `Σₜ‖vₜ‖²`; `f64::INFINITY` shares one `w`.
    pub lambda: f64,
    /// `γ`, the weight on the shared mean `‖w₀‖²`.
    pub gamma: f64,
    /// The tasks' weights `cₜ` in the data term (every task 1 when `None`).
    pub task_weights: Option<Vec<f64>>,
}

impl MeanRegularized {
    /// The model with every task weighted 1.
    pub fn new(lambda: f64, gamma: f64) -> Self {
        MeanRegularized {
            lambda,
            gamma,
            task_weights: None,
        }
    }

    /// `A = λ I − λ²/(Tλ + γ) 𝟙𝟙ᵀ`, the penalty on `W` once `w₀` is minimised out.
    pub(crate) fn coupling(&self, t_n: usize) -> DMatrix<f64> {
        let (l, g) = (self.lambda, self.gamma);
        let denom = t_n as f64 * l + g;
        let off = if denom > 0.0 { l * l / denom } else { 0.0 };
        DMatrix::from_fn(t_n, t_n, |s, t| if s == t { l - off } else { -off })
    }
}

impl MultiTaskLinear for MeanRegularized {
    fn name(&self) -> String {
        format!(
            "mean-regularized(λ={}, γ={})",
            crate::model::short(self.lambda),
            crate::model::short(self.gamma)
        )
    }

    fn fit(&self, data: &GroupedData, loss: Loss) -> Result<FittedLinear> {
        let ctx = self.name();
        if self.lambda.is_nan() || self.lambda < 0.0 {
            return Err(Error::config(format!(
                "{ctx}: λ must be ≥ 0 (∞ allowed), got {}",
                self.lambda
            )));
        }
        check_penalty(&ctx, "γ", self.gamma)?;
        let p = Problem::new(data, loss, self.task_weights.as_deref(), &ctx)?;
        let t_n = p.n_tasks();
        if self.lambda == f64::INFINITY {
            let sol = shared::solve(&p, self.gamma, &ctx)?;
            let w0: DVector<f64> = sol.w.column(0).into_owned();
            let obj = shared::objective(&p, self.gamma, &w0, &sol.b);
            return Ok(fitted(
                &p,
                ctx,
                (&sol.w, &sol.b),
                obj,
                sol.iterations,
                Some(Extra::SharedMean(to_array1(&w0))),
            ));
        }
        let a = self.coupling(t_n);
        let sol = coupled::solve(&p, &a, None, crate::coupled::NEWTON_TOL, &ctx)?;
        let denom = t_n as f64 * self.lambda + self.gamma;
        let w0: DVector<f64> = if denom > 0.0 {
            sol.w.column_sum() * (self.lambda / denom)
        } else {
            DVector::zeros(p.d)
        };
        // The objective as the model states it, with w₀ and the vₜ explicit.
        let offsets: f64 = (0..t_n)
            .map(|t| (sol.w.column(t) - &w0).norm_squared())
            .sum();
        let obj = p.value(&sol.w, &sol.b) + self.lambda * offsets + self.gamma * w0.norm_squared();
        Ok(fitted(
            &p,
            ctx,
            (&sol.w, &sol.b),
            obj,
            sol.iterations,
            Some(Extra::SharedMean(to_array1(&w0))),
        ))
    }
}
