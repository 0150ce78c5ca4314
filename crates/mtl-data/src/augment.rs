//! Seeded augmentation of image batches that keeps every per-pixel target aligned with
//! its image: random crop, horizontal flip and random scale, drawn per image and applied
//! identically to the image `x` `[B, C, H, W]`, to each dense target and to its
//! element-level mask.
//!
//! Each task declares how its target moves with the image ([`TargetLayout`]):
//!
//! | layout | values | resampled by | on a flip | on a scale `s` |
//! |---|---|---|---|---|
//! | [`Row`](TargetLayout::Row) | anything | untouched | untouched | untouched |
//! | [`Classes`](TargetLayout::Classes) | `[B, H, W]` or `[B, C, H, W]`, any kind | nearest | mirrored | — |
//! | [`Pixels`](TargetLayout::Pixels) | floating `[B, H, W]` or `[B, C, H, W]` | bilinear | mirrored | — |
//! | [`Depth`](TargetLayout::Depth) | floating `[B, H, W]` or `[B, 1, H, W]` | nearest | mirrored | divided by `s` |
//! | [`Normals`](TargetLayout::Normals) | floating `[B, 3, H, W]` | bilinear, then unit length | mirrored, x negated | — |
//!
//! The rules, per image of the batch (one independent draw each, from the
//! [`SeededRng`] passed to [`Augmentation::apply`], in the order scale, crop offset, flip):
//!
//! * **Output size.** The crop size when [`random_crop`](AugmentationConfig::random_crop)
//!   is set, the image size otherwise; every image of the batch comes out this size.
//! * **Scale** `s`, uniform in [`random_scale`](AugmentationConfig::random_scale)'s
//!   range (1 without it): the image is magnified `s` times, that is a window of
//!   `round(out / s)` source pixels per side is read and resized to the output size
//!   (torchvision's `RandomResize` followed by `RandomCrop`, or LibMTL's NYUv2
//!   `RandomScaleCrop` when there is no crop). The window must lie inside the image —
//!   nothing is padded, so no value is ever invented — which is why `s < 1` (zooming
//!   out) needs a crop smaller than the image and is refused without one.
//! * **Crop.** The window's top-left corner is uniform over the positions that keep it
//!   inside the image (torchvision's `RandomCrop`). Without scaling the window *is* the
//!   crop and the values are copied exactly.
//! * **Flip** with probability `p` ([`horizontal_flip`](AugmentationConfig::horizontal_flip),
//!   torchvision's `RandomHorizontalFlip`): columns reversed, and the x-component of
//!   normals negated (a mirrored surface faces the other way left–right; NYUv2's normals
//!   are in the camera frame, x to the right).
//!
//! How values are resampled when the window and the output differ in size:
//!
//! * **Images and real-valued targets** ([`Pixels`](TargetLayout::Pixels),
//!   [`Normals`](TargetLayout::Normals)): bilinear, pixel centres aligned
//!   (`align_corners = false`) and antialiased when shrinking, as torchvision's
//!   `resize`. An element-level mask of such a target keeps a pixel only if *every*
//!   source pixel blended into it was marked, so a masked-out (arbitrary) value never
//!   leaks into a kept one.
//! * **Class maps** ([`Classes`](TargetLayout::Classes)) and the masks of class and
//!   depth targets: nearest (the source pixel whose centre is closest, PyTorch's
//!   `nearest-exact`, which lines up with bilinear's centres). A class map therefore only
//!   ever holds labels it held before, the ignore index included.
//! * **Depth** ([`Depth`](TargetLayout::Depth)): nearest, then divided by `s`. Nearest
//!   because sensors write 0 or NaN where they measured nothing, and blending such a
//!   pixel with a measured one would invent a depth that is neither; with nearest every
//!   output depth is a measured one (or still 0/NaN, still invalid). Dividing by `s`
//!   is LibMTL's NYUv2 rule (`depth / sc` in `RandomScaleCrop`): magnifying the image
//!   `s` times looks like moving the camera `s` times closer.
//! * **Normals**: bilinear, then scaled back to unit length (a blend of unit vectors is
//!   shorter); a zero vector — no normal measured — stays zero, and a pixel blended from
//!   measured and unmeasured neighbours takes the measured ones' direction.
//! * Row-level masks `[B]` and [`Row`](TargetLayout::Row) targets are untouched.
//!
//! Against LibMTL's NYUv2 `RandomScaleCrop` (`examples/nyu/create_dataset.py`): the
//! same nearest-and-divide rule for depth and the same window-then-resize scaling, but
//! the scale is drawn from a range rather than from `{1.0, 1.2, 1.5}` (use
//! `random_scale(1.0, 1.5)` for that span), pixel centres are aligned
//! (`align_corners = false` rather than `true`, so nearest and bilinear sample the same
//! points), and normals are re-normalised after blending (LibMTL leaves them shorter).
//!
//! Everything is checked before anything is drawn, so a refused batch leaves the
//! generator where it was. The same seed gives the same batch, bit for bit, on the CPU.
//!
//! ```
//! use mtl_core::{SeededRng, TaskTarget};
//! use mtl_data::{AugmentationConfig, Batch, TargetLayout};
//! use rand::SeedableRng;
//! use tch::Tensor;
//!
//! // One 1-channel 2×2 image whose pixels are 0, 1 / 2, 3, and its class map.
//! let batch = Batch {
//!     x: Tensor::from_slice(&[0.0f32, 1.0, 2.0, 3.0]).view([1, 1, 2, 2]),
//!     targets: vec![TaskTarget::new(Tensor::from_slice(&[5i64, 6, 7, -1]).view([1, 2, 2]))],
//!     rows: vec![0],
//! };
//! // Always flip: pixel values and labels move together.
//! let aug = AugmentationConfig::new([TargetLayout::Classes])
//!     .horizontal_flip(1.0)
//!     .build()?;
//! let out = aug.apply(&batch, &mut SeededRng::seed_from_u64(7))?;
//! assert_eq!(Vec::<f32>::try_from(out.x.view([-1]))?, [1.0, 0.0, 3.0, 2.0]);
//! assert_eq!(Vec::<i64>::try_from(out.targets[0].values.view([-1]))?, [6, 5, -1, 7]);
//!
//! // A zero-sized crop is refused when the augmentation is built.
//! assert!(AugmentationConfig::new([TargetLayout::Classes]).random_crop(0, 2).build().is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::batch::Batch;
use mtl_core::{Error, Result, SeededRng, TaskTarget};
use rand::Rng;
use tch::{Kind, Tensor};

/// How one task's target moves with the image; see the [module docs](self) for the
/// table of rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetLayout {
    /// Not spatial (one class or value per image): values and mask are untouched.
    Row,
    /// A class (or any discrete value) per pixel, `[B, H, W]` or `[B, C, H, W]`:
    /// resampled by nearest, so no label is invented and the ignore index stays.
    Classes,
    /// A real value per pixel, floating `[B, H, W]` or `[B, C, H, W]`: resampled
    /// bilinearly like the image. For values with invalid markers (0, NaN) use
    /// [`Depth`](Self::Depth) or an element-level mask instead.
    Pixels,
    /// A depth per pixel, floating `[B, H, W]` or `[B, 1, H, W]`, 0 or NaN where not
    /// measured: resampled by nearest and divided by the scale factor.
    Depth,
    /// A surface normal per pixel, floating `[B, 3, H, W]` in the camera frame: resampled
    /// bilinearly and scaled back to unit length; its x-component is negated on a flip.
    Normals,
}

impl TargetLayout {
    /// Whether the target has the image's height and width.
    fn is_spatial(self) -> bool {
        self != TargetLayout::Row
    }

    /// Whether values are blended (bilinear) rather than picked (nearest).
    fn blends(self) -> bool {
        matches!(self, TargetLayout::Pixels | TargetLayout::Normals)
    }
}

/// The settings of an [`Augmentation`], built up call by call and checked by
/// [`build`](Self::build).
///
/// ```
/// use mtl_data::{AugmentationConfig, TargetLayout};
///
/// // Segmentation, depth and normals of an NYUv2-like batch.
/// let aug = AugmentationConfig::new([TargetLayout::Classes, TargetLayout::Depth, TargetLayout::Normals])
///     .random_crop(240, 320)
///     .horizontal_flip(0.5)
///     .random_scale(0.75, 1.25)
///     .build()?;
/// assert_eq!(aug.output_size(480, 640), (240, 320));
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AugmentationConfig {
    targets: Vec<TargetLayout>,
    crop: Option<(usize, usize)>,
    flip: f64,
    scale: Option<(f64, f64)>,
}

impl AugmentationConfig {
    /// No augmentation yet, for batches whose tasks have these layouts, in task order.
    pub fn new(targets: impl Into<Vec<TargetLayout>>) -> Self {
        AugmentationConfig {
            targets: targets.into(),
            crop: None,
            flip: 0.0,
            scale: None,
        }
    }

    /// Crops each image to `height × width` at a random position; both at least 1.
    pub fn random_crop(mut self, height: usize, width: usize) -> Self {
        self.crop = Some((height, width));
        self
    }

    /// Mirrors each image left–right with probability `p` in `[0, 1]`.
    pub fn horizontal_flip(mut self, p: f64) -> Self {
        self.flip = p;
        self
    }

    /// Magnifies each image by a factor drawn uniformly from `[min, max]`, with
    /// `0 < min ≤ max`; a factor below 1 needs a crop smaller than the image.
    pub fn random_scale(mut self, min: f64, max: f64) -> Self {
        self.scale = Some((min, max));
        self
    }

    /// Checks the settings: a crop side of zero, a flip probability outside `[0, 1]`, a
    /// scale range that is not `0 < min ≤ max` (finite), or a scale below 1 without a
    /// crop is [`Error::Config`].
    pub fn build(self) -> Result<Augmentation> {
        if let Some((h, w)) = self.crop {
            if h == 0 || w == 0 {
                return Err(Error::config(format!(
                    "random crop {h}×{w}: both sides must be at least 1"
                )));
            }
            // Sizes become tensor dimensions (i64).
            if i64::try_from(h.max(w)).is_err() {
                return Err(Error::config(format!("random crop {h}×{w} is too large")));
            }
        }
        if !(0.0..=1.0).contains(&self.flip) {
            return Err(Error::config(format!(
                "horizontal flip probability {} is outside [0, 1]",
                self.flip
            )));
        }
        if let Some((min, max)) = self.scale {
            if !(min.is_finite() && max.is_finite() && min > 0.0 && min <= max) {
                return Err(Error::config(format!(
                    "random scale range [{min}, {max}]: needs finite 0 < min ≤ max"
                )));
            }
            if min < 1.0 && self.crop.is_none() {
                return Err(Error::config(format!(
                    "random scale range [{min}, {max}]: a scale below 1 reads a window larger \
                     than the image, which is not padded; add a random crop smaller than the \
                     image or raise the minimum to 1"
                )));
            }
        }
        Ok(Augmentation { config: self })
    }
}

/// A checked augmentation: apply it to batches with [`apply`](Self::apply). Made by
/// [`AugmentationConfig::build`]; the [module docs](self) give the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Augmentation {
    config: AugmentationConfig,
}

/// What was drawn for one image: the source window, the scale and the flip.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Draw {
    top: i64,
    left: i64,
    height: i64,
    width: i64,
    scale: f64,
    flip: bool,
    /// The output size.
    out: (i64, i64),
}

impl Draw {
    /// Whether the window is resized (otherwise values are copied exactly).
    fn resizes(&self) -> bool {
        (self.height, self.width) != self.out
    }
}

impl Augmentation {
    /// The layout of each task, in task order.
    pub fn targets(&self) -> &[TargetLayout] {
        &self.config.targets
    }

    /// The same augmentation for batches of task `k` alone (a single-task baseline's).
    pub fn only_task(&self, k: usize) -> Result<Augmentation> {
        let layout = *self.config.targets.get(k).ok_or_else(|| Error::TaskCount {
            context: format!("Augmentation::only_task({k})"),
            expected: self.config.targets.len(),
            got: k + 1,
        })?;
        let mut config = self.config.clone();
        config.targets = vec![layout];
        Ok(Augmentation { config })
    }

    /// The crop size (height, width), when cropping.
    pub fn crop(&self) -> Option<(usize, usize)> {
        self.config.crop
    }

    /// The probability of a horizontal flip.
    pub fn flip_probability(&self) -> f64 {
        self.config.flip
    }

    /// The range of scale factors, when scaling.
    pub fn scale_range(&self) -> Option<(f64, f64)> {
        self.config.scale
    }

    /// The (height, width) of the augmented images for images of `height × width`.
    pub fn output_size(&self, height: i64, width: i64) -> (i64, i64) {
        match self.config.crop {
            // `build` checked that both sides fit an i64.
            Some((h, w)) => (h as i64, w as i64),
            None => (height, width),
        }
    }

    /// The side of the source window that a scale `s` reads for an output side `out`.
    fn window(out: i64, s: f64) -> i64 {
        ((out as f64 / s).round() as i64).max(1)
    }

    /// The augmented copy of `batch`: each image gets its own draw from `rng`, applied
    /// to `x` and to every target according to its [`TargetLayout`]. `rows` are kept.
    ///
    /// Errors (all before anything is drawn): `x` not a floating `[B, C, H, W]` image
    /// batch, or a crop (or the window of the smallest scale) larger than the image
    /// ([`Error::Shape`], naming both sizes); a number of targets other than the number of
    /// layouts ([`Error::TaskCount`]); a target or mask whose shape or kind does not fit
    /// its layout or the image ([`Error::Shape`], naming the task and both shapes).
    pub fn apply(&self, batch: &Batch, rng: &mut SeededRng) -> Result<Batch> {
        let (b, h, w) = self.check(batch)?;
        let out = self.output_size(h, w);
        let draws: Vec<Draw> = (0..b).map(|_| self.draw(rng, h, w, out)).collect();
        let x = per_image(&batch.x, out, &draws, bilinear)?;
        let targets = batch
            .targets
            .iter()
            .zip(&self.config.targets)
            .map(|(t, &layout)| transform(t, layout, out, &draws))
            .collect::<Result<Vec<_>>>()?;
        Ok(Batch {
            x,
            targets,
            rows: batch.rows.clone(),
        })
    }

    /// One image's draw: scale, then the window's position, then the flip.
    fn draw(&self, rng: &mut SeededRng, h: i64, w: i64, out: (i64, i64)) -> Draw {
        let scale = match self.config.scale {
            Some((min, max)) => rng.gen_range(min..=max),
            None => 1.0,
        };
        let (height, width) = (Self::window(out.0, scale), Self::window(out.1, scale));
        // `check` made sure the largest window fits, and the window shrinks as the scale
        // grows, so both ranges are non-empty.
        let top = rng.gen_range(0..=h - height);
        let left = rng.gen_range(0..=w - width);
        let flip = self.config.flip > 0.0 && rng.gen_bool(self.config.flip);
        Draw {
            top,
            left,
            height,
            width,
            scale,
            flip,
            out,
        }
    }

    /// Checks the batch against the settings and returns (B, H, W).
    fn check(&self, batch: &Batch) -> Result<(i64, i64, i64)> {
        let x = &batch.x;
        let size = x.size();
        let [b, _, h, w] = size[..] else {
            return Err(Error::shape(
                "augmentation image batch x",
                "floating [batch, channels, height, width]",
                format!("{:?} {size:?}", x.kind()),
            ));
        };
        if !x.is_floating_point() {
            return Err(Error::shape(
                "augmentation image batch x",
                "floating [batch, channels, height, width]",
                format!("{:?} {size:?}", x.kind()),
            ));
        }
        let (oh, ow) = self.output_size(h, w);
        let min_scale = self.config.scale.map_or(1.0, |(min, _)| min);
        let (wh, ww) = (Self::window(oh, min_scale), Self::window(ow, min_scale));
        if wh > h || ww > w {
            let what = match self.config.scale {
                Some(_) if (wh, ww) != (oh, ow) => format!(
                    "random crop {oh}×{ow} at scale {min_scale}, which reads a {wh}×{ww} window"
                ),
                _ => format!("random crop {oh}×{ow}"),
            };
            return Err(Error::shape(
                "augmentation",
                format!("an image of at least {wh}×{ww} for the {what}"),
                format!("a {h}×{w} image (x {size:?})"),
            ));
        }
        if batch.targets.len() != self.config.targets.len() {
            return Err(Error::TaskCount {
                context: "augmentation: the batch's targets against the augmentation's \
                          target layouts"
                    .into(),
                expected: self.config.targets.len(),
                got: batch.targets.len(),
            });
        }
        for (task, (t, &layout)) in batch.targets.iter().zip(&self.config.targets).enumerate() {
            check_target(task, t, layout, &size)?;
        }
        Ok((b, h, w))
    }
}

/// Checks one task's target (values and mask) against its layout and the image shape
/// `[B, C, H, W]`.
fn check_target(task: usize, t: &TaskTarget, layout: TargetLayout, image: &[i64]) -> Result<()> {
    if !layout.is_spatial() {
        return Ok(());
    }
    let (b, h, w) = (image[0], image[2], image[3]);
    let ctx = format!("augmentation: task {task} ({layout:?}) against the image {image:?}");
    let vsize = t.values.size();
    let got = format!("{:?} {vsize:?}", t.values.kind());
    let (expected, shape_ok) = match layout {
        TargetLayout::Normals => (
            format!("floating [{b}, 3, {h}, {w}] normals"),
            vsize == [b, 3, h, w],
        ),
        TargetLayout::Depth => (
            format!("floating [{b}, {h}, {w}] or [{b}, 1, {h}, {w}] depths"),
            vsize == [b, h, w] || vsize == [b, 1, h, w],
        ),
        _ => (
            format!("[{b}, {h}, {w}] or [{b}, C, {h}, {w}] values"),
            vsize == [b, h, w] || (vsize.len() == 4 && vsize[0] == b && vsize[2..] == [h, w]),
        ),
    };
    let kind_ok = layout == TargetLayout::Classes || t.values.is_floating_point();
    if !shape_ok || !kind_ok {
        return Err(Error::shape(ctx, expected, got));
    }
    if let Some(mask) = &t.mask {
        let msize = mask.size();
        let fits = msize == [b] || msize == [b, h, w] || msize == vsize;
        if mask.kind() != Kind::Bool || !fits {
            return Err(Error::shape(
                format!("{ctx}, its mask"),
                format!("Bool [{b}], [{b}, {h}, {w}] or {vsize:?}"),
                format!("{:?} {msize:?}", mask.kind()),
            ));
        }
    }
    Ok(())
}

/// One task's augmented target.
fn transform(
    t: &TaskTarget,
    layout: TargetLayout,
    out: (i64, i64),
    draws: &[Draw],
) -> Result<TaskTarget> {
    let values = match layout {
        TargetLayout::Row => t.values.shallow_clone(),
        TargetLayout::Classes => per_image(&t.values, out, draws, nearest)?,
        TargetLayout::Pixels => per_image(&t.values, out, draws, bilinear)?,
        TargetLayout::Depth => per_image(&t.values, out, draws, |v, d| {
            Ok(nearest(v, d)?.f_div_scalar(d.scale)?)
        })?,
        TargetLayout::Normals => per_image(&t.values, out, draws, normals)?,
    };
    let mask = match &t.mask {
        // A row-level mask labels the whole image, wherever it moves.
        Some(m) if layout.is_spatial() && m.dim() > 1 => Some(if layout.blends() {
            per_image(m, out, draws, all_sources_marked)?
        } else {
            per_image(m, out, draws, nearest)?
        }),
        m => m.as_ref().map(Tensor::shallow_clone),
    };
    Ok(TaskTarget { values, mask })
}

/// `t` `[B, …, H, W]` with image `i` replaced by `f(image i, draws[i])`, of size
/// `[…, out.0, out.1]`.
fn per_image(
    t: &Tensor,
    out: (i64, i64),
    draws: &[Draw],
    f: impl Fn(&Tensor, &Draw) -> Result<Tensor>,
) -> Result<Tensor> {
    let mut size = t.size();
    let n = size.len();
    size[n - 2] = out.0;
    size[n - 1] = out.1;
    // Filled image by image: the images' windows differ in size, so there is no one
    // batched call, and writing in place saves a stack of B copies.
    let result = Tensor::f_empty(size.as_slice(), (t.kind(), t.device()))?;
    for (i, d) in draws.iter().enumerate() {
        let image = t.f_select(0, i as i64)?;
        let mut slot = result.f_select(0, i as i64)?;
        slot.f_copy_(&f(&image, d)?)?;
    }
    Ok(result)
}

/// The output row (or column) `i` of `out` reads source offset
/// `floor((i + ½)·window/out)` within the window: the pixel whose centre is nearest,
/// PyTorch's `nearest-exact`, so nearest and bilinear (`align_corners = false`) agree on
/// where each output pixel sits.
fn nearest_indices(start: i64, window: i64, out: i64, reverse: bool) -> Tensor {
    let ratio = window as f64 / out as f64;
    let mut idx: Vec<i64> = (0..out)
        .map(|i| start + (((i as f64 + 0.5) * ratio) as i64).min(window - 1))
        .collect();
    if reverse {
        idx.reverse();
    }
    Tensor::from_slice(&idx)
}

/// One image `[…, H, W]` (any kind) through its draw by nearest: exact copies of source
/// pixels, gathered by index (which also crops and flips in one go).
fn nearest(image: &Tensor, d: &Draw) -> Result<Tensor> {
    let n = image.dim() as i64;
    let device = image.device();
    let rows = nearest_indices(d.top, d.height, d.out.0, false).f_to_device(device)?;
    let cols = nearest_indices(d.left, d.width, d.out.1, d.flip).f_to_device(device)?;
    Ok(image
        .f_index_select(n - 2, &rows)?
        .f_index_select(n - 1, &cols)?)
}

/// One floating image `[…, H, W]` through its draw: the window cut out, resized
/// bilinearly (antialiased when shrinking) when its size differs from the output, then
/// mirrored.
fn bilinear(image: &Tensor, d: &Draw) -> Result<Tensor> {
    let size = image.size();
    let n = size.len();
    let window = image.f_narrow((n - 2) as i64, d.top, d.height)?.f_narrow(
        (n - 1) as i64,
        d.left,
        d.width,
    )?;
    let resized = if d.resizes() {
        let channels: i64 = size[..n - 2].iter().product();
        let mut out_size = size[..n - 2].to_vec();
        out_size.extend([d.out.0, d.out.1]);
        window
            .f_reshape([1, channels, d.height, d.width])?
            .f_internal_upsample_bilinear2d_aa([d.out.0, d.out.1], false, None, None)?
            .f_reshape(out_size.as_slice())?
    } else {
        window
    };
    Ok(if d.flip {
        resized.f_flip([(n - 1) as i64])?
    } else {
        resized
    })
}

/// One image's normals `[3, H, W]`: bilinear, back to unit length when blended, and the
/// x-component negated when mirrored.
fn normals(image: &Tensor, d: &Draw) -> Result<Tensor> {
    let mut v = bilinear(image, d)?;
    if d.resizes() {
        // As `torch.nn.functional.normalize`: a zero vector (no normal) stays zero.
        let length = v
            .f_norm_scalaropt_dim(2, [0i64].as_slice(), true)?
            .f_clamp_min(1e-12)?;
        v = v.f_div(&length)?;
    }
    if d.flip {
        let sign = Tensor::from_slice(&[-1.0f64, 1.0, 1.0])
            .f_to_kind(v.kind())?
            .f_to_device(v.device())?
            .f_view([3, 1, 1])?;
        v = v.f_mul(&sign)?;
    }
    Ok(v)
}

/// The element-level mask of a blended target: a pixel stays marked only when every
/// source pixel blended into it was marked, found by blending the unmarked indicator the
/// same way — any positive weight on an unmarked pixel gives a positive result — so an
/// arbitrary masked-out value never reaches a kept pixel.
fn all_sources_marked(mask: &Tensor, d: &Draw) -> Result<Tensor> {
    if !d.resizes() {
        return nearest(mask, d);
    }
    let unmarked = mask.f_logical_not()?.f_to_kind(Kind::Float)?;
    Ok(bilinear(&unmarked, d)?.f_le(0.0)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_indices_copy_an_equal_window_and_pick_centres_otherwise() {
        let idx = |s, w, o, r| Vec::<i64>::try_from(nearest_indices(s, w, o, r)).unwrap();
        assert_eq!(idx(3, 4, 4, false), [3, 4, 5, 6]);
        assert_eq!(idx(3, 4, 4, true), [6, 5, 4, 3]);
        // Shrinking 4 → 2 reads the second pixel of each pair (centres 1, 3 of 0..4).
        assert_eq!(idx(0, 4, 2, false), [1, 3]);
        // Stretching 2 → 4 repeats each pixel twice.
        assert_eq!(idx(0, 2, 4, false), [0, 0, 1, 1]);
    }

    #[test]
    fn the_window_shrinks_as_the_scale_grows() {
        assert_eq!(Augmentation::window(32, 1.0), 32);
        assert_eq!(Augmentation::window(32, 2.0), 16);
        assert_eq!(Augmentation::window(30, 0.75), 40);
        assert_eq!(Augmentation::window(2, 100.0), 1);
    }
}
