//! The floor of each workload: the same network written as a plain `tch` loop with no
//! `mtl` in it (`tch::nn` layers, libtorch's loss functions and libtorch's C++ Adam), doing
//! only the work every method must do.
//!
//! * [`FloorKind::Loss`]: forward, one backward of the summed losses, Adam: what a
//!   loss-level method cannot avoid.
//! * [`FloorKind::Grad`]: forward, K backward passes (one per task loss, the graph kept
//!   between them) whose gradients are summed into `.grad()`, Adam: what a gradient-level
//!   method in parameter mode cannot avoid.
//! * [`FloorKind::Rep`]: forward, K backward passes down to the shared representation
//!   (and each task's own layers), one backward of the summed representation gradient
//!   through the trunk, Adam: the rep-grad floor.

use super::spec::{
    FixedBatch, LossKind, Workload, DENSE_FEATURES, DENSE_WIDTHS, TEXT_CLASSES, TEXT_D,
    TEXT_DROPOUT, TEXT_FF, TEXT_HEADS, TEXT_LAYERS, TEXT_LEN, TEXT_TAGS, TEXT_VOCAB,
};
use mtl::data::SCENE_CLASSES;
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Kind, Reduction, Tensor};

/// Which floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorKind {
    /// Forward + one backward + Adam.
    Loss,
    /// Forward + K backward passes + Adam.
    Grad,
    /// Forward + K backward passes to the representation + one trunk backward + Adam.
    Rep,
}

impl FloorKind {
    /// The `method` the floor's rows carry.
    pub fn row_method(self) -> &'static str {
        match self {
            FloorKind::Loss => "EW",
            FloorKind::Grad => "fwd+K*bwd",
            FloorKind::Rep => "fwd+K*bwd(rep)",
        }
    }

    /// Parses [`FloorKind::row_method`] or `loss` / `grad` / `rep`.
    pub fn parse(s: &str) -> Option<Self> {
        [FloorKind::Loss, FloorKind::Grad, FloorKind::Rep]
            .into_iter()
            .find(|f| f.row_method() == s || f.short() == s)
    }

    /// `loss`, `grad` or `rep`.
    pub fn short(self) -> &'static str {
        match self {
            FloorKind::Loss => "loss",
            FloorKind::Grad => "grad",
            FloorKind::Rep => "rep",
        }
    }
}

#[derive(Debug)]
struct Lenet {
    c1: nn::Conv2D,
    c2: nn::Conv2D,
    fc: nn::Linear,
}

/// A convolution without bias, then batch norm (PyTorch's defaults: ε = 1e-5, momentum
/// 0.1, weight 1, bias 0): the unit `mtl_core::ConvNet` is made of.
#[derive(Debug)]
struct ConvBn {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl ConvBn {
    fn new(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64, dilation: i64) -> Self {
        let conv = nn::conv2d(
            &p / "conv",
            c_in,
            c_out,
            k,
            nn::ConvConfig {
                stride,
                padding: dilation * (k - 1) / 2,
                dilation,
                bias: false,
                ..Default::default()
            },
        );
        let bn = nn::batch_norm2d(
            &p / "norm",
            c_out,
            nn::BatchNormConfig {
                ws_init: nn::Init::Const(1.0),
                bs_init: nn::Init::Const(0.0),
                ..Default::default()
            },
        );
        ConvBn { conv, bn }
    }

    /// Training mode: batch statistics, running statistics updated.
    fn forward(&self, x: &Tensor) -> Tensor {
        x.apply(&self.conv).apply_t(&self.bn, true)
    }
}

/// A ResNet basic block: conv-BN-ReLU-conv-BN plus the input (through a 1×1 conv-BN
/// where the width or stride changes), then ReLU.
#[derive(Debug)]
struct Block {
    conv1: ConvBn,
    conv2: ConvBn,
    shortcut: Option<ConvBn>,
}

impl Block {
    fn new(p: nn::Path, c_in: i64, c_out: i64, stride: i64, dilation: i64) -> Self {
        Block {
            conv1: ConvBn::new(&p / "conv1", c_in, c_out, 3, stride, dilation),
            conv2: ConvBn::new(&p / "conv2", c_out, c_out, 3, 1, dilation),
            shortcut: (stride != 1 || c_in != c_out)
                .then(|| ConvBn::new(&p / "shortcut", c_in, c_out, 1, stride, 1)),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let h = self.conv2.forward(&self.conv1.forward(x).relu());
        let skip = match &self.shortcut {
            Some(s) => s.forward(x),
            None => x.shallow_clone(),
        };
        (h + skip).relu()
    }
}

/// One task's decoder (bilinear ×2, conv-BN-ReLU to 16, conv-BN-ReLU to 16) and 1×1
/// conv head.
#[derive(Debug)]
struct DenseTask {
    up: ConvBn,
    out: ConvBn,
    head: nn::Conv2D,
}

/// W5 written directly in `tch`: the layers `ConvNetConfig::build_with_task_decoders`
/// builds for widths 16, 32, 32 (the last stage dilated), with the heads' losses as a
/// plain PyTorch user writes them.
#[derive(Debug)]
struct Dense {
    stem: ConvBn,
    blocks: Vec<Block>,
    tasks: Vec<DenseTask>,
}

impl Dense {
    fn new(root: &nn::Path, kinds: &[LossKind]) -> Self {
        let [w0, w1, w2] = DENSE_WIDTHS;
        let enc = root / "encoder";
        let blocks = vec![
            Block::new(&enc / "stage0", w0, w0, 1, 1),
            Block::new(&enc / "stage1", w0, w1, 2, 1),
            Block::new(&enc / "stage2", w1, w2, 1, 2),
        ];
        let tasks = kinds
            .iter()
            .enumerate()
            .map(|(t, kind)| {
                let p = root / format!("task{t}");
                let out = match kind {
                    LossKind::PixelCe => SCENE_CLASSES,
                    LossKind::NormalCos => 3,
                    _ => 1,
                };
                DenseTask {
                    up: ConvBn::new(&p / "up0", w2, w0, 3, 1, 1),
                    out: ConvBn::new(&p / "out", w0, DENSE_FEATURES, 3, 1, 1),
                    head: nn::conv2d(&p / "head", DENSE_FEATURES, out, 1, Default::default()),
                }
            })
            .collect();
        Dense {
            stem: ConvBn::new(&enc / "stem", 1, w0, 3, 1, 1),
            blocks,
            tasks,
        }
    }

    /// The encoder's output (the shared representation) and the K losses.
    fn forward(&self, b: &FixedBatch, kinds: &[LossKind]) -> (Tensor, Vec<Tensor>) {
        let mut z = self.stem.forward(&b.x).relu();
        for blk in &self.blocks {
            z = blk.forward(&z);
        }
        let size = z.size();
        let up = [2 * size[2], 2 * size[3]];
        let losses = self
            .tasks
            .iter()
            .zip(kinds)
            .zip(&b.targets)
            .map(|((t, kind), y)| {
                let h = z.upsample_bilinear2d(up, false, None, None);
                let h = t.out.forward(&t.up.forward(&h).relu()).relu();
                dense_loss(*kind, &h.apply(&t.head), &y.values)
            })
            .collect();
        (z, losses)
    }
}

/// W5's losses as LibMTL's NYUv2 ones: pixel cross-entropy ignoring −1; L1 over pixels
/// with a positive depth; 1 − cosine of the normalised prediction over pixels whose
/// true normal is not zero.
fn dense_loss(kind: LossKind, out: &Tensor, y: &Tensor) -> Tensor {
    match kind {
        LossKind::PixelCe => out.cross_entropy_loss::<Tensor>(y, None, Reduction::Mean, -1, 0.0),
        LossKind::DepthL1 => {
            let valid = y.gt(0.0).to_kind(Kind::Float);
            ((out.squeeze_dim(1) - y).abs() * &valid).sum(Kind::Float) / valid.sum(Kind::Float)
        }
        _ => {
            let norm = out
                .norm_scalaropt_dim(2, [1i64].as_slice(), true)
                .clamp_min(1e-12);
            let pred = out / norm;
            let valid = y.ne(0.0).any_dim(1, false).to_kind(Kind::Float);
            let cos = (pred * y).sum_dim_intlist(1, false, Kind::Float);
            1.0 - (cos * &valid).sum(Kind::Float) / valid.sum(Kind::Float)
        }
    }
}

/// One pre-LN encoder layer of W6, as `torch.nn.TransformerEncoderLayer(norm_first=True)`
/// holds it: the packed QKV projection, the output projection, the two FFN layers and
/// the two layer norms.
#[derive(Debug)]
struct TextLayer {
    ln1: nn::LayerNorm,
    qkv: nn::Linear,
    out: nn::Linear,
    ln2: nn::LayerNorm,
    ff1: nn::Linear,
    ff2: nn::Linear,
}

/// W6 written directly in `tch`: token and position embeddings, four pre-LN layers with
/// libtorch's fused attention under a key-padding mask, the final layer norm, and the
/// two heads (the `[CLS]` position's classifier, the per-token tagger) with libtorch's
/// cross-entropy, as a plain user writes them (padded outputs are not zeroed: the
/// tagging loss ignores them and the classifier reads position 0).
#[derive(Debug)]
struct TextNet {
    tok: Tensor,
    pos: Tensor,
    layers: Vec<TextLayer>,
    ln: nn::LayerNorm,
    cls: nn::Linear,
    tag: nn::Linear,
}

impl TextNet {
    fn new(root: &nn::Path) -> Self {
        let (d, ff) = (TEXT_D, TEXT_FF);
        let normal = nn::Init::Randn {
            mean: 0.0,
            stdev: 1.0,
        };
        let lin = |p: nn::Path, i, o| nn::linear(p, i, o, Default::default());
        let ln = |p: nn::Path| nn::layer_norm(p, vec![d], Default::default());
        let layers = (0..TEXT_LAYERS)
            .map(|l| {
                let p = root / format!("layer{l}");
                TextLayer {
                    ln1: ln(&p / "ln1"),
                    qkv: lin(&p / "qkv", d, 3 * d),
                    out: lin(&p / "out", d, d),
                    ln2: ln(&p / "ln2"),
                    ff1: lin(&p / "ff1", d, ff),
                    ff2: lin(&p / "ff2", ff, d),
                }
            })
            .collect();
        TextNet {
            tok: root.var("tok", &[TEXT_VOCAB, d], normal),
            pos: root.var("pos", &[TEXT_LEN, d], normal),
            layers,
            ln: ln(root / "ln"),
            cls: lin(root / "cls", d, TEXT_CLASSES),
            tag: lin(root / "tag", d, TEXT_TAGS),
        }
    }

    /// The encoder's output `[B, T, d]` (the shared representation) and the two losses.
    fn forward(&self, b: &FixedBatch) -> (Tensor, Vec<Tensor>) {
        let ids = &b.x;
        let size = ids.size();
        let (bs, t, d, h) = (size[0], size[1], TEXT_D, TEXT_HEADS);
        let p = TEXT_DROPOUT;
        // True where a key may be attended to (every sequence has real tokens).
        let mask = ids.ne(0).view([bs, 1, 1, t]);
        let mut x = (self.tok.index_select(0, &ids.view([-1])).view([bs, t, d])
            + self.pos.narrow(0, 0, t))
        .dropout(p, true);
        for l in &self.layers {
            let qkv = x.apply(&l.ln1).apply(&l.qkv).chunk(3, 2);
            let heads = |y: &Tensor| y.view([bs, t, h, d / h]).transpose(1, 2);
            let a = Tensor::scaled_dot_product_attention(
                &heads(&qkv[0]),
                &heads(&qkv[1]),
                &heads(&qkv[2]),
                Some(&mask),
                p,
                false,
                None::<f64>,
                false,
            )
            .transpose(1, 2)
            .reshape([bs, t, d])
            .apply(&l.out)
            .dropout(p, true);
            x = &x + &a;
            let f = x
                .apply(&l.ln2)
                .apply(&l.ff1)
                .gelu("none")
                .dropout(p, true)
                .apply(&l.ff2)
                .dropout(p, true);
            x = &x + &f;
        }
        let z = x.apply(&self.ln);
        let sentence = z
            .select(1, 0)
            .apply(&self.cls)
            .cross_entropy_for_logits(&b.targets[0].values);
        let tags = z
            .apply(&self.tag)
            .view([-1, TEXT_TAGS])
            .cross_entropy_loss::<Tensor>(
                &b.targets[1].values.view([-1]),
                None,
                Reduction::Mean,
                -1,
                0.0,
            );
        (z, vec![sentence, tags])
    }
}

#[derive(Debug)]
enum Net {
    Mlp {
        l1: nn::Linear,
        l2: nn::Linear,
    },
    Lenet(Box<Lenet>),
    Mmoe {
        experts: Vec<nn::Linear>,
        gates: Vec<nn::Linear>,
        towers: Vec<nn::Linear>,
    },
    Dense(Box<Dense>),
    Text(Box<TextNet>),
}

/// The plain-`tch` model of a workload with its C++ Adam.
#[derive(Debug)]
pub struct FloorModel {
    vs: nn::VarStore,
    net: Net,
    heads: Vec<nn::Linear>,
    kinds: Vec<LossKind>,
    /// Per task: the variables only that task's loss reads.
    own: Vec<Vec<Tensor>>,
    opt: nn::Optimizer,
}

impl FloorModel {
    /// Builds the workload's network on `device` with Adam at the workload's rate.
    pub fn new(w: Workload, device: tch::Device) -> Result<Self, tch::TchError> {
        let _rng = super::spec::rng_lock();
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let kinds: Vec<LossKind> = w.tasks().into_iter().map(|(_, k)| k).collect();
        let k = kinds.len();
        let lin = |p: nn::Path, i, o| nn::linear(p, i, o, Default::default());
        let net = match w {
            Workload::Mlp | Workload::MlpK10 => Net::Mlp {
                l1: lin(&root / "l1", 128, 256),
                l2: lin(&root / "l2", 256, 256),
            },
            Workload::Lenet => Net::Lenet(Box::new(Lenet {
                c1: nn::conv2d(&root / "c1", 1, 10, 5, Default::default()),
                c2: nn::conv2d(&root / "c2", 10, 20, 5, Default::default()),
                fc: lin(&root / "fc", 720, 50),
            })),
            Workload::Mmoe => Net::Mmoe {
                experts: (0..8)
                    .map(|e| lin(&root / format!("e{e}"), 100, 64))
                    .collect(),
                gates: (0..k)
                    .map(|t| lin(&root / format!("g{t}"), 100, 8))
                    .collect(),
                towers: (0..k)
                    .map(|t| lin(&root / format!("t{t}"), 64, 32))
                    .collect(),
            },
            Workload::Dense => Net::Dense(Box::new(Dense::new(&root, &kinds))),
            Workload::Text => Net::Text(Box::new(TextNet::new(&root))),
        };
        let out = |kind| if kind == LossKind::Ce { 10 } else { 1 };
        // W5's heads are 1×1 convolutions inside `Dense`, W6's inside `TextNet`.
        let linear_heads = !matches!(net, Net::Dense(_) | Net::Text(_));
        let heads: Vec<nn::Linear> = kinds
            .iter()
            .enumerate()
            .filter(|_| linear_heads)
            .map(|(t, &kind)| lin(&root / format!("h{t}"), w.feature_dim(), out(kind)))
            .collect();
        let mut own: Vec<Vec<Tensor>> = heads
            .iter()
            .map(|h| {
                vec![
                    h.ws.shallow_clone(),
                    h.bs.as_ref().expect("bias").shallow_clone(),
                ]
            })
            .collect();
        if let Net::Mmoe { gates, towers, .. } = &net {
            for (t, o) in own.iter_mut().enumerate() {
                for l in [&gates[t], &towers[t]] {
                    o.push(l.ws.shallow_clone());
                    o.push(l.bs.as_ref().expect("bias").shallow_clone());
                }
            }
        }
        if let Net::Text(t) = &net {
            own = [&t.cls, &t.tag]
                .into_iter()
                .map(|h| {
                    vec![
                        h.ws.shallow_clone(),
                        h.bs.as_ref().expect("bias").shallow_clone(),
                    ]
                })
                .collect();
        }
        if let Net::Dense(_) = &net {
            // Each task's decoder and head: the trainable variables under `task<t>`
            // (batch norm's running statistics do not require gradients).
            let vars = vs.variables();
            let mut names: Vec<&String> = vars.keys().collect();
            names.sort();
            own = (0..k)
                .map(|t| {
                    let prefix = format!("task{t}.");
                    names
                        .iter()
                        .filter(|n| n.starts_with(&prefix) && vars[**n].requires_grad())
                        .map(|n| vars[*n].shallow_clone())
                        .collect()
                })
                .collect();
        }
        let opt = nn::Adam::default().build(&vs, w.lr())?;
        FloorModel::define_grads(&vs)?;
        Ok(FloorModel {
            vs,
            net,
            heads,
            kinds,
            own,
            opt,
        })
    }

    /// Makes every gradient defined, so the K-pass floors can accumulate in place.
    fn define_grads(vs: &nn::VarStore) -> Result<(), tch::TchError> {
        let zero = vs
            .trainable_variables()
            .iter()
            .map(|v| (v * 0.0).sum(Kind::Float))
            .reduce(|a, b| a + b)
            .expect("variables");
        zero.f_backward()
    }

    /// Forward: the shared representation and the K task losses.
    fn forward(&self, b: &FixedBatch) -> (Tensor, Vec<Tensor>) {
        let x = &b.x;
        let (shared, per_task): (Tensor, Vec<Tensor>) = match &self.net {
            Net::Mlp { l1, l2 } => {
                let z = x.apply(l1).relu().apply(l2).relu();
                (
                    z.shallow_clone(),
                    self.heads.iter().map(|_| z.shallow_clone()).collect(),
                )
            }
            Net::Lenet(l) => {
                let Lenet { c1, c2, fc } = l.as_ref();
                let z = x
                    .view([-1, 1, 36, 36])
                    .apply(c1)
                    .max_pool2d_default(2)
                    .relu()
                    .apply(c2)
                    .max_pool2d_default(2)
                    .relu()
                    .flatten(1, -1)
                    .apply(fc)
                    .relu();
                (
                    z.shallow_clone(),
                    self.heads.iter().map(|_| z.shallow_clone()).collect(),
                )
            }
            Net::Mmoe {
                experts,
                gates,
                towers,
            } => {
                let outs: Vec<Tensor> = experts.iter().map(|e| e.forward(x).relu()).collect();
                let e = Tensor::stack(&outs, 1); // [B, E, 64]
                let feats = gates
                    .iter()
                    .zip(towers)
                    .map(|(g, t)| {
                        let w = g.forward(x).softmax(-1, Kind::Float).unsqueeze(1);
                        w.matmul(&e).squeeze_dim(1).apply(t).relu()
                    })
                    .collect();
                (e, feats)
            }
            // Decoders and conv heads per task: its own forward gives the losses.
            Net::Dense(d) => return d.forward(b, &self.kinds),
            Net::Text(t) => return t.forward(b),
        };
        let losses = self
            .heads
            .iter()
            .zip(&per_task)
            .zip(&self.kinds)
            .zip(&b.targets)
            .map(|(((h, f), kind), y)| {
                let out = f.apply(h);
                let y = &y.values;
                match kind {
                    LossKind::Ce => out.cross_entropy_for_logits(y),
                    LossKind::Mse => out.mse_loss(y, Reduction::Mean),
                    LossKind::Bce => out.binary_cross_entropy_with_logits::<Tensor>(
                        y,
                        None,
                        None,
                        Reduction::Mean,
                    ),
                    dense => dense_loss(*dense, &out, y),
                }
            })
            .collect();
        (shared, losses)
    }

    /// The forward alone (representation and losses, with their graph), for timing a
    /// step's parts (`examples/w5_breakdown.rs`).
    pub fn forward_losses(&self, b: &FixedBatch) -> Vec<Tensor> {
        self.forward(b).1
    }

    /// libtorch's Adam step alone, on whatever gradients the variables hold.
    pub fn adam_step(&mut self) {
        self.opt.step();
    }

    /// One training step of the given floor; returns the summed loss (detached).
    pub fn step(&mut self, kind: FloorKind, b: &FixedBatch) -> Result<Tensor, tch::TchError> {
        if kind == FloorKind::Loss {
            // libtorch's default: the gradients are set to none, backward allocates them.
            self.opt.zero_grad();
        } else {
            // The K passes accumulate into the gradients in place.
            let vars = self.vs.trainable_variables();
            if vars.iter().any(|v| !v.grad().defined()) {
                FloorModel::define_grads(&self.vs)?;
            }
            tch::no_grad(|| {
                for v in &vars {
                    let _ = v.grad().zero_();
                }
            });
        }
        let (z, losses) = self.forward(b);
        let k = losses.len();
        match kind {
            FloorKind::Loss => {
                let total = losses
                    .iter()
                    .skip(1)
                    .fold(losses[0].shallow_clone(), |a, l| a + l);
                total.f_backward()?;
            }
            FloorKind::Grad => {
                let params = self.vs.trainable_variables();
                for (t, loss) in losses.iter().enumerate() {
                    let grads = Tensor::f_run_backward(&[loss], &params, t + 1 < k, false)?;
                    accumulate(&params, &grads)?;
                }
            }
            FloorKind::Rep => {
                let mut gz: Option<Tensor> = None;
                for (t, loss) in losses.iter().enumerate() {
                    let mut inputs = vec![z.shallow_clone()];
                    inputs.extend(self.own[t].iter().map(Tensor::shallow_clone));
                    let grads = Tensor::f_run_backward(&[loss], &inputs, true, false)?;
                    accumulate(&inputs[1..], &grads[1..])?;
                    gz = Some(match gz {
                        None => grads[0].shallow_clone(),
                        Some(s) => s + &grads[0],
                    });
                }
                let gz = gz.expect("at least one task").detach();
                (&z * gz).sum(Kind::Float).f_backward()?;
            }
        }
        self.opt.step();
        Ok(Tensor::stack(&losses, 0).sum(Kind::Float).detach())
    }
}

fn accumulate(params: &[Tensor], grads: &[Tensor]) -> Result<(), tch::TchError> {
    tch::no_grad(|| -> Result<(), tch::TchError> {
        for (p, g) in params.iter().zip(grads) {
            if g.defined() {
                let _ = p.grad().f_add_(g)?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::make_data;
    use tch::Device;

    /// W6's floor is the same model as ours and the twin's: the same parameter count.
    #[test]
    fn text_floor_has_the_models_parameter_count() {
        let m = FloorModel::new(Workload::Text, Device::Cpu).unwrap();
        let n: usize = m.vs.trainable_variables().iter().map(Tensor::numel).sum();
        assert_eq!(n as i64, crate::spec::text_param_count());
    }

    #[test]
    fn every_floor_steps_every_workload() {
        for w in Workload::KNOWN {
            let data = make_data(w, 0, 1, Device::Cpu);
            let mut m = FloorModel::new(w, Device::Cpu).unwrap();
            for kind in [FloorKind::Loss, FloorKind::Grad, FloorKind::Rep] {
                let l = m.step(kind, &data[0]).unwrap().double_value(&[]);
                assert!(l.is_finite(), "{} {kind:?}", w.name());
            }
        }
    }
}
