//! Generated dense multi-task scenes: per image a class per pixel, a depth per pixel and
//! a surface normal per pixel, the three tasks of NYUv2 (LibMTL's flagship dense
//! benchmark) on data small enough to train on two CPU cores in minutes.
//!
//! No real dense multi-task data set ships in a registry package under a licence that
//! lets this repository carry it (NYUv2 and Cityscapes are download-on-request), so the
//! scenes are drawn by a documented, seeded procedure:
//!
//! 1. A back wall at depth 1 faces the camera (normal `(0, 0, 1)`, class 0); depths are
//!    in units of the wall's distance, so every target is of order one.
//! 2. One to `max_shapes` shapes are placed at random centres, sizes and depths
//!    `z₀ ∈ [0.25, 0.75]`, and drawn far to near, so nearer shapes occlude farther ones:
//!    * **dome** (class 1): a hemisphere of radius `r`; height `h = √(r² − ρ²)`, normal
//!      `(dx, dy, h)/r` (ρ the distance to the centre);
//!    * **pyramid** (class 2): a square of half-side `r` rising to its centre;
//!      `h = r − max(|dx|, |dy|)`, the normal of the facet the pixel lies on;
//!    * **plate** (class 3): a flat disc of radius `r` tilted by a random normal.
//!
//!    A shape's depth is `z₀ − h·s` with `s = 1/64` per pixel of height.
//! 3. The image is what a camera sees under one light from the upper left: each pixel's
//!    intensity is `albedo · max(0, n·l) · fog(z)` plus Gaussian noise, `fog(z) =
//!    exp(−0.8·z)`, the albedo 0.9 for shapes and 0.5 for the wall; no other channel.
//!    So the class shows in outline and shading, depth in brightness, normals in
//!    shading gradients — each task is learnable from the image, and the three share
//!    what a network must see, which is what makes them a multi-task problem.
//! 4. One pixel in `unmeasured` (20 by default) has depth 0, "not measured", as a
//!    depth sensor leaves holes; the depth loss and metrics skip them.
//!
//! Everything is drawn from one seeded ChaCha8 stream: a seed fixes the data set.

use crate::tensor_dataset::{TensorDataset, TensorTask};
use mtl_core::{Error, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

/// The number of pixel classes: the wall and three shapes.
pub const SCENE_CLASSES: i64 = 4;

/// The size and randomness of [`dense_scenes`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DenseScenesConfig {
    /// The number of images.
    pub images: usize,
    /// Their height and width in pixels.
    pub size: usize,
    /// The most shapes in one image (at least one is drawn).
    pub max_shapes: usize,
    /// The standard deviation of the image noise.
    pub noise: f64,
    /// One pixel in this many has no depth (0); 0 for none.
    pub unmeasured: u32,
    /// The seed of the whole data set.
    pub seed: u64,
}

impl Default for DenseScenesConfig {
    fn default() -> Self {
        DenseScenesConfig {
            images: 512,
            size: 32,
            max_shapes: 3,
            noise: 0.02,
            unmeasured: 20,
            seed: 0,
        }
    }
}

/// The wall's depth and the depth scale of a shape's height.
const WALL_DEPTH: f64 = 1.0;
const HEIGHT_SCALE: f64 = 1.0 / 64.0;

/// Draws the data set: features `Float [N, 1, S, S]`; tasks `segment` (`Int64 [N, S, S]`,
/// classes 0–3), `depth` (`Float [N, S, S]`, 0 = not measured) and `normals`
/// (`Float [N, 3, S, S]`, unit vectors).
///
/// ```
/// use mtl_data::{dense_scenes, DenseScenesConfig, JointData};
/// let ds = dense_scenes(&DenseScenesConfig { images: 4, size: 16, ..Default::default() })?;
/// assert_eq!(ds.len(), 4);
/// assert_eq!(ds.features().size(), [4, 1, 16, 16]);
/// assert_eq!(ds.task_names(), ["segment", "depth", "normals"]);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn dense_scenes(cfg: &DenseScenesConfig) -> Result<TensorDataset> {
    let noise_ok = cfg.noise.is_finite() && cfg.noise >= 0.0;
    if cfg.images == 0 || cfg.size < 8 || cfg.max_shapes == 0 || !noise_ok {
        return Err(Error::config(format!(
            "dense_scenes needs images ≥ 1, size ≥ 8, max_shapes ≥ 1 and noise ≥ 0, got {cfg:?}"
        )));
    }
    let (n, s) = (cfg.images, cfg.size);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut image = vec![0f32; n * s * s];
    let mut classes = vec![0i64; n * s * s];
    let mut depth = vec![0f32; n * s * s];
    let mut normals = vec![0f32; n * 3 * s * s];
    let light = normalize([-0.5, -0.5, 1.0]);
    for i in 0..n {
        let mut scene = Scene::wall(s);
        let count = rng.gen_range(1..=cfg.max_shapes);
        let mut shapes: Vec<Shape> = (0..count).map(|_| Shape::draw(&mut rng, s)).collect();
        // Far to near: the painter's algorithm gives occlusion.
        shapes.sort_by(|a, b| b.z0.total_cmp(&a.z0));
        for shape in &shapes {
            scene.paint(shape);
        }
        for p in 0..s * s {
            let n3 = scene.normal[p];
            let albedo = if scene.class[p] == 0 { 0.5 } else { 0.9 };
            let shade = dot(n3, light).max(0.0);
            let fog = (-0.8 * scene.depth[p]).exp();
            let value = albedo * shade * fog + cfg.noise * normal(&mut rng);
            image[i * s * s + p] = value as f32;
            classes[i * s * s + p] = scene.class[p];
            let measured = cfg.unmeasured == 0 || rng.gen_range(0..cfg.unmeasured) != 0;
            depth[i * s * s + p] = if measured { scene.depth[p] as f32 } else { 0.0 };
            for c in 0..3 {
                normals[(i * 3 + c) * s * s + p] = n3[c] as f32;
            }
        }
    }
    let (n, s) = (n as i64, s as i64);
    TensorDataset::new(
        Tensor::from_slice(&image).view([n, 1, s, s]),
        vec![
            TensorTask::new("segment", Tensor::from_slice(&classes).view([n, s, s])),
            TensorTask::new("depth", Tensor::from_slice(&depth).view([n, s, s])),
            TensorTask::new("normals", Tensor::from_slice(&normals).view([n, 3, s, s])),
        ],
    )
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Dome,
    Pyramid,
    Plate([f64; 3]),
}

#[derive(Debug, Clone, Copy)]
struct Shape {
    kind: Kind,
    cx: f64,
    cy: f64,
    r: f64,
    z0: f64,
}

impl Shape {
    fn draw(rng: &mut ChaCha8Rng, s: usize) -> Shape {
        let s = s as f64;
        let r = rng.gen_range(s / 8.0..s / 3.5);
        let kind = match rng.gen_range(0..3) {
            0 => Kind::Dome,
            1 => Kind::Pyramid,
            _ => {
                let (tx, ty) = (rng.gen_range(-0.6..0.6), rng.gen_range(-0.6..0.6));
                Kind::Plate(normalize([tx, ty, 1.0]))
            }
        };
        Shape {
            kind,
            cx: rng.gen_range(r * 0.5..s - r * 0.5),
            cy: rng.gen_range(r * 0.5..s - r * 0.5),
            r,
            z0: rng.gen_range(0.25..0.75),
        }
    }

    /// The shape's class, height and normal at pixel offset (dx, dy), if it covers it.
    fn at(&self, dx: f64, dy: f64) -> Option<(i64, f64, [f64; 3])> {
        let r = self.r;
        match self.kind {
            Kind::Dome => {
                let rho2 = dx * dx + dy * dy;
                (rho2 < r * r).then(|| {
                    let h = (r * r - rho2).sqrt();
                    (1, h, normalize([dx, dy, h]))
                })
            }
            Kind::Pyramid => {
                let m = dx.abs().max(dy.abs());
                (m < r).then(|| {
                    // The facet faces along the dominant axis, rising to the centre.
                    let n = if dx.abs() >= dy.abs() {
                        [dx.signum(), 0.0, 1.0]
                    } else {
                        [0.0, dy.signum(), 1.0]
                    };
                    (2, r - m, normalize(n))
                })
            }
            Kind::Plate(n) => (dx * dx + dy * dy < r * r).then_some((3, 0.0, n)),
        }
    }
}

/// One image's per-pixel class, depth and normal as shapes are painted over the wall.
struct Scene {
    size: usize,
    class: Vec<i64>,
    depth: Vec<f64>,
    normal: Vec<[f64; 3]>,
}

impl Scene {
    fn wall(size: usize) -> Scene {
        Scene {
            size,
            class: vec![0; size * size],
            depth: vec![WALL_DEPTH; size * size],
            normal: vec![[0.0, 0.0, 1.0]; size * size],
        }
    }

    fn paint(&mut self, shape: &Shape) {
        for y in 0..self.size {
            for x in 0..self.size {
                let (dx, dy) = (x as f64 + 0.5 - shape.cx, y as f64 + 0.5 - shape.cy);
                if let Some((class, h, n)) = shape.at(dx, dy) {
                    let p = y * self.size + x;
                    self.class[p] = class;
                    self.depth[p] = shape.z0 - h * HEIGHT_SCALE;
                    self.normal[p] = n;
                }
            }
        }
    }
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn normalize(v: [f64; 3]) -> [f64; 3] {
    let n = dot(v, v).sqrt();
    [v[0] / n, v[1] / n, v[2] / n]
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JointData;
    use tch::Kind as K;

    #[test]
    fn scenes_are_seeded_consistent_and_refuse_bad_sizes() {
        let cfg = DenseScenesConfig {
            images: 6,
            size: 16,
            ..Default::default()
        };
        let a = dense_scenes(&cfg).unwrap();
        let b = dense_scenes(&cfg).unwrap();
        assert!(a.features().equal(b.features()));
        let t = a.tasks();
        // Classes in range; some pixels of some shape in every image.
        assert!(t[0].values.min().int64_value(&[]) >= 0);
        assert!(t[0].values.max().int64_value(&[]) < SCENE_CLASSES);
        let shape_pixels = t[0]
            .values
            .gt(0)
            .sum_dim_intlist([1i64, 2].as_slice(), false, K::Int64);
        assert!(shape_pixels.min().int64_value(&[]) > 0);
        // Depths: the wall at 1, shapes nearer, holes at 0.
        let d = &t[1].values;
        assert!(d.max().double_value(&[]) <= WALL_DEPTH + 1e-6);
        assert!(d.eq(0.0).any().int64_value(&[]) == 1);
        // Unit normals.
        let norms = t[2].values.norm_scalaropt_dim(2, [1i64].as_slice(), false);
        assert!((norms - 1.0).abs().max().double_value(&[]) < 1e-5);
        assert_eq!(a.len(), 6);
        let other = dense_scenes(&DenseScenesConfig { seed: 1, ..cfg }).unwrap();
        assert!(!a.features().equal(other.features()));
        assert!(dense_scenes(&DenseScenesConfig { size: 4, ..cfg }).is_err());
        assert!(dense_scenes(&DenseScenesConfig {
            noise: f64::NAN,
            ..cfg
        })
        .is_err());
    }
}
