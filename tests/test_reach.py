"""Censored crossings and their spread (``compare.reach``): first_reach on known curves,
the lower bound on max/min with censored crossings, one log-grid step, power-law slopes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from softleak.compare.reach import bounded_ratio, first_reach, grid_ratio, log_slope


def test_first_reach_interpolates_the_first_upward_crossing():
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    y = [0.0, 0.5, 1.0, 0.2, 1.0]  # rises, falls, rises again: the first rise counts
    entry = first_reach(x, y, level=0.99)
    assert entry["censored"] is None
    assert entry["value"] == pytest.approx(2.0 + 0.49 / 0.5)


def test_first_reach_sorts_x_and_drops_nan():
    x = [3.0, 1.0, 2.0, 2.5]
    y = [1.0, 0.0, 0.5, float("nan")]
    assert first_reach(x, y, level=0.75)["value"] == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("y", "censored", "bound"),
    [
        ([0.1, 0.2, 0.3], "above", 3.0),  # never reaches: the crossing lies beyond the grid
        ([1.0, 1.0, 1.0], "below", 1.0),  # already there at the first point
        ([1.0, 0.5, 0.2], "below", 1.0),  # starts above, only falls (no upward crossing)
    ],
)
def test_first_reach_censoring(y, censored, bound):
    entry = first_reach([1.0, 2.0, 3.0], y, level=0.99)
    assert entry["value"] is None
    assert entry["censored"] == censored and entry["bound"] == bound
    assert entry["note"]


def test_first_reach_downward_for_the_teacher():
    entry = first_reach([1.0, 2.0, 3.0], [1.0, 1.0, 0.5], level=0.99, direction="down")
    assert entry["value"] == pytest.approx(2.0 + 0.01 / 0.5)
    never = first_reach([1.0, 2.0], [1.0, 1.0], level=0.99, direction="down")
    assert never["censored"] == "above" and never["bound"] == 2.0


def test_first_reach_without_points():
    assert first_reach([], [])["value"] is None


def test_bounded_ratio_treats_censored_crossings_as_bounds():
    def reach(value=None, censored=None, bound=None):
        return {"value": value, "censored": censored, "bound": bound}

    assert bounded_ratio({"a": reach(2.0), "b": reach(3.0)}) == pytest.approx(1.5)
    # never reached on a grid ending at 8: at least 8
    assert bounded_ratio({"a": reach(2.0), "b": reach(censored="above", bound=8.0)}) == 4
    # already past at the grid's first point 4: at most 4, so it may equal 2: no spread shown
    assert bounded_ratio({"a": reach(2.0), "b": reach(censored="below", bound=4.0)}) == 1
    assert np.isnan(bounded_ratio({"a": reach(2.0)}))


def test_grid_ratio_is_the_log_step_of_the_interval_holding_the_point():
    grid = [1.0, 2.0, 8.0, None, 0.0]  # None and non-positive points are dropped
    assert grid_ratio(grid, 1.5) == 2.0
    assert grid_ratio(grid, 3.0) == 4.0
    assert grid_ratio(grid, 100.0) == 4.0  # outside: the end interval
    assert grid_ratio(grid, 0.1) == 2.0
    assert math.isnan(grid_ratio([3.0], 3.0))


@pytest.mark.parametrize("k", [-1.5, 0.0, 1.0, 2.3])
def test_log_slope_recovers_a_power_law_exponent(k):
    x = np.array([10.0, 25.0, 65.0, 130.0])
    assert log_slope(x, 0.7 * x**k) == pytest.approx(k, abs=1e-12)
    assert math.isnan(log_slope([2.0, 2.0], [1.0, 3.0]))
