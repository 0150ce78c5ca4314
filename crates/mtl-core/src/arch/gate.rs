//! The softmax gate of mixture-of-experts layers (Jacobs et al., "Adaptive Mixtures of
//! Local Experts", 1991; per task in MMoE, CGC and PLE): `g(x) = softmax(W x + b)` over
//! `E` experts, and the gated sum `Σ_e g_e(x) · expert_e(x)`.

use crate::init::{self, Init};
use crate::{Error, Result};
use tch::{nn, Kind, Tensor};

/// A linear map to one logit per expert, normalised by a softmax.
#[derive(Debug)]
pub struct SoftmaxGate {
    linear: nn::Linear,
    num_experts: i64,
    name: String,
}

impl SoftmaxGate {
    /// A gate under `path` reading `in_dim` inputs and weighing `num_experts` experts,
    /// its linear layer initialised with `init` (LibMTL's gates are a default
    /// `nn.Linear`: [`Init::Pytorch`]); `name` ("mmoe gate of task 1") labels its shape
    /// errors.
    pub fn new(
        path: &nn::Path,
        in_dim: i64,
        num_experts: usize,
        name: String,
        init: Init,
    ) -> Result<Self> {
        let num_experts = num_experts as i64;
        let linear = init::linear(path, in_dim, num_experts, init)?;
        Ok(SoftmaxGate {
            linear,
            num_experts,
            name,
        })
    }

    /// The number of experts it weighs.
    pub fn num_experts(&self) -> i64 {
        self.num_experts
    }

    /// `[B, E]` gate weights, each row summing to one. A feature map `[B, C, H, W]`
    /// is read through global average pooling, as `[B, C]`.
    pub fn weights(&self, xs: &Tensor) -> Result<Tensor> {
        Ok(super::pooled(xs)?
            .f_linear(&self.linear.ws, self.linear.bs.as_ref())?
            .f_softmax(-1, Kind::Float)?)
    }

    /// The gated sum of `experts` (`[B, E, D]`, or `[B, E, C, H, W]` for feature maps)
    /// with this gate's weights for `xs`.
    pub fn mix(&self, xs: &Tensor, experts: &Tensor) -> Result<Tensor> {
        let size = experts.size();
        if size.len() < 3 || size[1] != self.num_experts {
            return Err(Error::shape(
                self.name.clone(),
                format!("[batch, {} experts, width, …]", self.num_experts),
                format!("{size:?}"),
            ));
        }
        mix(&self.weights(xs)?, experts)
    }
}

/// `Σ_e w[b, e] · experts[b, e, …]`: `[B, E]` weights times `[B, E, …]` experts (any
/// trailing shape: vectors, feature maps), giving `[B, …]`.
pub fn mix(weights: &Tensor, experts: &Tensor) -> Result<Tensor> {
    let size = experts.size();
    if size.len() < 3 {
        return Err(Error::shape(
            "expert mixture",
            "experts of shape [batch, experts, width, …]",
            format!("{size:?}"),
        ));
    }
    // One batched matmul over the flattened trailing axes, whatever they are.
    let flat = experts.f_reshape([size[0], size[1], -1])?;
    let mixed = weights.f_unsqueeze(1)?.f_matmul(&flat)?.f_squeeze_dim(1)?;
    let mut out = vec![size[0]];
    out.extend_from_slice(&size[2..]);
    Ok(mixed.f_reshape(out.as_slice())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn rows_sum_to_one_and_mix_is_a_convex_combination() {
        // Tests draw from libtorch's process-wide generator (initialisation, randn):
        // the lock keeps parallel tests from taking each other's seeded draws.
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let gate = SoftmaxGate::new(&vs.root(), 4, 3, "g".into(), Init::Pytorch).unwrap();
        let x = Tensor::randn([5, 4], (Kind::Float, Device::Cpu));
        let w = gate.weights(&x).unwrap();
        let ones = Tensor::ones([5], (Kind::Float, Device::Cpu));
        assert!(w
            .sum_dim_intlist(1, false, Kind::Float)
            .allclose(&ones, 1e-6, 1e-6, false));
        // Experts that all output the same vector mix to that vector.
        let e = Tensor::arange(2, (Kind::Float, Device::Cpu))
            .view([1, 1, 2])
            .expand([5, 3, 2], false);
        let m = gate.mix(&x, &e).unwrap();
        assert!(m.allclose(&e.select(1, 0), 1e-6, 1e-6, false));
        let err = gate
            .mix(&x, &Tensor::zeros([5, 2, 2], (Kind::Float, Device::Cpu)))
            .unwrap_err();
        assert!(err.to_string().contains("in g:"), "{err}");
    }
}
