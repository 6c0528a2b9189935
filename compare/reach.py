"""Censored crossings of seed-mean curves and how far apart they lie across conditions.

A *reach entry* (:func:`first_reach`) says where a curve first crosses a level, or, when it does
not cross on the grid, which grid end the crossing lies beyond::

    {"value": float | None, "censored": None | "below" | "above", "bound": float | None, "note": str}

The collapse claims of the width and class figures (Figs. 19-22) compare such crossings across
conditions (widths, class counts): :func:`bounded_ratio` bounds their max/min from below when some
are censored, :func:`grid_ratio` is the tolerance one grid step allows on a log axis, and
:func:`log_slope` the exponent of a power law through them. ``compare.claims.judge_spread`` judges
a spread with these. Imports numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from softleak.compare.crossings import Direction, threshold_crossing
from softleak.compare.phases import DEFAULT_CUTOFF

#: "reaches": a student's held-out accuracy at or above this counts as identification (the
#: package's fit cut-off, docs/reference.md).
LEVEL = DEFAULT_CUTOFF


def first_reach(x, y, level: float = LEVEL, direction: Direction = "up") -> dict:
    """Where a curve first reaches ``level`` under the package's threshold rule
    (``compare.crossings.threshold_crossing``: the first crossing in ``direction``, linear
    interpolation between grid points, NaN points left out), as a JSON-friendly entry.

    Returns ``{"value", "censored", "bound", "note"}``: ``value`` the crossing (None when censored);
    ``censored`` None, "below" (already past ``level`` at the first grid point: the crossing is
    <= ``bound`` = x[0]) or "above" (never crossed: > ``bound`` = x[-1]); ``direction`` "up" for a
    rise to >= level, "down" for a fall below it. Unsorted x is sorted; non-finite points are
    dropped.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    order = np.argsort(x)
    x, y = x[order], y[order]
    if x.size == 0:
        return {"value": None, "censored": None, "bound": None, "note": "no points"}
    found = threshold_crossing(x, y, level, direction)
    side = ">=" if direction == "up" else "<"
    if found.censored is None:
        return {"value": found.value, "censored": None, "bound": None, "note": ""}
    if found.censored == "above":
        return {
            "value": None,
            "censored": "above",
            "bound": found.bound,
            "note": f"never {side} {level:g} on the grid: > {x[-1]:.4g}",
        }
    # -inf, or NaN (starts past the level and only crosses back): reached at the first point.
    return {
        "value": None,
        "censored": "below",
        "bound": found.bound,
        "note": f"already {side} {level:g} at the first grid point: <= {x[0]:.4g}",
    }


def grid_ratio(grid: Iterable, at: float) -> float:
    """The ratio x_{i+1} / x_i of the grid interval holding ``at`` (the end interval when it lies
    outside): one grid step on a log axis (``compare.crossings.grid_step`` is its linear
    counterpart). None entries and non-positive values are dropped; NaN with fewer than 2 points."""
    x = np.unique(np.asarray([v for v in grid if v is not None], dtype=float))
    x = x[np.isfinite(x) & (x > 0)]
    if x.size < 2:
        return math.nan
    i = int(np.clip(np.searchsorted(x, at), 1, x.size - 1))
    return float(x[i] / x[i - 1])


def log_slope(x, y) -> float:
    """Least-squares slope of log y against log x (NaN with fewer than 2 distinct x)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if np.unique(x).size < 2:
        return math.nan
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def bounded_ratio(reaches: Mapping[str, dict]) -> float:
    """max/min of crossings, censored ones entering as the grid end they lie beyond: a crossing
    never reached (``censored`` "above") is at least its bound, one already past at the first
    point ("below") at most its bound. So the result is a lower bound on the true max/min (the
    exact max/min when nothing is censored), never below 1; NaN with fewer than 2 crossings
    or bounds. ``reaches``: label -> :func:`first_reach` entry."""
    at_least = [
        r["value"] if r["value"] is not None else r["bound"]
        for r in reaches.values()
        if r["value"] is not None or r["censored"] == "above"
    ]
    at_most = [
        r["value"] if r["value"] is not None else r["bound"]
        for r in reaches.values()
        if r["value"] is not None or r["censored"] == "below"
    ]
    known = [r for r in reaches.values() if r["value"] is not None or r["bound"] is not None]
    if len(known) < 2 or not at_least or not at_most:
        return math.nan
    return max(1.0, max(at_least) / min(at_most))
