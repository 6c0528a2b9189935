"""Empirical accuracy curves against the theory (paper Fig. 4A), with the gaps as numbers.

:func:`overlay` computes, per rho, the seed-mean and standard error of the teacher's train
accuracy and the student's train and test accuracies as functions of alpha (and, when the table
has a ``certified_leaked_fraction`` column, that fraction), the thresholds measured from them,
and the theory: Cover's finite-d separability probability P(n, d) as the teacher's predicted
probability of fitting its training set (c = 2 only), the capacity alpha_label^T and the
identifiability threshold alpha_id(rho), and for logistic-pinv the whole held-out accuracy curve of
the weak-leakage phase (``theory.leakage``: the max-margin teacher's prediction, labelled as such
on sweeps of other teachers; the exact 1/2 of the min-norm teacher). Theory is drawn in black
(solid / dashed / dotted), data in colour; :attr:`Overlay.gaps` gives measured minus predicted
thresholds and :attr:`Overlay.leakage` the curve's cell-by-cell comparison
(``compare.leakage``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from softleak.compare.leakage import (
    CurveAgreement,
    curve_agreement,
    predicted_curves,
    theory_label,
)
from softleak.compare.table import (
    CONDITION_COLUMNS,
    alpha_label,
    is_single_logit,
    jsonable,
    normalize,
    present,
    seed_means,
    seed_stats,
    select,
    single_value,
)
from softleak.compare.thresholds import ThresholdTable, find_thresholds

log = logging.getLogger(__name__)

CERTIFIED = "certified_leaked_fraction"
CURVE_METRICS: tuple[str, ...] = ("teacher_train_acc", "student_train_acc", "student_test_acc")


def mean_curves(
    df: pd.DataFrame, metrics: Sequence[str], by: Sequence[str] = ("rho",)
) -> pd.DataFrame:
    """Seed-mean and standard error of each metric per (by..., alpha).

    Rows sharing (by, alpha, seed) are averaged first, so each seed (teacher replicate) counts
    once (``compare.table.seed_means``, then ``seed_stats``). Each metric counts only the seeds
    with a value: a seed whose runs in a cell are all NaN is left out of that metric's
    ``n_seeds``, and a cell with no value at all has no row. Metrics ``df`` lacks are skipped.

    Returns:
        A long table with columns ``*by, alpha, metric, mean, sem, n_seeds`` (``sem`` is NaN with
        one seed), sorted by (by..., alpha) within each metric.
    """
    keys = [*by, "alpha"]
    columns = [*keys, "metric", "mean", "sem", "n_seeds"]
    records = []
    for metric in metrics:
        if metric not in df.columns:
            continue
        per_seed = seed_means(df, keys, metric).dropna()  # seeds with a value of this metric
        stats = seed_stats(per_seed, keys).reset_index()
        stats = stats.rename(columns={metric: "mean", f"{metric}_sem": "sem"})
        stats["metric"] = metric
        records.append(stats[columns])
    if not records:
        return pd.DataFrame(columns=columns)
    return pd.concat(records, ignore_index=True)


@dataclass(frozen=True, eq=False)
class Overlay:
    """Accuracy curves per rho, measured thresholds and the theory to compare them with."""

    curves: pd.DataFrame  # rho, alpha, metric, mean, sem, n_seeds
    thresholds: ThresholdTable  # measured thresholds (with predictions attached)
    cover_alpha: np.ndarray | None  # (G,) alpha grid of Cover's curve (None if c != 2)
    cover_p: np.ndarray | None  # (G,) P_separable(n(alpha), d)
    experiment: str
    d: int
    c: int
    tau: float | None
    # logistic-pinv: the predicted held-out accuracy per rho (rho, alpha, accuracy) on a fine
    # alpha grid, the teacher it was drawn for, and the cell-by-cell comparison
    theory_curve: pd.DataFrame | None = None
    teacher: str | None = None
    leakage: CurveAgreement | None = None

    @property
    def rhos(self) -> list[float]:
        """The rho values with curves."""
        return sorted(float(r) for r in self.curves["rho"].dropna().unique())

    @property
    def gaps(self) -> pd.DataFrame:
        """Predicted vs measured thresholds (``gap = measured - predicted``)."""
        return self.thresholds.gaps()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: curves, thresholds, predictions and gaps."""
        return jsonable(
            {
                "experiment": self.experiment,
                "d": self.d,
                "c": self.c,
                "tau": self.tau,
                "curves": self.curves.to_dict(orient="records"),
                "thresholds": self.thresholds.to_dict(),
                "gaps": self.gaps.to_dict(orient="records"),
                "cover": None
                if self.cover_alpha is None
                else {"alpha": self.cover_alpha, "p_separable": self.cover_p},
                "teacher": self.teacher,
                "theory_curve": None
                if self.theory_curve is None
                else self.theory_curve.to_dict(orient="records"),
                "leakage": None if self.leakage is None else self.leakage.to_dict()["cells"],
            }
        )

    def plot(self, ax: Any = None, rho: float | None = None, legend: bool = True) -> Any:
        """Curves at one rho (default: the one closest to 0.8, as in Fig. 4A) with theory.

        Data: mean +- SEM per metric (colour); measured thresholds as thin coloured vertical lines.
        Theory (black): the predicted held-out accuracy solid (logistic-pinv), Cover's P(n, d)
        dashed, alpha_label^T dotted, alpha_id(rho) dash-dotted. Returns the axes.
        """
        from softleak.compare.style import METRIC_COLORS, METRIC_LABELS, axes_or_new

        ax = axes_or_new(ax)
        rhos = self.rhos
        target = 0.8 if rho is None else float(rho)
        rho = min(rhos, key=lambda r: abs(r - target)) if rhos else math.nan
        sub = self.curves[np.isclose(self.curves["rho"].astype(float), rho)]
        for metric in (*CURVE_METRICS, CERTIFIED):
            part = sub[sub["metric"] == metric].sort_values("alpha")
            if part.empty:
                continue
            ax.errorbar(
                part["alpha"],
                part["mean"],
                yerr=part["sem"].fillna(0.0),
                color=METRIC_COLORS[metric],
                marker="o",
                ms=3,
                lw=1.2,
                capsize=1.5,
                label=METRIC_LABELS[metric],
            )
        if self.theory_curve is not None and math.isfinite(rho):
            part = self.theory_curve[np.isclose(self.theory_curve["rho"], rho)]
            ax.plot(
                part["alpha"],
                part["accuracy"],
                color="black",
                lw=1.4,
                label="held-out: " + theory_label(self.teacher or "logistic"),
                zorder=5,
            )
        if self.cover_alpha is not None:
            ax.plot(
                self.cover_alpha,
                self.cover_p,
                color="black",
                ls="--",
                lw=1.3,
                label=rf"Cover $P(n, d={self.d})$",
                zorder=5,
            )
        self._threshold_lines(ax, rho)
        if not sub.empty:  # theory lines beyond the sweep's alpha range stay off-screen
            lo, hi = float(sub["alpha"].min()), float(sub["alpha"].max())
            pad = 0.03 * (hi - lo) if hi > lo else 0.5
            ax.set_xlim(lo - pad, hi + pad)
        ax.set_xlabel(alpha_label(self.experiment))
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.02, 1.04)
        title = rf"$\rho = {rho:.3g}$, d = {self.d}, c = {self.c}"
        if self.tau is not None:
            title += rf", $\tau = {self.tau:g}$"
        ax.set_title(title, fontsize="medium")
        if legend:
            ax.legend(fontsize="x-small", frameon=False, loc="best")
        return ax

    def _threshold_lines(self, ax: Any, rho: float) -> None:
        """Vertical lines at ``rho``: measured thresholds in colour, theory's in black."""
        from softleak.compare.style import THRESHOLD_COLORS, THRESHOLD_LABELS

        for r in self.thresholds.rows:
            if r.name != "alpha_label_T" and not np.isclose(r.rho, rho):
                continue
            if math.isfinite(r.value):
                ax.axvline(
                    r.value,
                    color=THRESHOLD_COLORS[r.name],
                    lw=1.0,
                    alpha=0.8,
                    label=THRESHOLD_LABELS[r.name] + " measured",
                )
        for p in self.thresholds.predictions:
            if p.name == "alpha_label_T" and math.isfinite(p.value):
                ax.axvline(
                    p.value,
                    color="black",
                    ls=":",
                    lw=1.4,
                    label=r"$\alpha^T_{\rm label}$ theory",
                    zorder=5,
                )
            elif p.name == "alpha_id" and np.isclose(p.rho, rho) and math.isfinite(p.value):
                ax.axvline(
                    p.value,
                    color="black",
                    ls="-.",
                    lw=1.4,
                    label=r"$\alpha_{\rm id}$ theory",
                    zorder=5,
                )


def overlay(
    df: pd.DataFrame,
    *,
    where: Mapping[str, Any] | None = None,
    cutoff: float = 0.99,
    n_boot: int = 1000,
    seed: int = 0,
    n_grid: int = 400,
) -> Overlay:
    """Curves, thresholds and theory for one sweep condition (all rho values).

    Args:
        df: results table; after ``where`` every condition column except rho must hold one value.
        where: column == value filters (e.g. ``{"d": 1600}``).
        cutoff, n_boot, seed: threshold settings (:func:`compare.thresholds.find_thresholds`).
        n_grid: points of the Cover curve.

    Returns:
        An :class:`Overlay`.
    """
    df = normalize(df, required=("student_train_acc", "student_test_acc"))
    df = select(df, where)
    if "ablation" in df.columns and df["ablation"].nunique() > 1 and "none" in set(df["ablation"]):
        df = df[df["ablation"] == "none"]
    for col in present(df, CONDITION_COLUMNS):
        if col != "rho":
            single_value(df, col)
    experiment = str(single_value(df, "experiment"))
    d = int(single_value(df, "d"))
    c = int(single_value(df, "c"))
    tau = single_value(df, "tau")
    metrics = [*CURVE_METRICS, *([CERTIFIED] if CERTIFIED in df.columns else [])]
    curves = mean_curves(df[~df["shuffle"]], metrics)
    table = find_thresholds(df, cutoff=cutoff, n_boot=n_boot, seed=seed)
    cover_alpha = cover_p = None
    if c == 2:
        try:
            from softleak.theory.cover import p_separable
        except ImportError as err:
            log.warning("softleak.theory.cover unavailable (%s): no Cover curve", err)
        else:
            lo, hi = float(df["alpha"].min()), float(df["alpha"].max())
            cover_alpha = np.linspace(lo, hi, n_grid)
            per_alpha = d * (1 if is_single_logit(experiment) else c)  # n = alpha * per_alpha
            # A c = 2 softmax teacher depends on w_1 - w_2 only: Cover's P at the same n.
            cover_p = np.asarray(p_separable(cover_alpha * per_alpha, d), dtype=float)
    theory_curve = agreement = teacher = None
    if is_single_logit(experiment):
        teacher = str(single_value(df, "teacher") or "logistic")
        lo, hi = float(df["alpha"].min()), float(df["alpha"].max())
        theory_curve = predicted_curves(
            teacher, sorted(df["rho"].dropna().unique()), lo, hi, n_grid
        )
        agreement = curve_agreement(df)
    return Overlay(
        curves=curves,
        thresholds=table,
        cover_alpha=cover_alpha,
        cover_p=cover_p,
        experiment=experiment,
        d=d,
        c=c,
        tau=None if tau is None else float(tau),
        theory_curve=theory_curve,
        teacher=teacher,
        leakage=agreement,
    )


def mean_curve(curves, metric: str, **where) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(alpha, mean, sem) of one metric of ``compare.mean_curves``, where columns match."""
    part = curves[curves["metric"] == metric]
    for key, value in where.items():
        part = part[np.isclose(part[key].to_numpy(dtype=float), float(value))]
    part = part.sort_values("alpha")
    return (
        part["alpha"].to_numpy(dtype=float),
        part["mean"].to_numpy(dtype=float),
        part["sem"].to_numpy(dtype=float),
    )
