//! Metric values computed from whole prediction and truth vectors.
//!
//! Predictions and truths are paired element by element; when one slice is longer its
//! extra elements are ignored. A mean over no pairs is NaN (0/0), which the accumulators
//! never produce because they report nothing for an empty evaluation.

/// The fraction of predicted classes equal to the true class. NaN for empty input.
///
/// ```
/// assert_eq!(mtl_heads::metrics::accuracy(&[0, 1, 2, 2], &[0, 1, 1, 2]), 0.75);
/// ```
pub fn accuracy(pred: &[i64], truth: &[i64]) -> f64 {
    let n = pred.len().min(truth.len());
    let hits = pred.iter().zip(truth).filter(|(p, t)| p == t).count();
    hits as f64 / n as f64
}

/// The unweighted mean over classes `0..classes` of each class's F1 score.
///
/// A class's F1 is `2·tp / (2·tp + fp + fn)`; when that is 0/0 (the class is neither
/// predicted nor present) it counts as 0, as scikit-learn does with `zero_division=0`.
/// The mean runs over all `classes`, including classes absent from both slices, which
/// matches scikit-learn's `f1_score(..., average="macro", labels=range(classes))` (not
/// its default, which averages over the classes that occur). Values outside
/// `0..classes` count as errors against the other side's class. NaN when `classes < 1`.
///
/// ```
/// use mtl_heads::metrics::macro_f1;
/// // Class 0: F1 = 2/4, class 1: 4/5, class 2: never predicted, F1 = 0.
/// let f1 = macro_f1(&[0, 1, 1, 1, 0], &[0, 0, 1, 1, 2], 3);
/// assert!((f1 - (0.5 + 0.8 + 0.0) / 3.0).abs() < 1e-12);
/// ```
pub fn macro_f1(pred: &[i64], truth: &[i64], classes: i64) -> f64 {
    if classes < 1 {
        return f64::NAN;
    }
    let k = classes as usize;
    let class = |c: i64| usize::try_from(c).ok().filter(|&c| c < k);
    // (true positives, false positives, false negatives) per class.
    let mut counts = vec![(0u64, 0u64, 0u64); k];
    for (&p, &t) in pred.iter().zip(truth) {
        if p == t {
            if let Some(c) = class(p) {
                counts[c].0 += 1;
            }
        } else {
            if let Some(c) = class(p) {
                counts[c].1 += 1;
            }
            if let Some(c) = class(t) {
                counts[c].2 += 1;
            }
        }
    }
    let f1_sum: f64 = counts
        .iter()
        .map(|&(tp, fp, fn_)| {
            let denominator = 2 * tp + fp + fn_;
            if denominator == 0 {
                0.0
            } else {
                (2 * tp) as f64 / denominator as f64
            }
        })
        .sum();
    f1_sum / k as f64
}

/// The area under the ROC curve of `scores` for the positive `labels`.
///
/// Computed from ranks (the Mann–Whitney U statistic over positives × negatives), with
/// tied scores given their average rank, so a tie between a positive and a negative
/// counts one half. `None` when the AUC is undefined: only one class present, a NaN
/// score, or slices of different lengths.
///
/// ```
/// use mtl_heads::metrics::roc_auc;
/// assert_eq!(roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]), Some(0.75));
/// assert_eq!(roc_auc(&[0.3, 0.3], &[false, true]), Some(0.5));
/// assert_eq!(roc_auc(&[0.3, 0.9], &[true, true]), None);
/// ```
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    if scores.len() != labels.len() || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let n = scores.len();
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = n - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut positive_rank_sum = 0.0;
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        // 1-based ranks start+1..=end share their mean.
        let rank = (start + 1 + end) as f64 / 2.0;
        let tied_positives = order[start..end].iter().filter(|&&i| labels[i]).count();
        positive_rank_sum += rank * tied_positives as f64;
        start = end;
    }
    let (p, q) = (positives as f64, negatives as f64);
    let u = positive_rank_sum - p * (p + 1.0) / 2.0;
    Some(u / (p * q))
}

/// Average precision, as scikit-learn's `average_precision_score`: the precision at
/// each distinct score threshold, from the highest down, weighted by the recall it adds,
/// `AP = Σₙ (Rₙ − Rₙ₋₁)·Pₙ` (no interpolation). Tied scores form one threshold. `None`
/// without a positive label, with a NaN score, or for slices of different lengths.
///
/// ```
/// use mtl_heads::metrics::average_precision;
/// // sklearn: average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.8333…
/// let ap = average_precision(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
/// assert!((ap - 5.0 / 6.0).abs() < 1e-12);
/// assert_eq!(average_precision(&[0.3, 0.9], &[false, false]), None);
/// ```
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Option<f64> {
    if scores.len() != labels.len() || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let positives = labels.iter().filter(|&&l| l).count();
    if positives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut seen, mut ap, mut recall) = (0usize, 0usize, 0.0, 0.0);
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        tp += order[start..end].iter().filter(|&&i| labels[i]).count();
        seen += end - start;
        let r = tp as f64 / positives as f64;
        ap += (r - recall) * (tp as f64 / seen as f64);
        recall = r;
        start = end;
    }
    Some(ap)
}

/// The mean squared difference. NaN for empty input.
///
/// ```
/// assert_eq!(mtl_heads::metrics::mse(&[1.0, 2.0], &[1.0, 4.0]), 2.0);
/// ```
pub fn mse(pred: &[f64], truth: &[f64]) -> f64 {
    mean(pred.iter().zip(truth).map(|(p, t)| (p - t) * (p - t)))
}

/// The mean absolute difference. NaN for empty input.
///
/// ```
/// assert_eq!(mtl_heads::metrics::mae(&[1.0, 2.0], &[1.0, 4.0]), 1.0);
/// ```
pub fn mae(pred: &[f64], truth: &[f64]) -> f64 {
    mean(pred.iter().zip(truth).map(|(p, t)| (p - t).abs()))
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    sum / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn macro_f1_by_hand() {
        let pred = [0, 1, 1, 1, 0];
        let truth = [0, 0, 1, 1, 2];
        let f1 = macro_f1(&pred, &truth, 3);
        assert!((f1 - 1.3 / 3.0).abs() < 1e-12);
        // A fourth class absent from both still counts, as 0.
        assert!((macro_f1(&pred, &truth, 4) - 1.3 / 4.0).abs() < 1e-12);
        assert_eq!(macro_f1(&[0, 1], &[0, 1], 2), 1.0);
        assert_eq!(macro_f1(&[], &[], 2), 0.0);
        assert!(macro_f1(&[0], &[0], 0).is_nan());
    }

    #[test]
    fn roc_auc_by_hand() {
        assert_eq!(
            roc_auc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]),
            Some(1.0)
        );
        assert_eq!(
            roc_auc(&[0.9, 0.8, 0.2, 0.1], &[false, false, true, true]),
            Some(0.0)
        );
        // Every score tied: each positive/negative pair counts one half.
        assert_eq!(roc_auc(&[0.5; 4], &[false, true, true, false]), Some(0.5));
        // Positives {0.5, 0.9}, negatives {0.5, 0.1}: pairs won 1, 1, 0.5 (tie), 1 of 4.
        assert_eq!(
            roc_auc(&[0.5, 0.9, 0.5, 0.1], &[true, true, false, false]),
            Some(0.875)
        );
        assert_eq!(roc_auc(&[0.1, 0.2], &[false, false]), None);
        assert_eq!(roc_auc(&[f64::NAN, 0.2], &[true, false]), None);
        assert_eq!(roc_auc(&[0.1], &[true, false]), None);
    }

    #[test]
    fn means_by_hand() {
        assert_eq!(accuracy(&[1, 2, 3], &[1, 0, 3]), 2.0 / 3.0);
        assert!(accuracy(&[], &[]).is_nan());
        assert_eq!(mse(&[0.0, 1.0, 2.0], &[1.0, 1.0, 0.0]), 5.0 / 3.0);
        assert_eq!(mae(&[0.0, 1.0, 2.0], &[1.0, 1.0, 0.0]), 1.0);
        assert!(mse(&[], &[]).is_nan());
    }

    proptest! {
        #[test]
        fn accuracy_is_a_fraction(pairs in prop::collection::vec((0i64..4, 0i64..4), 1..50)) {
            let (pred, truth): (Vec<i64>, Vec<i64>) = pairs.into_iter().unzip();
            let acc = accuracy(&pred, &truth);
            prop_assert!((0.0..=1.0).contains(&acc));
            prop_assert_eq!(accuracy(&truth, &truth), 1.0);
            // Perfect predictions score 1 on each class present and 0 on the others.
            let present = (0..4).filter(|c| truth.contains(c)).count();
            prop_assert_eq!(macro_f1(&truth, &truth, 4), present as f64 / 4.0);
            let f1 = macro_f1(&pred, &truth, 4);
            prop_assert!((0.0..=1.0).contains(&f1));
        }

        #[test]
        fn auc_flips_with_the_scores(
            rows in prop::collection::vec((-3i32..3, any::<bool>()), 2..40),
        ) {
            // Small integer scores make ties common.
            let scores: Vec<f64> = rows.iter().map(|r| f64::from(r.0)).collect();
            let labels: Vec<bool> = rows.iter().map(|r| r.1).collect();
            let both = labels.iter().any(|&l| l) && labels.iter().any(|&l| !l);
            let auc = roc_auc(&scores, &labels);
            prop_assert_eq!(auc.is_some(), both);
            if let Some(auc) = auc {
                prop_assert!((0.0..=1.0).contains(&auc));
                let negated: Vec<f64> = scores.iter().map(|s| -s).collect();
                let flipped = roc_auc(&negated, &labels).unwrap();
                prop_assert!((auc + flipped - 1.0).abs() < 1e-12);
                // It is the fraction of positive/negative pairs ranked right, ties half.
                let mut won = 0.0;
                let mut pairs = 0.0;
                for (i, &si) in scores.iter().enumerate() {
                    for (j, &sj) in scores.iter().enumerate() {
                        if labels[i] && !labels[j] {
                            pairs += 1.0;
                            won += if si > sj { 1.0 } else if si == sj { 0.5 } else { 0.0 };
                        }
                    }
                }
                prop_assert!((auc - won / pairs).abs() < 1e-12);
            }
        }
    }
}
