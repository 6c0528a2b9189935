"""Shared pieces of Figs. 19-21 (appendix D.4.2): the teacher's and the student's hidden widths.

Settings (paper): one-hidden-layer ReLU MLPs, d = 1000, c = 100, tau = 20; rho = 0.45 in Figs. 19
and 20. Fig. 19 varies p_T = p_S jointly, Fig. 20 the student's p_S at p_T = 500, Fig. 21 p_S and
rho at p_T = 500 and n_per_class = 250. One sweep per (p_T, p_S) pair (a spec has one student
width); ``make`` stacks them into one table with integer ``p_T``, ``p_S`` and ``alpha_per_p``.

Why the accuracies collapse in alpha / p (Fig. 19). Parameter counting (``theory.capacity``): a net
d -> p -> c has #params = p (d + c + 1) + c, of which p + 1 are unobservable through the softmax
shift, and every student sample gives c - 1 equations. The student's rho n samples therefore pin
its parameters once rho n (c - 1) >= p (d + c) + c - 1 (``mlp_identifiability_rho_n``), i.e. at

    alpha / p = n / (d c p) = (d + c + (c - 1) / p) / (rho (c - 1) d c),

a constant in p up to the (c - 1)/p term; the teacher's memorization estimate n ~ #params / (2 ln c)
(``mlp_memorization_n``) is likewise proportional to p. Every counting threshold is thus a fixed
alpha / p at fixed (d, c, rho), so curves of different widths fall together in alpha / p and are
shifted by the width ratio in alpha. The constant depends on d and c through (d + c) / d: it is
2.5e-4 at the paper's d = 1000 and 4.5e-4 at the quick scale's d = 100 (rho = 0.45), so the quick
scale's collapse sits ~1.8x higher in alpha / p by counting alone. Measured students need several
times the counting estimate (gradient training, finite epochs), which is why both the estimates
and the measured curves are drawn.

Quick-scale caveat. The student split takes ``int(rho n / c)`` samples per class (the reference's
rule), so with few samples per class the effective rho is below the nominal one (rho = 0.45 with
4 per class trains on 1 of 4). ``balanced_n`` nudges the quick scale's n (within 15 %) to a
per-class count whose floor split is closest to rho, and never goes below 5 per class.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from softleak.compare.reach import LEVEL
from softleak.paper_figs.mlp_scale import MLPScale
from softleak.simulate.data import train_per_class
from softleak.simulate.spec import SweepSpec

RHO = 0.45  # Figs. 19 and 20
#: The paper's teacher set sizes in Figs. 19 and 20: n = d x {12.5, 25, 50, ..., 200}, d = 1000.
PAPER_N = tuple(int(1000 * k) for k in (12.5, 25, 50, 75, 100, 125, 150, 175, 200))
METRICS = ("teacher_train_acc", "student_train_acc", "student_test_acc")
METRIC_STYLE = {  # linestyle and marker per metric (colour is the width)
    "student_test_acc": ("-", "o", r"student test ${\rm acc}^S_{\rm test}$"),
    "student_train_acc": ("--", "s", r"student train ${\rm acc}^S_{\rm train}$"),
    "teacher_train_acc": (":", "^", r"teacher train ${\rm acc}^T_*$"),
}


# ---------------------------------------------------------------------------------------------
# Grids and sweeps
# ---------------------------------------------------------------------------------------------


def effective_rho(per_class: int, rho: float) -> float:
    """The student's actual fraction under the floor split: int(rho m) / m for m per class."""
    return train_per_class(per_class, rho) / per_class


def balanced_n(
    scale: MLPScale,
    n_paper: float,
    rho: float,
    tol: float = 0.15,
    min_per_class: int = 5,
    rho_tol: float = 0.015,
) -> int:
    """``scale.n(n_paper)``, nudged so that the floor split int(rho m)/m of its m samples per
    class is close to ``rho``. Candidates: m within ``tol`` of the target (relative; the window
    rounded outward to whole counts), at least ``min_per_class``. The m closest to the target whose
    split is within ``rho_tol`` of rho; if there is none, the m with the closest split. Returns
    n = m c (a multiple of c)."""
    c = scale.c
    target = max(n_paper * scale.n_factor / c, min_per_class)  # scale.n before its rounding
    lo = max(min_per_class, math.floor(target * (1 - tol)))  # window rounded outward
    hi = max(lo, math.ceil(target * (1 + tol)))
    window = range(lo, hi + 1)
    good = [m for m in window if abs(effective_rho(m, rho) - rho) <= rho_tol]
    if good:
        best = min(good, key=lambda m: (abs(m - target), abs(effective_rho(m, rho) - rho)))
    else:
        best = min(window, key=lambda m: (abs(effective_rho(m, rho) - rho), abs(m - target)))
    return best * c


def alpha_per_p_grid(
    scale: MLPScale, p_paper: int, xs: Iterable[float], rho: float, paper: MLPScale
) -> tuple[int, ...]:
    """Teacher set sizes at this scale for the alpha / p values ``xs`` of a width ``p_paper``
    model (n_paper = x p d c at the paper's scale, mapped by ``balanced_n``); sorted, distinct."""
    ns = {balanced_n(scale, x * p_paper * paper.d * paper.c, rho) for x in xs}
    return tuple(sorted(ns))


def width_spec(
    scale: MLPScale,
    *,
    p_teacher: int,
    p_student: int,
    n: Sequence[int],
    rho: Sequence[float],
    seeds: int = 1,
) -> SweepSpec:
    """An mlp sweep at ``scale`` with the given widths (already at this scale)."""
    return scale.spec(
        n=tuple(n), rho=tuple(rho), p_teacher=(p_teacher,), p_student=(p_student,), seeds=seeds
    )


# ---------------------------------------------------------------------------------------------
# Tables and curves
# ---------------------------------------------------------------------------------------------


def _width(value) -> int:
    """A one-hidden-layer width from the table's ``p_teacher``/``p_student`` string ("50")."""
    text = str(value).strip()
    if "," in text:
        raise ValueError(f"Figs. 19-21 use one hidden layer, got widths {text!r}")
    return int(float(text))


def widths_table(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """All sweeps stacked, with integer ``p_T``, ``p_S`` and ``alpha_per_p`` = alpha / p_S."""
    frames = [t for t in tables.values() if t is not None and len(t)]
    if not frames:
        raise ValueError("no results: every sweep table is empty")
    df = pd.concat(frames, ignore_index=True)
    df["p_T"] = df["p_teacher"].map(_width)
    df["p_S"] = df["p_student"].map(_width)
    df["alpha_per_p"] = df["alpha"].astype(float) / df["p_S"]
    return df


def width_curves(
    df: pd.DataFrame, by: Sequence[str] = ("p_T", "p_S", "rho"), metrics=METRICS
) -> pd.DataFrame:
    """Seed-mean and SEM per (by..., alpha) of ``metrics`` (``compare.overlay.mean_curves``),
    with ``n`` and ``alpha_per_p`` = alpha / p_S added (needs ``p_S`` in ``by``)."""
    from softleak.compare.overlay import mean_curves

    curves = mean_curves(df, list(metrics), by=list(by))
    d, c = int(df["d"].iloc[0]), int(df["c"].iloc[0])
    curves["n"] = (curves["alpha"].astype(float) * d * c).round().astype(int)
    curves["alpha_per_p"] = curves["alpha"].astype(float) / curves["p_S"]
    return curves


# ---------------------------------------------------------------------------------------------
# Crossings and collapse quality
# ---------------------------------------------------------------------------------------------


def spread(values: Iterable[float | None]) -> dict:
    """How far apart the finite ``values`` are: ``ratio`` max/min and ``rel_sd`` (sd/mean, ddof 1);
    None where fewer than two values are finite (1.0 and 0.0 mean a perfect collapse)."""
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size < 2:
        return {"count": int(v.size), "ratio": None, "rel_sd": None}
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio, rel_sd = v.max() / v.min(), v.std(ddof=1) / v.mean()
    return {"count": int(v.size), "ratio": num(ratio), "rel_sd": num(rel_sd)}


# ---------------------------------------------------------------------------------------------
# Parameter-counting estimates in the figures' units
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------------------------


def width_colors(widths: Sequence[int]) -> dict[int, tuple]:
    """One colour per width, darker for wider nets."""
    from softleak.compare.style import class_colors

    return {int(k): v for k, v in class_colors(sorted(set(int(w) for w in widths))).items()}


def plot_width_curves(
    ax,
    curves: pd.DataFrame,
    x: str,
    key: str,
    metrics: Sequence[str] = METRICS,
) -> None:
    """Mean +- SEM of ``metrics`` against ``x``, one colour per value of ``key`` (a width column,
    ``width_colors``), one line style per metric (``METRIC_STYLE``); see ``legend_handles``."""
    colors = width_colors(curves[key].unique())
    for w in sorted(colors):
        part = curves[curves[key] == w]
        for metric in metrics:
            rows = part[part["metric"] == metric].sort_values(x)
            if rows.empty:
                continue
            ls, marker, _ = METRIC_STYLE[metric]
            ax.errorbar(
                rows[x],
                rows["mean"],
                yerr=rows["sem"].fillna(0.0),
                color=colors[w],
                ls=ls,
                marker=marker,
                ms=3.5,
                lw=1.3,
                capsize=1.5,
            )
    ax.set_ylim(-0.02, 1.04)
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.25, lw=0.5)


def legend_handles(
    widths: Sequence[int],
    labels: Mapping[int, str],
    metrics: Sequence[str] = METRICS,
    theory: Sequence[tuple[str, str]] = (),
    reach: bool = True,
) -> list:
    """Legend entries: one colour per width, one line style per metric, the black theory lines
    ``(linestyle, label)``, and the crossing marker."""
    from matplotlib.lines import Line2D

    colors = width_colors(widths)
    handles = [Line2D([], [], color=colors[w], lw=2.5, label=labels[w]) for w in sorted(colors)]
    for m in metrics:
        ls, marker, label = METRIC_STYLE[m]
        handles.append(Line2D([], [], color="0.3", ls=ls, marker=marker, ms=3.5, label=label))
    handles += [Line2D([], [], color="black", ls=ls, lw=1.1, label=lab) for ls, lab in theory]
    if reach:
        handles.append(
            Line2D(
                [],
                [],
                color="0.3",
                ls="",
                marker="v",
                ms=7,
                label=rf"held-out acc first $\geq {LEVEL:g}$",
            )
        )
    handles.append(Line2D([], [], color="0.5", lw=0.8, ls="-.", label="chance $1/c$"))
    return handles


def theory_vline(ax, x: float, label: str | None = None, ls: str = "--", text: str | None = None):
    """A black theory line at ``x`` (skipped when not finite), with optional rotated ``text``."""
    from softleak.compare.style import THEORY_STYLE

    if x is None or not math.isfinite(x):
        return
    ax.axvline(x, **{**THEORY_STYLE, "linestyle": ls, "linewidth": 1.1}, label=label)
    if text:
        ax.text(x, 1.02, text, rotation=90, fontsize="xx-small", ha="right", va="top")


def chance_line(ax, c: int) -> None:
    """The chance accuracy 1/c as a thin grey line."""
    ax.axhline(1.0 / c, color="0.5", lw=0.8, ls="-.")


def runs_text(curves: pd.DataFrame) -> str:
    """'one run per point' or 'mean +- SEM of K runs' (K = the most seeds behind a point)."""
    k = int(curves["n_seeds"].max())
    return "one run per point" if k == 1 else f"mean $\\pm$ SEM of {k} runs"


def fmt(value, digits: int = 4) -> str:
    """A number for the text tables ('-' for None/NaN)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}g}"


def fmt_reach(entry: dict, scale: float = 1.0) -> str:
    """A ``first_reach`` entry as text: the value, or '<= x' / '> x' when censored."""
    if entry.get("value") is not None:
        return fmt(entry["value"] * scale)
    if entry.get("censored") == "below":
        return "<=" + fmt(entry["bound"] * scale)
    if entry.get("censored") == "above":
        return ">" + fmt(entry["bound"] * scale)
    return "-"


def num(value) -> float | None:
    """JSON-friendly number with 6 significant digits (``common.clean`` keeps 6 decimals, too few
    for alpha / p ~ 1e-4); None for None/NaN/inf."""
    if value is None:
        return None
    f = float(value)
    return float(f"{f:.6g}") if math.isfinite(f) else None


def clean_entry(entry: dict) -> dict:
    """A ``first_reach`` entry with JSON-friendly numbers (``num``)."""
    return {k: num(v) if k in ("value", "bound") else v for k, v in entry.items()}


def scaled_reach(entry: dict, factor: float) -> dict:
    """A ``first_reach`` entry with value and bound multiplied by ``factor`` (change of units)."""
    out = dict(entry)
    for k in ("value", "bound"):
        if out.get(k) is not None:
            out[k] = out[k] * factor
    return out
