//! A Transformer encoder over token ids (Vaswani et al., "Attention Is All You Need",
//! NeurIPS 2017), in the pre-LN arrangement (Xiong et al., "On Layer Normalization in the
//! Transformer Architecture", ICML 2020) that BERT-style multi-task models train with:
//!
//! ```text
//! h₀ = E_tok[ids] + E_pos[0..T]                      (then dropout)
//! layer l   h = h + Dropout(MHA(LN(h), key padding))
//!           h = h + Dropout(W₂ · Dropout(GELU(W₁ · LN(h))))
//! out       LN(h), with padded positions set to exactly 0   [B, T, d]
//! ```
//!
//! Tokens equal to `pad_id` are padding: no position attends to them (a key-padding
//! mask, as `src_key_padding_mask` in `torch.nn.TransformerEncoder`), so the output at
//! every real position is the same whatever padding follows, and the output at a padded
//! position is zero — which lets a sentence head average over the real tokens by
//! counting the non-zero rows. Attention runs through libtorch's fused
//! `scaled_dot_product_attention`, which picks the fastest kernel it has.
//!
//! Parameters start as PyTorch's modules do: embeddings `N(0, 1)` (`nn.Embedding`), the
//! attention's packed input projection Xavier-uniform with zero bias and its output
//! projection's bias zero (`nn.MultiheadAttention`), other linear layers as
//! `nn.Linear` (or as [`Init`] says), layer norms at weight 1, bias 0.

use super::Backbone;
use crate::init::{self, Init};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

/// How a [`TransformerEncoder`] turns its `[B, T, d]` output into one row per sequence,
/// for heads that read rows (sentence classification, MMoE gates and experts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The first position's output (BERT's `[CLS]`).
    Cls,
    /// The mean over the real (non-padding) positions.
    Mean,
}

/// Configuration of a [`TransformerEncoder`], with BERT-small-like defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerConfig {
    /// Vocabulary size.
    pub vocab: i64,
    /// The longest sequence (positions have learned embeddings).
    pub max_len: i64,
    /// Model width d (256 by default).
    pub d_model: i64,
    /// Attention heads (4 by default); must divide `d_model`.
    pub heads: i64,
    /// Encoder layers (4 by default).
    pub layers: usize,
    /// Feed-forward width (4·d by default).
    pub ff: i64,
    /// Dropout after the embeddings, the attention, inside and after the feed-forward
    /// block (0.1 by default); off in evaluation.
    pub dropout: f64,
    /// The padding token, masked out of attention; `None` when sequences are never
    /// padded.
    pub pad_id: Option<i64>,
    /// How the feed-forward and output projections start (PyTorch's `nn.Linear`).
    #[serde(default)]
    pub init: Init,
    /// One row per sequence (`[B, d]`) instead of one per token (`None`, the default:
    /// `[B, T, d]`).
    #[serde(default)]
    pub pooling: Option<Pooling>,
}

impl TransformerConfig {
    /// An encoder for `vocab` tokens and sequences up to `max_len`: d = 256, 4 heads, 4
    /// layers, feed-forward 1024, dropout 0.1, padding id 0.
    pub fn new(vocab: i64, max_len: i64) -> Self {
        TransformerConfig {
            vocab,
            max_len,
            d_model: 256,
            heads: 4,
            layers: 4,
            ff: 1024,
            dropout: 0.1,
            pad_id: Some(0),
            init: Init::default(),
            pooling: None,
        }
    }
    /// Sets d and the feed-forward width to 4·d.
    pub fn d_model(mut self, d: i64) -> Self {
        self.d_model = d;
        self.ff = 4 * d;
        self
    }
    /// Sets the number of heads.
    pub fn heads(mut self, h: i64) -> Self {
        self.heads = h;
        self
    }
    /// Sets the number of layers.
    pub fn layers(mut self, n: usize) -> Self {
        self.layers = n;
        self
    }
    /// Sets the feed-forward width.
    pub fn ff(mut self, ff: i64) -> Self {
        self.ff = ff;
        self
    }
    /// Sets the dropout probability.
    pub fn dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }
    /// Sets (or, with `None`, removes) the padding token.
    pub fn pad_id(mut self, id: Option<i64>) -> Self {
        self.pad_id = id;
        self
    }
    /// Sets how the linear layers start.
    pub fn init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }
    /// Pools the output to one row per sequence.
    pub fn pooling(mut self, pooling: Pooling) -> Self {
        self.pooling = Some(pooling);
        self
    }

    fn check(&self) -> Result<()> {
        let sizes_ok = self.vocab > 0 && self.max_len > 0 && self.d_model > 0 && self.ff > 0;
        if !sizes_ok || self.layers == 0 || self.heads <= 0 || self.d_model % self.heads != 0 {
            return Err(Error::config(format!(
                "transformer needs positive sizes, at least one layer and heads dividing \
                 d_model, got {self:?}"
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config(format!(
                "transformer dropout must be in [0, 1), got {}",
                self.dropout
            )));
        }
        if let Some(p) = self.pad_id.filter(|&p| p < 0 || p >= self.vocab) {
            return Err(Error::config(format!(
                "transformer pad_id {p} is outside the vocabulary 0..{}",
                self.vocab
            )));
        }
        self.init.check()
    }

    /// Builds the encoder under `path`: `tok`, `pos`, `layer<l>` (`ln1`, `attn`, `ln2`,
    /// `ff1`, `ff2`) and `ln`.
    pub fn build(&self, path: &nn::Path) -> Result<TransformerEncoder> {
        self.check()?;
        let d = self.d_model;
        let normal = nn::Init::Randn {
            mean: 0.0,
            stdev: 1.0,
        };
        let tok = path.f_var("tok", &[self.vocab, d], normal)?;
        let pos = path.f_var("pos", &[self.max_len, d], normal)?;
        let layers = build_layers(path, self.layers, d, self.ff, self.init)?;
        Ok(TransformerEncoder {
            tok,
            pos,
            layers,
            ln: nn::layer_norm(path / "ln", vec![d], Default::default()),
            cfg: self.clone(),
        })
    }
}

#[derive(Debug)]
struct EncoderLayer {
    ln1: nn::LayerNorm,
    in_w: Tensor,
    in_b: Tensor,
    out: nn::Linear,
    ln2: nn::LayerNorm,
    ff1: nn::Linear,
    ff2: nn::Linear,
}

/// The encoder built by [`TransformerConfig::build`]: token ids `Int64 [B, T]` in,
/// `[B, T, d]` out (or `[B, d]` with [`Pooling`]).
///
/// ```
/// use mtl_core::{Backbone, TransformerConfig};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let enc = TransformerConfig::new(50, 16).d_model(32).layers(2).build(&vs.root())?;
/// // Two sentences, the second padded with id 0 after three tokens.
/// let ids = Tensor::from_slice(&[5i64, 9, 3, 7, 4, 8, 2, 0]).view([2, 4]);
/// let h = enc.forward_t(&ids, false)?;
/// assert_eq!(h.size(), [2, 4, 32]);
/// // Padded positions are zero; more padding changes nothing elsewhere.
/// assert_eq!(h.get(1).get(3).abs().sum(Kind::Float).double_value(&[]), 0.0);
/// let longer = Tensor::cat(&[ids, Tensor::zeros([2, 2], (Kind::Int64, Device::Cpu))], 1);
/// let h2 = enc.forward_t(&longer, false)?;
/// assert!((h2.narrow(1, 0, 3) - h.narrow(1, 0, 3)).abs().max().double_value(&[]) < 1e-5);
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug)]
pub struct TransformerEncoder {
    tok: Tensor,
    pos: Tensor,
    layers: Vec<EncoderLayer>,
    ln: nn::LayerNorm,
    cfg: TransformerConfig,
}

impl TransformerEncoder {
    /// The configuration it was built from.
    pub fn config(&self) -> &TransformerConfig {
        &self.cfg
    }

    /// `Bool [B, T]`: true at real tokens.
    fn real_tokens(&self, ids: &Tensor) -> Result<Option<Tensor>> {
        Ok(match self.cfg.pad_id {
            Some(p) => Some(ids.f_ne(p)?),
            None => None,
        })
    }

    fn check_ids(&self, ids: &Tensor) -> Result<(i64, i64)> {
        let size = ids.size();
        let integer = matches!(
            ids.kind(),
            Kind::Int64 | Kind::Int | Kind::Int16 | Kind::Int8 | Kind::Uint8
        );
        if size.len() != 2 || !integer {
            return Err(Error::shape(
                "transformer input",
                "integer token ids [batch, length]",
                format!("{:?} {size:?}", ids.kind()),
            ));
        }
        let (b, t) = (size[0], size[1]);
        if t > self.cfg.max_len {
            return Err(Error::shape(
                "transformer input",
                format!("sequences of at most max_len = {} tokens", self.cfg.max_len),
                format!("length {t}"),
            ));
        }
        if ids.numel() > 0 {
            let (lo, hi) = (
                ids.f_min()?.f_int64_value(&[])?,
                ids.f_max()?.f_int64_value(&[])?,
            );
            if lo < 0 || hi >= self.cfg.vocab {
                return Err(Error::shape(
                    "transformer input",
                    format!("token ids in 0..{}", self.cfg.vocab),
                    format!("ids from {lo} to {hi}"),
                ));
            }
        }
        Ok((b, t))
    }
}

impl Backbone for TransformerEncoder {
    fn forward_t(&self, ids: &Tensor, train: bool) -> Result<Tensor> {
        let (b, t) = self.check_ids(ids)?;
        let d = self.cfg.d_model;
        let heads = self.cfg.heads;
        let p = if train { self.cfg.dropout } else { 0.0 };
        let ids = ids.f_to_kind(Kind::Int64)?;
        let real = self.real_tokens(&ids)?;
        let positions = Tensor::f_arange(t, (Kind::Int64, self.tok.device()))?;
        let h = self
            .tok
            .f_index_select(0, &ids.f_reshape([-1])?)?
            .f_reshape([b, t, d])?
            .f_add(&self.pos.f_index_select(0, &positions)?)?
            .f_dropout(p, train)?;
        // [B, 1, 1, T]: which keys a query may look at. A sequence of padding only would
        // have no key at all (a NaN softmax), so it looks at every position instead;
        // its outputs are zeroed below anyway.
        let key_mask = real.as_ref().map(key_mask_of).transpose()?;
        let h = run_layers(&self.layers, h, key_mask.as_ref(), heads, p, train)?;
        let out = h.apply(&self.ln);
        // Padded positions are exactly zero, so later layers and heads can tell them.
        let (out, real) = match real {
            Some(r) => {
                let r = r.f_unsqueeze(2)?.f_to_kind(out.kind())?;
                (out.f_mul(&r)?, Some(r))
            }
            None => (out, None),
        };
        Ok(match self.cfg.pooling {
            None => out,
            Some(Pooling::Cls) => out.f_select(1, 0)?,
            // Padded rows are zero, so the sum is over real tokens; an all-padding
            // sequence averages to zero rather than dividing by zero.
            Some(Pooling::Mean) => {
                let count = match real {
                    Some(r) => r.f_sum_dim_intlist([1i64].as_slice(), false, out.kind())?,
                    None => Tensor::f_full([b, 1], t as f64, (out.kind(), out.device()))?,
                };
                out.f_sum_dim_intlist([1i64].as_slice(), false, out.kind())?
                    .f_div(&count.f_clamp_min(1.0)?)?
            }
        })
    }

    fn out_dim(&self) -> i64 {
        self.cfg.d_model
    }
}

/// `count` pre-LN layers of width `d` under `path/layer<l>`, started as PyTorch's.
fn build_layers(
    path: &nn::Path,
    count: usize,
    d: i64,
    ff: i64,
    linear_init: Init,
) -> Result<Vec<EncoderLayer>> {
    let layer_norm = |p: nn::Path| nn::layer_norm(p, vec![d], Default::default());
    (0..count)
        .map(|l| {
            let p = path / format!("layer{l}");
            let attn = &p / "attn";
            // nn.MultiheadAttention: xavier_uniform_ in_proj, zero biases.
            let in_w = attn.f_var(
                "in_proj_weight",
                &[3 * d, d],
                Init::XavierUniform.weight(&[3 * d, d])?,
            )?;
            let in_b = attn.f_var("in_proj_bias", &[3 * d], nn::Init::Const(0.0))?;
            let mut out = init::linear(&(&attn / "out_proj"), d, d, linear_init)?;
            if let Some(b) = &mut out.bs {
                let _ = tch::no_grad(|| b.f_zero_())?;
            }
            Ok(EncoderLayer {
                ln1: layer_norm(&p / "ln1"),
                in_w,
                in_b,
                out,
                ln2: layer_norm(&p / "ln2"),
                ff1: init::linear(&(&p / "ff1"), d, ff, linear_init)?,
                ff2: init::linear(&(&p / "ff2"), ff, d, linear_init)?,
            })
        })
        .collect()
}

/// Runs `layers` over `h` `[B, T, d]` with attention restricted to `key_mask`
/// (`[B, 1, 1, T]`, true where a key may be looked at).
fn run_layers(
    layers: &[EncoderLayer],
    mut h: Tensor,
    key_mask: Option<&Tensor>,
    heads: i64,
    p: f64,
    train: bool,
) -> Result<Tensor> {
    let size = h.size();
    let (b, t, d) = (size[0], size[1], size[2]);
    for layer in layers {
        let x = h.apply(&layer.ln1);
        let qkv = x.f_linear(&layer.in_w, Some(&layer.in_b))?;
        let split = |i: i64| -> Result<Tensor> {
            Ok(qkv
                .f_narrow(2, i * d, d)?
                .f_view([b, t, heads, d / heads])?
                .f_transpose(1, 2)?)
        };
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        let attended = Tensor::f_scaled_dot_product_attention(
            &q,
            &k,
            &v,
            key_mask,
            p,
            false,
            None::<f64>,
            false,
        )?
        .f_transpose(1, 2)?
        .f_reshape([b, t, d])?
        .apply(&layer.out)
        .f_dropout(p, train)?;
        h = h.f_add(&attended)?;
        let ff = h
            .apply(&layer.ln2)
            .apply(&layer.ff1)
            .f_gelu("none")?
            .f_dropout(p, train)?
            .apply(&layer.ff2)
            .f_dropout(p, train)?;
        h = h.f_add(&ff)?;
    }
    Ok(h)
}

/// `[B, 1, 1, T]` key mask from `real` `[B, T]`; a sequence with no real token looks at
/// every position instead (a softmax over nothing is NaN); its outputs are zeroed.
fn key_mask_of(real: &Tensor) -> Result<Tensor> {
    let size = real.size();
    let none = real.f_any_dim(1, true)?.f_logical_not()?;
    Ok(real.f_logical_or(&none)?.f_view([size[0], 1, 1, size[1]])?)
}

/// Task-specific top layers over a shared lower encoder (hierarchical sharing): a
/// [`BackboneBuilder`](super::BackboneBuilder) for [`TaskTowers`](super::TaskTowers) whose towers are `layers`
/// more pre-LN layers over the `[B, T, d]` token features the encoder hands each task.
/// Padded positions are the encoder's all-zero rows: masked out of attention here too,
/// and zero again at the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerTowerConfig {
    /// Layers per tower.
    pub layers: usize,
    /// Attention heads; must divide the width.
    pub heads: i64,
    /// Feed-forward width (`None`: 4·d).
    pub ff: Option<i64>,
    /// Dropout probability.
    pub dropout: f64,
    /// How the linear layers start.
    #[serde(default)]
    pub init: Init,
}

impl TransformerTowerConfig {
    /// `layers` layers of `heads` heads, feed-forward 4·d, dropout 0.1.
    pub fn new(layers: usize, heads: i64) -> Self {
        TransformerTowerConfig {
            layers,
            heads,
            ff: None,
            dropout: 0.1,
            init: Init::default(),
        }
    }
    /// Sets the dropout probability.
    pub fn dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }
}

impl super::BackboneBuilder for TransformerTowerConfig {
    fn build(&self, path: &nn::Path, in_dim: i64) -> Result<Box<dyn Backbone>> {
        let ff = self.ff.unwrap_or(4 * in_dim);
        if self.layers == 0 || self.heads <= 0 || in_dim % self.heads != 0 || ff <= 0 {
            return Err(Error::config(format!(
                "transformer tower needs layers ≥ 1 and heads dividing the width {in_dim}, \
                 got {self:?}"
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config(format!(
                "transformer tower dropout must be in [0, 1), got {}",
                self.dropout
            )));
        }
        Ok(Box::new(TransformerTower {
            layers: build_layers(path, self.layers, in_dim, ff, self.init)?,
            ln: nn::layer_norm(path / "ln", vec![in_dim], Default::default()),
            d: in_dim,
            cfg: self.clone(),
        }))
    }
}

/// The tower built by [`TransformerTowerConfig`].
#[derive(Debug)]
pub struct TransformerTower {
    layers: Vec<EncoderLayer>,
    ln: nn::LayerNorm,
    d: i64,
    cfg: TransformerTowerConfig,
}

impl Backbone for TransformerTower {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let size = xs.size();
        if size.len() != 3 || size[2] != self.d {
            return Err(Error::shape(
                "transformer tower input",
                format!("[batch, tokens, {}] token features", self.d),
                format!("{size:?}"),
            ));
        }
        let real = xs.f_ne(0.0)?.f_any_dim(2, false)?;
        let p = if train { self.cfg.dropout } else { 0.0 };
        let h = run_layers(
            &self.layers,
            xs.shallow_clone(),
            Some(&key_mask_of(&real)?),
            self.cfg.heads,
            p,
            train,
        )?;
        let out = h.apply(&self.ln);
        Ok(out.f_mul(&real.f_unsqueeze(2)?.f_to_kind(out.kind())?)?)
    }
    fn out_dim(&self) -> i64 {
        self.d
    }
    fn in_dim(&self) -> Option<i64> {
        Some(self.d)
    }
}
