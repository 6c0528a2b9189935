"""Class-number scaling of the thresholds (paper Fig. 5B).

For a sweep over the number of classes c (docs/reference.md: c in {2, 5, ..., 50}, rho = 0.55,
tau = 10), :func:`class_collapse` measures the four thresholds at each c, fits the scaling laws of
``theory.class_scaling.fit_class_scaling`` to each threshold vs c (the paper reports
alpha log c ~ 0.92 for the label thresholds, alpha c ~ 2.0 for alpha_id^S and alpha sqrt(c) ~ 0.66
for the shuffled student), and keeps the seed-mean accuracy curves so that
:meth:`ClassCollapse.plot` can draw them against alpha c, alpha sqrt(c) and alpha log c.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from softleak.compare.overlay import mean_curves
from softleak.compare.table import (
    CONDITION_COLUMNS,
    jsonable,
    normalize,
    present,
    select,
    single_value,
)
from softleak.compare.thresholds import RULES, ThresholdTable, find_thresholds

log = logging.getLogger(__name__)

#: The three x-axis scalings of Fig. 5B: name -> (function of c, axis label).
SCALINGS: dict[str, tuple[Any, str]] = {
    "c": (lambda c: c, r"$\alpha\, c$"),
    "sqrt": (np.sqrt, r"$\alpha \sqrt{c}$"),
    "log": (np.log, r"$\alpha \log c$"),
}

CLASS_METRICS: tuple[str, ...] = ("student_train_acc", "student_test_acc")


@dataclass(frozen=True, eq=False)
class ClassCollapse:
    """Thresholds vs c, their scaling fits, and the accuracy curves for the three collapses."""

    thresholds: ThresholdTable  # measured at each c (and d)
    fits: Mapping[str, Any]  # rule name -> theory.class_scaling.ClassScalingFit
    curves: pd.DataFrame  # c, alpha, metric, mean, sem, n_seeds (unshuffled runs)
    rho: float | None
    tau: float | None
    notes: tuple[str, ...] = field(default=())

    @property
    def classes(self) -> list[int]:
        """The numbers of classes in the sweep."""
        return sorted(int(c) for c in self.curves["c"].unique())

    def thresholds_vs_c(self) -> pd.DataFrame:
        """Measured thresholds with columns name, c, d, value, ci_low, ci_high and the three
        scaled values ``value_c``, ``value_sqrt``, ``value_log``."""
        frame = self.thresholds.to_frame()
        if frame.empty:
            return frame
        for name, (f, _) in SCALINGS.items():
            frame[f"value_{name}"] = frame["value"] * f(frame["c"].astype(float))
        return frame[
            ["name", "c", "d", "value", "ci_low", "ci_high", "value_c", "value_sqrt", "value_log"]
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: thresholds, fits (every model's parameters) and curves."""
        return jsonable(
            {
                "rho": self.rho,
                "tau": self.tau,
                "classes": self.classes,
                "thresholds": self.thresholds.to_dict(),
                "fits": {name: _fit_dict(fit) for name, fit in self.fits.items()},
                "curves": self.curves.to_dict(orient="records"),
                "notes": list(self.notes),
            }
        )

    def plot(self, axes: Sequence[Any] | None = None, log_x: bool = True) -> Sequence[Any]:
        """Train (solid) and test (dashed) accuracy vs alpha c, alpha sqrt(c), alpha log c.

        One colour per c, darker for larger c. ``axes``: three axes (a new figure when None);
        ``log_x``: logarithmic x axes. Returns the axes.
        """
        from softleak.compare.style import class_colors

        if axes is None:
            import matplotlib.pyplot as plt

            _, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained", sharey=True)
        axes = list(np.ravel(axes))
        if len(axes) != 3:
            raise ValueError(f"need 3 axes, got {len(axes)}")
        colors = class_colors(self.classes)
        styles = {"student_train_acc": "-", "student_test_acc": "--", "teacher_train_acc": ":"}
        for ax, (_name, (f, xlabel)) in zip(axes, SCALINGS.items(), strict=True):
            for c in self.classes:
                for metric in self.curves["metric"].unique():
                    part = self.curves[
                        (self.curves["c"] == c) & (self.curves["metric"] == metric)
                    ].sort_values("alpha")
                    if part.empty:
                        continue
                    ax.plot(
                        part["alpha"] * f(float(c)),
                        part["mean"],
                        color=colors[float(c)],
                        ls=styles.get(metric, "-"),
                        lw=1.2,
                        marker="o",
                        ms=2,
                        label=f"c = {c}" if metric == "student_train_acc" else None,
                    )
            ax.set_xlabel(xlabel)
            if log_x:
                ax.set_xscale("log")
        axes[0].set_ylabel("accuracy (solid: train, dashed: test)")
        axes[-1].legend(fontsize="x-small", frameon=False, loc="best")
        return axes


def _fit_dict(fit: Any) -> dict[str, Any]:
    """A ``ClassScalingFit`` as a dict: every model's parameters and the best model's name."""
    models = [
        asdict(m) if is_dataclass(m) and not isinstance(m, type) else dict(vars(m))
        for m in getattr(fit, "models", ())
    ]
    best = getattr(fit, "best", None)
    return {"models": models, "best": getattr(best, "name", None)}


def class_collapse(
    df: pd.DataFrame,
    *,
    where: Mapping[str, Any] | None = None,
    cutoff: float = 0.99,
    n_boot: int = 1000,
    seed: int = 0,
    metrics: Sequence[str] = CLASS_METRICS,
) -> ClassCollapse:
    """Thresholds vs c with scaling fits, and curves for the three collapses (Fig. 5B).

    Args:
        df: results table spanning several c (d may differ between c, as in the paper).
        where: filters applied first (e.g. ``{"rho": 0.55, "tau": 10.0}``); afterwards every
            condition column other than c and d must hold one value.
        cutoff, n_boot, seed: threshold settings.
        metrics: accuracy columns to keep as curves.

    Returns:
        A :class:`ClassCollapse`. A rule measured at fewer than three c values, or with a
        non-finite threshold at some c, gets no fit (see ``notes``).
    """
    df = normalize(df, required=tuple(metrics))
    df = select(df, where)
    for col in present(df, CONDITION_COLUMNS):
        if col not in ("c", "d"):
            single_value(df, col)
    rho = single_value(df, "rho")
    tau = single_value(df, "tau")
    table = find_thresholds(df, cutoff=cutoff, n_boot=n_boot, seed=seed, theory=False)
    curves = mean_curves(df[~df["shuffle"]], metrics, by=("c",))
    fits: dict[str, Any] = {}
    notes: list[str] = []
    fit_class_scaling: Callable[..., Any] | None
    try:
        from softleak.theory.class_scaling import fit_class_scaling
    except ImportError as err:
        log.warning("softleak.theory.class_scaling unavailable (%s): no class-scaling fits", err)
        notes.append(f"no fits: theory.class_scaling unavailable ({err})")
        fit_class_scaling = None
    z = stats.norm.ppf(0.975)
    for name in RULES:
        rows = [r for r in table.rows if r.name == name]
        if not rows or fit_class_scaling is None:
            continue
        c_arr = np.array([r.c for r in rows], dtype=float)
        a_arr = np.array([r.value for r in rows], dtype=float)
        finite = np.isfinite(a_arr)
        if len(np.unique(c_arr[finite])) < 3:
            notes.append(f"{name}: fewer than 3 classes with a finite threshold, no fit")
            continue
        sig = np.array([(r.ci_high - r.ci_low) / (2 * z) for r in rows], dtype=float)[finite]
        sigma = sig if np.all(np.isfinite(sig) & (sig > 0)) else None
        try:
            fits[name] = fit_class_scaling(c_arr[finite], a_arr[finite], sigma=sigma)
        except (ValueError, RuntimeError) as err:
            notes.append(f"{name}: fit failed ({err})")
    return ClassCollapse(
        thresholds=table,
        fits=fits,
        curves=curves,
        rho=None if rho is None else float(rho),
        tau=None if tau is None else float(tau),
        notes=tuple(notes),
    )
