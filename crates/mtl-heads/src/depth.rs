//! The head of a depth-estimation task: one distance per pixel of a feature map, as the
//! depth task of NYUv2.

use crate::kit::{
    and_masks, describe, entry_mask, flat_target, is_float, is_integer, loss_context,
    metrics_context, no_nan_where_marked, over_labelled, regression_rows, Conv1x1, Mean,
};
use crate::{MetricValue, Metrics, TaskHead};
use mtl_core::{Error, Result, TaskTarget};
use tch::{nn, Kind, Reduction, Tensor};

/// Mean absolute error of per-pixel depths `pred` `[B, 1, H, W]` against depth maps
/// `[B, H, W]` (or `[B, 1, H, W]`), over the valid pixels only, as LibMTL's NYUv2
/// `DepthLoss`.
///
/// A pixel is valid when its depth is positive — sensors write 0 (or NaN) where they
/// measured nothing — and, when the target has a mask, its image (mask `[B]`) or the
/// pixel itself (mask `[B, H, W]`) is marked. A NaN the mask marks as measured is an
/// error naming the image and the pixel. No valid pixel gives an exact,
/// differentiable zero.
///
/// ```
/// use mtl_core::TaskTarget;
/// use tch::Tensor;
///
/// let pred = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([1, 1, 2, 2]);
/// // The third pixel was not measured.
/// let depth = TaskTarget::new(Tensor::from_slice(&[1.5f32, 2.0, 0.0, 3.0]).view([1, 2, 2]));
/// let loss = mtl_heads::depth_l1(&pred, &depth)?;
/// assert!((loss.double_value(&[]) - (0.5 + 0.0 + 1.0) / 3.0).abs() < 1e-6);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn depth_l1(pred: &Tensor, target: &TaskTarget) -> Result<Tensor> {
    depth_l1_in("depth_l1", pred, target)
}

/// [`depth_l1`], with errors naming `ctx`.
fn depth_l1_in(ctx: &str, pred: &Tensor, target: &TaskTarget) -> Result<Tensor> {
    let pixels = DepthPixels::of(ctx, pred, target)?;
    let rows = regression_rows(ctx, &pixels.pred, &pixels.target, None)?;
    over_labelled(&pixels.pred, rows, |pred_l, depth| {
        pred_l.f_l1_loss(depth, Reduction::Mean)
    })
}

/// A depth batch flattened to one row per pixel.
struct DepthPixels {
    /// `[B·H·W]` predicted depths.
    pred: Tensor,
    /// `[B·H·W]` depths, masked where the pixel is not valid.
    target: TaskTarget,
}

impl DepthPixels {
    /// Checks `pred` (floating `[B, 1, H, W]`) against the target (numeric `[B, H, W]` or
    /// `[B, 1, H, W]`, mask `[B]` or `[B, H, W]`) and flattens both.
    fn of(ctx: &str, pred: &Tensor, target: &TaskTarget) -> Result<Self> {
        let size = pred.size();
        if !is_float(pred.kind()) || size.len() != 4 || size[1] != 1 {
            return Err(Error::shape(
                ctx,
                "floating [batch, 1, height, width] depths",
                describe(pred),
            ));
        }
        let grid = [size[0], size[2], size[3]];
        let depth = &target.values;
        let vsize = depth.size();
        let kind = depth.kind();
        if !(is_float(kind) || is_integer(kind)) || (vsize != grid && vsize != size) {
            return Err(Error::shape(
                ctx,
                format!("numeric {grid:?} depth maps"),
                describe(depth),
            ));
        }
        let depth = depth.f_to_device(pred.device())?.f_reshape(grid)?;
        let marked = entry_mask(ctx, target, &grid, pred.device())?;
        no_nan_where_marked(ctx, &depth.f_isnan()?, marked.as_ref())?;
        let valid = and_masks(marked, Some(depth.f_gt(0)?))?;
        Ok(DepthPixels {
            pred: pred.f_reshape([-1])?,
            target: flat_target(depth.f_reshape([-1])?, valid)?,
        })
    }
}

/// A 1×1 convolution from feature maps `[B, in_channels, H, W]` to one depth per pixel,
/// trained with [`depth_l1`] and evaluated by absolute and relative error (see
/// [`DepthMetrics`]).
///
/// Outputs are `[B, 1, H, W]`, unconstrained (as LibMTL's NYUv2 decoder); targets are
/// depth maps `[B, H, W]` or `[B, 1, H, W]` with 0 where nothing was measured.
///
/// ```
/// use mtl_core::TaskTarget;
/// use mtl_heads::{DepthHead, TaskHead};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let head = DepthHead::new(&(vs.root() / "task1" / "head"), "depth", 16)?;
/// let depth = head.forward_t(&Tensor::randn([2, 16, 4, 5], (Kind::Float, Device::Cpu)), true)?;
/// assert_eq!(depth.size(), [2, 1, 4, 5]);
/// let truth = Tensor::rand([2, 4, 5], (Kind::Float, Device::Cpu)) * 10.0;
/// assert!(head.loss(&depth, &TaskTarget::new(truth))?.double_value(&[]) > 0.0);
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug)]
pub struct DepthHead {
    name: String,
    layer: Conv1x1,
}

impl DepthHead {
    /// Builds the head's layer under `path` (variables `weight` `[1, in_channels, 1, 1]`
    /// and `bias`). Fails with [`Error::Config`] unless `in_channels >= 1`.
    pub fn new(path: &nn::Path, name: impl Into<String>, in_channels: i64) -> Result<Self> {
        let name = name.into();
        let layer = Conv1x1::new(path, &name, in_channels, 1)?;
        Ok(DepthHead { name, layer })
    }
}

impl TaskHead for DepthHead {
    fn name(&self) -> &str {
        &self.name
    }

    fn in_dim(&self) -> i64 {
        self.layer.in_channels()
    }

    fn forward_t(&self, features: &Tensor, _train: bool) -> Result<Tensor> {
        self.layer.forward(features)
    }

    fn loss(&self, output: &Tensor, target: &TaskTarget) -> Result<Tensor> {
        depth_l1_in(&loss_context(&self.name, "depth_l1"), output, target)
    }

    fn metrics(&self) -> Box<dyn Metrics> {
        Box::new(DepthMetrics::new().with_context(metrics_context(&self.name)))
    }
}

/// Absolute error (primary) and relative error of per-pixel depths, from predictions
/// `[B, 1, H, W]` and depth maps `[B, H, W]`, as LibMTL's NYUv2 `DepthMetric`.
///
/// `abs_err` is the mean of `|pred − depth|` and `rel_err` the mean of
/// `|pred − depth| / depth`, both over every valid pixel of the evaluation (valid as in
/// [`depth_l1`]). LibMTL averages per-batch means weighted by their valid-pixel counts,
/// which is the same number. Both are lower-is-better.
///
/// ```
/// use mtl_core::TaskTarget;
/// use mtl_heads::{DepthMetrics, Metrics};
/// use tch::Tensor;
///
/// let mut m = DepthMetrics::new();
/// let pred = Tensor::from_slice(&[1.0f32, 3.0]).view([1, 1, 1, 2]);
/// m.update(&pred, &TaskTarget::new(Tensor::from_slice(&[2.0f32, 4.0]).view([1, 1, 2])))?;
/// let values = m.compute();
/// assert_eq!((values[0].name.as_str(), values[0].value), ("abs_err", 1.0));
/// assert_eq!((values[1].name.as_str(), values[1].value), ("rel_err", (0.5 + 0.25) / 2.0));
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct DepthMetrics {
    context: String,
    /// Absolute and relative errors over the valid pixels.
    abs_err: Mean,
    rel_err: Mean,
}

impl Default for DepthMetrics {
    fn default() -> Self {
        DepthMetrics {
            context: "depth metrics".to_string(),
            abs_err: Mean::new(),
            rel_err: Mean::new(),
        }
    }
}

impl DepthMetrics {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Names `context` (e.g. the head) in the errors of [`Metrics::update`].
    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = context.into();
        self
    }
}

impl Metrics for DepthMetrics {
    fn update(&mut self, output: &Tensor, target: &TaskTarget) -> Result<()> {
        let pixels = DepthPixels::of(&self.context, output, target)?;
        let (pred, depth) = regression_rows(&self.context, &pixels.pred, &pixels.target, None)?;
        let depth = depth.f_to_kind(Kind::Double)?;
        let error = pred
            .f_detach()?
            .f_to_kind(Kind::Double)?
            .f_sub(&depth)?
            .f_abs()?;
        let relative = error.f_div(&depth)?;
        self.abs_err.add(&error)?;
        self.rel_err.add(&relative)
    }

    fn compute(&self) -> Vec<MetricValue> {
        let (Some(abs_err), Some(rel_err)) = (self.abs_err.value(), self.rel_err.value()) else {
            return Vec::new();
        };
        vec![
            MetricValue::new("abs_err", abs_err, false),
            MetricValue::new("rel_err", rel_err, false),
        ]
    }

    fn reset(&mut self) {
        self.abs_err.reset();
        self.rel_err.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn maps(v: &[f32], shape: &[i64]) -> Tensor {
        Tensor::from_slice(v).view(shape)
    }

    #[test]
    fn metrics_pool_valid_pixels_over_batches() {
        let mut m = DepthMetrics::new();
        assert!(m.compute().is_empty());
        // Image 0: errors 1 (depth 2) and 2 (depth 4); the NaN and 0 pixels are unmeasured.
        let pred = maps(&[1.0, 6.0, 9.0, 5.0], &[1, 1, 2, 2]);
        let depth = maps(&[2.0, 4.0, f32::NAN, 0.0], &[1, 2, 2]);
        m.update(&pred, &TaskTarget::new(depth)).unwrap();
        // Two images, the second masked out: one more error of 3 at depth 1.
        let pred = maps(&[4.0, 0.0, 0.0, 0.0], &[2, 1, 1, 2]);
        let depth = maps(&[1.0, -2.0, 7.0, 7.0], &[2, 1, 1, 2]);
        let target = TaskTarget::masked(depth, Tensor::from_slice(&[true, false]));
        m.update(&pred, &target).unwrap();
        let values = m.compute();
        assert_eq!(values[0].value, (1.0 + 2.0 + 3.0) / 3.0);
        assert_eq!(values[1].value, (0.5 + 0.5 + 3.0) / 3.0);
        assert!(values.iter().all(|v| !v.higher_is_better));
        m.reset();
        assert!(m.compute().is_empty());
    }

    #[test]
    fn shapes_that_do_not_fit() {
        let pred = Tensor::zeros([2, 2, 3, 3], (Kind::Float, Device::Cpu));
        let depth = TaskTarget::new(Tensor::ones([2, 3, 3], (Kind::Float, Device::Cpu)));
        let err = depth_l1(&pred, &depth).unwrap_err();
        assert!(matches!(&err, Error::Shape { context, .. } if context == "depth_l1"));
        let pred = Tensor::zeros([2, 1, 3, 3], (Kind::Float, Device::Cpu));
        let small = TaskTarget::new(Tensor::ones([2, 3, 2], (Kind::Float, Device::Cpu)));
        assert!(matches!(depth_l1(&pred, &small), Err(Error::Shape { .. })));
        let bad_mask = TaskTarget::masked(
            Tensor::ones([2, 3, 3], (Kind::Float, Device::Cpu)),
            Tensor::ones([3], (Kind::Bool, Device::Cpu)),
        );
        let err = depth_l1(&pred, &bad_mask).unwrap_err();
        assert!(matches!(&err, Error::Shape { context, .. } if context == "depth_l1 mask"));
    }
}
