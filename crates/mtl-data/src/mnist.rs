//! MNIST (LeCun et al.) from its IDX files, and MultiMNIST (Sener & Koltun, "Multi-Task
//! Learning as Multi-Objective Optimization", NeurIPS 2018): two digits on one canvas,
//! one task per digit.

use crate::dataset::{MultiTaskDataset, Split};
use crate::idx::read_idx;
use crate::target::TaskData;
use mtl_core::{derive_rng, Error, Result};
use ndarray::{Array1, Array2, ArrayView2};
use rand::seq::SliceRandom;
use rand::Rng;
use rayon::prelude::*;
use std::path::Path;

/// MNIST's digit side, in pixels.
const SIDE: usize = 28;

/// The four MNIST files under `<root>/mnist/`.
const FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// One part of MNIST: `[n, 28, 28]` pixels and `n` labels.
struct Digits {
    pixels: Vec<u8>,
    labels: Vec<u8>,
}

impl Digits {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * SIDE * SIDE..(i + 1) * SIDE * SIDE]
    }

    fn read(root: &Path, images: &str, labels: &str) -> Result<Self> {
        let dir = root.join("mnist");
        let images_path = dir.join(images);
        let labels_path = dir.join(labels);
        let x = read_idx(&images_path)?;
        let y = read_idx(&labels_path)?;
        let shape_error = |path: &Path, expected: &str, got: String| {
            Error::shape(format!("MNIST file {}", path.display()), expected, got)
        };
        if x.shape().len() != 3 || x.shape()[1..] != [SIDE, SIDE] {
            return Err(shape_error(
                &images_path,
                "[n, 28, 28] images",
                format!("{:?}", x.shape()),
            ));
        }
        if y.shape() != [x.shape()[0]] {
            return Err(shape_error(
                &labels_path,
                &format!("[{}] labels", x.shape()[0]),
                format!("{:?}", y.shape()),
            ));
        }
        let labels: Vec<u8> = y.view::<u8>()?.iter().copied().collect();
        if let Some(row) = labels.iter().position(|&l| l > 9) {
            return Err(Error::LabelOutOfRange {
                task: 0,
                row,
                label: i64::from(labels[row]),
                classes: 10,
            });
        }
        Ok(Digits {
            pixels: x.as_bytes().to_vec(),
            labels,
        })
    }
}

fn digit_names() -> Vec<String> {
    (0..10).map(|d| d.to_string()).collect()
}

/// MNIST as single-task datasets: `train` (60,000 rows) and `test` (10,000), features
/// the 784 pixels scaled to `[0, 1]`, one task `"digit"` (10 classes). `validation` is
/// empty (carve one from `train` with [`MultiTaskDataset::split`]).
///
/// Reads `<root>/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`; pass
/// [`data_root("mnist")`](crate::data_root).
pub fn mnist(root: impl AsRef<Path>) -> Result<Split> {
    let root = root.as_ref();
    let part = |images: &str, labels: &str| -> Result<MultiTaskDataset> {
        let d = Digits::read(root, images, labels)?;
        let x = Array2::from_shape_vec(
            (d.len(), SIDE * SIDE),
            d.pixels.iter().map(|&p| f32::from(p) / 255.0).collect(),
        )
        .map_err(|e| Error::shape("MNIST pixels", "[n, 784]", e))?;
        let y = Array1::from_iter(d.labels.iter().map(|&l| i64::from(l)));
        MultiTaskDataset::new(x, vec![TaskData::classes("digit", y, 10)])?
            .with_class_names(0, digit_names())
    };
    let train = part(FILES[0], FILES[1])?;
    let test = part(FILES[2], FILES[3])?;
    let validation = train.subset(&[])?;
    Ok(Split {
        train,
        validation,
        test,
    })
}

/// Where the two digits sit on the canvas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultiMnistPlacement {
    /// The construction of Sener & Koltun's released generator (`multi_mnist_loader.py`
    /// in their code, which also ships the data set): the left digit in the canvas's
    /// top-left corner, the right digit `offset` pixels down and right of it, both
    /// unshifted, so every image has the same overlap. Their generator uses `offset = 6`
    /// on a 36×36 canvas (`max_shift = 4`).
    Fixed {
        /// How far, in pixels along each axis, the right digit starts from the left one;
        /// at most `2·max_shift` (the canvas's margin).
        offset: usize,
    },
    /// The MultiMNIST of Sabour et al. (2017) as later MTL papers build it (Lin et al.,
    /// Pareto MTL, 2019, among others): each digit starts in its corner of the canvas
    /// and moves a seeded random 0..=`max_shift` pixels per axis towards the centre, so
    /// the overlap varies from none to complete.
    Shifted,
}

/// How the canvas is brought to the output side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultiMnistResize {
    /// Nearest neighbour, sampling the canvas pixel under each output pixel's centre
    /// (`scipy.misc.imresize(..., interp='nearest')`, PIL's `NEAREST`), as Sener &
    /// Koltun's generator does: pixels keep MNIST's values, strokes lose rows.
    Nearest,
    /// Area averaging: each output pixel is the mean of the canvas area it covers.
    Area,
}

/// How to build MultiMNIST.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiMnistConfig {
    /// Composite images made from MNIST's training digits.
    pub train_size: usize,
    /// Composite images made from digits held out of MNIST's training part (the last
    /// 10,000 of a seeded shuffle) when positive; training composites then use only the
    /// other 50,000, so no digit appears in both.
    pub validation_size: usize,
    /// Composite images made from MNIST's test digits.
    pub test_size: usize,
    /// Half the canvas margin, in pixels: the canvas side is `28 + 2·max_shift`. With
    /// [`MultiMnistPlacement::Shifted`] also the most each digit moves per axis.
    pub max_shift: usize,
    /// Where the two digits go.
    pub placement: MultiMnistPlacement,
    /// The side of the images returned (28 as in Sener & Koltun; the canvas side keeps
    /// the canvas as is).
    pub output_side: usize,
    /// How the canvas is resized to `output_side`.
    pub resize: MultiMnistResize,
    /// Seeds every random choice: which digits pair up and how they shift.
    pub seed: u64,
}

impl Default for MultiMnistConfig {
    /// The set-up of Sener & Koltun's released generator: 60,000 training and 10,000
    /// test images, no validation, a 36×36 canvas with the right digit 6 pixels down
    /// and right of the left one, nearest-neighbour resized to 28×28.
    fn default() -> Self {
        MultiMnistConfig {
            train_size: 60_000,
            validation_size: 0,
            test_size: 10_000,
            max_shift: 4,
            placement: MultiMnistPlacement::Fixed { offset: 6 },
            output_side: SIDE,
            resize: MultiMnistResize::Nearest,
            seed: 0,
        }
    }
}

impl MultiMnistConfig {
    /// A small set for tests and quick runs: `train` training images, `test` test
    /// images, no validation.
    pub fn sized(train: usize, test: usize) -> Self {
        MultiMnistConfig {
            train_size: train,
            test_size: test,
            ..Self::default()
        }
    }

    /// Sets the validation size.
    pub fn validation(mut self, n: usize) -> Self {
        self.validation_size = n;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sabour et al.'s random placement with area resizing (the construction this
    /// crate used before following Sener & Koltun's generator): each digit shifted up
    /// to `max_shift` pixels towards the centre.
    pub fn shifted(mut self) -> Self {
        self.placement = MultiMnistPlacement::Shifted;
        self.resize = MultiMnistResize::Area;
        self
    }

    /// The canvas side, `28 + 2·max_shift`.
    pub fn canvas_side(&self) -> usize {
        SIDE + 2 * self.max_shift
    }
}

/// Where one composite's digits come from and how far they move.
#[derive(Debug, Clone, Copy)]
struct Plan {
    left: usize,
    right: usize,
    // (row, column) of the left digit's top-left pixel on the canvas.
    left_at: (usize, usize),
    // (row, column) of the right digit's top-left pixel on the canvas.
    right_at: (usize, usize),
}

/// MultiMNIST: each image overlays two MNIST digits on a `(28 + 2·max_shift)²` canvas,
/// one towards the top-left and one towards the bottom-right, placed as
/// [`MultiMnistConfig::placement`] says (by default Sener & Koltun's generator: left
/// digit in the corner, right digit 6 pixels down and right of it); overlapping pixels
/// take the brighter value. The canvas is then resized to `output_side²`
/// ([`MultiMnistConfig::resize`]; by default nearest-neighbour, as theirs) and scaled to
/// `[0, 1]`. Tasks `"left"` and `"right"`: the two digits (10 classes each).
///
/// The left digits run through a seeded shuffle of their pool (repeating it when more
/// images than digits are asked for); each right digit is drawn at random from the same
/// pool. Training and validation composites come from MNIST's training digits, test
/// composites from its test digits. The same configuration always gives the same
/// images, on any number of threads (the choices are drawn in order before the images
/// are drawn in parallel).
///
/// Reads `<root>/mnist/`; pass [`data_root("mnist")`](crate::data_root).
///
/// ```no_run
/// use mtl_data::{data_root, multi_mnist, MultiMnistConfig};
/// let s = multi_mnist(data_root("mnist")?, &MultiMnistConfig::sized(200, 50))?;
/// assert_eq!((s.train.len(), s.test.len(), s.train.num_features()), (200, 50, 784));
/// assert_eq!(s.train.task_names(), ["left", "right"]);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn multi_mnist(root: impl AsRef<Path>, config: &MultiMnistConfig) -> Result<Split> {
    let canvas = config.canvas_side();
    if config.output_side == 0 || config.output_side > canvas {
        return Err(Error::config(format!(
            "MultiMNIST output side must be in 1..={canvas}, got {}",
            config.output_side
        )));
    }
    if config.train_size == 0 {
        return Err(Error::config(
            "MultiMNIST needs at least one training image",
        ));
    }
    if let MultiMnistPlacement::Fixed { offset } = config.placement {
        if offset > canvas - SIDE {
            return Err(Error::config(format!(
                "MultiMNIST fixed offset must be at most the canvas margin 2·max_shift = {}, \
                 got {offset}",
                canvas - SIDE
            )));
        }
    }
    let root = root.as_ref();
    let train_digits = Digits::read(root, FILES[0], FILES[1])?;
    let test_digits = Digits::read(root, FILES[2], FILES[3])?;
    let mut pool: Vec<usize> = (0..train_digits.len()).collect();
    let (train_pool, val_pool) = if config.validation_size > 0 {
        pool.shuffle(&mut derive_rng(config.seed, "multimnist-holdout"));
        let held = 10_000.min(pool.len() / 2);
        let (t, v) = pool.split_at(pool.len() - held);
        (t.to_vec(), v.to_vec())
    } else {
        (pool, Vec::new())
    };
    let test_pool: Vec<usize> = (0..test_digits.len()).collect();
    let build = |digits: &Digits, pool: &[usize], n: usize, stream: &str| {
        compose(digits, pool, n, config, &format!("multimnist-{stream}"))
    };
    Ok(Split {
        train: build(&train_digits, &train_pool, config.train_size, "train")?,
        validation: build(
            &train_digits,
            &val_pool,
            config.validation_size,
            "validation",
        )?,
        test: build(&test_digits, &test_pool, config.test_size, "test")?,
    })
}

fn compose(
    digits: &Digits,
    pool: &[usize],
    n: usize,
    config: &MultiMnistConfig,
    stream: &str,
) -> Result<MultiTaskDataset> {
    let side = config.output_side;
    if n > 0 && pool.len() < 2 {
        return Err(Error::config(format!(
            "MultiMNIST: {n} images asked for but only {} digits to pair",
            pool.len()
        )));
    }
    let mut rng = derive_rng(config.seed, stream);
    let mut plans = Vec::with_capacity(n);
    let mut order: Vec<usize> = Vec::new();
    for i in 0..n {
        if i % pool.len().max(1) == 0 {
            order = pool.to_vec();
            order.shuffle(&mut rng);
        }
        let left = order[i % pool.len()];
        let mut right = pool[rng.gen_range(0..pool.len())];
        while right == left {
            right = pool[rng.gen_range(0..pool.len())];
        }
        let far = config.canvas_side() - SIDE;
        let (left_at, right_at) = match config.placement {
            MultiMnistPlacement::Fixed { offset } => ((0, 0), (offset, offset)),
            MultiMnistPlacement::Shifted => {
                let mut shift = || {
                    (
                        rng.gen_range(0..=config.max_shift),
                        rng.gen_range(0..=config.max_shift),
                    )
                };
                let (down, right) = shift();
                let (up, back) = shift();
                ((down, right), (far - up, far - back))
            }
        };
        plans.push(Plan {
            left,
            right,
            left_at,
            right_at,
        });
    }
    let resize = Resize::new(config.canvas_side(), side, config.resize);
    let mut x = Array2::<f32>::zeros((n, side * side));
    if let Some(rows) = x.as_slice_mut() {
        rows.par_chunks_mut(side * side)
            .zip(plans.par_iter())
            .for_each(|(row, plan)| draw(digits, plan, config, &resize, row));
    }
    let left = Array1::from_iter(plans.iter().map(|p| i64::from(digits.labels[p.left])));
    let right = Array1::from_iter(plans.iter().map(|p| i64::from(digits.labels[p.right])));
    MultiTaskDataset::new(
        x,
        vec![
            TaskData::classes("left", left, 10),
            TaskData::classes("right", right, 10),
        ],
    )?
    .with_class_names(0, digit_names())?
    .with_class_names(1, digit_names())
}

/// Draws one composite into `out` (`output_side²` values in `[0, 1]`).
fn draw(digits: &Digits, plan: &Plan, config: &MultiMnistConfig, resize: &Resize, out: &mut [f32]) {
    let c = config.canvas_side();
    let mut canvas = vec![0u8; c * c];
    let placements = [
        (plan.left, plan.left_at.0, plan.left_at.1),
        (plan.right, plan.right_at.0, plan.right_at.1),
    ];
    for (digit, top, left) in placements {
        let image = digits.image(digit);
        for r in 0..SIDE {
            let src = &image[r * SIDE..(r + 1) * SIDE];
            let dst = &mut canvas[(top + r) * c + left..(top + r) * c + left + SIDE];
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = (*d).max(s);
            }
        }
    }
    let canvas: Vec<f32> = canvas.iter().map(|&p| f32::from(p) / 255.0).collect();
    // `canvas` has c² values by construction.
    if let Ok(view) = ArrayView2::from_shape((c, c), &canvas) {
        resize.apply(view, out);
    }
}

/// A separable resize of a square image, as one weight matrix applied to rows and
/// columns. Area: each output pixel is the mean of the input area it covers (fractional
/// pixels weighted by their covered fraction). Nearest: each output pixel copies the
/// input pixel under its centre, `⌊(o + ½)·from/to⌋`.
struct Resize {
    // [to, from]: row o holds the weights of the input pixels under output pixel o.
    weights: Array2<f32>,
}

impl Resize {
    fn new(from: usize, to: usize, mode: MultiMnistResize) -> Self {
        let scale = from as f64 / to as f64;
        let weights = Array2::from_shape_fn((to, from), |(o, i)| match mode {
            MultiMnistResize::Area => {
                let (lo, hi) = (o as f64 * scale, (o + 1) as f64 * scale);
                let overlap = (hi.min(i as f64 + 1.0) - lo.max(i as f64)).max(0.0);
                (overlap / scale) as f32
            }
            MultiMnistResize::Nearest => {
                let source = (((o as f64 + 0.5) * scale).floor() as usize).min(from - 1);
                if source == i {
                    1.0
                } else {
                    0.0
                }
            }
        });
        Resize { weights }
    }

    fn apply(&self, image: ArrayView2<'_, f32>, out: &mut [f32]) {
        let resized = self.weights.dot(&image).dot(&self.weights.t());
        for (o, v) in out.iter_mut().zip(resized.iter()) {
            *o = *v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_resize_keeps_constants_and_means() {
        let r = Resize::new(36, 28, MultiMnistResize::Area);
        for row in r.weights.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-5);
        }
        let ones = Array2::<f32>::ones((36, 36));
        let mut out = vec![0.0; 28 * 28];
        r.apply(ones.view(), &mut out);
        assert!(out.iter().all(|v| (v - 1.0).abs() < 1e-5));
        let identity = Resize::new(5, 5, MultiMnistResize::Area);
        assert_eq!(identity.weights, Array2::<f32>::eye(5));
    }

    #[test]
    fn nearest_resize_samples_the_pixel_under_each_centre() {
        let r = Resize::new(36, 28, MultiMnistResize::Nearest);
        let sources: Vec<usize> = r
            .weights
            .rows()
            .into_iter()
            .map(|row| {
                assert_eq!(row.iter().filter(|&&w| w != 0.0).count(), 1);
                row.iter().position(|&w| w == 1.0).unwrap()
            })
            .collect();
        // ⌊(o + ½)·36/28⌋: 0, 1, 3, 4, 5, … 35; 8 of the 36 canvas rows are dropped.
        assert_eq!(&sources[..5], &[0, 1, 3, 4, 5]);
        assert_eq!(sources[27], 35);
        assert!(sources.windows(2).all(|w| w[1] > w[0]));
        let identity = Resize::new(5, 5, MultiMnistResize::Nearest);
        assert_eq!(identity.weights, Array2::<f32>::eye(5));
    }

    #[test]
    fn shifted_digits_land_in_their_corners() {
        // Two "digits": all-bright and all-dark, so the canvas shows where each went.
        let digits = Digits {
            pixels: [vec![255u8; SIDE * SIDE], vec![0u8; SIDE * SIDE]].concat(),
            labels: vec![1, 2],
        };
        let config = MultiMnistConfig {
            output_side: 36,
            ..MultiMnistConfig::default().shifted()
        };
        let plan = Plan {
            left: 0,
            right: 1,
            left_at: (3, 1),
            right_at: (8, 8),
        };
        let mut out = vec![0.0; 36 * 36];
        let identity = Resize::new(36, 36, MultiMnistResize::Area);
        draw(&digits, &plan, &config, &identity, &mut out);
        let lit = |r: usize, c: usize| out[r * 36 + c] > 0.5;
        assert!(lit(3, 1) && lit(30, 28) && !lit(2, 1) && !lit(3, 0) && !lit(31, 1));
    }

    /// Sener & Koltun's construction: on the 36×36 canvas the left digit covers rows
    /// and columns 0..28, the right one 6..34, the 22×22 overlap takes the brighter
    /// pixel, and rows and columns 34..36 stay dark.
    #[test]
    fn fixed_placement_follows_the_released_generator() {
        // Digit 0 is flat 100, digit 1 flat 200: each pixel shows which digits cover it.
        let digits = Digits {
            pixels: [vec![100u8; SIDE * SIDE], vec![200u8; SIDE * SIDE]].concat(),
            labels: vec![3, 8],
        };
        let config = MultiMnistConfig {
            output_side: 36,
            ..MultiMnistConfig::default()
        };
        assert_eq!(config.placement, MultiMnistPlacement::Fixed { offset: 6 });
        assert_eq!(config.canvas_side(), 36);
        let data = compose(&digits, &[0, 1], 6, &config, "test").unwrap();
        let x = data.features();
        let value = |label: i64| if label == 3 { 100.0 } else { 200.0 } / 255.0;
        let labels = |k: usize| match &data.tasks()[k].data {
            crate::target::TargetData::Classes { labels, .. } => labels.to_vec(),
            _ => unreachable!("MultiMNIST tasks are classes"),
        };
        let (left, right) = (labels(0), labels(1));
        for (i, row) in x.rows().into_iter().enumerate() {
            assert_ne!(left[i], right[i], "a pool of two pairs the two digits");
            let px = |r: usize, c: usize| row[r * 36 + c];
            let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
            assert!(close(px(0, 0), value(left[i])) && close(px(5, 27), value(left[i])));
            assert!(close(px(33, 33), value(right[i])) && close(px(28, 6), value(right[i])));
            assert!(close(px(6, 6), 200.0 / 255.0) && close(px(27, 27), 200.0 / 255.0));
            for k in 0..36 {
                for edge in [34, 35] {
                    assert_eq!((px(edge, k), px(k, edge)), (0.0, 0.0));
                }
            }
            // Outside both digits: top-right and bottom-left blocks.
            assert_eq!(
                (px(0, 28), px(5, 33), px(28, 0), px(33, 5)),
                (0.0, 0.0, 0.0, 0.0)
            );
        }
        let bad = MultiMnistConfig {
            placement: MultiMnistPlacement::Fixed { offset: 9 },
            ..MultiMnistConfig::default()
        };
        let err = multi_mnist("/nonexistent", &bad).unwrap_err().to_string();
        assert!(err.contains("offset"), "{err}");
    }
}
