"""Golden cases for Auto-λ from the reference implementation (github lorenmt/auto-lambda).

Runs the reference's own `AutoLambda` class (`auto_lambda.py`, read from a git checkout or
bare mirror of the repository, not copied here) on a tiny two-layer multi-task model with
fixed data, driven as the reference trainers drive it (`trainer_dense.py`): before each
training step `meta_optimizer.zero_grad(); autol.unrolled_backward(...); meta_optimizer.step()`
with Adam on the meta weights, then one SGD step (momentum, weight decay) of the model on
sum_k lambda_k L_k. The only code of ours is the model, the data and `model_fit` (the
reference's hook for the task losses, here mean squared error per task), since the
reference's `utils.compute_loss` is specific to its datasets.

Writes crates/mtl-losses/tests/golden/autolambda_AutoLambda.json: the initial weights and
all batches (so the Rust test needs no torch RNG), and per step the meta-gradient, lambda
after the meta update and the model's parameters after its step.

    python crates/mtl-losses/tests/reference/auto_lambda.py [--repo PATH] [--out FILE]

PATH is a checkout or bare git directory of lorenmt/auto-lambda (default: the mirror at
/work/.mirror/lorenmt+auto-lambda/repo). Deterministic: two runs give identical files.
Generated with torch 2.13.0 (CPU), float64.
"""

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "golden", "autolambda_AutoLambda.json")
DEFAULT_REPO = "/work/.mirror/lorenmt+auto-lambda/repo"


def reference_module(repo):
    """Imports the reference's auto_lambda.py from `repo` (a work tree or a bare git dir).

    Its `from utils import *` needs only `torch` and `compute_loss` from the reference's
    utils.py (which also imports dataset code); a stub providing those stands in for it,
    and `compute_loss` is never reached because `model_fit` is overridden below."""
    if os.path.exists(os.path.join(repo, "auto_lambda.py")):
        source = open(os.path.join(repo, "auto_lambda.py")).read()
        commit = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
    else:
        source = subprocess.run(["git", "--git-dir", repo, "show", "HEAD:auto_lambda.py"],
                                capture_output=True, text=True, check=True).stdout
        commit = subprocess.run(["git", "--git-dir", repo, "rev-parse", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
    tmp = tempfile.mkdtemp()
    with open(os.path.join(tmp, "auto_lambda.py"), "w") as f:
        f.write(source)
    with open(os.path.join(tmp, "utils.py"), "w") as f:
        f.write("import torch\n\n\ndef compute_loss(pred, gt, task_id):\n"
                "    raise NotImplementedError('model_fit is overridden')\n")
    sys.path.insert(0, tmp)
    return importlib.import_module("auto_lambda"), commit


class TinyMtl(torch.nn.Module):
    """shared: Linear(d, h) + tanh; head k: Linear(h, 1). forward returns K predictions."""

    def __init__(self, d, h, k):
        super().__init__()
        self.shared = torch.nn.Linear(d, h)
        self.heads = torch.nn.ModuleList([torch.nn.Linear(h, 1) for _ in range(k)])

    def forward(self, x):
        z = torch.tanh(self.shared(x))
        return [head(z).squeeze(-1) for head in self.heads]


def names(model):
    """Parameter names as the Rust test builds them: shared.weight, head0.bias..."""
    return [n.replace("heads.", "head") for n, _ in model.named_parameters()]


def run_case(ref, name, k, lr, momentum, weight_decay, autol_init, autol_lr, primary, steps, seed):
    torch.manual_seed(seed)
    d, h, n = 3, 4, 8
    model = TinyMtl(d, h, k)
    init = {nm: p.detach().clone() for nm, p in zip(names(model), model.parameters())}
    # Each task's target is its own smooth function of x, so the tasks pull the shared
    # layer differently.
    w_true = torch.randn(k, d)

    def batch():
        x = torch.randn(n, d)
        y = torch.sin(x @ w_true.T) + 0.1 * torch.randn(n, k)
        return x, y

    train = [batch() for _ in range(steps)]
    val = [batch() for _ in range(steps)]

    train_tasks = {f"t{i}": 1 for i in range(k)}
    pri_tasks = {f"t{i}": 1 for i in range(k) if primary[i] == 1.0}

    class Fit(ref.AutoLambda):
        def model_fit(self, pred, targets):
            return [torch.mean((pred[i] - targets[:, i]) ** 2) for i in range(len(self.train_tasks))]

    autol = Fit(model, "cpu", train_tasks, pri_tasks, autol_init)
    meta_optimizer = torch.optim.Adam([autol.meta_weights], lr=autol_lr)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)

    records = []
    for s in range(steps):
        (tx, ty), (vx, vy) = train[s], val[s]
        meta_optimizer.zero_grad()
        autol.unrolled_backward(tx, ty, vx, vy, lr, optimizer)
        meta_grad = autol.meta_weights.grad.detach().clone()
        meta_optimizer.step()
        optimizer.zero_grad()
        losses = autol.model_fit(model(tx), ty)
        loss = sum(w * losses[i] for i, w in enumerate(autol.meta_weights))
        loss.backward()
        optimizer.step()
        records.append({
            "meta_gradient": meta_grad.tolist(),
            "lambdas": autol.meta_weights.detach().tolist(),
            "losses": [l.item() for l in losses],
            "params": {nm: p.detach().reshape(-1).tolist() for nm, p in zip(names(model), model.parameters())},
        })
    return {
        "name": name,
        "k": k,
        "optimizer": {"kind": "sgd", "lr": lr, "momentum": momentum, "weight_decay": weight_decay},
        "init": autol_init,
        "lr": autol_lr,
        "primary": primary,
        "shapes": {nm: list(p.shape) for nm, p in init.items()},
        "initial_params": {nm: p.reshape(-1).tolist() for nm, p in init.items()},
        "train": [{"x": x.tolist(), "y": y.tolist()} for x, y in train],
        "validation": [{"x": x.tolist(), "y": y.tolist()} for x, y in val],
        "steps": records,
        "tol_rel": 1e-7,
        "tol_abs": 1e-10,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=DEFAULT_REPO)
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    torch.set_default_dtype(torch.float64)
    ref, commit = reference_module(args.repo)
    cases = [
        # The reference defaults (autol_init 0.1, autol_lr 1e-4), every task primary, the
        # dense trainer's SGD (momentum 0.9, weight decay 1e-4) at a smaller lr.
        run_case(ref, "defaults_mtl", 3, 0.05, 0.9, 1e-4, 0.1, 1e-4, [1.0, 1.0, 1.0], 5, 0),
        # Auxiliary learning (only task 0 primary), a larger meta lr so lambda moves far,
        # plain SGD without momentum or weight decay.
        run_case(ref, "auxiliary_fast", 3, 0.1, 0.0, 0.0, 0.1, 1e-2, [1.0, 0.0, 0.0], 6, 1),
        # Two tasks, momentum without weight decay.
        run_case(ref, "two_tasks_momentum", 2, 0.1, 0.5, 0.0, 0.5, 3e-3, [1.0, 1.0], 4, 2),
    ]
    doc = {
        "method": "AutoLambda",
        "source": f"lorenmt/auto-lambda@{commit} auto_lambda.py (driven as trainer_dense.py)",
        "torch": torch.__version__,
        "note": "per step: meta_gradient = autol.meta_weights.grad after unrolled_backward "
                "(before the Adam step), lambdas = meta weights after it, params = model "
                "parameters after the SGD step on sum_k lambda_k L_k (row-major, float64). "
                "Loss per task: mean squared error of head k on column k of y.",
        "cases": cases,
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
