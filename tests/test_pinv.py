"""Pseudo-inverse student (paper sec. 5.1; Phuong & Lampert 2019): oracles are exact identities.

Tolerances: a Cholesky solve on the Gram matrix has forward error O(eps * cond(X)^2) and the SVD
route O(eps * cond(X)); ``_gram_tol`` allows the worse of the two with a factor 100 * max(m, d) for
accumulation, scaled by the size of the quantity compared. For the Gaussian matrices below cond(X)
is typically < 100, so the tolerance is ~1e-9 or tighter, and it grows on the rare ill-conditioned
draw instead of failing on it.
"""

from __future__ import annotations

import numpy as np
import pytest

from softleak.theory.pinv import (
    GRAM_RCOND_MIN,
    factorize,
    nullspace_component,
    pinv_student,
    project_rowspace,
)

EPS = float(np.finfo(np.float64).eps)
SHAPES = [(5, 12), (12, 12), (30, 12), (1, 7), (40, 3)]


def _gram_tol(X: np.ndarray) -> float:
    """Relative tolerance for comparing least-squares answers computed by different routes."""
    cond = np.linalg.cond(X)
    return 100.0 * max(X.shape) * EPS * cond**2 + 1e-12


def _rng(seed: int, k: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, k])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("k", range(3))
def test_student_is_projection_of_teacher(global_seed: int, shape: tuple[int, int], k: int) -> None:
    rng = _rng(global_seed, k)
    m, d = shape
    X = rng.standard_normal((m, d))
    w_t = rng.standard_normal(d)
    w = pinv_student(X, X @ w_t)
    projector = np.linalg.pinv(X) @ X  # (d, d), the row-space projector
    tol = _gram_tol(X) * np.linalg.norm(w_t)
    np.testing.assert_allclose(w, projector @ w_t, rtol=0, atol=tol)
    np.testing.assert_allclose(w, project_rowspace(X, w_t), rtol=0, atol=tol)
    # The unexplained part of the teacher is invisible to X and orthogonal to the student.
    np.testing.assert_allclose(X @ (w_t - w), 0.0, atol=tol * np.linalg.norm(X, 2))
    assert abs(np.dot(w, w_t - w)) <= tol * np.linalg.norm(w_t) * 10


@pytest.mark.parametrize("extra", [0, 3, 40])
@pytest.mark.parametrize("k", range(3))
def test_student_equals_teacher_once_m_ge_d(global_seed: int, extra: int, k: int) -> None:
    rng = _rng(global_seed, 10 + k)
    d = 15
    X = rng.standard_normal((d + extra, d))
    w_t = rng.standard_normal(d)
    w = pinv_student(X, X @ w_t)
    np.testing.assert_allclose(w, w_t, rtol=0, atol=_gram_tol(X) * np.linalg.norm(w_t))
    assert factorize(X).full_column_rank


@pytest.mark.parametrize("shape", SHAPES)
def test_batched_equals_columnwise(global_seed: int, shape: tuple[int, int]) -> None:
    rng = _rng(global_seed, 20)
    m, d = shape
    X = rng.standard_normal((m, d))
    Z = rng.standard_normal((m, 4))
    W = pinv_student(X, Z)
    assert W.shape == (d, 4) and W.dtype == np.float64
    for j in range(4):
        # Same factor and operations per column, but matrix-matrix and matrix-vector BLAS kernels
        # round differently, and the solve amplifies that by up to cond(X)^2.
        tol = _gram_tol(X) * np.linalg.norm(W[:, j])
        np.testing.assert_allclose(W[:, j], pinv_student(X, Z[:, j]), rtol=0, atol=tol)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("method", ["auto", "cholesky", "svd"])
def test_matches_numpy_pinv(global_seed: int, shape: tuple[int, int], method: str) -> None:
    rng = _rng(global_seed, 30)
    m, d = shape
    X = rng.standard_normal((m, d))
    z = rng.standard_normal((m, 2))  # generic right-hand side (not in the range when m > d)
    expected = np.linalg.pinv(X) @ z
    got = pinv_student(X, z, method=method)  # type: ignore[arg-type]
    tol = _gram_tol(X) * np.linalg.norm(expected)
    np.testing.assert_allclose(got, expected, rtol=0, atol=tol)


@pytest.mark.parametrize("rank", [1, 3])
def test_rank_deficient_falls_back_to_svd(global_seed: int, rank: int) -> None:
    rng = _rng(global_seed, 40)
    X = rng.standard_normal((9, rank)) @ rng.standard_normal((rank, 14))  # (9, 14), rank r
    z = rng.standard_normal(9)
    fac = factorize(X)
    assert fac.kind == "svd" and fac.rank == rank
    expected = np.linalg.pinv(X) @ z
    np.testing.assert_allclose(pinv_student(X, z), expected, atol=1e-10 * np.linalg.norm(expected))
    with pytest.raises(np.linalg.LinAlgError):
        factorize(X, method="cholesky")


def test_rcond_truncates_small_singular_values(global_seed: int) -> None:
    rng = _rng(global_seed, 50)
    q1, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    q2, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    s = np.array([1.0, 0.5, 0.2, 0.1, 1e-5, 1e-7])
    X = (q1 * s) @ q2.T
    z = rng.standard_normal(6)
    rcond = 1e-3  # drops the two smallest singular values
    keep = s > rcond
    expected = (q2[:, keep] / s[keep]) @ (q1[:, keep].T @ z)
    np.testing.assert_allclose(pinv_student(X, z, rcond=rcond), expected, atol=1e-10)
    assert factorize(X, rcond=rcond).rank == 4
    # Without truncation the Gram matrix (cond 1e14) is far below GRAM_RCOND_MIN: SVD route.
    assert factorize(X).kind == "svd" and 1e-14 < GRAM_RCOND_MIN


@pytest.mark.parametrize("shape", SHAPES)
def test_projection_identities(global_seed: int, shape: tuple[int, int]) -> None:
    rng = _rng(global_seed, 60)
    m, d = shape
    X = rng.standard_normal((m, d))
    V = rng.standard_normal((d, 3))
    P = project_rowspace(X, V)
    N = nullspace_component(X, V)
    tol = _gram_tol(X) * np.linalg.norm(V)
    np.testing.assert_allclose(P + N, V, atol=tol)
    np.testing.assert_allclose(project_rowspace(X, P), P, atol=tol)  # idempotent
    np.testing.assert_allclose(X @ N, 0.0, atol=tol * np.linalg.norm(X, 2))  # N in null(X)
    np.testing.assert_allclose(P.T @ N, 0.0, atol=tol * np.linalg.norm(V))  # orthogonal
    if m >= d:
        assert np.all(N == 0.0)  # full column rank: exactly zero, no rounding


def test_input_validation() -> None:
    X = np.ones((3, 4))
    with pytest.raises(ValueError):
        pinv_student(X, np.ones(4))
    with pytest.raises(ValueError):
        pinv_student(np.ones(4), np.ones(4))
    with pytest.raises(ValueError):
        pinv_student(np.full((3, 4), np.nan), np.ones(3))
    with pytest.raises(ValueError):
        project_rowspace(X, np.ones(3))
    with pytest.raises(ValueError):
        factorize(X, rcond=2.0)
