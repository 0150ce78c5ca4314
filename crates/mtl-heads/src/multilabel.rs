//! The head of a multi-label task: `L` yes/no labels per row, any number of them true at
//! once (which of `L` transcription factors bind a DNA sequence, which topics a text is
//! about). Each label is its own binary problem on a shared logit layer.

use crate::kit::{
    binary_rows, describe, entry_mask, flat_target, head_context, is_float, is_integer,
    loss_context, metrics_context, to_batch_row, Linear,
};
use crate::loss::bce_with_logits_in;
use crate::metrics::{average_precision, roc_auc};
use crate::rows::logits_size;
use crate::{MetricValue, Metrics, Prediction, TaskHead};
use mtl_core::{Error, Result, TaskTarget};
use tch::{nn, Device, Kind, Tensor};

/// Binary cross-entropy of `logits` `[B, L]` against 0/1 targets `[B, L]`, averaged over
/// every labelled entry (row, label).
///
/// The target's mask may be `Bool [B]` (a row is labelled or not as a whole) or
/// `Bool [B, L]` (each label of each row on its own, as when assays cover different
/// labels). Soft targets in `[0, 1]` are accepted; a labelled target outside it is
/// [`Error::LabelOutOfRange`] at its batch row. No labelled entry gives an exact,
/// differentiable zero.
///
/// ```
/// use mtl_core::TaskTarget;
/// use tch::Tensor;
///
/// let logits = Tensor::from_slice(&[0.0f32, 3.0, -1.0, 2.0]).view([2, 2]);
/// // Row 0 has both labels; row 1 only its first, so its NaN second label is ignored.
/// let target = TaskTarget::masked(
///     Tensor::from_slice(&[1.0f32, 1.0, 0.0, f32::NAN]).view([2, 2]),
///     Tensor::from_slice(&[true, true, true, false]).view([2, 2]),
/// );
/// let loss = mtl_heads::multilabel_bce_with_logits(&logits, &target)?;
/// let softplus = |x: f64| (1.0 + x.exp()).ln();
/// let expected = (softplus(0.0) + softplus(-3.0) + softplus(-1.0)) / 3.0;
/// assert!((loss.double_value(&[]) - expected).abs() < 1e-6);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn multilabel_bce_with_logits(logits: &Tensor, target: &TaskTarget) -> Result<Tensor> {
    multilabel_bce_in("multilabel_bce_with_logits", logits, target, None)
}

/// [`multilabel_bce_with_logits`], with errors naming `ctx` and the width checked
/// against `labels`.
fn multilabel_bce_in(
    ctx: &str,
    logits: &Tensor,
    target: &TaskTarget,
    labels: Option<i64>,
) -> Result<Tensor> {
    let entries = Entries::of(ctx, logits, target, labels)?;
    bce_with_logits_in(ctx, &entries.logits, &entries.target)
        .map_err(|e| to_batch_row(e, entries.labels))
}

/// A multi-label batch flattened to one row per (row, label) entry.
struct Entries {
    /// `[B·L]`, row-major: entry `i` is label `i % L` of row `i / L`.
    logits: Tensor,
    /// `[B·L]` targets, masked where the entry is unlabelled.
    target: TaskTarget,
    labels: i64,
}

impl Entries {
    /// Checks `logits` (floating `[B, L]`, `L == labels` when given) against the target
    /// (numeric or boolean `[B, L]`, mask `[B]` or `[B, L]`) and flattens both.
    fn of(ctx: &str, logits: &Tensor, target: &TaskTarget, labels: Option<i64>) -> Result<Self> {
        let size = logits_size(ctx, logits, &["batch", "labels"], 1, labels)?;
        let values = &target.values;
        let kind = values.kind();
        let kind_fits = is_float(kind) || is_integer(kind) || kind == Kind::Bool;
        if !kind_fits || values.size() != size {
            return Err(Error::shape(
                ctx,
                format!("0/1 targets {size:?}"),
                describe(values),
            ));
        }
        let valid = entry_mask(ctx, target, &size, logits.device())?;
        Ok(Entries {
            logits: logits.f_reshape([-1])?,
            target: flat_target(values.f_reshape([-1])?, valid)?,
            labels: size[1],
        })
    }

    /// The label of each labelled entry, in the order the row checks keep them.
    fn label_ids(&self) -> Result<Vec<usize>> {
        let per_row = self.labels as usize;
        let positions: Vec<i64> = match &self.target.mask {
            None => (0..self.logits.size()[0]).collect(),
            Some(valid) => {
                let hits = valid
                    .f_nonzero()?
                    .f_flatten(0, -1)?
                    .f_to_device(Device::Cpu)?;
                Vec::<i64>::try_from(&hits)?
            }
        };
        Ok(positions.iter().map(|&i| i as usize % per_row).collect())
    }
}

/// A linear layer from features to one logit per label, trained with binary
/// cross-entropy on every labelled (row, label) entry and evaluated by micro-F1
/// (primary), macro-F1 and per-label ROC-AUC (see [`MultiLabelMetrics`]).
///
/// Outputs are logits `[B, labels]`; targets are 0/1 values `[B, labels]`, with a mask
/// `[B]` or `[B, labels]` for missing labels.
///
/// ```
/// use mtl_core::TaskTarget;
/// use mtl_heads::{MultiLabelHead, TaskHead};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let head = MultiLabelHead::new(&(vs.root() / "task0" / "head"), "binding", 8, 3)?;
/// let logits = head.forward_t(&Tensor::randn([2, 8], (Kind::Float, Device::Cpu)), true)?;
/// assert_eq!(logits.size(), [2, 3]);
/// let target = TaskTarget::new(Tensor::from_slice(&[1.0f32, 0.0, 1.0, 0.0, 0.0, 1.0]).view([2, 3]));
/// assert!(head.loss(&logits, &target)?.double_value(&[]) > 0.0);
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug)]
pub struct MultiLabelHead {
    name: String,
    labels: i64,
    layer: Linear,
}

impl MultiLabelHead {
    /// Builds the head's layer under `path` (variables `weight`, `bias`). Fails with
    /// [`Error::Config`] unless `in_dim >= 1` and `labels >= 1`.
    pub fn new(path: &nn::Path, name: impl Into<String>, in_dim: i64, labels: i64) -> Result<Self> {
        let name = name.into();
        let layer = Linear::new(path, &name, in_dim, labels)?;
        Ok(MultiLabelHead {
            name,
            labels,
            layer,
        })
    }

    /// The number of labels.
    pub fn labels(&self) -> i64 {
        self.labels
    }
}

impl TaskHead for MultiLabelHead {
    fn name(&self) -> &str {
        &self.name
    }

    fn in_dim(&self) -> i64 {
        self.layer.in_dim()
    }

    fn forward_t(&self, features: &Tensor, _train: bool) -> Result<Tensor> {
        self.layer.forward(features)
    }

    fn loss(&self, output: &Tensor, target: &TaskTarget) -> Result<Tensor> {
        let ctx = loss_context(&self.name, "multilabel_bce_with_logits");
        multilabel_bce_in(&ctx, output, target, Some(self.labels))
    }

    fn metrics(&self) -> Box<dyn Metrics> {
        let context = metrics_context(&self.name);
        Box::new(MultiLabelMetrics::new(self.labels).with_context(context))
    }

    fn predict(&self, output: &Tensor) -> Result<Prediction> {
        let size = output.size();
        if size.len() != 2 || size[1] != self.labels {
            return Err(Error::shape(
                head_context(&self.name),
                format!("[batch, {}] logits", self.labels),
                format!("{size:?}"),
            ));
        }
        Ok(Prediction::Positive(output.f_sigmoid()?))
    }
}

/// Micro-F1 (primary), macro-F1 and ROC-AUC of a task with `labels` binary labels, from
/// logits `[B, labels]` and 0/1 targets `[B, labels]` (mask `[B]` or `[B, labels]`).
///
/// An entry is predicted positive when `sigmoid(logit) > 0.5` and is truly positive when
/// its target is at least 0.5. Micro-F1 is `2·TP / (2·TP + FP + FN)` with the counts
/// pooled over every labelled entry; macro-F1 is the unweighted mean over all `labels`
/// of each label's F1, a label whose F1 is 0/0 (never predicted, never present)
/// counting 0 — scikit-learn's `f1_score` with `average="micro"` / `"macro"` and
/// `zero_division=0` on the indicator matrices. `auc_<i>` is label `i`'s ROC-AUC, left
/// out while only one class of it has been seen; `mean_auc` is the mean of the AUCs
/// that are reported, left out when none is.
///
/// ```
/// use mtl_core::TaskTarget;
/// use mtl_heads::{Metrics, MultiLabelMetrics};
/// use tch::Tensor;
///
/// let mut m = MultiLabelMetrics::new(2);
/// let logits = Tensor::from_slice(&[2.0f32, -1.0, 1.0, 1.0]).view([2, 2]);
/// m.update(&logits, &TaskTarget::new(Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0]).view([2, 2])))?;
/// let values = m.compute();
/// // TP 2, FP 1, FN 0.
/// assert_eq!((values[0].name.as_str(), values[0].value), ("micro_f1", 0.8));
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MultiLabelMetrics {
    context: String,
    labels: i64,
    /// Per label: the probabilities and truths of its labelled entries.
    scores: Vec<Vec<f64>>,
    truths: Vec<Vec<bool>>,
}

impl MultiLabelMetrics {
    /// An empty accumulator. With `labels < 1` every update is a shape error.
    pub fn new(labels: i64) -> Self {
        let slots = labels.max(0) as usize;
        MultiLabelMetrics {
            context: "multilabel metrics".to_string(),
            labels,
            scores: vec![Vec::new(); slots],
            truths: vec![Vec::new(); slots],
        }
    }

    /// Names `context` (e.g. the head) in the errors of [`Metrics::update`].
    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = context.into();
        self
    }
}

/// `2·tp / (2·tp + fp + fn)`, and 0 when that is 0/0.
fn f1(tp: usize, fp: usize, fn_: usize) -> f64 {
    let denominator = 2 * tp + fp + fn_;
    if denominator == 0 {
        0.0
    } else {
        (2 * tp) as f64 / denominator as f64
    }
}

/// A multi-label metric: all of them are higher-is-better.
fn metric(name: impl Into<String>, value: f64) -> MetricValue {
    MetricValue::new(name, value, true)
}

impl Metrics for MultiLabelMetrics {
    fn update(&mut self, output: &Tensor, target: &TaskTarget) -> Result<()> {
        let ctx = &self.context;
        let entries = Entries::of(ctx, output, target, Some(self.labels))?;
        let (logits, truth) = binary_rows(ctx, &entries.logits, &entries.target)
            .map_err(|e| to_batch_row(e, entries.labels))?;
        let ids = entries.label_ids()?;
        let cpu = |t: Tensor| -> Result<Tensor> {
            Ok(t.f_detach()?
                .f_to_kind(Kind::Double)?
                .f_to_device(Device::Cpu)?)
        };
        let scores = Vec::<f64>::try_from(&cpu(logits)?.f_sigmoid()?)?;
        let truth = Vec::<f64>::try_from(&cpu(truth)?)?;
        for ((label, score), value) in ids.into_iter().zip(scores).zip(truth) {
            self.scores[label].push(score);
            self.truths[label].push(value >= 0.5);
        }
        Ok(())
    }

    fn compute(&self) -> Vec<MetricValue> {
        if self.truths.iter().all(Vec::is_empty) {
            return Vec::new();
        }
        let mut pooled = (0, 0, 0);
        let mut f1_sum = 0.0;
        let mut aucs = Vec::new();
        let mut aps = Vec::new();
        for (label, (scores, truths)) in self.scores.iter().zip(&self.truths).enumerate() {
            let (mut tp, mut fp, mut fn_) = (0, 0, 0);
            for (&score, &truth) in scores.iter().zip(truths) {
                match (score > 0.5, truth) {
                    (true, true) => tp += 1,
                    (true, false) => fp += 1,
                    (false, true) => fn_ += 1,
                    (false, false) => {}
                }
            }
            pooled = (pooled.0 + tp, pooled.1 + fp, pooled.2 + fn_);
            f1_sum += f1(tp, fp, fn_);
            if let Some(auc) = roc_auc(scores, truths) {
                aucs.push((label, auc));
            }
            if let Some(ap) = average_precision(scores, truths) {
                aps.push(ap);
            }
        }
        let mut values = vec![
            metric("micro_f1", f1(pooled.0, pooled.1, pooled.2)),
            metric("macro_f1", f1_sum / self.truths.len() as f64),
        ];
        if !aucs.is_empty() {
            let mean = aucs.iter().map(|(_, auc)| auc).sum::<f64>() / aucs.len() as f64;
            values.push(metric("mean_auc", mean));
        }
        if !aps.is_empty() {
            // mAP over the labels that have a positive, as scikit-learn's macro average.
            values.push(metric(
                "mean_ap",
                aps.iter().sum::<f64>() / aps.len() as f64,
            ));
        }
        values.extend(
            aucs.into_iter()
                .map(|(label, auc)| metric(format!("auc_{label}"), auc)),
        );
        values
    }

    fn reset(&mut self) {
        self.scores.iter_mut().for_each(Vec::clear);
        self.truths.iter_mut().for_each(Vec::clear);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(values: &[MetricValue], name: &str) -> Option<f64> {
        values.iter().find(|v| v.name == name).map(|v| v.value)
    }

    fn grid(v: &[f32], labels: i64) -> Tensor {
        Tensor::from_slice(v).view([-1, labels])
    }

    #[test]
    fn metrics_by_hand_with_entry_masks() {
        let mut m = MultiLabelMetrics::new(3);
        assert!(m.compute().is_empty());
        // Predicted positive where the logit is above zero.
        let logits = grid(
            &[
                2.0, -1.0, 1.0, //
                -2.0, 3.0, 1.0, //
                1.0, -3.0, -1.0, //
                -1.0, 0.5, -2.0,
            ],
            3,
        );
        let truth = grid(
            &[
                1.0,
                0.0,
                0.0, //
                0.0,
                1.0,
                1.0, //
                0.0,
                f32::NAN,
                1.0, //
                1.0,
                1.0,
                0.0,
            ],
            3,
        );
        let mask = Tensor::from_slice(&[
            true, true, true, //
            true, true, true, //
            true, false, true, //
            true, true, true,
        ])
        .view([4, 3]);
        m.update(&logits, &TaskTarget::masked(truth, mask)).unwrap();
        // Label 0: pred [1, 0, 1, 0], truth [1, 0, 0, 1]: tp 1, fp 1, fn 1, F1 1/2.
        // Label 1 (row 2 unlabelled): pred [0, 1, 1], truth [0, 1, 1]: tp 2, F1 1.
        // Label 2: pred [1, 1, 0, 0], truth [0, 1, 1, 0]: tp 1, fp 1, fn 1, F1 1/2.
        let values = m.compute();
        assert_eq!(values[0].name, "micro_f1");
        assert!((values[0].value - 8.0 / 12.0).abs() < 1e-12);
        assert!((value(&values, "macro_f1").unwrap() - 2.0 / 3.0).abs() < 1e-12);
        // Label 0: positives score σ(2), σ(-1); negatives σ(-2), σ(1): 3 of 4 pairs.
        assert_eq!(value(&values, "auc_0"), Some(0.75));
        assert_eq!(value(&values, "auc_1"), Some(1.0));
        // Label 2: positives σ(1), σ(-1); negatives σ(1), σ(-2): 0.5 + 1 + 0 + 1 of 4.
        assert_eq!(value(&values, "auc_2"), Some(0.625));
        assert!((value(&values, "mean_auc").unwrap() - 2.375 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn undefined_aucs_are_left_out_of_the_mean() {
        let mut m = MultiLabelMetrics::new(2);
        let logits = grid(&[1.0, 1.0, -1.0, 2.0], 2);
        // Label 1 is positive in both rows; row masks apply to both labels.
        let truth = grid(&[1.0, 1.0, 0.0, 1.0], 2);
        m.update(&logits, &TaskTarget::new(truth)).unwrap();
        let names: Vec<String> = m.compute().into_iter().map(|v| v.name).collect();
        assert_eq!(
            names,
            ["micro_f1", "macro_f1", "mean_auc", "mean_ap", "auc_0"]
        );
        m.reset();
        let masked = TaskTarget::masked(
            grid(&[1.0, 0.0, 0.0, 0.0], 2),
            Tensor::from_slice(&[true, false]),
        );
        m.update(&logits, &masked).unwrap();
        let values = m.compute();
        // Only row 0 counts: label 0 right, label 1 a false positive.
        assert_eq!(value(&values, "micro_f1"), Some(2.0 / 3.0));
        assert_eq!(value(&values, "macro_f1"), Some(0.5));
        assert_eq!(value(&values, "mean_auc"), None);
    }

    #[test]
    fn bad_labels_name_their_batch_row() {
        let logits = Tensor::zeros([3, 2], (Kind::Float, Device::Cpu));
        let target = TaskTarget::new(grid(&[0.0, 1.0, 1.0, 0.0, 0.0, 2.0], 2));
        let err = multilabel_bce_with_logits(&logits, &target).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LabelOutOfRange {
                    row: 2,
                    label: 2,
                    classes: 2,
                    ..
                }
            ),
            "{err}"
        );
        let mut m = MultiLabelMetrics::new(2);
        let err = m.update(&logits, &target).unwrap_err();
        assert!(
            matches!(err, Error::LabelOutOfRange { row: 2, .. }),
            "{err}"
        );
        assert!(m.compute().is_empty(), "a failed update keeps nothing");
    }
}
