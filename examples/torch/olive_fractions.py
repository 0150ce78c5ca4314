"""The plain-PyTorch twin of examples/configs/olive_fractions.toml, for comparing mtl
with PyTorch on the same model, data and split fractions (docs/initialization.md).

Olive oil as multi-target regression on small scales: from four fatty acids
(palmitic, palmitoleic, stearic, linoleic; standardised on the training rows) predict
four others (oleic, linolenic, arachidic, eicosenoic) as fractions of the total
(the file's hundredths of a percent / 10000: standard deviations 0.04 down to 0.0013).
Trunk 4 -> 128 -> 128 (ReLU), one linear head per target, the sum of the MSE losses,
Adam 1e-3, batch 32, 40 epochs; prints each target's test MAE.

    python examples/torch/olive_fractions.py --write-csv runs/olive_fractions/olive_fractions.csv
    python examples/torch/olive_fractions.py --seed 1 [--init tch]

`--init tch` draws every layer as tch's `nn::linear` does by default (weight
U(+-sqrt(6/fan_in)), bias U(+-1/sqrt(fan_in))): mtl's initialisation before it matched
PyTorch's.
"""

import argparse
import csv
import math
import os

import torch
from torch import nn

FEATURES = ['palmitic', 'palmitoleic', 'stearic', 'linoleic']
TARGETS = ['oleic', 'linolenic', 'arachidic', 'eicosenoic']
ACIDS = ['palmitic', 'palmitoleic', 'stearic', 'oleic', 'linoleic', 'linolenic', 'arachidic',
         'eicosenoic']
HERE = os.path.dirname(os.path.abspath(__file__))
OLIVE = os.path.join(HERE, '..', '..', 'data', 'olive-oil', 'olive.csv')


def read_olive():
    with open(OLIVE) as f:
        rows = list(csv.reader(f))
    # The header lacks the leading row-id column.
    header = ['id', 'area_name', 'region_code', 'area_code'] + ACIDS
    return [dict(zip(header, r)) for r in rows[1:]]


def write_csv(path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(ACIDS)
        for r in read_olive():
            w.writerow([f'{int(r[a]) / 10000:.4f}' for a in ACIDS])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--epochs', type=int, default=40)
    ap.add_argument('--init', choices=['pytorch', 'tch'], default='pytorch')
    ap.add_argument('--write-csv')
    args = ap.parse_args()
    if args.write_csv:
        write_csv(args.write_csv)
        return
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    rows = read_olive()
    x = torch.tensor([[int(r[a]) / 10000 for a in FEATURES] for r in rows])
    y = torch.tensor([[int(r[a]) / 10000 for a in TARGETS] for r in rows])
    n = len(rows)
    perm = torch.randperm(n)
    n_test, n_val = round(0.2 * n), round(0.2 * n)
    test, train = perm[:n_test], perm[n_test + n_val:]
    mean, std = x[train].mean(0), x[train].std(0, unbiased=False)
    x = (x - mean) / std

    trunk = nn.Sequential(nn.Linear(4, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU())
    heads = nn.ModuleList([nn.Linear(128, 1) for _ in TARGETS])
    model = nn.ModuleDict({'trunk': trunk, 'heads': heads})
    if args.init == 'tch':
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.Linear):
                    m.weight.uniform_(-math.sqrt(6 / m.in_features), math.sqrt(6 / m.in_features))
                    b = 1 / math.sqrt(m.in_features)
                    m.bias.uniform_(-b, b)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(args.epochs):
        order = train[torch.randperm(len(train))]
        for i in range(0, len(order), 32):
            b = order[i:i + 32]
            z = trunk(x[b])
            loss = sum(nn.functional.mse_loss(h(z), y[b, k:k + 1]) for k, h in enumerate(heads))
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        z = trunk(x[test])
        mae = [float((h(z) - y[test, k:k + 1]).abs().mean()) for k, h in enumerate(heads)]
    print(' '.join(f'{t}={m:.5f}' for t, m in zip(TARGETS, mae)))


if __name__ == '__main__':
    main()
