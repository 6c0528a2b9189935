"""The weak-leakage theory (``theory.leakage``) and the exact teachers (``theory.maxmargin``):
Gardner's margin against an independent solution, the limits, the closed-form integral against
quadrature and Monte Carlo, the exact teachers against an LP and a QP solver, the min-norm
control's exact mechanism, and the prediction against hard-margin teachers at small d."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from softleak.theory import leakage as L
from softleak.theory import maxmargin as M
from softleak.theory.pinv import project_rowspace


def _kappa_by_quadrature(alpha: float) -> float:
    """Gardner's equation 1/alpha = Int_{-inf}^{k} Dt (k - t)^2, by quad and brentq."""

    def lhs(k):
        def f(t):
            return (k - t) ** 2 * stats.norm.pdf(t)

        lo = min(k, 0.0)  # quad on an infinite range needs the bulk inside a finite piece
        val = integrate.quad(f, -np.inf, lo)[0] + integrate.quad(f, lo, k)[0]
        return val - 1.0 / alpha

    return optimize.brentq(lhs, -8.0, np.sqrt(2.0 / alpha) + 1.0, xtol=1e-13)


@pytest.mark.parametrize("alpha", [0.05, 0.3, 1.0, 1.7, 1.99, 2.5])
def test_kappa_solves_gardner_equation_independently(alpha):
    assert L.gardner_kappa(alpha) == pytest.approx(_kappa_by_quadrature(alpha), abs=1e-9)


def test_kappa_limits():
    assert L.gardner_kappa(2.0) == pytest.approx(0.0, abs=1e-12)  # Gardner's capacity
    # small alpha: the integral is 1 + k^2 up to exponentially small terms
    for alpha in (1e-4, 1e-3):
        assert L.gardner_kappa(alpha) == pytest.approx(np.sqrt(1 / alpha - 1), rel=1e-9)
    k = L.gardner_kappa(np.linspace(0.1, 3.0, 30))
    assert np.all(np.diff(k) < 0)  # more constraints, smaller margin
    grid = L.gardner_kappa(np.tile([0.5, 1.0, 1.5], (40, 1)))  # the unique-value path
    assert np.array_equal(grid, np.tile(L.gardner_kappa([0.5, 1.0, 1.5]), (40, 1)))
    with pytest.raises(ValueError):
        L.gardner_kappa([1.0, 0.0])


def test_support_density_limits():
    assert L.support_density(2.0) == pytest.approx(1.0, abs=1e-12)  # n_SV = d at capacity
    for alpha in (1e-3, 1e-2):
        assert L.support_density(alpha) / alpha == pytest.approx(1.0, abs=1e-12)


def test_overlaps_limits_and_closed_forms():
    rho = np.array([0.55, 0.7, 0.9])  # 1/rho < 2: a max-margin teacher exists there
    # rho alpha -> 1: the student's inputs span R^d, r = g = 1 (continuously)
    r, g = L.overlaps(0.999999 / rho, rho)
    assert np.allclose(r, 1.0, atol=1e-5) and np.allclose(g, 1.0, atol=1e-5)
    r, g = L.overlaps(1.05 / rho, rho)
    assert np.all(r == 1.0) and np.all(g == 1.0)
    # every constraint active (alpha -> 0): w = X^+ y and r is the Wishart ratio
    # E y_S (X_S X_S^T)^-1 y_S / E y (X X^T)^-1 y = rho (1 - alpha) / (1 - rho alpha), g -> 0
    alpha = 1e-3
    r, g = L.overlaps(alpha, rho)
    assert np.allclose(r, rho * (1 - alpha) / (1 - rho * alpha), rtol=1e-9)
    assert np.all(g < 1e-12)
    assert np.all(np.isnan(L.overlaps(2.5, rho)[0]))
    with pytest.raises(ValueError):
        L.overlaps(1.0, 1.0)


def test_bivariate_normal_cdf_against_scipy():
    rng = np.random.default_rng(0)
    pts = np.column_stack(
        [rng.normal(0, 2, 40), rng.normal(0, 2, 40), rng.uniform(-0.99, 0.99, 40)]
    )
    edge = np.array([[0.0, 0.7, 0.3], [0.7, 0.0, -0.6], [0.0, 0.0, 0.5], [0.0, -1.2, -0.9]])
    for h, k, c in np.vstack([pts, edge]):
        want = stats.multivariate_normal(cov=[[1, c], [c, 1]]).cdf([h, k])
        assert L.bivariate_normal_cdf(h, k, c) == pytest.approx(want, abs=2e-6)
    assert L.bivariate_normal_cdf(np.inf, 0.3, 0.2) == pytest.approx(stats.norm.cdf(0.3))
    assert L.bivariate_normal_cdf(-np.inf, 0.3, 0.2) == 0.0


def _accuracy_by_quadrature(kappa, r, g):
    s = np.sqrt(r * (1 - r))

    def f(t):
        return stats.norm.pdf(t) * stats.norm.cdf((r * t + g * max(kappa - t, 0.0)) / s)

    return integrate.quad(f, -np.inf, kappa)[0] + integrate.quad(f, kappa, np.inf)[0]


@pytest.mark.parametrize(
    "alpha, rho", [(0.25, 0.8), (0.5, 0.5), (1.0, 0.3), (1.5, 0.6), (1.9, 0.5)]
)
def test_accuracy_integral_against_quadrature(alpha, rho):
    p = L.leakage_prediction(alpha, rho)
    want = _accuracy_by_quadrature(float(p.kappa), float(p.r), float(p.g))
    assert float(p.accuracy) == pytest.approx(want, abs=1e-9)


def test_accuracy_integral_against_monte_carlo(global_seed):
    """The model behind the integral: cavity field t ~ N(0, 1), student field r t + g (kappa -
    t)_+ + sqrt(r (1 - r)) z; held-out accuracy = P(student field > 0)."""
    rng = np.random.default_rng(global_seed)
    kappa, r, g = 0.6, 0.45, 0.3
    t, z = rng.standard_normal((2, 400_000))
    field = r * t + g * np.clip(kappa - t, 0, None) + np.sqrt(r * (1 - r)) * z
    mc = float(np.mean(field > 0))
    se = np.sqrt(mc * (1 - mc) / t.size)
    assert abs(float(L.accuracy_from_overlaps(kappa, r, g)) - mc) < 5 * se


def test_accuracy_limits_and_shape():
    assert float(L.predicted_accuracy(1e-4, 0.5)) == pytest.approx(0.5, abs=1e-3)  # no signal
    rho = np.array([0.55, 0.7, 0.9])
    near = L.predicted_accuracy(0.999999 / rho, rho)
    assert np.allclose(near, 1.0, atol=2e-3)  # identification at rho alpha = 1
    assert np.all(L.predicted_accuracy(1.01 / rho, rho) == 1.0)
    assert np.isnan(L.predicted_accuracy(2.2, 0.3))
    alpha = np.linspace(0.05, 1.95, 40)
    for r in (0.2, 0.5):
        acc = L.predicted_accuracy(alpha[alpha * r < 1], r)
        assert np.all(np.diff(acc) > 0)  # more teacher data, more leakage
    acc_rho = L.predicted_accuracy(1.0, np.linspace(0.05, 0.95, 19))
    assert np.all(np.diff(acc_rho) >= 0)
    rows = L.leakage_prediction([0.5, 1.0], 0.5).rows()
    assert [set(r) for r in rows] == [
        {"alpha", "rho", "kappa", "support_density", "r", "g", "accuracy"}
    ] * 2
    assert rows[1]["accuracy"] == pytest.approx(0.6088595, abs=1e-6)


def test_minnorm_control_is_one_half_below_alpha_one():
    acc = L.minnorm_accuracy([0.2, 0.9, 1.0, 1.5], 0.5)
    assert list(acc[:2]) == [0.5, 0.5] and np.all(np.isnan(acc[2:]))


# ------------------------------------------------------------------------------------------------
# exact teachers


def _instance(n, d, rng):
    X = rng.standard_normal((n, d)) / np.sqrt(d)
    y = rng.permutation(np.repeat([-1.0, 1.0], n // 2))
    return X, y


def test_max_margin_separability_agrees_with_the_lp(global_seed):
    from softleak.theory.feasibility import linearly_separable

    rng = np.random.default_rng(global_seed)
    for _ in range(12):
        X, y = _instance(40, 20, rng)  # alpha = 2: separable about half the time
        fit = M.max_margin(X, y)
        assert (fit.status != "not_separable") == linearly_separable(X, y).feasible
        if fit.status == "not_separable":
            assert not np.any(fit.w)


def test_max_margin_equals_a_qp_solution_and_passes_kkt(global_seed):
    import cvxpy as cp

    rng = np.random.default_rng(global_seed)
    X, y = _instance(30, 25, rng)
    fit = M.max_margin(X, y)
    assert fit.status == "ok" and fit.kkt.ok()
    w = cp.Variable(25)
    cp.Problem(cp.Minimize(cp.sum_squares(w)), [cp.multiply(y, X @ w) >= 1]).solve("CLARABEL")
    assert np.allclose(fit.w, w.value, atol=1e-5 * np.linalg.norm(fit.w))
    kkt, active = M.kkt_certificate(X, y, fit.w)  # the independent check agrees
    assert kkt.ok() and active == fit.support
    bad, _ = M.kkt_certificate(X, y, 1.01 * fit.w)  # feasible but not optimal: no active set
    assert not bad.ok() and bad.stationarity == pytest.approx(1.0)
    with pytest.raises(ValueError):
        M.max_margin(X, np.zeros(30))


def test_min_norm_student_never_sees_held_out_labels(global_seed):
    """The exact mechanism of the zero-leakage control: flipping every held-out label changes
    the min-norm teacher but not its pseudo-inverse student."""
    rng = np.random.default_rng(global_seed)
    X, y = _instance(60, 100, rng)  # alpha = 0.6
    train = np.arange(30)
    y2 = y.copy()
    y2[30:] *= -1
    fits = [M.min_norm(X, labels) for labels in (y, y2)]
    assert all(f.status == "ok" for f in fits)
    assert not np.allclose(fits[0].w, fits[1].w)
    students = [project_rowspace(X[train], f.w) for f in fits]
    assert np.allclose(students[0], students[1], atol=1e-10)
    assert M.min_norm(*_instance(120, 100, rng)).status == "not_interpolating"


def test_prediction_matches_hard_margin_teachers(global_seed):
    """d = 200, 24 teachers at (alpha, rho) = (1, 0.5): held-out accuracy, kappa = sqrt(d) /
    ||w|| and n_SV / d agree with the theory within 4 standard errors plus the finite-size
    spread measured at d = 200-400 (|diff| <= 0.015 there, benchmarks/leakage_validation)."""
    rng = np.random.default_rng(global_seed)
    d, alpha, rho = 200, 1.0, 0.5
    acc, kappa, support = [], [], []
    for _ in range(24):
        X, y = _instance(int(alpha * d), d, rng)
        fit = M.max_margin(X, y)
        assert fit.status == "ok"
        w_s = project_rowspace(X[: int(rho * len(y))], fit.w)
        held = slice(int(rho * len(y)), None)
        acc.append(np.mean(y[held] * (X[held] @ w_s) > 0))
        kappa.append(np.sqrt(d) / np.linalg.norm(fit.w))
        support.append(fit.support / d)
    p = L.leakage_prediction(alpha, rho)
    for values, want in ((acc, p.accuracy), (kappa, p.kappa), (support, p.support_density)):
        values = np.asarray(values)
        se = values.std(ddof=1) / np.sqrt(len(values))
        assert abs(values.mean() - float(want)) < 4 * se + 0.015
