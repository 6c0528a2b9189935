"""Learning curves: accuracy and cross-entropy against student training time (Figs. 7C, 16, 17).

A sweep recorded with ``curve_every > 0`` holds ``curves.parquet`` in long form (``run_id, epoch,
metric, value``); every results row carries the ``run_id`` of its curves. ``learning_curves`` joins
the two, averages runs per group (e.g. per n and shuffle) and returns a :class:`LearningCurves`
whose ``jumps`` locate the sudden rise of an accuracy: the epochs where the group's mean curve first
covers 10%, 50% and 90% of its rise from the first to the last record, and the width between
10% and 90% (a sharp jump has a width small against its onset).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from softleak.compare.crossings import crossings
from softleak.compare.table import jsonable, select

#: Curve metrics the engine records, with plot labels.
CURVE_LABELS: dict[str, str] = {
    "student_train_acc": r"${\rm acc}^S_{\rm train}$",
    "student_test_acc": r"${\rm acc}^S_{\rm test}$",
    "train_ce": r"CE on $\mathcal{D}^S_{\rm train}$",
    "test_ce": r"CE on $\mathcal{D}^S_{\rm test}$",
    "match_teacher_test_acc": "match teacher (test)",
}


def read_curves(directory: str | Path) -> pd.DataFrame:
    """The curves of a sweep directory (empty frame when none were recorded)."""
    from softleak.simulate.store import read_parquet_checked

    path = Path(directory) / "curves.parquet"
    if not path.exists():
        return pd.DataFrame(columns=["run_id", "epoch", "metric", "value"])
    return read_parquet_checked(path)[0]  # never through a link


@dataclass(frozen=True, eq=False)
class LearningCurves:
    """Mean learning curves per group, the single runs, and where each mean curve jumps."""

    by: tuple[str, ...]  # grouping columns (from the results table), e.g. ("n", "shuffle")
    frame: pd.DataFrame  # *by, epoch, metric, mean, sem, n_runs
    runs: pd.DataFrame  # *by, run_id, epoch, metric, value
    final: pd.DataFrame  # *by, teacher_train_acc, student_val_acc: end-of-training means

    def groups(self) -> list[tuple]:
        return [tuple(g) for g in self.frame[list(self.by)].drop_duplicates().itertuples(False)]

    def mean(self, group: Sequence, metric: str) -> pd.DataFrame:
        """Rows (epoch, mean, sem, n_runs) of one group's metric, by epoch."""
        mask = self.frame["metric"] == metric
        for col, value in zip(self.by, group, strict=True):
            mask &= self.frame[col] == value
        return self.frame[mask].sort_values("epoch")[["epoch", "mean", "sem", "n_runs"]]

    def jumps(self, metric: str = "student_test_acc") -> pd.DataFrame:
        """Per group: start/end values of the mean curve and the epochs where it first covers 10%,
        50% and 90% of its rise (NaN when it does not rise by at least 0.1)."""
        records = []
        for group in self.groups():
            m = self.mean(group, metric)
            if m.empty:
                continue
            epochs, values = m["epoch"].to_numpy(), m["mean"].to_numpy(dtype=float)
            start, end = values[0], values[-1]
            rec = dict(zip(self.by, group, strict=True))
            rec.update(metric=metric, start=start, end=end, peak=np.nanmax(values))
            rise = end - start
            for q in (0.1, 0.5, 0.9):
                rec[f"epoch_{int(q * 100)}"] = (
                    first_crossing(epochs, values, start + q * rise) if rise >= 0.1 else np.nan
                )
            rec["width"] = rec["epoch_90"] - rec["epoch_10"]
            records.append(rec)
        return pd.DataFrame(records)

    def to_dict(self) -> dict[str, Any]:
        return {"by": list(self.by), "jumps": jsonable(self.jumps().to_dict("records"))}

    def plot(
        self,
        ax: Any = None,
        *,
        group: Sequence,
        metrics: Sequence[str] = ("student_train_acc", "student_test_acc"),
        colors: Mapping[str, str] | None = None,
        label: str = "",
        runs: bool = True,
        linestyle: str = "-",
        log_x: bool = True,
    ) -> Any:
        """Draw one group's mean curves (thick) with its single runs (thin) on ``ax``."""
        from softleak.compare.style import METRIC_COLORS, axes_or_new

        ax = axes_or_new(ax)
        colors = dict(METRIC_COLORS) | dict(colors or {})
        for metric in metrics:
            color = colors.get(metric, "black")
            if runs:
                one = self.runs[self.runs["metric"] == metric]
                for col, value in zip(self.by, group, strict=True):
                    one = one[one[col] == value]
                for _, run in one.groupby("run_id"):
                    run = run.sort_values("epoch")
                    ax.plot(_x(run["epoch"], log_x), run["value"], color=color, lw=0.5, alpha=0.35)
            m = self.mean(group, metric)
            x = _x(m["epoch"], log_x)
            ax.plot(
                x,
                m["mean"],
                color=color,
                lw=2,
                ls=linestyle,
                label=f"{label}{CURVE_LABELS.get(metric, metric)}",
            )
            if m["sem"].notna().any():
                ax.fill_between(
                    x, m["mean"] - m["sem"], m["mean"] + m["sem"], color=color, alpha=0.15, lw=0
                )
        if log_x:
            ax.set_xscale("log")
            ax.set_xlabel("student epoch $t$ + 1")
        else:
            ax.set_xlabel("student epoch $t$")
        return ax


def _x(epochs: pd.Series, log_x: bool) -> np.ndarray:
    return epochs.to_numpy(dtype=float) + (1.0 if log_x else 0.0)


def first_crossing(x: np.ndarray, y: np.ndarray, level: float) -> float:
    """The first x where the piecewise-linear curve (x, y) reaches ``level`` from below (linear
    interpolation inside the segment); NaN when it never does.

    ``compare.crossings.crossings`` upward with ``which="reach"`` (the first point at or above
    ``level``, x[0] when the curve starts there), exact comparison (``tol=0``), NaN when censored.
    """
    return float(crossings(x, y, level, "up", which="reach", tol=0.0, censored="nan"))


def learning_curves(
    results: pd.DataFrame,
    curves: pd.DataFrame,
    *,
    by: Sequence[str] = ("n",),
    where: Mapping[str, Any] | None = None,
    metrics: Sequence[str] | None = None,
) -> LearningCurves:
    """Join a sweep's results (with ``run_id``) and curves; average runs per ``by`` group.

    Args:
        results: the results table; ``where`` (column == value) selects the runs.
        curves: the long curves table (``read_curves``).
        by: results columns that define a group (each other selected run is a replicate).
        metrics: curve metrics to keep (default: all recorded).
    """
    if "run_id" not in results.columns:
        raise ValueError("the results table has no run_id column (recorded by softleak >= 0.2)")
    rows = select(results, where)
    if rows.empty:
        raise ValueError(f"no runs match {dict(where or {})}")
    by = tuple(by)
    keep = curves[curves["run_id"].isin(set(rows["run_id"]))]
    if metrics is not None:
        keep = keep[keep["metric"].isin(list(metrics))]
    if keep.empty:
        raise ValueError("no learning curves recorded for these runs (run with curve_every > 0)")
    runs = keep.merge(rows[[*by, "run_id"]], on="run_id")
    grouped = runs.groupby([*by, "epoch", "metric"])["value"]
    frame = pd.DataFrame(
        {"mean": grouped.mean(), "sd": grouped.std(ddof=1), "n_runs": grouped.size()}
    ).reset_index()
    frame["sem"] = frame["sd"] / np.sqrt(frame["n_runs"])
    final_cols = [c for c in ("teacher_train_acc", "student_val_acc") if c in rows.columns]
    final = rows.groupby(list(by))[final_cols].mean().reset_index()
    return LearningCurves(
        by=by,
        frame=frame.drop(columns="sd"),
        runs=runs[[*by, "run_id", "epoch", "metric", "value"]],
        final=final,
    )
