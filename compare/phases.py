"""Phase diagrams: which leakage regime each (alpha, rho) or (alpha, tau) cell is in.

Kept as one module (~550 lines, over the house's ~500): the phase rules, the diagram built from
them and its two drawings share the phase labels and cell edges, so a separate drawing module
would import them from here while :class:`PhaseDiagram`'s methods call it: an import cycle.

Classification of a cell from seed-mean metrics (paper Figs. 4B and 7A; cut-offs from
docs/reference.md), with ``cutoff`` = 0.99 and ``weak_cutoff`` = 1/c + 0.05 (0.55 for c = 2, the
reference's value):

====================================  ===========================================================
phase                                 condition
====================================  ===========================================================
``full recovery``                     student train >= cutoff and student test >= cutoff
``weak leakage``                      student train >= cutoff and weak_cutoff <= test < cutoff
``no leakage``                        student train >= cutoff and test < weak_cutoff; or teacher
                                      train >= cutoff, student train < cutoff, test < weak_cutoff
``weak leakage without memorization`` teacher train >= cutoff, student train < cutoff, test >=
                                      weak_cutoff (the MLP's light-blue region, Fig. 7A)
``teacher fails, student matches``    student train < cutoff, teacher train < cutoff, and the
                                      student matches the teacher (match-teacher test acc >=
                                      ``match_cutoff``, or with ``mse_cutoff`` set: test MSE to the
                                      teacher's logits <= ``mse_cutoff``)
``neither``                           student train < cutoff, teacher train < cutoff, no match
====================================  ===========================================================

The reference code split every ``student train < 0.99`` cell by match-teacher accuracy; this
module first asks whether the teacher memorized (as Fig. 7A does), which gives the same answer for
the linear models, where the student fits its training set whenever the teacher does. A cell
without a teacher accuracy is classified the reference's way. The paper mentions an MSE cut-off of
0.1 that the reference never applied: pass ``mse_cutoff=0.1`` to use it.

For logistic-pinv over (alpha, rho), ``contours=True`` adds the predicted held-out accuracy of the
weak phase (``compare.leakage.theory_contours``) as contour lines over the diagram.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from softleak.compare.leakage import TheoryContours, theory_contours
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

log = logging.getLogger(__name__)

FULL = "full recovery"
WEAK = "weak leakage"
WEAK_NO_MEM = "weak leakage without memorization"
NO_LEAK = "no leakage"
MATCH = "teacher fails, student matches"
NEITHER = "neither"

#: Every phase label, in legend order.
PHASES: tuple[str, ...] = (FULL, WEAK, WEAK_NO_MEM, NO_LEAK, MATCH, NEITHER)

#: Label of a cell that cannot be classified (no runs, or a needed metric missing).
UNKNOWN = ""

DEFAULT_CUTOFF = 0.99  # docs/reference.md: train / test "fit" cut-off
WEAK_MARGIN = 0.05  # weak cut-off above chance 1/c (0.55 for c = 2, docs/reference.md)
MATCH_CUTOFF = 0.99  # match-teacher accuracy for "student matches"


def default_weak_cutoff(c: int) -> float:
    """Chance plus a margin: ``1/c + 0.05`` (docs/reference.md's 0.55 for c = 2)."""
    return 1.0 / c + WEAK_MARGIN


def classify(
    student_train: Any,
    student_test: Any,
    teacher_train: Any = None,
    match: Any = None,
    mse: Any = None,
    *,
    c: int = 2,
    cutoff: float = DEFAULT_CUTOFF,
    weak_cutoff: float | None = None,
    match_cutoff: float = MATCH_CUTOFF,
    mse_cutoff: float | None = None,
) -> np.ndarray:
    """Phase label of each cell (see the module docstring for the rules).

    Args:
        student_train, student_test: seed-mean student accuracies, any broadcastable shape.
        teacher_train: seed-mean teacher train accuracy (None/NaN: unknown, reference rule).
        match: seed-mean match-teacher accuracy (used unless ``mse_cutoff`` is given).
        mse: seed-mean MSE to the teacher's logits (used when ``mse_cutoff`` is given).
        c: number of classes (sets the default ``weak_cutoff``).
        cutoff, weak_cutoff, match_cutoff, mse_cutoff: the cut-offs.

    Returns:
        Array of phase labels (``object`` dtype) with the broadcast shape; :data:`UNKNOWN` where a
        metric needed for the decision is NaN.
    """
    weak = default_weak_cutoff(c) if weak_cutoff is None else float(weak_cutoff)
    tr = np.asarray(student_train, dtype=float)
    te = np.asarray(student_test, dtype=float)
    shape = np.broadcast_shapes(tr.shape, te.shape)

    def arr(v: Any) -> np.ndarray:
        return np.broadcast_to(np.asarray(np.nan if v is None else v, dtype=float), shape)

    tr, te, tt = np.broadcast_to(tr, shape), np.broadcast_to(te, shape), arr(teacher_train)
    if mse_cutoff is not None:
        mv = arr(mse)
        matches = np.where(np.isnan(mv), np.nan, (mv <= mse_cutoff).astype(float))
    else:
        mv = arr(match)
        matches = np.where(np.isnan(mv), np.nan, (mv >= match_cutoff).astype(float))
    eps = 1e-12  # seed means of exact fractions can land one ulp below a cut-off
    fits = tr >= cutoff - eps
    generalizes = te >= cutoff - eps
    leaks = te >= weak - eps
    teacher_ok = tt >= cutoff - eps
    teacher_known = ~np.isnan(tt)

    out = np.full(shape, UNKNOWN, dtype=object)
    known = ~np.isnan(tr) & ~np.isnan(te)
    fit_cells = known & fits
    out[fit_cells & generalizes] = FULL
    out[fit_cells & ~generalizes & leaks] = WEAK
    out[fit_cells & ~leaks] = NO_LEAK
    mlp_cells = known & ~fits & teacher_known & teacher_ok
    out[mlp_cells & leaks] = WEAK_NO_MEM
    out[mlp_cells & ~leaks] = NO_LEAK
    fail_cells = known & ~fits & ~(teacher_known & teacher_ok) & ~np.isnan(matches)
    out[fail_cells & (matches == 1.0)] = MATCH
    out[fail_cells & (matches == 0.0)] = NEITHER
    return out


@dataclass(frozen=True)
class TheoryLine:
    """A theory curve in the diagram's (x, y) coordinates."""

    name: str  # "alpha_id" or "alpha_label_T"
    x: tuple[float, ...]
    y: tuple[float, ...]
    label: str  # legend text
    linestyle: str = "--"


@dataclass(frozen=True, eq=False)
class PhaseDiagram:
    """A grid of phase labels with its axes, the cell metrics and theory lines.

    ``labels[i, j]`` is the phase at ``y[i]``, ``x[j]``; metric arrays have the same shape.
    """

    x_name: str  # "alpha", "rho" or "tau"
    y_name: str
    x: np.ndarray  # (nx,) sorted grid values
    y: np.ndarray  # (ny,)
    labels: np.ndarray  # (ny, nx) object array of phase labels ("" = unknown / no runs)
    metrics: Mapping[str, np.ndarray]  # seed-mean metrics per cell, each (ny, nx)
    n_seeds: np.ndarray  # (ny, nx) seeds per cell
    experiment: str | None
    d: int | None
    c: int
    cutoffs: Mapping[str, float | None]  # cutoff, weak_cutoff, match_cutoff, mse_cutoff
    theory_lines: tuple[TheoryLine, ...] = field(default=())
    contours: TheoryContours | None = None  # predicted held-out accuracy (logistic-pinv)

    def counts(self) -> dict[str, int]:
        """Number of cells in each phase (phases with no cell omitted)."""
        values, counts = np.unique(self.labels[self.labels != UNKNOWN], return_counts=True)
        return {str(v): int(n) for v, n in zip(values, counts, strict=True)}

    def label_at(self, x: float, y: float) -> str:
        """Phase of the grid cell nearest to (x, y)."""
        j = int(np.argmin(np.abs(self.x - x)))
        i = int(np.argmin(np.abs(self.y - y)))
        return str(self.labels[i, j])

    def to_frame(self) -> pd.DataFrame:
        """Long table: one row per cell with x, y, phase, n_seeds and the metrics."""
        yy, xx = np.meshgrid(self.y, self.x, indexing="ij")
        data = {self.x_name: xx.ravel(), self.y_name: yy.ravel(), "phase": self.labels.ravel()}
        data["n_seeds"] = self.n_seeds.ravel()
        for name, values in self.metrics.items():
            data[name] = values.ravel()
        return pd.DataFrame(data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: axes, label grid, per-phase counts, cut-offs and theory lines."""
        return jsonable(
            {
                "x_name": self.x_name,
                "y_name": self.y_name,
                "x": self.x,
                "y": self.y,
                "labels": self.labels.tolist(),
                "counts": self.counts(),
                "experiment": self.experiment,
                "d": self.d,
                "c": self.c,
                "cutoffs": dict(self.cutoffs),
                "theory_lines": [
                    {"name": t.name, "x": t.x, "y": t.y, "label": t.label}
                    for t in self.theory_lines
                ],
                "contours": None if self.contours is None else self.contours.to_dict(),
            }
        )

    def plot(
        self, ax: Any = None, hatch: bool = False, theory: bool = True, legend: bool = True
    ) -> Any:
        """Draw the diagram (categorical colours, legend, theory lines on top). Returns the axes.

        Args:
            ax: axes to draw on (a new figure when None).
            hatch: hatch the two teacher-fails phases (helps greyscale prints).
            theory: draw the theory lines.
            legend: draw a legend (outside the axes, on the right).
        """
        from matplotlib.colors import BoundaryNorm, ListedColormap
        from matplotlib.patches import Patch

        from softleak.compare.style import PHASE_COLORS, PHASE_HATCHES, axes_or_new

        ax = axes_or_new(ax, figsize=(6.4, 3.8))
        codes = np.full(self.labels.shape, np.nan)
        for k, phase in enumerate(PHASES):
            codes[self.labels == phase] = k
        cmap = ListedColormap([PHASE_COLORS[p] for p in PHASES]).with_extremes(bad="white")
        norm = BoundaryNorm(np.arange(len(PHASES) + 1) - 0.5, cmap.N)
        xe = _edges(self.x, log=self.x_name == "tau")
        ye = _edges(self.y, log=self.y_name == "tau")
        ax.pcolormesh(xe, ye, np.ma.masked_invalid(codes), cmap=cmap, norm=norm, shading="flat")
        if hatch:
            for phase, pattern in PHASE_HATCHES.items():
                mask = self.labels == phase
                if mask.any():
                    ax.pcolor(
                        xe,
                        ye,
                        np.ma.masked_where(~mask, np.ones(mask.shape)),
                        hatch=pattern,
                        facecolor="none",
                        edgecolor="black",
                        linewidth=0.0,
                        alpha=0.35,
                    )
        if self.x_name == "tau":
            ax.set_xscale("log")
        if self.y_name == "tau":
            ax.set_yscale("log")
        handles: list[Any] = []
        present_phases = [p for p in PHASES if (self.labels == p).any()]
        for p in present_phases:
            handles.append(
                Patch(
                    facecolor=PHASE_COLORS[p],
                    edgecolor="0.3",
                    hatch=PHASE_HATCHES.get(p) if hatch else None,
                    label=p,
                )
            )
        if theory:
            for line in self.theory_lines:
                (artist,) = ax.plot(
                    line.x, line.y, color="black", ls=line.linestyle, lw=1.6, label=line.label
                )
                handles.append(artist)
            if self.contours is not None:
                handles.append(self.contours.plot(ax))
        ax.set_xlim(xe[0], xe[-1])
        ax.set_ylim(ye[0], ye[-1])
        ax.set_xlabel(_axis_label(self.x_name, self.experiment))
        ax.set_ylabel(_axis_label(self.y_name, self.experiment))
        title = []
        if self.d is not None:
            title.append(f"d = {self.d}")
        title.append(f"c = {self.c}")
        ax.set_title(", ".join(title), fontsize="medium")
        if legend and handles:
            ax.legend(
                handles=handles,
                loc="upper left",
                bbox_to_anchor=(1.02, 1.0),
                fontsize="small",
                frameon=False,
            )
        return ax

    def plot_metric(
        self,
        metric: str,
        ax: Any = None,
        *,
        cmap: str = "viridis",
        vmin: float | None = 0.0,
        vmax: float | None = 1.0,
        colorbar: bool = True,
        label: str | None = None,
        theory: bool = False,
    ) -> Any:
        """Heatmap of one cell metric (a seed mean, e.g. ``student_test_acc``) over the grid.

        The cells are those of :meth:`plot` (log-spaced edges on a ``tau`` axis); cells without
        runs stay white. ``colorbar`` adds one labelled ``label`` (default: the metric name);
        ``theory`` draws the theory lines in black. Returns the axes; the heatmap is the last
        ``QuadMesh`` in ``ax.collections``.
        """
        from softleak.compare.style import axes_or_new

        if metric not in self.metrics:
            raise ValueError(f"no metric {metric!r} in this diagram; have {sorted(self.metrics)}")
        ax = axes_or_new(ax, figsize=(5.0, 3.8))
        xe = _edges(self.x, log=self.x_name == "tau")
        ye = _edges(self.y, log=self.y_name == "tau")
        mesh = ax.pcolormesh(
            xe,
            ye,
            np.ma.masked_invalid(np.asarray(self.metrics[metric], dtype=float)),
            cmap=cmap,
            vmin=vmin,
            vmax=vmax,
            shading="flat",
        )
        if self.x_name == "tau":
            ax.set_xscale("log")
        if self.y_name == "tau":
            ax.set_yscale("log")
        if theory:
            for line in self.theory_lines:
                ax.plot(line.x, line.y, color="black", ls=line.linestyle, lw=1.4, label=line.label)
        ax.set_xlim(xe[0], xe[-1])
        ax.set_ylim(ye[0], ye[-1])
        ax.set_xlabel(_axis_label(self.x_name, self.experiment))
        ax.set_ylabel(_axis_label(self.y_name, self.experiment))
        if colorbar:
            ax.figure.colorbar(mesh, ax=ax, label=label or metric)
        return ax


def _axis_label(name: str, experiment: str | None) -> str:
    if name == "alpha":
        return alpha_label(experiment)
    return {"rho": r"student fraction $\rho$", "tau": r"temperature $\tau$"}.get(name, name)


def _edges(values: np.ndarray, log: bool = False) -> np.ndarray:
    """Cell edges around grid values: midpoints (geometric on a log axis), half-steps at ends."""
    v = np.asarray(values, dtype=float)
    if log and np.all(v > 0):
        return np.exp(_edges(np.log(v)))
    if v.size == 1:
        half = 0.5 * abs(v[0]) if v[0] != 0 else 0.5
        return np.array([v[0] - half, v[0] + half])
    mid = 0.5 * (v[1:] + v[:-1])
    return np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])


_METRICS = (
    "teacher_train_acc",
    "student_train_acc",
    "student_test_acc",
    "match_teacher_train_acc",
    "match_teacher_test_acc",
    "train_mse",
    "test_mse",
)


def phase_diagram(
    df: pd.DataFrame,
    x: str = "alpha",
    y: str = "rho",
    *,
    where: Mapping[str, Any] | None = None,
    shuffle: bool = False,
    cutoff: float = DEFAULT_CUTOFF,
    weak_cutoff: float | None = None,
    match_cutoff: float = MATCH_CUTOFF,
    mse_cutoff: float | None = None,
    match_metric: str = "match_teacher_test_acc",
    mse_metric: str = "test_mse",
    theory: bool = True,
    contours: bool = False,
) -> PhaseDiagram:
    """Classify every (x, y) cell of a sweep from its seed-mean metrics.

    Args:
        df: results table; must hold ``student_train_acc`` and ``student_test_acc``.
        x, y: the two axes, from ``alpha``, ``rho``, ``tau``.
        where: column == value filters applied first (e.g. ``{"tau": 10.0}``). Every other
            condition column must then hold one value, else ``ValueError`` says which to select.
        shuffle: use the shuffled-control runs instead of the normal ones.
        cutoff, weak_cutoff, match_cutoff, mse_cutoff: see :func:`classify`.
        match_metric, mse_metric: columns for the student-matches-teacher decision.
        theory: attach theory lines (alpha_id, alpha_label_T) for linear experiments.
        contours: for logistic-pinv over (alpha, rho), attach the predicted held-out accuracy
            (drawn by ``plot`` with ``theory``).

    Returns:
        A :class:`PhaseDiagram`.
    """
    df = _diagram_runs(df, x, y, where, shuffle)
    need = [match_metric] if mse_cutoff is None else [mse_metric]
    metrics = [m for m in dict.fromkeys((*_METRICS, *need)) if m in df.columns]
    xs, ys, grids, n_seeds = _cell_grids(df, x, y, metrics)
    c = int(single_value(df, "c"))
    d_val = single_value(df, "d")
    experiment = single_value(df, "experiment")
    if not set(need) <= set(metrics):
        log.warning("no %s column: teacher-fails cells stay unclassified", need[0])
    labels = classify(
        grids["student_train_acc"],
        grids["student_test_acc"],
        grids.get("teacher_train_acc"),
        match=grids.get(match_metric),
        mse=grids.get(mse_metric),
        c=c,
        cutoff=cutoff,
        weak_cutoff=weak_cutoff,
        match_cutoff=match_cutoff,
        mse_cutoff=mse_cutoff,
    )
    lines: tuple[TheoryLine, ...] = ()
    if theory and experiment is not None:
        rho = single_value(df, "rho") if "rho" not in (x, y) else None
        lines = _theory_lines(x, y, xs, ys, str(experiment), c, d_val, rho)
    return PhaseDiagram(
        x_name=x,
        y_name=y,
        x=xs,
        y=ys,
        labels=labels,
        metrics=grids,
        n_seeds=n_seeds,
        experiment=None if experiment is None else str(experiment),
        d=None if d_val is None else int(d_val),
        c=c,
        cutoffs={
            "cutoff": cutoff,
            "weak_cutoff": default_weak_cutoff(c) if weak_cutoff is None else weak_cutoff,
            "match_cutoff": match_cutoff if mse_cutoff is None else None,
            "mse_cutoff": mse_cutoff,
        },
        theory_lines=lines,
        contours=_contours(df, x, y, xs, ys) if contours else None,
    )


def _contours(df: pd.DataFrame, x: str, y: str, xs: np.ndarray, ys: np.ndarray):
    """The predicted accuracy contours over the diagram, or None (with a warning) where the
    theory has none: it covers logistic-pinv over (alpha, rho)."""
    found = theory_contours(df, x, y, _edges(xs), _edges(ys))
    if found is None:
        log.warning("no predicted contours: they are for logistic-pinv over (alpha, rho)")
    return found


def _diagram_runs(
    df: pd.DataFrame, x: str, y: str, where: Mapping[str, Any] | None, shuffle: bool
) -> pd.DataFrame:
    """The runs a diagram is drawn from; ``ValueError`` when they do not make one (bad axes, no
    runs, several values of another condition, an empty axis)."""
    axes = ("alpha", "rho", "tau")
    if x not in axes or y not in axes or x == y:
        raise ValueError(f"x and y must be two different axes among {axes}, got {x!r}, {y!r}")
    df = normalize(df, required=("student_train_acc", "student_test_acc"))
    df = select(df, where)
    df = df[df["shuffle"] == shuffle]
    if df.empty:
        raise ValueError(f"no {'shuffled' if shuffle else 'unshuffled'} runs in the table")
    if "ablation" in df.columns and df["ablation"].nunique() > 1 and "none" in set(df["ablation"]):
        if not where or "ablation" not in where:
            df = df[df["ablation"] == "none"]
    for col in present(df, CONDITION_COLUMNS):
        if col not in (x, y):
            single_value(df, col)  # raises when several values remain
    for col in (x, y):
        if df[col].isna().all():
            raise ValueError(f"column {col!r} has no values in this table")
    return df


def _cell_grids(
    df: pd.DataFrame, x: str, y: str, metrics: list[str]
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Sorted axis values ``xs``, ``ys``, the seed-mean grid (ny, nx) of each metric (each seed
    counted once: ``compare.table.seed_means`` then ``seed_stats``, NaN left out of each mean)
    and the seeds with a row in each cell (0 where the cell has no run). Rows without an x or a
    y are not on the grid."""
    keys = [y, x]
    rows = df.dropna(subset=keys)
    cells = seed_stats(seed_means(rows, keys, metrics), keys)
    xs = np.sort(df[x].dropna().unique().astype(float))
    ys = np.sort(df[y].dropna().unique().astype(float))
    cells = cells.reindex(pd.MultiIndex.from_product([ys, xs], names=keys))
    shape = (len(ys), len(xs))
    grids = {m: cells[m].to_numpy(dtype=float).reshape(shape) for m in metrics}
    n_seeds = cells["n_seeds"].fillna(0).to_numpy(dtype=int).reshape(shape)
    return xs, ys, grids, n_seeds


def _theory_lines(
    x: str,
    y: str,
    xs: np.ndarray,
    ys: np.ndarray,
    experiment: str,
    c: int,
    d: int | None,
    rho: float | None,
) -> tuple[TheoryLine, ...]:
    """alpha_id(rho) and alpha_label_T lines in (x, y) coordinates, for linear experiments."""
    from softleak.compare.thresholds import predict_alpha_id, predict_alpha_label_T

    if "alpha" not in (x, y):
        return ()
    other, other_vals = (y, ys) if x == "alpha" else (x, xs)
    lo, hi = float(np.min(other_vals)), float(np.max(other_vals))
    pad = 0.5 * (hi - lo) / max(len(other_vals) - 1, 1)
    span = np.array([lo / 1.5, hi * 1.5]) if other == "tau" else np.array([lo - pad, hi + pad])
    lines: list[TheoryLine] = []
    if other == "rho":
        grid = np.linspace(max(lo - pad, 1e-3), min(hi + pad, 1 - 1e-3), 200)
        preds = [predict_alpha_id(float(r), c, experiment) for r in grid]
        if all(p is not None for p in preds):
            alpha = np.array([p.value for p in preds if p is not None])
            lines.append(_line("alpha_id", x, alpha, grid, _id_label(experiment)))
    elif rho is not None and not math.isnan(float(rho)):
        p = predict_alpha_id(float(rho), c, experiment)
        if p is not None:
            lines.append(_line("alpha_id", x, np.full(2, p.value), span, _id_label(experiment)))
    p_t = predict_alpha_label_T(c, d, experiment)
    if p_t is not None and math.isfinite(p_t.value):
        label = r"$\alpha^T_{\rm label}$ (" + p_t.provenance + ")"
        lines.append(_line("alpha_label_T", x, np.full(2, p_t.value), span, label, ":"))
    return tuple(lines)


def _id_label(experiment: str) -> str:
    return (
        r"$\alpha_{\rm id} = 1/\rho$"
        if is_single_logit(experiment)
        else (r"$\alpha_{\rm id} = 1/(\rho c)$")
    )


def _line(
    name: str, x: str, alpha: np.ndarray, other: np.ndarray, label: str, ls: str = "--"
) -> TheoryLine:
    if x == "alpha":
        xs, ys = alpha, other
    else:
        xs, ys = other, alpha
    return TheoryLine(
        name, tuple(float(v) for v in xs), tuple(float(v) for v in ys), label, linestyle=ls
    )
