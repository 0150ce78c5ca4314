"""Golden entity spans and span F1 from seqeval 1.2.2 (pip install seqeval==1.2.2),
for crates/mtl-heads/tests/bio.rs. Run: python make_seqeval_spans.py > seqeval_spans.json"""
import json
import random

from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import get_entities

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-ORG", "S-ORG", "I-ORG"]
rng = random.Random(0)
cases, true, pred = [], [], []
for _ in range(200):
    n = rng.randint(1, 12)
    seq = [rng.choice(TAGS) for _ in range(n)]
    # get_entities' ends are inclusive; the Rust spans end one past.
    cases.append({"tags": seq, "spans": [[t, s, e + 1] for t, s, e in get_entities(seq)]})
    # A prediction: the truth with a third of its tags redrawn.
    true.append(seq)
    pred.append([t if rng.random() > 1 / 3 else rng.choice(TAGS) for t in seq])
print(json.dumps({
    "cases": cases,
    "true": true,
    "pred": pred,
    "f1": f1_score(true, pred),
    "precision": precision_score(true, pred),
    "recall": recall_score(true, pred),
}))
