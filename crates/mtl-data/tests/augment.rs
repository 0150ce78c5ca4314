//! Augmentation of image batches: alignment of the image with every dense target under
//! flips, crops and scaling, seeded determinism, and the refusals.
//!
//! The batches are built so alignment is checkable exactly: a class map encodes each
//! pixel's own (image, row, column), so after a nearest resample it says where every
//! output pixel came from, and the other targets are known functions of that position.

use mtl_core::{Error, SeededRng, TaskTarget};
use mtl_data::{Augmentation, AugmentationConfig, Batch, TargetLayout};
use rand::{RngCore, SeedableRng};
use tch::{Kind, Tensor};

const B: i64 = 3;
const H: i64 = 8;
const W: i64 = 10;

/// The layouts of [`coords_batch`]'s targets, in task order.
const LAYOUTS: [TargetLayout; 5] = [
    TargetLayout::Classes,
    TargetLayout::Depth,
    TargetLayout::Normals,
    TargetLayout::Row,
    TargetLayout::Pixels,
];

/// The class of pixel (y, x) of image b: its own coordinates.
fn code(b: i64, y: i64, x: i64) -> i64 {
    10_000 * b + 100 * y + x
}

/// (b, y, x) back from [`code`].
fn decode(v: i64) -> (i64, i64, i64) {
    (v / 10_000, (v % 10_000) / 100, v % 100)
}

/// The depth of pixel (y, x); 0 (not measured) on every fifth diagonal. Exact in `f32`
/// and exactly halved.
fn depth(b: i64, y: i64, x: i64) -> f32 {
    if (y + x) % 5 == 0 {
        0.0
    } else {
        1.0 + b as f32 + 0.5 * y as f32 + 0.25 * x as f32
    }
}

/// The unit normal of pixel (y, x).
fn normal(b: i64, y: i64, x: i64) -> [f32; 3] {
    let v = [x as f32 - 4.0, y as f32 - 3.0 + b as f32, 3.0];
    let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    [v[0] / n, v[1] / n, v[2] / n]
}

/// A `B × 2 × H × W` image batch whose channels are each pixel's row (plus 1000·b) and
/// column, with targets: 0 class map = [`code`], 1 depth, 2 normals, 3 one class per
/// image with a row mask, 4 a real per-pixel map (the column) with a pixel mask.
fn coords_batch() -> Batch {
    let grid = |f: &dyn Fn(i64, i64, i64) -> f32| -> Vec<f32> {
        let mut v = Vec::new();
        for b in 0..B {
            for y in 0..H {
                for x in 0..W {
                    v.push(f(b, y, x));
                }
            }
        }
        v
    };
    let mut image = Vec::new();
    let mut normals = Vec::new();
    for b in 0..B {
        for c in 0..2 {
            for y in 0..H {
                for x in 0..W {
                    image.push(if c == 0 {
                        (1000 * b + y) as f32
                    } else {
                        x as f32
                    });
                }
            }
        }
        for c in 0..3 {
            for y in 0..H {
                for x in 0..W {
                    normals.push(normal(b, y, x)[c]);
                }
            }
        }
    }
    let mut classes = Vec::new();
    let mut marked = Vec::new();
    for b in 0..B {
        for y in 0..H {
            for x in 0..W {
                classes.push(code(b, y, x));
                marked.push((y * x) % 7 != 3);
            }
        }
    }
    Batch {
        x: Tensor::from_slice(&image).view([B, 2, H, W]),
        targets: vec![
            TaskTarget::new(Tensor::from_slice(&classes).view([B, H, W])),
            TaskTarget::new(Tensor::from_slice(&grid(&depth)).view([B, H, W])),
            TaskTarget::new(Tensor::from_slice(&normals).view([B, 3, H, W])),
            TaskTarget::masked(
                Tensor::from_slice(&[4i64, 5, 6]),
                Tensor::from_slice(&[true, false, true]),
            ),
            TaskTarget::masked(
                Tensor::from_slice(&grid(&|_, _, x| x as f32)).view([B, 1, H, W]),
                Tensor::from_slice(&marked).view([B, H, W]),
            ),
        ],
        rows: vec![10, 11, 12],
    }
}

fn rng(seed: u64) -> SeededRng {
    SeededRng::seed_from_u64(seed)
}

fn build(config: AugmentationConfig) -> Augmentation {
    config.build().expect("valid augmentation")
}

/// Whether image `b` of an augmented batch was mirrored, read off its class map (the
/// source column falls along a row).
fn flipped(out: &Batch, b: i64) -> bool {
    let c = &out.targets[0].values;
    let (_, _, x0) = decode(c.int64_value(&[b, 0, 0]));
    let (_, _, x1) = decode(c.int64_value(&[b, 0, c.size()[2] - 1]));
    x1 < x0
}

/// Every target of `out` matches, pixel by pixel, the source pixel its class map names:
/// same image, depth (divided by one scale per image, returned), normals (x negated on a
/// flip; compared exactly when `exact`), the pixel mask. Returns each image's depth ratio.
fn check_aligned(out: &Batch, exact: bool) -> Vec<f64> {
    let size = out.targets[0].values.size();
    let (oh, ow) = (size[1], size[2]);
    let mut ratios = Vec::new();
    for b in 0..B {
        let flip = flipped(out, b);
        let mut ratio = None::<f64>;
        for i in 0..oh {
            for j in 0..ow {
                let (sb, y, x) = decode(out.targets[0].values.int64_value(&[b, i, j]));
                assert_eq!(sb, b, "pixel ({i}, {j}) of image {b} came from image {sb}");
                let d = out.targets[1].values.double_value(&[b, i, j]);
                let want = depth(b, y, x) as f64;
                if want == 0.0 {
                    assert_eq!(d, 0.0, "an unmeasured depth stays unmeasured");
                } else {
                    // One ratio per image (the division rounds in f32).
                    let r = *ratio.get_or_insert(d / want);
                    assert!(
                        (d - want * r).abs() <= 1e-6 * d,
                        "depth {d} at ({i}, {j}) of image {b}: want {want} × {r}"
                    );
                }
                let n = normal(b, y, x);
                let sign = if flip { -1.0 } else { 1.0 };
                for (c, (&nc, s)) in n.iter().zip([sign, 1.0, 1.0]).enumerate() {
                    let got = out.targets[2].values.double_value(&[b, c as i64, i, j]);
                    if exact {
                        assert_eq!(got, s * nc as f64, "normal {c} at ({i}, {j}) of image {b}");
                    }
                }
                if exact {
                    let m = out.targets[4].mask.as_ref().unwrap();
                    assert_eq!(
                        m.int64_value(&[b, i, j]) != 0,
                        (y * x) % 7 != 3,
                        "pixel mask at ({i}, {j}) of image {b}"
                    );
                    assert_eq!(
                        out.x.double_value(&[b, 0, i, j]),
                        (1000 * b + y) as f64,
                        "image row at ({i}, {j}) of image {b}"
                    );
                    assert_eq!(out.x.double_value(&[b, 1, i, j]), x as f64);
                }
            }
        }
        ratios.push(ratio.unwrap_or(1.0));
    }
    ratios
}

#[test]
fn a_flip_moves_image_labels_depths_and_normals_together_and_negates_normals_x() {
    let batch = coords_batch();
    let out = build(AugmentationConfig::new(LAYOUTS).horizontal_flip(1.0))
        .apply(&batch, &mut rng(1))
        .unwrap();
    assert_eq!(out.x.size(), [B, 2, H, W]);
    for b in 0..B {
        assert!(flipped(&out, b));
        // Column j now holds column W-1-j.
        for j in 0..W {
            let (_, y, x) = decode(out.targets[0].values.int64_value(&[b, 2, j]));
            assert_eq!((y, x), (2, W - 1 - j));
        }
    }
    let ratios = check_aligned(&out, true);
    assert_eq!(ratios, [1.0; B as usize]);
    // The per-image target and its row mask are untouched.
    assert!(out.targets[3].values.equal(&batch.targets[3].values));
    assert!(out.targets[3]
        .mask
        .as_ref()
        .unwrap()
        .equal(batch.targets[3].mask.as_ref().unwrap()));
    // The real per-pixel map is the image's column channel, moved the same way.
    assert!(out.targets[4]
        .values
        .squeeze_dim(1)
        .equal(&out.x.select(1, 1)));
    assert_eq!(out.rows, batch.rows);
    // Flipping twice gives the batch back.
    let twice = build(AugmentationConfig::new(LAYOUTS).horizontal_flip(1.0))
        .apply(&out, &mut rng(2))
        .unwrap();
    assert!(twice.x.equal(&batch.x));
    assert!(twice.targets[2].values.equal(&batch.targets[2].values));
}

#[test]
fn no_flip_at_probability_zero_and_both_outcomes_at_one_half() {
    let batch = coords_batch();
    let none = build(AugmentationConfig::new(LAYOUTS).horizontal_flip(0.0))
        .apply(&batch, &mut rng(3))
        .unwrap();
    assert!(none.x.equal(&batch.x));
    assert!(none.targets[0].values.equal(&batch.targets[0].values));
    let aug = build(AugmentationConfig::new(LAYOUTS).horizontal_flip(0.5));
    let mut r = rng(4);
    let (mut seen_flip, mut seen_plain) = (false, false);
    for _ in 0..10 {
        let out = aug.apply(&batch, &mut r).unwrap();
        check_aligned(&out, true);
        for b in 0..B {
            if flipped(&out, b) {
                seen_flip = true;
            } else {
                seen_plain = true;
            }
        }
    }
    assert!(seen_flip && seen_plain);
}

#[test]
fn a_crop_keeps_every_target_aligned_with_its_image() {
    let batch = coords_batch();
    let aug = build(
        AugmentationConfig::new(LAYOUTS)
            .random_crop(3, 5)
            .horizontal_flip(0.5),
    );
    let mut r = rng(5);
    let mut corners = std::collections::BTreeSet::new();
    for _ in 0..8 {
        let out = aug.apply(&batch, &mut r).unwrap();
        assert_eq!(out.x.size(), [B, 2, 3, 5]);
        assert_eq!(out.targets[1].values.size(), [B, 3, 5]);
        assert_eq!(out.targets[2].values.size(), [B, 3, 3, 5]);
        assert_eq!(out.targets[4].values.size(), [B, 1, 3, 5]);
        assert_eq!(out.targets[4].mask.as_ref().unwrap().size(), [B, 3, 5]);
        check_aligned(&out, true);
        for b in 0..B {
            // A crop is a contiguous block of the source.
            let (_, y0, x0) = decode(out.targets[0].values.int64_value(&[b, 0, 0]));
            let (_, y1, x1) = decode(out.targets[0].values.int64_value(&[b, 2, 4]));
            assert_eq!(y1 - y0, 2);
            assert_eq!((x1 - x0).abs(), 4);
            corners.insert((y0, x0.min(x1)));
        }
    }
    // The images of a batch get their own offsets.
    assert!(corners.len() > 3, "{corners:?}");
}

#[test]
fn a_crop_as_large_as_the_image_is_the_image() {
    let batch = coords_batch();
    let out = build(AugmentationConfig::new(LAYOUTS).random_crop(H as usize, W as usize))
        .apply(&batch, &mut rng(6))
        .unwrap();
    assert!(out.x.equal(&batch.x));
    for (a, b) in out.targets.iter().zip(&batch.targets) {
        assert!(a.values.equal(&b.values));
    }
}

#[test]
fn scaling_keeps_image_and_targets_aligned_and_divides_depth_by_the_scale() {
    let batch = coords_batch();
    let aug = build(
        AugmentationConfig::new(LAYOUTS)
            .random_crop(6, 8)
            .horizontal_flip(0.5)
            .random_scale(0.8, 2.0),
    );
    let mut r = rng(7);
    for _ in 0..6 {
        let out = aug.apply(&batch, &mut r).unwrap();
        assert_eq!(out.x.size(), [B, 2, 6, 8]);
        for ratio in check_aligned(&out, false) {
            // Depth divided by the image's own scale.
            assert!((1.0 / 2.0..=1.0 / 0.8).contains(&ratio), "{ratio}");
        }
        for b in 0..B {
            for i in 0..6 {
                for j in 0..8 {
                    // The bilinear image and the nearest class map agree on where the
                    // pixel sits: nearest picks the source pixel whose centre is closest
                    // to the point bilinear samples, so within half a pixel.
                    let (_, y, x) = decode(out.targets[0].values.int64_value(&[b, i, j]));
                    let row = out.x.double_value(&[b, 0, i, j]) - 1000.0 * b as f64;
                    let col = out.x.double_value(&[b, 1, i, j]);
                    assert!((row - y as f64).abs() <= 0.5 + 1e-4, "row {row} vs {y}");
                    assert!((col - x as f64).abs() <= 0.5 + 1e-4, "column {col} vs {x}");
                    // Normals stay unit length.
                    let n: f64 = (0..3)
                        .map(|c| out.targets[2].values.double_value(&[b, c, i, j]).powi(2))
                        .sum();
                    assert!((n - 1.0).abs() < 1e-5, "normal length² {n}");
                }
            }
        }
    }
}

#[test]
fn depth_under_a_fixed_scale_is_the_nearest_depth_halved() {
    let batch = coords_batch();
    // Scale 2 without a crop: a 4×5 window stretched to 8×10.
    let out = build(AugmentationConfig::new(LAYOUTS).random_scale(2.0, 2.0))
        .apply(&batch, &mut rng(8))
        .unwrap();
    assert_eq!(out.x.size(), [B, 2, H, W]);
    assert_eq!(check_aligned(&out, false), [0.5; B as usize]);
    // Each source pixel covers a 2×2 block.
    for b in 0..B {
        let (_, y, x) = decode(out.targets[0].values.int64_value(&[b, 0, 0]));
        let (_, y1, x1) = decode(out.targets[0].values.int64_value(&[b, 1, 1]));
        let (_, y2, x2) = decode(out.targets[0].values.int64_value(&[b, 2, 2]));
        assert_eq!((y1, x1), (y, x));
        assert_eq!((y2, x2), (y + 1, x + 1));
    }
}

#[test]
fn scaling_never_invents_classes_and_keeps_the_ignore_index() {
    // Three classes and ignore index 255 in stripes and blocks.
    let labels: Vec<i64> = (0..2 * 12 * 12)
        .map(|i| {
            let (y, x) = ((i / 12) % 12, i % 12);
            if (y + x) % 7 == 0 {
                255
            } else {
                (y / 4 + x / 5) % 3
            }
        })
        .collect();
    let values = Tensor::from_slice(&labels).view([2, 12, 12]);
    let mask = values.ne(255);
    let batch = Batch {
        x: Tensor::zeros([2, 3, 12, 12], (Kind::Float, tch::Device::Cpu)),
        targets: vec![TaskTarget::masked(values, mask)],
        rows: vec![0, 1],
    };
    let aug = build(
        AugmentationConfig::new([TargetLayout::Classes])
            .random_crop(9, 9)
            .random_scale(0.75, 3.0)
            .horizontal_flip(0.5),
    );
    let mut r = rng(9);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let out = aug.apply(&batch, &mut r).unwrap();
        let got = Vec::<i64>::try_from(out.targets[0].values.view([-1])).unwrap();
        let marked =
            Vec::<bool>::try_from(out.targets[0].mask.as_ref().unwrap().view([-1])).unwrap();
        for (&v, &m) in got.iter().zip(&marked) {
            assert!([0, 1, 2, 255].contains(&v), "invented class {v}");
            // The mask moved with the labels.
            assert_eq!(m, v != 255);
            seen.insert(v);
        }
    }
    assert!(seen.contains(&255));
}

#[test]
fn a_blended_target_keeps_only_pixels_whose_sources_were_all_marked() {
    // A real per-pixel map of ones with a masked-out pixel holding a huge value.
    let mut values = vec![1.0f32; 8 * 8];
    let mut marked = vec![true; 8 * 8];
    values[3 * 8 + 4] = 1e6;
    marked[3 * 8 + 4] = false;
    let batch = Batch {
        x: Tensor::zeros([1, 1, 8, 8], (Kind::Float, tch::Device::Cpu)),
        targets: vec![TaskTarget::masked(
            Tensor::from_slice(&values).view([1, 8, 8]),
            Tensor::from_slice(&marked).view([1, 8, 8]),
        )],
        rows: vec![0],
    };
    let aug = build(
        AugmentationConfig::new([TargetLayout::Pixels])
            .random_crop(6, 6)
            .random_scale(0.8, 1.6),
    );
    let mut r = rng(10);
    let mut dropped = 0;
    for _ in 0..10 {
        let out = aug.apply(&batch, &mut r).unwrap();
        let v = Vec::<f32>::try_from(out.targets[0].values.view([-1])).unwrap();
        let m = Vec::<bool>::try_from(out.targets[0].mask.as_ref().unwrap().view([-1])).unwrap();
        for (&v, &m) in v.iter().zip(&m) {
            if m {
                assert!(
                    (v - 1.0).abs() < 1e-5,
                    "a kept pixel blended a masked one: {v}"
                );
            } else {
                dropped += 1;
            }
        }
    }
    assert!(dropped > 0);
}

#[test]
fn the_same_seed_gives_the_same_batch_bit_for_bit() {
    let batch = coords_batch();
    let aug = build(
        AugmentationConfig::new(LAYOUTS)
            .random_crop(5, 7)
            .horizontal_flip(0.5)
            .random_scale(0.75, 1.5),
    );
    let bits = |t: &Tensor| -> Vec<u64> {
        let t = t.to_kind(Kind::Double).view([-1]);
        Vec::<f64>::try_from(&t)
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    };
    let all = |out: &Batch| -> Vec<Vec<u64>> {
        let mut v = vec![bits(&out.x)];
        for t in &out.targets {
            v.push(bits(&t.values));
            if let Some(m) = &t.mask {
                v.push(bits(m));
            }
        }
        v
    };
    let a = aug.apply(&batch, &mut rng(11)).unwrap();
    let b = aug.apply(&batch, &mut rng(11)).unwrap();
    assert_eq!(all(&a), all(&b));
    let c = aug.apply(&batch, &mut rng(12)).unwrap();
    assert_ne!(all(&a), all(&c));
}

#[test]
fn settings_are_refused_when_built() {
    let refused = |c: AugmentationConfig, needle: &str| match c.build() {
        Err(Error::Config(msg)) => assert!(msg.contains(needle), "{msg}"),
        other => panic!("expected a configuration error, got {other:?}"),
    };
    let base = || AugmentationConfig::new(LAYOUTS);
    refused(base().random_crop(0, 4), "0×4");
    refused(base().random_crop(4, 0), "4×0");
    refused(base().horizontal_flip(1.5), "1.5");
    refused(base().horizontal_flip(-0.1), "-0.1");
    refused(base().horizontal_flip(f64::NAN), "NaN");
    refused(
        base().random_crop(4, 4).random_scale(1.5, 1.2),
        "[1.5, 1.2]",
    );
    refused(base().random_crop(4, 4).random_scale(0.0, 1.2), "[0, 1.2]");
    refused(
        base().random_crop(4, 4).random_scale(-1.0, 1.2),
        "[-1, 1.2]",
    );
    refused(
        base().random_crop(4, 4).random_scale(1.0, f64::INFINITY),
        "inf",
    );
    // Zooming out reads past the image unless a smaller crop leaves room.
    refused(base().random_scale(0.5, 1.0), "crop");
    let ok = build(
        base()
            .random_crop(4, 6)
            .horizontal_flip(0.25)
            .random_scale(0.5, 2.0),
    );
    assert_eq!(ok.targets(), LAYOUTS);
    assert_eq!(ok.crop(), Some((4, 6)));
    assert_eq!(ok.flip_probability(), 0.25);
    assert_eq!(ok.scale_range(), Some((0.5, 2.0)));
    assert_eq!(ok.output_size(H, W), (4, 6));
}

/// The message of a refused `apply`, after checking it left the generator untouched.
fn refusal(aug: &Augmentation, batch: &Batch) -> Error {
    let mut r = rng(13);
    let err = aug.apply(batch, &mut r).expect_err("refused");
    assert_eq!(r.next_u64(), rng(13).next_u64(), "a refusal draws nothing");
    err
}

#[test]
fn a_crop_or_scale_window_larger_than_the_image_is_refused_naming_both_sizes() {
    let batch = coords_batch();
    let err = refusal(
        &build(AugmentationConfig::new(LAYOUTS).random_crop(9, 4)),
        &batch,
    );
    let msg = err.to_string();
    assert!(matches!(err, Error::Shape { .. }), "{msg}");
    assert!(msg.contains("9×4") && msg.contains("8×10"), "{msg}");
    // A 6×8 crop at scale 0.5 reads a 12×16 window.
    let msg = refusal(
        &build(
            AugmentationConfig::new(LAYOUTS)
                .random_crop(6, 8)
                .random_scale(0.5, 1.0),
        ),
        &batch,
    )
    .to_string();
    assert!(
        msg.contains("6×8") && msg.contains("12×16") && msg.contains("8×10"),
        "{msg}"
    );
}

#[test]
fn a_task_count_other_than_the_layouts_is_refused_naming_both() {
    let mut batch = coords_batch();
    batch.targets.pop();
    match refusal(&build(AugmentationConfig::new(LAYOUTS)), &batch) {
        Error::TaskCount { expected, got, .. } => assert_eq!((expected, got), (5, 4)),
        other => panic!("expected a task-count error, got {other}"),
    }
}

#[test]
fn a_target_whose_size_differs_from_the_image_is_refused_naming_task_and_shapes() {
    let aug = build(AugmentationConfig::new(LAYOUTS));
    for task in [0, 1, 4] {
        let mut batch = coords_batch();
        let t = &mut batch.targets[task];
        t.values = t.values.narrow(-1, 0, W - 1);
        let shape = format!("{:?}", t.values.size());
        let msg = refusal(&aug, &batch).to_string();
        assert!(msg.contains(&format!("task {task}")), "{msg}");
        assert!(msg.contains("[3, 2, 8, 10]"), "the image's shape: {msg}");
        assert!(msg.contains(&shape), "{msg}");
    }
    // A pixel mask of another size.
    let mut batch = coords_batch();
    let t = &mut batch.targets[4];
    t.mask = Some(t.mask.as_ref().unwrap().narrow(1, 0, H - 1));
    let msg = refusal(&aug, &batch).to_string();
    assert!(
        msg.contains("task 4") && msg.contains("[3, 7, 10]"),
        "{msg}"
    );
    // A depth map with two channels.
    let mut batch = coords_batch();
    batch.targets[1].values = Tensor::zeros([B, 2, H, W], (Kind::Float, tch::Device::Cpu));
    let msg = refusal(&aug, &batch).to_string();
    assert!(
        msg.contains("task 1") && msg.contains("[3, 2, 8, 10]"),
        "{msg}"
    );
    // An integer map declared real-valued.
    let mut batch = coords_batch();
    batch.targets[4].values = batch.targets[0].values.shallow_clone();
    let msg = refusal(&aug, &batch).to_string();
    assert!(msg.contains("task 4") && msg.contains("Int64"), "{msg}");
}

#[test]
fn normals_without_three_channels_are_refused_naming_the_task() {
    let mut batch = coords_batch();
    batch.targets[2].values = batch.targets[2].values.narrow(1, 0, 2);
    let msg = refusal(&build(AugmentationConfig::new(LAYOUTS)), &batch).to_string();
    assert!(
        msg.contains("task 2") && msg.contains("Normals") && msg.contains("[3, 2, 8, 10]"),
        "{msg}"
    );
}

#[test]
fn a_batch_that_is_not_images_is_refused() {
    let aug = build(AugmentationConfig::new([TargetLayout::Row]));
    let flat = Batch {
        x: Tensor::zeros([2, 5], (Kind::Float, tch::Device::Cpu)),
        targets: vec![TaskTarget::new(Tensor::from_slice(&[0i64, 1]))],
        rows: vec![0, 1],
    };
    let msg = refusal(&aug, &flat).to_string();
    assert!(msg.contains("[2, 5]"), "{msg}");
    let ints = Batch {
        x: Tensor::zeros([2, 1, 4, 4], (Kind::Int64, tch::Device::Cpu)),
        ..flat
    };
    let msg = refusal(&aug, &ints).to_string();
    assert!(msg.contains("Int64"), "{msg}");
}

#[test]
fn an_empty_batch_comes_out_empty_at_the_output_size() {
    let batch = Batch {
        x: Tensor::zeros([0, 3, 8, 8], (Kind::Float, tch::Device::Cpu)),
        targets: vec![TaskTarget::new(Tensor::zeros(
            [0, 8, 8],
            (Kind::Int64, tch::Device::Cpu),
        ))],
        rows: vec![],
    };
    let out = build(
        AugmentationConfig::new([TargetLayout::Classes])
            .random_crop(4, 4)
            .horizontal_flip(0.5),
    )
    .apply(&batch, &mut rng(14))
    .unwrap();
    assert_eq!(out.x.size(), [0, 3, 4, 4]);
    assert_eq!(out.targets[0].values.size(), [0, 4, 4]);
}

#[test]
fn a_tensor_dataset_augments_training_batches_only_and_repeats_with_its_seed() {
    use mtl_data::{JointData, TensorDataset, TensorTask};
    let n = 6;
    let x = Tensor::arange(n * 16, (Kind::Float, tch::Device::Cpu)).view([n, 1, 4, 4]);
    let labels = Tensor::arange(n * 16, (Kind::Int64, tch::Device::Cpu)).view([n, 4, 4]);
    let plain =
        TensorDataset::new(x.shallow_clone(), vec![TensorTask::new("segment", labels)]).unwrap();
    let flip = AugmentationConfig::new([TargetLayout::Classes])
        .horizontal_flip(1.0)
        .build()
        .unwrap();
    let data = plain.clone().with_augmentation(flip.clone()).unwrap();
    let batch = |d: &TensorDataset, seed: Option<u64>| {
        let mut rng = seed.map(|s| mtl_core::derive_rng(s, "batches"));
        d.joint_batches(n as usize, rng.as_mut())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
    };
    // Evaluation (no generator): untouched.
    assert!(batch(&data, None).x.equal(&batch(&plain, None).x));
    // Training: every image mirrored, its labels with it, the same with the same seed.
    let (a, b) = (batch(&data, Some(1)), batch(&data, Some(1)));
    assert!(a.x.equal(&b.x));
    let unflipped = batch(&plain, Some(1));
    assert!(a.x.equal(&unflipped.x.flip([3])));
    assert!(a.targets[0]
        .values
        .equal(&unflipped.targets[0].values.flip([2])));
    // One layout per task.
    let two = AugmentationConfig::new([TargetLayout::Classes, TargetLayout::Row])
        .build()
        .unwrap();
    assert!(plain.with_augmentation(two).is_err());
    assert_eq!(data.only_task(0).unwrap().len(), n as usize);
}
