"""Thresholds from results tables: interpolated crossings, the reference rule, bootstrap intervals.

Oracles: piecewise-linear curves whose crossing of the cut-off lies between two grid points on one
linear piece, so linear interpolation recovers it exactly (to float rounding, ``EXACT``); the
reference code's rule written out by hand; bootstrap coverage over many independent noisy
experiments (a binomial bound that holds for any seed).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from softleak.compare.thresholds import (
    RULES,
    crossings,
    find_thresholds,
    reference_rule,
    threshold_of_curve,
)

EXACT = 1e-12  # float rounding of one interpolation step


def ramp_down(alpha: np.ndarray, start: float, slope: float) -> np.ndarray:
    """1 up to ``start``, then falling linearly with ``slope`` (per unit alpha), floored at 0.5."""
    return np.clip(1.0 - slope * (alpha - start), 0.5, 1.0)


def ramp_up(alpha: np.ndarray, start: float, slope: float) -> np.ndarray:
    """0.5 up to ``start``, then rising linearly to 1."""
    return np.clip(0.5 + slope * (alpha - start), 0.5, 1.0)


def table(
    alphas: np.ndarray,
    rhos: list[float],
    seeds: int,
    teacher,
    train,
    test,
    shuffled_train=None,
    experiment: str = "logistic-pinv",
    d: int = 100,
    c: int = 2,
    taus: list[float] | None = None,
    noise: float = 0.0,
    rng: np.random.Generator | None = None,
) -> pd.DataFrame:
    """A synthetic results table: metric functions of (alpha, rho) plus optional noise per seed."""
    rng = rng or np.random.default_rng(0)
    rows = []
    for seed in range(seeds):
        for a in alphas:
            t_acc = float(teacher(a)) + noise * rng.standard_normal()
            for rho in rhos:
                for tau in taus or [math.nan]:
                    for shuffle in (False, True) if shuffled_train else (False,):
                        tr = shuffled_train(a, rho) if shuffle else train(a, rho)
                        rows.append(
                            {
                                "experiment": experiment,
                                "d": d,
                                "c": c,
                                "n": int(round(a * d)),
                                "alpha": float(a),
                                "rho": rho,
                                "tau": tau,
                                "shuffle": shuffle,
                                "ablation": "none",
                                "solver": "pinv",
                                "seed": seed,
                                "teacher_train_acc": t_acc,
                                "student_train_acc": float(tr) + noise * rng.standard_normal(),
                                "student_test_acc": float(test(a, rho))
                                + noise * rng.standard_normal(),
                            }
                        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# crossings on known curves


def test_downward_crossing_of_piecewise_linear_curve_is_exact():
    alpha = np.linspace(0.5, 3.0, 26)  # step 0.1
    y = ramp_down(alpha, start=1.5, slope=0.1)  # y = 1 - 0.1 (a - 1.5)
    cutoff = 0.985  # crossing at 1.65, between grid points 1.6 and 1.7 on one linear piece
    assert crossings(alpha, y, cutoff, "down") == pytest.approx(1.65, abs=EXACT)
    # the reference rule: midpoint of the last grid alpha with y >= cutoff (1.6) and the next
    assert reference_rule(alpha, y, cutoff, "down") == pytest.approx(1.65, abs=EXACT)


def test_upward_crossing_and_reference_smallest_alpha():
    alpha = np.linspace(0.5, 3.0, 26)
    y = ramp_up(alpha, start=0.5, slope=0.2)  # 0.99 at 2.95, between grid points 2.9 and 3.0
    assert crossings(alpha, y, 0.99, "up") == pytest.approx(2.95, abs=EXACT)
    # reference rule for alpha_id: the smallest grid alpha with y >= 0.99, i.e. 3.0
    assert reference_rule(alpha, y, 0.99, "up") == pytest.approx(3.0, abs=EXACT)


def test_reference_midpoint_uses_largest_satisfying_alpha_on_nonmonotone_curve():
    alpha = np.arange(1.0, 2.05, 0.1)
    y = np.array([1, 1, 1, 0.9, 0.9, 1, 1, 0.8, 0.8, 0.8, 0.8])
    # first downward crossing: between 1.2 and 1.3; the reference's largest alpha with y >= 0.99
    # is 1.6, so its midpoint is 1.65
    assert crossings(alpha, y, 0.99, "down") == pytest.approx(1.2 + 0.1 * 0.01 / 0.1, abs=EXACT)
    assert reference_rule(alpha, y, 0.99, "down") == pytest.approx(1.65, abs=EXACT)


def test_censored_and_wrong_direction_curves():
    alpha = np.linspace(1, 2, 11)
    ys = np.stack([np.ones(11), np.full(11, 0.5), np.linspace(0.5, 1.0, 11)], axis=1)
    down = crossings(alpha, ys, 0.99, "down")
    up = crossings(alpha, ys, 0.99, "up")
    assert down[0] == np.inf and down[1] == -np.inf and np.isnan(down[2])
    assert up[0] == -np.inf and up[1] == np.inf and up[2] == pytest.approx(1.98, abs=EXACT)
    value, lo, hi, mid, note = threshold_of_curve(alpha, np.ones((11, 3)), "alpha_label_T")
    assert math.isnan(value) and "threshold > 2" in note
    assert math.isnan(mid)  # the last grid point satisfies the rule: no next point


def test_one_seed_has_no_interval():
    alpha = np.linspace(0.5, 3.0, 26)
    value, lo, hi, _, note = threshold_of_curve(
        alpha, ramp_down(alpha, 1.5, 0.1), "alpha_label_T", cutoff=0.985
    )
    assert value == pytest.approx(1.65, abs=EXACT)
    assert math.isnan(lo) and math.isnan(hi) and "one seed" in note


# ------------------------------------------------------------------------------------------------
# find_thresholds on synthetic tables


def clean_table(**kwargs) -> pd.DataFrame:
    alpha = np.linspace(0.5, 3.0, 26)
    return table(
        alpha,
        rhos=kwargs.pop("rhos", [0.5, 0.8]),
        seeds=kwargs.pop("seeds", 3),
        teacher=lambda a: ramp_down(np.asarray(a), 1.8, 0.04),  # 0.99 at 2.05
        train=lambda a, rho: ramp_down(np.asarray(a), 1.8, 0.04),
        # 0.99 at rho alpha = 1, linear up to rho alpha = 1.05 (past the bracketing grid point)
        test=lambda a, rho: np.clip(0.99 + 0.2 * (rho * np.asarray(a) - 1.0), 0.5, 1.0),
        shuffled_train=lambda a, rho: ramp_down(np.asarray(a), 0.75, 0.1),  # 0.99 at 0.85
        **kwargs,
    )


def test_find_thresholds_recovers_every_rule_exactly_without_noise():
    df = clean_table()
    tab = find_thresholds(df, n_boot=50, seed=1)
    by = {(r.name, None if math.isnan(r.rho) else r.rho): r for r in tab.rows}
    assert set(r.name for r in tab.rows) == set(RULES)
    assert by[("alpha_label_T", None)].value == pytest.approx(2.05, abs=EXACT)
    for rho in (0.5, 0.8):
        assert by[("alpha_label_S", rho)].value == pytest.approx(2.05, abs=EXACT)
        assert by[("alpha_label_S_shuffle", rho)].value == pytest.approx(0.85, abs=EXACT)
        # test acc reaches 0.99 at rho alpha = 1
        assert by[("alpha_id_S", rho)].value == pytest.approx(1 / rho, abs=1e-9)
        # identical seeds: the bootstrap interval collapses onto the value
        assert by[("alpha_id_S", rho)].ci_low == pytest.approx(1 / rho, abs=1e-9)
    # alpha_label_T is one row (the teacher sees neither rho nor tau)
    assert len(tab.select("alpha_label_T")) == 1
    assert by[("alpha_label_T", None)].n_seeds == 3


def test_teacher_rule_groups_by_d_and_c_only_and_nan_tau_is_kept():
    df = clean_table(taus=[1.0, 10.0])
    df2 = clean_table(taus=[1.0, 10.0], d=200)
    tab = find_thresholds(pd.concat([df, df2]), n_boot=0)
    assert sorted(r.d for r in tab.select("alpha_label_T").rows) == [100, 200]
    assert len(tab.select("alpha_id_S").rows) == 2 * 2 * 2  # d x rho x tau
    # tau = NaN (pinv student) groups are not dropped
    tab_nan = find_thresholds(clean_table(), n_boot=0)
    assert all(math.isnan(r.tau) for r in tab_nan.select("alpha_id_S").rows)
    assert len(tab_nan.select("alpha_id_S").rows) == 2


def test_report_contract_and_theory_gap():
    tab = find_thresholds(clean_table(rhos=[0.8]), n_boot=20)
    rep = json.loads(json.dumps(tab.report(), allow_nan=False))
    assert set(rep) == {
        "alpha_label_T",
        "alpha_label_S",
        "alpha_id_S",
        "alpha_label_S_shuffle",
        "theory",
    }
    one = rep["alpha_id_S"]
    assert isinstance(one, dict)  # one rho: one object, not a list
    assert {"value", "ci_low", "ci_high", "rho", "tau", "midpoint", "d", "c", "n_seeds"} <= set(one)
    assert rep["theory"]["alpha_id"]["value"] == pytest.approx(1.25)
    gap = rep["theory"]["gap"]["alpha_id_S"]
    assert gap["gap"] == pytest.approx(gap["measured"] - gap["predicted"])
    assert rep["theory"]["alpha_label_T"]["value"] == pytest.approx(2.0)  # Cover, finite d
    # several rho -> lists; no shuffled runs -> null
    tab2 = find_thresholds(clean_table().query("not shuffle"), n_boot=0)
    rep2 = tab2.report()
    assert isinstance(rep2["alpha_id_S"], list) and len(rep2["alpha_id_S"]) == 2
    assert rep2["alpha_label_S_shuffle"] is None
    assert isinstance(rep2["theory"]["alpha_id"], list)


def test_cutoff_one_is_the_multinomial_exact_rule():
    alpha = np.linspace(0.3, 1.25, 20)
    df = table(
        alpha,
        rhos=[0.8],
        seeds=2,
        teacher=lambda a: 1.0 if a <= 0.75 else 0.97,
        train=lambda a, rho: 1.0,
        test=lambda a, rho: 1.0,
        experiment="multinomial",
    )
    tab = find_thresholds(df, rules=["alpha_label_T"], cutoff=1.0, n_boot=0)
    (row,) = tab.rows
    last = alpha[alpha <= 0.75].max()
    nxt = alpha[alpha > 0.75].min()
    assert row.midpoint == pytest.approx(0.5 * (last + nxt))
    assert last <= row.value <= nxt


def test_bootstrap_interval_covers_the_truth_across_independent_experiments():
    """Noisy seeds around a piecewise-linear truth with crossing 1.65: the 95% percentile interval
    must contain 1.65 in most of 100 independent experiments. With ten seeds the bootstrap's
    coverage is a little under nominal (measured ~0.90 over 2000 experiments); requiring >= 75%
    fails with probability ~1e-5 at coverage 0.90 (binomial tail) and almost surely at coverage
    0.5, so the test holds for any seed yet catches a badly undercovering interval."""
    alpha = np.linspace(1.0, 2.5, 16)
    truth = ramp_down(alpha, 1.5, 0.1)  # crossing of 0.985 at 1.65
    master = np.random.default_rng()
    hits = 0
    widths = []
    n_exp = 100
    for _ in range(n_exp):
        m = truth[:, None] + 0.004 * master.standard_normal((alpha.size, 10))
        value, lo, hi, _, _ = threshold_of_curve(
            alpha, m, "alpha_label_T", cutoff=0.985, n_boot=300, rng=master
        )
        hits += lo <= 1.65 <= hi
        widths.append(hi - lo)
    assert hits >= 0.75 * n_exp
    # meaningful: the interval is much narrower than the grid's span
    assert np.median(widths) < 0.1


def test_table_plot_draws_the_table(tmp_path):
    """What ThresholdTable.plot draws is the table: one marker per finite student threshold at
    (rho, value), the teacher's capacity as a horizontal line, theory's alpha_id = 1/rho."""
    from softleak.compare.style import new_figure

    tab = find_thresholds(clean_table(), n_boot=20)
    frame = tab.to_frame()
    assert {"name", "value", "ci_low", "ci_high", "midpoint", "rho", "tau"} <= set(frame.columns)
    fig, (ax,) = new_figure()
    tab.plot(ax=ax)
    lines = ax.get_lines()
    points = {
        (round(float(x), 9), round(float(y), 9))
        for line in lines
        if line.get_marker() == "o"
        for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True)
        if np.isfinite(y)
    }
    students = {
        (round(r.rho, 9), round(r.value, 9))
        for r in tab.rows
        if r.name != "alpha_label_T" and math.isfinite(r.value)
    }
    assert students and points == students
    flat = {round(float(line.get_ydata()[0]), 9) for line in lines if line.get_marker() == "None"}
    teacher = [r.value for r in tab.rows if r.name == "alpha_label_T" and math.isfinite(r.value)]
    assert teacher and {round(v, 9) for v in teacher} <= flat
    (theory,) = [line for line in lines if str(line.get_label()) == r"theory $\alpha_{\rm id}$"]
    np.testing.assert_allclose(theory.get_ydata(), 1 / np.asarray(theory.get_xdata()))
    assert json.dumps(tab.to_dict(), allow_nan=False)


# ------------------------------------------------------------------------------------------------
# thresholds vs the number of classes (Fig. 5B) and the theory overlay (Fig. 4A)


def class_table() -> pd.DataFrame:
    """Exact piecewise-linear curves with alpha_id = 2/c and alpha_label = 0.92/ln c (the paper's
    collapses), on a grid of step 0.02 fine enough to hold each crossing on one linear piece."""
    alpha = np.round(np.arange(0.02, 2.0, 0.02), 10)
    frames = []
    for c in (2, 5, 10, 20, 40):
        a_id, a_label = 2.0 / c, 0.92 / math.log(c)
        frames.append(
            table(
                alpha,
                rhos=[0.55],
                seeds=2,
                teacher=lambda a, al=a_label: np.clip(0.99 - 0.5 * (a - al), 0.5, 1.0),
                train=lambda a, rho, al=a_label: np.clip(0.99 - 0.5 * (a - al), 0.5, 1.0),
                test=lambda a, rho, ai=a_id: np.clip(0.99 + 0.5 * (a - ai), 0.5, 1.0),
                experiment="multinomial",
                c=c,
                taus=[10.0],
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_class_collapse_recovers_the_scaling_laws(tmp_path):
    from softleak.compare.class_collapse import class_collapse
    from softleak.compare.style import new_figure, save_figure

    result = class_collapse(class_table(), n_boot=0)
    vs_c = result.thresholds_vs_c()
    ids = vs_c[vs_c["name"] == "alpha_id_S"]
    np.testing.assert_allclose(ids["value_c"], 2.0, atol=1e-9)  # alpha c collapses to 2
    labels = vs_c[vs_c["name"] == "alpha_label_T"]
    np.testing.assert_allclose(labels["value_log"], 0.92, atol=1e-9)
    if result.fits:  # theory.class_scaling present
        assert result.fits["alpha_id_S"].best.name == "1/c"
        assert result.fits["alpha_label_T"].best.name == "1/ln c"
    assert json.dumps(result.to_dict(), allow_nan=False)
    fig, axes = new_figure(ncols=3)
    result.plot(axes=axes)
    for ax in axes:  # every panel shows data and says what
        assert ax.has_data() and (ax.get_xlabel() or ax.get_title())
    assert save_figure(fig, tmp_path / "classes.png").is_file()


def test_overlay_gaps_and_cover_curve(tmp_path):
    from softleak.compare.overlay import overlay
    from softleak.compare.style import new_figure, save_figure

    result = overlay(clean_table(), n_boot=20)
    gaps = result.gaps.set_index(["name", "rho"], drop=False)
    for rho in (0.5, 0.8):
        row = gaps[(gaps["name"] == "alpha_id_S") & np.isclose(gaps["rho"], rho)].iloc[0]
        assert row["predicted"] == pytest.approx(1 / rho)
        assert row["gap"] == pytest.approx(row["measured"] - 1 / rho)
        assert abs(row["gap"]) < 1e-9  # the synthetic student recovers at exactly 1/rho
    teacher = gaps[gaps["name"] == "alpha_label_T"].iloc[0]
    assert teacher["gap"] == pytest.approx(2.05 - 2.0)
    # Cover's P(n, d) is 1/2 at alpha = 2 (single logit, n = alpha d)
    assert np.interp(2.0, result.cover_alpha, result.cover_p) == pytest.approx(0.5, abs=0.02)
    curves = result.curves
    assert set(curves["metric"]) == {"teacher_train_acc", "student_train_acc", "student_test_acc"}
    assert (curves["n_seeds"] == 3).all()
    fig, (ax,) = new_figure()
    result.plot(ax=ax, rho=0.8)
    # the panel draws the rho = 0.8 curves: their means are among the drawn lines
    drawn = [np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()]
    at = curves[np.isclose(curves["rho"].astype(float), 0.8)]
    for metric in ("student_test_acc", "student_train_acc"):
        mean = at[at["metric"] == metric].sort_values("alpha")["mean"].to_numpy()
        assert any(len(y) == len(mean) and np.allclose(y, mean) for y in drawn), metric
    assert save_figure(fig, tmp_path / "overlay.png").is_file()


def test_mse_identification_rule_finds_the_known_crossing():
    """log10 MSE falls linearly in alpha through -6 at alpha = 1.3: the rule, which reads the
    derived -log10(test MSE) column, must interpolate to exactly 1.3; exact zeros stay finite."""
    from softleak.compare.thresholds import find_thresholds

    alphas = np.round(np.arange(0.5, 2.01, 0.1), 10)
    rows = []
    for seed in range(3):
        for a in alphas:
            log10_mse = -6.0 - 10.0 * (a - 1.3)  # -6 exactly at 1.3, linear between grid points
            mse = 0.0 if a > 1.85 else 10.0**log10_mse
            rows.append(
                dict(
                    experiment="logistic-pinv",
                    d=100,
                    c=2,
                    alpha=a,
                    rho=0.8,
                    seed=seed,
                    shuffle=False,
                    teacher_train_acc=1.0,
                    student_train_acc=1.0,
                    student_test_acc=1.0,
                    test_mse=mse,
                )
            )
    table = find_thresholds(pd.DataFrame(rows), rules=["alpha_mse_S"], cutoff=6.0, n_boot=50)
    (row,) = table.select("alpha_mse_S").rows
    assert row.value == pytest.approx(1.3, abs=1e-9)
    assert row.midpoint == pytest.approx(1.3, abs=1e-9)  # the reference rule: first grid alpha
