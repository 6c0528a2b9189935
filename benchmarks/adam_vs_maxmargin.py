"""The paper's Adam teacher against the exact max-margin teacher on the same data (issue 25, item 4).

Usage::

    python -m benchmarks.adam_vs_maxmargin [--d 200,400] [--seeds 16] [--alpha ...] [--rho ...]
        [--epochs 10000] [--standardize/--no-standardize] [--json FILE]

For each (d, alpha, seed) one data set (logistic-pinv's protocol, raw or standardized inputs):
the Adam logistic teacher (``simulate.protocol.train_teachers``, the reference's settings) and the
hard-margin max-margin separator of the same data (``theory.maxmargin``). Printed per (d, alpha):
the cosine between the two weight vectors, each teacher's margin in Gardner's units (min_i y x.w
/ (||w|| sigma_x)) against Gardner's kappa, and per rho the held-out accuracy of the two teachers'
pseudo-inverse students on the same split, with the paired difference (Adam - max-margin) and its
standard error over seeds: the implicit-bias gap without data noise between the two.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def measure(d: int, alpha: float, seeds: int, rhos, epochs: int, standardize: bool) -> list[dict]:
    """One row per (seed, rho): both teachers' geometry and students' held-out accuracy."""
    from softleak.simulate.data import student_split
    from softleak.simulate.protocol import train_teachers
    from softleak.simulate.spec import SweepSpec
    from softleak.theory.leakage import gardner_kappa
    from softleak.theory.maxmargin import max_margin
    from softleak.theory.pinv import pinv_student

    spec = SweepSpec(
        "logistic-pinv",
        d=(d,),
        alpha=(alpha,),
        rho=tuple(rhos),
        seeds=seeds,
        teacher_epochs=epochs,
        standardize=standardize,
        n_val=10,
    )
    n = spec.teacher_sizes()[0][2]
    teachers = train_teachers(spec, [(d, 2, n, s) for s in range(seeds)], threads=1)
    kappa_th = float(gardner_kappa(alpha)) if alpha < 2 else float("nan")
    rows = []
    for t in teachers:
        X, y01 = t.data.X, t.data.y
        y = 2.0 * y01 - 1.0
        sigma = float(np.sqrt(np.mean(X * X)))
        w_adam = t.model.params[0][0, 0].double().numpy()
        fit = max_margin(X, y)
        separable = fit.status == "ok"
        w_svm = fit.w
        margin = {}
        for name, w in (("adam", w_adam), ("svm", w_svm)):
            norm = float(np.linalg.norm(w))
            margin[name] = float(np.min(y * (X @ w))) / (norm * sigma) if norm else float("nan")
        cos = (
            float(w_adam @ w_svm / (np.linalg.norm(w_adam) * np.linalg.norm(w_svm)))
            if separable
            else float("nan")
        )
        for rho in rhos:
            train, test = student_split(y01, rho, 2)
            accs = {}
            for name, w in (("adam", w_adam), ("svm", w_svm)):
                w_s = pinv_student(X[train], X[train] @ w)
                accs[name] = float(np.mean(np.sign(X[test] @ w_s) == y[test]))
            rows.append(
                {
                    "d": d,
                    "alpha": n / d,
                    "rho": rho,
                    "seed": t.key[3],
                    "standardize": standardize,
                    "separable": separable,
                    "adam_train_acc": t.train_acc,
                    "cos": cos,
                    "kappa_adam": margin["adam"],
                    "kappa_svm": margin["svm"],
                    "kappa_gardner": kappa_th,
                    "acc_adam": accs["adam"],
                    "acc_svm": accs["svm"] if separable else float("nan"),
                }
            )
    return rows


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Per (standardize, d, alpha, rho), over separable seeds: means, and the paired gap +- SE."""
    df = df[df["separable"]]
    out = []
    for key, g in df.groupby(["standardize", "d", "alpha", "rho"]):
        gap = g["acc_adam"] - g["acc_svm"]
        k = len(g)
        out.append(
            dict(
                zip(["standardize", "d", "alpha", "rho"], key, strict=True),
                seeds=k,
                adam_train_acc=g["adam_train_acc"].mean(),
                cos=g["cos"].mean(),
                kappa_adam=g["kappa_adam"].mean(),
                kappa_svm=g["kappa_svm"].mean(),
                kappa_gardner=g["kappa_gardner"].iloc[0],
                acc_adam=g["acc_adam"].mean(),
                acc_svm=g["acc_svm"].mean(),
                gap=gap.mean(),
                gap_se=gap.std(ddof=1) / np.sqrt(k) if k > 1 else float("nan"),
            )
        )
    return pd.DataFrame(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--d", type=lambda t: tuple(int(v) for v in t.split(",")), default=(200, 400))
    p.add_argument("--seeds", type=int, default=16)
    p.add_argument("--alpha", type=_floats, default=(0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.8))
    p.add_argument("--rho", type=_floats, default=(0.3, 0.5, 0.8))
    p.add_argument("--epochs", type=int, default=10_000)
    p.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    kinds = (True, False) if args.standardize is None else (args.standardize,)
    rows = []
    t0 = time.perf_counter()
    for standardize in kinds:
        for d in args.d:
            for alpha in args.alpha:
                rows += measure(d, alpha, args.seeds, args.rho, args.epochs, standardize)
                print(f"standardize={standardize} d={d} alpha={alpha}: {time.perf_counter() - t0:.0f} s",
                      flush=True)  # fmt: skip
    df = pd.DataFrame(rows)
    table = summarize(df)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.json is not None:
        record = {
            "settings": dataclasses.asdict(args) if dataclasses.is_dataclass(args) else vars(args),
            "summary": table.to_dict(orient="records"),
            "wall_s": time.perf_counter() - t0,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
