"""The crossing primitive (``compare.crossings``) and the four functions built on it.

Oracles: curves whose crossing is known by hand (a linear piece, a grid point exactly at the level,
censored curves, NaN points); a plain loop written from the module docstring, against every
combination of keywords on random curves; and the four former crossing functions as they were
before they shared the primitive (copied verbatim below), against today's on random monotone and
non-monotone curves (any seed).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from softleak.compare.crossings import CUTOFF_TOL, crossing_index, crossings
from softleak.compare.curves import first_crossing
from softleak.compare.reach import first_reach
from softleak.compare.thresholds import crossings as thresholds_crossings
from softleak.compare.thresholds import reference_rule
from softleak.paper_figs.common import clean
from softleak.paper_figs.mlp_measures import LEVEL, dip_and_jump

EXACT = 1e-12


# --- hand-made curves ----------------------------------------------------------------------------
def test_linear_curve_crosses_at_the_interpolated_x():
    x = np.linspace(0.0, 10.0, 11)
    assert crossings(x, 0.1 * x, 0.35, "up") == pytest.approx(3.5, abs=EXACT)
    assert crossings(x, 1.0 - 0.1 * x, 0.65, "down") == pytest.approx(3.5, abs=EXACT)
    # midpoint and grid positions of the same step (3, 4)
    assert crossings(x, 0.1 * x, 0.35, "up", position="midpoint") == 3.5
    assert crossings(x, 0.1 * x, 0.35, "up", position="grid") == 4.0
    assert crossing_index(0.1 * x, 0.35, "up") == 4


def test_up_and_down_first_reach_and_last_on_a_zigzag():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    y = np.array([0.0, 1.0, 0.0, 1.0])
    assert crossings(x, y, 0.5, "up") == pytest.approx(0.5)  # first rise
    assert crossings(x, y, 0.5, "down") == pytest.approx(1.5)  # first fall
    assert crossings(x, y, 0.5, "up", which="last") == pytest.approx(2.5)  # last rise
    assert crossings(x, y, 0.5, "down", which="last") == np.inf  # ends on the before side
    assert crossings(x, y, 0.5, "up", which="reach") == pytest.approx(0.5)
    # down, reach: the first point below 0.5 is x = 0 itself
    assert crossings(x, y, 0.5, "down", which="reach") == 0.0
    assert crossing_index(y, 0.5, "down", which="reach") == 0
    assert crossing_index(y, 0.5, "up", which="last") == 3


def test_a_curve_that_never_crosses_is_censored():
    x = np.linspace(1.0, 2.0, 5)
    low, high = np.full(5, 0.2), np.ones(5)
    ys = np.stack([low, high, np.linspace(1.0, 0.0, 5)], axis=1)
    up = crossings(x, ys, 0.99, "up")
    assert up[0] == np.inf and up[1] == -np.inf and np.isnan(up[2])  # the last only falls
    down = crossings(x, ys, 0.99, "down")
    assert down[0] == -np.inf and down[1] == np.inf and 1.0 < down[2] < 1.25
    assert np.isnan(crossings(x, ys, 0.99, "up", censored="nan")).all()
    reach = crossings(x, ys, 0.99, "up", which="reach")
    assert reach[0] == np.inf and reach[1] == 1.0 and reach[2] == 1.0  # starts there: x[0]
    last = crossings(x, ys, 0.99, "up", which="last")
    assert last[0] == np.inf and last[1] == -np.inf and last[2] == np.inf
    assert (crossing_index(ys, 0.99, "up") == [-1, -1, -1]).all()
    # no grid point at all, and a single point
    assert crossings(np.array([]), np.array([]), 0.5, "up") == -np.inf
    assert crossings(np.array([1.0]), np.array([0.0]), 0.5, "up") == np.inf
    assert crossings(np.array([1.0]), np.array([1.0]), 0.5, "up", which="reach") == 1.0


def test_touching_the_level_at_a_grid_point():
    x = np.array([0.0, 1.0, 2.0])
    assert crossings(x, np.array([0.0, 0.5, 1.0]), 0.5, "up") == 1.0  # reached at x = 1
    assert crossings(x, np.array([1.0, 0.5, 0.0]), 0.5, "down") == 1.0  # still >= at x = 1
    touch = np.array([0.0, 0.5, 0.0])  # touches 0.5 at x = 1 and falls back
    assert crossings(x, touch, 0.5, "up") == 1.0
    assert crossings(x, touch, 0.5, "down") == 1.0
    assert crossings(x, touch, 0.5, "up", which="last") == np.inf
    # within the float slack counts as reached; with tol=0 it does not
    shy = np.array([0.0, 0.5 - 1e-13, 1.0])
    assert crossings(x, shy, 0.5, "up", position="grid") == 1.0
    assert crossings(x, shy, 0.5, "up", position="grid", tol=0.0) == 2.0
    assert crossings(x, shy, 0.5, "up") == 1.0  # clipped to the grid point inside the slack


def test_nan_points_count_as_below_or_are_skipped():
    x = np.array([0.0, 1.0, 2.0])
    rise = np.array([0.0, np.nan, 1.0])
    assert np.isnan(crossings(x, rise, 0.5, "up"))  # the step (1, 2) has a NaN end
    assert crossings(x, rise, 0.5, "up", position="grid") == 2.0
    assert crossings(x, rise, 0.5, "up", nan="skip") == pytest.approx(1.0)  # step (0, 2)
    flat = np.array([1.0, np.nan, 1.0])
    assert np.isnan(crossings(x, flat, 0.5, "down"))  # NaN is below: a fall into NaN
    assert crossings(x, flat, 0.5, "down", nan="skip") == np.inf
    assert crossing_index(flat, 0.5, "down") == 1
    assert crossing_index(flat, 0.5, "down", nan="skip") == -1
    both = np.stack([rise, flat, np.full(3, np.nan)], axis=1)
    skipped = crossings(x, both, 0.5, "up", nan="skip")
    assert skipped[0] == pytest.approx(1.0) and skipped[1] == -np.inf and skipped[2] == -np.inf


def test_invalid_keywords_are_rejected():
    x, y = np.arange(3.0), np.arange(3.0)
    for bad in ({"direction": "sideways"}, {"which": "middle"}, {"position": "left"}):
        args = {"direction": "up"} | bad
        with pytest.raises(ValueError, match=next(iter(bad))):
            crossings(x, y, 1.0, **args)
    with pytest.raises(ValueError, match="nan"):
        crossings(x, y, 1.0, "up", nan="drop")
    with pytest.raises(ValueError, match="censored"):
        crossings(x, y, 1.0, "up", censored="edge")


# --- a loop written from the docstring, every keyword combination -------------------------------
def oracle(x, y, level, direction, which, position, tol, nan, censored):
    """One curve, scalar loops."""
    x, y = list(map(float, x)), list(map(float, y))
    if nan == "skip":
        pairs = [(a, b) for a, b in zip(x, y, strict=True) if not math.isnan(b)]
        x, y = [a for a, _ in pairs], [b for _, b in pairs]
    reached = [v >= level - tol for v in y]  # NaN: False
    after = reached if direction == "up" else [not r for r in reached]
    n = len(y)
    step = None  # (i0 or None, i1)
    status = math.nan
    if which == "first":
        for i in range(n - 1):
            if not after[i] and after[i + 1]:
                step = (i, i + 1)
                break
        else:
            if all(after):  # first, so that an empty curve gives -inf
                status = -math.inf
            elif not any(after):
                status = math.inf
    elif which == "reach":
        hits = [i for i in range(n) if after[i]]
        if hits:
            step = (hits[0] - 1 if hits[0] > 0 else None, hits[0])
        else:
            status = math.inf
    else:
        befores = [i for i in range(n) if not after[i]]
        if not befores:
            status = -math.inf
        elif befores[-1] == n - 1:
            status = math.inf
        else:
            step = (befores[-1], befores[-1] + 1)
    if step is None:
        return math.nan if censored == "nan" else status
    i0, i1 = step
    if i0 is None or position == "grid":
        return x[i1]
    if position == "midpoint":
        return 0.5 * (x[i0] + x[i1])
    y0, y1 = y[i0], y[i1]
    t = (level - y0) / (y1 - y0) if y1 != y0 else 0.5
    if math.isnan(t):
        return math.nan
    return x[i0] + min(max(t, 0.0), 1.0) * (x[i1] - x[i0])


def random_curves(rng, n_curves=40, with_nan=False):
    """Curves on a random increasing grid: monotone up, monotone down and zigzags, with values on
    a 0.1-grid (so that they often sit exactly at the level) or continuous."""
    out = []
    for k in range(n_curves):
        n = int(rng.integers(1, 12))
        x = np.cumsum(rng.uniform(0.1, 2.0, n)) + rng.normal()
        y = rng.choice(np.round(np.linspace(0, 1, 11), 1), n) if k % 2 else rng.uniform(0, 1, n)
        if k % 3 == 0:
            y = np.sort(y)
        elif k % 3 == 1:
            y = np.sort(y)[::-1]
        if with_nan and n > 1:
            y = y.copy()
            y[rng.random(n) < 0.25] = np.nan
        out.append((x, y))
    return out


@pytest.mark.parametrize("nan", ["below", "skip"])
def test_crossings_agree_with_the_docstring_loop(global_seed, nan):
    rng = np.random.default_rng(global_seed)
    levels = (0.0, 0.3, 0.5, 0.55, 1.0)
    combos = list(
        itertools.product(
            ("up", "down"),
            ("first", "reach", "last"),
            ("linear", "midpoint", "grid"),
            (CUTOFF_TOL, 0.0),
            ("inf", "nan"),
        )
    )
    for x, y in random_curves(rng, with_nan=True):
        for level in levels:
            for direction, which, position, tol, censored in combos:
                kw = dict(which=which, position=position, tol=tol, nan=nan, censored=censored)
                got = float(crossings(x, y, level, direction, **kw))
                want = oracle(x, y, level, direction, which, position, tol, nan, censored)
                assert got == pytest.approx(want, abs=EXACT, nan_ok=True), (x, y, level, kw)
                idx = int(crossing_index(y, level, direction, which=which, tol=tol, nan=nan))
                grid = oracle(x, y, level, direction, which, "grid", tol, nan, "nan")
                assert (idx == -1) == math.isnan(grid)
                if idx >= 0:
                    assert x[idx] == grid


def test_columns_are_the_single_curves(global_seed):
    rng = np.random.default_rng(global_seed)
    x = np.cumsum(rng.uniform(0.1, 1.0, 9))
    ys = rng.uniform(0, 1, (9, 30))
    ys[:, :10] = np.sort(ys[:, :10], axis=0)
    ys[rng.random(ys.shape) < 0.1] = np.nan
    for which, nan in itertools.product(("first", "reach", "last"), ("below", "skip")):
        many = crossings(x, ys, 0.5, "up", which=which, nan=nan)
        one = [crossings(x, ys[:, b], 0.5, "up", which=which, nan=nan) for b in range(30)]
        np.testing.assert_array_equal(many, one)
        index = crossing_index(ys, 0.5, "up", which=which, nan=nan)
        np.testing.assert_array_equal(
            index, [crossing_index(ys[:, b], 0.5, "up", which=which, nan=nan) for b in range(30)]
        )


# --- the four former functions, as they were, against today's -----------------------------------
def old_crossings(x, y, cutoff, direction):
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    squeeze = y.ndim == 1
    y2 = y[:, None] if squeeze else y
    ok = y2 >= cutoff - CUTOFF_TOL
    before = ok if direction == "down" else ~ok
    trans = before[:-1] & ~before[1:]
    out = np.full(y2.shape[1], np.nan)
    out[before.all(axis=0)] = np.inf
    out[~before.any(axis=0)] = -np.inf
    if trans.shape[0] > 0:
        has = trans.any(axis=0)
        i = np.argmax(trans, axis=0)
        cols = np.arange(y2.shape[1])
        x0, x1 = x[i], x[i + 1]
        y0, y1 = y2[i, cols], y2[i + 1, cols]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(y1 != y0, (cutoff - y0) / (y1 - y0), 0.5)
        val = x0 + np.clip(t, 0.0, 1.0) * (x1 - x0)
        out = np.where(has, val, out)
    return out[0] if squeeze else out


def old_reference_rule(x, y, cutoff, direction):
    ok = np.asarray(y, dtype=float) >= cutoff - CUTOFF_TOL
    if not ok.any():
        return math.nan
    if direction == "up":
        return float(x[np.argmax(ok)])
    last = int(np.flatnonzero(ok)[-1])
    if last == len(x) - 1:
        return math.nan
    return float(0.5 * (x[last] + x[last + 1]))


def old_first_crossing(x, y, level):
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    above = np.flatnonzero(y >= level)
    if above.size == 0:
        return float("nan")
    i = int(above[0])
    if i == 0 or y[i] == y[i - 1]:
        return float(x[i])
    return float(x[i - 1] + (level - y[i - 1]) * (x[i] - x[i - 1]) / (y[i] - y[i - 1]))


def old_first_reach(x, y, level, direction):
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    order = np.argsort(x)
    x, y = x[order], y[order]
    if x.size == 0:
        return {"value": None, "censored": None, "bound": None, "note": "no points"}
    value = float(old_crossings(x, y, level, direction))
    side = ">=" if direction == "up" else "<"
    if math.isfinite(value):
        return {"value": value, "censored": None, "bound": None, "note": ""}
    if value == math.inf:
        return {
            "value": None,
            "censored": "above",
            "bound": float(x[-1]),
            "note": f"never {side} {level:g} on the grid: > {x[-1]:.4g}",
        }
    return {
        "value": None,
        "censored": "below",
        "bound": float(x[0]),
        "note": f"already {side} {level:g} at the first grid point: <= {x[0]:.4g}",
    }


def old_dip_and_jump(x, test):
    x, test = np.asarray(x, dtype=float), np.asarray(test, dtype=float)
    hit = np.flatnonzero(test >= LEVEL - 1e-12)
    j = int(hit[0]) if hit.size else len(test)
    before = test[:j]
    dip = 0.0
    dip_at = None
    if before.size >= 2:
        running_max = np.maximum.accumulate(before)
        drops = running_max - before
        k = int(np.argmax(drops))
        dip, dip_at = float(drops[k]), float(x[k])
    return {
        "jump_at": clean(x[j]) if hit.size else None,
        "before_jump_min": clean(before.min()) if before.size else None,
        "dip": clean(dip),
        "dip_at": clean(dip_at),
    }


def same(a, b):
    """Equal, NaN equal to NaN."""
    both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return a == b or both_nan


def test_thresholds_crossings_and_reference_rule_are_unchanged(global_seed):
    rng = np.random.default_rng(global_seed)
    curves = random_curves(rng, n_curves=60)
    for (x, y), level, direction in itertools.product(curves, (0.3, 0.5, 0.99), ("up", "down")):
        new = float(thresholds_crossings(x, y, level, direction))
        assert same(new, float(old_crossings(x, y, level, direction)))
        ref = reference_rule(x, y, level, direction)
        assert same(ref, old_reference_rule(x, y, level, direction))
        # ... and the primitive with the keywords each names
        up = direction == "up"
        which, position = ("reach", "grid") if up else ("last", "midpoint")
        prim = crossings(x, y, level, direction, which=which, position=position, censored="nan")
        assert same(ref, float(prim))
    x = np.cumsum(rng.uniform(0.1, 1.0, 8))
    ys = rng.uniform(0.4, 1.0, (8, 50))  # many columns at once, as in the bootstrap
    for direction in ("up", "down"):
        np.testing.assert_array_equal(
            thresholds_crossings(x, ys, 0.7, direction), old_crossings(x, ys, 0.7, direction)
        )


def test_first_crossing_is_unchanged(global_seed):
    rng = np.random.default_rng(global_seed)
    for (x, y), level in itertools.product(random_curves(rng, n_curves=60), (0.0, 0.3, 0.5, 1.0)):
        got = first_crossing(x, y, level)
        # the same step and position; the interpolation's float operations are ordered as in
        # compare.crossings, so the last bit may differ from the former expression
        old = old_first_crossing(x, y, level)
        assert got == pytest.approx(old, rel=1e-14, abs=1e-14, nan_ok=True)
        prim = crossings(x, y, level, "up", which="reach", tol=0.0, censored="nan")
        assert same(got, float(prim))


def test_first_reach_is_unchanged(global_seed):
    rng = np.random.default_rng(global_seed)
    curves = random_curves(rng, n_curves=60, with_nan=True)
    for (x, y), level, direction in itertools.product(curves, (0.3, 0.5, 0.99), ("up", "down")):
        perm = rng.permutation(len(x))  # unsorted x is sorted
        assert first_reach(x[perm], y[perm], level, direction) == old_first_reach(
            x[perm], y[perm], level, direction
        )
        entry = first_reach(x, y, level, direction)
        keep = ~np.isnan(y)
        if keep.any():
            prim = float(crossings(x[keep], y[keep], level, direction))
            assert entry["value"] == (prim if math.isfinite(prim) else None)


def test_dip_and_jump_is_unchanged(global_seed):
    rng = np.random.default_rng(global_seed)
    values = np.array([0.0, 0.2, 0.5, 0.8, 0.98, LEVEL - 1e-13, LEVEL, 1.0])
    for k in range(80):
        n = int(rng.integers(0, 10))
        x = np.cumsum(rng.uniform(0.1, 1.0, n))
        test = rng.choice(values, n)
        if k % 3 == 0:
            test = np.sort(test)
        new = dip_and_jump(x, test)
        new.pop("peak_at")  # added since: where the fall starts (fig7's claims)
        assert new == old_dip_and_jump(x, test)
        jump = float(crossings(x, test, LEVEL, "up", which="reach", position="grid"))
        assert dip_and_jump(x, test)["jump_at"] == clean(jump)


def test_grid_step():
    from softleak.compare.crossings import grid_step

    assert grid_step([0.1, 0.2, 0.4, 0.4]) == pytest.approx(0.2)
    assert grid_step([0.1, 0.2, 0.4], at=0.15) == pytest.approx(0.1)
    assert grid_step([0.1, 0.2, 0.4], at=9.0) == pytest.approx(0.2)  # beyond the end: its step
    assert math.isnan(grid_step([0.3]))


def test_the_threshold_rule_with_censored_ends():
    from softleak.compare.crossings import threshold_crossing

    x = np.array([1.0, 2.0, 3.0])
    # interpolated between the grid points around the cut-off
    found = threshold_crossing(x, [0.1, 0.995, 1.0], 0.99, "up")
    assert found.value == pytest.approx(1 + 0.89 / 0.895) and found.censored is None
    assert found.index == 1 and found.bounded == found.value
    never = threshold_crossing(x, [0.1, 0.2, 0.3], 0.99, "up")  # beyond the grid end
    assert math.isnan(never.value) and never.censored == "above" and never.bounded == 3.0
    assert never.index == -1
    already = threshold_crossing(x, [0.995, 1.0, 1.0], 0.99, "up")  # at or before the first x
    assert already.censored == "below" and already.bounded == 1.0 and already.index == 0
    falls = threshold_crossing(x, [0.995, 0.5, 0.2], 0.99, "up")  # crosses only downward
    assert falls.censored == "below" and math.isnan(falls.status) and falls.bounded == 1.0
    empty = threshold_crossing([], [], 0.99, "up")
    assert empty.censored == "above" and math.isnan(empty.bounded)
