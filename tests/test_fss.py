"""Finite-size scaling validated on Cover's exact separability probability.

Oracle: P(n, d) = P[Bin(n - 1, 1/2) <= d - 1] (Cover 1965). Its 1/2-crossing is alpha = 2 at
every d; its 0.99-crossing (the experiments' cut-off) behaves as 2 - z_0.99 sqrt(2/d) + O(1/d), so
the extrapolation must give alpha_inf = 2 and nu = 2, and the curves must collapse with
alpha_c = 2, nu = 2.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from softleak.compare.fss import (
    collapse,
    fit_threshold_scaling,
    fit_thresholds_by_d,
    quality,
    thresholds_by_d,
)
from softleak.compare.thresholds import crossings

SIZES = np.array([50, 100, 200, 400, 800, 1600], dtype=float)
GRID_STEP = 0.02  # alpha grid of the "measurements" below


def p_separable(n: np.ndarray, d: float) -> np.ndarray:
    """Cover's P(n, d), from ``theory.cover`` (continuous in n), else the regularized beta."""
    try:
        from softleak.theory.cover import p_separable as exact
    except ImportError:  # pragma: no cover - theory not built yet
        from scipy.special import betainc

        n = np.asarray(n, dtype=float)
        return np.where(n <= d, 1.0, betainc(np.maximum(n - d, 1e-300), d, 0.5))
    return np.asarray(exact(n, d), dtype=float)


def measured_thresholds(level: float) -> np.ndarray:
    """Crossings of P(alpha d, d) = level located on an alpha grid by linear interpolation."""
    grid = np.arange(1.0, 2.6, GRID_STEP)
    return np.array([crossings(grid, p_separable(grid * d, d), level, "down") for d in SIZES])


def test_half_crossing_is_two_at_every_size():
    # P(2d, d) = 1/2 exactly: the interpolated crossing sits at 2 up to the grid's chord error
    np.testing.assert_allclose(measured_thresholds(0.5), 2.0, atol=1e-3)


def test_exact_power_law_is_recovered():
    alpha = 1.9 - 2.5 * SIZES ** (-1 / 1.5)
    fit = fit_threshold_scaling(SIZES, alpha)
    assert fit.alpha_inf == pytest.approx(1.9, abs=1e-7)
    assert fit.nu == pytest.approx(1.5, rel=1e-5)
    assert fit.a == pytest.approx(-2.5, rel=1e-5)


def test_cover_threshold_extrapolates_to_two():
    """0.99-crossings measured on a grid of step 0.02, each given the grid's resolution
    (half a step) as its standard error: alpha_inf's 95% interval contains 2 and is narrow enough
    to exclude the largest size's own value (1.92), and nu is 2 within two standard errors."""
    alpha = measured_thresholds(0.99)
    err = np.full_like(alpha, GRID_STEP / 2)
    fit = fit_threshold_scaling(SIZES, alpha, err)
    assert fit.ci_low <= 2.0 <= fit.ci_high
    assert fit.ci_high - fit.ci_low < 0.2
    assert fit.ci_low > alpha[-1]
    assert abs(fit.nu - 2.0) < 2 * fit.nu_se
    # with nu fixed at 2 and the next analytic correction (d^-1), alpha_inf is 2 to 1e-2
    fixed = fit_threshold_scaling(SIZES, alpha, err, nu=2.0, corrections=1)
    assert fixed.alpha_inf == pytest.approx(2.0, abs=1e-2)
    assert fixed.ci_low <= 2.0 <= fixed.ci_high
    # the parametric bootstrap agrees with the covariance interval
    boot = fit_threshold_scaling(SIZES, alpha, err, n_boot=200, seed=3)
    assert boot.boot_ci[0] <= 2.0 <= boot.boot_ci[1]
    assert json.dumps(boot.to_dict(), allow_nan=False)


def test_fit_needs_enough_sizes():
    with pytest.raises(ValueError, match="sizes"):
        fit_threshold_scaling([100, 200, 400], [1.8, 1.85, 1.9])  # 3 params, no dof


def cover_curves() -> dict[float, tuple[np.ndarray, np.ndarray]]:
    alpha = np.linspace(1.2, 2.8, 81)
    return {float(d): (alpha, p_separable(alpha * d, d)) for d in SIZES}


@pytest.fixture(scope="module")
def cover_collapse():
    return collapse(cover_curves(), alpha_c0=1.8, nu0=1.5)


def test_collapse_of_cover_curves_gives_alpha_two_nu_two(cover_collapse):
    """Tolerances: alpha_c within 0.01 of 2 and nu within 0.15 of 2 (the O(1/sqrt(d)) corrections
    of the normal approximation shift the optimum slightly at d = 50)."""
    result = cover_collapse
    assert result.alpha_c == pytest.approx(2.0, abs=0.01)
    assert result.nu == pytest.approx(2.0, abs=0.15)
    assert 0 < result.alpha_c_err < 0.05 and 0 < result.nu_err < 0.5
    assert result.s_min == pytest.approx(1.0)  # constant errors rescaled to S_min = 1
    scaled = result.scaled()
    assert set(scaled) == set(SIZES)
    assert json.dumps(result.to_dict(), allow_nan=False)


def test_quality_prefers_the_true_scaling():
    from softleak.compare.fss import _prepare

    prepared = _prepare(cover_curves(), 1e-3)
    best, n_best = quality(prepared, 2.0, 2.0)
    assert n_best > 0
    assert quality(prepared, 2.0, 1.0)[0] > 5 * best
    assert quality(prepared, 1.9, 2.0)[0] > 5 * best


def test_thresholds_by_d_from_tables():
    """Teacher accuracy curves equal to Cover's P at each d (identical seeds): one row per d,
    located to the grid's interpolation accuracy."""
    grid = np.arange(1.0, 2.6, GRID_STEP)
    tables = []
    for d in (100, 400, 1600):
        p = p_separable(grid * d, d)
        tables.append(
            pd.DataFrame(
                {
                    "experiment": "logistic-pinv",
                    "d": d,
                    "c": 2,
                    "alpha": np.tile(grid, 2),
                    "seed": np.repeat([0, 1], grid.size),
                    "rho": 0.8,
                    "teacher_train_acc": np.tile(p, 2),
                    "student_train_acc": np.tile(p, 2),
                    "student_test_acc": 1.0,
                }
            )
        )
    by_d = thresholds_by_d(tables, rules=["alpha_label_T"], n_boot=10)
    assert list(by_d["d"]) == [100, 400, 1600]
    expected = [crossings(grid, p_separable(grid * d, d), 0.99, "down") for d in (100, 400, 1600)]
    np.testing.assert_allclose(by_d["value"], expected, atol=1e-12)
    fits = fit_thresholds_by_d(by_d, nu=2.0)
    assert len(fits) == 1 and fits[0][0]["name"] == "alpha_label_T"
    assert math.isfinite(fits[0][1].alpha_inf)


def test_plots_draw(tmp_path, cover_collapse):
    from softleak.compare.style import new_figure, save_figure

    fit = fit_threshold_scaling(SIZES, measured_thresholds(0.99), np.full(6, GRID_STEP / 2))
    fig, axes = new_figure(ncols=2)
    fit.plot(ax=axes[0])
    cover_collapse.plot(ax=axes[1])
    # The drawn fit is the fitted law: at d^(-1/nu) = 0 it sits at alpha_inf.
    (line,) = [ln for ln in axes[0].get_lines() if ln.get_label() == "fit"]
    assert line.get_xdata()[0] == 0.0
    assert line.get_ydata()[0] == pytest.approx(fit.alpha_inf, rel=1e-9)
    assert save_figure(fig, tmp_path / "fss.png").stat().st_size > 1000
