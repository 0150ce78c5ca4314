"""Writes the PyTorch side of mtl's parity tests (crates/mtl/tests/parity.rs and
crates/mtl-core/tests/init_pytorch.rs).

Run from the repository root with a Python that has torch 2.13, numpy and safetensors:

    python crates/mtl/tests/data/parity/make_parity.py

It writes, next to itself, for the bench workloads W1 (`mlp`) and W3 (`mmoe`) of
shared/peer_bench/libmtl_bench.py:

* `<w>_init.safetensors`: the model's initial weights as torch.nn draws them (default
  `reset_parameters`), named as mtl's var store names them, and 4 fixed batches.
  Weights and inputs are rounded to float16 once, before training, so they are stored
  exactly in half the space; training runs in float32 from those values.
* `<w>_<method>.json`: 20 steps of Adam (lr 1e-3, PyTorch defaults) from those weights
  on those batches (batch i % 4 at step i), for EW and MGDA: the task losses of every
  step, the task weights, and the sum and sum of squares of every final parameter.

and `crates/mtl-core/tests/data/init_reference.json`: the first values and moments of
layers built right after `torch.manual_seed(s)` (Linear, Conv2d, the W1 trunk, the W2
LeNet), which mtl must reproduce draw for draw after `tch::manual_seed(s)`.

The PyTorch loop is the plain one a LibMTL user runs: forward, task losses (mean
reductions), `zero_grad`, backward, `Adam.step`. EW backpropagates the sum of the
losses. MGDA (Sener & Koltun 2018, exact min-norm point, no normalisation) takes each
task's gradient with respect to the shared parameters (the trunk; the MMoE experts),
solves min ||sum_k w_k g_k|| over the simplex exactly, and sets the shared gradient to
sum_k w_k g_k; each task's own parameters (head, tower, gate) get the gradient of its
own loss, as in LibMTL.
"""

import itertools
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..', '..', '..', '..'))
STEPS = 20
BATCHES = 4
LR = 1e-3


def half_exact(t):
    """The nearest float16 value, kept in float32 (so storing it as f16 is exact)."""
    return t.detach().half().float()


# ------------------------------------------------------------------------------------
# Workloads (shared/peer_bench/libmtl_bench.py WORKLOAD_SPECS, smaller batches)
# ------------------------------------------------------------------------------------

class W1(nn.Module):
    """HPS: Linear(128,256)-ReLU-Linear(256,256)-ReLU; heads Linear(256,10) x2 + Linear(256,1)."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(128, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU())
        self.heads = nn.ModuleList([nn.Linear(256, 10), nn.Linear(256, 10), nn.Linear(256, 1)])
        self.kinds = ['ce', 'ce', 'mse']

    def forward(self, x):
        z = self.encoder(x)
        return [h(z) for h in self.heads]

    def shared(self):
        return list(self.encoder.parameters())

    def task_params(self, k):
        return list(self.heads[k].parameters())

    def mtl_names(self):
        """PyTorch parameter -> mtl var-store name."""
        names = {
            'encoder.0.weight': 'trunk.0.weight', 'encoder.0.bias': 'trunk.0.bias',
            'encoder.2.weight': 'trunk.1.weight', 'encoder.2.bias': 'trunk.1.bias',
        }
        for k in range(3):
            for p in ('weight', 'bias'):
                names[f'heads.{k}.{p}'] = f'task{k}.head.{p}'
        return names


class W3(nn.Module):
    """LibMTL MMoE: 8 experts Linear(100,64)-ReLU, per-task gate Linear(100,8)-Softmax,
    towers Linear(64,32)-ReLU-Linear(32,1); BCE-with-logits and MSE."""

    def __init__(self):
        super().__init__()
        self.experts = nn.ModuleList([nn.Sequential(nn.Linear(100, 64), nn.ReLU()) for _ in range(8)])
        self.gates = nn.ModuleList([nn.Sequential(nn.Linear(100, 8), nn.Softmax(dim=-1)) for _ in range(2)])
        self.towers = nn.ModuleList([nn.Sequential(nn.Linear(64, 32), nn.ReLU()) for _ in range(2)])
        self.outs = nn.ModuleList([nn.Linear(32, 1) for _ in range(2)])
        self.kinds = ['bce', 'mse']

    def forward(self, x):
        e = torch.stack([f(x) for f in self.experts])  # [E, B, D]
        out = []
        for k in range(2):
            g = self.gates[k](x)  # [B, E]
            mixed = torch.einsum('ij..., ji -> j...', e, g)  # LibMTL's MMoE mix
            out.append(self.outs[k](self.towers[k](mixed)))
        return out

    def shared(self):
        return list(self.experts.parameters())

    def task_params(self, k):
        return (list(self.gates[k].parameters()) + list(self.towers[k].parameters())
                + list(self.outs[k].parameters()))

    def mtl_names(self):
        names = {}
        for p in ('weight', 'bias'):
            for e in range(8):
                names[f'experts.{e}.0.{p}'] = f'mmoe.expert{e}.0.{p}'
            for k in range(2):
                names[f'gates.{k}.0.{p}'] = f'mmoe.task{k}.gate.{p}'
                names[f'towers.{k}.0.{p}'] = f'task{k}.tower.0.{p}'
                names[f'outs.{k}.{p}'] = f'task{k}.head.{p}'
        return names


def make_batches(workload, seed, rows):
    """The harness's make_data draws at `rows` rows per batch, inputs rounded to f16."""
    torch.manual_seed(seed)
    if workload == 'mlp':
        x = torch.randn(BATCHES, rows, 128)
        wa, wb, wr = torch.randn(128, 10), torch.randn(128, 10), torch.randn(128, 1)
        x = half_exact(x)
        ya, yb = (x @ wa).argmax(-1), (x @ wb).argmax(-1)
        yr = (x @ wr) / math.sqrt(128) + 0.1 * torch.randn(BATCHES, rows, 1)
        ys = [ya, yb, yr]
    else:
        x = torch.randn(BATCHES, rows, 100)
        w1, w2 = torch.randn(100, 1), torch.randn(100, 1)
        x = half_exact(x)
        y1 = ((x @ w1) > 0).float()
        y2 = (x @ w2) / 10.0 + 0.1 * torch.randn(BATCHES, rows, 1)
        ys = [y1, y2]
    return x, ys


def task_loss(kind, out, y):
    if kind == 'ce':
        return F.cross_entropy(out, y)
    if kind == 'mse':
        return F.mse_loss(out, y)
    return F.binary_cross_entropy_with_logits(out, y)


# ------------------------------------------------------------------------------------
# MGDA: the exact min-norm point of the convex hull (small K: every face)
# ------------------------------------------------------------------------------------

def min_norm_simplex(gram):
    k = gram.shape[0]
    best, best_val = None, math.inf
    for size in range(1, k + 1):
        for face in itertools.combinations(range(k), size):
            g = gram[np.ix_(face, face)]
            # KKT of min w'Gw s.t. sum w = 1 on the face: [2G 1; 1' 0][w; l] = [0; 1].
            kkt = np.zeros((size + 1, size + 1))
            kkt[:size, :size] = 2 * g
            kkt[:size, size] = 1
            kkt[size, :size] = 1
            rhs = np.zeros(size + 1)
            rhs[size] = 1
            sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0][:size]
            if (sol < -1e-12).any():
                continue
            w = np.zeros(k)
            w[list(face)] = np.clip(sol, 0, None)
            w /= w.sum()
            val = w @ gram @ w
            if best is None or val < best_val - 1e-15 * abs(best_val):
                best, best_val = w, val
    return best


def mgda_backward(model, losses):
    shared = model.shared()
    rows = []
    for k, loss in enumerate(losses):
        own = model.task_params(k)
        grads = torch.autograd.grad(loss, shared + own, retain_graph=True)
        rows.append(torch.cat([g.reshape(-1) for g in grads[:len(shared)]]))
        for p, g in zip(own, grads[len(shared):]):
            p.grad = g.clone()
    jac = torch.stack(rows)  # [K, d], f32
    gram = (jac @ jac.T).double().numpy()
    w = min_norm_simplex(gram)
    combined = jac.T @ torch.tensor(w, dtype=torch.float32)
    offset = 0
    for p in shared:
        n = p.numel()
        p.grad = combined[offset:offset + n].view_as(p).clone()
        offset += n
    return [float(v) for v in w]


# ------------------------------------------------------------------------------------
# The runs
# ------------------------------------------------------------------------------------

def train(workload, init_state, x, ys, method):
    torch.manual_seed(0)
    model = W1() if workload == 'mlp' else W3()
    model.load_state_dict(init_state)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    record = {'losses': [], 'weights': []}
    for step in range(STEPS):
        b = step % BATCHES
        outs = model(x[b])
        losses = [task_loss(kind, o, y[b]) for kind, o, y in zip(model.kinds, outs, ys)]
        opt.zero_grad()
        if method == 'ew':
            sum(losses).backward()
            w = [1.0] * len(losses)
        else:
            w = mgda_backward(model, losses)
        opt.step()
        record['losses'].append([float(l.detach()) for l in losses])
        record['weights'].append(w)
    names = model.mtl_names()
    final = {}
    for name, p in model.named_parameters():
        t = p.detach().double()
        final[names[name]] = [float(t.sum()), float((t * t).sum())]
    record['final'] = final
    return record


def write_workload(workload, rows):
    torch.manual_seed(0)
    model = W1() if workload == 'mlp' else W3()
    init_state = {k: half_exact(v) for k, v in model.state_dict().items()}
    names = model.mtl_names()
    x, ys = make_batches(workload, 1, rows)
    tensors = {names[k]: v.half().contiguous() for k, v in init_state.items()}
    tensors['data.x'] = x.half().contiguous()
    for k, y in enumerate(ys):
        tensors[f'data.y{k}'] = y.contiguous()
    save_file(tensors, os.path.join(HERE, f'{workload}_init.safetensors'),
              metadata={'generator': f'make_parity.py, torch {torch.__version__}'})
    for method in ('ew', 'mgda'):
        record = train(workload, init_state, x, ys, method)
        record.update({'workload': workload, 'method': method, 'steps': STEPS, 'lr': LR,
                       'batches': BATCHES, 'rows': rows, 'torch': torch.__version__})
        with open(os.path.join(HERE, f'{workload}_{method}.json'), 'w') as f:
            json.dump(record, f, indent=1)
            f.write('\n')


def moments(t):
    shape = list(t.shape)
    t = t.detach().double().reshape(-1)
    return {'shape': shape, 'first': [float(v) for v in t[:8]],
            'sum': float(t.sum()), 'sum_sq': float((t * t).sum())}


def write_init_reference():
    """Layers built right after torch.manual_seed(seed), in the order mtl builds them."""
    out = {'torch': torch.__version__, 'cases': []}
    torch.manual_seed(0)
    lin = nn.Linear(7, 5)
    conv = nn.Conv2d(3, 4, 3)
    out['cases'].append({'seed': 0, 'layers': {
        'linear.weight': moments(lin.weight), 'linear.bias': moments(lin.bias),
        'conv.weight': moments(conv.weight), 'conv.bias': moments(conv.bias)}})
    torch.manual_seed(1)  # the W1 trunk: Linear(128,256), Linear(256,256)
    trunk = nn.Sequential(nn.Linear(128, 256), nn.ReLU(), nn.Linear(256, 256))
    out['cases'].append({'seed': 1, 'layers': {
        'trunk.0.weight': moments(trunk[0].weight), 'trunk.0.bias': moments(trunk[0].bias),
        'trunk.1.weight': moments(trunk[2].weight), 'trunk.1.bias': moments(trunk[2].bias)}})
    torch.manual_seed(2)  # the W2 LeNet: Conv(1,10,5), Conv(10,20,5), Linear(720,50)
    c1, c2, fc = nn.Conv2d(1, 10, 5), nn.Conv2d(10, 20, 5), nn.Linear(720, 50)
    out['cases'].append({'seed': 2, 'layers': {
        'lenet.conv1.weight': moments(c1.weight), 'lenet.conv1.bias': moments(c1.bias),
        'lenet.conv2.weight': moments(c2.weight), 'lenet.conv2.bias': moments(c2.bias),
        'lenet.fc.weight': moments(fc.weight), 'lenet.fc.bias': moments(fc.bias)}})
    path = os.path.join(ROOT, 'crates', 'mtl-core', 'tests', 'data', 'init_reference.json')
    with open(path, 'w') as f:
        json.dump(out, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    torch.set_num_threads(1)
    write_workload('mlp', 32)
    write_workload('mmoe', 64)
    write_init_reference()
