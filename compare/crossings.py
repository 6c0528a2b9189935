"""Where a sampled curve crosses a level: the one crossing primitive of the package.

A curve is sampled as ``y`` on an increasing grid ``x``. ``direction`` says which way it crosses
``level``:

- ``"up"``: from below the level (``y < level - tol``) to at or above it (``y >= level - tol``);
- ``"down"``: from at or above the level to below it.

The side a curve crossing in ``direction`` starts from is its *before* side (below going up, at or
above going down), the other its *after* side. ``tol`` (default :data:`CUTOFF_TOL`) is the float
slack of that comparison; ``tol=0`` compares exactly.

**Which crossing** (``which``):

- ``"first"``: the first step from a grid point on the before side to the next one on the after
  side. A curve that starts on the after side, falls back and returns has its return located.
- ``"reach"``: the first grid point on the after side (reached from the point before it). The same
  step as ``"first"`` except when the curve starts on the after side: then it is reached at the
  first grid point itself, whatever follows.
- ``"last"``: the step after the last grid point on the before side (the curve stays on the after
  side from there on).

**Where** (``position``) within the located step between grid points ``x0 < x1``:

- ``"linear"``: linear interpolation of ``level`` between ``(x0, y0)`` and ``(x1, y1)`` (the
  fraction clipped to [0, 1], so a point inside the ``tol`` slack maps to ``x1``);
- ``"midpoint"``: ``(x0 + x1) / 2``;
- ``"grid"``: ``x1``, the first grid point on the after side.

A ``"reach"`` at the first grid point (no step before it) is that grid point under every position.

**Censored** (``censored="inf"``, the default): where no crossing is located the result says why:

- ``+inf``: on the before side at the largest x (the crossing lies above the grid; for
  ``"last"``: the last grid point is on the before side);
- ``-inf``: on the after side over the whole grid (the crossing lies below the grid; ``"first"``
  and ``"last"``, ``"reach"`` gives the first grid point instead);
- ``NaN``: (``"first"`` only) the curve starts on the after side and crosses only in the other
  direction.

``censored="nan"`` gives NaN for all three. A curve without points counts as on the after side
(-inf) for ``"first"`` and ``"last"`` and as never reached (+inf) for ``"reach"``.

**NaN in y** (``nan``): ``"below"`` (default): a NaN compares false with the level, so it counts as
below it (the before side going up, the after side going down), and a linear position bracketed
by a NaN is NaN. ``"skip"``: NaN points are left out of each curve; a step brackets the nearest
non-NaN neighbours.

:func:`crossings` returns positions; :func:`crossing_index` the grid index of the step's after side.

**The threshold rule** (:func:`threshold_crossing`): ``which="first"``, ``position="linear"``,
``nan="skip"``, censoring reported as a side and a bound (:class:`Crossing`). It is the one rule by
which the package measures a threshold: ``compare.thresholds.find_thresholds`` (the
``ThresholdTable`` of every summary, on seed-mean curves whose all-NaN grid points are dropped, so
skipping NaN changes nothing there), ``compare.reach.first_reach`` and every claim of a figure
recipe that names a threshold (read from the table, or this function where the curve is not one
of the table's rules). Other members of the family are named where they are used: the paper code's
rule (``compare.thresholds.reference_rule``), the first epoch a learning curve reaches a level
(``compare.curves.first_crossing``) and the first grid point past a level
(``paper_figs.mlp_measures.dip_and_jump``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

#: Float slack when comparing a seed mean with the cut-off (a mean of five 1.0 is exactly 1.0,
#: but a mean of 0.99-valued floats can land one ulp below 0.99).
CUTOFF_TOL = 1e-12

Direction = Literal["down", "up"]
Which = Literal["first", "reach", "last"]
Position = Literal["linear", "midpoint", "grid"]
NanPolicy = Literal["below", "skip"]
Censored = Literal["inf", "nan"]


def crossings(
    x: np.ndarray,
    y: np.ndarray,
    level: float,
    direction: Direction,
    *,
    which: Which = "first",
    position: Position = "linear",
    tol: float = CUTOFF_TOL,
    nan: NanPolicy = "below",
    censored: Censored = "inf",
) -> np.ndarray:
    """Crossing of ``level`` in ``direction`` for each column of ``y`` (see the module docstring).

    Args:
        x: grid, shape (A,), strictly increasing.
        y: curves, shape (A,) or (A, B).
        level: level to cross.
        direction: ``"down"`` (from >= level to < level) or ``"up"`` (from < to >=).
        which: ``"first"`` step from the before to the after side (default), the first grid point
            on the after side (``"reach"``), or the step after the ``"last"`` before-side point.
        position: ``"linear"`` interpolation (default), ``"midpoint"`` of the step, or the step's
            after-side ``"grid"`` point.
        tol: float slack: a point is at or above the level when ``y >= level - tol``.
        nan: NaN points count as below the level (``"below"``) or are left out (``"skip"``).
        censored: ``"inf"`` marks uncrossed curves with +inf / -inf / NaN; ``"nan"``: all NaN.

    Returns:
        Crossing positions, shape () or (B,). With the defaults: the first crossing by linear
        interpolation between the bracketing grid points; censored curves give ``+inf`` (still on
        the before side at the largest x, i.e. the threshold lies above the grid) or ``-inf`` (on
        the after side over the whole grid, i.e. below the grid); curves crossing only in the
        other direction give NaN.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    squeeze = y.ndim == 1
    y2 = y[:, None] if squeeze else y
    _check(direction, which, position, nan, censored)
    lo, hi, status = _locate(y2, level, direction, which, tol, nan)
    out = status
    found = status == 0
    if found.any():
        cols = np.arange(y2.shape[1])
        i0, i1 = np.where(lo >= 0, lo, 0), np.where(found, hi, 0)
        x0, x1 = x[i0], x[i1]
        if position == "linear":
            y0, y1 = y2[i0, cols], y2[i1, cols]
            with np.errstate(divide="ignore", invalid="ignore"):
                t = np.where(y1 != y0, (level - y0) / (y1 - y0), 0.5)
            val = x0 + np.clip(t, 0.0, 1.0) * (x1 - x0)
        elif position == "midpoint":
            val = 0.5 * (x0 + x1)
        else:
            val = x1
        val = np.where(lo >= 0, val, x1)  # reached at the first grid point: that point
        out = np.where(found, val, out)
    if censored == "nan":
        out = np.where(np.isfinite(out), out, np.nan)
    return out[0] if squeeze else out


def crossing_index(
    y: np.ndarray,
    level: float,
    direction: Direction,
    *,
    which: Which = "first",
    tol: float = CUTOFF_TOL,
    nan: NanPolicy = "below",
) -> np.ndarray:
    """Grid index of the located crossing's after-side point (``x1`` of the step; the first grid
    point on the after side for ``which="reach"``), for each column of ``y``; -1 where no crossing
    is located. Arguments as in :func:`crossings`; shape () or (B,), integer."""
    y = np.asarray(y, dtype=float)
    squeeze = y.ndim == 1
    y2 = y[:, None] if squeeze else y
    _check(direction, which, "grid", nan, "inf")
    _, hi, status = _locate(y2, level, direction, which, tol, nan)
    out = np.where(status == 0, hi, -1)
    return out[0] if squeeze else out


def _check(direction: str, which: str, position: str, nan: str, censored: str) -> None:
    if direction not in ("down", "up"):
        raise ValueError(f"direction must be 'down' or 'up', got {direction!r}")
    if which not in ("first", "reach", "last"):
        raise ValueError(f"which must be 'first', 'reach' or 'last', got {which!r}")
    if position not in ("linear", "midpoint", "grid"):
        raise ValueError(f"position must be 'linear', 'midpoint' or 'grid', got {position!r}")
    if nan not in ("below", "skip"):
        raise ValueError(f"nan must be 'below' or 'skip', got {nan!r}")
    if censored not in ("inf", "nan"):
        raise ValueError(f"censored must be 'inf' or 'nan', got {censored!r}")


def _locate(
    y2: np.ndarray, level: float, direction: str, which: str, tol: float, nan: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The located step of each column of ``y2`` (A, B): ``(lo, hi, status)``, each (B,).

    ``status`` 0 where a step is located: from grid index ``lo`` (-1: none, reached at the first
    point) to ``hi``; otherwise +inf, -inf or NaN as in :func:`crossings` (``lo``, ``hi`` -1).
    """
    if nan == "skip":
        n_cols = y2.shape[1]
        lo, hi = np.full(n_cols, -1), np.full(n_cols, -1)
        status = np.full(n_cols, np.nan)
        for col in range(n_cols):
            keep = np.flatnonzero(~np.isnan(y2[:, col]))
            l1, h1, s1 = _locate(y2[keep, col][:, None], level, direction, which, tol, "below")
            status[col] = s1[0]
            if s1[0] == 0:
                hi[col] = keep[h1[0]]
                lo[col] = keep[l1[0]] if l1[0] >= 0 else -1
        return lo, hi, status
    reached = y2 >= level - tol  # (A, B); NaN never reaches
    after = reached if direction == "up" else ~reached
    before = ~after
    n, n_cols = after.shape
    lo, hi = np.full(n_cols, -1), np.full(n_cols, -1)
    if which == "first":
        status = np.full(n_cols, np.nan)
        status[before.all(axis=0)] = np.inf
        status[~before.any(axis=0)] = -np.inf
        if n > 1:
            trans = before[:-1] & after[1:]  # (A-1, B)
            has = trans.any(axis=0)
            i = np.argmax(trans, axis=0)  # first crossing
            status = np.where(has, 0.0, status)
            lo, hi = np.where(has, i, -1), np.where(has, i + 1, -1)
    elif which == "reach":
        has = after.any(axis=0)
        status = np.where(has, 0.0, np.inf)
        if n > 0:
            k = np.argmax(after, axis=0)  # first point on the after side
            lo, hi = np.where(has, k - 1, -1), np.where(has, k, -1)
    else:  # last
        has_before = before.any(axis=0)
        last = n - 1 - np.argmax(before[::-1], axis=0) if n > 0 else np.full(n_cols, -1)
        status = np.where(has_before, np.where(last == n - 1, np.inf, 0.0), -np.inf)
        ok = status == 0
        lo, hi = np.where(ok, last, -1), np.where(ok, last + 1, -1)
    return lo, hi, status


def grid_step(values, at: float | None = None) -> float:
    """The spacing of a grid (sorted, duplicates dropped): at ``at``, the step of the interval
    holding it (the end interval when it lies outside); else the largest step. NaN with fewer
    than 2 values."""
    x = np.unique(np.asarray(list(values), dtype=float))
    x = x[np.isfinite(x)]
    if x.size < 2:
        return math.nan
    steps = np.diff(x)
    if at is None:
        return float(steps.max())
    i = int(np.clip(np.searchsorted(x, at) - 1, 0, steps.size - 1))
    return float(steps[i])


#: The threshold rule's keywords of :func:`crossings` (see the module docstring).
THRESHOLD_RULE: dict = {"which": "first", "position": "linear", "nan": "skip"}

Side = Literal["above", "below"]


@dataclass(frozen=True)
class Crossing:
    """Where a curve crosses a level under the threshold rule, or why it does not on the grid.

    ``censored``: None (located), ``"above"`` (never crosses on the grid: the crossing lies past
    the largest x, ``bound`` = x[-1]) or ``"below"`` (already on the after side at the first grid
    point, or crossing only in the other direction: the crossing lies at or before the smallest x,
    ``bound`` = x[0]). ``status`` is :func:`crossings`' raw value (+inf / -inf / NaN when censored)
    for callers that tell the two "below" cases apart. ``index``: the grid index of the located
    step's after-side point (0 when censored "below", -1 when censored "above" or without points).
    """

    value: float  # the located crossing; NaN when censored
    censored: Side | None
    bound: float  # the grid end a censored crossing lies beyond; NaN when located
    status: float  # crossings()' value: the crossing, or +inf / -inf / NaN
    index: int

    @property
    def bounded(self) -> float:
        """The crossing, or the grid end it lies beyond when censored (a bound on it: past the
        largest x for "above", at or before the smallest for "below"); NaN without points."""
        return self.value if self.censored is None else self.bound


def threshold_crossing(x, y, level: float, direction: Direction) -> Crossing:
    """The threshold rule on one curve: the first crossing of ``level`` in ``direction``, linearly
    interpolated, NaN points of ``y`` left out (see the module docstring).

    Args:
        x: grid, shape (A,), strictly increasing.
        y: curve, shape (A,); NaN where not measured.
        level: the cut-off.
        direction: ``"up"`` (from below to at or above ``level``) or ``"down"``.

    Returns:
        A :class:`Crossing`. Without non-NaN points: censored "above" with NaN bound.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = ~np.isnan(y)
    if not keep.any():
        return Crossing(math.nan, "above", math.nan, math.inf, -1)
    status = float(crossings(x, y, level, direction, **THRESHOLD_RULE))
    if math.isfinite(status):
        index = int(crossing_index(y, level, direction, nan="skip"))
        return Crossing(status, None, math.nan, status, index)
    if status == math.inf:
        return Crossing(math.nan, "above", float(x[keep][-1]), status, -1)
    return Crossing(math.nan, "below", float(x[keep][0]), status, int(np.flatnonzero(keep)[0]))
