"""Certified leakage over all bounded linear students consistent with a linear teacher's outputs.

Oracles: the teacher and any sampled consistent student lie in the set (so their margins fall in the
certified ranges), the closed form's extremes are attained by explicit students, the cvxpy SOCPs
agree with the closed form, and everything is decided once X_S has full column rank.

Tolerances: ``MARGIN_ATOL`` (relative to the margin scale ||w|| ||x||) absorbs float64 rounding in
the closed form (a few hundred eps); ``SOCP_RTOL`` covers Clarabel's ~1e-8 accuracy and the 1e-9
slack of the tolerance version with a wide margin.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import log_softmax

from softleak.theory.certified import CertifiedLeakage, certified_leakage, minimum_bound
from softleak.theory.pinv import factorize

MARGIN_ATOL = 1e-10
SOCP_RTOL = 1e-4


def _rng(seed: int, *k: int) -> np.random.Generator:
    return np.random.default_rng([seed, *k])


def _binary(seed: int, m: int, d: int = 20, t: int = 30, k: int = 0):
    rng = _rng(seed, 1, m, d, k)
    X = rng.standard_normal((m, d))
    w_t = rng.standard_normal(d)
    X_test = rng.standard_normal((t, d))
    y_test = rng.integers(0, 2, t)
    return X, X @ w_t, X_test, y_test, w_t


def _multi(seed: int, m: int, c: int, d: int = 20, t: int = 30, k: int = 0):
    rng = _rng(seed, 2, m, d, c, k)
    X = rng.standard_normal((m, d))
    W = rng.standard_normal((c, d))
    X_test = rng.standard_normal((t, d))
    y_test = rng.integers(0, c, t)
    return X, X @ W.T, X_test, y_test, W - W.mean(axis=0)


def _scale(X_test: np.ndarray, norm: float) -> np.ndarray:
    return MARGIN_ATOL * (1.0 + norm * np.linalg.norm(X_test, axis=1))


def _multi_margin(W: np.ndarray, X_test: np.ndarray, y: np.ndarray) -> np.ndarray:
    """min_{j != y} (w_y - w_j).x for a student W (c, d)."""
    scores = X_test @ W.T
    diff = scores[np.arange(len(y)), y][:, None] - scores
    diff[np.arange(len(y)), y] = np.inf
    return diff.min(axis=1)


@pytest.mark.parametrize("m", [5, 12, 18])
def test_monotone_in_bound_binary(global_seed: int, m: int) -> None:
    X, z, X_test, y, _ = _binary(global_seed, m)
    b0 = minimum_bound(X, z)
    prev: CertifiedLeakage | None = None
    for factor in (1.0, 1.001, 1.05, 1.3, 2.0, 5.0):
        cur = certified_leakage(X, z, X_test, y, b0 * factor)
        if prev is not None:
            assert cur.leaked_fraction <= prev.leaked_fraction
            assert cur.hidden_fraction <= prev.hidden_fraction
            assert not np.any(cur.leaked & ~prev.leaked)  # nested: certificates only disappear
            assert not np.any(cur.hidden & ~prev.hidden)
        prev = cur


@pytest.mark.parametrize("c", [3, 5])
def test_monotone_in_bound_multiclass(global_seed: int, c: int) -> None:
    X, Z, X_test, y, _ = _multi(global_seed, 10, c)
    b0 = minimum_bound(X, Z)
    prev: CertifiedLeakage | None = None
    for factor in (1.0, 1.01, 1.2, 2.0, 4.0):
        cur = certified_leakage(X, Z, X_test, y, b0 * factor)
        if prev is not None:
            assert not np.any(cur.leaked & ~prev.leaked)
            assert not np.any(cur.hidden & ~prev.hidden)
            assert cur.leaked_fraction <= prev.leaked_fraction
            assert cur.hidden_fraction <= prev.hidden_fraction
        prev = cur


@pytest.mark.parametrize("m", [20, 25, 60])
def test_everything_certified_once_identified(global_seed: int, m: int) -> None:
    X, z, X_test, y, w_t = _binary(global_seed, m)
    res = certified_leakage(X, z, X_test, y, 2.0 * np.linalg.norm(w_t))
    correct = np.sign(X_test @ w_t) == np.where(y == 1, 1, -1)
    assert np.array_equal(res.leaked, correct)
    assert np.array_equal(res.hidden, ~correct)
    assert res.leaked_fraction + res.hidden_fraction == 1.0


@pytest.mark.parametrize("m", [20, 60])
def test_everything_certified_once_identified_multiclass(global_seed: int, m: int) -> None:
    X, Z, X_test, y, Wc = _multi(global_seed, m, c=4)
    res = certified_leakage(X, Z, X_test, y, 2.0 * np.linalg.norm(Wc))
    correct = np.argmax(X_test @ Wc.T, axis=1) == y
    assert np.array_equal(res.leaked, correct)
    assert np.array_equal(res.hidden, ~correct)


@pytest.mark.parametrize("m", [6, 15])
def test_closed_form_matches_socp(global_seed: int, m: int) -> None:
    X, z, X_test, y, w_t = _binary(global_seed, m, t=5)
    bound = 1.2 * np.linalg.norm(w_t)
    exact = certified_leakage(X, z, X_test, y, bound)
    assert exact.method == "closed_form"
    scale = 1.0 + bound * np.linalg.norm(X_test, axis=1)
    for tol, method in ((1e-9, "auto"), (0.0, "cvxpy")):
        socp = certified_leakage(X, z, X_test, y, bound, tol=tol, method=method)  # type: ignore[arg-type]
        assert socp.method.startswith("cvxpy")
        assert np.all(np.abs(socp.margin_min - exact.margin_min) <= SOCP_RTOL * scale)
        assert np.all(np.abs(socp.margin_max - exact.margin_max) <= SOCP_RTOL * scale)


def test_closed_form_matches_socp_multiclass(global_seed: int) -> None:
    X, Z, X_test, y, Wc = _multi(global_seed, 8, c=3, t=4)
    bound = 1.2 * np.linalg.norm(Wc)
    exact = certified_leakage(X, Z, X_test, y, bound)
    socp = certified_leakage(X, Z, X_test, y, bound, tol=1e-9)
    scale = 1.0 + bound * np.linalg.norm(X_test, axis=1)
    assert np.all(np.abs(socp.margin_min - exact.margin_min) <= SOCP_RTOL * scale)
    assert np.all(np.abs(socp.margin_max - exact.margin_max) <= SOCP_RTOL * scale)


def test_tolerance_only_widens(global_seed: int) -> None:
    X, z, X_test, y, w_t = _binary(global_seed, 10, t=6)
    bound = 1.2 * np.linalg.norm(w_t)
    exact = certified_leakage(X, z, X_test, y, bound)
    loose = certified_leakage(X, z, X_test, y, bound, tol=0.3)
    slack = SOCP_RTOL * (1.0 + bound * np.linalg.norm(X_test, axis=1))
    assert np.all(loose.margin_min <= exact.margin_min + slack)
    assert np.all(loose.margin_max >= exact.margin_max - slack)


@pytest.mark.parametrize("m", [5, 14, 19])
def test_teacher_margin_inside_range(global_seed: int, m: int) -> None:
    X, z, X_test, y, w_t = _binary(global_seed, m)
    res = certified_leakage(X, z, X_test, y, np.linalg.norm(w_t))
    margin = np.where(y == 1, 1.0, -1.0) * (X_test @ w_t)
    atol = _scale(X_test, np.linalg.norm(w_t))
    assert np.all(res.margin_min <= margin + atol)
    assert np.all(margin <= res.margin_max + atol)
    X, Z, X_test, y, Wc = _multi(global_seed, m, c=4)
    res = certified_leakage(X, Z, X_test, y, np.linalg.norm(Wc))
    margin = _multi_margin(Wc, X_test, y)
    atol = _scale(X_test, np.linalg.norm(Wc))
    assert np.all(res.margin_min <= margin + atol)
    assert np.all(margin <= res.margin_max + atol)


@pytest.mark.parametrize("m", [4, 12])
def test_monte_carlo_students_respect_certificates(global_seed: int, m: int) -> None:
    rng = _rng(global_seed, 3, m)
    X, z, X_test, y, w_t = _binary(global_seed, m, t=40)
    bound = 1.1 * np.linalg.norm(w_t)
    res = certified_leakage(X, z, X_test, y, bound)
    fac = factorize(X)
    w0 = fac.solve(z)
    radius = np.sqrt(bound**2 - w0 @ w0)
    s = np.where(y == 1, 1.0, -1.0)
    atol = _scale(X_test, bound)
    for _ in range(300):
        v = fac.null_component(rng.standard_normal(X.shape[1]))
        v *= radius * rng.uniform() ** 0.25 / np.linalg.norm(v)  # inside the ball, often near edge
        w = w0 + v
        assert np.linalg.norm(X @ w - z) <= 1e-9 * np.linalg.norm(z)
        margin = s * (X_test @ w)
        assert np.all(margin > 0 - atol, where=res.leaked)
        assert np.all(margin < 0 + atol, where=res.hidden)
        assert np.all((res.margin_min - atol <= margin) & (margin <= res.margin_max + atol))
    # Tightness: the extremes are attained by explicit students on the sphere's boundary.
    pn = fac.null_component(X_test.T)  # (d, t)
    for i in range(len(y)):
        nrm = np.linalg.norm(pn[:, i])
        if nrm == 0:
            continue
        w_lo = w0 - s[i] * radius * pn[:, i] / nrm
        w_hi = w0 + s[i] * radius * pn[:, i] / nrm
        assert s[i] * (X_test[i] @ w_lo) == pytest.approx(res.margin_min[i], abs=atol[i])
        assert s[i] * (X_test[i] @ w_hi) == pytest.approx(res.margin_max[i], abs=atol[i])


def test_monte_carlo_multiclass(global_seed: int) -> None:
    rng = _rng(global_seed, 4)
    c = 4
    X, Z, X_test, y, Wc = _multi(global_seed, 9, c=c, t=40)
    bound = 1.1 * np.linalg.norm(Wc)
    res = certified_leakage(X, Z, X_test, y, bound)
    fac = factorize(X)
    Zc = Z - Z.mean(axis=1, keepdims=True)
    W0 = fac.solve(Zc).T  # (c, d), rows sum to zero
    radius = np.sqrt(bound**2 - np.sum(W0**2))
    atol = _scale(X_test, bound)
    for _ in range(200):
        V = fac.null_component(rng.standard_normal((X.shape[1], c))).T  # (c, d)
        V -= V.mean(axis=0)  # keep rows summing to zero (W modulo W + 1 u^T)
        V *= radius * rng.uniform() ** 0.25 / np.linalg.norm(V)
        W = W0 + V
        np.testing.assert_allclose(X @ W.T, Zc, atol=1e-9 * np.abs(Zc).max())
        margin = _multi_margin(W, X_test, y)
        assert np.all(margin > 0 - atol, where=res.leaked)
        assert np.all(margin < 0 + atol, where=res.hidden)
        assert np.all((res.margin_min - atol <= margin) & (margin <= res.margin_max + atol))


@pytest.mark.parametrize("m", [6, 15, 25])
def test_multiclass_c2_agrees_with_binary(global_seed: int, m: int) -> None:
    X, z, X_test, y, w_t = _binary(global_seed, m)
    bound_bin = 1.3 * np.linalg.norm(w_t)
    binary = certified_leakage(X, z, X_test, y, bound_bin)
    W = np.vstack([-w_t / 2, w_t / 2])  # centered rows -+ w/2: ||W||_F = ||w|| / sqrt(2)
    multi = certified_leakage(X, X @ W.T, X_test, y, bound_bin / np.sqrt(2), c=2)
    atol = _scale(X_test, bound_bin)
    np.testing.assert_allclose(multi.margin_min, binary.margin_min, rtol=0, atol=atol.max())
    np.testing.assert_allclose(multi.margin_max, binary.margin_max, rtol=0, atol=atol.max())
    decided = np.abs(binary.margin_min) > atol  # away from ties, certificates agree exactly
    assert np.array_equal(multi.leaked[decided], binary.leaked[decided])
    decided = np.abs(binary.margin_max) > atol
    assert np.array_equal(multi.hidden[decided], binary.hidden[decided])


@pytest.mark.parametrize("tau", [0.5, 10.0])
def test_log_soft_labels_equal_scaled_logits(global_seed: int, tau: float) -> None:
    X, Z, X_test, y, Wc = _multi(global_seed, 10, c=3)
    bound = 1.2 * np.linalg.norm(Wc)
    logits = certified_leakage(X, Z, X_test, y, bound)
    soft = certified_leakage(X, log_softmax(Z / tau, axis=1), X_test, y, bound / tau)
    atol = _scale(X_test, bound).max()
    np.testing.assert_allclose(soft.margin_min * tau, logits.margin_min, rtol=0, atol=atol)
    np.testing.assert_allclose(soft.margin_max * tau, logits.margin_max, rtol=0, atol=atol)
    decided = np.abs(logits.margin_min) > atol
    assert np.array_equal(soft.leaked[decided], logits.leaked[decided])


def test_errors(global_seed: int) -> None:
    X, z, X_test, y, w_t = _binary(global_seed, 8)
    b0 = minimum_bound(X, z)
    with pytest.raises(ValueError):
        certified_leakage(X, z, X_test, y, 0.99 * b0)  # empty set
    certified_leakage(X, z, X_test, y, b0)  # the boundary itself is admissible
    rng = _rng(global_seed, 5)
    X_big = rng.standard_normal((30, 20))
    with pytest.raises(ValueError):
        certified_leakage(X_big, rng.standard_normal(30), X_test, y, 100.0)  # not reproducible
    with pytest.raises(ValueError):
        certified_leakage(X, z, X_test, y + 2, 2 * b0)
    with pytest.raises(ValueError):
        certified_leakage(X, z, X_test, y, 2 * b0, tol=0.1, method="closed_form")
    with pytest.raises(ValueError):
        certified_leakage(X, np.column_stack([z, -z]), X_test, y, 2 * b0, c=3)
