//! The head of a regression task with one or more real-valued outputs.

use crate::layer::Dense;
use crate::loss::{l1_in, mse_in};
use crate::{Metrics, RegressionMetrics, TaskHead};
use mtl_core::{Result, TaskTarget};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// The training loss of a [`RegressionHead`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegressionLoss {
    /// Mean squared error: the Gaussian negative log-likelihood up to constants.
    #[default]
    Mse,
    /// Mean absolute error: less swayed by outlying targets.
    L1,
}

/// A linear layer from features to `outputs` real values, trained with the chosen
/// [`RegressionLoss`] and evaluated by MSE (primary) and MAE, both lower-is-better.
///
/// Outputs are `[B, outputs]`; targets are `[B, outputs]`, or `[B]` for one output.
///
/// ```
/// use mtl_core::TaskTarget;
/// use mtl_heads::{RegressionHead, RegressionLoss, TaskHead};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let path = vs.root() / "task2" / "head";
/// let head = RegressionHead::new(&path, "price", 8, 1, RegressionLoss::L1)?;
/// let pred = head.forward_t(&Tensor::randn([4, 8], (Kind::Float, Device::Cpu)), false)?;
/// assert_eq!(pred.size(), [4, 1]);
/// let target = TaskTarget::new(Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]));
/// assert!(head.loss(&pred, &target)?.double_value(&[]) >= 0.0);
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug)]
pub struct RegressionHead {
    name: String,
    outputs: i64,
    loss: RegressionLoss,
    layer: Dense,
}

impl RegressionHead {
    /// Builds the head's layer under `path` (variables `weight`, `bias`). Fails with
    /// [`Error::Config`](mtl_core::Error::Config) unless `in_dim >= 1` and
    /// `outputs >= 1`.
    pub fn new(
        path: &nn::Path,
        name: impl Into<String>,
        in_dim: i64,
        outputs: i64,
        loss: RegressionLoss,
    ) -> Result<Self> {
        let name = name.into();
        let layer = Dense::new(path, &name, in_dim, outputs)?;
        Ok(RegressionHead {
            name,
            outputs,
            loss,
            layer,
        })
    }

    /// The number of outputs.
    pub fn outputs(&self) -> i64 {
        self.outputs
    }

    /// The training loss.
    pub fn regression_loss(&self) -> RegressionLoss {
        self.loss
    }
}

impl TaskHead for RegressionHead {
    fn name(&self) -> &str {
        &self.name
    }

    fn in_dim(&self) -> i64 {
        self.layer.in_dim()
    }

    fn forward_t(&self, features: &Tensor, _train: bool) -> Result<Tensor> {
        self.layer
            .forward(&format!("head `{}`", self.name), features)
    }

    fn loss(&self, output: &Tensor, target: &TaskTarget) -> Result<Tensor> {
        let outputs = Some(self.outputs);
        match self.loss {
            RegressionLoss::Mse => mse_in(
                &format!("head `{}` mse", self.name),
                output,
                target,
                outputs,
            ),
            RegressionLoss::L1 => {
                l1_in(&format!("head `{}` l1", self.name), output, target, outputs)
            }
        }
    }

    fn metrics(&self) -> Box<dyn Metrics> {
        let context = format!("head `{}` metrics", self.name);
        Box::new(RegressionMetrics::new(self.outputs).with_context(context))
    }
}
