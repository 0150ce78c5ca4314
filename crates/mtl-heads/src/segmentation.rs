//! The head of a semantic-segmentation task: one class per pixel of a feature map, as
//! the 13-class segmentation of NYUv2.

use crate::kit::{
    and_masks, check_count, class_rows, describe, entry_mask, flat_target, is_integer,
    loss_context, metrics_context, to_batch_row, Conv1x1,
};
use crate::loss::cross_entropy_in;
use crate::rows::logits_size;
use crate::{MetricValue, Metrics, TaskHead};
use mtl_core::{Error, Result, TaskTarget};
use tch::{nn, Device, Kind, Tensor};

/// The label of pixels without a class, unless set otherwise: LibMTL's NYUv2 loader
/// marks them `-1` (Cityscapes-style data uses 255; see
/// [`SegmentationHead::with_ignore_index`]).
pub const DEFAULT_IGNORE_INDEX: i64 = -1;

/// Softmax cross-entropy of per-pixel `logits` `[B, C, H, W]` against class maps
/// (integer `[B, H, W]`), averaged over the labelled pixels: those whose label is not
/// `ignore_index` and, when the target has a mask, whose image (mask `[B]`) or pixel
/// (mask `[B, H, W]`) is marked. This is `torch.nn.functional.cross_entropy` with
/// `ignore_index`, plus the mask.
///
/// A label that is neither `ignore_index` nor in `0..C` is
/// [`Error::LabelOutOfRange`] at its image's row. No labelled pixel gives an exact,
/// differentiable zero.
///
/// ```
/// use mtl_core::TaskTarget;
/// use tch::Tensor;
///
/// // One 1×2 image, two classes: the first pixel's logits favour class 0.
/// let logits = Tensor::from_slice(&[2.0f32, 0.0, 0.0, 0.0]).view([1, 2, 1, 2]);
/// // The second pixel is unlabelled (-1).
/// let labels = TaskTarget::new(Tensor::from_slice(&[0i64, -1]).view([1, 1, 2]));
/// let loss = mtl_heads::pixel_cross_entropy(&logits, &labels, -1)?;
/// assert!((loss.double_value(&[]) - (1.0 + (-2.0f64).exp()).ln()).abs() < 1e-6);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn pixel_cross_entropy(
    logits: &Tensor,
    target: &TaskTarget,
    ignore_index: i64,
) -> Result<Tensor> {
    pixel_cross_entropy_in("pixel_cross_entropy", logits, target, None, ignore_index)
}

/// [`pixel_cross_entropy`], with errors naming `ctx` and the channels checked against
/// `classes`.
fn pixel_cross_entropy_in(
    ctx: &str,
    logits: &Tensor,
    target: &TaskTarget,
    classes: Option<i64>,
    ignore_index: i64,
) -> Result<Tensor> {
    let pixels = Pixels::of(ctx, logits, target, classes, ignore_index)?;
    cross_entropy_in(ctx, &pixels.logits, &pixels.target, classes)
        .map_err(|e| to_batch_row(e, pixels.per_image))
}

/// A segmentation batch flattened to one row per pixel.
struct Pixels {
    /// `[B·H·W, C]`, image by image, each in row-major pixel order.
    logits: Tensor,
    /// `[B·H·W]` class labels, masked where the pixel is unlabelled.
    target: TaskTarget,
    per_image: i64,
}

impl Pixels {
    /// Checks `logits` (floating `[B, C, H, W]`, `C == classes` when given) against the
    /// target (integer `[B, H, W]`, mask `[B]` or `[B, H, W]`) and flattens both.
    fn of(
        ctx: &str,
        logits: &Tensor,
        target: &TaskTarget,
        classes: Option<i64>,
        ignore_index: i64,
    ) -> Result<Self> {
        let axes = ["batch", "classes", "height", "width"];
        let size = logits_size(ctx, logits, &axes, 1, classes)?;
        let grid = [size[0], size[2], size[3]];
        let labels = &target.values;
        if !is_integer(labels.kind()) || labels.size() != grid {
            return Err(Error::shape(
                ctx,
                format!("integer {grid:?} class maps"),
                describe(labels),
            ));
        }
        let labels = labels.f_to_device(logits.device())?;
        let marked = entry_mask(ctx, target, &grid, logits.device())?;
        let valid = and_masks(marked, Some(labels.f_ne(ignore_index)?))?;
        Ok(Pixels {
            logits: logits.f_permute([0, 2, 3, 1])?.f_reshape([-1, size[1]])?,
            target: flat_target(labels.f_reshape([-1])?, valid)?,
            per_image: size[2] * size[3],
        })
    }
}

/// A 1×1 convolution from feature maps `[B, in_channels, H, W]` to one logit per class
/// and pixel, trained with [`pixel_cross_entropy`] and evaluated by mIoU (primary) and
/// pixel accuracy (see [`SegmentationMetrics`]).
///
/// Outputs are logits `[B, classes, H, W]` at the features' resolution (upsample the
/// features, or the logits, to the labels' size beforehand); targets are class maps
/// `[B, H, W]` whose unlabelled pixels hold the ignore index.
///
/// ```
/// use mtl_core::TaskTarget;
/// use mtl_heads::{SegmentationHead, TaskHead};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let head = SegmentationHead::new(&(vs.root() / "task0" / "head"), "segment", 16, 13)?
///     .with_ignore_index(255);
/// let logits = head.forward_t(&Tensor::randn([2, 16, 4, 5], (Kind::Float, Device::Cpu)), true)?;
/// assert_eq!(logits.size(), [2, 13, 4, 5]);
/// let labels = Tensor::randint(13, [2, 4, 5], (Kind::Int64, Device::Cpu));
/// assert!(head.loss(&logits, &TaskTarget::new(labels))?.double_value(&[]) > 0.0);
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug)]
pub struct SegmentationHead {
    name: String,
    classes: i64,
    ignore_index: i64,
    layer: Conv1x1,
}

impl SegmentationHead {
    /// Builds the head's layer under `path` (variables `weight` `[classes, in_channels,
    /// 1, 1]` and `bias`), ignoring [`DEFAULT_IGNORE_INDEX`]. Fails with
    /// [`Error::Config`] unless `in_channels >= 1` and `classes >= 2`.
    pub fn new(
        path: &nn::Path,
        name: impl Into<String>,
        in_channels: i64,
        classes: i64,
    ) -> Result<Self> {
        let name = name.into();
        check_count("segmentation", &name, "classes", classes, 2)?;
        let layer = Conv1x1::new(path, &name, in_channels, classes)?;
        Ok(SegmentationHead {
            name,
            classes,
            ignore_index: DEFAULT_IGNORE_INDEX,
            layer,
        })
    }

    /// Ignores pixels labelled `ignore_index` instead (e.g. 255). A value inside
    /// `0..classes` takes that class out of both the loss and the metrics.
    pub fn with_ignore_index(mut self, ignore_index: i64) -> Self {
        self.ignore_index = ignore_index;
        self
    }

    /// The number of classes.
    pub fn classes(&self) -> i64 {
        self.classes
    }

    /// The label of unlabelled pixels.
    pub fn ignore_index(&self) -> i64 {
        self.ignore_index
    }
}

impl TaskHead for SegmentationHead {
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
        let ctx = loss_context(&self.name, "pixel_cross_entropy");
        pixel_cross_entropy_in(&ctx, output, target, Some(self.classes), self.ignore_index)
    }

    fn metrics(&self) -> Box<dyn Metrics> {
        let context = metrics_context(&self.name);
        Box::new(
            SegmentationMetrics::new(self.classes)
                .with_ignore_index(self.ignore_index)
                .with_context(context),
        )
    }
}

/// Mean intersection-over-union (primary) and pixel accuracy of a `classes`-way
/// segmentation, from logits `[B, classes, H, W]` and class maps `[B, H, W]`, as
/// LibMTL's NYUv2 `SegMetric`.
///
/// Every labelled pixel (not the ignore index, not masked out) of the whole evaluation
/// goes into one confusion matrix, and the scores come from it at the end, so they do
/// not depend on batching. A class's IoU is `TP / (TP + FP + FN)`, its pixels predicted
/// and labelled over those predicted or labelled; `miou` averages it over the classes
/// with a non-zero union — those present in the labels or the predictions — since a
/// class absent from both has no IoU at all. (LibMTL takes a plain mean, which is NaN
/// once a class is absent from both; on NYUv2's test set every class occurs, and the
/// two agree.) `pixel_accuracy` is the fraction of labelled pixels predicted right.
///
/// ```
/// use mtl_core::TaskTarget;
/// use mtl_heads::{Metrics, SegmentationMetrics};
/// use tch::Tensor;
///
/// let mut m = SegmentationMetrics::new(2);
/// // Four pixels predicted 0, 1, 1, 1 against labels 0, 0, 1, 1.
/// let logits = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]).view([1, 2, 2, 2]);
/// m.update(&logits, &TaskTarget::new(Tensor::from_slice(&[0i64, 0, 1, 1]).view([1, 2, 2])))?;
/// let values = m.compute();
/// // IoU of class 0: 1/2, of class 1: 2/3.
/// assert!((values[0].value - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
/// assert_eq!(values[1].value, 0.75);
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SegmentationMetrics {
    context: String,
    classes: i64,
    ignore_index: i64,
    /// `confusion[truth · classes + predicted]`: the pixel count of each pair.
    confusion: Vec<u64>,
}

impl SegmentationMetrics {
    /// An empty accumulator ignoring [`DEFAULT_IGNORE_INDEX`]. With `classes < 1` every
    /// update is a shape error.
    pub fn new(classes: i64) -> Self {
        let cells = classes.max(0) as usize;
        SegmentationMetrics {
            context: "segmentation metrics".to_string(),
            classes,
            ignore_index: DEFAULT_IGNORE_INDEX,
            confusion: vec![0; cells * cells],
        }
    }

    /// Ignores pixels labelled `ignore_index` instead.
    pub fn with_ignore_index(mut self, ignore_index: i64) -> Self {
        self.ignore_index = ignore_index;
        self
    }

    /// Names `context` (e.g. the head) in the errors of [`Metrics::update`].
    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = context.into();
        self
    }

    /// The confusion matrix so far: `[truth][predicted]` pixel counts.
    pub fn confusion(&self) -> Vec<Vec<u64>> {
        let k = self.classes.max(1) as usize;
        self.confusion.chunks(k).map(<[u64]>::to_vec).collect()
    }
}

impl Metrics for SegmentationMetrics {
    fn update(&mut self, output: &Tensor, target: &TaskTarget) -> Result<()> {
        let ctx = &self.context;
        let classes = Some(self.classes);
        let pixels = Pixels::of(ctx, output, target, classes, self.ignore_index)?;
        let (logits, labels) = class_rows(ctx, &pixels.logits, &pixels.target, classes)
            .map_err(|e| to_batch_row(e, pixels.per_image))?;
        let pairs = labels
            .f_mul_scalar(self.classes)?
            .f_add(&logits.f_detach()?.f_argmax(1, false)?)?;
        let cells = self.classes * self.classes;
        let counts = pairs
            .f_bincount::<Tensor>(None, cells)?
            .f_to_device(Device::Cpu)?
            .f_to_kind(Kind::Int64)?;
        let counts = Vec::<i64>::try_from(&counts)?;
        for (cell, count) in self.confusion.iter_mut().zip(counts) {
            *cell += count as u64;
        }
        Ok(())
    }

    fn compute(&self) -> Vec<MetricValue> {
        let k = self.classes.max(0) as usize;
        let total: u64 = self.confusion.iter().sum();
        if total == 0 {
            return Vec::new();
        }
        let cell = |truth: usize, pred: usize| self.confusion[truth * k + pred];
        let mut iou_sum = 0.0;
        let mut present = 0usize;
        let mut hits = 0u64;
        for c in 0..k {
            let tp = cell(c, c);
            let labelled: u64 = (0..k).map(|p| cell(c, p)).sum();
            let predicted: u64 = (0..k).map(|t| cell(t, c)).sum();
            let union = labelled + predicted - tp;
            hits += tp;
            if union > 0 {
                iou_sum += tp as f64 / union as f64;
                present += 1;
            }
        }
        vec![
            MetricValue::new("miou", iou_sum / present as f64, true),
            MetricValue::new("pixel_accuracy", hits as f64 / total as f64, true),
        ]
    }

    fn reset(&mut self) {
        self.confusion.iter_mut().for_each(|c| *c = 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logits `[1, classes, 1, n]` that predict `pred[i]` at pixel `i`.
    fn predicting(pred: &[i64], classes: i64) -> Tensor {
        let n = pred.len() as i64;
        Tensor::from_slice(pred)
            .one_hot(classes)
            .to_kind(Kind::Float)
            .transpose(0, 1)
            .reshape([1, classes, 1, n])
    }

    fn labels(v: &[i64]) -> Tensor {
        Tensor::from_slice(v).view([1, 1, -1])
    }

    #[test]
    fn miou_skips_classes_absent_from_labels_and_predictions() {
        let mut m = SegmentationMetrics::new(4).with_ignore_index(255);
        // Class 3 never occurs; the ignored pixel's prediction (class 2) is not counted.
        m.update(
            &predicting(&[0, 0, 1, 2, 1, 2], 4),
            &TaskTarget::new(labels(&[0, 1, 1, 2, 2, 255])),
        )
        .unwrap();
        // Class 0: TP 1, union 2; class 1: TP 1, union 3; class 2: TP 1, union 2.
        let values = m.compute();
        assert_eq!(values[0].name, "miou");
        assert!((values[0].value - (0.5 + 1.0 / 3.0 + 0.5) / 3.0).abs() < 1e-12);
        assert_eq!(values[1].value, 3.0 / 5.0);
        assert_eq!(m.confusion()[1], [1, 1, 0, 0]);

        // A second batch with a row mask: only the labelled image counts.
        let two = Tensor::cat(&[predicting(&[3, 3], 4), predicting(&[3, 0], 4)], 0);
        let target = TaskTarget::masked(
            Tensor::from_slice(&[3i64, 0, 1, 1]).view([2, 1, 2]),
            Tensor::from_slice(&[true, false]),
        );
        m.update(&two, &target).unwrap();
        // Class 3 now has TP 1, FP 1 (a 0 predicted 3): IoU 1/2; class 0 union grows to 3.
        let values = m.compute();
        let miou = (1.0 / 3.0 + 1.0 / 3.0 + 0.5 + 0.5) / 4.0;
        assert!((values[0].value - miou).abs() < 1e-12);
        assert_eq!(values[1].value, 4.0 / 7.0);
        m.reset();
        assert!(m.compute().is_empty());
    }

    #[test]
    fn per_pixel_masks_and_bad_labels() {
        let mut m = SegmentationMetrics::new(2);
        let logits = Tensor::cat(&[predicting(&[0, 1], 2), predicting(&[1, 1], 2)], 0);
        let target = TaskTarget::masked(
            Tensor::from_slice(&[0i64, 0, 1, 1]).view([2, 1, 2]),
            Tensor::from_slice(&[true, false, false, true]).view([2, 1, 2]),
        );
        m.update(&logits, &target).unwrap();
        assert_eq!(m.compute()[1].value, 1.0);
        // Labels 5 in the second image: reported at row 1, nothing kept.
        let bad = TaskTarget::new(Tensor::from_slice(&[0i64, -1, 1, 5]).view([2, 1, 2]));
        let err = m.update(&logits, &bad).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LabelOutOfRange {
                    row: 1,
                    label: 5,
                    classes: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(m.confusion(), [[1, 0], [0, 1]]);
    }
}
