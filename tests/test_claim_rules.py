"""The named tolerance rules of ``compare.claims`` and the per-seed table of ``compare.table``.

Oracles: the rules worked out by hand on small numbers; the per-seed table against a plain loop
over (cell, seed) written from its docstring, with NaN values and a seed missing from a cell.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from softleak.compare.claims import SAME_ACCURACY, tol_binomial, tol_grid_step, tol_seed_se
from softleak.compare.table import seed_means, seed_stats


def test_tolerance_rules_by_hand():
    assert tol_grid_step([0.1, 0.2, 0.4], at=0.3) == pytest.approx(0.2)
    # the noisiest of two cells: p = 0.5 over 100 trials, se 0.05
    assert tol_binomial([0.5, 0.9], [100, 100], k=2) == pytest.approx(0.1)
    # a difference of two accuracies: sqrt(0.25 / 100 + 0.09 / 100)
    assert tol_binomial([0.5, 0.9], 100, k=1, combine="sum") == pytest.approx(math.sqrt(0.0034))
    assert tol_binomial([], 10) == 0.0
    assert tol_seed_se([0.01, np.nan, 0.03], k=2) == pytest.approx(0.06)
    assert tol_seed_se([np.nan]) == 0.0  # one seed: no standard error
    assert SAME_ACCURACY == 0.05
    with pytest.raises(ValueError):
        tol_binomial([0.5], 10, combine="mean")


def test_seed_means_and_stats_against_a_loop(global_seed):
    rng = np.random.default_rng(global_seed)
    rows = [
        dict(n=n, rho=rho, seed=s, acc=rng.random(), val=rng.random())
        for n in (10, 20)
        for rho in (0.2, 0.5)
        for s in range(3)
        for _ in range(int(rng.integers(1, 4)))  # several students under one teacher
        if not (n == 20 and rho == 0.5 and s == 2)  # a seed without a run in this cell
    ]
    df = pd.DataFrame(rows)
    df.loc[df.index[::5], "acc"] = np.nan  # values left out of the means
    per = seed_means(df, ["n", "rho"], ["acc", "val"])
    stats = seed_stats(per, ["n", "rho"])
    for (n, rho), cell in df.groupby(["n", "rho"]):
        by_seed = {s: g for s, g in cell.groupby("seed")}
        means = [
            np.nanmean(g["acc"]) if g["acc"].notna().any() else np.nan for g in by_seed.values()
        ]
        for s, m in zip(by_seed, means, strict=True):
            assert per.loc[(n, rho, s), "acc"] == pytest.approx(m, nan_ok=True)
        finite = np.array([m for m in means if np.isfinite(m)])
        assert stats.loc[(n, rho), "acc"] == pytest.approx(finite.mean())
        sem = finite.std(ddof=1) / math.sqrt(finite.size) if finite.size > 1 else np.nan
        assert stats.loc[(n, rho), "acc_sem"] == pytest.approx(sem, nan_ok=True)
        assert stats.loc[(n, rho), "n_seeds"] == len(by_seed)
    wide = seed_means(df, ["n", "rho"], "val", wide=True)
    assert list(wide.columns) == [0, 1, 2] and np.isnan(wide.loc[(20, 0.5), 2])
