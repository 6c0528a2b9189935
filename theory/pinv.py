"""Pseudo-inverse (minimum-norm least-squares) student and row-space projections.

Paper section 5.1: with direct access to the teacher's logits ``z_S = X_S w_T`` on the student's
training inputs ``X_S`` (m, d), the square-loss student is ``w_hat = X_S^+ z_S``. Because
``X_S^+ X_S`` is the orthogonal projector onto the row space of ``X_S``, the student is exactly the
projection of the teacher onto that row space, and equals the teacher once ``X_S`` has full column
rank (m >= d for generic inputs). This is the identifiability result for linear distillation of
Phuong & Lampert (2019), "Towards understanding knowledge distillation", ICML: gradient descent from
zero on the distillation loss converges to the same projection.

Solvers (float64 throughout). The minimum-norm solution is computed from a Cholesky factor of the
Gram matrix of the smaller side (``X X^T`` when m < d, ``X^T X`` when m >= d): at 1600 x 1600 this
costs ~0.1-0.8 s on the 2-core development machine against ~1-7 s for an SVD-based
``np.linalg.pinv`` (planning measurements there: ``lstsq(driver="gelsy")`` or a Gram solve
~0.08 s, ``pinv`` ~1 s).
The Gram route squares the condition number, so it is used only when LAPACK's condition estimate
of the Gram matrix (``dpocon``) says it is well conditioned (see ``GRAM_RCOND_MIN``); otherwise,
and when a user ``rcond`` could truncate singular values, the SVD route (exactly
``np.linalg.pinv``'s definition) is used. ``factorize`` exposes the factorization so that many
right-hand sides (all temperatures, shuffles, held-out points) reuse one factor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.linalg as sla

__all__ = [
    "GRAM_RCOND_MIN",
    "LeastSquaresFactor",
    "factorize",
    "nullspace_component",
    "pinv_student",
    "project_rowspace",
]

logger = logging.getLogger(__name__)

GRAM_RCOND_MIN: float = 1e-10
"""Smallest estimated reciprocal condition number (1-norm, LAPACK ``dpocon``) of the Gram matrix for
which the Cholesky route is trusted. Solving through the Gram matrix has forward error of order
``eps * cond(Gram) = eps * cond(X)**2``; at 1e-10 that bound is ~2e-6 relative in the worst case and
measured errors are far smaller (~1e-10 for a square 1600 x 1600 Gaussian X, whose Gram rcond is
~3e-9). Below it the SVD route is used."""

Method = Literal["auto", "cholesky", "svd"]


@dataclass(frozen=True)
class LeastSquaresFactor:
    """A reusable factorization of X (m, d) for minimum-norm solves and row-space projections.

    Attributes:
        kind: ``"wide"`` (Cholesky of ``X X^T``, m < d), ``"tall"`` (Cholesky of ``X^T X``,
            m >= d, full column rank so the row space is all of R^d) or ``"svd"``.
        X: the (m, d) float64 matrix.
        chol: upper Cholesky factor of the Gram matrix (``"wide"``/``"tall"``), else None.
        v_r: (r, d) orthonormal basis of the row space (``"svd"``), else None.
        u_over_s: (m, r) ``U_r / s_r`` so that ``X^+ z = v_r.T @ (u_over_s.T @ z)`` (``"svd"``).
        rank: numerical rank used.
    """

    kind: Literal["wide", "tall", "svd"]
    X: np.ndarray
    chol: np.ndarray | None
    v_r: np.ndarray | None
    u_over_s: np.ndarray | None
    rank: int

    @property
    def shape(self) -> tuple[int, int]:
        """(m, d) of the factored matrix."""
        return self.X.shape  # type: ignore[return-value]

    @property
    def full_column_rank(self) -> bool:
        """True when the null space of X is trivial (rank == d)."""
        return self.rank == self.X.shape[1]

    def solve(self, z: np.ndarray) -> np.ndarray:
        """Minimum-norm least-squares solution ``X^+ z``; z (m,) or (m, k) -> (d,) or (d, k)."""
        z = _as_rhs(z, self.X.shape[0], "z")
        if self.kind == "wide":
            return self.X.T @ sla.cho_solve((self.chol, False), z)
        if self.kind == "tall":
            return sla.cho_solve((self.chol, False), self.X.T @ z)
        assert self.v_r is not None and self.u_over_s is not None
        return self.v_r.T @ (self.u_over_s.T @ z)

    def project(self, w: np.ndarray) -> np.ndarray:
        """Orthogonal projection ``X^+ X w`` onto the row space; w (d,) or (d, k) -> same shape."""
        w = _as_rhs(w, self.X.shape[1], "w")
        if self.kind == "tall":
            # Full column rank: the row space is R^d and the projector is the identity (exactly).
            return w.copy()
        if self.kind == "wide":
            return self.X.T @ sla.cho_solve((self.chol, False), self.X @ w)
        assert self.v_r is not None
        return self.v_r.T @ (self.v_r @ w)

    def null_component(self, v: np.ndarray) -> np.ndarray:
        """``v - project(v)``: the component of v (d,) or (d, k) in the null space of X."""
        v = _as_rhs(v, self.X.shape[1], "v")
        if self.kind == "tall":
            return np.zeros_like(v)
        return v - self.project(v)


def _as_matrix(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (m, d), got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or inf")
    return X


def _as_rhs(z: np.ndarray, rows: int, name: str) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim not in (1, 2) or z.shape[0] != rows:
        raise ValueError(f"{name} must have shape ({rows},) or ({rows}, k), got {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError(f"{name} contains NaN or inf")
    return z


def _default_rcond(m: int, d: int) -> float:
    # numpy.linalg.lstsq's default cut-off: singular values below max(m, d) * eps * s_max are zero.
    return max(m, d) * float(np.finfo(np.float64).eps)


def _svd_factor(X: np.ndarray, rcond: float) -> LeastSquaresFactor:
    u, s, vt = np.linalg.svd(X, full_matrices=False)
    cutoff = rcond * (s[0] if s.size else 0.0)
    r = int(np.count_nonzero(s > cutoff)) if s.size else 0
    return LeastSquaresFactor(
        kind="svd",
        X=X,
        chol=None,
        v_r=vt[:r],
        u_over_s=u[:, :r] / s[:r],
        rank=r,
    )


def _cholesky_factor(X: np.ndarray, rcond: float) -> LeastSquaresFactor | None:
    """Cholesky factor of the smaller Gram matrix, or None when it is not well conditioned."""
    m, d = X.shape
    wide = m < d
    gram = X @ X.T if wide else X.T @ X  # (min(m,d), min(m,d))
    k = gram.shape[0]
    if k == 0:
        return None
    chol, info = sla.lapack.dpotrf(gram, lower=0, clean=1)
    if info != 0:
        return None
    anorm = float(np.abs(gram).sum(axis=0).max())
    gram_rcond, info = sla.lapack.dpocon(chol, anorm)
    # 1-norm and 2-norm condition numbers differ by at most a factor k; demand that no singular
    # value of X falls below the rcond cut-off (the SVD route would truncate it), with that slack.
    if info != 0 or gram_rcond < max(GRAM_RCOND_MIN, k * rcond**2):
        logger.debug("Gram rcond estimate %.3g too small; using SVD", gram_rcond)
        return None
    return LeastSquaresFactor(
        kind="wide" if wide else "tall", X=X, chol=chol, v_r=None, u_over_s=None, rank=k
    )


def factorize(
    X: np.ndarray, rcond: float | None = None, *, method: Method = "auto"
) -> LeastSquaresFactor:
    """Factor X (m, d) once for many minimum-norm solves and projections.

    Args:
        X: (m, d) input matrix (converted to float64).
        rcond: relative singular-value cut-off of the SVD route (as ``np.linalg.pinv``'s
            ``rcond``); default ``max(m, d) * eps`` (``np.linalg.lstsq``'s default).
        method: ``"auto"`` (Cholesky on the smaller Gram matrix when well conditioned, else SVD),
            ``"cholesky"`` (raise if not well conditioned) or ``"svd"``.

    Returns:
        A frozen :class:`LeastSquaresFactor`.
    """
    X = _as_matrix(X)
    m, d = X.shape
    rc = _default_rcond(m, d) if rcond is None else float(rcond)
    if not (0.0 <= rc < 1.0):
        raise ValueError(f"rcond must lie in [0, 1), got {rcond}")
    if method not in ("auto", "cholesky", "svd"):
        raise ValueError(f"method must be 'auto', 'cholesky' or 'svd', got {method!r}")
    if method != "svd":
        fac = _cholesky_factor(X, rc)
        if fac is not None:
            return fac
        if method == "cholesky":
            raise np.linalg.LinAlgError("Gram matrix is not well conditioned for Cholesky")
    return _svd_factor(X, rc)


def pinv_student(
    X: np.ndarray, z: np.ndarray, rcond: float | None = None, *, method: Method = "auto"
) -> np.ndarray:
    """Pseudo-inverse student ``w = X^+ z`` (paper sec. 5.1; Phuong & Lampert 2019).

    Args:
        X: (m, d) student training inputs ``X_S``.
        z: (m,) teacher logits, or (m, k) for k output columns (column by column, one factor).
        rcond: singular-value cut-off, see :func:`factorize`.
        method: solver route, see :func:`factorize`.

    Returns:
        float64 (d,) or (d, k): the minimum-norm least-squares solution.
    """
    return factorize(X, rcond, method=method).solve(z)


def project_rowspace(X: np.ndarray, w: np.ndarray, rcond: float | None = None) -> np.ndarray:
    """Orthogonal projection ``X^+ X w`` of w (d,) or (d, k) onto the row space of X (m, d).

    With ``z = X w_T`` this equals the pseudo-inverse student (Phuong & Lampert 2019).
    """
    return factorize(X, rcond).project(w)


def nullspace_component(X: np.ndarray, v: np.ndarray, rcond: float | None = None) -> np.ndarray:
    """``v - project_rowspace(X, v)``: the part of v (d,) or (d, k) in the null space of X (m, d).

    This is the part of the teacher that the teacher's outputs on X do not reveal.
    """
    return factorize(X, rcond).null_component(v)
