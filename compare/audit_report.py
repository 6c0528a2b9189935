"""The leakage audit's report: per-setting leakage with confidence intervals, a verdict, a plot.

Reads the tidy per-student table that :func:`simulate.audit` writes (one row per trained student;
columns listed in :data:`REQUIRED_COLUMNS`) and turns it into

- :func:`summarize`: one row per (setting, rho): mean leakage over seeds with a confidence
  interval, mean member accuracy, baseline, utility and certified fractions;
- :func:`audit_report` -> :class:`AuditReport`: one headline row per release setting (its worst
  case over rho), a plain-language verdict naming the settings that keep leakage within a
  tolerance and the one that keeps the most utility, and the outputs (Markdown, JSON, CSV, plot).

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

Imports pandas, numpy, scipy and matplotlib (lazily, in :meth:`AuditReport.plot`); never torch.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from softleak.compare.table import jsonable

log = logging.getLogger(__name__)

__all__ = [
    "JSON_KEYS",
    "REQUIRED_COLUMNS",
    "AuditReport",
    "audit_report",
    "summarize",
]

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

#: Keys of one setting in :meth:`AuditReport.to_json`, in order.
JSON_KEYS: tuple[str, ...] = (
    "setting",
    "leakage",
    "leakage_ci_low",
    "leakage_ci_high",
    "utility",
    "rho",
    "member_acc",
    "baseline",
    "baseline_kind",
    "control",
    "within_tolerance",
    "certified_leaked",
    "certified_hidden",
)

BASELINE_KINDS = ("non-members", "chance")

#: Float slack when checking ``leakage == member_acc - baseline`` (float32 accuracies upstream).
LEAKAGE_CHECK_TOL = 1e-6

#: Name of the unmodified soft labels at the base temperature.
SOFT = "soft"

UTILITY_LABEL = "utility: agreement with teacher on non-members"
LEAKAGE_LABEL = "leakage: held-out member acc \N{MINUS SIGN} baseline"

# Plot colours (Okabe-Ito): within tolerance, above it, control.
SAFE_COLOR = "#009E73"
UNSAFE_COLOR = "#D55E00"
CONTROL_COLOR = "#7F7F7F"


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


def _headlines(per_rho: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """One row per setting: its worst case over rho (largest mean leakage; ties: smaller rho)."""
    rows = []
    for _, group in per_rho.groupby("setting", sort=False):
        leak = group["leakage"].to_numpy(float)
        index = int(np.nanargmax(leak)) if np.isfinite(leak).any() else 0
        rows.append(group.iloc[index])
    settings = pd.DataFrame(rows).infer_objects()
    settings = settings.sort_values("order", kind="stable").reset_index(drop=True)
    settings["control"] = settings["control"].astype(bool)
    high = settings["leakage_ci_high"].to_numpy(float)
    settings["within_tolerance"] = np.isfinite(high) & (high <= tolerance)
    columns = [
        "setting",
        "order",
        "control",
        "rho",
        "n_seeds",
        "leakage",
        "leakage_ci_low",
        "leakage_ci_high",
        "within_tolerance",
        "utility",
        "member_acc",
        "baseline",
        "baseline_kind",
        "certified_leaked",
        "certified_hidden",
    ]
    return settings[columns]


# ----------------------------------------------------------------------------------------------
# Verdict text


def _pct(x: float) -> str:
    return f"{100.0 * x:.1f}%"


def _pts(x: float) -> str:
    return f"{100.0 * x:.1f}"


def _interval(row: pd.Series, confidence: float) -> str:
    if not np.isfinite(row["leakage_ci_low"]):
        return "(no interval: too few measurements)"
    return (
        f"({confidence:.0%} confidence interval {_pts(row['leakage_ci_low'])} to "
        f"{_pts(row['leakage_ci_high'])})"
    )


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _describe_reference(
    row: pd.Series, n_rho: int, confidence: float, soft_present: bool
) -> list[str]:
    if soft_present:
        lead = "With the unmodified soft labels"
    else:
        lead = (
            f'The unmodified soft labels ("{SOFT}") were not audited. With the first setting, '
            f'"{row["setting"]}"'
        )
    if row["baseline_kind"] == "chance":
        against = "by always guessing the most common label"
    else:
        against = "on examples the teacher never saw"
    worst = f", the worst of the {n_rho} student fractions tried" if n_rho > 1 else ""
    text = [
        f"{lead}, a student trained on {_pct(row['rho'])} of the members (the teacher's own "
        f"training examples) gets {_pct(row['member_acc'])} of the other, held-out members right, "
        f"against {_pct(row['baseline'])} {against}: a leakage of {_pts(row['leakage'])} "
        f"percentage points {_interval(row, confidence)}{worst}."
    ]
    if _finite(row["certified_leaked"]) and _finite(row["certified_hidden"]):
        text.append(
            f"Certified for linear students: {_pct(row['certified_leaked'])} of the held-out "
            f"members are classified right by every linear student that reproduces these soft "
            f"labels exactly (and is no larger than the smallest linear fit of all members' soft "
            f"labels), {_pct(row['certified_hidden'])} by none."
        )
        if row["certified_leaked"] > row["member_acc"] + 0.05:
            text.append(
                "The trained student got fewer right than that certificate guarantees: it is "
                "under-trained, so its leakage understates what a student can recover (train "
                "longer)."
            )
    return text


def _verdict(settings: pd.DataFrame, tolerance: float, confidence: float, n_rho: int) -> str:
    releases = settings[~settings["control"]]
    controls = settings[settings["control"]]
    soft_present = bool((releases["setting"] == SOFT).any())
    if soft_present:
        reference = releases[releases["setting"] == SOFT].iloc[0]
    elif not releases.empty:
        reference = releases.iloc[0]
    else:
        reference = None
    text: list[str] = []
    if reference is not None:
        text += _describe_reference(reference, n_rho, confidence, soft_present)
    else:
        text.append("Only control settings were audited, so there is no release to judge.")

    tol = f"{_pts(tolerance)} percentage points"
    safe = releases[releases["within_tolerance"]]
    utility_known = bool(np.isfinite(releases["utility"].to_numpy(float)).any())
    if not releases.empty:
        text.append(
            f"A setting counts as safe when the upper end of its interval is at most the "
            f"tolerance of {tol}."
        )
    if not releases.empty and safe.empty:
        order = releases.assign(_high=releases["leakage_ci_high"].fillna(np.inf))
        least = order.sort_values(["leakage", "_high"], kind="stable", na_position="last")
        best = least.iloc[0]
        utility = f", utility {_pct(best['utility'])}" if _finite(best["utility"]) else ""
        text.append(
            f'No setting keeps leakage within that tolerance; the least leaking is "'
            f'{best["setting"]}" (leakage {_pts(best["leakage"])} points, up to '
            f"{_pts(best['leakage_ci_high'])}{utility})."
        )
        if not utility_known:
            text.append("No non-member data were given, so utility was not measured.")
    elif not safe.empty and not utility_known:
        names = ", ".join(f'"{s}"' for s in safe["setting"])
        text.append(
            f"Settings within the tolerance: {names}. No non-member data were given, so "
            "utility (how well the student agrees with the teacher on new data) could not be "
            "measured and no setting is recommended by it; choose among these."
        )
    elif not safe.empty:
        listed = ", ".join(
            f'"{r.setting}" (utility {_pct(r.utility) if _finite(r.utility) else "unknown"})'
            for r in safe.itertuples()
        )
        text.append(
            f"Settings within the tolerance: {listed}, where utility is the share of "
            "non-member examples on which the student agrees with the teacher."
        )
        ranked = safe[np.isfinite(safe["utility"].to_numpy(float))]
        if ranked.empty:
            text.append("None of them has a measured utility, so none is recommended by it.")
        else:
            best = ranked.sort_values("utility", ascending=False, kind="stable").iloc[0]
            if best["setting"] == SOFT:
                text.append(
                    f'Recommended: the unmodified soft labels ("{SOFT}") themselves, which are '
                    f"already within the tolerance and keep the most utility "
                    f"({_pct(best['utility'])})."
                )
            else:
                compare = ""
                if reference is not None and _finite(reference["utility"]):
                    name = "the unmodified soft labels" if soft_present else reference["setting"]
                    compare = f" against {_pct(reference['utility'])} with {name}"
                text.append(
                    f'Recommended: "{best["setting"]}", the safe setting that keeps the most '
                    f"utility ({_pct(best['utility'])}{compare})."
                )

    if controls.empty:
        text.append("No shuffle control was run, so the audit has no built-in sanity check.")
    for _, row in controls.iterrows():
        low, high, leak = row["leakage_ci_low"], row["leakage_ci_high"], row["leakage"]
        near_zero = (_finite(low) and low <= 0.0 <= high) or abs(leak) <= tolerance
        what = (
            "the soft labels shuffled within each class, which carry nothing about individual "
            "members"
            if row["setting"] == "shuffle"
            else "a control that carries nothing about individual members"
        )
        text.append(
            f'Sanity check: the "{row["setting"]}" control ({what}) leaks {_pts(leak)} points '
            f"{_interval(row, confidence)}. It should be ~0; if it is not, the audit is not "
            "trustworthy for this data. "
            + (
                "Here it is."
                if near_zero
                else "Here it is not, so treat the numbers above with suspicion."
            )
        )
    return " ".join(text)


# ----------------------------------------------------------------------------------------------
# Report


def _fmt(x: Any) -> str:
    return f"{float(x):.3f}" if _finite(x) else "-"


def _label_points(ax: Any, xs: np.ndarray, ys: np.ndarray, names: list[str]) -> None:
    """Name each point, stacking labels that would overlap (settings often cluster near zero
    leakage and utility). Greedy, in display coordinates: bottom to top, a label moves up a line
    until it clears every label already placed."""
    ax.autoscale_view()
    points = ax.transData.transform(np.column_stack([xs, ys]))  # (k, 2) pixels
    dpi = ax.figure.dpi / 72.0
    line, width = 10.0 * dpi, 6.0 * dpi  # one label line; ~width of a character at 8 pt
    placed: list[tuple[float, float, float]] = []  # (x, y, x_end) in pixels
    for i in np.argsort(points[:, 1], kind="stable"):
        x, y = points[i, 0] + 5.0 * dpi, points[i, 1] + 4.0 * dpi
        end = x + width * len(names[i])
        if end > ax.bbox.x1:  # no room on the right: label to the left of the point
            x, end = points[i, 0] - 5.0 * dpi - width * len(names[i]), points[i, 0] - 5.0 * dpi
        while any(abs(y - py) < line and x < pe and px < end for px, py, pe in placed):
            y += line
        placed.append((x, y, end))
        ax.annotate(
            names[i],
            (xs[i], ys[i]),
            xytext=((x - points[i, 0]) / dpi, (y - points[i, 1]) / dpi),
            textcoords="offset points",
            fontsize=8,
            arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.5}
            if y - points[i, 1] > 4.0 * dpi + 1
            else None,
        )


@dataclass(frozen=True, eq=False)
class AuditReport:
    """The audit's report: per-(setting, rho) summary, per-setting headlines and a verdict.

    Build with :func:`audit_report`. ``settings`` has one row per setting in the user's order:
    the setting's worst case over rho (``rho`` is where it occurs) with ``within_tolerance`` =
    ``leakage_ci_high <= tolerance``.
    """

    per_rho: pd.DataFrame  # summarize(): one row per (setting, rho)
    settings: pd.DataFrame  # one headline row per setting, in the user's order
    verdict: str  # one plain-language paragraph
    tolerance: float  # largest acceptable upper bound of the leakage interval
    confidence: float  # two-sided coverage of the intervals

    def to_json(self) -> dict:
        """``{"settings": [{JSON_KEYS...}, ...], "verdict": str}``, NaN as None (JSON-safe)."""
        entries = [
            {key: jsonable(row[key]) for key in JSON_KEYS} for _, row in self.settings.iterrows()
        ]
        return {"settings": entries, "verdict": self.verdict}

    def markdown(self) -> str:
        """A Markdown table (numbers with 3 decimals, NaN as "-") followed by the verdict."""
        settings = self.settings
        certified = bool(
            np.isfinite(settings[["certified_leaked", "certified_hidden"]].to_numpy(float)).any()
        )
        pct = f"{self.confidence:.0%}"
        header = ["setting", f"leakage [{pct} CI]", "member acc", "baseline", "utility"]
        if certified:
            header.append("certified leaked / hidden")
        header += ["rho", "within tolerance"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for _, row in settings.iterrows():
            name = str(row["setting"]).replace("|", "\\|")
            if row["control"]:
                name += " (control)"
            baseline = _fmt(row["baseline"])
            if row["baseline_kind"] == "chance":
                baseline += " (chance)"
            cells = [
                name,
                f"{_fmt(row['leakage'])} [{_fmt(row['leakage_ci_low'])}, "
                f"{_fmt(row['leakage_ci_high'])}]",
                _fmt(row["member_acc"]),
                baseline,
                _fmt(row["utility"]),
            ]
            if certified:
                cells.append(f"{_fmt(row['certified_leaked'])} / {_fmt(row['certified_hidden'])}")
            cells += [_fmt(row["rho"]), "yes" if row["within_tolerance"] else "no"]
            lines.append("| " + " | ".join(cells) + " |")
        note = (
            f"Leakage = held-out member accuracy - baseline, at each setting's worst rho; "
            f"tolerance {self.tolerance:.3f} on the upper end of the interval."
        )
        return "\n".join(lines) + "\n\n" + note + "\n\n" + self.verdict + "\n"

    def plot(self, ax: Any = None) -> Any:
        """Privacy-utility plot: leakage (with interval) against utility, one point per setting.

        When any setting lacks a utility (no non-members given), draws leakage per setting as
        horizontal points with intervals instead, so no setting is dropped. Draws only.
        """
        if ax is None:
            from softleak.compare.style import new_figure

            _, (ax,) = new_figure(panel=(5.6, 4.2))
        settings = self.settings
        leak = settings["leakage"].to_numpy(float)
        err = np.nan_to_num(
            np.vstack(
                [
                    leak - settings["leakage_ci_low"].to_numpy(float),
                    settings["leakage_ci_high"].to_numpy(float) - leak,
                ]
            ),
            nan=0.0,
        )
        utility = settings["utility"].to_numpy(float)
        scatter = bool(np.isfinite(utility).all())
        positions = np.arange(len(settings), dtype=float)
        for i, (_, row) in enumerate(settings.iterrows()):
            if row["control"]:
                color, marker = CONTROL_COLOR, "s"
            else:
                color = SAFE_COLOR if row["within_tolerance"] else UNSAFE_COLOR
                marker = "o"
            style = {"fmt": marker, "color": color, "capsize": 3, "markersize": 6, "lw": 1.2}
            if scatter:
                ax.errorbar(utility[i], leak[i], yerr=err[:, i : i + 1], **style)
            else:
                ax.errorbar(leak[i], positions[i], xerr=err[:, i : i + 1], **style)
        line: dict[str, Any] = {"color": "black", "linestyle": "--", "linewidth": 1.1}
        zero: dict[str, Any] = {"color": "0.5", "linestyle": "-", "linewidth": 0.8}
        if scatter:
            _label_points(ax, utility, leak, [str(s) for s in settings["setting"]])
            ax.axhline(self.tolerance, label=f"tolerance {self.tolerance:.3g}", **line)
            ax.axhline(0.0, **zero)
            ax.set_xlabel(UTILITY_LABEL)
            ax.set_ylabel(LEAKAGE_LABEL)
        else:
            ax.axvline(self.tolerance, label=f"tolerance {self.tolerance:.3g}", **line)
            ax.axvline(0.0, **zero)
            ax.set_yticks(positions, [str(s) for s in settings["setting"]])
            ax.set_ylim(len(settings) - 0.5, -0.5)  # user's order from the top
            ax.set_xlabel(LEAKAGE_LABEL)
            ax.set_ylabel("release setting (utility not measured: no non-members)")
        from matplotlib.lines import Line2D

        handles = [
            Line2D([], [], color=SAFE_COLOR, marker="o", ls="", label="within tolerance"),
            Line2D([], [], color=UNSAFE_COLOR, marker="o", ls="", label="above tolerance"),
            Line2D([], [], color=CONTROL_COLOR, marker="s", ls="", label="control"),
            Line2D([], [], label=f"tolerance {self.tolerance:.3g}", **line),
        ]
        ax.legend(handles=handles, fontsize=7, loc="best")
        return ax

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``report.md``, ``report.json``, ``settings.csv``, ``per_rho.csv`` and
        ``privacy_utility.png`` / ``.pdf`` into ``out_dir`` (created), each atomically.

        Returns:
            ``{file name: path}`` for every file written.
        """
        from softleak.compare.style import new_figure, save_figure, write_text_atomic

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {
            "report.md": write_text_atomic(out_dir / "report.md", self.markdown()),
            "report.json": write_text_atomic(
                out_dir / "report.json",
                json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n",
            ),
            "settings.csv": write_text_atomic(
                out_dir / "settings.csv", self.settings.to_csv(index=False)
            ),
            "per_rho.csv": write_text_atomic(
                out_dir / "per_rho.csv", self.per_rho.to_csv(index=False)
            ),
        }
        fig, (ax,) = new_figure(panel=(5.6, 4.2))
        self.plot(ax)
        for suffix in (".png", ".pdf"):
            name = "privacy_utility" + suffix
            paths[name] = save_figure(fig, out_dir / name)
        log.info("audit report written to %s", out_dir)
        return paths


def audit_report(
    rows: pd.DataFrame, tolerance: float = 0.02, confidence: float = 0.95
) -> AuditReport:
    """Summarize an audit table into an :class:`AuditReport`.

    Args:
        rows: the per-student audit table (columns :data:`REQUIRED_COLUMNS`).
        tolerance: largest acceptable leakage, as a fraction of accuracy (0.02 = 2 percentage
            points), applied to the upper end of each setting's interval.
        confidence: two-sided coverage of the intervals, in (0, 1).

    Raises:
        ValueError: missing columns, an empty or inconsistent table, or a bad tolerance or
            confidence (one clear message).
    """
    tolerance = _check_tolerance(tolerance)
    confidence = _check_confidence(confidence)
    per_rho = summarize(rows, confidence)
    settings = _headlines(per_rho, tolerance)
    verdict = _verdict(settings, tolerance, confidence, int(per_rho["rho"].nunique()))
    return AuditReport(
        per_rho=per_rho,
        settings=settings,
        verdict=verdict,
        tolerance=tolerance,
        confidence=confidence,
    )
