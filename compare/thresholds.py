"""Empirical thresholds from a results table, with bootstrap confidence intervals over seeds.

Four named rules (paper Sec. 5.1, docs/reference.md "Threshold rules"), each applied to the seed-mean
accuracy curve as a function of alpha:

===========================  =========================  =========  ==========================
rule                         metric                     direction  rows used
===========================  =========================  =========  ==========================
``alpha_label_T``            ``teacher_train_acc``      down       all; grouped by teacher
``alpha_label_S``            ``student_train_acc``      down       unshuffled
``alpha_id_S``               ``student_test_acc``       up         unshuffled
``alpha_label_S_shuffle``    ``student_train_acc``      down       shuffled
===========================  =========================  =========  ==========================

**Located crossing** (``value``): the package's threshold rule
(``compare.crossings.threshold_crossing``, the one every claim about a threshold uses too): the
first crossing of the cut-off in the rule's direction when scanning alpha upward (down: from
``>= cutoff`` to ``< cutoff``; up: from ``< cutoff`` to ``>= cutoff``), located by linear
interpolation between the two grid points that bracket it (grid points without a measurement
left out). On a non-monotone curve (e.g. the MLP student train accuracy that drops and jumps back
to 1, Fig. 7) this is the first crossing, not the last. A curve that never crosses gives NaN with
a reason in ``note`` and the side in ``censored``: ``"above"``, on the "before" side of the
cut-off over the whole grid (threshold beyond the largest alpha, ``bound``); ``"below"``, on the
"after" side over the whole grid (threshold below the smallest alpha, ``bound``) or crossing only
in the other direction. ``Threshold.bounded`` reads a censored threshold as that grid end.

**Reference rule** (``midpoint``), as the paper's code computed it (docs/reference.md): for the label
thresholds, the midpoint between the largest grid alpha whose mean accuracy is ``>= cutoff`` and the
next grid alpha (NaN when that is the last grid point); for ``alpha_id_S`` the smallest grid alpha
with mean test accuracy ``>= cutoff``. (The multinomial sweeps' rule, docs/reference.md, is the same
with ``cutoff=1.0``, except that it reported the last grid alpha itself rather than the midpoint.)

**Bootstrap** (``ci_low``, ``ci_high``): seeds (teacher replicates) are resampled with replacement,
the mean curve and its crossing recomputed, and the percentile interval taken (``inverted_cdf``
quantiles, so censored resamples count as beyond the grid rather than being dropped; a bound may
then be +-inf). Missing (alpha, seed) cells are filled with the other seeds' mean at that alpha
before resampling. One seed gives ``(nan, nan)``.

This module measures; the crossing primitive is ``compare.crossings``, the rules and result types
``compare.threshold_types``, the theory's predictions ``compare.predictions``, the text table
``compare.threshold_text``. Every name is re-exported here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from softleak.compare.crossings import (
    CUTOFF_TOL,
    Crossing,
    Direction,
    crossings,
    threshold_crossing,
)
from softleak.compare.predictions import (
    LINEAR_EXPERIMENTS,
    Prediction,
    predict_alpha_id,
    predict_alpha_label_T,
    predictions_for,
)
from softleak.compare.table import (
    CONDITION_COLUMNS,
    TEACHER_COLUMNS,
    normalize,
    present,
    seed_matrix,
)
from softleak.compare.threshold_text import format_table
from softleak.compare.threshold_types import (
    DERIVED_METRICS,
    EXTRA_RULES,
    GAP_COLUMNS,
    RULES,
    Rule,
    Threshold,
    ThresholdTable,
    threshold_gaps,
)

__all__ = [
    "CUTOFF_TOL",
    "DEFAULT_CUTOFF",
    "DERIVED_METRICS",
    "EXTRA_RULES",
    "GAP_COLUMNS",
    "LINEAR_EXPERIMENTS",
    "RULES",
    "Direction",
    "Prediction",
    "Rule",
    "Threshold",
    "ThresholdTable",
    "bootstrap_crossings",
    "crossings",
    "find_thresholds",
    "format_table",
    "percentile_ci",
    "predict_alpha_id",
    "predict_alpha_label_T",
    "predictions_for",
    "reference_rule",
    "threshold_gaps",
    "threshold_of_curve",
]

log = logging.getLogger(__name__)

#: Default cut-off (docs/reference.md: 0.99 for the pseudo-inverse figure).
DEFAULT_CUTOFF = 0.99


def reference_rule(x: np.ndarray, y: np.ndarray, cutoff: float, direction: Direction) -> float:
    """The paper code's rule on one mean curve (see module docstring).

    ``down``: midpoint between the largest x with ``y >= cutoff`` and the next grid x (NaN if no
    point satisfies it or it is the last grid point). ``up``: the smallest x with ``y >= cutoff``.
    """
    if direction == "up":  # the first grid point reaching the cut-off
        return float(crossings(x, y, cutoff, "up", which="reach", position="grid", censored="nan"))
    # the step after the last grid point still >= cutoff, at its midpoint
    return float(crossings(x, y, cutoff, "down", which="last", position="midpoint", censored="nan"))


def _censor_note(value: float, direction: Direction, cutoff: float, x: np.ndarray) -> str:
    if value == np.inf:
        side = "above" if direction == "down" else "below"
        return f"mean curve stays {side} {cutoff:g} over the grid: threshold > {x[-1]:.4g}"
    if value == -np.inf:
        side = "below" if direction == "down" else "above"
        return f"mean curve is {side} {cutoff:g} over the whole grid: threshold < {x[0]:.4g}"
    other = "upward" if direction == "down" else "downward"
    return f"mean curve crosses {cutoff:g} only {other}: no {direction}ward crossing"


def bootstrap_crossings(
    x: np.ndarray,
    m: np.ndarray,
    cutoff: float,
    direction: Direction,
    n_boot: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Crossings of the mean of ``m`` (A, S) over seeds resampled with replacement, shape (n_boot,).

    NaN cells are filled with the row's mean over the other seeds first (so the resampled curves
    hold no NaN, and the threshold rule's ``nan="skip"`` would change nothing: it is left out
    here, where it would cost a Python loop over the resamples).
    """
    m = np.asarray(m, dtype=float)
    n_seeds = m.shape[1]
    row_mean = np.nanmean(m, axis=1, keepdims=True)
    filled = np.where(np.isnan(m), row_mean, m)
    idx = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    curves = filled[:, idx].mean(axis=2)  # (A, n_boot)
    return crossings(x, curves, cutoff, direction)


def percentile_ci(values: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval of bootstrap values; NaN values (no crossing of the rule's kind) are
    dropped, +-inf values (censored beyond the grid) kept."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return math.nan, math.nan
    q = np.quantile(v, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return float(q[0]), float(q[1])


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


def threshold_of_curve(
    x: np.ndarray,
    m: np.ndarray,
    rule: Rule | str,
    cutoff: float = DEFAULT_CUTOFF,
    n_boot: int = 1000,
    rng: np.random.Generator | int | None = 0,
    level: float = 0.95,
) -> tuple[float, float, float, float, str]:
    """Threshold of one condition from its per-seed matrix.

    Args:
        x: alpha grid, shape (A,), increasing.
        m: metric, shape (A, S) (one column per seed; NaN where missing) or (A,).
        rule: a :class:`Rule` or its name.
        cutoff, n_boot, rng, level: as in :func:`find_thresholds`.

    Returns:
        ``(value, ci_low, ci_high, midpoint, note)``; ``value`` is the threshold rule
        (``compare.crossings.threshold_crossing``) on the seed-mean curve, NaN when censored.
    """
    return _measure(x, m, rule, cutoff, n_boot, rng, level)[:5]


def _measure(
    x: np.ndarray, m: np.ndarray, rule: Rule | str, cutoff: float, n_boot: int, rng, level: float
) -> tuple[float, float, float, float, str, Crossing]:
    """:func:`threshold_of_curve` and the ``compare.crossings.Crossing`` of the seed-mean curve
    (its ``censored`` side and ``bound`` say where a threshold off the grid lies)."""
    rule = RULES[rule] if isinstance(rule, str) else rule
    rng = np.random.default_rng(rng)
    m = np.asarray(m, dtype=float)
    if m.ndim == 1:
        m = m[:, None]
    x = np.asarray(x, dtype=float)
    keep = ~np.isnan(m).all(axis=1)
    x, m = x[keep], m[keep]
    notes = []
    mean = np.nanmean(m, axis=1)
    found = threshold_crossing(x, mean, cutoff, rule.direction)
    value = found.value
    if found.censored is not None:
        notes.append(_censor_note(found.status, rule.direction, cutoff, x))
    midpoint = reference_rule(x, mean, cutoff, rule.direction)
    n_seeds = int((~np.isnan(m)).any(axis=0).sum())
    if n_seeds < 2 or n_boot < 1:
        lo = hi = math.nan
        if n_seeds < 2:
            notes.append("one seed: no confidence interval")
    else:
        boot = bootstrap_crossings(x, m, cutoff, rule.direction, n_boot, rng)
        lo, hi = percentile_ci(boot, level)
        n_nan = int(np.isnan(boot).sum())
        n_cens = int(np.isinf(boot).sum())
        if n_cens:
            notes.append(f"{n_cens}/{n_boot} resamples censored at the grid edge")
        if n_nan:
            notes.append(f"{n_nan}/{n_boot} resamples without a {rule.direction}ward crossing")
    return value, lo, hi, midpoint, "; ".join(notes), found


def find_thresholds(
    df: pd.DataFrame,
    rules: Iterable[str | Rule] | None = None,
    cutoff: float | Mapping[str, float] = DEFAULT_CUTOFF,
    n_boot: int = 1000,
    seed: int | np.random.Generator | None = 0,
    level: float = 0.95,
    theory: bool = True,
) -> ThresholdTable:
    """Measure thresholds for every rule and every condition in a results table.

    Args:
        df: results table (docs/design.md columns). Student rules group by every condition column
            present (experiment, d, c, rho, tau, p_teacher, p_student, epochs, lrs, solver,
            ablation); ``alpha_label_T`` groups by the teacher's columns only (experiment, d, c and
            teacher hyper-parameters), since the teacher sees neither rho nor tau.
        rules: rule names (default: all of :data:`RULES`; :data:`EXTRA_RULES` by name too) or
            :class:`Rule` objects. Derived metrics (:data:`DERIVED_METRICS`) are added. Rules whose
            metric column is missing or whose rows are absent (e.g. no shuffled runs) give no row.
        cutoff: accuracy cut-off, one for all rules or a mapping rule name -> cut-off.
        n_boot: bootstrap resamples over seeds (0 disables the interval).
        seed: seed or generator for the bootstrap.
        level: confidence level of the percentile interval.
        theory: attach the ``theory`` package's predictions for linear experiments.

    Returns:
        A :class:`ThresholdTable`.
    """
    df = normalize(df)
    rng = np.random.default_rng(seed)
    chosen = [
        (RULES.get(r) or EXTRA_RULES[r]) if isinstance(r, str) else r for r in (rules or RULES)
    ]
    for rule in chosen:
        derive = DERIVED_METRICS.get(rule.metric)
        if derive is not None and rule.metric not in df.columns and "test_mse" in df.columns:
            df = df.assign(**{rule.metric: derive(df)})
    rows: list[Threshold] = []
    for rule in chosen:
        cut = float(cutoff[rule.name] if isinstance(cutoff, Mapping) else cutoff)
        if rule.metric not in df.columns:
            log.info("no %s column: skipping %s", rule.metric, rule.name)
            continue
        sub = df if rule.shuffle is None else df[df["shuffle"] == rule.shuffle]
        sub = sub[sub[rule.metric].notna()]
        if sub.empty:
            log.info("no rows for %s", rule.name)
            continue
        rows += _rule_thresholds(sub, rule, cut, n_boot, rng, level)
    predictions = tuple(predictions_for(rows)) if theory else ()
    return ThresholdTable(tuple(rows), predictions)


def _rule_thresholds(
    sub: pd.DataFrame,
    rule: Rule,
    cut: float,
    n_boot: int,
    rng: np.random.Generator,
    level: float,
) -> list[Threshold]:
    """One rule's threshold in every condition of ``sub`` (its rows with the rule's metric)."""
    rows: list[Threshold] = []
    keys = present(sub, TEACHER_COLUMNS if rule.teacher else CONDITION_COLUMNS)
    for key, group in sub.groupby(keys, dropna=False, sort=True):
        cond = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        x, _, m = seed_matrix(group, rule.metric)
        if x.size == 0:
            continue
        value, lo, hi, mid, note, found = _measure(x, m, rule, cut, n_boot, rng, level)
        extra = tuple(
            (k, _plain(v))
            for k, v in cond.items()
            if k not in ("experiment", "d", "c", "rho", "tau")
        )
        rows.append(
            Threshold(
                name=rule.name,
                value=value,
                ci_low=lo,
                ci_high=hi,
                midpoint=mid,
                rho=math.nan if rule.teacher else float(cond.get("rho", math.nan)),
                tau=math.nan if rule.teacher else float(cond.get("tau", math.nan)),
                cutoff=cut,
                n_seeds=int((~np.isnan(m)).any(axis=0).sum()),
                note=note,
                d=_int_or_none(cond.get("d")),
                c=_int_or_none(cond.get("c")),
                experiment=str(cond.get("experiment", "")),
                level=level,
                extra=extra,
                censored=found.censored,
                bound=found.bound,
            )
        )
    return rows


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _int_or_none(v: Any) -> int | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return int(v)
