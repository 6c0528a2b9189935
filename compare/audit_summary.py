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
student's initialisation and the member split). Two sources of error are combined by Newcombe's
(1998) square-and-add rule for a difference of two proportions (his method 10, the hybrid score
interval; Zou and Donner's MOVER):

- **the members and the seeds** (half-widths ``A_low``, ``A_high`` around the member accuracy):
  the Wilson score interval on the held-out member counts pooled over the seeds (``m`` the mean
  member accuracy, ``S * n_member_test`` trials), and with ``S >= 2`` the Student-t interval on
  the per-seed leakages, ``t_{(1+conf)/2, S-1} * sd / sqrt(S)``, whichever is wider on each side.
  The score part is a computed floor, not an estimate from S values, so it needs no t factor:
  with the few seeds an audit affords (t = 4.30 at S = 3) a t factor on it would make every
  interval too wide to pass any tolerance, while the t part governs whenever the seeds disagree
  more than the test-set noise explains. It also keeps the interval from collapsing when a few
  seeds agree exactly, and keeps a width at m = 0 or 1 (the Wald interval has none).
- **the baseline** (half-widths ``B_low``, ``B_high``): the Wilson score interval on the mean
  non-member accuracy ``b`` with ``n_nonmember`` trials -- *not* ``S * n_nonmember``: every seed
  scores the same non-members, so no number of seeds narrows the baseline's own sampling error.
  A baseline from 1 non-member has the 95% interval [0, 0.79] around 0/1; from 1,000 about
  +-0.03. A chance baseline is a constant: ``B = 0``.

The interval is ``[L - sqrt(A_low^2 + B_high^2), L + sqrt(A_high^2 + B_low^2)]`` around the mean
leakage ``L``, clipped to [-1, 1]. With one seed it is exactly Newcombe's interval for
``member_acc - baseline``. ``leakage_se`` is ``sqrt(se_A^2 + b(1-b)/n_nonmember)`` with
``se_A = max(sd, sqrt(m(1-m)/n_member_test)) / sqrt(S)`` (the Wald parts, for display).

Audits refuse holdouts below ``simulate.leakage_audit.MIN_NONMEMBERS`` non-members, and the
verdict says when the baseline's own interval is wider than the tolerance (no setting can then
be shown within it).

Reference: R. G. Newcombe, "Interval estimation for the difference between independent
proportions: comparison of eleven methods", Stat. Med. 17 (1998) 873-890.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

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


def leakage_interval(
    leakages: np.ndarray,
    member_acc: np.ndarray,
    n_member_test: np.ndarray,
    confidence: float = 0.95,
    *,
    baseline: np.ndarray | None = None,
    n_nonmember: np.ndarray | None = None,
) -> tuple[float, float, float, float]:
    """Mean leakage and its confidence interval over seeds (see the module docstring).

    Args:
        leakages: (S,) per-seed leakages ``member_acc - baseline``; seeds whose leakage is not
            finite are ignored.
        member_acc, n_member_test: (S,) per-seed held-out member accuracy and its count.
        confidence: two-sided coverage in (0, 1).
        baseline, n_nonmember: (S,) per-seed non-member accuracy and the number of non-members;
            None (or no finite count >= 1) for a chance baseline, which adds no uncertainty.

    Returns:
        ``(mean, se, ci_low, ci_high)``; all NaN when no seed has a finite leakage.
    """
    from softleak.compare.privacy import wilson_interval

    leakages = np.asarray(leakages, dtype=float)
    keep = np.isfinite(leakages)
    leakages = leakages[keep]
    s = leakages.size
    if s == 0:
        return (math.nan, math.nan, math.nan, math.nan)
    mean = float(leakages.mean())
    m_acc = np.asarray(member_acc, dtype=float)[keep]
    n_m = np.asarray(n_member_test, dtype=float)[keep]
    trials = float(n_m.sum())
    m = float((m_acc * n_m).sum() / trials)
    low_m, high_m = wilson_interval(min(max(m, 0.0), 1.0) * trials, trials, confidence)
    a_low, a_high = m - low_m, high_m - m
    se = math.sqrt(max(m * (1.0 - m), 0.0) / float(n_m.mean()))
    if s >= 2:
        sd = float(leakages.std(ddof=1))
        t_quantile = float(special.stdtrit(s - 1, (1.0 + confidence) / 2.0))  # stats.t.ppf
        t_half = t_quantile * sd / math.sqrt(s)
        a_low, a_high = max(a_low, t_half), max(a_high, t_half)
        se = max(sd, se)
    se /= math.sqrt(s)
    b_low = b_high = 0.0
    if baseline is not None and n_nonmember is not None:
        counts = np.asarray(n_nonmember, dtype=float)[keep]
        if counts.size and np.all(np.isfinite(counts)) and counts.min() >= 1:
            b = float(np.mean(np.asarray(baseline, dtype=float)[keep]))
            n_b = float(counts.mean())  # the same non-members for every seed
            low_b, high_b = wilson_interval(min(max(b, 0.0), 1.0) * n_b, n_b, confidence)
            b_low, b_high = high_b - b, b - low_b  # a higher baseline lowers the leakage
            se = math.sqrt(se * se + b * (1.0 - b) / n_b)
    low = mean - math.hypot(a_low, b_low)
    high = mean + math.hypot(a_high, b_high)
    return (mean, se, max(low, -1.0), min(high, 1.0))


def _interval_inputs(group: pd.DataFrame) -> dict:
    """The arrays :func:`leakage_interval` reads from one (setting, rho) group (extracted once:
    a p-value search evaluates the interval many times)."""
    nonmember = bool((group["baseline_kind"] == "non-members").all())
    return {
        "leakages": group["leakage"].to_numpy(float),
        "member_acc": group["member_acc"].to_numpy(float),
        "n_member_test": group["n_member_test"].to_numpy(float),
        "baseline": group["baseline"].to_numpy(float) if nonmember else None,
        "n_nonmember": group["n_nonmember"].to_numpy(float) if nonmember else None,
    }


def _group_interval(group: pd.DataFrame, confidence: float) -> tuple[float, float, float, float]:
    """``leakage_interval`` of one (setting, rho) group of the per-student table."""
    return leakage_interval(confidence=confidence, **_interval_inputs(group))


def baseline_half_width(n_nonmember: float, baseline: float, confidence: float) -> float:
    """The larger half-width of the Wilson interval of a baseline ``baseline`` measured on
    ``n_nonmember`` non-members: how far the baseline's own sampling error alone moves the
    leakage (the verdict names it when it exceeds the tolerance)."""
    from softleak.compare.privacy import wilson_interval

    b = min(max(float(baseline), 0.0), 1.0)
    low, high = wilson_interval(b * n_nonmember, n_nonmember, confidence)
    return max(b - low, high - b)


def nonmembers_needed(baseline: float, tolerance: float, confidence: float) -> int | None:
    """The fewest non-members whose baseline interval (:func:`baseline_half_width`, at this
    ``baseline``) is at most ``tolerance``; None for a zero tolerance or beyond 10^9."""
    if not tolerance > 0 or baseline_half_width(1e9, baseline, confidence) > tolerance:
        return None
    low, high = 1, 1_000_000_000
    while low < high:  # the half-width falls as n grows
        mid = (low + high) // 2
        if baseline_half_width(mid, baseline, confidence) <= tolerance:
            high = mid
        else:
            low = mid + 1
    return low


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
        ``n_seeds`` counts the seeds with a finite leakage. The interval combines the members'
        and seeds' part (Wilson score on the pooled member counts, widened to the Student-t
        interval on the seeds) with the baseline's own Wilson interval by Newcombe's rule
        (module docstring).
    """
    confidence = _check_confidence(confidence)
    rows = _validate(rows)
    records = []
    for (setting, rho), group in rows.groupby(["setting", "rho"], sort=False):
        mean, se, low, high = _group_interval(group, confidence)
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


def within_p_value(group: pd.DataFrame, tolerance: float) -> float:
    """The smallest ``1 - confidence`` at which the upper end of the group's leakage interval
    (:func:`leakage_interval`) is at most ``tolerance``: a p-value of "leakage >= tolerance"
    (twice the one-sided p-value of the interval's upper end, so that it is compared with
    ``1 - confidence`` as the two-sided intervals are). 1 when the mean is above the tolerance,
    0 when the interval never reaches it (no spread left), NaN without a finite leakage."""
    from scipy.optimize import brentq

    inputs = _interval_inputs(group)

    def high(q: float) -> float:
        return leakage_interval(confidence=q, **inputs)[3]

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
    rows = _validate(rows)  # the same keys as summarize's per_rho
    groups = {key: g for key, g in rows.groupby(["setting", "rho"], sort=False)}
    parts = {name: part for name, part in per_rho.groupby("setting", sort=False)}
    p_values = _setting_p_values(groups, parts, tolerance)
    releases = [n for n, part in parts.items() if not bool(part["control"].iloc[0])]
    ranked = sorted(
        releases,
        key=lambda n: (math.isnan(p_values[n]), p_values[n], int(parts[n]["order"].iloc[0])),
    )
    adjusted, level = _holm_levels(ranked, p_values, confidence)
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
    return settings[list(_HEADLINE_COLUMNS)]


#: The columns of :func:`headlines`, in order.
_HEADLINE_COLUMNS = (
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
    "n_nonmember",
    "certified_leaked",
    "certified_hidden",
)


def _setting_p_values(groups: dict, parts: dict, tolerance: float) -> dict[str, float]:
    """Each setting's p-value of :func:`headlines`: the largest :func:`within_p_value` over its
    rho (NaN counts as largest)."""
    return {
        name: max(
            (within_p_value(groups[(name, rho)], tolerance) for rho in part["rho"]),
            key=lambda p: math.inf if math.isnan(p) else p,
        )
        for name, part in parts.items()
    }


def _holm_levels(
    ranked: list[str], p_values: dict[str, float], confidence: float
) -> tuple[dict[str, float], dict[str, float]]:
    """Holm's adjusted p-values and the confidence each release setting's interval is judged at
    (``ranked``: the release settings in Holm's order), by setting name."""
    from softleak.compare.privacy import holm

    # Holm's levels (ranked as ``holm`` ranks: by p, ties in this order); the decision compares
    # each interval at its level with the tolerance, so a tie at the tolerance is decided by
    # ``<=`` on the interval itself, not by a root-found p-value
    p_adj, _, levels = holm([p_values[n] for n in ranked], alpha=1.0 - confidence)
    adjusted = dict(zip(ranked, p_adj, strict=True))
    level = {
        n: 1.0 - (float(lv) if math.isfinite(lv) else (1.0 - confidence) / (len(ranked) - i))
        for i, (n, lv) in enumerate(zip(ranked, levels, strict=True))
    }
    return adjusted, level
