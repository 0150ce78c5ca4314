"""W5's plain-PyTorch twin: the dense workload's network in torch.nn, timed per training
step on the batches `mtl-bench` trained on, so the runner can report PyTorch ms/step
divided by mtl ms/step in the same run.

`mtl-bench --workloads dense --torch-python PY` (or `cargo xtask bench --peer
--workloads dense`) writes the batches to an .npz file and runs this script beside its
own rows; it can also be run by hand:

    python dense_twin.py --data batches.npz --steps 100 --warmup 10 --threads 2 --out rows.json

The network is `mtl_core::ConvNetConfig::new(1).widths([16, 32, 32]).out_channels(16)
.build_with_task_decoders(..., 3)` layer for layer: a conv3x3-BN-ReLU stem, one residual
block per stage (16; 32 with stride 2; 32 with dilation 2), batch norm after every
convolution (which then has no bias); per task a decoder (bilinear x2, conv3x3-BN-ReLU to
16, conv3x3-BN-ReLU to 16) and a 1x1-conv head. The losses are LibMTL's NYUv2 ones:
pixel cross-entropy ignoring -1, L1 over pixels with a positive depth, 1 - cosine of the
normalised prediction over pixels with a non-zero true normal.

Methods, each a plain loop a PyTorch user would write (Adam, lr 1e-3):
  EW      sum of the losses, one backward.
  PCGrad  one torch.autograd.grad per task (shared encoder and that task's decoder and
          head), the shared rows stacked into a K x d matrix, LibMTL's PCGrad projection
          (each row against the others in a random order, then summed), written back to
          the encoder's .grad.
"""

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class ConvBn(nn.Module):
    def __init__(self, c_in, c_out, k, stride=1, dilation=1):
        super().__init__()
        self.conv = nn.Conv2d(
            c_in, c_out, k, stride=stride, padding=dilation * (k - 1) // 2,
            dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        return self.bn(self.conv(x))


class Block(nn.Module):
    def __init__(self, c_in, c_out, stride, dilation):
        super().__init__()
        self.conv1 = ConvBn(c_in, c_out, 3, stride, dilation)
        self.conv2 = ConvBn(c_out, c_out, 3, 1, dilation)
        self.shortcut = (ConvBn(c_in, c_out, 1, stride)
                         if stride != 1 or c_in != c_out else None)

    def forward(self, x):
        h = self.conv2(F.relu(self.conv1(x)))
        skip = x if self.shortcut is None else self.shortcut(x)
        return F.relu(h + skip)


class Decoder(nn.Module):
    def __init__(self, c_in, width, c_out, head_out):
        super().__init__()
        self.up = ConvBn(c_in, width, 3)
        self.out = ConvBn(width, c_out, 3)
        self.head = nn.Conv2d(c_out, head_out, 1)

    def forward(self, z):
        h = F.interpolate(z, scale_factor=2, mode="bilinear", align_corners=False)
        h = F.relu(self.out(F.relu(self.up(h))))
        return self.head(h)


class DenseNet(nn.Module):
    def __init__(self, widths=(16, 32, 32), features=16, classes=4):
        super().__init__()
        w0, w1, w2 = widths
        self.stem = ConvBn(1, w0, 3)
        self.blocks = nn.Sequential(
            Block(w0, w0, 1, 1), Block(w0, w1, 2, 1), Block(w1, w2, 1, 2))
        self.decoders = nn.ModuleList(
            [Decoder(w2, w0, features, out) for out in (classes, 1, 3)])

    def encode(self, x):
        return self.blocks(F.relu(self.stem(x)))


def losses(model, z, seg, depth, normals):
    logits, d, n = (dec(z) for dec in model.decoders)
    l_seg = F.cross_entropy(logits, seg, ignore_index=-1)
    valid = (depth > 0).float()
    l_depth = ((d.squeeze(1) - depth).abs() * valid).sum() / valid.sum()
    pred = F.normalize(n, p=2, dim=1)
    valid = (normals != 0).any(dim=1).float()
    l_norm = 1 - ((pred * normals).sum(dim=1) * valid).sum() / valid.sum()
    return [l_seg, l_depth, l_norm]


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
    shared = list(model.stem.parameters()) + list(model.blocks.parameters())
    own = [list(dec.parameters()) for dec in model.decoders]
    # CPU generator: the permutation is drawn on the host, as LibMTL's random.shuffle.
    gen = torch.Generator().manual_seed(seed)

    def ew(batch):
        opt.zero_grad()
        x, seg, depth, normals = batch
        ls = losses(model, model.encode(x), seg, depth, normals)
        sum(ls).backward()
        opt.step()

    def pc(batch):
        opt.zero_grad()
        x, seg, depth, normals = batch
        ls = losses(model, model.encode(x), seg, depth, normals)
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="the .npz batches mtl-bench wrote")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default="EW,PCGrad")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    data = np.load(a.data)
    batches = [
        tuple(torch.from_numpy(np.ascontiguousarray(data[key][i])).to(a.device)
              for key in ("x", "segment", "depth", "normals"))
        for i in range(data["x"].shape[0])
    ]
    rows = []
    for method in [m for m in a.methods.split(",") if m]:
        torch.manual_seed(a.seed)
        model = DenseNet().to(a.device)
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        step = make_step(method, model, opt, a.seed)
        t_start = time.perf_counter()
        for i in range(a.warmup):
            step(batches[i % len(batches)])
        times = []
        for i in range(a.warmup, a.warmup + a.steps):
            t0 = time.perf_counter()
            step(batches[i % len(batches)])
            sync(a.device)
            times.append(time.perf_counter() - t0)
        rows.append({
            "impl": "torch_plain", "workload": "dense", "method": method,
            "median_ms": percentile_ms(times, 50), "p10_ms": percentile_ms(times, 10),
            "p90_ms": percentile_ms(times, 90), "steps": len(times), "warmup": a.warmup,
            "wall_s": time.perf_counter() - t_start, "status": "ok",
            "torch": torch.__version__, "threads": torch.get_num_threads(),
        })
    with open(a.out, "w") as f:
        json.dump({"rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
