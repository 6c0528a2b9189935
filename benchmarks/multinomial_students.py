"""Where Fig. 5A's temperature dependence comes from (issue 25, item 5).

Usage::

    python -m benchmarks.multinomial_students [--d 200] [--c 2] [--alpha 0.25,0.5] [--seeds 6]
        [--tau log:-0.5:3.5:9] [--long-epochs 100000] [--json FILE]

A soft-label student trained from zero by a method that keeps the row-space invariance converges
to W_S = (I - 11^T/c) W P_S / tau, whose held-out argmax is the pseudo-inverse student's whatever
tau (tests/test_multinomial_identity.py): the converged curve has no tau dependence at all. Per
teacher (multinomial, the reference's Adam teacher, rho = 0.8 as in Fig. 5A) this trains, for every
tau at once:

- ``paper``: Adam, PyTorch's default initialisation, lr 1e-4, 10,000 epochs, float32 (Fig. 5A);
- ``adam0``: the same from zero;
- ``adam0_long``: Adam from zero for ``--long-epochs`` epochs;
- ``lbfgs0``: L-BFGS from zero in float64 (converged where the loss is not flat to round-off);

and compares each one's held-out member accuracy with the tau-free limit ``pinv`` (argmax of W P_S
x), and the fraction of held-out members on which its argmax agrees with that limit. The spread of
``paper`` over tau splits into finite training (``adam0`` vs ``adam0_long``), Adam's own bias
(``adam0_long`` vs ``lbfgs0``, which keeps the invariance) and the initialisation (``paper`` vs
``adam0``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from softleak.args import grid_values

STUDENTS = {
    # name: (solver, init, epochs (None: --long-epochs), dtype)
    "paper": ("adam", "default", 10_000, "float32"),
    "adam0": ("adam", "zero", 10_000, "float32"),
    "adam0_long": ("adam", "zero", None, "float32"),
    "lbfgs0": ("lbfgs", "zero", 2_000, "float64"),
}


def teacher_rows(spec, teacher, long_epochs: int) -> list[dict]:
    """Every student kind on one teacher: one row per (kind, tau)."""
    from softleak.simulate import protocol
    from softleak.simulate.data import student_split

    d, c, n, seed = teacher.key
    train, test = student_split(teacher.data.y, spec.rho[0], c)
    X, y = teacher.data.X, teacher.data.y
    W = teacher.model.params[0][0].double().numpy()  # (c, d)
    XS = X[train]
    PS = XS.T @ np.linalg.lstsq(XS @ XS.T, XS, rcond=None)[0]  # (d, d)
    limit = (X[test] @ (W @ PS).T).argmax(1)  # the tau-free held-out argmax
    base = {"d": d, "c": c, "alpha": n / (d * c), "seed": seed}
    rows = [
        {**base, "student": "pinv", "tau": float("nan"), "acc": float(np.mean(limit == y[test])),
         "agree": 1.0, "wall_s": 0.0}
    ]  # fmt: skip
    for name, (solver, init, epochs, dtype) in STUDENTS.items():
        s = dataclasses.replace(
            spec,
            solver=solver,
            student_init=init,
            student_epochs=epochs or long_epochs,
            dtype=dtype,
        )
        runs = protocol.student_runs(s, teacher.key)
        t0 = time.perf_counter()
        out, _, model = protocol.gradient_students(s, teacher, runs, threads=1)
        wall = time.perf_counter() - t0
        for r, run in enumerate(runs):
            W_S = model.params[0][r].double().numpy()
            held = (X[test] @ W_S.T).argmax(1)
            rows.append(
                {
                    **base,
                    "student": name,
                    "tau": run.tau,
                    "acc": out[r]["student_test_acc"],
                    "agree": float(np.mean(held == limit)),
                    "wall_s": wall / len(runs),
                }
            )
    return rows


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean +- SE over seeds of held-out accuracy and agreement with the limit, per (alpha,
    student, tau); the tau-free ``pinv`` limit once per alpha."""
    g = df.groupby(["alpha", "student", "tau"], dropna=False)
    out = g.agg(
        acc=("acc", "mean"), acc_sd=("acc", "std"), agree=("agree", "mean"), seeds=("seed", "size")
    ).reset_index()
    out["acc_se"] = out.pop("acc_sd") / np.sqrt(out["seeds"])
    return out


def main(argv=None) -> int:
    from softleak.simulate import protocol
    from softleak.simulate.spec import SweepSpec

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--d", type=int, default=200)
    p.add_argument("--c", type=int, default=2)
    p.add_argument("--alpha", type=grid_values, default=[0.25, 0.5])
    p.add_argument("--rho", type=float, default=0.8)
    p.add_argument("--seeds", type=int, default=6)
    p.add_argument("--tau", type=grid_values, default=grid_values("log:-0.5:3.5:9"))
    p.add_argument("--long-epochs", type=int, default=100_000)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    spec = SweepSpec(
        "multinomial",
        d=(args.d,),
        c=(args.c,),
        alpha=tuple(args.alpha),
        rho=(args.rho,),
        tau=tuple(args.tau),
        seeds=args.seeds,
        n_val=10,
    )
    t0 = time.perf_counter()
    rows = []
    for d, c, n in spec.teacher_sizes():
        keys = [(d, c, n, s) for s in range(args.seeds)]
        for teacher in protocol.train_teachers(spec, keys, threads=1):
            rows += teacher_rows(spec, teacher, args.long_epochs)
            print(f"teacher {teacher.key}: {time.perf_counter() - t0:.0f} s", flush=True)
    df = pd.DataFrame(rows)
    table = summarize(df)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        record = {"settings": vars(args), "summary": table.to_dict(orient="records"),
                  "wall_s": time.perf_counter() - t0}  # fmt: skip
        args.json.write_text(json.dumps(record, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
