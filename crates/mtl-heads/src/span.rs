//! The head of an extractive question-answering task (SQuAD, Rajpurkar et al., EMNLP
//! 2016, as BERT answers it): from token features `[B, T, d]`, one start and one end
//! logit per token; the answer is the span between the most likely start and the most
//! likely end at or after it.
//!
//! Padded positions (exactly zero features, as [`mtl_core::TransformerEncoder`] leaves
//! them) can be neither start nor end: their logits are set to a large negative value.
//! The loss is BERT's: the mean of the start and the end cross-entropies over the
//! labelled sequences. Metrics are SQuAD's exact match (primary) and token-overlap F1.

use crate::kit::{check_count, describe, Linear};
use crate::{MetricValue, Metrics, TaskHead};
use mtl_core::{Error, Result, TaskTarget};
use tch::{nn, Kind, Reduction, Tensor};

/// The logit of a position that cannot hold the answer: far below any real logit, yet
/// finite, so a softmax over a sequence of padding alone stays defined.
const MASKED: f64 = -1e9;

/// Start and end logits over tokens: features `[B, T, d]` in, logits `[B, T, 2]` out
/// (start, end); targets are `Int64 [B, 2]` token positions `(start, end)` of the
/// answer, inclusive, with a `[B]` mask for unanswerable or unlabelled sequences.
///
/// ```
/// use mtl_core::TaskTarget;
/// use mtl_heads::{SpanHead, TaskHead};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let head = SpanHead::new(&(vs.root() / "task0" / "head"), "answer", 8)?;
/// let logits = head.forward_t(&Tensor::randn([2, 5, 8], (Kind::Float, Device::Cpu)), true)?;
/// assert_eq!(logits.size(), [2, 5, 2]);
/// let answers = Tensor::from_slice(&[1i64, 3, 0, 0]).view([2, 2]);
/// assert!(head.loss(&logits, &TaskTarget::new(answers))?.double_value(&[]) > 0.0);
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug)]
pub struct SpanHead {
    name: String,
    layer: Linear,
}

impl SpanHead {
    /// Builds the head's layer (`weight` `[2, in_dim]`, `bias`) under `path`.
    pub fn new(path: &nn::Path, name: impl Into<String>, in_dim: i64) -> Result<Self> {
        let name = name.into();
        check_count("span", &name, "in_dim", in_dim, 1)?;
        let layer = Linear::new(path, &name, in_dim, 2)?;
        Ok(SpanHead { name, layer })
    }
}

/// Checks `logits` `[B, T, 2]` against `target` (`[B, 2]` positions in `0..T`) and
/// returns the labelled rows' logits and positions; errors name the head `name`.
fn labelled(name: &str, logits: &Tensor, target: &TaskTarget) -> Result<Option<(Tensor, Tensor)>> {
    let ctx = format!("head `{name}`");
    let size = logits.size();
    if size.len() != 3 || size[2] != 2 || !logits.is_floating_point() {
        return Err(Error::shape(
            &ctx,
            "floating [batch, tokens, 2] logits",
            describe(logits),
        ));
    }
    let (b, t) = (size[0], size[1]);
    let pos = &target.values;
    if pos.size() != [b, 2] || pos.is_floating_point() {
        return Err(Error::shape(
            &ctx,
            format!("integer [{b}, 2] answer positions (start, end)"),
            describe(pos),
        ));
    }
    let pos = pos.f_to_device(logits.device())?.f_to_kind(Kind::Int64)?;
    let rows = match &target.mask {
        None => Tensor::f_arange(b, (Kind::Int64, logits.device()))?,
        Some(m) => {
            if m.size() != [b] || m.kind() != Kind::Bool {
                return Err(Error::shape(
                    format!("{ctx} mask"),
                    format!("Bool [{b}]"),
                    describe(m),
                ));
            }
            m.f_to_device(logits.device())?
                .f_nonzero()?
                .f_squeeze_dim(1)?
        }
    };
    if rows.numel() == 0 {
        return Ok(None);
    }
    let pos = pos.f_index_select(0, &rows)?;
    let flat: Vec<i64> = Vec::try_from(pos.f_reshape([-1])?)
        .map_err(|e: tch::TchError| Error::config(e.to_string()))?;
    let row_ids: Vec<i64> =
        Vec::try_from(&rows).map_err(|e: tch::TchError| Error::config(e.to_string()))?;
    for (i, pair) in flat.chunks(2).enumerate() {
        if pair[0] < 0 || pair[1] < pair[0] || pair[1] >= t {
            return Err(Error::config(format!(
                "{ctx}: row {} has answer ({}, {}), which is not a span of its {t} tokens",
                row_ids[i], pair[0], pair[1]
            )));
        }
    }
    Ok(Some((logits.f_index_select(0, &rows)?, pos)))
}

impl TaskHead for SpanHead {
    fn name(&self) -> &str {
        &self.name
    }

    fn in_dim(&self) -> i64 {
        self.layer.in_dim()
    }

    fn forward_t(&self, features: &Tensor, _train: bool) -> Result<Tensor> {
        let logits = self.layer.forward_tokens(features)?;
        let padded = features.f_ne(0.0)?.f_any_dim(2, true)?.f_logical_not()?;
        Ok(logits.f_masked_fill(&padded, MASKED)?)
    }

    fn loss(&self, output: &Tensor, target: &TaskTarget) -> Result<Tensor> {
        let Some((logits, pos)) = labelled(&self.name, output, target)? else {
            // No labelled sequence: an exact, differentiable zero.
            return Ok(output.f_sum(Kind::Float)?.f_mul_scalar(0.0)?);
        };
        let ce = |k: i64| -> Result<Tensor> {
            Ok(logits.f_select(2, k)?.f_cross_entropy_loss::<Tensor>(
                &pos.f_select(1, k)?,
                None,
                Reduction::Mean,
                -100,
                0.0,
            )?)
        };
        Ok(ce(0)?.f_add(&ce(1)?)?.f_mul_scalar(0.5)?)
    }

    fn metrics(&self) -> Box<dyn Metrics> {
        Box::new(SpanMetrics {
            name: self.name.clone(),
            exact: 0.0,
            f1: 0.0,
            rows: 0,
        })
    }
}

/// The predicted span of each sequence: the most likely start, then the most likely end
/// at or after it. `[B, 2]`.
fn predicted_spans(logits: &Tensor) -> Result<Vec<(i64, i64)>> {
    let start = logits.f_select(2, 0)?.f_argmax(1, false)?;
    let t = logits.size()[1];
    let before = Tensor::f_arange(t, (Kind::Int64, logits.device()))?
        .f_unsqueeze(0)?
        .f_lt_tensor(&start.f_unsqueeze(1)?)?;
    let end = logits
        .f_select(2, 1)?
        .f_masked_fill(&before, f64::NEG_INFINITY)?
        .f_argmax(1, false)?;
    let s: Vec<i64> =
        Vec::try_from(&start).map_err(|e: tch::TchError| Error::config(e.to_string()))?;
    let e: Vec<i64> =
        Vec::try_from(&end).map_err(|e: tch::TchError| Error::config(e.to_string()))?;
    Ok(s.into_iter().zip(e).collect())
}

/// SQuAD's exact match (primary) and token-overlap F1 of predicted answer spans.
#[derive(Debug)]
struct SpanMetrics {
    name: String,
    exact: f64,
    f1: f64,
    rows: usize,
}

impl Metrics for SpanMetrics {
    fn update(&mut self, output: &Tensor, target: &TaskTarget) -> Result<()> {
        let Some((logits, pos)) = labelled(&self.name, &output.f_detach()?, target)? else {
            return Ok(());
        };
        let truth: Vec<i64> = Vec::try_from(pos.f_reshape([-1])?)
            .map_err(|e: tch::TchError| Error::config(e.to_string()))?;
        for ((ps, pe), t) in predicted_spans(&logits)?.into_iter().zip(truth.chunks(2)) {
            let (ts, te) = (t[0], t[1]);
            self.exact += f64::from(ps == ts && pe == te);
            let overlap = (pe.min(te) - ps.max(ts) + 1).max(0) as f64;
            if overlap > 0.0 {
                let precision = overlap / (pe - ps + 1) as f64;
                let recall = overlap / (te - ts + 1) as f64;
                self.f1 += 2.0 * precision * recall / (precision + recall);
            }
            self.rows += 1;
        }
        Ok(())
    }

    fn compute(&self) -> Vec<MetricValue> {
        if self.rows == 0 {
            return Vec::new();
        }
        let n = self.rows as f64;
        vec![
            MetricValue::new("exact_match", self.exact / n, true),
            MetricValue::new("span_overlap_f1", self.f1 / n, true),
        ]
    }

    fn reset(&mut self) {
        (self.exact, self.f1, self.rows) = (0.0, 0.0, 0);
    }
}
