"""One threshold path: the ``ThresholdTable`` of a summary and every claim that names a threshold
give the same number on the same curve.

The two curves are the ones where the package's rules used to disagree: a curve that starts at the
level, falls and returns (the first crossing from below is the return, 3.99; "reached at the first
grid point" would say 1.0), and a curve with a NaN point beside its crossing (the NaN point is left
out: 2.98; counting it as below the level put the crossing at NaN and a censored bound of 1.0).
Oracles: the crossings worked out by hand; the table (``find_thresholds``), the rule
(``compare.crossings.threshold_crossing``), ``compare.reach.first_reach`` and the claims of fig4,
fig5a, fig7 and fig20 held to them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from softleak.compare import find_thresholds
from softleak.compare.crossings import threshold_crossing
from softleak.compare.reach import first_reach

LEVEL = 0.99
ALPHA = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
DIPS = np.array([0.995, 0.5, 0.6, 0.995, 1.0])  # at the level, falls, returns
DIPS_AT = 3.0 + (LEVEL - 0.6) / (0.995 - 0.6)  # 3.987...
HOLE = np.array([0.5, np.nan, 0.995, 1.0, 1.0])  # a NaN point beside the crossing
HOLE_AT = 1.0 + 2.0 * (LEVEL - 0.5) / (0.995 - 0.5)  # 2.979...
CURVES = {"dips": (DIPS, DIPS_AT), "hole": (HOLE, HOLE_AT)}


def table_rows(test: np.ndarray, *, seeds=(0, 1), rho=0.8, **extra) -> list[dict]:
    """Rows of a results table whose seed-mean student test accuracy at ``rho`` is ``test`` (a
    NaN point: no run there); teacher and student train accuracy 1 up to alpha 4, then 0.5."""
    rows = []
    for seed in seeds:
        for alpha, te in zip(ALPHA, test, strict=True):
            if np.isnan(te):
                continue
            train = 1.0 if alpha <= 4 else 0.5
            rows.append(
                dict(
                    experiment="logistic-pinv", d=200, c=2, n=int(alpha * 200), alpha=alpha,
                    rho=rho, shuffle=False, seed=seed, teacher_epochs=10_000,
                    teacher_train_acc=train, student_train_acc=train, student_test_acc=te,
                    **extra,
                )
            )  # fmt: skip
    return rows


@pytest.mark.parametrize("name", sorted(CURVES))
def test_rule_table_and_first_reach_agree_on_the_hand_computed_crossing(name):
    y, at = CURVES[name]
    assert threshold_crossing(ALPHA, y, LEVEL, "up").value == pytest.approx(at, abs=1e-12)
    assert first_reach(ALPHA, y, LEVEL)["value"] == pytest.approx(at, abs=1e-12)
    table = find_thresholds(pd.DataFrame(table_rows(y)), rules=["alpha_id_S"], n_boot=0)
    assert table.value("alpha_id_S", rho=0.8) == pytest.approx(at, abs=1e-12)


def test_fig4_claims_read_the_table():
    from softleak.paper_figs import fig4

    rows = []
    for rho, (y, _) in zip((0.8, 0.9), CURVES.values(), strict=True):
        rows += table_rows(y, rho=rho)
    df = pd.DataFrame(rows)
    table = find_thresholds(df, n_boot=0)

    class Phases:
        def counts(self):
            return dict.fromkeys(fig4.FIG4B_PHASES, 1)

    records = {r["id"]: r for r in fig4.judge(df, table, Phases())}
    measured = records["fig4.id_S_at_one_over_rho"]["measured"]
    assert measured == pytest.approx(DIPS_AT, abs=1e-6)
    assert measured == pytest.approx(table.value("alpha_id_S", rho=0.8), abs=1e-6)
    # alpha_label^S(rho) - alpha_label^T: the table's two thresholds (both 4.98 here)
    label_t = table.value("alpha_label_T")
    assert label_t == pytest.approx(4.0 + (1 - LEVEL) / 0.5, abs=1e-12)
    gap = records["fig4.label_S_follows_label_T"]["measured"]
    assert gap == pytest.approx(table.value("alpha_label_S", rho=0.8) - label_t, abs=1e-6)


def test_fig5a_claims_read_the_table():
    from softleak.paper_figs import fig5a, temperature_claims

    rows = []
    for tau, (y, _) in zip((1.0, 100.0), CURVES.values(), strict=True):
        for shuffle in (False, True):
            for row in table_rows(y, seeds=(0, 1, 2), tau=tau, student_epochs=5000):
                rows.append({**row, "experiment": "multinomial", "shuffle": shuffle})
    df = pd.DataFrame(rows)
    table = find_thresholds(df, cutoff=fig5a.CUTOFF, n_boot=0)
    theory = {"alpha_id": 1 / 1.6, "alpha_label_T": 1.0}
    records = {
        r["id"]: r
        for r in temperature_claims.judge_temperature(fig5a.CLAIMS, df, table, theory, None)
    }
    ids = [table.value("alpha_id_S", tau=t) for t in (1.0, 100.0)]
    assert ids == pytest.approx([DIPS_AT, HOLE_AT], abs=1e-12)
    assert records["fig5a.id_S_at_theory"]["measured"] == pytest.approx(min(ids), abs=1e-6)
    small = records["fig5a.label_S_small_tau"]["measured"]
    assert small == pytest.approx(table.value("alpha_label_S", tau=1.0), abs=1e-6)
    large = records["fig5a.shuffle_large_tau_at_id"]["measured"]
    assert large == pytest.approx(table.value("alpha_label_S_shuffle", tau=100.0), abs=1e-6)


def test_fig20_drops_are_the_rule_on_each_width():
    from softleak.paper_figs import fig20

    # below the level first (the after side going down), then memorizing, then not; and a NaN
    # point beside the fall
    widths = {10: np.array([0.5, 1.0, 1.0, 0.5, 0.5]), 50: np.array([1.0, 1.0, np.nan, 0.5, 0.5])}
    frame = pd.DataFrame(
        [
            {"metric": "student_train_acc", "alpha": a, "p_S": p, "mean": v, "n_seeds": 1}
            for p, y in widths.items()
            for a, v in zip(ALPHA, y, strict=True)
        ]
    )
    records = fig20.fig20_claims(frame, d=100, epochs=1000)
    drops = records[1]["measured"]
    expected = [threshold_crossing(ALPHA, y, LEVEL, "down").value for y in widths.values()]
    assert drops == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx([3.02, 2.04], abs=1e-12)


def test_fig7_order_compares_the_interpolated_thresholds():
    """alpha_label^S and alpha_id^S in the same grid step (2, 3): the rule's values (2.01 and
    2.99) order them, where the first grid points past the level would call them equal."""
    from softleak.paper_figs import mlp_claims

    train = np.array([1.0, 1.0, 0.0, 0.0, 0.0])
    test = np.array([0.1, 0.1, 1.0, 1.0, 1.0])
    rows = [
        dict(
            experiment="mlp", d=1, c=1, n=int(a), alpha=a, rho=0.5, seed=s, shuffle=False,
            ablation="none", teacher_train_acc=1.0, student_train_acc=tr, student_test_acc=te,
            student_val_acc=0.0,
        )
        for s in (0, 1, 2)
        for a, tr, te in zip(ALPHA, train, test, strict=True)
    ]  # fmt: skip

    class Phases:
        metrics = {"teacher_train_acc": np.ones((1, 5))}

        def counts(self):
            return {}

    records = {r["id"]: r for r in mlp_claims.fig7_claims(pd.DataFrame(rows), Phases(), None)}
    order = records["fig7.memorization_fails_before_identification"]
    assert order["verdict"] == "holds" and order["measured"] == 1.0
    stop = threshold_crossing(ALPHA, train, LEVEL, "down").value
    ident = threshold_crossing(ALPHA, test, LEVEL, "up").value
    assert stop == pytest.approx(2.01) and ident == pytest.approx(2 + 0.89 / 0.9)
