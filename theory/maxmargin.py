"""Teachers whose implicit bias is known, computed exactly: the hard-margin l2 max-margin separator
(no bias) and the square-loss minimum-norm interpolator, with their optimality checked.

Max-margin teacher: ``min ||w||^2 subject to y_i x_i.w >= 1`` is a least-distance program (LDP),
``min ||w|| s.t. G w >= h`` with ``G = diag(y) X`` (n, d) and ``h = 1``. Lawson & Hanson (1974,
"Solving Least Squares Problems", ch. 23) reduce it to one non-negative least-squares problem:
``u = argmin_{u >= 0} ||E u - f||`` with ``E = [G^T; h^T]`` ((d+1, n)) and ``f = (0, ..., 0, 1)``;
with ``res = E u - f``, the program is infeasible (the labels are not linearly separable) when
``res = 0`` (then u is a Farkas certificate: G^T u = 0 with h.u = 1), and otherwise ``w =
-res[:d] / res[d] = G^T lam`` with dual variables ``lam = u / (1 - h.u) >= 0``. NNLS
(``scipy.optimize.nnls``, Lawson-Hanson's active set) is exact up to round-off and has no step
size, where a generic conic solver is slow and loses accuracy near alpha = 2 (||w|| grows without
bound there). Measured (1 thread, shared 2-core machine): d = 1600, alpha = 1.8 in ~18 s; d = 400,
alpha = 1.8 in 0.15 s.

Optimality is checked twice. The solver's own duals give the KKT residuals of :class:`KKT`
(primal feasibility, dual feasibility, complementary slackness, stationarity). Independently,
:func:`kkt_certificate` checks a given w (e.g. the stored weights of a teacher read back from disk)
from scratch: it takes the constraints active at w, finds their multipliers by least squares and
reports the same four residuals. Both are relative (see :class:`KKT`); ``KKT_TOL`` is the bar.

Minimum-norm teacher: ``w = X^+ y`` (``theory.pinv``); it interpolates (X w = y) for alpha < 1 and
is a least-squares fit beyond.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
from scipy.optimize import nnls

__all__ = [
    "ACTIVE_TOL",
    "INTERPOLATION_TOL",
    "KKT",
    "KKT_TOL",
    "SEPARABILITY_TOL",
    "TeacherFit",
    "kkt_certificate",
    "max_margin",
    "min_norm",
]

log = logging.getLogger(__name__)

KKT_TOL: float = 1e-6
"""Largest relative KKT residual (:class:`KKT`) of a teacher reported as the exact max-margin
separator. NNLS solutions measured here reach 1e-12-1e-7 (the worst near alpha = 2, where the
multipliers grow like 1/kappa^2); 1e-6 leaves room and still rules out any approximate solver."""

ACTIVE_TOL: float = 1e-6
"""A constraint counts as active at w when its margin y x.w is within this of 1 (relative to 1):
:func:`kkt_certificate` gives multipliers only to those."""

SEPARABILITY_TOL: float = 1e-10
"""The LDP is declared infeasible (not separable) when the NNLS residual's last entry, which is -1
/ (1 + ||w||^2) at a solution, is above minus this: a teacher with ||w||^2 > 1e10 (kappa < 1e-5
sqrt(d)) would be indistinguishable from round-off."""

INTERPOLATION_TOL: float = 1e-8
"""The minimum-norm teacher interpolates when max_i |x_i.w - y_i| <= this (labels are +-1)."""


@dataclass(frozen=True)
class KKT:
    """Relative KKT residuals of ``min ||w||^2/2 s.t. y_i x_i.w >= 1`` at (w, lam).

    primal: max_i (1 - y_i x_i.w)_+ (a violated margin; margins are 1 at the optimum's support).
    dual: max_i (-lam_i)_+ / max_i lam_i (a negative multiplier).
    slackness: max_i lam_i |y_i x_i.w - 1| / sum_i lam_i (a multiplier on an inactive constraint;
        sum lam = ||w||^2 at the optimum).
    stationarity: ||w - sum_i lam_i y_i x_i|| / ||w||.
    """

    primal: float
    dual: float
    slackness: float
    stationarity: float

    @property
    def worst(self) -> float:
        """The largest of the four residuals."""
        return float(max(self.primal, self.dual, self.slackness, self.stationarity))

    def ok(self, tol: float = KKT_TOL) -> bool:
        """Every residual within ``tol``."""
        return self.worst <= tol


@dataclass(frozen=True)
class TeacherFit:
    """One exact teacher.

    Attributes:
        w: (d,) float64 weights; zeros when no teacher of the kind exists (``status``).
        status: ``"ok"``; ``"not_separable"`` (max-margin: the labels are not linearly separable,
            the program has no solution and w = 0); ``"not_interpolating"`` (min-norm: alpha >= 1,
            w is the least-squares fit); ``"kkt_failed"`` (max-margin: a solution whose KKT
            residual exceeds ``KKT_TOL``; kept, flagged).
        dual: (n,) multipliers (max-margin), None otherwise.
        kkt: the solver's KKT residuals (max-margin, separable), None otherwise.
        residual: max_i |x_i.w - y_i| (min-norm), None otherwise.
        support: number of constraints with a positive multiplier (max-margin), None otherwise.
        solve_s: wall time in seconds.
    """

    w: np.ndarray
    status: str
    dual: np.ndarray | None = None
    kkt: KKT | None = None
    residual: float | None = None
    support: int | None = None
    solve_s: float = 0.0


def _problem(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"X must be (n, d) and y (n,), got {X.shape} and {y.shape}")
    if not np.all(np.isin(y, (-1.0, 1.0))):
        raise ValueError("labels must be -1 or +1")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or inf")
    return X, y


def _residuals(G: np.ndarray, w: np.ndarray, lam: np.ndarray) -> KKT:
    """KKT residuals at (w, lam) for the rows G = diag(y) X."""
    m = G @ w  # (n,) margins
    lam_max = float(lam.max()) if lam.size else 0.0
    total = float(lam.sum())
    w_norm = float(np.linalg.norm(w))
    return KKT(
        primal=float(np.max(np.clip(1.0 - m, 0.0, None), initial=0.0)),
        dual=float(np.max(np.clip(-lam, 0.0, None), initial=0.0)) / max(lam_max, 1e-300),
        slackness=float(np.max(np.abs(lam) * np.abs(m - 1.0), initial=0.0)) / max(total, 1e-300),
        stationarity=float(np.linalg.norm(w - G.T @ lam)) / max(w_norm, 1e-300),
    )


def max_margin(X: np.ndarray, y: np.ndarray, *, maxiter: int | None = None) -> TeacherFit:
    """The hard-margin l2 max-margin separator without bias, by NNLS (module docstring).

    Args:
        X: (n, d) inputs; y: (n,) labels in {-1, +1}.
        maxiter: NNLS iterations (default 50 n; the active set needs about n_SV <= min(n, d)).

    Returns:
        A :class:`TeacherFit`: status ``ok`` with the solver's KKT residuals, ``not_separable``
        (w = 0) when the labels admit no separator, ``kkt_failed`` when the solution misses
        ``KKT_TOL``.
    """
    X, y = _problem(X, y)
    n, d = X.shape
    t0 = time.perf_counter()
    G = y[:, None] * X  # (n, d)
    E = np.vstack([G.T, np.ones((1, n))])  # (d + 1, n)
    f = np.zeros(d + 1)
    f[-1] = 1.0
    try:
        u, _ = nnls(E, f, maxiter=maxiter or 50 * max(n, 1))
    except RuntimeError as err:  # iteration limit: no decision either way
        raise RuntimeError(f"NNLS did not converge on the max-margin program ({err})") from None
    res = E @ u - f
    if res[-1] > -SEPARABILITY_TOL:
        return TeacherFit(
            np.zeros(d), "not_separable", dual=u, solve_s=time.perf_counter() - t0, support=0
        )
    lam = u / -res[-1]  # (n,) >= 0
    w = G.T @ lam
    kkt = _residuals(G, w, lam)
    status = "ok" if kkt.ok() else "kkt_failed"
    if status != "ok":
        log.warning("max-margin teacher: KKT residual %.3g above %.3g", kkt.worst, KKT_TOL)
    return TeacherFit(
        w,
        status,
        dual=lam,
        kkt=kkt,
        support=int(np.count_nonzero(lam > 0)),
        solve_s=time.perf_counter() - t0,
    )


def kkt_certificate(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[KKT, int]:
    """Check a claimed max-margin separator w from scratch: (KKT residuals, active constraints).

    The constraints whose margin y x.w lies within ``ACTIVE_TOL`` of 1 are taken as active; their
    multipliers solve ``min ||G_A^T lam - w||`` (least squares, so a negative one shows up as a
    dual residual); inactive constraints get 0. Independent of how w was computed.

    Args:
        X: (n, d); y: (n,) in {-1, +1}; w: (d,).
    """
    X, y = _problem(X, y)
    w = np.asarray(w, dtype=np.float64)
    G = y[:, None] * X
    m = G @ w
    active = np.flatnonzero(np.abs(m - 1.0) <= ACTIVE_TOL)
    lam = np.zeros(X.shape[0])
    if active.size:
        sol, *_ = sla.lstsq(G[active].T, w, lapack_driver="gelsy")
        lam[active] = sol
    return _residuals(G, w, lam), int(active.size)


def min_norm(X: np.ndarray, y: np.ndarray) -> TeacherFit:
    """The square-loss minimum-norm teacher ``w = X^+ y`` (``theory.pinv``).

    Status ``ok`` when it interpolates (max |x.w - y| <= ``INTERPOLATION_TOL``; alpha < 1 for
    generic inputs), ``not_interpolating`` otherwise (the least-squares fit, kept).
    """
    from softleak.theory.pinv import pinv_student

    X, y = _problem(X, y)
    t0 = time.perf_counter()
    w = pinv_student(X, y)
    residual = float(np.max(np.abs(X @ w - y), initial=0.0))
    status = "ok" if residual <= INTERPOLATION_TOL else "not_interpolating"
    return TeacherFit(w, status, residual=residual, solve_s=time.perf_counter() - t0)
