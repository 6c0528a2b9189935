"""Class-scaling fits (paper Fig. 5B): exact recovery, model selection, standard errors."""

import dataclasses

import numpy as np
import pytest

from softleak.theory.class_scaling import LAWS, fit_class_scaling

C_GRID = np.array(
    [2, 5, 10, 20, 30, 40, 50], dtype=float
)  # the paper's c values (docs/reference.md)
# Exact data: the fit is a 2-column least-squares problem with condition number < 1e3, so the
# coefficients come back to ~1e-13; 1e-10 leaves margin.
EXACT_TOL = 1e-10
# Noise for the ranking test, relative to the signal: the smallest misfit between two laws on C_GRID
# (fitting one law's exact curve with another, best A and B) is ~1.1e-2 of A in RMS, so noise 1e-4 A
# puts a wrong ranking ~100 standard deviations away: it passes for any seed.
NOISE = 1e-4


@pytest.mark.parametrize("name", list(LAWS))
def test_exact_data_recovers_coefficients(name):
    A, B = 0.92, 0.031
    alpha = A * LAWS[name](C_GRID) + B
    fit = fit_class_scaling(C_GRID, alpha)
    m = fit.model(name)
    assert abs(m.A - A) < EXACT_TOL and abs(m.B - B) < EXACT_TOL
    assert fit.best.name == name
    np.testing.assert_allclose(fit.predict([3, 7]), A * LAWS[name](np.array([3.0, 7.0])) + B)
    assert m.A_se < 1e-8 and m.B_se < 1e-8


@pytest.mark.parametrize("name", list(LAWS))
def test_noisy_data_ranked_first_by_its_law(name, global_seed):
    rng = np.random.default_rng(global_seed)
    A, B = 2.0, 0.05
    clean = A * LAWS[name](C_GRID) + B
    alpha = clean + NOISE * A * rng.standard_normal(C_GRID.size)
    fit = fit_class_scaling(C_GRID, alpha)
    assert fit.best.name == name
    assert [m.aic for m in fit.models] == sorted(m.aic for m in fit.models)
    # Same with known sigma (chi^2-based AIC).
    fit = fit_class_scaling(C_GRID, alpha, sigma=NOISE * A)
    assert fit.best.name == name
    # A within a few standard errors of the truth (10 se: passes for any seed in practice).
    assert abs(fit.best.A - A) < 10 * fit.best.A_se


def test_laws_are_distinguishable_on_the_grid():
    # Supports the NOISE choice above: every wrong law leaves an RMS misfit > 1e-2 A.
    for true in LAWS:
        y = LAWS[true](C_GRID)
        for other in LAWS:
            if other == true:
                continue
            X = np.column_stack([LAWS[other](C_GRID), np.ones(C_GRID.size)])
            resid = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
            assert np.sqrt(np.mean(resid**2)) > 50 * NOISE


def test_standard_errors_match_the_linear_model_covariance(global_seed):
    # With known sigma the parameter covariance is (X^T W X)^-1; check against numpy's polyfit,
    # an independent weighted fit (polyfit's cov='unscaled' returns exactly that matrix).
    rng = np.random.default_rng(global_seed)
    sigma = rng.uniform(0.01, 0.05, C_GRID.size)
    alpha = 0.5 / np.sqrt(C_GRID) + 0.1 + sigma * rng.standard_normal(C_GRID.size)
    fit = fit_class_scaling(C_GRID, alpha, sigma=sigma)
    m = fit.model("1/sqrt c")
    coef, cov = np.polyfit(1 / np.sqrt(C_GRID), alpha, 1, w=1 / sigma, cov="unscaled")
    np.testing.assert_allclose([m.A, m.B], coef, rtol=1e-10)
    np.testing.assert_allclose([m.A_se, m.B_se], np.sqrt(np.diag(cov)), rtol=1e-10)
    chi2 = np.sum(((alpha - (m.A / np.sqrt(C_GRID) + m.B)) / sigma) ** 2)
    np.testing.assert_allclose(m.rss, chi2, rtol=1e-10)
    np.testing.assert_allclose(m.aic, chi2 + 4, rtol=1e-10)


def test_unweighted_aic_and_se_formulas(global_seed):
    rng = np.random.default_rng(global_seed)
    alpha = 1.0 / C_GRID + 0.2 + 0.01 * rng.standard_normal(C_GRID.size)
    m = fit_class_scaling(C_GRID, alpha).model("1/c")
    coef, cov = np.polyfit(1 / C_GRID, alpha, 1, cov=True)  # cov scaled by rss/(m - 2)
    np.testing.assert_allclose([m.A, m.B], coef, rtol=1e-10)
    np.testing.assert_allclose([m.A_se, m.B_se], np.sqrt(np.diag(cov)), rtol=1e-8)
    k = C_GRID.size
    np.testing.assert_allclose(m.aic, k * np.log(m.rss / k) + 4, rtol=1e-12)


def test_validation_and_frozen():
    with pytest.raises(ValueError, match="3 points"):
        fit_class_scaling([2, 3], [1.0, 0.5])
    with pytest.raises(ValueError, match=">= 2"):
        fit_class_scaling([1, 3, 4], [1.0, 0.5, 0.3])
    with pytest.raises(ValueError, match="same length"):
        fit_class_scaling([2, 3, 4], [1.0, 0.5])
    with pytest.raises(ValueError, match="sigma"):
        fit_class_scaling([2, 3, 4], [1.0, 0.5, 0.3], sigma=0.0)
    with pytest.raises(ValueError, match="unknown law"):
        fit_class_scaling([2, 3, 4], [1.0, 0.5, 0.3], laws=["1/c^2"])
    fit = fit_class_scaling([2, 3, 4], [1.0, 0.5, 0.3])
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.models = ()  # type: ignore[misc]
    with pytest.raises(KeyError):
        fit.predict(5, name="nope")
