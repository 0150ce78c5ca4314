//! The head of a sentence-classification task over token features: pool a sequence's
//! `[T, d]` token features to one `[d]` row (BERT's `[CLS]` position, or the mean over
//! its real tokens), then classify it as [`ClassificationHead`] does — same loss,
//! metrics and predictions.
//!
//! Padding: an encoder that pads (as [`mtl_core::TransformerEncoder`] does) leaves the
//! features of padded positions exactly zero, so the mean runs over the rows that are
//! not all zero. A sequence with no real token pools to zero.

use crate::classification::ClassificationHead;
use crate::kit::describe;
use crate::{Metrics, Prediction, TaskHead};
use mtl_core::{Error, Pooling, Result, TaskTarget};
use tch::{nn, Kind, Tensor};

/// Pooling then a linear classifier: token features `[B, T, d]` in, logits
/// `[B, classes]` out; targets are class indices `[B]`.
///
/// ```
/// use mtl_core::{Pooling, TaskTarget};
/// use mtl_heads::{SentenceHead, TaskHead};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let head = SentenceHead::new(&(vs.root() / "task0" / "head"), "sentiment", 8, 2, Pooling::Mean)?;
/// // Two sentences of 3 token positions; the second has one padded (zero) position.
/// let mut tokens = Tensor::randn([2, 3, 8], (Kind::Float, Device::Cpu));
/// let _ = tokens.get(1).get(2).zero_();
/// let logits = head.forward_t(&tokens, false)?;
/// assert_eq!(logits.size(), [2, 2]);
/// // The padded position does not count: the same as the two real tokens alone.
/// let alone = head.forward_t(&tokens.get(1).narrow(0, 0, 2).unsqueeze(0), false)?;
/// assert!((logits.get(1) - alone.get(0)).abs().max().double_value(&[]) < 1e-6);
/// let loss = head.loss(&logits, &TaskTarget::new(Tensor::from_slice(&[1i64, 0])))?;
/// assert!(loss.double_value(&[]) > 0.0);
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug)]
pub struct SentenceHead {
    pooling: Pooling,
    classifier: ClassificationHead,
}

impl SentenceHead {
    /// Builds the classifier under `path` (variables `weight`, `bias`); `in_dim` is the
    /// token feature width d.
    pub fn new(
        path: &nn::Path,
        name: impl Into<String>,
        in_dim: i64,
        classes: i64,
        pooling: Pooling,
    ) -> Result<Self> {
        Ok(SentenceHead {
            pooling,
            classifier: ClassificationHead::new(path, name, in_dim, classes)?,
        })
    }

    /// How token features are pooled.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// `[B, T, d]` to `[B, d]`.
    fn pool(&self, tokens: &Tensor) -> Result<Tensor> {
        let size = tokens.size();
        if size.len() != 3 || size[2] != self.classifier.in_dim() {
            return Err(Error::shape(
                format!("head `{}` input", self.classifier.name()),
                format!(
                    "[batch, tokens, {}] token features",
                    self.classifier.in_dim()
                ),
                describe(tokens),
            ));
        }
        Ok(match self.pooling {
            Pooling::Cls => tokens.f_select(1, 0)?,
            Pooling::Mean => {
                let real = tokens
                    .f_ne(0.0)?
                    .f_any_dim(2, true)?
                    .f_to_kind(tokens.kind())?;
                let count = real.f_sum_dim_intlist([1i64].as_slice(), false, Kind::Float)?;
                tokens
                    .f_mul(&real)?
                    .f_sum_dim_intlist([1i64].as_slice(), false, tokens.kind())?
                    .f_div(&count.f_clamp_min(1.0)?.f_to_kind(tokens.kind())?)?
            }
        })
    }
}

impl TaskHead for SentenceHead {
    fn name(&self) -> &str {
        self.classifier.name()
    }

    fn in_dim(&self) -> i64 {
        self.classifier.in_dim()
    }

    fn forward_t(&self, features: &Tensor, train: bool) -> Result<Tensor> {
        self.classifier.forward_t(&self.pool(features)?, train)
    }

    fn loss(&self, output: &Tensor, target: &TaskTarget) -> Result<Tensor> {
        self.classifier.loss(output, target)
    }

    fn metrics(&self) -> Box<dyn Metrics> {
        self.classifier.metrics()
    }

    fn predict(&self, output: &Tensor) -> Result<Prediction> {
        self.classifier.predict(output)
    }
}
