"""Independent reference solutions for the mtl-linear solvers.

Generates small multi-task problems (seeded), states each model's objective in CVXPY
and solves it with Clarabel (an interior-point conic solver) at tight tolerances, and
writes problems and solutions to reference.json beside this file. The Rust tests in
../reference.rs fit the same problems and compare weights, intercepts and objective at
1e-6. Nothing in `cargo test` runs this script; rerun it only to change the problems:

    python3 -m venv /tmp/cvx && /tmp/cvx/bin/pip install cvxpy clarabel numpy
    /tmp/cvx/bin/python solve.py

Each objective is written here from the model's doc comment, not from the Rust code.
Each case is solved at the tightest tolerance (down from 1e-13) at which Clarabel still
reports an optimal solution; `accuracy` is the largest weight difference between that
solve and one at a tolerance 100 times looser, an upper estimate of the reference's own
error.
"""

import json
import os

import cvxpy as cp
import numpy as np

REFINE = dict(iterative_refinement_reltol=1e-16, iterative_refinement_abstol=1e-16, iterative_refinement_max_iter=100, max_iter=500)


def settings(tol):
    return dict(tol_gap_abs=tol, tol_gap_rel=tol, tol_feas=tol, tol_ktratio=min(1e-6, tol * 1e3), **REFINE)


def make_tasks(rng, d, sizes, binary, clusters=None):
    """Tasks whose weights come from a few centres, so coupling helps."""
    t_n = len(sizes)
    centres = rng.normal(size=(d, clusters or 2))
    tasks = []
    for t, n in enumerate(sizes):
        w = centres[:, t % centres.shape[1]] + 0.3 * rng.normal(size=d)
        x = rng.normal(size=(n, d))
        eta = x @ w + 0.5 * rng.normal()
        if binary:
            y = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float)
        else:
            y = eta + 0.5 * rng.normal(size=n)
        tasks.append((x, y))
    return tasks


def data_term(tasks, W, b, loss):
    terms = []
    for t, (x, y) in enumerate(tasks):
        eta = x @ W[:, t] + b[t]
        if loss == "squared":
            terms.append(cp.sum_squares(eta - y))
        else:
            terms.append(cp.sum(cp.logistic(eta)) - y @ eta)
    return cp.sum(cp.hstack(terms))


def penalty(model, p, W, d, t_n, extra):
    if model == "trace_norm":
        return p["lambda"] * cp.normNuc(W)
    if model == "l21":
        return p["lambda"] * cp.sum(cp.norm(W, 2, axis=1))
    if model == "single_task":
        return p["lambda"] * cp.sum_squares(W)
    if model == "mean_regularized":
        w0 = cp.Variable(d)
        extra.append(w0)
        return p["lambda"] * cp.sum(cp.hstack([cp.sum_squares(W[:, t] - w0) for t in range(t_n)])) + p[
            "gamma"
        ] * cp.sum_squares(w0)
    if model == "graph_laplacian":
        a = np.array(p["adjacency"])
        terms = [a[s, t] * cp.sum_squares(W[:, s] - W[:, t]) for s in range(t_n) for t in range(s + 1, t_n) if a[s, t] > 0]
        return p["lambda"] * cp.sum(cp.hstack(terms)) + p["gamma"] * cp.sum_squares(W)
    if model == "mtrl":
        # Ω minimised out: λ₂ (tr (WᵀW + εI)^{1/2})² = λ₂ ‖[W; √ε I]‖_*².
        stacked = cp.vstack([W, np.sqrt(p["eps"]) * np.eye(t_n)])
        return p["lambda1"] * cp.sum_squares(W) + p["lambda2"] * cp.square(cp.normNuc(stacked))
    if model == "clustered":
        m = cp.Variable((t_n, t_n), symmetric=True)
        extra.append(m)
        eta = p["rho2"] / p["rho1"]
        extra.append([m >> 0, np.eye(t_n) - m >> 0, cp.trace(m) == p["clusters"]])
        return p["rho1"] * eta * (1 + eta) * cp.matrix_frac(W.T, eta * np.eye(t_n) + m)
    raise ValueError(model)


def solve(tasks, model, loss, p, settings):
    if model == "single_task" and len(tasks) > 1:
        # Each task alone, as the model is defined: smaller problems, which Clarabel
        # solves to tighter tolerances than their block-diagonal sum.
        parts = [solve([task], model, loss, p, settings) for task in tasks]
        status = cp.OPTIMAL if all(q[3] == cp.OPTIMAL for q in parts) else cp.OPTIMAL_INACCURATE
        return np.hstack([q[0] for q in parts]), np.hstack([q[1] for q in parts]), sum(q[2] for q in parts), status
    d = tasks[0][0].shape[1]
    t_n = len(tasks)
    W = cp.Variable((d, t_n))
    b = cp.Variable(t_n)
    extra = []
    pen = penalty(model, p, W, d, t_n, extra)
    constraints = extra[-1] if model == "clustered" else []
    prob = cp.Problem(cp.Minimize(data_term(tasks, W, b, loss) + pen), constraints)
    prob.solve(solver=cp.CLARABEL, **settings)
    assert prob.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE), prob.status
    return W.value, b.value, prob.value, prob.status


def main():
    rng = np.random.default_rng(20261204)
    cases = []
    chain = [[1.0 if abs(s - t) == 1 else 0.0 for t in range(4)] for s in range(4)]
    specs = [
        ("trace_norm", {"lambda": 3.0}),
        ("l21", {"lambda": 4.0}),
        ("mean_regularized", {"lambda": 2.0, "gamma": 0.5}),
        ("single_task", {"lambda": 1.5}),
        ("graph_laplacian", {"lambda": 2.0, "gamma": 0.3, "adjacency": chain}),
        ("mtrl", {"lambda1": 0.5, "lambda2": 2.0, "eps": 0.05}),
        ("clustered", {"rho1": 2.0, "rho2": 1.0, "clusters": 2.0}),
    ]
    for loss in ["squared", "logistic"]:
        for model, p in specs:
            d = 3
            sizes = [12, 9, 15, 10] if loss == "squared" else [30, 24, 36, 28]
            tasks = make_tasks(rng, d, sizes, loss == "logistic")
            # The tightest tolerance Clarabel still reports as optimal.
            for tol in [1e-13, 1e-12, 1e-11, 1e-10]:
                W, b, obj, status = solve(tasks, model, loss, p, settings(tol))
                if status == cp.OPTIMAL:
                    break
            W2, b2, _, _ = solve(tasks, model, loss, p, settings(tol * 100))
            cases.append(
                {
                    "name": f"{model}-{loss}",
                    "model": model,
                    "loss": loss,
                    "params": p,
                    "tasks": [{"x": x.tolist(), "y": y.tolist()} for x, y in tasks],
                    "weights": W.tolist(),
                    "intercepts": b.tolist(),
                    "objective": obj,
                    "tolerance": tol,
                    "accuracy": float(max(np.abs(W - W2).max(), np.abs(b - b2).max())),
                }
            )
            print(f"{model:>18} {loss:>9}: objective {obj:.10f}, tolerance {tol:.0e}, vs 100x looser {cases[-1]['accuracy']:.1e}")
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference.json")
    with open(out, "w") as f:
        json.dump({"generator": "solve.py (CVXPY + Clarabel)", "cases": cases}, f, indent=1)


if __name__ == "__main__":
    main()
