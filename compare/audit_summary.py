"""The leakage audit's numbers: the table checked, per-(setting, rho) intervals, headlines.

Part of the audit report (:mod:`softleak.compare.audit_report` re-exports the public names):

- :func:`summarize`: one row per (setting, rho): mean leakage over seeds with a confidence
  interval, mean member accuracy, baseline, utility and certified fractions;
- :func:`headlines`: one row per release setting, the rho that decides it, with
  ``within_tolerance`` after Holm's correction across the settings.

Leakage is ``member_acc - baseline``: the student's accuracy on the held-out members (teacher
training points it did not see) minus its accuracy on non-members, or minus chance (the share of
the most frequent label among members) when no non-members were given.

**Confidence interval** (per setting and rho, over the ``S`` seeds; each seed redraws the
student's initialisation and the member split). Each seed's leakage also carries binomial noise
from its finite test sets; its variance is ``v = m(1-m)/n_member_test + b(1-b)/n_nonmember``
(``m`` the member accuracy, ``b`` the non-member accuracy; a chance baseline is a constant and
adds nothing). With ``bin_se = sqrt(mean over seeds of v)``:

- ``S >= 2``: the wider of the Student-t interval on the per-seed leakages and the normal
  interval of the binomial noise alone,
  ``mean +- max(t_{(1+conf)/2, S-1} * sd, z_{(1+conf)/2} * bin_se) / sqrt(S)``. The binomial part
  is a computed lower bound on each seed's variance, not an estimate from S values, so it takes
  the normal quantile: with the few seeds an audit affords (t = 4.30 at S = 3, 12.7 at S = 2) a
  t factor on it would make every interval too wide to pass any tolerance, while the t interval
  still governs whenever the seeds disagree more than the test-set noise explains. The floor also
  keeps the interval from collapsing when a few seeds happen to agree exactly.
- ``S = 1``: normal (Wald) interval ``leakage +- z_{(1+conf)/2} * bin_se``.

The Wald interval has zero width when ``m`` is exactly 0 or 1 and the baseline is chance (no
binomial variance is left); such a leakage is then far from any tolerance anyway.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

#: Columns the per-student table must have (written by ``simulate.audit``).
REQUIRED_COLUMNS: tuple[str, ...] = (
    "setting",
    "control",
    "order",
    "rho",
    "seed",
    "member_acc",
    "n_member_test",
    "baseline",
    "baseline_kind",
    "n_nonmember",
    "leakage",
    "utility",
    "certified_leaked",
    "certified_hidden",
)

#: Columns carried through when present (first value for strings, mean for numbers).
CARRIED_COLUMNS: tuple[str, ...] = ("student", "tau", "student_train_acc", "wall_s")

BASELINE_KINDS = ("non-members", "chance")

#: Float slack when checking ``leakage == member_acc - baseline`` (float32 accuracies upstream).
LEAKAGE_CHECK_TOL = 1e-6


def _check_confidence(confidence: float) -> float:
    confidence = float(confidence)
    if not (math.isfinite(confidence) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return confidence


def _check_tolerance(tolerance: float) -> float:
    tolerance = float(tolerance)
    if not (math.isfinite(tolerance) and tolerance >= 0.0):
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    return tolerance


def _validate(rows: pd.DataFrame) -> pd.DataFrame:
    """Check the per-student table once; returns a copy with clean dtypes. Raises ``ValueError``."""
    if not isinstance(rows, pd.DataFrame):
        raise ValueError(f"the audit table must be a pandas DataFrame, got {type(rows).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"the audit table lacks column(s) {', '.join(missing)}")
    if rows.empty:
        raise ValueError("the audit table is empty: no students were trained")
    rows = rows.copy()
    rows["setting"] = rows["setting"].astype(str)
    rows["control"] = rows["control"].astype(bool)
    numeric = [c for c in REQUIRED_COLUMNS if c not in ("setting", "control", "baseline_kind")]
    for column in numeric:
        rows[column] = pd.to_numeric(rows[column], errors="coerce").astype(float)
    bad_kind = sorted(set(rows["baseline_kind"].astype(str)) - set(BASELINE_KINDS))
    if bad_kind:
        raise ValueError(f"baseline_kind must be one of {BASELINE_KINDS}, got {bad_kind}")
    for column in ("control", "order"):
        varying = rows.groupby("setting")[column].nunique(dropna=False)
        if (varying > 1).any():
            names = ", ".join(varying.index[varying > 1])
            raise ValueError(f"column {column!r} differs within setting(s) {names}")
    duplicated = rows.duplicated(["setting", "rho", "seed"])
    if duplicated.any():
        first = rows.loc[duplicated].iloc[0]
        raise ValueError(
            "more than one row per (setting, rho, seed), e.g. "
            f"({first['setting']}, {first['rho']:g}, {first['seed']:g}): report one student "
            "type at a time (filter on 'student' first)"
        )
    finite = np.isfinite(rows["leakage"].to_numpy())
    gap = (rows["member_acc"] - rows["baseline"] - rows["leakage"]).abs().to_numpy()
    if (finite & ~(gap <= LEAKAGE_CHECK_TOL)).any():
        raise ValueError("column 'leakage' is not member_acc - baseline in every row")
    if (finite & ~(rows["n_member_test"].to_numpy() >= 1)).any():
        raise ValueError("n_member_test must be >= 1 wherever leakage is measured")
    needs_nonmembers = finite & (rows["baseline_kind"] == "non-members").to_numpy()
    if (needs_nonmembers & ~(rows["n_nonmember"].to_numpy() >= 1)).any():
        raise ValueError("n_nonmember must be >= 1 wherever the baseline is 'non-members'")
    return rows


def _binomial_variance(group: pd.DataFrame) -> np.ndarray:
    """Per-seed binomial variance of the measured leakage (chance baseline: member part only)."""
    m = group["member_acc"].to_numpy(float)
    b = group["baseline"].to_numpy(float)
    variance = m * (1.0 - m) / group["n_member_test"].to_numpy(float)
    nonmember = (group["baseline_kind"] == "non-members").to_numpy()
    n_non = np.where(nonmember, group["n_nonmember"].to_numpy(float), 1.0)
    return variance + np.where(nonmember, b * (1.0 - b) / n_non, 0.0)


def leakage_interval(
    leakages: np.ndarray, binomial_variances: np.ndarray, confidence: float = 0.95
) -> tuple[float, float, float, float]:
    """Mean leakage and its confidence interval over seeds (see the module docstring).

    Args:
        leakages: (S,) per-seed leakages; non-finite entries are ignored.
        binomial_variances: (S,) per-seed binomial variances of those leakages.
        confidence: two-sided coverage in (0, 1).

    Returns:
        ``(mean, se, ci_low, ci_high)``; all NaN when no seed has a finite leakage.
    """
    leakages = np.asarray(leakages, dtype=float)
    variances = np.asarray(binomial_variances, dtype=float)
    keep = np.isfinite(leakages)
    leakages, variances = leakages[keep], variances[keep]
    s = leakages.size
    if s == 0:
        return (math.nan, math.nan, math.nan, math.nan)
    mean = float(leakages.mean())
    binomial_se = math.sqrt(max(float(np.mean(variances)), 0.0))
    upper = (1.0 + confidence) / 2.0
    if s == 1:
        se = binomial_se
        half = float(stats.norm.ppf(upper)) * se
    else:
        sd = float(leakages.std(ddof=1))
        se = max(sd, binomial_se) / math.sqrt(s)
        half = max(
            float(stats.t.ppf(upper, s - 1)) * sd, float(stats.norm.ppf(upper)) * binomial_se
        ) / math.sqrt(s)
    # A leakage is a difference of two accuracies: the interval is clipped to [-1, 1].
    return (mean, se, max(mean - half, -1.0), min(mean + half, 1.0))


def _nanmean(values: pd.Series) -> float:
    values = values.to_numpy(float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else math.nan


def summarize(rows: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """One row per (setting, rho): mean leakage over seeds with its confidence interval.

    Args:
        rows: the per-student audit table (columns :data:`REQUIRED_COLUMNS`).
        confidence: two-sided coverage of the interval, in (0, 1).

    Returns:
        Columns ``setting, order, control, rho, n_seeds, leakage, leakage_se, leakage_ci_low,
        leakage_ci_high, member_acc, baseline, baseline_kind, utility, certified_leaked,
        certified_hidden, n_member_test, n_nonmember`` plus ``student, tau, student_train_acc,
        wall_s`` when present, sorted by ``order`` then ``rho``. Means ignore NaN (utility is NaN
        when no non-members were given; certified fractions when not applicable).
        ``n_seeds`` counts the seeds with a finite leakage. The interval is a Student-t interval
        widened to the binomial noise's normal interval for two or more seeds, a Wald interval
        for one (module docstring).
    """
    confidence = _check_confidence(confidence)
    rows = _validate(rows)
    records = []
    for (setting, rho), group in rows.groupby(["setting", "rho"], sort=False):
        mean, se, low, high = leakage_interval(
            group["leakage"].to_numpy(float), _binomial_variance(group), confidence
        )
        kinds = group["baseline_kind"].astype(str).unique()
        record: dict[str, Any] = {
            "setting": setting,
            "order": int(group["order"].iloc[0]),
            "control": bool(group["control"].iloc[0]),
            "rho": float(rho),
            "n_seeds": int(np.isfinite(group["leakage"].to_numpy(float)).sum()),
            "leakage": mean,
            "leakage_se": se,
            "leakage_ci_low": low,
            "leakage_ci_high": high,
            "member_acc": _nanmean(group["member_acc"]),
            "baseline": _nanmean(group["baseline"]),
            "baseline_kind": kinds[0] if len(kinds) == 1 else "mixed",
            "utility": _nanmean(group["utility"]),
            "certified_leaked": _nanmean(group["certified_leaked"]),
            "certified_hidden": _nanmean(group["certified_hidden"]),
            "n_member_test": _nanmean(group["n_member_test"]),
            "n_nonmember": _nanmean(group["n_nonmember"]),
        }
        for column in CARRIED_COLUMNS:
            if column not in group.columns:
                continue
            if column == "wall_s":
                record[column] = float(pd.to_numeric(group[column], errors="coerce").sum())
            elif column == "student":
                record[column] = str(group[column].iloc[0])
            else:
                record[column] = _nanmean(pd.to_numeric(group[column], errors="coerce"))
        records.append(record)
    table = pd.DataFrame.from_records(records)
    return table.sort_values(["order", "rho"], kind="stable").reset_index(drop=True)


#: The multiple-testing correction the verdict applies across the settings tried.
CORRECTION = "holm"


def _group_interval(group: pd.DataFrame, confidence: float) -> tuple[float, float, float, float]:
    """``leakage_interval`` of one (setting, rho) group of the per-student table."""
    return leakage_interval(group["leakage"].to_numpy(float), _binomial_variance(group), confidence)


def within_p_value(group: pd.DataFrame, tolerance: float) -> float:
    """The smallest ``1 - confidence`` at which the upper end of the group's leakage interval
    (:func:`leakage_interval`) is at most ``tolerance``: a p-value of "leakage >= tolerance"
    (twice the one-sided p-value of the interval's upper end, so that it is compared with
    ``1 - confidence`` as the two-sided intervals are). 1 when the mean is above the tolerance,
    0 when the interval never reaches it (no spread left), NaN without a finite leakage."""
    from scipy.optimize import brentq

    def high(q: float) -> float:
        return _group_interval(group, q)[3]

    if not math.isfinite(high(0.5)):
        return math.nan
    top = 1.0 - 1e-12
    if high(0.0) > tolerance:
        return 1.0
    if high(top) <= tolerance:
        return 0.0
    return 1.0 - float(brentq(lambda q: high(q) - tolerance, 0.0, top, xtol=1e-14))


def _worst(candidates: list[tuple[float, pd.Series, tuple]]) -> tuple[float, pd.Series, tuple]:
    """The (rho, per_rho row, interval) whose upper end is largest (ties: the larger mean
    leakage, then the smaller rho); NaN upper ends count as largest."""

    def key(item):
        rho, _, (mean, _, _, high) = item
        return (
            high if math.isfinite(high) else math.inf,
            mean if math.isfinite(mean) else -math.inf,
            -rho,
        )

    return max(candidates, key=key)


def headlines(
    rows: pd.DataFrame, per_rho: pd.DataFrame, tolerance: float, confidence: float
) -> pd.DataFrame:
    """One row per setting, in the user's order: the rho that decides its verdict, with the
    interval the verdict used.

    **Holm's correction** over the release settings (the controls are outside the family):
    a setting is within tolerance when its leakage is below the tolerance at every rho tried (an
    intersection-union test: each rho's interval must end at or below it) at a confidence that
    Holm's step-down procedure assigns it. The settings are ordered by their p-value
    (:func:`within_p_value`, the largest over rho); the i-th of m (from 1) is judged at
    ``1 - (1 - confidence) / (m - i + 1)``, and only while every setting before it was within.
    The chance of calling any setting within tolerance whose leakage is not then stays at most
    ``(1 - confidence) / 2`` (the intervals' upper ends are one-sided bounds at half their
    error), as with one setting and no correction. With one setting the interval is the plain
    ``confidence`` interval.

    Columns: those of :func:`summarize`'s rows at the deciding rho (the largest upper end at
    that confidence; ties: the larger mean, then the smaller rho), ``leakage_ci_*`` at
    ``ci_confidence``, ``p_value`` (largest over rho), ``p_holm`` (Holm-adjusted; None for
    controls), ``within_tolerance``. Controls use the plain ``confidence``.
    """
    from softleak.compare.privacy import holm

    rows = _validate(rows)  # the same keys as summarize's per_rho
    groups = {key: g for key, g in rows.groupby(["setting", "rho"], sort=False)}
    parts = {name: part for name, part in per_rho.groupby("setting", sort=False)}
    p_values = {
        name: max(
            (within_p_value(groups[(name, rho)], tolerance) for rho in part["rho"]),
            key=lambda p: math.inf if math.isnan(p) else p,
        )
        for name, part in parts.items()
    }
    releases = [n for n, part in parts.items() if not bool(part["control"].iloc[0])]
    ranked = sorted(
        releases,
        key=lambda n: (math.isnan(p_values[n]), p_values[n], int(parts[n]["order"].iloc[0])),
    )
    # Holm's levels (ranked as ``holm`` ranks: by p, ties in this order); the decision compares
    # each interval at its level with the tolerance, so a tie at the tolerance is decided by
    # ``<=`` on the interval itself, not by a root-found p-value
    p_adj, _, levels = holm([p_values[n] for n in ranked], alpha=1.0 - confidence)
    adjusted = dict(zip(ranked, p_adj, strict=True))
    level = {
        n: 1.0 - (float(lv) if math.isfinite(lv) else (1.0 - confidence) / (len(ranked) - i))
        for i, (n, lv) in enumerate(zip(ranked, levels, strict=True))
    }
    records, passing = [], True
    for name in [*ranked, *(n for n in parts if n not in releases)]:
        part = parts[name]
        conf = level.get(name, confidence)
        rho, row, (mean, se, low, high) = _worst(
            [
                (float(r["rho"]), r, _group_interval(groups[(name, r["rho"])], conf))
                for _, r in part.iterrows()
            ]
        )
        ok = math.isfinite(high) and high <= tolerance
        if name in level:
            ok = ok and passing
            passing = ok
        record = row.to_dict()
        record.update(
            leakage_se=se,
            leakage_ci_low=low,
            leakage_ci_high=high,
            ci_confidence=conf,
            p_value=p_values[name],
            p_holm=float(adjusted[name]) if name in adjusted else math.nan,
            within_tolerance=bool(ok),
        )
        records.append(record)
    settings = pd.DataFrame.from_records(records).infer_objects()
    settings = settings.sort_values("order", kind="stable").reset_index(drop=True)
    settings["control"] = settings["control"].astype(bool)
    columns = [
        "setting",
        "order",
        "control",
        "rho",
        "n_seeds",
        "leakage",
        "leakage_ci_low",
        "leakage_ci_high",
        "ci_confidence",
        "p_value",
        "p_holm",
        "within_tolerance",
        "utility",
        "member_acc",
        "baseline",
        "baseline_kind",
        "certified_leaked",
        "certified_hidden",
    ]
    return settings[columns]
