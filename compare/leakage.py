"""The weak-leakage curve: measured held-out accuracy of pseudo-inverse students against the
max-margin theory (``theory.leakage``), cell by cell, with the finite-size scaling of the gaps.

:func:`curve_agreement` takes a logistic-pinv results table (any teacher, one or several d) and
returns, per (teacher, d, rho, alpha) cell, the seed mean of ``student_test_acc`` (each seed counted
once), its standard error, the prediction and the difference:

- ``svm`` teachers are compared with the max-margin prediction; seeds whose teacher is not the
  exact max-margin separator (``teacher_status`` other than ``ok``: labels not separable, a KKT
  check failed) are left out and counted in ``dropped`` (the theory is the d -> infinity limit,
  where every alpha < 2 is separable);
- ``minnorm`` teachers with the exact control (1/2 for alpha < 1);
- ``logistic`` (Adam) teachers with the max-margin prediction too: the gap is then the Adam
  teacher's implicit-bias gap (and, with standardized inputs, that of the standardization).

A cell agrees when ``|diff| <= max(ABS_TOL, Z_TOL * SE)``; the issue's goal (issue 25) counts the
cells with rho alpha <= 0.95 and alpha <= 1.8 (``in_goal``). :meth:`CurveAgreement.scaling` fits
``diff(d) = diff_inf + c / d`` per cell over d (weighted by 1/SE^2).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from softleak.compare.table import jsonable, normalize, seed_means, seed_stats, select

#: Agreement: |measured - predicted| <= max(ABS_TOL, Z_TOL * SE) (issue 25's criterion).
ABS_TOL = 0.01
Z_TOL = 2.0
#: The goal region: cells with rho alpha <= GOAL_RHO_ALPHA and alpha <= GOAL_ALPHA (past them the
#: student spans R^d, or the teacher sits at the edge of separability at finite d).
GOAL_RHO_ALPHA = 0.95
GOAL_ALPHA = 1.8
#: The fraction of goal cells that must agree at the largest d (issue 25).
GOAL_FRACTION = 0.9

METRIC = "student_test_acc"
COLUMNS = (
    "teacher",
    "d",
    "rho",
    "alpha",
    "measured",
    "sem",
    "n_seeds",
    "dropped",
    "predicted",
    "diff",
    "z",
    "within",
    "in_goal",
)


def predicted(teacher: str, alpha, rho) -> np.ndarray:
    """The theory's held-out accuracy for ``teacher`` at (alpha, rho) (broadcast): the exact
    control for ``minnorm``, the max-margin prediction otherwise (NaN where neither applies)."""
    from softleak.theory.leakage import minnorm_accuracy, predicted_accuracy

    if teacher == "minnorm":
        return minnorm_accuracy(alpha, rho)
    return predicted_accuracy(alpha, rho)


def predicted_curves(
    teacher: str, rhos: Sequence[float], lo: float, hi: float, n_grid: int = 400
) -> pd.DataFrame:
    """The theory's held-out accuracy (``compare.leakage.predicted``) per rho on ``n_grid``
    alpha values from lo to hi: a long table ``rho, alpha, accuracy`` (NaN where the theory does
    not apply: alpha >= 2, or alpha >= 1 for the min-norm teacher). The grid also holds each
    1/rho, where the accuracy reaches 1, so the kink is drawn sharp."""
    frames = []
    for rho in rhos:
        alpha = np.linspace(lo, hi, n_grid)
        kink = 1.0 / float(rho)
        if lo < kink < hi:
            alpha = np.sort(np.append(alpha, [kink * (1 - 1e-9), kink]))
        acc = predicted(teacher, alpha, float(rho))
        frames.append(pd.DataFrame({"rho": float(rho), "alpha": alpha, "accuracy": acc}))
    return pd.concat(frames, ignore_index=True)


def theory_label(teacher: str) -> str:
    """Legend text of the predicted curve for a sweep of ``teacher``."""
    if teacher == "minnorm":
        return "min-norm theory: 1/2 exactly"
    if teacher == "svm":
        return "max-margin theory"
    return "max-margin theory (Adam teacher: another bias)"


def teacher_of(df: pd.DataFrame) -> pd.Series:
    """Each row's teacher (``logistic`` for tables written before exact teachers)."""
    if "teacher" not in df.columns:
        return pd.Series("logistic", index=df.index)
    return df["teacher"].fillna("logistic").astype(str)


def usable(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows compared with the theory, rows left out): unshuffled, no ablation, and for exact
    teachers only seeds whose ``teacher_status`` is ``ok``."""
    df = df[~df["shuffle"].astype(bool)]
    if "ablation" in df.columns:
        df = df[df["ablation"] == "none"]
    df = df.assign(teacher=teacher_of(df))
    if "teacher_status" not in df.columns:
        return df, df.iloc[:0]
    bad = df["teacher"].isin(["svm", "minnorm"]) & (df["teacher_status"].fillna("ok") != "ok")
    return df[~bad], df[bad]


@dataclass(frozen=True, eq=False)
class CurveAgreement:
    """Measured vs predicted held-out accuracy per (teacher, d, rho, alpha) cell (``table``:
    :data:`COLUMNS`), and each seed's accuracy in each cell (``per_seed``: teacher, d, rho,
    alpha, seed, measured)."""

    table: pd.DataFrame
    per_seed: pd.DataFrame

    @property
    def ds(self) -> list[int]:
        return sorted(int(v) for v in self.table["d"].unique())

    def goal(self, d: int | None = None) -> dict[str, Any]:
        """The issue's goal at ``d`` (default: the largest): goal cells, how many agree, the
        fraction, and whether it reaches ``GOAL_FRACTION``."""
        d = max(self.ds) if d is None else int(d)
        cells = self.table[(self.table["d"] == d) & self.table["in_goal"]]
        cells = cells[cells["predicted"].notna() & cells["measured"].notna()]
        k = int(cells["within"].sum())
        frac = k / len(cells) if len(cells) else math.nan
        return {
            "d": d,
            "cells": int(len(cells)),
            "within": k,
            "fraction": frac,
            "goal": GOAL_FRACTION,
            "met": bool(len(cells) and frac >= GOAL_FRACTION),
        }

    def seed_gaps(
        self, d: int | None = None, teacher: str | None = None, against: str = "theory"
    ) -> np.ndarray:
        """Per seed, the mean over the goal cells at ``d`` (default: the largest) where the theory
        applies of measured - predicted (``against="theory"``) or measured - 1/2 (``"chance"``):
        one number per seed. Seeds are the independent units (the cells of one seed share its
        teacher across rho and, with nested data, its data across alpha)."""
        d = max(self.ds) if d is None else int(d)
        cells = self.table[(self.table["d"] == d) & self.table["in_goal"]]
        cells = cells[cells["predicted"].notna()]
        if teacher is not None:
            cells = cells[cells["teacher"] == teacher]
        keys = ["teacher", "d", "rho", "alpha"]
        rows = self.per_seed.merge(cells[[*keys, "predicted"]], on=keys)
        base = rows["predicted"] if against == "theory" else 0.5
        return (rows["measured"] - base).groupby(rows["seed"]).mean().to_numpy(dtype=float)

    def pooled(self, d: int | None = None, teacher: str | None = None) -> dict[str, float]:
        """The mean over seeds of :meth:`seed_gaps` (measured - predicted over the goal cells)
        and its standard error over seeds."""
        gaps = self.seed_gaps(d, teacher)
        k = gaps.size
        cells = self.table[(self.table["d"] == (max(self.ds) if d is None else int(d)))]
        cells = cells[cells["in_goal"] & cells["predicted"].notna()]
        if teacher is not None:
            cells = cells[cells["teacher"] == teacher]
        return {
            "mean_diff": float(gaps.mean()) if k else math.nan,
            "se": float(gaps.std(ddof=1) / math.sqrt(k)) if k > 1 else math.nan,
            "seeds": int(k),
            "cells": int(len(cells)),
        }

    def by_d(self) -> pd.DataFrame:
        """Per (teacher, d), over the goal cells: cells, the fraction within tolerance, mean diff
        with its standard error over seeds (:meth:`pooled`), mean |diff|, root-mean-square z,
        median SE."""
        rows = []
        part = self.table[self.table["in_goal"] & self.table["predicted"].notna()]
        for (teacher, d), g in part.groupby(["teacher", "d"]):
            pooled = self.pooled(int(d), str(teacher))
            rows.append(
                {
                    "teacher": teacher,
                    "d": int(d),
                    "cells": int(len(g)),
                    "fraction_within": float(g["within"].mean()),
                    "mean_diff": pooled["mean_diff"],
                    "mean_diff_se": pooled["se"],
                    "mean_abs_diff": float(g["diff"].abs().mean()),
                    "rms_z": float(np.sqrt(np.nanmean(g["z"] ** 2))),
                    "median_sem": float(g["sem"].median()),
                }
            )
        return pd.DataFrame(rows)

    def scaling(self) -> pd.DataFrame:
        """Per (teacher, rho, alpha) measured at >= 2 values of d: the weighted least-squares fit
        ``diff(d) = diff_inf + c / d`` (weights 1/SE^2), with standard errors, and chi^2 (dof =
        #d - 2) of the fit."""
        rows = []
        for (teacher, rho, alpha), g in self.table.groupby(["teacher", "rho", "alpha"]):
            g = g[g["diff"].notna() & (g["sem"] > 0)]
            if g["d"].nunique() < 2:
                continue
            x = 1.0 / g["d"].to_numpy(dtype=float)
            y = g["diff"].to_numpy(dtype=float)
            w = 1.0 / g["sem"].to_numpy(dtype=float) ** 2
            A = np.stack([np.ones_like(x), x], 1)
            cov = np.linalg.inv(A.T @ (w[:, None] * A))
            coef = cov @ (A.T @ (w * y))
            chi2 = float(np.sum(w * (y - A @ coef) ** 2))
            rows.append(
                {
                    "teacher": teacher,
                    "rho": float(rho),
                    "alpha": float(alpha),
                    "ds": len(g),
                    "diff_inf": float(coef[0]),
                    "diff_inf_se": float(math.sqrt(cov[0, 0])),
                    "c_over_d": float(coef[1]),
                    "c_over_d_se": float(math.sqrt(cov[1, 1])),
                    "chi2": chi2,
                    "dof": len(g) - 2,
                }
            )
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the cells, the per-d summary, the scaling fits and the goal at the largest
        d."""
        return jsonable(
            {
                "criterion": f"|diff| <= max({ABS_TOL:g}, {Z_TOL:g} SE)",
                "goal_region": f"rho alpha <= {GOAL_RHO_ALPHA:g} and alpha <= {GOAL_ALPHA:g}",
                "cells": self.table.to_dict(orient="records"),
                "by_d": self.by_d().to_dict(orient="records"),
                "scaling": self.scaling().to_dict(orient="records"),
                "goal": self.goal() if len(self.table) else None,
            }
        )

    def format(self) -> str:
        """The cells as a text table (one line per cell, goal cells marked *)."""
        lines = [
            f"{'teacher':8s} {'d':>5s} {'rho':>4s} {'alpha':>5s} {'seeds':>5s} {'drop':>4s} "
            f"{'measured':>15s} {'theory':>7s} {'diff':>8s} {'z':>6s}  ok"
        ]
        for r in self.table.itertuples():
            lines.append(
                f"{r.teacher:8s} {r.d:5d} {r.rho:4.2g} {r.alpha:5.3g} {r.n_seeds:5d} "
                f"{r.dropped:4d} {r.measured:7.4f}+-{r.sem:6.4f} {r.predicted:7.4f} "
                f"{r.diff:+8.4f} {r.z:+6.2f}  {'yes' if r.within else 'no '}"
                f"{'*' if r.in_goal else ''}"
            )
        return "\n".join(lines)

    def summary(self) -> str:
        """One line per (teacher, d): the held-out accuracy against the theory over the cells
        where it applies."""
        lines = []
        part = self.table[self.table["predicted"].notna() & self.table["measured"].notna()]
        for (teacher, d), g in part.groupby(["teacher", "d"]):
            dropped = int(g["dropped"].sum())
            lines.append(
                f"held-out accuracy vs {theory_label(str(teacher))}, d = {d}: "
                f"{int(g['within'].sum())} of {len(g)} cells within max({ABS_TOL:g}, "
                f"{Z_TOL:g} SE), mean measured - predicted {g['diff'].mean():+.4f}"
                + (f", {dropped} seed-cells left out (teacher_status not ok)" if dropped else "")
            )
        return "\n".join(lines) or "held-out accuracy: no cell the theory covers"

    def plot_curves(
        self, ax: Any = None, d: int | None = None, teacher: str | None = None, legend: bool = True
    ) -> Any:
        """Measured held-out accuracy (+- SE) against alpha, one colour per rho, with the
        predicted curve of each rho in the same colour, at ``d`` (default: the largest) for one
        ``teacher`` (default: the table's only one). Returns the axes."""
        from softleak.compare.style import axes_or_new

        ax = axes_or_new(ax)
        d = max(self.ds) if d is None else int(d)
        part = self.table[self.table["d"] == d]
        teachers = sorted(part["teacher"].unique())
        teacher = teachers[0] if teacher is None else teacher
        part = part[part["teacher"] == teacher]
        lo, hi = float(part["alpha"].min()), float(part["alpha"].max())
        curves = predicted_curves(teacher, sorted(part["rho"].unique()), lo, hi)
        for k, (rho, g) in enumerate(part.groupby("rho")):
            g = g.sort_values("alpha")
            color = f"C{k}"
            ax.errorbar(
                g["alpha"],
                g["measured"],
                yerr=g["sem"].fillna(0.0),
                color=color,
                marker="o",
                ms=3,
                lw=0,
                elinewidth=1.0,
                capsize=2,
                label=rf"$\rho = {rho:g}$ measured",
            )
            line = curves[np.isclose(curves["rho"], rho)]
            ax.plot(line["alpha"], line["accuracy"], color=color, lw=1.3)
        ax.plot([], [], color="0.3", lw=1.3, label=theory_label(teacher))
        ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
        ax.set_xlabel(r"$\alpha = n/d$")
        ax.set_ylabel(r"held-out member accuracy acc$^S_{\rm test}$")
        ax.set_title(f"{teacher} teacher, d = {d}", fontsize="medium")
        if legend:
            ax.legend(fontsize="x-small", frameon=False)
        return ax

    def plot(self, ax: Any = None, d: int | None = None) -> Any:
        """Measured minus predicted against alpha, one colour per rho (+-2 SE bars), at ``d``
        (default: the largest), with the +-ABS_TOL band. Returns the axes."""
        from softleak.compare.style import axes_or_new

        ax = axes_or_new(ax)
        d = max(self.ds) if d is None else int(d)
        part = self.table[(self.table["d"] == d) & self.table["predicted"].notna()]
        ax.axhspan(-ABS_TOL, ABS_TOL, color="0.85", lw=0, label=f"$\\pm${ABS_TOL:g}")
        ax.axhline(0.0, color="black", lw=0.8)
        for rho, g in part.groupby("rho"):
            g = g.sort_values("alpha")
            ax.errorbar(
                g["alpha"],
                g["diff"],
                yerr=Z_TOL * g["sem"].fillna(0.0),
                marker="o",
                ms=3,
                capsize=2,
                lw=1.0,
                label=rf"$\rho = {rho:g}$",
            )
        ax.set_xlabel(r"$\alpha = n/d$")
        ax.set_ylabel("measured - predicted held-out accuracy")
        ax.set_title(f"d = {d} ({Z_TOL:g} SE bars)", fontsize="medium")
        ax.legend(fontsize="x-small", frameon=False)
        return ax


def curve_agreement(df: pd.DataFrame, *, where: Mapping[str, Any] | None = None) -> CurveAgreement:
    """Measured held-out accuracy against the theory, per (teacher, d, rho, alpha) cell.

    Args:
        df: logistic-pinv results (one or several d and teachers); ``where`` filters first.

    Returns:
        A :class:`CurveAgreement`.
    """
    df = normalize(df, required=(METRIC, "rho"))
    df = select(df, where)
    bad = sorted(set(df["experiment"]) - {"logistic-pinv"})
    if bad:
        raise ValueError(f"the weak-phase theory is for logistic-pinv sweeps, not {bad[0]}")
    rows, left_out = usable(df)
    keys = ["teacher", "d", "rho", "alpha"]
    rows = rows.dropna(subset=keys)  # a run without a cell is compared nowhere
    per_seed = seed_means(rows, keys, METRIC)
    table = seed_stats(per_seed, keys).reset_index()
    table = table.rename(columns={METRIC: "measured", f"{METRIC}_sem": "sem"})
    dropped = left_out.groupby(keys)["seed"].nunique()
    table["dropped"] = [int(dropped.get(tuple(k), 0)) for k in table[keys].itertuples(index=False)]
    table["predicted"] = np.nan
    for teacher, idx in table.groupby("teacher").groups.items():
        part = table.loc[idx]
        table.loc[idx, "predicted"] = predicted(
            str(teacher), part["alpha"].to_numpy(float), part["rho"].to_numpy(float)
        )
    table["diff"] = table["measured"] - table["predicted"]
    with np.errstate(divide="ignore", invalid="ignore"):
        table["z"] = table["diff"] / table["sem"]
    tol = np.maximum(ABS_TOL, Z_TOL * table["sem"].fillna(0.0))
    table["within"] = table["diff"].abs() <= tol
    table["in_goal"] = (table["rho"] * table["alpha"] <= GOAL_RHO_ALPHA + 1e-12) & (
        table["alpha"] <= GOAL_ALPHA + 1e-12
    )
    table["d"] = table["d"].astype(int)
    table["n_seeds"] = table["n_seeds"].astype(int)
    seeds = per_seed.rename(columns={METRIC: "measured"}).reset_index()
    seeds["d"] = seeds["d"].astype(int)
    return CurveAgreement(table[list(COLUMNS)].reset_index(drop=True), seeds)


#: Accuracy levels of the predicted contours drawn over a phase diagram's weak phase.
CONTOUR_LEVELS: tuple[float, ...] = (0.55, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True, eq=False)
class TheoryContours:
    """Predicted held-out accuracy on a fine grid of a diagram's (x, y) plane."""

    x: np.ndarray  # (gx,) in the diagram's x coordinate
    y: np.ndarray  # (gy,)
    z: np.ndarray  # (gy, gx) predicted accuracy (NaN where the theory does not apply)
    label: str
    levels: tuple[float, ...] = CONTOUR_LEVELS

    def to_dict(self) -> dict[str, Any]:
        return jsonable(
            {
                "x": self.x,
                "y": self.y,
                "accuracy": self.z,
                "levels": self.levels,
                "label": self.label,
            }
        )

    def plot(self, ax: Any) -> Any:
        """Labelled contour lines at ``levels``; returns a legend handle for them."""
        from matplotlib.lines import Line2D

        z = np.ma.masked_invalid(self.z)
        if z.count() and z.min() < max(self.levels) and z.max() > min(self.levels):
            lines = ax.contour(
                self.x, self.y, z, levels=list(self.levels), colors="0.15", linewidths=0.8
            )
            ax.clabel(lines, fmt="%.2g", fontsize="x-small")
        return Line2D([], [], color="0.15", lw=0.8, label=self.label + " (held-out acc.)")


def theory_contours(
    df: pd.DataFrame, x: str, y: str, x_edges: np.ndarray, y_edges: np.ndarray, n_grid: int = 200
) -> TheoryContours | None:
    """The predicted held-out accuracy over a diagram spanning ``x_edges`` x ``y_edges``, for a
    logistic-pinv table over (alpha, rho); None for any other table or axes."""
    experiments = set(df["experiment"].astype(str))
    if {x, y} != {"alpha", "rho"} or experiments != {"logistic-pinv"}:
        return None
    teachers = teacher_of(df).unique()
    teacher = str(teachers[0]) if len(teachers) == 1 else "logistic"
    gx = np.linspace(x_edges[0], x_edges[-1], n_grid)
    gy = np.linspace(y_edges[0], y_edges[-1], n_grid)
    alpha, rho = (gx[None, :], gy[:, None]) if x == "alpha" else (gy[:, None], gx[None, :])
    alpha = np.clip(alpha, 1e-6, None)
    rho = np.clip(rho, 1e-6, 1 - 1e-6)
    z = np.broadcast_to(predicted(teacher, alpha, rho), (n_grid, n_grid)).copy()
    return TheoryContours(gx, gy, z, theory_label(teacher))
