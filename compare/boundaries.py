"""Decision maps of the 2D examples (paper Fig. 1, c = 3; Fig. 8, c = 20): load and draw.

Kept as one module (~520 lines, over the house's ~500): it is one concern (one toy2d run directory,
loaded and drawn), the figures share the grid, colour and marker helpers with the loader, and most
of the length is one plain drawing call per panel.

A ``simulate toy2d`` run directory holds ``results.parquet`` (one row per student, ``student_kind``
"soft" or "hard", ``seed`` = data set), ``points.parquet`` (``seed, x0, x1, y, split``) and
``grid.parquet`` (``seed, model, student_seed, ix, iy, pred``: the predicted class on a regular grid
of cell centres over [-1, 1]^2 for every teacher -- ``student_seed`` -1 -- and student).
:func:`decision_maps` reads the three into a frozen :class:`DecisionMaps` (label maps as arrays,
held-out accuracy per kind as mean and SEM over data sets); ``.plot`` draws the paper's four panels
for one data set and ``.plot_accuracy`` the per-data-set accuracies. Plotting never recomputes.

Torch-free: the grid coordinates are rebuilt here (:func:`grid_axis`, the same cell centres as
``simulate.toy2d.grid_axis``; a test keeps the two equal).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from softleak.compare.table import require_columns

#: Student kinds of the 2D examples: the soft-label student and the independent hard-label baseline.
KINDS: tuple[str, ...] = ("soft", "hard")

#: Colours of test points the student classifies correctly / wrongly (Okabe-Ito green, vermillion).
CORRECT_COLOR = "#009E73"
WRONG_COLOR = "#D55E00"

#: Colour of the soft-label student's boundaries in panel D (the teacher's are black).
STUDENT_BOUNDARY_COLOR = "#0072B2"

#: Up to this many classes each class gets a qualitative colour; above, a spectrum colormap.
QUALITATIVE_MAX = 10

#: Class colours up to QUALITATIVE_MAX classes (Okabe-Ito / Tol, no pure red or green: those mark
#: wrong / correct test points).
_QUALITATIVE = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#DDCC77",  # sand
    "#332288",  # indigo
    "#999933",  # olive
    "#882255",  # wine
    "#7F7F7F",  # grey
    "#44AA99",  # teal
)


class Accuracy(NamedTuple):
    """Mean and standard error over data sets (each data set first averaged over student seeds)."""

    mean: float
    sem: float  # NaN with one data set
    n: int  # data sets


def grid_axis(resolution: int) -> np.ndarray:
    """The decision-map grid's coordinates along one axis: ``resolution`` cell centres over
    [-1, 1] (the same values as ``simulate.toy2d.grid_axis``)."""
    edges = np.linspace(-1, 1, resolution + 1)
    return (edges[:-1] + edges[1:]) / 2


def class_colors(c: int) -> list[tuple[float, float, float, float]]:
    """One RGBA colour per class: colour-blind-safe qualitative hues up to
    :data:`QUALITATIVE_MAX` classes, a spectrum (``turbo``) beyond, as in the paper's Fig. 8."""
    from matplotlib import colormaps
    from matplotlib.colors import to_rgba

    if c <= QUALITATIVE_MAX:
        return [to_rgba(h) for h in _QUALITATIVE[:c]]
    return [tuple(v) for v in colormaps["turbo"](np.linspace(0.05, 0.95, c))]


def summarize(results: pd.DataFrame, metric: str = "student_test_acc") -> dict[str, Accuracy]:
    """``metric`` per student kind: mean and SEM over data sets of the per-data-set means."""
    require_columns(results, ("seed", "student_kind", metric), "toy2d results table")
    out = {}
    for kind in KINDS:
        rows = results[results["student_kind"] == kind]
        if rows.empty:
            continue
        out[kind] = _mean_sem(rows.groupby("seed")[metric].mean().to_numpy(dtype=float))
    return out


def _mean_sem(values: np.ndarray) -> Accuracy:
    n = len(values)
    sem = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return Accuracy(float(values.mean()), sem, n)


@dataclass(frozen=True, eq=False)
class DecisionMaps:
    """A loaded toy2d run: points, label maps, accuracies. Arrays are indexed ``[ix, iy]`` (x
    first), with coordinates ``axis[ix], axis[iy]``.

    Attributes:
        c: number of classes.
        tau: soft-label temperature of the soft students (NaN if unknown).
        axis: (g,) grid coordinates (cell centres over [-1, 1]).
        seeds: the data-set indices, in the order of the arrays' first axis.
        points: ``seed, x0, x1, y, split`` ("train" = D_train^S, "test" = D_test^S).
        teacher: (S, g, g) teacher label maps.
        students: kind -> (S, K, g, g) label maps of student seeds 0..K-1.
        results: the per-student results table.
        test_acc: kind -> held-out accuracy on D_test^S (mean, SEM over data sets).
        train_acc: kind -> accuracy on D_train^S.
        val_acc: kind -> accuracy on fresh random-label points (chance level).
        teacher_train_acc: the teachers' accuracy on their 60 points (mean, SEM over data sets).
        per_dataset: ``seed, kind, student_test_acc, student_train_acc, student_val_acc`` (mean
            over student seeds) -- what :meth:`plot_accuracy` draws.
    """

    c: int
    tau: float
    axis: np.ndarray
    seeds: tuple[int, ...]
    points: pd.DataFrame
    teacher: np.ndarray
    students: dict[str, np.ndarray]
    results: pd.DataFrame
    test_acc: dict[str, Accuracy]
    train_acc: dict[str, Accuracy]
    val_acc: dict[str, Accuracy]
    teacher_train_acc: Accuracy
    per_dataset: pd.DataFrame

    @property
    def chance(self) -> float:
        return 1.0 / self.c

    def map(self, model: str, seed: int = 0, student_seed: int = 0) -> np.ndarray:
        """(g, g) predicted classes of ``model`` ("teacher", "soft", "hard") on data set ``seed``."""
        i = self._position(seed)
        if model == "teacher":
            return self.teacher[i]
        if model not in self.students:
            raise ValueError(f"no {model!r} maps (have teacher, {', '.join(self.students)})")
        maps = self.students[model]
        if not 0 <= student_seed < maps.shape[1]:
            raise ValueError(f"student_seed {student_seed} not in [0, {maps.shape[1]})")
        return maps[i, student_seed]

    def _position(self, seed: int) -> int:
        if seed not in self.seeds:
            raise ValueError(f"data set {seed} not in this run (have {list(self.seeds)})")
        return self.seeds.index(seed)

    def correct(self, kind: str, seed: int = 0, student_seed: int = 0) -> pd.DataFrame:
        """D_test^S points of data set ``seed`` with ``pred`` (the grid cell's class under the
        student) and ``correct``. Grid cells approximate the model at the point: the exact
        accuracies are in ``results``."""
        pts = self.points[(self.points["seed"] == seed) & (self.points["split"] == "test")]
        label_map = self.map(kind, seed, student_seed)
        pred = label_map[_cell(pts["x0"], len(self.axis)), _cell(pts["x1"], len(self.axis))]
        return pts.assign(pred=pred, correct=pred == pts["y"].to_numpy())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready accuracies."""

        def acc(a: Accuracy) -> dict:
            return {"mean": _num(a.mean), "sem": _num(a.sem), "n": a.n}

        return {
            "c": self.c,
            "tau": _num(self.tau),
            "n_datasets": len(self.seeds),
            "chance": self.chance,
            "teacher_train_acc": acc(self.teacher_train_acc),
            "test_acc": {k: acc(v) for k, v in self.test_acc.items()},
            "train_acc": {k: acc(v) for k, v in self.train_acc.items()},
            "val_acc": {k: acc(v) for k, v in self.val_acc.items()},
        }

    # plotting ---------------------------------------------------------------------------------
    def plot(self, seed: int = 0, axes=None, student_seed: int = 0, boundaries: bool = True):
        """The paper's four panels for data set ``seed``: (A) teacher regions and all points;
        (B) hard-label baseline and (C) soft-label student regions with D_train^S points and the
        D_test^S points marked correct (o) / wrong (x); (D) teacher (black) and soft-student
        (colour) boundaries. Titles give this data set's held-out accuracy and the mean +- SEM over
        all data sets. ``axes``: four axes (default: a new pyplot-free figure). Returns them."""
        if axes is None:
            from softleak.compare.style import new_figure

            _, axes = new_figure(ncols=4, panel=(3.7, 4.1))
        axes = list(axes)
        if len(axes) != 4:
            raise ValueError(f"plot needs 4 axes, got {len(axes)}")
        colors = class_colors(self.c)
        pts = self.points[self.points["seed"] == seed]
        ax_a, ax_b, ax_c, ax_d = axes

        self._regions(ax_a, self.map("teacher", seed), colors, boundaries)
        _scatter_labels(ax_a, pts, colors, size=36)
        t_acc = self._row_value(seed, "teacher_train_acc")
        ax_a.set_title(
            f"(A) teacher\n{_pct(t_acc)} train acc. [avg. {_pm(self.teacher_train_acc)}]",
            fontsize="small",
        )

        for ax, kind, tag, name in (
            (ax_b, "hard", "B", "hard-label baseline"),
            (ax_c, "soft", "C", f"soft-label student ($\\tau = {self.tau:g}$)"),
        ):
            if kind not in self.students:
                ax.set_axis_off()
                continue
            self._regions(ax, self.map(kind, seed, student_seed), colors, boundaries)
            _scatter_labels(ax, pts[pts["split"] == "train"], colors, size=22)
            self._test_markers(ax, kind, seed, student_seed)
            acc = self._row_value(seed, "student_test_acc", kind, student_seed)
            ax.set_title(
                f"({tag}) {name}\n{_pct(acc)} test acc. [avg. {_pm(self.test_acc[kind])}]",
                fontsize="small",
            )

        _boundary_lines(ax_d, self.axis, self.map("teacher", seed), "black", 1.6)
        if "soft" in self.students:
            soft = self.map("soft", seed, student_seed)
            _boundary_lines(ax_d, self.axis, soft, STUDENT_BOUNDARY_COLOR, 1.1)
        ax_d.plot([], [], color="black", label="teacher")
        ax_d.plot([], [], color=STUDENT_BOUNDARY_COLOR, label="soft-label student")
        ax_d.legend(
            loc="upper center",
            bbox_to_anchor=(0.5, -0.02),
            ncol=2,
            fontsize="x-small",
            frameon=False,
        )
        _square(ax_d)
        ax_d.set_title("(D) decision boundaries\nteacher vs. soft-label student", fontsize="small")
        handles = [
            _marker("o", CORRECT_COLOR, "test: correct"),
            _marker("x", WRONG_COLOR, "test: wrong"),
        ]
        for ax in (ax_b, ax_c):
            ax.legend(
                handles=handles,
                loc="upper center",
                bbox_to_anchor=(0.5, -0.02),
                ncol=2,
                fontsize="x-small",
                frameon=False,
            )
        return axes

    def plot_accuracy(self, ax=None, metric: str = "student_test_acc"):
        """Held-out accuracy per data set, hard-label baseline vs soft-label student (paired
        points joined by grey lines), mean +- SEM, chance 1/c (black dashed) and the soft
        student's accuracy on fresh random-label points (grey dotted). Returns ``ax``."""
        from softleak.compare.style import axes_or_new

        ax = axes_or_new(ax, figsize=(3.0, 3.6))
        wide = self.per_dataset.pivot(index="seed", columns="kind", values=metric)
        kinds = [k for k in ("hard", "soft") if k in wide.columns]
        x = {k: i for i, k in enumerate(kinds)}
        colors = {"hard": "#7F7F7F", "soft": STUDENT_BOUNDARY_COLOR}
        if len(kinds) == 2:
            for _, row in wide.iterrows():
                ax.plot([0, 1], [row["hard"], row["soft"]], color="0.8", lw=0.8, zorder=1)
        summary = summarize(self.results, metric)
        for k in kinds:
            jitter = np.linspace(-0.08, 0.08, len(wide)) if len(wide) > 1 else np.zeros(1)
            ax.scatter(x[k] + jitter, wide[k], s=14, color=colors[k], alpha=0.7, zorder=2)
            a = summary[k]
            ax.errorbar(
                x[k] + 0.22,
                a.mean,
                yerr=0 if math.isnan(a.sem) else a.sem,
                color="black",
                marker="D",
                ms=4,
                capsize=3,
                zorder=3,
            )
        ax.axhline(
            self.chance, color="black", ls="--", lw=1.1, label=f"chance 1/c = {self.chance:.3g}"
        )
        if "soft" in self.val_acc:
            ax.axhline(
                self.val_acc["soft"].mean,
                color="0.4",
                ls=":",
                lw=1.1,
                label="soft student, fresh points",
            )
        ax.set_xticks(
            range(len(kinds)),
            ["hard-label\nbaseline" if k == "hard" else "soft-label\nstudent" for k in kinds],
        )
        ax.set_xlim(-0.5, len(kinds) - 0.5)
        ax.set_ylim(0, 1)
        ax.set_ylabel(r"held-out accuracy ${\rm acc}^S_{\rm test}$")
        ax.set_title(f"per data set ({len(self.seeds)}), mean $\\pm$ SEM", fontsize="small")
        ax.legend(fontsize="x-small", frameon=False, loc="upper left")
        return ax

    # helpers ----------------------------------------------------------------------------------
    def _regions(self, ax, label_map: np.ndarray, colors, boundaries: bool) -> None:
        from matplotlib.colors import ListedColormap

        ax.imshow(
            label_map.T,
            origin="lower",
            extent=(-1, 1, -1, 1),
            cmap=ListedColormap(colors),
            vmin=-0.5,
            vmax=self.c - 0.5,
            interpolation="nearest",
            alpha=0.3,
        )
        if boundaries:
            _boundary_lines(ax, self.axis, label_map, "0.35", 0.5)
        _square(ax)

    def _test_markers(self, ax, kind: str, seed: int, student_seed: int) -> None:
        pts = self.correct(kind, seed, student_seed)
        ok, bad = pts[pts["correct"]], pts[~pts["correct"]]
        ax.scatter(
            ok["x0"],
            ok["x1"],
            s=70,
            marker="o",
            facecolors="none",
            edgecolors=CORRECT_COLOR,
            linewidths=1.6,
            zorder=4,
            path_effects=_halo(),
        )
        ax.scatter(
            bad["x0"],
            bad["x1"],
            s=45,
            marker="x",
            color=WRONG_COLOR,
            linewidths=1.8,
            zorder=4,
            path_effects=_halo(),
        )

    def _row_value(self, seed: int, column: str, kind: str | None = None, student_seed: int = 0):
        rows = self.results[self.results["seed"] == seed]
        if kind is not None:
            rows = rows[(rows["student_kind"] == kind) & (rows["student_seed"] == student_seed)]
        return float(rows[column].iloc[0]) if len(rows) else float("nan")


def decision_maps(path: str | Path) -> DecisionMaps:
    """Load a toy2d run directory (``results.parquet``, ``points.parquet``, ``grid.parquet``).

    Raises:
        ValueError: one line, when the directory or a file is missing or lacks columns.
    """
    from softleak.simulate.store import read_parquet_checked

    folder = Path(path)
    if not folder.is_dir():
        if folder.exists():
            raise ValueError(f"{str(folder)!r} is a file, not a toy2d run directory")
        raise ValueError(f"toy2d run directory {str(folder)!r} does not exist")
    frames = {}
    for name in ("results", "points", "grid"):
        file = folder / f"{name}.parquet"
        if not file.is_file():
            raise ValueError(f"no {file.name} in {str(folder)!r}: is it a finished toy2d run?")
        try:
            frames[name] = read_parquet_checked(file)[0]  # never through a link
        except ValueError as err:
            raise ValueError(f"cannot read {str(file)!r}: {err}") from None
    results, points, grid = frames["results"], frames["points"], frames["grid"]
    require_columns(
        results,
        (
            "c",
            "seed",
            "student_seed",
            "student_kind",
            "student_test_acc",
            "student_train_acc",
            "student_val_acc",
            "teacher_train_acc",
        ),
        f"{folder / 'results.parquet'}",
    )
    require_columns(points, ("seed", "x0", "x1", "y", "split"), f"{folder / 'points.parquet'}")
    require_columns(
        grid, ("seed", "model", "student_seed", "ix", "iy", "pred"), f"{folder / 'grid.parquet'}"
    )
    c = int(results["c"].iloc[0])
    g = int(max(grid["ix"].max(), grid["iy"].max())) + 1
    config = folder / "config.json"
    if config.is_file():
        g = int(json.loads(config.read_text()).get("spec", {}).get("grid", g))
    seeds = tuple(int(s) for s in sorted(results["seed"].unique()))
    teacher = _stack(grid[grid["model"] == "teacher"], seeds, 1, g)[:, 0]
    students = {}
    for kind in KINDS:
        rows = grid[grid["model"] == kind]
        if len(rows):
            students[kind] = _stack(rows, seeds, int(rows["student_seed"].max()) + 1, g)
    soft = results[results["student_kind"] == "soft"]
    tau = float(soft["tau"].iloc[0]) if "tau" in soft.columns and len(soft) else float("nan")
    metrics = ["student_test_acc", "student_train_acc", "student_val_acc"]
    per_dataset = (
        results.groupby(["seed", "student_kind"])[metrics]
        .mean()
        .reset_index()
        .rename(columns={"student_kind": "kind"})
    )
    teachers = results.groupby("seed")["teacher_train_acc"].first().to_numpy(dtype=float)
    return DecisionMaps(
        c=c,
        tau=tau,
        axis=grid_axis(g),
        seeds=seeds,
        points=points.reset_index(drop=True),
        teacher=teacher,
        students=students,
        results=results.reset_index(drop=True),
        test_acc=summarize(results, "student_test_acc"),
        train_acc=summarize(results, "student_train_acc"),
        val_acc=summarize(results, "student_val_acc"),
        teacher_train_acc=_mean_sem(teachers),
        per_dataset=per_dataset,
    )


def _stack(rows: pd.DataFrame, seeds: tuple[int, ...], k: int, g: int) -> np.ndarray:
    """Long-form grid rows -> (S, K, g, g) label maps (-1 where a cell is missing)."""
    out = np.full((len(seeds), k, g, g), -1, dtype=np.int16)
    pos = {s: i for i, s in enumerate(seeds)}
    rows = rows[rows["seed"].isin(pos)]
    si = rows["seed"].map(pos).to_numpy()
    ki = np.maximum(rows["student_seed"].to_numpy(dtype=int), 0)  # teacher rows carry -1
    out[si, ki, rows["ix"].to_numpy(dtype=int), rows["iy"].to_numpy(dtype=int)] = rows["pred"]
    return out


def _halo() -> list:
    from matplotlib.patheffects import Normal, Stroke

    return [Stroke(linewidth=3.2, foreground="white"), Normal()]


def _cell(x, g: int) -> np.ndarray:
    """Grid cell index of coordinates in [-1, 1] (cells of width 2/g)."""
    return np.clip(np.floor((np.asarray(x, dtype=float) + 1) / 2 * g).astype(int), 0, g - 1)


def _boundary_lines(ax, axis: np.ndarray, label_map: np.ndarray, color, lw: float) -> None:
    """Class boundaries of a label map: the 1/2 level of each class's indicator, i.e. the midlines
    between neighbouring cells of different classes (a boundary between classes a and b is drawn
    by both indicators at the same place)."""
    for k in np.unique(label_map):
        if k < 0:
            continue
        indicator = (label_map == k).astype(float)
        if indicator.min() == indicator.max():
            continue
        ax.contour(axis, axis, indicator.T, levels=[0.5], colors=[color], linewidths=lw)


def _scatter_labels(ax, pts: pd.DataFrame, colors, size: float) -> None:
    ax.scatter(
        pts["x0"],
        pts["x1"],
        s=size,
        c=[colors[int(y)] for y in pts["y"]],
        edgecolors="white",
        linewidths=0.6,
        zorder=3,
    )


def _square(ax) -> None:
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xticks([])
    ax.set_yticks([])


def _marker(marker: str, color: str, label: str):
    from matplotlib.lines import Line2D

    face = "none" if marker == "o" else color
    return Line2D(
        [],
        [],
        ls="",
        marker=marker,
        markerfacecolor=face,
        markeredgecolor=color,
        markeredgewidth=1.6,
        ms=7,
        label=label,
    )


def _pct(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{100 * value:.0f}%"


def _pm(acc: Accuracy) -> str:
    if math.isnan(acc.sem):
        return f"{100 * acc.mean:.1f}%"
    return f"{100 * acc.mean:.1f} $\\pm$ {100 * acc.sem:.1f}%"


def _num(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)
