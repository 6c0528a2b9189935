"""The leakage audit's verdict: one plain-language paragraph from the per-setting headlines.

Names the settings whose leakage interval stays within the tolerance, recommends the safe one that
keeps the most utility, and reads the shuffle control as a sanity check. Part of the audit report
(:mod:`softleak.compare.audit_report`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

#: Name of the unmodified soft labels at the base temperature.
SOFT = "soft"


def _pct(x: float) -> str:
    return f"{100.0 * x:.1f}%"


def _pts(x: float) -> str:
    return f"{100.0 * x:.1f}"


def _interval(row: pd.Series, confidence: float) -> str:
    if not np.isfinite(row["leakage_ci_low"]):
        return "(no interval: too few measurements)"
    if "ci_confidence" in row.index and _finite(row["ci_confidence"]):
        confidence = float(row["ci_confidence"])  # the level Holm's correction assigned
    return (
        f"({100 * confidence:.4g}% confidence interval {_pts(row['leakage_ci_low'])} to "
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


def reference_row(settings: pd.DataFrame) -> pd.Series | None:
    """The setting the verdict describes first: the unmodified soft labels when audited, else
    the first release setting (None with only controls)."""
    releases = settings[~settings["control"]]
    soft = releases[releases["setting"] == SOFT]
    if not soft.empty:
        return soft.iloc[0]
    return None if releases.empty else releases.iloc[0]


def _verdict(
    settings: pd.DataFrame, tolerance: float, confidence: float, n_rho: int, privacy=None
) -> str:
    """The verdict paragraph; ``privacy`` (``compare.audit_privacy.PrivacyStats``) adds the
    reference setting's label-DP bound and membership-inference numbers."""
    releases = settings[~settings["control"]]
    controls = settings[settings["control"]]
    soft_present = bool((releases["setting"] == SOFT).any())
    reference = reference_row(settings)
    text: list[str] = []
    if reference is not None:
        text += _describe_reference(reference, n_rho, confidence, soft_present)
        if privacy is not None:
            text += _describe_privacy(reference, privacy, confidence)
    else:
        text.append("Only control settings were audited, so there is no release to judge.")
    text += _judge_releases(releases, reference, soft_present, tolerance)
    text += _small_holdout(reference, tolerance, confidence)
    text += _check_controls(controls, tolerance, confidence)
    return " ".join(text)


def _small_holdout(row: pd.Series | None, tolerance: float, confidence: float) -> list[str]:
    """A flag when the non-members are too few for the tolerance: the baseline's own interval
    (``audit_summary.baseline_half_width``) is then wider than it, so no setting can pass."""
    from softleak.compare.audit_summary import baseline_half_width, nonmembers_needed

    if row is None or row["baseline_kind"] != "non-members" or not _finite(row["n_nonmember"]):
        return []
    n = float(row["n_nonmember"])
    half = baseline_half_width(n, float(row["baseline"]), confidence)
    if half <= tolerance:
        return []
    need = nonmembers_needed(float(row["baseline"]), tolerance, confidence)
    more = f"; give at least {need:,} to allow a verdict at this tolerance" if need else ""
    return [
        f"Too few non-members: the baseline comes from {n:g} of them, and its own "
        f"{100 * confidence:.4g}% interval alone is +-{_pts(half)} points, wider than the "
        f"tolerance, so no setting can be shown to stay within it{more}."
    ]


def _describe_privacy(row: pd.Series, privacy, confidence: float) -> list[str]:
    """The reference setting in privacy terms: the label-DP bound, membership inference."""
    from softleak.compare.audit_privacy import PRIOR_NOTE

    entry = privacy.entry(str(row["setting"]))
    text = []
    eps = entry["epsilon_lb"]
    if eps is not None:
        if eps > 0:
            text.append(
                f"Released as they are, these labels could not be {eps:.2f}-label-DP or better: "
                f"a student guesses held-out members' labels too well for that ({confidence:.0%} "
                f"confidence, Bonferroni over {entry['runs']} runs). {PRIOR_NOTE}"
            )
        else:
            text.append(
                "The held-out member accuracy rules out no label-DP epsilon at this confidence."
            )
    auc, tpr = entry["auc"], entry["tpr_at_fpr"].get("0.01")
    if auc is not None:
        low = f", {100 * tpr:.1f}% of them at a 1% false-positive rate" if tpr is not None else ""
        text.append(
            f"Membership inference through the student tells held-out members from non-members "
            f"with AUC {auc:.3f}{low}."
        )
    return text


def _judge_releases(
    releases: pd.DataFrame, reference: pd.Series | None, soft_present: bool, tolerance: float
) -> list[str]:
    """The tolerance, then the least leaking setting (none safe) or the safe ones and the pick."""
    text: list[str] = []
    tol = f"{_pts(tolerance)} percentage points"
    safe = releases[releases["within_tolerance"]]
    utility_known = bool(np.isfinite(releases["utility"].to_numpy(float)).any())
    if len(releases) == 1:
        text.append(
            f"A setting counts as safe when the upper end of its interval is at most the "
            f"tolerance of {tol}."
        )
    elif not releases.empty:
        text.append(
            f"A setting counts as safe when the upper end of its interval is at most the "
            f"tolerance of {tol}, each interval at the confidence Holm's correction across the "
            f"{len(releases)} settings tried assigns it, so that the chance of calling any "
            f"leaking setting safe stays as small as with one setting."
        )
    if not releases.empty and safe.empty:
        text += _least_leaking(releases, utility_known)
    elif not safe.empty and not utility_known:
        names = ", ".join(f'"{s}"' for s in safe["setting"])
        text.append(
            f"Settings within the tolerance: {names}. No non-member data were given, so "
            "utility (how well the student agrees with the teacher on new data) could not be "
            "measured and no setting is recommended by it; choose among these."
        )
    elif not safe.empty:
        text += _recommend(safe, reference, soft_present)
    return text


def _least_leaking(releases: pd.DataFrame, utility_known: bool) -> list[str]:
    """No release within the tolerance: name the least leaking one."""
    text: list[str] = []
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
    return text


def _recommend(safe: pd.DataFrame, reference: pd.Series | None, soft_present: bool) -> list[str]:
    """The safe releases with their utilities, and the one that keeps the most utility."""
    text: list[str] = []
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
    return text


def _check_controls(controls: pd.DataFrame, tolerance: float, confidence: float) -> list[str]:
    """The sanity check: each control should leak ~0 (or say that none was run)."""
    text: list[str] = []
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
    return text
