//! GradNorm: learn task weights that balance the tasks' gradient norms according to
//! how fast each task trains.
//!
//! Reference: Zhao Chen, Vijay Badrinarayanan, Chen-Yu Lee and Andrew Rabinovich,
//! "GradNorm: Gradient Normalization for Adaptive Loss Balancing in Deep Multitask
//! Networks", ICML 2018 (arXiv:1711.02257).
//!
//! Update rule, on the task Jacobian J (rows gₖ = ∇Lₖ of the shared parameters, as
//! LibMTL applies it, rather than only the last shared layer of the paper), with
//! learnable logits s ∈ ℝᴷ:
//!
//! ```text
//! p = softmax(s),  wₖ = K·pₖ                      (Σ w = K, w > 0)
//! nₖ = wₖ‖gₖ‖,     n̄ = (1/K) Σₖ nₖ                (‖gₖ‖² from the Gram diagonal)
//! L̃ₖ = Lₖ / Lₖ(0), rₖ = L̃ₖ / ((1/K) Σⱼ L̃ⱼ)       (relative inverse training rate)
//! cₖ = n̄·rₖ^α                                      (target, held constant)
//! L_grad = Σₖ |nₖ − cₖ|
//! output = Σₖ wₖ gₖ                                (weights before the update)
//! s ← s − η ∂L_grad/∂s
//! ```
//!
//! The gradient is analytic: with aₖ = sign(nₖ − cₖ)·‖gₖ‖ (= ∂L_grad/∂wₖ) and
//! ∂w/∂s = K(diag(p) − p pᵀ), ∂L_grad/∂sⱼ = K pⱼ (aⱼ − Σₖ pₖ aₖ). The first call only
//! records the losses as Lₖ(0) and returns the plain sum (w = 1), as LibMTL does during
//! its first epoch; its Lₖ(0) is the first epoch's mean loss, here it is the first
//! step's. The softmax parametrisation (LibMTL's) keeps the weights positive and summing
//! to K, which the paper enforces by renormalising after each step.
//!
//! Defaults: α = 1.5 (the paper's choice for NYUv2; 0.12 for its synthetic task), and
//! logit learning rate η = 0.025 (the paper trains the weights with the network's
//! optimiser and learning rate). Losses are read from [`StepContext::losses`] and must be
//! finite and positive on the first call (Lₖ(0) divides), non-negative afterwards.
//!
//! # Example
//!
//! ```
//! use mtl_losses::methods::GradNorm;
//! use mtl_losses::{Aggregator, StepContext};
//! use tch::Tensor;
//!
//! let mut gn = GradNorm::new(2);
//! let j = Tensor::from_slice(&[1.0f64, 0.0, 0.0, 3.0]).view([2, 2]);
//! // The first step records L(0) and sums the gradients.
//! let ctx = StepContext { step: 0, epoch: 0, losses: &[1.0, 1.0] };
//! assert_eq!(gn.aggregate(&j, &ctx).unwrap().weights, Some(vec![1.0, 1.0]));
//! // Task 1's gradient is 3x larger at an equal training rate: its weight goes down.
//! let ctx = StepContext { step: 1, epoch: 0, losses: &[0.5, 0.5] };
//! gn.aggregate(&j, &ctx).unwrap();
//! let w = gn.current_weights();
//! assert!(w[0] > 1.0 && w[1] < 1.0);
//! ```

use crate::gram::{self, Gram};
use crate::state;
use crate::{Aggregation, Aggregator, StepContext};
use mtl_core::{Error, Result};
use tch::Tensor;

/// GradNorm's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradNormConfig {
    /// α, the strength of the pull towards the tasks' training rates (≥ 0; 0 equalises
    /// the weighted gradient norms).
    pub alpha: f64,
    /// Learning rate of the internal SGD step on the weight logits (> 0).
    pub weight_lr: f64,
}

impl Default for GradNormConfig {
    fn default() -> Self {
        GradNormConfig {
            alpha: 1.5,
            weight_lr: 0.025,
        }
    }
}

/// GradNorm (Chen et al., ICML 2018) as a gradient aggregator with learned weights.
#[derive(Debug, Clone)]
pub struct GradNorm {
    config: GradNormConfig,
    /// The weight logits s; wₖ = K·softmax(s)ₖ.
    logits: Vec<f64>,
    /// Lₖ(0), recorded by the first call.
    initial_losses: Option<Vec<f64>>,
    /// ∂L_grad/∂s of the last update (None before the first one).
    last_logit_gradient: Option<Vec<f64>>,
}

impl GradNorm {
    /// For `num_tasks` tasks with the paper's defaults (α = 1.5, η = 0.025).
    pub fn new(num_tasks: usize) -> Self {
        GradNorm {
            config: GradNormConfig::default(),
            logits: vec![0.0; num_tasks],
            initial_losses: None,
            last_logit_gradient: None,
        }
    }

    /// For `num_tasks` (≥ 1) tasks with the given hyper-parameters.
    pub fn with_config(num_tasks: usize, config: GradNormConfig) -> Result<Self> {
        if num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "gradnorm".into(),
                expected: 0,
                got: 0,
            });
        }
        if !config.alpha.is_finite() || config.alpha < 0.0 {
            return Err(Error::config(format!(
                "gradnorm: alpha must be finite and >= 0, got {}",
                config.alpha
            )));
        }
        if !config.weight_lr.is_finite() || config.weight_lr <= 0.0 {
            return Err(Error::config(format!(
                "gradnorm: weight_lr must be finite and > 0, got {}",
                config.weight_lr
            )));
        }
        Ok(GradNorm {
            config,
            ..GradNorm::new(num_tasks)
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> GradNormConfig {
        self.config
    }

    /// The weight logits s (softmax-invariant to a common shift).
    pub fn logits(&self) -> &[f64] {
        &self.logits
    }

    /// The weights K·softmax(s) the next call (after the first) will use.
    pub fn current_weights(&self) -> Vec<f64> {
        let k = self.logits.len() as f64;
        softmax(&self.logits).into_iter().map(|p| k * p).collect()
    }

    /// Lₖ(0), once the first call has recorded them.
    pub fn initial_losses(&self) -> Option<&[f64]> {
        self.initial_losses.as_deref()
    }

    /// ∂L_grad/∂s of the last logit update, once there has been one.
    pub fn last_logit_gradient(&self) -> Option<&[f64]> {
        self.last_logit_gradient.as_deref()
    }

    /// The losses of this step from the context: K finite values.
    fn step_losses<'a>(&self, ctx: &StepContext<'a>) -> Result<&'a [f64]> {
        let k = self.logits.len();
        if ctx.losses.len() != k {
            return Err(Error::TaskCount {
                context: "gradnorm losses (StepContext::losses)".into(),
                expected: k,
                got: ctx.losses.len(),
            });
        }
        if let Some((task, v)) = ctx.losses.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "gradnorm loss".into(),
                task: Some(task),
                step: Some(ctx.step),
                value: v.to_string(),
            });
        }
        Ok(ctx.losses)
    }
}

/// A numerically stable softmax.
fn softmax(s: &[f64]) -> Vec<f64> {
    let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = s.iter().map(|x| (x - max).exp()).collect();
    let z: f64 = e.iter().sum();
    e.into_iter().map(|x| x / z).collect()
}

/// sign(x) with sign(0) = 0: the subgradient of |x| that autograd uses.
fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

impl Aggregator for GradNorm {
    fn name(&self) -> &'static str {
        "gradnorm"
    }
    fn num_tasks(&self) -> Option<usize> {
        Some(self.logits.len())
    }

    fn aggregate(&mut self, jacobian: &Tensor, ctx: &StepContext) -> Result<Aggregation> {
        let k = self.logits.len();
        gram::check_jacobian_shape(jacobian)?;
        let rows = jacobian.size()[0] as usize;
        if rows != k {
            return Err(Error::TaskCount {
                context: "gradnorm Jacobian rows".into(),
                expected: k,
                got: rows,
            });
        }
        let losses = self.step_losses(ctx)?;

        let initial = match &self.initial_losses {
            None => {
                if let Some((task, v)) = losses.iter().enumerate().find(|(_, v)| **v <= 0.0) {
                    return Err(Error::config(format!(
                        "gradnorm: the initial loss of task {task} is {v}; the training \
                         rates L_k/L_k(0) need positive initial losses"
                    )));
                }
                mtl_core::check_jacobian(jacobian, Some(ctx.step))?;
                self.initial_losses = Some(losses.to_vec());
                let ones = vec![1.0; k];
                return Ok(Aggregation {
                    gradient: gram::combine(&ones, jacobian)?,
                    weights: Some(ones),
                });
            }
            Some(initial) => initial,
        };
        if let Some((task, v)) = losses.iter().enumerate().find(|(_, v)| **v < 0.0) {
            return Err(Error::config(format!(
                "gradnorm: the loss of task {task} is {v} at step {}; GradNorm needs \
                 non-negative losses",
                ctx.step
            )));
        }

        let gram = Gram::of(jacobian).map_err(|e| e.at_step(ctx.step))?;
        let norms: Vec<f64> = (0..k).map(|i| gram.get(i, i).max(0.0).sqrt()).collect();
        let p = softmax(&self.logits);
        let kf = k as f64;
        let w: Vec<f64> = p.iter().map(|pi| kf * pi).collect();

        let n: Vec<f64> = w.iter().zip(&norms).map(|(w, g)| w * g).collect();
        let n_mean = n.iter().sum::<f64>() / kf;
        let ratio: Vec<f64> = losses.iter().zip(initial).map(|(l, l0)| l / l0).collect();
        let ratio_mean = ratio.iter().sum::<f64>() / kf;
        // All losses at 0 means every task is trained: no training rate to balance, so
        // every target is the mean norm (r = 1).
        let r: Vec<f64> = if ratio_mean > 0.0 {
            ratio.iter().map(|x| x / ratio_mean).collect()
        } else {
            vec![1.0; k]
        };
        let a: Vec<f64> = (0..k)
            .map(|i| sign(n[i] - n_mean * r[i].powf(self.config.alpha)) * norms[i])
            .collect();
        let pa: f64 = p.iter().zip(&a).map(|(p, a)| p * a).sum();
        let grad: Vec<f64> = (0..k).map(|j| kf * p[j] * (a[j] - pa)).collect();

        // Gradient norms that overflow f64 would poison the logits for good: refuse the
        // step and leave the state as it was.
        if let Some((task, g)) = grad.iter().enumerate().find(|(_, g)| !g.is_finite()) {
            return Err(Error::NonFinite {
                what: "gradnorm weight-logit gradient".into(),
                task: Some(task),
                step: Some(ctx.step),
                value: g.to_string(),
            });
        }
        let gradient = gram::combine(&w, jacobian)?;
        for (s, g) in self.logits.iter_mut().zip(&grad) {
            *s -= self.config.weight_lr * g;
        }
        self.last_logit_gradient = Some(grad);
        Ok(Aggregation {
            gradient,
            weights: Some(w),
        })
    }
    /// The learned logits and the recorded initial losses.
    fn state(&self) -> serde_json::Value {
        serde_json::json!({
            "logits": self.logits,
            "initial_losses": self.initial_losses,
            "last_logit_gradient": self.last_logit_gradient,
        })
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        let bad = |what: &str| Error::config(format!("gradnorm state: {what} in {state}"));
        let vector = |key: &str| -> Result<Option<Vec<f64>>> {
            match state.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(v) => serde_json::from_value::<Vec<f64>>(v.clone())
                    .map(Some)
                    .map_err(|_| bad(&format!("`{key}` is not a list of numbers"))),
            }
        };
        let logits = vector("logits")?.ok_or_else(|| bad("no `logits`"))?;
        let initial = vector("initial_losses")?;
        let last = vector("last_logit_gradient")?;
        let k = self.logits.len();
        for v in std::iter::once(&logits).chain(&initial).chain(&last) {
            state::check_len("gradnorm", k, v)?;
        }
        self.logits = logits;
        self.initial_losses = initial;
        self.last_logit_gradient = last;
        Ok(())
    }
}
