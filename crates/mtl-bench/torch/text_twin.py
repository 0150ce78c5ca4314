"""W6's plain-PyTorch twin: the text workload's network in torch.nn, timed per training
step on the batches `mtl-bench` trained on, so the runner can report PyTorch ms/step
divided by mtl ms/step in the same run.

`mtl-bench --workloads text --torch-python PY` (or `cargo xtask bench --peer
--workloads text`) writes the batches to an .npz file and runs this script beside its
own rows; it can also be run by hand:

    python text_twin.py --data batches.npz --steps 30 --warmup 10 --threads 2 --out rows.json

The network is `mtl_core::TransformerConfig::new(8192, 128)` (d 256, 4 heads, 4 layers,
FFN 1024, dropout 0.1, padding id 0) with a `[CLS]` sentence head and a token head, as
`torch.nn` spells it: token embeddings (nn.Embedding) plus learned position embeddings,
dropout, `nn.TransformerEncoder` of `nn.TransformerEncoderLayer(norm_first=True,
batch_first=True, activation="gelu")` with a final LayerNorm, the padding given as
`src_key_padding_mask`; heads Linear(256, 4) on position 0 (cross-entropy) and
Linear(256, 9) on every token (cross-entropy ignoring tag -1). The parameter count is
printed and, with --expect-params (the runner passes mtl's), must be equal.

Methods, each a plain loop a PyTorch user would write (Adam, lr 1e-3):
  EW      sum of the losses, one backward.
  PCGrad  one torch.autograd.grad per task (embeddings and encoder, and that task's
          head), the shared rows stacked into a K x d matrix, LibMTL's PCGrad projection
          (each row against the others in a random order, then summed), written back to
          the shared .grad.

As the runner does for its own rows, a method whose warm-up predicts more than
--budget-s seconds of timed steps times fewer (never fewer than --min-steps).
"""

import argparse
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

VOCAB, MAX_LEN, D, HEADS, LAYERS, FF, DROPOUT = 8192, 128, 256, 4, 4, 1024, 0.1
CLASSES, TAGS = 4, 9


class TextNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, D)
        self.pos = nn.Embedding(MAX_LEN, D)
        self.drop = nn.Dropout(DROPOUT)
        layer = nn.TransformerEncoderLayer(
            D, HEADS, dim_feedforward=FF, dropout=DROPOUT, activation="gelu",
            batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(
            layer, LAYERS, norm=nn.LayerNorm(D), enable_nested_tensor=False)
        self.cls = nn.Linear(D, CLASSES)
        self.tag = nn.Linear(D, TAGS)

    def encode(self, ids):
        h = self.drop(self.tok(ids) + self.pos.weight[: ids.shape[1]])
        return self.encoder(h, src_key_padding_mask=ids == 0)


def losses(model, z, sentence, tags):
    l_sentence = F.cross_entropy(model.cls(z[:, 0]), sentence)
    l_tags = F.cross_entropy(
        model.tag(z).reshape(-1, TAGS), tags.reshape(-1), ignore_index=-1)
    return [l_sentence, l_tags]


def pcgrad(grads, gen):
    """LibMTL's PCGrad on a K x d matrix: each row projected off the rows it conflicts
    with, in a random order, then the rows summed."""
    k = grads.shape[0]
    pc = grads.clone()
    for i in range(k):
        for j in torch.randperm(k, generator=gen).tolist():
            g_ij = torch.dot(pc[i], grads[j])
            if g_ij < 0:
                pc[i] -= g_ij * grads[j] / (grads[j].norm().pow(2))
    return pc.sum(0)


def make_step(method, model, opt, seed):
    shared = (list(model.tok.parameters()) + list(model.pos.parameters())
              + list(model.encoder.parameters()))
    own = [list(model.cls.parameters()), list(model.tag.parameters())]
    # CPU generator: the permutation is drawn on the host, as LibMTL's random.shuffle.
    gen = torch.Generator().manual_seed(seed)

    def ew(batch):
        opt.zero_grad()
        ids, sentence, tags = batch
        ls = losses(model, model.encode(ids), sentence, tags)
        sum(ls).backward()
        opt.step()

    def pc(batch):
        opt.zero_grad()
        ids, sentence, tags = batch
        ls = losses(model, model.encode(ids), sentence, tags)
        rows = []
        for t, loss in enumerate(ls):
            gs = torch.autograd.grad(loss, shared + own[t], retain_graph=t + 1 < len(ls))
            rows.append(torch.cat([g.reshape(-1) for g in gs[:len(shared)]]))
            for p, g in zip(own[t], gs[len(shared):]):
                p.grad = g
        g = pcgrad(torch.stack(rows), gen)
        offset = 0
        for p in shared:
            n = p.numel()
            p.grad = g[offset:offset + n].view_as(p)
            offset += n
        opt.step()

    return {"EW": ew, "PCGrad": pc}[method]


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def percentile_ms(times, q):
    return float(np.percentile(np.asarray(times) * 1e3, q))


def decide_steps(steps, warm, budget_s, min_steps):
    """The runner's `decide_steps`: the median of the second half of the warm-up times
    estimates a step; past the budget, time fewer steps (at least min_steps)."""
    tail = sorted(warm[len(warm) // 2:])
    est = float(np.percentile(tail, 50)) if tail else 0.0
    n = steps
    if budget_s > 0 and est > 0 and est * steps > budget_s:
        n = max(min_steps, int(budget_s / est))
    return max(1, min(n, steps)), est


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="the .npz batches mtl-bench wrote")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default="EW,PCGrad")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--expect-params", type=int, default=None,
                    help="mtl's parameter count; fail unless equal")
    ap.add_argument("--budget-s", type=float, default=40.0)
    ap.add_argument("--min-steps", type=int, default=30)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    data = np.load(a.data)
    batches = [
        tuple(torch.from_numpy(np.ascontiguousarray(data[key][i])).to(a.device)
              for key in ("x", "sentence", "tags"))
        for i in range(data["x"].shape[0])
    ]
    rows = []
    for method in [m for m in a.methods.split(",") if m]:
        torch.manual_seed(a.seed)
        model = TextNet().to(a.device)
        model.train()
        params = sum(p.numel() for p in model.parameters())
        print(f"text twin: {params} parameters"
              + ("" if a.expect_params is None else f" (mtl: {a.expect_params})"),
              file=sys.stderr)
        if a.expect_params is not None and params != a.expect_params:
            sys.exit(f"text twin: {params} parameters, mtl's model has {a.expect_params}")
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        step = make_step(method, model, opt, a.seed)
        t_start = time.perf_counter()
        warm = []
        for i in range(a.warmup):
            t0 = time.perf_counter()
            step(batches[i % len(batches)])
            sync(a.device)
            warm.append(time.perf_counter() - t0)
        steps, est = decide_steps(a.steps, warm, a.budget_s, a.min_steps)
        times = []
        for i in range(a.warmup, a.warmup + steps):
            t0 = time.perf_counter()
            step(batches[i % len(batches)])
            sync(a.device)
            times.append(time.perf_counter() - t0)
        rows.append({
            "impl": "torch_plain", "workload": "text", "method": method,
            "median_ms": percentile_ms(times, 50), "p10_ms": percentile_ms(times, 10),
            "p90_ms": percentile_ms(times, 90), "steps": len(times), "warmup": a.warmup,
            "steps_reduced": steps < a.steps, "warmup_est_ms": est * 1e3,
            "wall_s": time.perf_counter() - t_start, "status": "ok",
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "params": params, "params_mtl": a.expect_params,
        })
    with open(a.out, "w") as f:
        json.dump({"rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
