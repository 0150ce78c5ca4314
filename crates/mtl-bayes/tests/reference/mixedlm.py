"""Reference maximum-likelihood fits of the Gaussian random-coefficient model for
crates/mtl-bayes/tests/reference.rs, by statsmodels' MixedLM (reml=False).

Run from the repository root with statsmodels installed (a throwaway virtualenv):
    python crates/mtl-bayes/tests/reference/mixedlm.py
It rewrites mixedlm.json beside this file. `cargo xtask test` does not run it.
"""
import json
import os
import warnings

import numpy as np
import pandas as pd
import statsmodels
import statsmodels.formula.api as smf

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))


def fit(df, formula, group, re_formula, diagonal):
    if diagonal:
        # Independent random intercept and slope: two variance components per group.
        slope = re_formula.lstrip("~")
        model = smf.mixedlm(
            formula,
            df,
            groups=df[group],
            re_formula="0",
            vc_formula={"intercept": "1", "slope": "0 + " + slope},
        )
    else:
        model = smf.mixedlm(formula, df, groups=df[group], re_formula=re_formula)
    kw = {}
    best = None
    # Several optimisers from statsmodels' default start; keep the highest likelihood.
    for method in (["lbfgs"], ["bfgs"], ["powell", "lbfgs"]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = model.fit(reml=False, method=method, gtol=1e-12, maxiter=20000, **kw)
        if best is None or r.llf > best.llf:
            best = r
    return {
        "formula": formula,
        "group": group,
        "re_formula": re_formula,
        "diagonal": diagonal,
        "llf": float(best.llf),
        "fe_params": [float(v) for v in best.fe_params.values],
        "cov_re": (
            [[float(best.vcomp[0]), 0.0], [0.0, float(best.vcomp[1])]]
            if diagonal
            else [[float(v) for v in row] for row in np.asarray(best.cov_re)]
        ),
        "scale": float(best.scale),
        "converged": bool(best.converged),
    }


radon = pd.read_csv(os.path.join(ROOT, "data/radon/radon.csv"))
exam = pd.read_csv(os.path.join(ROOT, "data/mlmrev/exam.csv"))
out = {
    "statsmodels": statsmodels.__version__,
    "radon_full": fit(radon, "log_radon ~ floor", "county", "~floor", False),
    "radon_diagonal": fit(radon, "log_radon ~ floor", "county", "~floor", True),
    "exam_full": fit(exam, "normexam ~ standLRT", "school", "~standLRT", False),
}
with open(os.path.join(HERE, "mixedlm.json"), "w") as f:
    json.dump(out, f, indent=2)
    f.write("\n")
print(json.dumps(out, indent=2))
