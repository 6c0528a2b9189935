"""The per-seed tables of ``compare`` all come from ``compare.table.seed_means``/``seed_stats``
(issue 26 item 2): ``overlay.mean_curves``, ``phases._cell_grids`` and ``leakage.curve_agreement``.

Oracle: a plain loop over (cell, seed) written from each function's docstring, on a frame with
several students under one teacher, uneven seed counts per cell and a seed whose runs in a cell
are all NaN (which ``mean_curves`` leaves out of a metric's seeds and ``_cell_grids`` counts).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from softleak.compare.leakage import curve_agreement
from softleak.compare.overlay import mean_curves
from softleak.compare.phases import _cell_grids


def _frame(rng: np.random.Generator) -> pd.DataFrame:
    rows = [
        dict(
            experiment="logistic-pinv",
            d=50,
            c=2,
            n=int(alpha * 50),
            alpha=alpha,
            rho=rho,
            seed=s,
            shuffle=False,
            teacher="svm",
            acc=rng.random(),
            student_test_acc=rng.random(),
        )
        for alpha in (0.5, 1.0)
        for rho in (0.2, 0.5)
        for s in range(4)
        for _ in range(int(rng.integers(1, 4)))  # several students under one teacher
        if not (alpha == 1.0 and s >= 2)  # uneven: two seeds of four in these cells
    ]
    df = pd.DataFrame(rows)
    nan_seed = (df["alpha"] == 0.5) & (df["rho"] == 0.2) & (df["seed"] == 1)
    df.loc[nan_seed, ["acc", "student_test_acc"]] = np.nan  # a seed with no value in a cell
    df.loc[df.index[3], "acc"] = np.nan  # one student of several left out of its seed's mean
    return df


def _loop(df: pd.DataFrame, keys: list[str], metric: str):
    """{cell: (seed means with a value, seeds with a row)} by hand."""
    out = {}
    for cell, rows in df.groupby(keys):
        means = []
        for _, run in rows.groupby("seed"):
            values = run[metric].dropna()
            if len(values):
                means.append(values.mean())
        out[cell] = (np.array(means), rows["seed"].nunique())
    return out


def _sem(means: np.ndarray) -> float:
    return means.std(ddof=1) / math.sqrt(means.size) if means.size > 1 else math.nan


def test_mean_curves_against_a_loop(global_seed):
    df = _frame(np.random.default_rng(global_seed))
    curves = mean_curves(df, ["acc", "absent"], by=("rho",)).set_index(["rho", "alpha"])
    assert set(curves["metric"]) == {"acc"}
    for (alpha, rho), (means, _) in _loop(df, ["alpha", "rho"], "acc").items():
        row = curves.loc[(rho, alpha)]
        assert row["mean"] == pytest.approx(means.mean())
        assert row["sem"] == pytest.approx(_sem(means), nan_ok=True)
        assert row["n_seeds"] == means.size  # seeds with a value: the NaN seed left out
    cell = df[(df["alpha"] == 0.5) & (df["rho"] == 0.2)]
    assert curves.loc[(0.2, 0.5), "n_seeds"] < cell["seed"].nunique()


def test_cell_grids_against_a_loop(global_seed):
    df = _frame(np.random.default_rng(global_seed))
    xs, ys, grids, n_seeds = _cell_grids(df, "alpha", "rho", ["acc", "student_test_acc"])
    assert list(xs) == [0.5, 1.0] and list(ys) == [0.2, 0.5]
    for metric in ("acc", "student_test_acc"):
        for (rho, alpha), (means, seeds) in _loop(df, ["rho", "alpha"], metric).items():
            i, j = list(ys).index(rho), list(xs).index(alpha)
            assert grids[metric][i, j] == pytest.approx(means.mean())
            assert n_seeds[i, j] == seeds  # seeds with a row: the NaN seed counted
    assert n_seeds.tolist() == [[4, 2], [4, 2]]


def test_curve_agreement_cells_against_a_loop(global_seed):
    df = _frame(np.random.default_rng(global_seed))
    table = curve_agreement(df).table.set_index(["rho", "alpha"])
    for (rho, alpha), (means, seeds) in _loop(df, ["rho", "alpha"], "student_test_acc").items():
        row = table.loc[(rho, alpha)]
        assert row["measured"] == pytest.approx(means.mean())
        assert row["sem"] == pytest.approx(_sem(means), nan_ok=True)  # over seeds with a value
        assert row["n_seeds"] == seeds
