"""The plain-PyTorch twin of examples/multimnist.rs (docs/reproductions.md): the same
MultiMNIST construction, models and training protocol written directly in PyTorch (its
own random draws), so that mtl's numbers can be set beside what PyTorch gives on the same
protocol, and so that the paper's full budget can be run where a GPU is at hand.

Data: MNIST composites on a 36x36 canvas, brighter pixel wins where they overlap;
placement `fixed` (Sener & Koltun's released generator: left digit at (0, 0), right
digit at (6, 6), nearest-neighbour resize to 28x28) or `shifted` (each digit moved
0..4 pixels per axis towards the centre, area resize). Validation composites come from
10 000 held-out MNIST training digits, test composites from MNIST's test digits.
Models: `multilenet` (the authors' MultiLeNetR / MultiLeNetO: input standardised with
0.1307 / 0.3081, conv 1->10, pool, ReLU, conv 10->20, Dropout2d(0.5), pool, ReLU,
linear 320->50, ReLU; per task linear 50->50, ReLU, dropout 0.5, linear 50->10) or
`lenet` (the same trunk without the standardisation and dropout, a linear 50->10 head).
Training: `sgd` (momentum 0.9, lr 0.05, batch 256, lr x0.85 every 10 epochs) or `adam`
(lr 1e-3, batch 64); the epoch with the best validation accuracy (mean over tasks) is
kept. Methods: `single` (one network per digit), `ew` (uniform scaling, each loss
weighted 1/2), `mgda` (MGDA-UB: the two-task min-norm weights of the gradients with
respect to the shared representation, no normalisation).

    python examples/torch/multimnist_twin.py --mnist DIR [--train 10000] [--val 2000]
        [--test 10000] [--epochs 10] [--seeds 2] [--first-seed 0] [--placement fixed] [--model multilenet]
        [--optimizer sgd] [--methods single,ew,mgda] [--device cpu] [--out result.jsonl]

Each finished (method, seed) appends one JSON line to --out and prints it.
"""

import argparse
import copy
import gzip
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SIDE, CANVAS = 28, 36


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def resize_matrix(mode):
    scale = CANVAS / SIDE
    w = np.zeros((SIDE, CANVAS), dtype=np.float32)
    for o in range(SIDE):
        if mode == "nearest":
            w[o, min(int(np.floor((o + 0.5) * scale)), CANVAS - 1)] = 1.0
        else:
            lo, hi = o * scale, (o + 1) * scale
            for i in range(CANVAS):
                w[o, i] = max(0.0, min(hi, i + 1) - max(lo, i)) / scale
    return w


def compose(images, labels, pool, n, placement, rng):
    """n composites from the digits in `pool`: left digits run through shuffles of the
    pool, right digits are drawn at random (another digit than the left one)."""
    resize = resize_matrix("nearest" if placement == "fixed" else "area")
    x = np.zeros((n, SIDE * SIDE), dtype=np.float32)
    yl = np.zeros(n, dtype=np.int64)
    yr = np.zeros(n, dtype=np.int64)
    order = []
    for i in range(n):
        if i % len(pool) == 0:
            order = rng.permutation(pool)
        left = order[i % len(pool)]
        right = pool[rng.integers(len(pool))]
        while right == left:
            right = pool[rng.integers(len(pool))]
        if placement == "fixed":
            (lt, ll), (rt, rl) = (0, 0), (6, 6)
        else:
            far = CANVAS - SIDE
            lt, ll = rng.integers(0, 5, size=2)
            up, back = rng.integers(0, 5, size=2)
            rt, rl = far - up, far - back
        canvas = np.zeros((CANVAS, CANVAS), dtype=np.uint8)
        canvas[lt : lt + SIDE, ll : ll + SIDE] = images[left]
        region = canvas[rt : rt + SIDE, rl : rl + SIDE]
        canvas[rt : rt + SIDE, rl : rl + SIDE] = np.maximum(region, images[right])
        x[i] = (resize @ (canvas.astype(np.float32) / 255.0) @ resize.T).reshape(-1)
        yl[i], yr[i] = labels[left], labels[right]
    return x, yl, yr


def make_split(args, seed):
    rd = lambda name: read_idx(os.path.join(args.mnist, name))
    tr_x, tr_y = rd("train-images-idx3-ubyte.gz"), rd("train-labels-idx1-ubyte.gz")
    te_x, te_y = rd("t10k-images-idx3-ubyte.gz"), rd("t10k-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(seed)
    pool = rng.permutation(len(tr_y))
    train_pool, val_pool = pool[:-10_000], pool[-10_000:]
    parts = {
        "train": compose(tr_x, tr_y, train_pool, args.train, args.placement, rng),
        "val": compose(tr_x, tr_y, val_pool, args.val, args.placement, rng),
        "test": compose(te_x, te_y, np.arange(len(te_y)), args.test, args.placement, rng),
    }
    return {
        k: tuple(torch.from_numpy(a).to(args.device) for a in v) for k, v in parts.items()
    }


class Trunk(nn.Module):
    def __init__(self, paper):
        super().__init__()
        self.paper = paper
        self.conv1 = nn.Conv2d(1, 10, 5)
        self.conv2 = nn.Conv2d(10, 20, 5)
        self.fc = nn.Linear(320, 50)

    def forward(self, x):
        if self.paper:
            x = (x - 0.1307) / 0.3081
        h = F.relu(F.max_pool2d(self.conv1(x.view(-1, 1, SIDE, SIDE)), 2))
        h = self.conv2(h)
        if self.paper:
            h = F.dropout2d(h, 0.5, self.training)
        h = F.relu(F.max_pool2d(h, 2))
        return F.relu(self.fc(h.flatten(1)))


def head(paper):
    if paper:
        return nn.Sequential(nn.Linear(50, 50), nn.ReLU(), nn.Dropout(0.5), nn.Linear(50, 10))
    return nn.Linear(50, 10)


class Net(nn.Module):
    def __init__(self, tasks, paper):
        super().__init__()
        self.trunk = Trunk(paper)
        self.heads = nn.ModuleList([head(paper) for _ in tasks])
        self.tasks = tasks


def accuracy(net, x, ys):
    net.eval()
    with torch.no_grad():
        z = torch.cat([net.trunk(x[i : i + 2000]) for i in range(0, len(x), 2000)])
        accs = [
            (h(z).argmax(1) == ys[t]).float().mean().item()
            for h, t in zip(net.heads, net.tasks)
        ]
    net.train()
    return accs


def min_norm_2(g1, g2):
    """The weight on g1 of the min-norm point of the segment [g1, g2]."""
    diff = g1 - g2
    denom = diff.dot(diff)
    if denom.item() == 0.0:
        return 0.5
    return float(((g2 - g1).dot(g2) / denom).clamp(0.0, 1.0))


def fit(args, split, tasks, method, seed):
    torch.manual_seed(seed)
    paper = args.model == "multilenet"
    net = Net(tasks, paper).to(args.device)
    if args.optimizer == "sgd":
        opt, batch = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9), 256
    else:
        opt, batch = torch.optim.Adam(net.parameters(), lr=1e-3), 64
    x, *ys = split["train"]
    vx, *vys = split["val"]
    tx, *tys = split["test"]
    best, best_epoch, best_state = -1.0, 0, None
    for epoch in range(args.epochs):
        if args.optimizer == "sgd" and epoch > 0 and epoch % 10 == 0:
            for g in opt.param_groups:
                g["lr"] *= 0.85
        perm = torch.randperm(len(x), device=args.device)
        for i in range(0, len(x), batch):
            idx = perm[i : i + batch]
            z = net.trunk(x[idx])
            losses = [
                F.cross_entropy(h(z), ys[t][idx]) for h, t in zip(net.heads, tasks)
            ]
            if method == "mgda":
                g = [
                    torch.autograd.grad(l, z, retain_graph=True)[0].flatten()
                    for l in losses
                ]
                w1 = min_norm_2(g[0], g[1])
                weights = [w1, 1.0 - w1]
            elif method == "ew":
                weights = [0.5, 0.5]
            else:
                weights = [1.0]
            opt.zero_grad()
            sum(w * l for w, l in zip(weights, losses)).backward()
            opt.step()
        val = accuracy(net, vx, [vys[t] for t in range(2)])
        score = float(np.mean([val[k] for k in range(len(tasks))]))
        if score > best:
            best, best_epoch, best_state = score, epoch + 1, copy.deepcopy(net.state_dict())
        if (epoch + 1) % 10 == 0:
            print(f"  {method} seed {seed} epoch {epoch + 1}: validation {score:.4f}", flush=True)
    net.load_state_dict(best_state)
    return accuracy(net, tx, [tys[t] for t in range(2)]), best_epoch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mnist", required=True)
    p.add_argument("--train", type=int, default=10_000)
    p.add_argument("--val", type=int, default=2_000)
    p.add_argument("--test", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--placement", default="fixed", choices=["fixed", "shifted"])
    p.add_argument("--model", default="multilenet", choices=["multilenet", "lenet"])
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    p.add_argument("--methods", default="single,ew,mgda")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="multimnist_twin.jsonl")
    args = p.parse_args()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        split = make_split(args, seed)
        for method in args.methods.split(","):
            t = time.time()
            if method == "single":
                acc, best = [], []
                for k in range(2):
                    # Heads index tasks by position: relabel task k as the only task.
                    solo = {
                        part: (v[0], v[1 + k], v[1 + k]) for part, v in split.items()
                    }
                    a, b = fit(args, solo, [0], method, seed)
                    acc.append(a[0])
                    best.append(b)
            else:
                acc, best = fit(args, split, [0, 1], method, seed)
                best = [best]
            line = {
                "method": method,
                "seed": seed,
                "test_acc": acc,
                "best_epoch": best,
                "seconds": time.time() - t,
                **{k: getattr(args, k) for k in ["train", "val", "test", "epochs", "placement", "model", "optimizer"]},
            }
            print(json.dumps(line), flush=True)
            with open(args.out, "a") as f:
                f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
