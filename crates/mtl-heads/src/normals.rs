//! The head of a surface-normal task: one unit 3-vector per pixel of a feature map, the
//! orientation of the surface seen there, as the normals task of NYUv2.

use crate::kit::{
    and_masks, describe, entry_mask, flat_target, is_float, is_integer, loss_context,
    metrics_context, no_nan_where_marked, regression_rows, to_batch_row, zero_loss, Conv1x1,
};
use crate::{MetricValue, Metrics, TaskHead};
use mtl_core::{Error, Result, TaskTarget};
use tch::{nn, Kind, Tensor};

/// The smallest length a vector is divided by when scaled to unit length, as
/// `torch.nn.functional.normalize`: a zero vector stays zero instead of becoming NaN.
const NORM_EPS: f64 = 1e-12;

/// The angle thresholds, in degrees, of the "within" metrics of NYUv2.
const THRESHOLDS: [(f64, &str); 3] = [
    (11.25, "within_11.25"),
    (22.5, "within_22.5"),
    (30.0, "within_30"),
];

/// `x` scaled to unit length along dimension 1.
fn unit(x: &Tensor) -> Result<Tensor> {
    let length = x
        .f_norm_scalaropt_dim(2, [1i64].as_slice(), true)?
        .f_clamp_min(NORM_EPS)?;
    Ok(x.f_div(&length)?)
}

/// One minus the mean cosine between predicted normals `pred` `[B, 3, H, W]` and true
/// normals `[B, 3, H, W]`, over the valid pixels, as LibMTL's NYUv2 `NormalLoss`.
///
/// Both vectors are scaled to unit length first (LibMTL assumes the truth already is).
/// A pixel is valid when its true normal is not the zero vector — what NYUv2 stores
/// where no normal was measured — and, when the target has a mask, its image (mask
/// `[B]`) or the pixel itself (mask `[B, H, W]`) is marked. No valid pixel gives an
/// exact, differentiable zero.
///
/// ```
/// use mtl_core::TaskTarget;
/// use tch::Tensor;
///
/// // Two pixels: predictions (1, 0, 0) and (0, 2, 0); truths (0, 1, 0) and (0, 1, 0).
/// let pred = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 2.0, 0.0, 0.0]).view([1, 3, 1, 2]);
/// let truth = Tensor::from_slice(&[0.0f32, 0.0, 1.0, 1.0, 0.0, 0.0]).view([1, 3, 1, 2]);
/// let loss = mtl_heads::normal_cosine_loss(&pred, &TaskTarget::new(truth))?;
/// // Cosines 0 and 1.
/// assert!((loss.double_value(&[]) - 0.5).abs() < 1e-6);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn normal_cosine_loss(pred: &Tensor, target: &TaskTarget) -> Result<Tensor> {
    normal_cosine_in("normal_cosine_loss", pred, target)
}

/// [`normal_cosine_loss`], with errors naming `ctx`.
fn normal_cosine_in(ctx: &str, pred: &Tensor, target: &TaskTarget) -> Result<Tensor> {
    let pixels = NormalPixels::of(ctx, pred, target)?;
    let cosines = pixels.cosines(ctx)?;
    if cosines.numel() == 0 {
        return zero_loss(&pixels.pred);
    }
    Ok(cosines.f_mean(None::<Kind>)?.f_neg()?.f_add_scalar(1.0)?)
}

/// A normals batch flattened to one row per pixel.
struct NormalPixels {
    /// `[B·H·W, 3]` predicted normals.
    pred: Tensor,
    /// `[B·H·W, 3]` true normals, masked where the pixel is not valid.
    target: TaskTarget,
    per_image: i64,
}

impl NormalPixels {
    /// Checks `pred` (floating `[B, 3, H, W]`) against the target (numeric
    /// `[B, 3, H, W]`, mask `[B]` or `[B, H, W]`) and flattens both.
    fn of(ctx: &str, pred: &Tensor, target: &TaskTarget) -> Result<Self> {
        let size = pred.size();
        if !is_float(pred.kind()) || size.len() != 4 || size[1] != 3 {
            return Err(Error::shape(
                ctx,
                "floating [batch, 3, height, width] normals",
                describe(pred),
            ));
        }
        let normals = &target.values;
        let kind = normals.kind();
        if !(is_float(kind) || is_integer(kind)) || normals.size() != size {
            return Err(Error::shape(
                ctx,
                format!("numeric {size:?} normal maps"),
                describe(normals),
            ));
        }
        let grid = [size[0], size[2], size[3]];
        let normals = normals.f_to_device(pred.device())?;
        let measured = normals.f_ne(0)?.f_any_dim(1, false)?;
        let marked = entry_mask(ctx, target, &grid, pred.device())?;
        let nan = normals.f_isnan()?.f_any_dim(1, false)?;
        no_nan_where_marked(ctx, &nan, marked.as_ref())?;
        let valid = and_masks(marked, Some(measured))?;
        let rows =
            |t: &Tensor| -> Result<Tensor> { Ok(t.f_permute([0, 2, 3, 1])?.f_reshape([-1, 3])?) };
        Ok(NormalPixels {
            pred: rows(pred)?,
            target: flat_target(rows(&normals)?, valid)?,
            per_image: size[2] * size[3],
        })
    }

    /// The cosine between prediction and truth at each valid pixel, `[n]`.
    fn cosines(&self, ctx: &str) -> Result<Tensor> {
        let (pred, truth) = regression_rows(ctx, &self.pred, &self.target, Some(3))
            .map_err(|e| to_batch_row(e, self.per_image))?;
        Ok(unit(&pred)?
            .f_mul(&unit(&truth)?)?
            .f_sum_dim_intlist(1, false, None::<Kind>)?)
    }
}

/// A 1×1 convolution from feature maps `[B, in_channels, H, W]` to three channels per
/// pixel, scaled to unit length, trained with [`normal_cosine_loss`] and evaluated by
/// angle errors (see [`NormalMetrics`]).
///
/// Outputs are unit normals `[B, 3, H, W]` (a pixel whose three raw outputs are all zero
/// stays zero); targets are normal maps `[B, 3, H, W]`, zero where nothing was measured.
///
/// ```
/// use mtl_core::TaskTarget;
/// use mtl_heads::{NormalHead, TaskHead};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let head = NormalHead::new(&(vs.root() / "task2" / "head"), "normal", 16)?;
/// let normals = head.forward_t(&Tensor::randn([2, 16, 4, 5], (Kind::Float, Device::Cpu)), true)?;
/// assert_eq!(normals.size(), [2, 3, 4, 5]);
/// let length = normals.square().sum_dim_intlist(1, false, Kind::Float).sqrt();
/// assert!((length - 1.0).abs().max().double_value(&[]) < 1e-5);
/// let truth = Tensor::randn([2, 3, 4, 5], (Kind::Float, Device::Cpu));
/// assert!(head.loss(&normals, &TaskTarget::new(truth))?.double_value(&[]) > 0.0);
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug)]
pub struct NormalHead {
    name: String,
    layer: Conv1x1,
}

impl NormalHead {
    /// Builds the head's layer under `path` (variables `weight` `[3, in_channels, 1, 1]`
    /// and `bias`). Fails with [`Error::Config`] unless `in_channels >= 1`.
    pub fn new(path: &nn::Path, name: impl Into<String>, in_channels: i64) -> Result<Self> {
        let name = name.into();
        let layer = Conv1x1::new(path, &name, in_channels, 3)?;
        Ok(NormalHead { name, layer })
    }
}

impl TaskHead for NormalHead {
    fn name(&self) -> &str {
        &self.name
    }

    fn in_dim(&self) -> i64 {
        self.layer.in_channels()
    }

    fn forward_t(&self, features: &Tensor, _train: bool) -> Result<Tensor> {
        let raw = self.layer.forward(features)?;
        unit(&raw)
    }

    fn loss(&self, output: &Tensor, target: &TaskTarget) -> Result<Tensor> {
        let ctx = loss_context(&self.name, "normal_cosine_loss");
        normal_cosine_in(&ctx, output, target)
    }

    fn metrics(&self) -> Box<dyn Metrics> {
        Box::new(NormalMetrics::new().with_context(metrics_context(&self.name)))
    }
}

/// The angle errors of predicted surface normals, from predictions `[B, 3, H, W]` and
/// normal maps `[B, 3, H, W]`, as LibMTL's NYUv2 `NormalMetric`.
///
/// At each valid pixel (as in [`normal_cosine_loss`]) the error is the angle, in
/// degrees, between the predicted and the true normal. Over every valid pixel of the
/// evaluation: `mean_angle` (primary) and `median_angle` (lower is better; the median of
/// an even count is the mean of the two middle errors, as NumPy's), and the fractions
/// of pixels with an error below 11.25°, 22.5° and 30°: `within_11.25`, `within_22.5`,
/// `within_30` (in `[0, 1]`, higher is better). The median needs every error, so the
/// accumulator keeps one `f32` per valid pixel.
///
/// ```
/// use mtl_core::TaskTarget;
/// use mtl_heads::{Metrics, NormalMetrics};
/// use tch::Tensor;
///
/// let mut m = NormalMetrics::new();
/// // Errors of 0° and 90°.
/// let pred = Tensor::from_slice(&[1.0f32, 1.0, 0.0, 0.0, 0.0, 0.0]).view([1, 3, 1, 2]);
/// let truth = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0, 0.0, 0.0]).view([1, 3, 1, 2]);
/// m.update(&pred, &TaskTarget::new(truth))?;
/// let values = m.compute();
/// assert!((values[0].value - 45.0).abs() < 1e-9);
/// assert_eq!(values[2].name, "within_11.25");
/// assert_eq!(values[2].value, 0.5);
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct NormalMetrics {
    context: String,
    errors: Vec<f32>,
    sum: f64,
    within: [u64; 3],
}

impl Default for NormalMetrics {
    fn default() -> Self {
        NormalMetrics {
            context: "normal metrics".to_string(),
            errors: Vec::new(),
            sum: 0.0,
            within: [0; 3],
        }
    }
}

impl NormalMetrics {
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

/// The median of `values` (the mean of the two middle ones for an even count); NaN
/// when empty.
fn median(values: &[f32]) -> f64 {
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    let mut work = values.to_vec();
    let (below, &mut upper, _) = work.select_nth_unstable_by(n / 2, f32::total_cmp);
    if n % 2 == 1 {
        return f64::from(upper);
    }
    let lower = below.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (f64::from(lower) + f64::from(upper)) / 2.0
}

impl Metrics for NormalMetrics {
    fn update(&mut self, output: &Tensor, target: &TaskTarget) -> Result<()> {
        let pixels = NormalPixels::of(&self.context, output, target)?;
        let cosines = pixels.cosines(&self.context)?;
        let degrees = cosines
            .f_detach()?
            .f_to_kind(Kind::Double)?
            .f_clamp(-1.0, 1.0)?
            .f_acos()?
            .f_rad2deg()?
            .f_to_device(tch::Device::Cpu)?;
        let degrees = Vec::<f64>::try_from(&degrees)?;
        for &angle in &degrees {
            self.sum += angle;
            for (count, (threshold, _)) in self.within.iter_mut().zip(THRESHOLDS) {
                *count += u64::from(angle < threshold);
            }
        }
        self.errors.extend(degrees.iter().map(|&a| a as f32));
        Ok(())
    }

    fn compute(&self) -> Vec<MetricValue> {
        if self.errors.is_empty() {
            return Vec::new();
        }
        let n = self.errors.len() as f64;
        let mut values = vec![
            MetricValue::new("mean_angle", self.sum / n, false),
            MetricValue::new("median_angle", median(&self.errors), false),
        ];
        for (&count, (_, name)) in self.within.iter().zip(THRESHOLDS) {
            values.push(MetricValue::new(name, count as f64 / n, true));
        }
        values
    }

    fn reset(&mut self) {
        *self = NormalMetrics {
            context: std::mem::take(&mut self.context),
            ..NormalMetrics::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// One image `[1, 3, 1, n]` holding the given vectors as its pixels.
    fn image(vectors: &[[f32; 3]]) -> Tensor {
        let flat: Vec<f32> = vectors.iter().flatten().copied().collect();
        Tensor::from_slice(&flat)
            .view([-1, 3])
            .transpose(0, 1)
            .reshape([1, 3, 1, vectors.len() as i64])
    }

    fn value(values: &[MetricValue], name: &str) -> f64 {
        values.iter().find(|v| v.name == name).unwrap().value
    }

    #[test]
    fn angle_errors_by_hand() {
        let mut m = NormalMetrics::new();
        let c = |deg: f32| deg.to_radians().cos();
        let s = |deg: f32| deg.to_radians().sin();
        // Errors of 10°, 20°, 25° and 60° against +x; the zero truth is unmeasured, and
        // predictions need not be unit length.
        let pred = image(&[
            [c(10.0), s(10.0), 0.0],
            [2.0 * c(20.0), 0.0, 2.0 * s(20.0)],
            [c(25.0), -s(25.0), 0.0],
            [0.5 * c(60.0), 0.5 * s(60.0), 0.0],
            [0.0, 1.0, 0.0],
        ]);
        let truth = image(&[
            [1.0, 0.0, 0.0],
            [1.0, 0.0, 0.0],
            [3.0, 0.0, 0.0],
            [1.0, 0.0, 0.0],
            [0.0, 0.0, 0.0],
        ]);
        m.update(&pred, &TaskTarget::new(truth)).unwrap();
        let values = m.compute();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-3;
        assert!(close(value(&values, "mean_angle"), 115.0 / 4.0));
        assert!(close(value(&values, "median_angle"), 22.5));
        assert_eq!(value(&values, "within_11.25"), 0.25);
        assert_eq!(value(&values, "within_22.5"), 0.5);
        assert_eq!(value(&values, "within_30"), 0.75);

        // One more image with a per-pixel mask: its only marked pixel is off by 180°.
        let pred = image(&[[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]);
        let truth = image(&[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]);
        let mask = Tensor::from_slice(&[true, false]).view([1, 1, 2]);
        m.update(&pred, &TaskTarget::masked(truth, mask)).unwrap();
        let values = m.compute();
        assert!(close(value(&values, "median_angle"), 25.0));
        assert!(close(value(&values, "mean_angle"), 295.0 / 5.0));
        m.reset();
        assert!(m.compute().is_empty());
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn a_nan_normal_on_a_measured_pixel_is_reported() {
        let pred = Tensor::ones([1, 3, 1, 1], (Kind::Float, Device::Cpu));
        let truth = Tensor::from_slice(&[f32::NAN, 0.0, 0.0]).view([1, 3, 1, 1]);
        let err = normal_cosine_loss(&pred, &TaskTarget::new(truth)).unwrap_err();
        assert!(
            matches!(&err, Error::NonFinite { what, .. } if what == "normal_cosine_loss target"),
            "{err}"
        );
    }
}
