"""The leakage audit's privacy-utility plot: leakage (with interval) against utility per setting.

Part of the audit report (:meth:`softleak.compare.audit_report.AuditReport.plot` draws with it).
Imports matplotlib lazily.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

UTILITY_LABEL = "utility: agreement with teacher on non-members"
LEAKAGE_LABEL = "leakage: held-out member acc \N{MINUS SIGN} baseline"

# Plot colours (Okabe-Ito): within tolerance, above it, control.
SAFE_COLOR = "#009E73"
UNSAFE_COLOR = "#D55E00"
CONTROL_COLOR = "#7F7F7F"


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


def privacy_utility(settings: pd.DataFrame, tolerance: float, ax: Any = None) -> Any:
    """Privacy-utility plot of the per-setting headlines (``AuditReport.settings``): leakage
    (with interval) against utility, one point per setting.

    When any setting lacks a utility (no non-members given), draws leakage per setting as
    horizontal points with intervals instead, so no setting is dropped. Draws only.
    """
    if ax is None:
        from softleak.compare.style import new_figure

        _, (ax,) = new_figure(panel=(5.6, 4.2))
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
        ax.axhline(tolerance, label=f"tolerance {tolerance:.3g}", **line)
        ax.axhline(0.0, **zero)
        ax.set_xlabel(UTILITY_LABEL)
        ax.set_ylabel(LEAKAGE_LABEL)
    else:
        ax.axvline(tolerance, label=f"tolerance {tolerance:.3g}", **line)
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
        Line2D([], [], label=f"tolerance {tolerance:.3g}", **line),
    ]
    ax.legend(handles=handles, fontsize=7, loc="best")
    return ax


def roc_plot(roc: dict, ax: Any = None) -> Any:
    """Membership-inference ROC curves (``PrivacyStats.roc``: setting -> (fpr, tpr)) on log-log
    axes, as that literature draws them (Carlini et al. 2022), with the chance diagonal. Points
    at FPR or TPR 0 are off a log axis and left out of the drawing. Draws only."""
    if ax is None:
        from softleak.compare.style import new_figure

        _, (ax,) = new_figure(panel=(5.0, 4.2))
    smallest = 1.0
    for name, (fpr, tpr) in roc.items():
        fpr, tpr = np.asarray(fpr, float), np.asarray(tpr, float)
        keep = (fpr > 0) & (tpr > 0)
        if keep.any():
            smallest = min(smallest, float(fpr[keep].min()), float(tpr[keep].min()))
            ax.plot(fpr[keep], tpr[keep], lw=1.2, label=str(name), drawstyle="steps-post")
    low = max(min(smallest, 1e-3) / 2, 1e-6)
    ax.plot([low, 1.0], [low, 1.0], color="0.5", ls=":", lw=1.0, label="chance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, 1.0)
    ax.set_ylim(low, 1.05)
    ax.set_xlabel("false-positive rate (non-members flagged)")
    ax.set_ylabel("true-positive rate (held-out members flagged)")
    ax.set_title("membership inference through the student, by score", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return ax
