"""What the MLP figures (6, 7, 16-18, 21, 22) measure on their runs, shared by the drawings
(``paper_figs.mlp_figs``) and the claims (``paper_figs.mlp_claims``, ``mlp_curve_claims``): the
jump of a held-out accuracy curve and the fall before it, the steepest drop of a learning curve,
the gap between normal and shuffled students before the rise, held-out set sizes, the n that
matches a paper n, parameter-counting estimates, and the text cells of the summaries.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from softleak.compare.reach import LEVEL
from softleak.paper_figs.common import clean
from softleak.paper_figs.mlp_scale import PAPER
from softleak.simulate.data import train_per_class

__all__ = [
    "LEVEL",
    "counting_estimates",
    "dip_and_jump",
    "fall_points",
    "fmt_num",
    "fmt_value",
    "gap_before_onset",
    "held_out_size",
    "n_matching",
    "normal_rows",
    "scale_of",
    "steepest_drop",
]


def dip_and_jump(x: np.ndarray, test: np.ndarray) -> dict:
    """Along a curve of held-out accuracy: where it first reaches LEVEL (the jump), and how far it
    fell before that from its earlier maximum (the dip, from ``peak_at`` down to ``dip_at``; 0
    when it never fell).

    The jump is the first grid point with ``test >= LEVEL`` (``compare.crossings.crossing_index``
    upward with ``which="reach"``, float slack 1e-12), not interpolated.
    """
    x, test = np.asarray(x, dtype=float), np.asarray(test, dtype=float)
    j, peak, trough = fall_points(test)
    before = test[:j]
    reached = j < len(test)
    dip = float(test[peak] - test[trough]) if trough is not None else 0.0
    return {
        "jump_at": clean(x[j]) if reached else None,
        "before_jump_min": clean(before.min()) if before.size else None,
        "dip": clean(dip),
        "dip_at": clean(x[trough]) if trough is not None else None,
        "peak_at": clean(x[peak]) if trough is not None else None,
    }


def fall_points(test: np.ndarray) -> tuple[int, int | None, int | None]:
    """(jump, peak, trough) grid indices of a held-out accuracy curve: the jump as in
    ``dip_and_jump`` (``len(test)`` when it never reaches LEVEL), and the largest fall before it
    from its earlier maximum (peak) to its lowest point (trough); ``None, None`` with fewer than two
    points before the jump. A curve that never falls has peak == trough."""
    from softleak.compare.crossings import crossing_index

    test = np.asarray(test, dtype=float)
    hit = int(crossing_index(test, LEVEL, "up", which="reach", tol=1e-12))
    j = hit if hit >= 0 else len(test)
    before = test[:j]
    if before.size < 2:
        return j, None, None
    drops = np.maximum.accumulate(before) - before
    trough = int(np.argmax(drops))
    peak = int(np.argmax(before[: trough + 1]))
    return j, peak, trough


def counting_estimates(d: int, p: int, c: int) -> dict:
    """Parameter-counting estimates (theory.capacity; heuristic) as sample counts."""
    from softleak.theory.capacity import mlp_identifiability_rho_n, mlp_memorization_n

    ident = mlp_identifiability_rho_n(d, p, c)
    memo = mlp_memorization_n(d, p, c)
    return {
        "identify_rho_n": ident.value,
        "identify_formula": ident.formula,
        "memorize_n": memo.value,
        "memorize_formula": memo.formula,
        "provenance": ident.provenance,
    }


def scale_of(df: pd.DataFrame) -> tuple[int, int, int]:
    first = df.iloc[0]
    return int(first["d"]), int(str(first["p_student"]).split(",")[0]), int(first["c"])


def held_out_size(n: int, rho: float, c: int) -> int:
    """|D_test^S|: per class n/c minus the int(rho n/c) training samples (``student_split``)."""
    per_class = n // c
    return c * (per_class - train_per_class(per_class, rho))


def n_matching(ns, n_paper: float, d: int, p: int, c: int) -> int:
    """Of the grid's n, the one nearest the paper's ``n_paper`` at equal alpha / p (Fig. 19's
    collapse, the rule of ``mlp_scale``)."""
    target = n_paper / (PAPER.d * PAPER.c * PAPER.p) * (d * c * p)
    return min(ns, key=lambda v: abs(math.log(v / target)))


def gap_before_onset(lc, metric: str = "student_test_acc") -> dict[int, float]:
    """Per n: the largest |normal - shuffled| mean ``metric`` before the normal student's held-out
    rise reaches 10% of its height (its whole run where it does not rise); n without both curves
    or without a common record are left out."""
    onset = normal_rows(lc.jumps("student_test_acc")).set_index("n")["epoch_10"]
    out = {}
    for n in sorted({g[0] for g in lc.groups()}):
        if (n, False) not in lc.groups() or (n, True) not in lc.groups():
            continue
        a = lc.mean((n, False), metric).set_index("epoch")["mean"]
        b = lc.mean((n, True), metric).set_index("epoch")["mean"]
        both = pd.concat([a, b], axis=1, keys=["a", "b"]).dropna()
        start = onset.get(n, math.nan)
        if math.isfinite(start):
            both = both[both.index <= start]
        if not both.empty:
            out[int(n)] = float((both["a"] - both["b"]).abs().max())
    return out


def normal_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The unshuffled rows of a table (all of them without a ``shuffle`` column)."""
    if "shuffle" not in frame.columns:
        return frame
    return frame[~frame["shuffle"].astype(bool)]


def steepest_drop(epochs: np.ndarray, values: np.ndarray) -> float:
    """The middle of the step between records where a curve falls most (NaN without a fall)."""
    epochs, values = np.asarray(epochs, dtype=float), np.asarray(values, dtype=float)
    if values.size < 2:
        return math.nan
    drops = -np.diff(values)
    k = int(np.nanargmax(drops)) if np.isfinite(drops).any() else -1
    if k < 0 or drops[k] <= 0:
        return math.nan
    return float((epochs[k] + epochs[k + 1]) / 2)


def fmt_num(value, spec: str) -> str:
    """Format a number that may be None/NaN (then "-")."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def fmt_value(value) -> str:
    """A number as ``:g``, or "-" for None and NaN (the MLP and class figures' text cells)."""
    return (
        "-"
        if value is None or (isinstance(value, float) and not math.isfinite(value))
        else f"{value:g}"
    )
