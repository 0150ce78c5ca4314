#!/usr/bin/env python3
"""LibMTL's half of the side-by-side run (examples/libmtl_side_by_side.rs).

Trains LibMTL's own ``Trainer`` -- its HPS architecture and its weighting classes --
on the arrays the Rust example wrote (Census-Income, already split and standardised),
with the model the Rust side trains: an MLP encoder ``d -> 128 -> 64`` with ReLU after
each layer and one ``Linear(64, 1)`` decoder per task, binary cross-entropy on the
logits, Adam without weight decay, the same epochs, batch size, learning rate and
seeds. After the last epoch it scores the test rows through ``Trainer.test`` and appends
one JSON line per (method, seed) to the cells file the Rust side reads:

    {"library": "libmtl", "method": "EW", "seed": 0, "setup": {...},
     "test_auc": [auc_task0, auc_task1], ...}

A cell already in that file with the same setup is skipped, so an interrupted run
resumes. LibMTL is imported from the checkout given by ``--libmtl`` (or
``LIBMTL_PATH``); nothing of it is copied here.

What LibMTL does not ship and this script adds, in LibMTL's own extension style: a
binary cross-entropy loss (an ``AbsLoss``) and a ROC-AUC metric (an ``AbsMetric``:
the Mann-Whitney rank statistic with tied scores sharing their mean rank, as
``mtl``'s ``roc_auc``). Two adaptations so the stock Trainer runs on a CPU machine:
its device (hard-coded ``cuda:0``) is pinned to the CPU, and ``torch_geometric``,
which ``LibMTL/trainer.py`` imports at module level only for QM9's loader, is
replaced by an empty module when it is not installed.
"""
import argparse
import contextlib
import importlib
import io
import json
import os
import random
import subprocess
import sys
import time
import types

import numpy as np
import torch
import torch.nn as nn

TASKS = ['income', 'never_married']

# LibMTL's default hyper-parameters for the methods compared (LibMTL/config.py's
# argparse defaults, as LibMTL.config.prepare_args hands them to the weighting).
WEIGHT_ARGS = {
    'EW': {},
    'UW': {},
    'DWA': {'T': 2.0},
    'PCGrad': {},
    'MGDA': {'mgda_gn': 'none'},
    'CAGrad': {'calpha': 0.5, 'rescale': 1},
    'Nash_MTL': {'update_weights_every': 1, 'optim_niter': 20, 'max_norm': 1.0},
    'GradNorm': {'alpha': 1.5},
    'IMTL': {},
    'UPGrad': {'UPGrad_norm_eps': 1e-4, 'UPGrad_reg_eps': 1e-4},
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--libmtl', default=os.environ.get('LIBMTL_PATH'),
                   help='a LibMTL checkout (the folder holding LibMTL/); default $LIBMTL_PATH')
    p.add_argument('--data', required=True, help='folder with the .npy arrays the Rust side wrote')
    p.add_argument('--cells', required=True, help='JSON-lines file to append finished cells to')
    p.add_argument('--setup', required=True, help="the run's setup as JSON (stored in each cell)")
    p.add_argument('--methods', required=True, help='LibMTL weighting names, comma-separated')
    p.add_argument('--seeds', required=True, help='comma-separated seeds')
    p.add_argument('--epochs', type=int, required=True)
    p.add_argument('--batch-size', type=int, required=True)
    p.add_argument('--lr', type=float, required=True)
    p.add_argument('--hidden', default='128,64', help='encoder widths after the input')
    p.add_argument('--threads', type=int, default=1)
    return p.parse_args()


def import_libmtl(path):
    if not path:
        sys.exit('no LibMTL checkout: pass --libmtl PATH or set LIBMTL_PATH '
                 '(git clone https://github.com/median-research-group/LibMTL)')
    if not os.path.exists(os.path.join(path, 'LibMTL', '__init__.py')):
        sys.exit(f'{path} holds no LibMTL package (expected {path}/LibMTL/__init__.py)')
    sys.path.insert(0, os.path.abspath(path))
    try:
        importlib.import_module('torch_geometric')
        stubbed = False
    except ImportError:
        sys.modules['torch_geometric'] = types.ModuleType('torch_geometric')
        stubbed = True
    with contextlib.redirect_stdout(io.StringIO()):
        libmtl = importlib.import_module('LibMTL')
    try:
        commit = subprocess.run(['git', '-C', path, 'rev-parse', 'HEAD'], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return libmtl, {'path': os.path.abspath(path), 'commit': commit,
                    'torch_geometric_stubbed': stubbed}


def roc_auc(scores, labels):
    """Mann-Whitney U / (P N), ties sharing their mean rank; None with one class only."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels) >= 0.5
    pos = int(labels.sum())
    neg = labels.size - pos
    if pos == 0 or neg == 0 or np.isnan(scores).any():
        return None
    order = np.argsort(scores, kind='mergesort')
    sorted_scores = scores[order]
    # Mean 1-based rank of each run of equal scores.
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], sorted_scores.size]
    run_rank = (starts + 1 + ends) / 2.0
    ranks = np.empty(scores.size)
    ranks[order] = np.repeat(run_rank, ends - starts)
    u = ranks[labels].sum() - pos * (pos + 1) / 2.0
    return float(u / (pos * neg))


def make_task_dict():
    from LibMTL.loss import AbsLoss
    from LibMTL.metrics import AbsMetric

    class BCELoss(AbsLoss):
        """Binary cross-entropy on logits, the mean over the batch."""

        def __init__(self):
            super().__init__()
            self.loss_fn = nn.BCEWithLogitsLoss()

        def compute_loss(self, pred, gt):
            return self.loss_fn(pred, gt)

    class AUCMetric(AbsMetric):
        """ROC-AUC over every row seen since the last reinit; keeps its last score."""

        def __init__(self):
            super().__init__()
            self.last = None

        def update_fun(self, pred, gt):
            self.record.append(pred.detach().double().reshape(-1).cpu().numpy())
            self.bs.append(gt.detach().reshape(-1).cpu().numpy())

        def score_fun(self):
            auc = roc_auc(np.concatenate(self.record), np.concatenate(self.bs))
            self.last = auc
            return [float('nan') if auc is None else auc]

    return {t: {'metrics': ['AUC'], 'metrics_fn': AUCMetric(), 'loss_fn': BCELoss(), 'weight': [1]}
            for t in TASKS}


class Rows(torch.utils.data.Dataset):
    """Whole mini-batches by index list: (x[rows], {task: y[rows, k:k+1]})."""

    def __init__(self, x, y):
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)

    def __len__(self):
        return self.x.shape[0]

    def __getitem__(self, rows):
        return self.x[rows], {t: self.y[rows, k:k + 1] for k, t in enumerate(TASKS)}


def loader(x, y, batch_size, shuffle):
    """Batches drawn by torch's global generator (seeded per cell), the last one smaller."""
    base = torch.utils.data.RandomSampler(range(len(x))) if shuffle \
        else torch.utils.data.SequentialSampler(range(len(x)))
    sampler = torch.utils.data.BatchSampler(base, batch_size, drop_last=False)
    return torch.utils.data.DataLoader(Rows(x, y), sampler=sampler, batch_size=None)


def encoder_class(d, hidden):
    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            layers, width = [], d
            for h in hidden:
                layers += [nn.Linear(width, h), nn.ReLU()]
                width = h
            self.net = nn.Sequential(*layers)

        def forward(self, x):
            return self.net(x)
    return Encoder


def cpu_trainer(libmtl):
    class CPUTrainer(libmtl.Trainer):
        """LibMTL's Trainer with its hard-coded cuda:0 pinned to the CPU."""

        @property
        def device(self):
            return torch.device('cpu')

        @device.setter
        def device(self, value):
            pass
    return CPUTrainer


def seed_all(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_cells(path):
    cells = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    cells.append(json.loads(line))
                except json.JSONDecodeError:
                    pass  # a torn last line of a killed run
    return cells


def run_cell(libmtl, data, method, seed, args, hidden):
    seed_all(seed)
    task_dict = make_task_dict()
    decoders = nn.ModuleDict({t: nn.Linear(hidden[-1], 1) for t in TASKS})
    kwargs = {'weight_args': dict(WEIGHT_ARGS[method]), 'arch_args': {}}
    optim_param = {'optim': 'adam', 'lr': args.lr, 'weight_decay': 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        trainer = cpu_trainer(libmtl)(
            task_dict=task_dict, weighting=method, architecture='HPS',
            encoder_class=encoder_class(data['x_train'].shape[1], hidden), decoders=decoders,
            rep_grad=False, multi_input=False, optim_param=optim_param, scheduler_param=None,
            **kwargs)
    # Compared with mtl's: after the same seed both libraries draw the same weights.
    init_sum = float(trainer.model.encoder.net[0].weight.detach().double().sum())
    test_loader = loader(data['x_test'], data['y_test'], 4096, False)
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        # The untrained model's test AUC: mtl's equals it when the weights, the arrays
        # and the metric are the same. No random draws, so training is unchanged.
        trainer.test(test_loader)
    init_auc = [task_dict[t]['metrics_fn'].last for t in TASKS]
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(log):
        # Validation rows stand in for LibMTL's per-epoch "test" pass, so the test rows
        # are scored once, after the last epoch.
        trainer.train(loader(data['x_train'], data['y_train'], args.batch_size, True),
                      loader(data['x_val'], data['y_val'], 4096, False), args.epochs)
        trainer.test(test_loader)
    seconds = time.perf_counter() - t0
    auc = [task_dict[t]['metrics_fn'].last for t in TASKS]
    train_loss = [float(v) for v in trainer.model.train_loss_buffer[:, -1]]
    return {'test_auc': auc, 'final_train_loss': train_loss, 'seconds': seconds,
            'init_first_layer_sum': init_sum, 'init_test_auc': init_auc}


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    libmtl, info = import_libmtl(args.libmtl)
    setup = json.loads(args.setup)
    hidden = [int(h) for h in args.hidden.split(',')]
    data = {name: np.load(os.path.join(args.data, f'{name}.npy')).astype(np.float32)
            for name in ['x_train', 'y_train', 'x_val', 'y_val', 'x_test', 'y_test']}
    methods = [m for m in args.methods.split(',') if m]
    unknown = [m for m in methods if m not in WEIGHT_ARGS]
    if unknown:
        sys.exit(f'no LibMTL defaults recorded here for {unknown}; known: {sorted(WEIGHT_ARGS)}')
    seeds = [int(s) for s in args.seeds.split(',') if s]
    done = {(c.get('method'), c.get('seed')) for c in load_cells(args.cells)
            if c.get('library') == 'libmtl' and c.get('setup') == setup}
    print(f'LibMTL {info["commit"] or "(no git commit)"} from {info["path"]}, torch {torch.__version__}',
          flush=True)
    for method in methods:
        for seed in seeds:
            if (method, seed) in done:
                continue
            cell = run_cell(libmtl, data, method, seed, args, hidden)
            cell.update(library='libmtl', method=method, seed=seed, setup=setup,
                        libmtl_commit=info['commit'], weight_args=WEIGHT_ARGS[method])
            print(f'  libmtl {method:>9} seed {seed}: test AUC '
                  + ' '.join('-' if a is None else f'{a:.4f}' for a in cell['test_auc'])
                  + f'  ({cell["seconds"]:.1f} s)', flush=True)
            with open(args.cells, 'a') as f:
                f.write(json.dumps(cell) + '\n')
                f.flush()
                os.fsync(f.fileno())


if __name__ == '__main__':
    main()
