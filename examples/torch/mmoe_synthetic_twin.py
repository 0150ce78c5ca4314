"""The plain-PyTorch twin of examples/mmoe_synthetic.rs (docs/reproductions.md): the same
construction of the data of Ma et al. (KDD 2018, section 3.2), the same three models and
the same training, written directly in PyTorch (the data drawn with torch's generator), so that mtl's numbers can be set beside
what PyTorch gives on the same protocol (the draws differ: torch's generator, not mtl's ChaCha8).

Data: d = 100, c = 1, m = 10 sinusoids, alpha_j, beta_j ~ N(0, 1) drawn per seed,
label noise of variance 0.01; 10 000 training and 1 000 test rows. Models: shared bottom
100 -> 113 (ReLU); OMoE / MMoE with 8 experts 100 -> 16 (ReLU) and softmax gates (one
shared, or one per task); towers 8 (ReLU) -> 1 per task. Adam, the sum of the two MSEs,
batch 128, 30 epochs. Prints the mean test MSE of the two tasks per (correlation, model,
seed), then the mean and standard deviation over seeds.

    python examples/torch/mmoe_synthetic_twin.py --seeds 5 [--first-seed 5]
        [--correlations 1.0,0.5,0.0] [--lr 1e-2] [--epochs 30]

(any Python with torch; the LibMTL peer virtualenv of `cargo xtask bench --peer`,
~/.cache/mtl/peer-venv, has one.)
"""

import argparse
import math

import statistics

import torch
from torch import nn

DIM, TRAIN, TEST = 100, 10_000, 1_000


def make_data(p, seed, rows):
    g = torch.Generator().manual_seed(10_000 + seed)

    def normal(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    u1 = normal(DIM)
    u1 /= u1.norm()
    u2 = normal(DIM)
    u2 -= (u2 @ u1) * u1
    u2 /= u2.norm()
    w1, w2 = u1, p * u1 + math.sqrt(max(0.0, 1 - p * p)) * u2
    alpha, beta = normal(10), normal(10)
    x = normal(rows, DIM)

    def label(w):
        z = x @ w
        return z + torch.sin(z[:, None] * alpha + beta).sum(1) + 0.1 * normal(rows)

    ys = torch.stack([label(w1), label(w2)], 1)
    return x.float(), ys.float()


class Model(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        if kind == 'shared-bottom':
            self.bottom = nn.Sequential(nn.Linear(DIM, 113), nn.ReLU())
            width = 113
        else:
            self.experts = nn.ModuleList(
                nn.Sequential(nn.Linear(DIM, 16), nn.ReLU()) for _ in range(8))
            gates = 1 if kind == 'OMoE' else 2
            self.gates = nn.ModuleList(nn.Linear(DIM, 8) for _ in range(gates))
            width = 16
        self.towers = nn.ModuleList(
            nn.Sequential(nn.Linear(width, 8), nn.ReLU(), nn.Linear(8, 1)) for _ in range(2))

    def forward(self, x):
        if self.kind == 'shared-bottom':
            feats = [self.bottom(x)] * 2
        else:
            e = torch.stack([f(x) for f in self.experts], 1)  # [B, E, D]
            mixed = [(torch.softmax(g(x), -1).unsqueeze(-1) * e).sum(1) for g in self.gates]
            feats = mixed * 2 if len(mixed) == 1 else mixed
        return torch.cat([t(h) for t, h in zip(self.towers, feats)], 1)


def run(kind, p, seed, lr, epochs):
    x, y = make_data(p, seed, TRAIN + TEST)
    xtr, ytr, xte, yte = x[:TRAIN], y[:TRAIN], x[TRAIN:], y[TRAIN:]
    torch.manual_seed(seed)
    model = Model(kind)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(TRAIN, generator=gen)
        for i in range(0, TRAIN, 128):
            idx = perm[i:i + 128]
            loss = ((model(xtr[idx]) - ytr[idx]) ** 2).mean(0).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return ((model(xte) - yte) ** 2).mean().item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seeds', type=int, default=5)
    ap.add_argument('--first-seed', type=int, default=0)
    ap.add_argument('--epochs', type=int, default=30)
    ap.add_argument('--lr', type=float, default=1e-2)
    ap.add_argument('--correlations', default='1.0,0.5,0.0')
    args = ap.parse_args()
    torch.set_num_threads(1)
    kinds = ['shared-bottom', 'OMoE', 'MMoE']
    out = {}
    for p in [float(v) for v in args.correlations.split(',')]:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for kind in kinds:
                mse = run(kind, p, seed, args.lr, args.epochs)
                out.setdefault((p, kind), []).append(mse)
                print(f'{p:4.1f} {kind:>14} seed {seed}: test mse {mse:.4f}', flush=True)
    print('\ncorrelation ' + ' '.join(f'{k:>22}' for k in kinds))
    for p in sorted({p for p, _ in out}, reverse=True):
        cells = [out[(p, k)] for k in kinds]
        print(f'{p:11.1f} ' + ' '.join(
            f'{statistics.mean(c):>13.3f} ± {statistics.stdev(c) if len(c) > 1 else 0:.3f}'
            for c in cells))


if __name__ == '__main__':
    main()
