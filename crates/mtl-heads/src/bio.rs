//! Named-entity spans from BIO tags and their span-level precision, recall and F1, as
//! `seqeval` computes them by default (the CoNLL-2000 `conlleval` rules).
//!
//! A tag is `O`, or a prefix `B`, `I` (also `E`, `S` for IOBES) and a type: `B-PER`.
//! A span starts at a `B` or `S`, or at an `I`/`E` whose type differs from the previous
//! tag's or that follows `O`/`E`/`S` (the lenient rule: a stray `I-LOC` starts a span);
//! it ends before `O`, `B`, `S`, a change of type, or after `E`/`S`. A predicted span
//! counts when its type, start and end all match a true one; precision, recall and F1
//! are pooled over every span of the evaluation (seqeval's micro average).

use crate::kit::{class_rows, to_batch_row};
use crate::sequence::{TokenTagging, DEFAULT_PADDING_LABEL};
use crate::{MetricValue, Metrics};
use mtl_core::{Error, Result, TaskTarget};
use std::collections::HashSet;
use tch::Tensor;

/// One entity: its type and the tokens `start..end` it covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Span {
    /// The entity type (`PER` for `B-PER`).
    pub kind: String,
    /// The first token.
    pub start: usize,
    /// One past the last token.
    pub end: usize,
}

/// Splits a tag into its prefix and type: `"B-PER"` → `('B', "PER")`, `"O"` → `('O', "")`.
fn parts(tag: &str) -> (char, &str) {
    match tag.split_once(['-', '_']) {
        Some((p, kind)) if p.len() == 1 => (p.chars().next().unwrap_or('O'), kind),
        _ if tag == "O" || tag.is_empty() => ('O', ""),
        // A bare type is read as inside an entity of that type, as conlleval does.
        _ => ('I', tag),
    }
}

fn ends(prev: char, prev_kind: &str, tag: char, kind: &str) -> bool {
    matches!(prev, 'E' | 'S')
        || (matches!(prev, 'B' | 'I') && matches!(tag, 'B' | 'S' | 'O'))
        || (prev != 'O' && prev_kind != kind)
}

fn starts(prev: char, prev_kind: &str, tag: char, kind: &str) -> bool {
    matches!(tag, 'B' | 'S')
        || (matches!(prev, 'E' | 'S' | 'O') && matches!(tag, 'E' | 'I'))
        || (tag != 'O' && prev_kind != kind)
}

/// The entity spans of one tag sequence.
///
/// ```
/// use mtl_heads::bio_spans;
/// let spans = bio_spans(&["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "B-ORG", "I-LOC"]);
/// let got: Vec<(&str, usize, usize)> = spans.iter().map(|s| (s.kind.as_str(), s.start, s.end)).collect();
/// assert_eq!(got, [("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 5), ("ORG", 5, 6), ("LOC", 6, 7)]);
/// ```
pub fn bio_spans<S: AsRef<str>>(tags: &[S]) -> Vec<Span> {
    let mut spans = Vec::new();
    let (mut prev, mut prev_kind) = ('O', "");
    let mut open: Option<(String, usize)> = None;
    for (i, tag) in tags.iter().enumerate() {
        let (p, kind) = parts(tag.as_ref());
        if ends(prev, prev_kind, p, kind) {
            if let Some((k, s)) = open.take() {
                spans.push(Span {
                    kind: k,
                    start: s,
                    end: i,
                });
            }
        }
        if starts(prev, prev_kind, p, kind) {
            open = Some((kind.to_string(), i));
        }
        (prev, prev_kind) = (p, kind);
    }
    if let Some((k, s)) = open {
        spans.push(Span {
            kind: k,
            start: s,
            end: tags.len(),
        });
    }
    spans
}

/// Span precision, recall and F1 (primary) of a BIO tagging task, plus token accuracy,
/// from logits `[B, T, classes]` and tag ids `[B, T]` whose names are `tags`. Padding
/// (the padding label or the target's mask) is cut from each sequence before spans are
/// read. Higher is better for all four.
///
/// ```
/// use mtl_core::TaskTarget;
/// use mtl_heads::{Metrics, SpanF1};
/// use tch::{Kind, Tensor};
///
/// let tags = ["O", "B-PER", "I-PER"].map(String::from).to_vec();
/// let mut m = SpanF1::new(tags)?;
/// // Truth: O B-PER I-PER O; predicted: O B-PER O O — the span's end is wrong.
/// let truth = Tensor::from_slice(&[0i64, 1, 2, 0]).view([1, 4]);
/// let logits = Tensor::from_slice(&[0i64, 1, 0, 0]).one_hot(3).to_kind(Kind::Float).unsqueeze(0);
/// m.update(&logits, &TaskTarget::new(truth))?;
/// let v = m.compute();
/// assert_eq!((v[0].name.as_str(), v[0].value), ("span_f1", 0.0));
/// assert_eq!(v[3].value, 0.75); // token accuracy
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SpanF1 {
    context: String,
    tags: Vec<String>,
    padding_label: Option<i64>,
    correct: usize,
    predicted: usize,
    truth: usize,
    tokens: usize,
    token_hits: usize,
}

impl SpanF1 {
    /// An empty accumulator for tags named `tags` (tag id i is `tags[i]`), treating
    /// [`DEFAULT_PADDING_LABEL`] as padding. Fewer than two tags, or a tag with a prefix
    /// other than B, I, E, S or O, is a configuration error.
    pub fn new(tags: Vec<String>) -> Result<Self> {
        if tags.len() < 2 {
            return Err(Error::config(format!(
                "span F1 needs at least two tags, got {tags:?}"
            )));
        }
        if let Some(bad) = tags.iter().find(|t| {
            let (p, kind) = parts(t);
            !matches!(p, 'B' | 'I' | 'E' | 'S' | 'O') || (p != 'O' && kind.is_empty())
        }) {
            return Err(Error::config(format!(
                "span F1: tag `{bad}` is not O or B-/I-/E-/S- and a type"
            )));
        }
        Ok(SpanF1 {
            context: "span F1".into(),
            tags,
            padding_label: Some(DEFAULT_PADDING_LABEL),
            correct: 0,
            predicted: 0,
            truth: 0,
            tokens: 0,
            token_hits: 0,
        })
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

    fn names(&self, ids: &[i64]) -> Vec<&str> {
        ids.iter()
            .map(|&i| self.tags.get(i as usize).map_or("O", String::as_str))
            .collect()
    }
}

impl Metrics for SpanF1 {
    fn update(&mut self, output: &Tensor, target: &TaskTarget) -> Result<()> {
        let classes = self.tags.len() as i64;
        let tokens = TokenTagging::of(
            &self.context,
            output,
            target,
            Some(classes),
            self.padding_label,
        )?;
        // Validate ranges as the loss does (errors name the sequence).
        let _checked = class_rows(&self.context, &tokens.logits, &tokens.target, Some(classes))
            .map_err(|e| to_batch_row(e, tokens.per_sequence))?;
        let t = tokens.per_sequence;
        let b = output.size()[0];
        let pred: Vec<i64> = Vec::try_from(output.f_detach()?.f_argmax(2, false)?.f_reshape([-1])?)
            .map_err(|e: tch::TchError| Error::config(e.to_string()))?;
        let truth: Vec<i64> =
            Vec::try_from(target.values.f_reshape([-1])?.f_to_kind(tch::Kind::Int64)?)
                .map_err(|e: tch::TchError| Error::config(e.to_string()))?;
        let real: Vec<bool> = match &tokens.target.mask {
            Some(m) => Vec::try_from(m.f_reshape([-1])?)
                .map_err(|e: tch::TchError| Error::config(e.to_string()))?,
            None => vec![true; (b * t) as usize],
        };
        for s in 0..b as usize {
            let range = s * t as usize..(s + 1) * t as usize;
            let keep: Vec<usize> = range.filter(|&i| real[i]).collect();
            let p: Vec<i64> = keep.iter().map(|&i| pred[i]).collect();
            let y: Vec<i64> = keep.iter().map(|&i| truth[i]).collect();
            self.tokens += y.len();
            self.token_hits += p.iter().zip(&y).filter(|(a, b)| a == b).count();
            let true_spans: HashSet<Span> = bio_spans(&self.names(&y)).into_iter().collect();
            let pred_spans = bio_spans(&self.names(&p));
            self.truth += true_spans.len();
            self.predicted += pred_spans.len();
            self.correct += pred_spans.iter().filter(|s| true_spans.contains(s)).count();
        }
        Ok(())
    }

    fn compute(&self) -> Vec<MetricValue> {
        if self.tokens == 0 {
            return Vec::new();
        }
        // seqeval's convention: a ratio with nothing to divide is 0.
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision = ratio(self.correct, self.predicted);
        let recall = ratio(self.correct, self.truth);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        vec![
            MetricValue::new("span_f1", f1, true),
            MetricValue::new("span_precision", precision, true),
            MetricValue::new("span_recall", recall, true),
            MetricValue::new("token_accuracy", ratio(self.token_hits, self.tokens), true),
        ]
    }

    fn reset(&mut self) {
        (
            self.correct,
            self.predicted,
            self.truth,
            self.tokens,
            self.token_hits,
        ) = (0, 0, 0, 0, 0);
    }
}
