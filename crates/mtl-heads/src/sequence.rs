//! The head of a sequence-tagging task: one class per token of a sequence (the
//! secondary structure of each residue of a protein, the part of speech of each word).

use crate::kit::{
    and_masks, check_count, class_rows, describe, entry_mask, flat_target, is_integer,
    loss_context, metrics_context, to_batch_row, Linear, Mean,
};
use crate::loss::cross_entropy_in;
use crate::rows::logits_size;
use crate::{MetricValue, Metrics, TaskHead};
use mtl_core::{Error, Result, TaskTarget};
use tch::{nn, Tensor};

/// The label of padding tokens, unless set otherwise (see
/// [`SequenceHead::with_padding_label`]).
pub const DEFAULT_PADDING_LABEL: i64 = -1;

/// Softmax cross-entropy of per-token `logits` `[B, T, C]` against tag sequences
/// (integer `[B, T]`), averaged over the real tokens of the batch.
///
/// Padding is marked either by the target's mask — `Bool [B, T]`, true on real tokens,
/// or `Bool [B]` for whole sequences without tags — or by `padding_label` in the tags
/// (`None`: no tag value means padding). A tag that is neither padding nor in `0..C` is
/// [`Error::LabelOutOfRange`] at its sequence's row. No real token gives an exact,
/// differentiable zero.
///
/// ```
/// use mtl_core::TaskTarget;
/// use tch::Tensor;
///
/// // One sequence of two tokens, two tags; the second token is padding.
/// let logits = Tensor::from_slice(&[0.0f32, 2.0, 5.0, -5.0]).view([1, 2, 2]);
/// let tags = TaskTarget::masked(
///     Tensor::from_slice(&[1i64, 0]).view([1, 2]),
///     Tensor::from_slice(&[true, false]).view([1, 2]),
/// );
/// let loss = mtl_heads::token_cross_entropy(&logits, &tags, None)?;
/// assert!((loss.double_value(&[]) - (1.0 + (-2.0f64).exp()).ln()).abs() < 1e-6);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn token_cross_entropy(
    logits: &Tensor,
    target: &TaskTarget,
    padding_label: Option<i64>,
) -> Result<Tensor> {
    token_cross_entropy_in("token_cross_entropy", logits, target, None, padding_label)
}

/// [`token_cross_entropy`], with errors naming `ctx` and the width checked against
/// `classes`.
fn token_cross_entropy_in(
    ctx: &str,
    logits: &Tensor,
    target: &TaskTarget,
    classes: Option<i64>,
    padding_label: Option<i64>,
) -> Result<Tensor> {
    let tokens = TokenTagging::of(ctx, logits, target, classes, padding_label)?;
    cross_entropy_in(ctx, &tokens.logits, &tokens.target, classes)
        .map_err(|e| to_batch_row(e, tokens.per_sequence))
}

/// A tagging batch flattened to one row per token.
pub(crate) struct TokenTagging {
    /// `[B·T, C]`, sequence by sequence.
    pub(crate) logits: Tensor,
    /// `[B·T]` tags, masked on padding.
    pub(crate) target: TaskTarget,
    pub(crate) per_sequence: i64,
}

impl TokenTagging {
    /// Checks `logits` (floating `[B, T, C]`, `C == classes` when given) against the
    /// target (integer `[B, T]`, mask `[B]` or `[B, T]`) and flattens both.
    pub(crate) fn of(
        ctx: &str,
        logits: &Tensor,
        target: &TaskTarget,
        classes: Option<i64>,
        padding_label: Option<i64>,
    ) -> Result<Self> {
        let size = logits_size(ctx, logits, &["batch", "tokens", "classes"], 2, classes)?;
        let grid = [size[0], size[1]];
        let tags = &target.values;
        if !is_integer(tags.kind()) || tags.size() != grid {
            return Err(Error::shape(
                ctx,
                format!("integer {grid:?} tag sequences"),
                describe(tags),
            ));
        }
        let tags = tags.f_to_device(logits.device())?;
        let marked = entry_mask(ctx, target, &grid, logits.device())?;
        let real = padding_label.map(|p| tags.f_ne(p)).transpose()?;
        Ok(TokenTagging {
            logits: logits.f_reshape([-1, size[2]])?,
            target: flat_target(tags.f_reshape([-1])?, and_masks(marked, real)?)?,
            per_sequence: size[1],
        })
    }
}

/// A linear layer applied to every token's features `[B, T, in_dim]`, giving one logit
/// per tag, trained with [`token_cross_entropy`] and evaluated by token accuracy (see
/// [`TokenMetrics`]).
///
/// Outputs are logits `[B, T, classes]`; targets are tags `[B, T]`, padding marked by a
/// mask `[B, T]` or by the padding label ([`DEFAULT_PADDING_LABEL`] unless set).
///
/// ```
/// use mtl_core::TaskTarget;
/// use mtl_heads::{SequenceHead, TaskHead};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// // Three-state secondary structure: helix, strand, coil.
/// let head = SequenceHead::new(&(vs.root() / "task0" / "head"), "ss3", 32, 3)?;
/// let logits = head.forward_t(&Tensor::randn([2, 7, 32], (Kind::Float, Device::Cpu)), true)?;
/// assert_eq!(logits.size(), [2, 7, 3]);
/// let tags = Tensor::from_slice(&[0i64, 0, 2, 1, 1, 2, 2, 2, 0, 0, 2, -1, -1, -1]).view([2, 7]);
/// assert!(head.loss(&logits, &TaskTarget::new(tags))?.double_value(&[]) > 0.0);
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug)]
pub struct SequenceHead {
    name: String,
    classes: i64,
    padding_label: Option<i64>,
    layer: Linear,
    /// The tag names, when the tags are BIO entity tags scored by span F1.
    bio_tags: Option<Vec<String>>,
}

impl SequenceHead {
    /// Builds the head's layer under `path` (variables `weight`, `bias`), treating
    /// [`DEFAULT_PADDING_LABEL`] as padding. Fails with [`Error::Config`] unless
    /// `in_dim >= 1` and `classes >= 2`.
    pub fn new(
        path: &nn::Path,
        name: impl Into<String>,
        in_dim: i64,
        classes: i64,
    ) -> Result<Self> {
        let name = name.into();
        check_count("sequence", &name, "classes", classes, 2)?;
        let layer = Linear::new(path, &name, in_dim, classes)?;
        Ok(SequenceHead {
            name,
            classes,
            padding_label: Some(DEFAULT_PADDING_LABEL),
            layer,
            bio_tags: None,
        })
    }

    /// Names the tags as BIO (or IOBES) entity tags (`tags[i]` for tag id i: `"O"`,
    /// `"B-PER"`, `"I-PER"`…), so the metrics are span precision, recall and F1 as
    /// seqeval computes them ([`SpanF1`](crate::SpanF1), F1 primary) rather than token
    /// accuracy alone. There must be one name per class.
    pub fn with_bio_tags(mut self, tags: Vec<String>) -> Result<Self> {
        if tags.len() as i64 != self.classes {
            return Err(Error::config(format!(
                "head `{}`: {} tag names for {} classes",
                self.name,
                tags.len(),
                self.classes
            )));
        }
        crate::bio::SpanF1::new(tags.clone())?;
        self.bio_tags = Some(tags);
        Ok(self)
    }

    /// Treats tokens tagged `padding_label` as padding instead; `None` leaves padding to
    /// the mask alone.
    pub fn with_padding_label(mut self, padding_label: Option<i64>) -> Self {
        self.padding_label = padding_label;
        self
    }

    /// The number of tags.
    pub fn classes(&self) -> i64 {
        self.classes
    }

    /// The tag that marks padding, if any.
    pub fn padding_label(&self) -> Option<i64> {
        self.padding_label
    }
}

impl TaskHead for SequenceHead {
    fn name(&self) -> &str {
        &self.name
    }

    fn in_dim(&self) -> i64 {
        self.layer.in_dim()
    }

    fn forward_t(&self, features: &Tensor, _train: bool) -> Result<Tensor> {
        self.layer.forward_tokens(features)
    }

    fn loss(&self, output: &Tensor, target: &TaskTarget) -> Result<Tensor> {
        let ctx = loss_context(&self.name, "token_cross_entropy");
        token_cross_entropy_in(&ctx, output, target, Some(self.classes), self.padding_label)
    }

    fn metrics(&self) -> Box<dyn Metrics> {
        let context = metrics_context(&self.name);
        if let Some(Ok(spans)) = self.bio_tags.clone().map(crate::bio::SpanF1::new) {
            return Box::new(
                spans
                    .with_padding_label(self.padding_label)
                    .with_context(context),
            );
        }
        Box::new(
            TokenMetrics::new(self.classes)
                .with_padding_label(self.padding_label)
                .with_context(context),
        )
    }
}

/// Token accuracy of a `classes`-way tagging task, from logits `[B, T, classes]` and
/// tags `[B, T]`: the fraction of real (non-padding) tokens of the whole evaluation
/// whose most likely tag is the true one — the Q3 or Q8 score of protein secondary
/// structure. Higher is better.
///
/// ```
/// use mtl_core::TaskTarget;
/// use mtl_heads::{Metrics, TokenMetrics};
/// use tch::Tensor;
///
/// let mut m = TokenMetrics::new(2);
/// // Predicted tags 0, 1, 1; the last token is padding.
/// let logits = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0, 0.0, 1.0]).view([1, 3, 2]);
/// m.update(&logits, &TaskTarget::new(Tensor::from_slice(&[0i64, 0, -1]).view([1, 3])))?;
/// assert_eq!(m.compute()[0].value, 0.5);
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct TokenMetrics {
    context: String,
    classes: i64,
    padding_label: Option<i64>,
    /// Whether each real token's tag was predicted right.
    hits: Mean,
}

impl TokenMetrics {
    /// An empty accumulator treating [`DEFAULT_PADDING_LABEL`] as padding. With
    /// `classes < 1` every update is a shape error.
    pub fn new(classes: i64) -> Self {
        TokenMetrics {
            context: "token metrics".to_string(),
            classes,
            padding_label: Some(DEFAULT_PADDING_LABEL),
            hits: Mean::new(),
        }
    }

    /// Treats tokens tagged `padding_label` as padding instead; `None` leaves padding to
    /// the mask alone.
    pub fn with_padding_label(mut self, padding_label: Option<i64>) -> Self {
        self.padding_label = padding_label;
        self
    }

    /// Names `context` (e.g. the head) in the errors of [`Metrics::update`].
    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = context.into();
        self
    }
}

impl Metrics for TokenMetrics {
    fn update(&mut self, output: &Tensor, target: &TaskTarget) -> Result<()> {
        let ctx = &self.context;
        let classes = Some(self.classes);
        let tokens = TokenTagging::of(ctx, output, target, classes, self.padding_label)?;
        let (logits, tags) = class_rows(ctx, &tokens.logits, &tokens.target, classes)
            .map_err(|e| to_batch_row(e, tokens.per_sequence))?;
        let hits = logits.f_detach()?.f_argmax(1, false)?.f_eq_tensor(&tags)?;
        self.hits.add(&hits)
    }

    fn compute(&self) -> Vec<MetricValue> {
        let accuracy = self.hits.value();
        accuracy
            .map(|a| MetricValue::new("token_accuracy", a, true))
            .into_iter()
            .collect()
    }

    fn reset(&mut self) {
        self.hits.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// Logits `[1, n, classes]` that predict `tags[i]` at token `i`.
    fn predicting(tags: &[i64], classes: i64) -> Tensor {
        Tensor::from_slice(tags)
            .one_hot(classes)
            .to_kind(Kind::Float)
            .unsqueeze(0)
    }

    #[test]
    fn accuracy_over_real_tokens_only() {
        let mut m = TokenMetrics::new(3).with_padding_label(Some(9));
        assert!(m.compute().is_empty());
        let logits = Tensor::cat(
            &[predicting(&[0, 1, 2, 2], 3), predicting(&[1, 1, 0, 0], 3)],
            0,
        );
        // Sequence 0: right, wrong, right, padding. Sequence 1: masked off after two
        // tokens; right, wrong.
        let tags = Tensor::from_slice(&[0i64, 2, 2, 9, 1, 0, 7, 7]).view([2, 4]);
        let mask = Tensor::from_slice(&[true, true, true, true, true, true, false, false]);
        m.update(&logits, &TaskTarget::masked(tags, mask.view([2, 4])))
            .unwrap();
        assert_eq!(m.compute()[0].value, 3.0 / 5.0);
        // A whole sequence masked by a row mask adds nothing.
        let tags = Tensor::from_slice(&[0i64, 1, 2, 2, 5, 5, 5, 5]).view([2, 4]);
        let target = TaskTarget::masked(tags, Tensor::from_slice(&[true, false]));
        m.update(&logits, &target).unwrap();
        assert_eq!(m.compute()[0].value, 7.0 / 9.0);
        m.reset();
        assert!(m.compute().is_empty());
    }

    #[test]
    fn bad_tags_name_their_sequence() {
        let logits = Tensor::zeros([3, 2, 4], (Kind::Float, Device::Cpu));
        let tags = TaskTarget::new(Tensor::from_slice(&[0i64, 1, -1, 3, 2, -2]).view([3, 2]));
        let err = token_cross_entropy(&logits, &tags, Some(-1)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LabelOutOfRange {
                    row: 2,
                    label: -2,
                    classes: 4,
                    ..
                }
            ),
            "{err}"
        );
        // Without a padding label, -1 is out of range too, one sequence earlier.
        let err = token_cross_entropy(&logits, &tags, None).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LabelOutOfRange {
                    row: 1,
                    label: -1,
                    ..
                }
            ),
            "{err}"
        );
        let err = token_cross_entropy(&logits.view([6, 4]), &tags, None).unwrap_err();
        assert!(matches!(&err, Error::Shape { context, .. } if context == "token_cross_entropy"));
    }
}
