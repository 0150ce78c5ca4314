//! Adversarial shared-private multi-task learning (ASP-MTL): Liu, Qiu & Huang,
//! "Adversarial Multi-task Learning for Text Classification", ACL 2017.
//!
//! A shared encoder `S` and one private encoder `P_k` per task; task `k` reads both:
//!
//! ```text
//! s = S(x)  [B, d_s]      p_k = P_k(x)  [B, d_p]      features_k = [s ; p_k]
//! ```
//!
//! Two terms keep the shared space task-invariant and the private spaces apart from
//! it; their sum is the auxiliary loss the trainer adds outside the task weighting:
//!
//! * **Adversarial.** A task discriminator `D` (a linear layer `d_s → K`, softmax)
//!   predicts the task from `s`. It reads `s` through a gradient-reversal layer, so one
//!   backward pass trains `D` to minimise its cross-entropy while pushing `S` to
//!   maximise it. The paper's rows each come from one task; here every row carries every
//!   task's targets, so the discriminator sees the shared features once per task,
//!   labelled with that task: `L_adv = mean_{b,k} −log softmax(D(s_b))_k`. At the
//!   discriminator's optimum (uniform predictions) the term is constant and leaves
//!   `S` alone; it acts against shared features that let `D` tell tasks apart.
//!   Weighted by `λ_adv` (0.05 by default).
//! * **Orthogonality.** `L_diff = Σ_k ‖sᵀ p_k‖_F²`, summed over the batch as in the
//!   paper, weighted by `γ_diff` (0.01 by default).
//!
//! The shared encoder and the discriminator are shared parameters (`path/shared`,
//! `path/discriminator`); private encoders are built under `task_path(path, k)/private`.
//! `TaskFeatures::shared` is `s`.
//!
//! Over feature maps (`[B, C, H, W]` encoders) the task features concatenate `s` and
//! `p_k` along the channels, the discriminator reads `s` globally average-pooled, and
//! the orthogonality term counts every position as a row (`[B·H·W, C]`).

use super::builder::BackboneBuilder;
use super::{check_input_width, Architecture, Backbone, TaskFeatures};
use crate::init::{self, Init};
use crate::{task_path, Error, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

/// Gradient reversal (Ganin & Lempitsky, "Unsupervised Domain Adaptation by
/// Backpropagation", ICML 2015): the identity forward, the gradient times `−scale`
/// backward.
///
/// Written with autograd alone as `(1 + scale)·x.detach() − scale·x`: the detached
/// term carries the value and no gradient, the other term carries `−scale` times the
/// gradient. With `scale = 1` the forward value is exactly `x` (`2x − x` is exact in
/// floating point).
pub fn gradient_reversal(x: &Tensor, scale: f64) -> Result<Tensor> {
    let carried = x.f_detach()?.f_mul_scalar(1.0 + scale)?;
    Ok(carried.f_sub(&x.f_mul_scalar(scale)?)?)
}

/// Configuration of an [`AspMtl`] architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AspMtlConfig {
    /// Input width.
    pub in_dim: i64,
    /// Number of tasks.
    pub num_tasks: usize,
    /// Weight of the adversarial loss, `λ_adv` (0.05 by default).
    pub adversarial_weight: f64,
    /// Weight of the orthogonality penalty, `γ_diff` (0.01 by default).
    pub orthogonality_weight: f64,
    /// How the discriminator's linear layer starts (PyTorch's `nn.Linear` default
    /// unless set).
    #[serde(default)]
    pub discriminator_init: Init,
}

impl AspMtlConfig {
    /// `num_tasks` tasks over `in_dim`-wide inputs with the paper's loss weights.
    pub fn new(in_dim: i64, num_tasks: usize) -> Self {
        AspMtlConfig {
            in_dim,
            num_tasks,
            adversarial_weight: 0.05,
            orthogonality_weight: 0.01,
            discriminator_init: Init::default(),
        }
    }
    /// Sets `λ_adv`.
    pub fn adversarial_weight(mut self, w: f64) -> Self {
        self.adversarial_weight = w;
        self
    }
    /// Sets `γ_diff`.
    pub fn orthogonality_weight(mut self, w: f64) -> Self {
        self.orthogonality_weight = w;
        self
    }
    /// Sets how the discriminator starts.
    pub fn discriminator_init(mut self, init: Init) -> Self {
        self.discriminator_init = init;
        self
    }

    /// Builds the shared encoder (`path/shared`) with `shared`, task `k`'s private
    /// encoder (`task_path(path, k)/private`) with `private`, and the discriminator
    /// (`path/discriminator`).
    pub fn build(
        &self,
        path: &nn::Path,
        shared: &dyn BackboneBuilder,
        private: &dyn BackboneBuilder,
    ) -> Result<AspMtl> {
        if self.num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "asp_mtl".into(),
                expected: 0,
                got: 0,
            });
        }
        for (name, v) in [
            ("adversarial weight", self.adversarial_weight),
            ("orthogonality weight", self.orthogonality_weight),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(Error::config(format!(
                    "asp_mtl: the {name} must be non-negative, got {v}"
                )));
            }
        }
        let shared_encoder = shared.build(&(path / "shared"), self.in_dim)?;
        let mut private_encoders = Vec::with_capacity(self.num_tasks);
        for k in 0..self.num_tasks {
            let p = private.build(&(task_path(path, k) / "private"), self.in_dim)?;
            if let Some(w) = private_encoders.first().map(Backbone::out_dim) {
                if p.out_dim() != w {
                    return Err(Error::shape(
                        format!("asp_mtl private encoder of task {k} output"),
                        format!("width {w}"),
                        format!("width {}", p.out_dim()),
                    ));
                }
            }
            private_encoders.push(p);
        }
        let discriminator = init::linear(
            &(path / "discriminator"),
            shared_encoder.out_dim(),
            self.num_tasks as i64,
            self.discriminator_init,
        )?;
        Ok(AspMtl {
            shared: shared_encoder,
            private: private_encoders,
            discriminator,
            cfg: self.clone(),
        })
    }
}

/// The ASP-MTL architecture built by [`AspMtlConfig::build`].
#[derive(Debug)]
pub struct AspMtl {
    shared: Box<dyn Backbone>,
    private: Vec<Box<dyn Backbone>>,
    discriminator: nn::Linear,
    cfg: AspMtlConfig,
}

impl AspMtl {
    /// `L_adv`: the discriminator's mean cross-entropy over every row labelled with
    /// every task, read through gradient reversal.
    pub fn adversarial_loss(&self, shared: &Tensor) -> Result<Tensor> {
        // A feature map is told apart by its global average (the discriminator stays a
        // `d_s → K` linear map at any resolution).
        let reversed = gradient_reversal(&super::pooled(shared)?, 1.0)?;
        let log_p = reversed
            .f_linear(&self.discriminator.ws, self.discriminator.bs.as_ref())?
            .f_log_softmax(-1, Kind::Float)?;
        // Each (row, task) pair is one example whose label is the task: the mean of
        // −log p over both axes.
        Ok(log_p.f_mean(Kind::Float)?.f_neg()?)
    }

    /// `L_diff = Σ_k ‖sᵀ p_k‖_F²`.
    pub fn orthogonality_loss(&self, shared: &Tensor, private: &[Tensor]) -> Result<Tensor> {
        // Feature maps count one row per position: `[B·H·W, C]`.
        let st = super::channel_rows(shared)?.f_transpose(0, 1)?;
        let mut total = Tensor::f_zeros([], (Kind::Float, shared.device()))?;
        for p in private {
            let c = st.f_matmul(&super::channel_rows(p)?)?;
            total = total.f_add(&c.f_square()?.f_sum(Kind::Float)?)?;
        }
        Ok(total)
    }
}

impl Architecture for AspMtl {
    fn num_tasks(&self) -> usize {
        self.private.len()
    }
    fn feature_dims(&self) -> Vec<i64> {
        self.private
            .iter()
            .map(|p| self.shared.out_dim() + p.out_dim())
            .collect()
    }
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<TaskFeatures> {
        check_input_width("asp_mtl input", xs, self.cfg.in_dim)?;
        let s = self.shared.forward_t(xs, train)?;
        let private = self
            .private
            .iter()
            .map(|p| p.forward_t(xs, train))
            .collect::<Result<Vec<_>>>()?;
        let per_task = private
            .iter()
            .map(|p| Tensor::f_cat(&[&s, p], 1))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut aux: Option<Tensor> = None;
        if self.cfg.adversarial_weight > 0.0 {
            aux = Some(
                self.adversarial_loss(&s)?
                    .f_mul_scalar(self.cfg.adversarial_weight)?,
            );
        }
        if self.cfg.orthogonality_weight > 0.0 {
            let o = self
                .orthogonality_loss(&s, &private)?
                .f_mul_scalar(self.cfg.orthogonality_weight)?;
            aux = Some(match aux {
                Some(a) => a.f_add(&o)?,
                None => o,
            });
        }
        Ok(TaskFeatures {
            shared: Some(s),
            per_task,
            auxiliary_loss: aux,
        })
    }
    fn name(&self) -> &'static str {
        "asp_mtl"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::MlpBuilder;
    use crate::ParamGroups;
    use tch::Device;

    fn build(vs: &nn::VarStore) -> AspMtl {
        AspMtlConfig::new(4, 2)
            .build(
                &(vs.root() / "asp"),
                &MlpBuilder::new([6]),
                &MlpBuilder::new([3]),
            )
            .unwrap()
    }

    #[test]
    fn reversal_is_identity_forward_and_negated_backward() {
        // Tests draw from libtorch's process-wide generator (initialisation, randn):
        // the lock keeps parallel tests from taking each other's seeded draws.
        let _rng = crate::torch_rng_lock();
        let x = Tensor::randn([3, 2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let y = gradient_reversal(&x, 1.0).unwrap();
        assert!(y.equal(&x.detach()));
        let w = Tensor::randn([3, 2], (Kind::Float, Device::Cpu));
        (&y * &w).sum(Kind::Float).backward();
        assert!(x.grad().allclose(&(-&w), 1e-6, 1e-7, false));
        let x2 = x.detach().set_requires_grad(true);
        let y2 = gradient_reversal(&x2, 0.5).unwrap();
        assert!(y2.allclose(&x2, 1e-6, 1e-6, false));
        y2.sum(Kind::Float).backward();
        let half = Tensor::full([3, 2], -0.5, (Kind::Float, Device::Cpu));
        assert!(x2.grad().allclose(&half, 1e-6, 1e-7, false));
    }

    #[test]
    fn features_split_and_aux() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let asp = build(&vs);
        let x = Tensor::randn([5, 4], (Kind::Float, Device::Cpu));
        let f = asp.forward_t(&x, true).unwrap();
        assert_eq!(asp.feature_dims(), vec![9, 9]);
        assert_eq!(f.per_task[1].size(), vec![5, 9]);
        let s = f.shared.as_ref().unwrap();
        assert!(f.per_task[0].narrow(1, 0, 6).equal(s));
        assert!(f.auxiliary_loss.is_some());
        let g = ParamGroups::from_var_store(&vs, 2).unwrap();
        let shared: Vec<&str> = g.shared.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            shared,
            [
                "asp.discriminator.bias",
                "asp.discriminator.weight",
                "asp.shared.0.bias",
                "asp.shared.0.weight"
            ]
        );
        assert!(g.task[1]
            .iter()
            .all(|p| p.name.starts_with("asp.task1.private")));
    }

    #[test]
    fn discriminator_descends_while_the_encoder_ascends() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let asp = AspMtlConfig::new(4, 2)
            .orthogonality_weight(0.0)
            .build(&vs.root(), &MlpBuilder::new([6]), &MlpBuilder::new([3]))
            .unwrap();
        let x = Tensor::randn([8, 4], (Kind::Float, Device::Cpu));
        let f = asp.forward_t(&x, true).unwrap();
        let aux = f.auxiliary_loss.unwrap();
        let s = f.shared.unwrap();
        // The same loss read without reversal: its gradient on the encoder is the
        // negation of what the reversed path gives.
        let plain = s
            .linear(&asp.discriminator.ws, asp.discriminator.bs.as_ref())
            .log_softmax(-1, Kind::Float)
            .mean(Kind::Float)
            .neg()
            * 0.05;
        assert!((plain.double_value(&[]) - aux.double_value(&[])).abs() < 1e-7);
        let enc = vs.root().sub("shared").sub("0").get("weight").unwrap();
        let disc = asp.discriminator.ws.shallow_clone();
        let g_aux = Tensor::run_backward(&[&aux], &[&enc, &disc], true, false);
        let g_plain = Tensor::run_backward(&[&plain], &[&enc, &disc], false, false);
        assert!(g_aux[0].allclose(&(-&g_plain[0]), 1e-5, 1e-7, false));
        assert!(g_aux[1].allclose(&g_plain[1], 1e-5, 1e-7, false));
        assert!(g_aux[0].abs().sum(Kind::Float).double_value(&[]) > 0.0);
    }

    #[test]
    fn orthogonality_is_zero_for_orthogonal_spaces() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let asp = build(&vs);
        let s = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 0.0]).view([2, 2]);
        let p = Tensor::from_slice(&[0.0f32, 0.0, 3.0, 1.0]).view([2, 2]);
        let zero = asp.orthogonality_loss(&s, &[p.shallow_clone()]).unwrap();
        assert_eq!(zero.double_value(&[]), 0.0);
        let q = Tensor::from_slice(&[2.0f32, 1.0, 0.0, 0.0]).view([2, 2]);
        let five = asp.orthogonality_loss(&s, &[p, q]).unwrap();
        assert_eq!(five.double_value(&[]), 5.0);
    }

    #[test]
    fn typed_errors() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let asp = build(&vs);
        let err = asp
            .forward_t(&Tensor::zeros([1, 5], (Kind::Float, Device::Cpu)), true)
            .unwrap_err();
        assert!(err.to_string().contains("asp_mtl input"), "{err}");
        let uneven = |p: &nn::Path, d: i64| -> Result<Box<dyn Backbone>> {
            let w = if p.components().any(|c| c == "task1") {
                2
            } else {
                3
            };
            Ok(Box::new(crate::arch::MlpConfig::new([d, w]).build(p)?))
        };
        let err = AspMtlConfig::new(4, 2)
            .build(&(vs.root() / "u"), &MlpBuilder::new([2]), &uneven)
            .unwrap_err();
        assert!(
            err.to_string().contains("private encoder of task 1"),
            "{err}"
        );
        assert!(AspMtlConfig::new(4, 2)
            .adversarial_weight(-0.1)
            .build(&vs.root(), &MlpBuilder::new([2]), &MlpBuilder::new([2]))
            .is_err());
    }
}
