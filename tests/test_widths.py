"""Helpers of the width figures (Figs. 19-21, ``paper_figs.widths``): crossings on known curves,
the counting estimates against ``theory.capacity``, the quick grids' per-class split, the tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from softleak.paper_figs import widths as W
from softleak.paper_figs.mlp_scale import PAPER, QUICK
from softleak.theory.capacity import (
    mlp_identifiability_alpha,
    mlp_identifiability_rho_n,
    mlp_memorization_alpha,
    mlp_widest_identifiable,
)


def test_scaled_reach_changes_units_of_value_and_bound():
    entry = W.scaled_reach({"value": 2.0, "bound": None, "censored": None, "note": ""}, 3.0)
    assert entry["value"] == 6.0 and entry["bound"] is None
    cens = W.scaled_reach({"value": None, "bound": 0.5, "censored": "above", "note": ""}, 4.0)
    assert cens["bound"] == 2.0 and W.fmt_reach(cens) == ">2"


# --- spread -------------------------------------------------------------------------------------
def test_spread_of_known_values():
    s = W.spread([1.0, 2.0, None, float("nan"), 3.0])
    assert s["count"] == 3
    assert s["ratio"] == pytest.approx(3.0)
    assert s["rel_sd"] == pytest.approx(1.0 / 2.0)  # sd (ddof 1) of 1, 2, 3 is 1; mean 2
    assert W.spread([2.0, 2.0])["ratio"] == 1.0 and W.spread([2.0, 2.0])["rel_sd"] == 0.0
    assert W.spread([1.0, None])["ratio"] is None


# --- counting estimates ----------------------------------------------------------------------------
@pytest.mark.parametrize(("d", "c", "p"), [(100, 100, 50), (1000, 100, 500), (12, 3, 7)])
def test_widest_identifiable_inverts_the_count(d, c, p):
    rho_n = mlp_identifiability_rho_n(d, p, c).value
    assert mlp_widest_identifiable(d, c, rho_n) == pytest.approx(p)


@pytest.mark.parametrize(("d", "c", "rho"), [(1000, 100, 0.45), (100, 100, 0.45), (50, 10, 0.8)])
def test_identifiability_is_a_constant_in_alpha_over_p(d, c, rho):
    """rho n (c - 1) = p (d + c) + c - 1: alpha / p tends to (d + c) / (rho (c - 1) d c)."""
    for p in (10, 100, 1000):
        alpha = mlp_identifiability_alpha(d, c, p, rho)
        n = alpha * d * c
        assert rho * n * (c - 1) == pytest.approx(p * (d + c) + c - 1)
    limit = (d + c) / (rho * (c - 1) * d * c)
    assert mlp_identifiability_alpha(d, c, 10**6, rho) / 10**6 == pytest.approx(limit, rel=1e-5)


def test_memorization_is_proportional_to_width_in_alpha_over_p():
    d, c = 100, 100
    per_p = [mlp_memorization_alpha(d, c, p) / p for p in (10, 100, 1000)]
    assert per_p[0] > per_p[1] > per_p[2]  # the output bias adds c/p, then it flattens
    assert per_p[2] == pytest.approx((d + c + 1) / (2 * math.log(c) * d * c), rel=1e-3)


# --- grids ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rho", [0.2, 0.45, 0.65])
@pytest.mark.parametrize("n_paper", [12_500, 37_500, 62_500, 150_000, 290_000])
def test_balanced_n_picks_the_best_split_in_its_window(n_paper, rho):
    n = W.balanced_n(QUICK, n_paper, rho, tol=0.15, min_per_class=5, rho_tol=0.015)
    assert n % QUICK.c == 0
    m = n // QUICK.c
    target = max(n_paper * QUICK.n_factor / QUICK.c, 5)
    window = range(max(5, math.floor(0.85 * target)), max(5, math.ceil(1.15 * target)) + 1)
    assert m in window

    def err(k):
        return abs(W.effective_rho(k, rho) - rho)

    good = [k for k in window if err(k) <= 0.015]
    if good:  # the closest to the target among the good splits
        assert err(m) <= 0.015
        assert abs(m - target) == min(abs(k - target) for k in good)
    else:  # else the best split
        assert err(m) == pytest.approx(min(err(k) for k in window))


def test_quick_presets_keep_the_nominal_split():
    """Every quick sweep of Figs. 19-21 has >= 5 samples per class and a floor split within 0.07
    of its nominal rho (Fig. 21's rho values are realised exactly)."""
    from softleak.paper_figs import fig19, fig20, fig21

    for recipe, tol in ((fig19.RECIPE, 0.07), (fig20.RECIPE, 0.07), (fig21.RECIPE, 1e-12)):
        for spec in recipe.presets["quick"].sweeps.values():
            for n in spec.n:
                m = n // spec.c[0]
                assert m >= 5, (recipe.name, n)
                for rho in spec.rho:
                    assert abs(W.effective_rho(m, rho) - rho) <= tol, (recipe.name, n, rho)


def test_quick_fig19_runs_every_width_at_comparable_alpha_over_p():
    from softleak.paper_figs import fig19

    grids = {}
    for spec in fig19.RECIPE.presets["quick"].sweeps.values():
        p = spec.p_student[0]
        assert spec.p_teacher == spec.p_student
        grids[p] = np.array(spec.n) / (spec.d[0] * spec.c[0] * p)
    wide = [g for p, g in grids.items() if p >= 25]
    assert len(wide) >= 3
    lo, hi = max(g.min() for g in wide), min(g.max() for g in wide)
    assert hi / lo > 2.5  # a common alpha/p range wide enough to see the rise
    assert PAPER.width(650) == 650 and QUICK.width(650) == 65


# --- tables -------------------------------------------------------------------------------------------
def _rows(p_s: str, seeds: int) -> pd.DataFrame:
    rows = []
    for alpha in (0.1, 0.2):
        for seed in range(seeds):
            rows.append(
                {
                    "d": 10,
                    "c": 5,
                    "alpha": alpha,
                    "rho": 0.5,
                    "seed": seed,
                    "p_teacher": "8",
                    "p_student": p_s,
                    "teacher_train_acc": 1.0,
                    "student_train_acc": 0.5 + 0.1 * seed,
                    "student_test_acc": alpha + 0.1 * seed,
                }
            )
    return pd.DataFrame(rows)


def test_width_table_and_curves():
    df = W.widths_table({"a": _rows("4", 3), "b": _rows("16", 3), "empty": pd.DataFrame()})
    assert sorted(df["p_S"].unique()) == [4, 16] and set(df["p_T"]) == {8}
    curves = W.width_curves(df)
    test = curves[(curves["metric"] == "student_test_acc") & (curves["p_S"] == 16)]
    test = test.sort_values("alpha")
    assert test["mean"].to_numpy() == pytest.approx([0.2, 0.3])
    assert test["sem"].to_numpy() == pytest.approx([0.1 / math.sqrt(3)] * 2)
    assert test["n"].tolist() == [5, 10]
    assert test["alpha_per_p"].to_numpy() == pytest.approx([0.1 / 16, 0.2 / 16])


def test_width_table_rejects_two_hidden_layers_and_no_data():
    with pytest.raises(ValueError, match="one hidden layer"):
        W.widths_table({"a": _rows("4,4", 1)})
    with pytest.raises(ValueError, match="no results"):
        W.widths_table({"a": pd.DataFrame()})


def test_num_keeps_six_significant_digits():
    assert W.num(1.23456789e-4) == 1.23457e-4  # common.clean would give 0.000123
    assert W.num(float("nan")) is None and W.num(float("inf")) is None and W.num(None) is None
