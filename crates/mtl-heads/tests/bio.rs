//! Text heads. Entity spans and span F1 against seqeval 1.2.2
//! (tests/data/make_seqeval_spans.py):
//! 200 random BIO/IOBES sequences with their entities, and the micro F1, precision and
//! recall of noisy predictions, through the same path a tagging head's metrics take.
//! The QA span head: padding never answers, SQuAD exact match and overlap F1, learning.

use mtl_core::TaskTarget;
use mtl_heads::{bio_spans, SequenceHead, SpanF1, TaskHead};
use serde_json::Value;
use tch::nn::OptimizerConfig;
use tch::{nn, Device, Kind, Tensor};

const TAGS: [&str; 8] = [
    "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-ORG", "S-ORG", "I-ORG",
];

fn golden() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/seqeval_spans.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn spans_match_seqeval_on_every_case() {
    for case in golden()["cases"].as_array().unwrap() {
        let tags = strings(&case["tags"]);
        let got: Vec<(String, usize, usize)> = bio_spans(&tags)
            .into_iter()
            .map(|s| (s.kind, s.start, s.end))
            .collect();
        let want: Vec<(String, usize, usize)> = case["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s[0].as_str().unwrap().to_string(),
                    s[1].as_u64().unwrap() as usize,
                    s[2].as_u64().unwrap() as usize,
                )
            })
            .collect();
        assert_eq!(got, want, "{tags:?}");
    }
}

/// Pads tag-id sequences to one length with -1 (the head's padding label).
fn padded(seqs: &[Vec<String>]) -> Tensor {
    let t = seqs.iter().map(Vec::len).max().unwrap();
    let ids: Vec<i64> = seqs
        .iter()
        .flat_map(|s| {
            s.iter()
                .map(|tag| TAGS.iter().position(|x| x == tag).unwrap() as i64)
                .chain(std::iter::repeat(-1))
                .take(t)
        })
        .collect();
    Tensor::from_slice(&ids).view([seqs.len() as i64, t as i64])
}

#[test]
fn span_f1_matches_seqeval_through_a_tagging_heads_metrics() {
    let g = golden();
    let as_seqs =
        |v: &Value| -> Vec<Vec<String>> { v.as_array().unwrap().iter().map(strings).collect() };
    let (truth, pred) = (as_seqs(&g["true"]), as_seqs(&g["pred"]));
    // Logits that predict `pred`; padding positions predict anything.
    let pred_ids = padded(&pred).clamp_min(0);
    let logits = pred_ids.one_hot(TAGS.len() as i64).to_kind(Kind::Float);
    let names: Vec<String> = TAGS.iter().map(|s| s.to_string()).collect();
    let vs = nn::VarStore::new(Device::Cpu);
    let head = SequenceHead::new(&(vs.root() / "task0" / "head"), "ner", 4, 8)
        .unwrap()
        .with_bio_tags(names.clone())
        .unwrap();
    let mut m = head.metrics();
    // In two batches, as an evaluation would.
    let target = padded(&truth);
    for (lo, n) in [(0, 120), (120, 80)] {
        m.update(
            &logits.narrow(0, lo, n),
            &TaskTarget::new(target.narrow(0, lo, n)),
        )
        .unwrap();
    }
    let v = m.compute();
    let get = |name: &str| v.iter().find(|x| x.name == name).unwrap().value;
    for (name, key) in [
        ("span_f1", "f1"),
        ("span_precision", "precision"),
        ("span_recall", "recall"),
    ] {
        assert!(
            (get(name) - g[key].as_f64().unwrap()).abs() < 1e-12,
            "{name}"
        );
    }
    assert_eq!(v[0].name, "span_f1");
    // Tag names that are not BIO, or one too few, are refused.
    assert!(SpanF1::new(vec!["O".into(), "X-PER".into()]).is_err());
    assert!(
        SequenceHead::new(&(vs.root() / "task1" / "head"), "ner", 4, 8)
            .unwrap()
            .with_bio_tags(names[..7].to_vec())
            .is_err()
    );
}

#[test]
fn the_span_head_answers_within_real_tokens_and_scores_like_squad() {
    use mtl_heads::SpanHead;
    // The layer and the features are drawn from libtorch's generator: seeded, so the
    // learning check below sees the same problem every run.
    let _rng = mtl_core::torch_rng_lock();
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let head = SpanHead::new(&(vs.root() / "task0" / "head"), "answer", 4).unwrap();
    // Two sequences of 5 positions; the second's last two are padding (zero features).
    let features = Tensor::randn([2, 5, 4], (Kind::Float, Device::Cpu));
    let _ = features.get(1).narrow(0, 3, 2).zero_();
    let logits = head.forward_t(&features, false).unwrap();
    // Padded positions can never be the answer.
    assert!(logits.get(1).narrow(0, 3, 2).max().double_value(&[]) < -1e8);
    // Metrics: logits that pick (1, 2) and (0, 0) against truths (1, 2) and (0, 1).
    let picked = Tensor::full([2, 5, 2], -5.0, (Kind::Float, Device::Cpu));
    for (b, s, e) in [(0, 1, 2), (1, 0, 0)] {
        let _ = picked.get(b).get(s).get(0).fill_(5.0);
        let _ = picked.get(b).get(e).get(1).fill_(5.0);
    }
    let truth = Tensor::from_slice(&[1i64, 2, 0, 1]).view([2, 2]);
    let mut m = head.metrics();
    m.update(&picked, &TaskTarget::new(truth.copy())).unwrap();
    let v = m.compute();
    assert_eq!((v[0].name.as_str(), v[0].value), ("exact_match", 0.5));
    // Row 1: predicted 1 token, true 2, overlap 1: P 1, R 1/2, F1 2/3.
    assert!((v[1].value - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
    // Learning: a few steps of plain gradient descent find the answers.
    let mut sgd = tch::nn::Sgd::default().build(&vs, 0.5).unwrap();
    let first = head
        .loss(
            &head.forward_t(&features, true).unwrap(),
            &TaskTarget::new(truth.copy()),
        )
        .unwrap()
        .double_value(&[]);
    for _ in 0..200 {
        let loss = head
            .loss(
                &head.forward_t(&features, true).unwrap(),
                &TaskTarget::new(truth.copy()),
            )
            .unwrap();
        sgd.backward_step(&loss);
    }
    let last = head
        .loss(
            &head.forward_t(&features, true).unwrap(),
            &TaskTarget::new(truth.copy()),
        )
        .unwrap()
        .double_value(&[]);
    assert!(last < 0.5 * first, "{first} -> {last}");
    // An answer that is not a span of the sequence names the row.
    let bad = Tensor::from_slice(&[3i64, 1, 0, 0]).view([2, 2]);
    let err = head
        .loss(&logits, &TaskTarget::new(bad))
        .unwrap_err()
        .to_string();
    assert!(err.contains("row 0") && err.contains("(3, 1)"), "{err}");
    // No labelled sequence: an exact zero.
    let none = TaskTarget::masked(truth, Tensor::from_slice(&[false, false]));
    assert_eq!(head.loss(&logits, &none).unwrap().double_value(&[]), 0.0);
}
