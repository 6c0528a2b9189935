"""The validation gate for reduced precision: does bf16 leave a family's results unchanged?

For each family, one grid that contains its phase changes runs in fp32 and in bf16 from the same
seeds (same initialisations), and the two tables are compared cell by cell (issue 16, item 2):

- a *cell* is one grid point (every config column but the seeds); per cell and metric
  (held-out and train accuracy) the paired differences bf16 - fp32 over seeds must have a mean
  within ``2 * SE + 0.02`` of zero (SE: their standard error; 0.02 absorbs one flipped point of
  small held-out sets);
- along the grid's size axis (alpha or n; rho for modadd) at each other setting, the threshold
  where the seed-mean held-out accuracy first reaches ``LEVEL`` (``compare.crossings``, first grid
  point reached) may move by at most one grid step;
- a family passes when >= 90% of its cells agree and no threshold moves by more than one step.

    python -m benchmarks.precision_check --out DIR [--family F ...] [--tiny] [--json FILE]

``--tiny`` runs every family at a seconds-sized scale (the tests use it); without it the grids are
the quick presets' (tens of minutes on this CPU). Results: DIR/<family>-<precision>/ (run
directories) and a JSON summary. A family that passes may use bf16 in its presets, with a note.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from softleak.compare.crossings import crossing_index
from softleak.simulate.experiments import run_experiment

LEVEL = 0.9  # held-out accuracy that marks "identified" (the thresholds' jump)
SLACK = 0.02  # absolute tolerance beside 2 standard errors
SHARE = 0.9  # share of cells that must agree
METRICS = ("student_test_acc", "student_train_acc")
CELL_KEYS = (
    "experiment", "d", "c", "n", "alpha", "rho", "tau", "shuffle", "ablation", "checkpoint",
    "student_kind", "p_student",
)  # fmt: skip
SEED_KEYS = ("seed", "student_seed")
SIZE_AXES = ("alpha", "n", "rho")  # the first that varies: sweeps alpha, modadd rho


def families(tiny: bool) -> dict:
    """family -> spec (fp32), each a grid through its phase change, >= 3 seeds."""
    from softleak.paper_figs import fig5a, fig9
    from softleak.paper_figs.mlp_figs import QUICK, grid_sweep
    from softleak.paper_figs.tiny import shrink
    from softleak.simulate.modadd import ModAddSpec
    from softleak.simulate.spec import SweepSpec
    from softleak.simulate.toy2d import Toy2DSpec

    mlp = dataclasses.replace(grid_sweep(QUICK, "quick"), seeds=3, curve_every=0)
    linear = SweepSpec(
        "multinomial", d=(100,), c=(2,), alpha=tuple(np.round(np.linspace(0.4, 2.4, 11), 3)),
        rho=(0.5, 0.8), tau=(1.0, 10.0), seeds=3, teacher_epochs=2000, student_epochs=2000,
    )  # fmt: skip
    modadd = ModAddSpec(
        p=59, train_frac=0.4, teacher_lr=3e-3, checkpoints=(100, 600), teacher_epochs=600,
        rho=(0.1, 0.3, 0.5, 0.7, 0.9), tau=(1.0,), student_epochs=600, student_seeds=3,
        curve_every=0,
    )  # fmt: skip
    out = {
        "mlp": mlp,
        "toy2d": Toy2DSpec(seeds=3),
        "modadd-transformer": modadd,
        "modadd-mlp": dataclasses.replace(modadd, model="mlp"),
        "linear": linear,
        "fig5a": fig5a.QUICK,  # the linear quick preset itself (its alpha x tau grid, 4 seeds)
        # GPT-2's phase changes are out of reach on a CPU: its quick configuration at the quick
        # preset's rho values, three repetitions
        "gpt2": dataclasses.replace(fig9.QUICK, student_seeds=3),
    }
    if tiny:
        out = {k: _three_seeds(shrink(v)) for k, v in out.items()}
    return out


def _three_seeds(spec):
    field = "seeds" if hasattr(spec, "seeds") else "student_seeds"
    return dataclasses.replace(spec, **{field: max(3, getattr(spec, field))})


def compare_tables(fp32: pd.DataFrame, bf16: pd.DataFrame) -> dict:
    """The gate's numbers for one family (see the module docstring)."""
    keys = [k for k in CELL_KEYS if k in fp32.columns]
    seeds = [k for k in SEED_KEYS if k in fp32.columns]
    a = fp32.set_index(keys + seeds).sort_index()
    b = bf16.set_index(keys + seeds).sort_index()
    if not a.index.equals(b.index):
        raise ValueError("fp32 and bf16 tables hold different runs")
    rows = []
    for metric in METRICS:
        diff = (b[metric] - a[metric]).groupby(level=keys, dropna=False)
        stats = pd.DataFrame({"mean": diff.mean(), "sem": diff.sem(), "n": diff.size()})
        stats["ok"] = stats["mean"].abs() <= 2 * stats["sem"].fillna(0.0) + SLACK
        rows.append(stats.assign(metric=metric))
    cells = pd.concat(rows)
    moves = threshold_moves(fp32, bf16, keys)
    share = float(cells["ok"].mean())
    largest = max((m for m in moves if m is not None), default=0)
    return {
        "cells": int(len(cells)),
        "share_within": round(share, 4),
        "largest_mean_diff": round(float(cells["mean"].abs().max()), 4),
        "largest_threshold_move": int(largest),
        "thresholds": len(moves),
        "passed": bool(share >= SHARE and largest <= 1),
    }


def threshold_moves(fp32: pd.DataFrame, bf16: pd.DataFrame, keys: list[str]) -> list[int | None]:
    """Grid steps between the fp32 and bf16 jumps of held-out accuracy along the size axis, at
    every other setting (None where neither reaches ``LEVEL``)."""
    axis = next((k for k in SIZE_AXES if k in keys and fp32[k].nunique() > 1), None)
    if axis is None:
        return []
    others = [k for k in keys if k != axis and k not in ("alpha", "n")]  # n follows alpha
    moves = []
    groups_a = fp32.groupby(others, dropna=False) if others else [((), fp32)]
    for key, ga in groups_a:
        gb = bf16
        for k, v in zip(others, key if isinstance(key, tuple) else (key,), strict=True):
            gb = gb[(gb[k] == v) | (gb[k].isna() & pd.isna(v))]
        ya = ga.groupby(axis)["student_test_acc"].mean().sort_index()
        yb = gb.groupby(axis)["student_test_acc"].mean().reindex(ya.index)
        ia = int(crossing_index(ya.to_numpy(), LEVEL, "up", which="reach"))
        ib = int(crossing_index(yb.to_numpy(), LEVEL, "up", which="reach"))
        if ia < 0 and ib < 0:
            moves.append(None)
        else:
            moves.append(abs((ia if ia >= 0 else len(ya)) - (ib if ib >= 0 else len(ya))))
    return moves


def check(name: str, spec, out: Path, threads: int | None = 1, precision: str = "bf16") -> dict:
    """Run one family in fp32 and ``precision`` (resuming) and compare."""
    from softleak.simulate.precision import resolve

    t0 = time.perf_counter()
    tables = {
        p: run_experiment(
            dataclasses.replace(spec, precision=p), out / f"{name}-{p}", threads=threads,
            progress=False,
        )
        for p in ("fp32", precision)
    }  # fmt: skip
    result = compare_tables(tables["fp32"], tables[precision])
    mechanism = resolve(precision, getattr(spec, "device", "cpu"))
    return {
        "family": name,
        "precision": precision,
        "mechanism": mechanism.name if mechanism else None,
        **result,
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the run directories")
    parser.add_argument("--family", action="append", help="only these families (repeatable)")
    parser.add_argument("--tiny", action="store_true", help="seconds-sized grids (the tests')")
    parser.add_argument("--json", help="write the summary here too")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--precision",
        choices=("bf16", "bf16r"),
        default="bf16",
        help="the reduced contract to validate against fp32 (default bf16; one this machine has "
        "no fast path for runs only with SOFTLEAK_SLOW_PRECISION=1, emulated)",
    )
    args = parser.parse_args(argv)
    specs = families(args.tiny)
    unknown = [f for f in args.family or () if f not in specs]
    if unknown:
        parser.error(f"unknown family {unknown[0]!r}; choose from {', '.join(specs)}")
    summary = []
    for name in args.family or specs:
        res = check(name, specs[name], Path(args.out), args.threads, args.precision)
        summary.append(res)
        verdict = "passes" if res["passed"] else "FAILS"
        print(
            f"{name:20s} {verdict}: {res['cells']} cells, {100 * res['share_within']:.0f}% within "
            f"2 SE + {SLACK}, largest mean diff {res['largest_mean_diff']:.3f}, largest threshold "
            f"move {res['largest_threshold_move']} step(s) of {res['thresholds']} ({res['wall_s']} s)"
        )
    text = json.dumps(
        {"level": LEVEL, "slack": SLACK, "share": SHARE, "families": summary}, indent=2
    )
    if args.json:
        Path(args.json).write_text(text)
    return 0 if all(r["passed"] for r in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
