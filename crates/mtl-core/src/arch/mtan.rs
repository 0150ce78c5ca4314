//! Multi-Task Attention Network (MTAN): Liu, Johns & Davison, "End-to-End Multi-Task
//! Learning with Attention", CVPR 2019.
//!
//! A shared convolutional network of `L` blocks, and per task one soft-attention
//! module per block that selects from the block's feature maps. Inputs are images
//! `[B, C, H, W]` or rows of `C·H·W` floats, viewed as images inside. MTAN is its own
//! convolutional trunk (it takes no [`Backbone`](super::Backbone)). Its task features
//! are pooled vectors for row heads ([`MtanOutput::Pooled`], the default) or, for dense
//! heads (segmentation, depth, normals), the attended maps of the last block upsampled
//! back to the input's resolution ([`MtanOutput::Maps`]). Block `j` (`c_j` channels):
//!
//! ```text
//! shared   u_j = ReLU(conv3×3(x_j)),   p_j = ReLU(conv3×3(u_j)),   x_{j+1} = maxpool2(p_j)
//! task k   a_k^j = σ(conv1×1(ReLU(conv1×1([u_j ; t_k^{j−1}]))))      (just u_0 at j = 0)
//!          â_k^j = a_k^j ⊙ p_j                                         (the attended maps)
//!          t_k^j = maxpool2(ReLU(conv3×3(â_k^j)))                     (to block j+1's size)
//! features_k = flatten(average pool of â_k^{L−1} to a g_h × g_w grid)  [B, c_{L−1}·g_h·g_w]
//!   or (Maps) bilinear upsampling of â_k^{L−1} to H × W                  [B, c_{L−1}, H, W]
//! ```
//!
//! The attention modules are task `k`'s own (`task_path(path, k)/attention<j>`); the
//! blocks are shared (`path/block<j>`). The paper's batch normalisation inside the
//! attention modules is left out, which keeps training and evaluation identical. Task
//! features read the shared maps of every block, so `TaskFeatures::shared` is all of
//! them (`u_j`, `p_j`) flattened into one `[B, Σ 2·c_j·H_j·W_j]` tensor, which the
//! attention modules read back from slices: every shared parameter reaches the tasks
//! only through it, as rep-grad needs. The pooling grid is `1 × 1` (global average
//! pooling) by default. A per-task tower after the pooling is
//! [`TaskTowers`](super::TaskTowers)' job.

use super::{check_input_width, Architecture, TaskFeatures};
use crate::init::{self, Init};
use crate::{task_path, Error, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// What an [`Mtan`] hands each task's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MtanOutput {
    /// The last block's attended maps average-pooled to `pool_grid` and flattened:
    /// `[B, c_{L−1}·g_h·g_w]`, for heads that read rows.
    #[default]
    Pooled,
    /// The last block's attended maps, bilinearly upsampled (corners not aligned, as
    /// `F.interpolate`'s default) to the input's `H × W`: `[B, c_{L−1}, H, W]`, for
    /// dense heads. There is no decoder: detail finer than the last block's resolution
    /// (`H/2^(L−1)`) is not recovered, so dense tasks want few blocks or a
    /// [`ConvNet`](super::ConvNet) trunk.
    Maps,
}

/// Configuration of an [`Mtan`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MtanConfig {
    /// Input channels `C`.
    pub channels: i64,
    /// Input height `H`.
    pub height: i64,
    /// Input width `W`.
    pub width: i64,
    /// Channels of each shared block, `c_0 … c_{L−1}` (`[16, 32]` by default).
    pub block_channels: Vec<i64>,
    /// Number of tasks.
    pub num_tasks: usize,
    /// The grid the attended maps are average-pooled to before flattening (`[1, 1]`,
    /// global average pooling, by default; a finer grid keeps coarse positions).
    pub pool_grid: [i64; 2],
    /// What the task features are: pooled rows or full-resolution maps.
    #[serde(default)]
    pub output: MtanOutput,
    /// How every convolution starts (PyTorch's `nn.Conv2d` default unless set).
    #[serde(default)]
    pub init: Init,
}

impl MtanConfig {
    /// Two blocks (16 and 32 channels) over single-channel `height × width` images.
    pub fn new(height: i64, width: i64, num_tasks: usize) -> Self {
        MtanConfig {
            channels: 1,
            height,
            width,
            block_channels: vec![16, 32],
            num_tasks,
            pool_grid: [1, 1],
            output: MtanOutput::default(),
            init: Init::default(),
        }
    }
    /// Sets the input channels.
    pub fn channels(mut self, c: i64) -> Self {
        self.channels = c;
        self
    }
    /// Sets the channels of each block (and so the number of blocks).
    pub fn block_channels(mut self, c: impl Into<Vec<i64>>) -> Self {
        self.block_channels = c.into();
        self
    }

    /// Sets the pooling grid of the task features.
    pub fn pool_grid(mut self, height: i64, width: i64) -> Self {
        self.pool_grid = [height, width];
        self
    }
    /// Sets how the convolutions start.
    pub fn init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }
    /// Sets what the task features are (pooled rows or full-resolution maps).
    pub fn output(mut self, output: MtanOutput) -> Self {
        self.output = output;
        self
    }

    /// The width of an input row, `C·H·W`.
    pub fn in_dim(&self) -> i64 {
        self.channels * self.height * self.width
    }

    /// Builds the shared blocks and every task's attention modules under `path`.
    pub fn build(&self, path: &nn::Path) -> Result<Mtan> {
        if self.num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "mtan".into(),
                expected: 0,
                got: 0,
            });
        }
        let l = self.block_channels.len();
        let positive = [self.channels, self.height, self.width]
            .iter()
            .chain(&self.block_channels)
            .chain(&self.pool_grid)
            .all(|&v| v > 0);
        let min_side = 1i64 << l.saturating_sub(1).min(30);
        if l == 0 || !positive || self.height < min_side || self.width < min_side {
            return Err(Error::config(format!(
                "mtan needs at least one block, positive sizes and images of at least \
                 {min_side}×{min_side} for {l} blocks, got {self:?}"
            )));
        }
        let conv3 = nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        let conv = |p: nn::Path, c_in: i64, c_out: i64, k: i64, cfg: nn::ConvConfig| {
            init::conv2d(&p, c_in, c_out, k, cfg, self.init)
        };
        let c = &self.block_channels;
        let mut blocks = Vec::with_capacity(l);
        let mut c_in = self.channels;
        for (j, &cj) in c.iter().enumerate() {
            let p = path / format!("block{j}");
            blocks.push(SharedBlock {
                conv1: conv(&p / "conv1", c_in, cj, 3, conv3)?,
                conv2: conv(&p / "conv2", cj, cj, 3, conv3)?,
            });
            c_in = cj;
        }
        let attention = (0..self.num_tasks)
            .map(|k| {
                (0..l)
                    .map(|j| {
                        let p = task_path(path, k) / format!("attention{j}");
                        let input = if j == 0 { c[0] } else { 2 * c[j] };
                        Ok(Attention {
                            squeeze: conv(&p / "conv_a", input, c[j], 1, Default::default())?,
                            mask: conv(&p / "conv_b", c[j], c[j], 1, Default::default())?,
                            next: (j + 1 < l)
                                .then(|| conv(&p / "out", c[j], c[j + 1], 3, conv3))
                                .transpose()?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Mtan {
            blocks,
            attention,
            cfg: self.clone(),
        })
    }
}

#[derive(Debug)]
struct SharedBlock {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
}

#[derive(Debug)]
struct Attention {
    squeeze: nn::Conv2D,
    mask: nn::Conv2D,
    /// The 3×3 convolution that carries the attended maps to the next block's
    /// channels (absent in the last block).
    next: Option<nn::Conv2D>,
}

/// The MTAN architecture built by [`MtanConfig::build`].
#[derive(Debug)]
pub struct Mtan {
    blocks: Vec<SharedBlock>,
    /// `attention[k][j]`: task `k`'s module at block `j`.
    attention: Vec<Vec<Attention>>,
    cfg: MtanConfig,
}

impl Mtan {
    /// `[B, c_j, H_j, W_j]`: task `k`'s attention mask at block `j` for `xs`.
    pub fn attention_mask(&self, xs: &Tensor, k: usize, j: usize) -> Result<Tensor> {
        let (maps, _) = self.shared_maps(xs, false)?;
        let (mask, _) = self.attend(k, &maps, j)?;
        mask.ok_or_else(|| Error::config(format!("mtan has no task {k} or block {j}")))
    }

    /// Every block's `(u_j, p_j)`, read back from slices of the flattened
    /// representation, which is returned too.
    fn shared_maps(&self, xs: &Tensor, train: bool) -> Result<(Vec<(Tensor, Tensor)>, Tensor)> {
        let c = &self.cfg;
        // Images may come as they are, `[B, C, H, W]`, or as rows of `C·H·W` floats.
        let mut h = if xs.dim() == 4 {
            let size = xs.size();
            if size[1..] != [c.channels, c.height, c.width] {
                return Err(Error::shape(
                    "mtan input",
                    format!(
                        "[batch, {}, {}, {}] images (or [batch, {}] rows)",
                        c.channels,
                        c.height,
                        c.width,
                        c.in_dim()
                    ),
                    format!("{size:?}"),
                ));
            }
            xs.shallow_clone()
        } else {
            check_input_width("mtan input", xs, c.in_dim())?;
            xs.f_view([-1, c.channels, c.height, c.width])?
        };
        let mut maps = Vec::with_capacity(2 * self.blocks.len());
        for (j, b) in self.blocks.iter().enumerate() {
            let u = h.apply_t(&b.conv1, train).f_relu()?;
            let p = u.apply_t(&b.conv2, train).f_relu()?;
            if j + 1 < self.blocks.len() {
                h = p.f_max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)?;
            }
            maps.push(u);
            maps.push(p);
        }
        let batch = xs.size()[0];
        let shapes: Vec<Vec<i64>> = maps.iter().map(Tensor::size).collect();
        let flat = maps
            .iter()
            .map(|m| m.f_reshape([batch, -1]))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let z = Tensor::f_cat(&flat, 1)?;
        let mut offset = 0;
        let mut views = Vec::with_capacity(maps.len());
        for s in &shapes {
            let n: i64 = s[1..].iter().product();
            views.push(z.f_narrow(1, offset, n)?.f_reshape(s.as_slice())?);
            offset += n;
        }
        let pairs = views
            .chunks(2)
            .map(|uv| (uv[0].shallow_clone(), uv[1].shallow_clone()))
            .collect();
        Ok((pairs, z))
    }

    /// Runs task `k`'s modules up to block `upto`; returns that block's mask and the
    /// task's features when `upto` is the last block.
    fn attend(
        &self,
        k: usize,
        maps: &[(Tensor, Tensor)],
        upto: usize,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let modules = match self.attention.get(k) {
            Some(m) => m,
            None => return Ok((None, None)),
        };
        let mut carried: Option<Tensor> = None;
        for (j, ((u, p), att)) in maps.iter().zip(modules).enumerate().take(upto + 1) {
            let input = match &carried {
                None => u.shallow_clone(),
                Some(t) => Tensor::f_cat(&[u, t], 1)?,
            };
            let mask = input
                .apply(&att.squeeze)
                .f_relu()?
                .apply(&att.mask)
                .f_sigmoid()?;
            let attended = mask.f_mul(p)?;
            if j == upto {
                let features = match (&att.next, self.cfg.output) {
                    (Some(_), _) => None,
                    (None, MtanOutput::Pooled) => Some(
                        attended
                            .f_adaptive_avg_pool2d(self.cfg.pool_grid)?
                            .f_flatten(1, -1)?,
                    ),
                    (None, MtanOutput::Maps) => Some(attended.f_upsample_bilinear2d(
                        [self.cfg.height, self.cfg.width],
                        false,
                        None,
                        None,
                    )?),
                };
                return Ok((Some(mask), features));
            }
            if let Some(next) = &att.next {
                carried = Some(attended.apply(next).f_relu()?.f_max_pool2d(
                    [2, 2],
                    [2, 2],
                    [0, 0],
                    [1, 1],
                    false,
                )?);
            }
        }
        Ok((None, None))
    }
}

impl Architecture for Mtan {
    fn num_tasks(&self) -> usize {
        self.attention.len()
    }
    fn feature_dims(&self) -> Vec<i64> {
        let c = self.cfg.block_channels.last().copied().unwrap_or(0);
        let [ph, pw] = self.cfg.pool_grid;
        let width = match self.cfg.output {
            MtanOutput::Pooled => c * ph * pw,
            // Maps: the channels, which a dense head reads.
            MtanOutput::Maps => c,
        };
        vec![width; self.attention.len()]
    }
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<TaskFeatures> {
        let (maps, z) = self.shared_maps(xs, train)?;
        let last = self.blocks.len() - 1;
        let per_task = (0..self.attention.len())
            .map(|k| {
                self.attend(k, &maps, last)?
                    .1
                    .ok_or_else(|| Error::config("mtan: the last block produced no features"))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TaskFeatures::new(Some(z), per_task))
    }
    fn name(&self) -> &'static str {
        "mtan"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParamGroups;
    use tch::{Device, Kind};

    fn build(vs: &nn::VarStore) -> Mtan {
        MtanConfig::new(8, 6, 2)
            .channels(2)
            .block_channels([4, 5])
            .build(&(vs.root() / "mtan"))
            .unwrap()
    }

    #[test]
    fn shapes_masks_and_split() {
        // Tests draw from libtorch's process-wide generator (initialisation, randn):
        // the lock keeps parallel tests from taking each other's seeded draws.
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let mtan = build(&vs);
        let x = Tensor::randn([3, 2 * 8 * 6], (Kind::Float, Device::Cpu));
        let f = mtan.forward_t(&x, true).unwrap();
        assert_eq!(mtan.feature_dims(), vec![5, 5]);
        assert_eq!(f.per_task[1].size(), vec![3, 5]);
        // u_0, p_0: 4·8·6 each; u_1, p_1: 5·4·3 each.
        assert_eq!(f.shared.unwrap().size(), vec![3, 2 * 192 + 2 * 60]);
        let grid = MtanConfig::new(8, 6, 2)
            .channels(2)
            .block_channels([4, 5])
            .pool_grid(2, 3)
            .build(&nn::VarStore::new(Device::Cpu).root())
            .unwrap();
        assert_eq!(grid.feature_dims(), vec![30, 30]);
        assert_eq!(
            grid.forward_t(&x, false).unwrap().per_task[0].size(),
            vec![3, 30]
        );
        let m = mtan.attention_mask(&x, 1, 1).unwrap();
        assert_eq!(m.size(), vec![3, 5, 4, 3]);
        let (lo, hi) = (m.min().double_value(&[]), m.max().double_value(&[]));
        assert!(lo > 0.0 && hi < 1.0, "{lo} {hi}");
        let g = ParamGroups::from_var_store(&vs, 2).unwrap();
        assert!(g.shared.iter().all(|p| p.name.starts_with("mtan.block")));
        assert_eq!(g.shared.len(), 8);
        // Block 0: conv_a, conv_b, out; block 1: conv_a, conv_b — weights and biases.
        assert!(g.task.iter().all(|t| t.len() == 10));
        assert!(g.task[0]
            .iter()
            .any(|p| p.name == "mtan.task0.attention1.conv_a.weight"
                && p.tensor.size() == vec![5, 10, 1, 1]));
    }

    #[test]
    fn every_shared_parameter_reaches_the_tasks_through_the_representation() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let mtan = build(&vs);
        let x = Tensor::randn([2, 96], (Kind::Float, Device::Cpu));
        let f = mtan.forward_t(&x, true).unwrap();
        let z = f.shared.unwrap();
        let loss = f.per_task[0].sum(Kind::Float) - f.per_task[1].square().sum(Kind::Float);
        let shared = ParamGroups::from_var_store(&vs, 2)
            .unwrap()
            .shared_tensors();
        let direct = Tensor::run_backward(&[&loss], &shared, true, false);
        let dz = Tensor::run_backward(&[&loss], &[&z], true, false)
            .pop()
            .unwrap();
        let via_z = Tensor::run_backward(&[(&z * &dz).sum(Kind::Float)], &shared, false, false);
        for (a, b) in direct.iter().zip(&via_z) {
            assert!(a.allclose(b, 1e-4, 1e-6, false));
        }
    }

    #[test]
    fn typed_errors() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let mtan = build(&vs);
        let err = mtan
            .forward_t(&Tensor::zeros([2, 95], (Kind::Float, Device::Cpu)), true)
            .unwrap_err();
        assert!(err.to_string().contains("mtan input"), "{err}");
        assert!(MtanConfig::new(3, 3, 2)
            .block_channels([4, 4, 4])
            .build(&vs.root())
            .is_err());
        assert!(MtanConfig::new(8, 8, 2)
            .block_channels(Vec::new())
            .build(&vs.root())
            .is_err());
    }
}
