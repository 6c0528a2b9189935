"""Certified leakage: which held-out points does EVERY plausible linear student get right?

(Over 500 lines on purpose: one public function whose two exact paths, the closed form and the
SOCPs, share the validation, the bound's radius and the result type; a quarter is derivation.)

Not in the paper; an exact companion to its pseudo-inverse student (sec. 5.1). A linear teacher is
distilled from its outputs on the student's training inputs ``X_S`` (m, d). Among all linear
students that reproduce those outputs and have norm at most ``bound`` (B), a held-out point x with
true label y is *certified leaked* when every such student classifies it correctly, and *certified
hidden* when none does. The pseudo-inverse student ``w0 = X_S^+ z`` (Phuong & Lampert 2019) is the
minimum-norm member of the set, so the set is non-empty iff ``B >= ||w0||``.

Binary, single logit (outputs ``z = X_S w_T``, prediction ``sign(w.x)``, labels +-1). The set is
``{w0 + v : v in null(X_S), ||v||^2 <= B^2 - ||w0||^2}`` (w0 lies in the row space, orthogonal to
v), so ``y w.x`` ranges exactly over ``y w0.x -+ ||P_N x|| sqrt(B^2 - ||w0||^2)`` with ``P_N`` the
projector onto ``null(X_S)``. Leaked iff the minimum is > 0; hidden iff the maximum is < 0.

Multiclass (c logits seen through a softmax; only log-ratios are observable). Logits are centered
per sample (subtract the mean over classes) and W (c, d) is taken modulo ``W -> W + 1 u^T`` by
requiring rows to sum to zero; the bound applies to the centered ``||W||_F``. For the pairwise
margin ``(w_y - w_j).x = <(e_y - e_j) x^T, W>`` the range is
``<A, W0> -+ sqrt(2) ||P_N x|| sqrt(B^2 - ||W0||_F^2)`` (the projection of ``A = (e_y - e_j) x^T``
onto the free directions ``{V : rows sum to 0, V P_R = 0}`` is ``(e_y - e_j)(P_N x)^T``).
Leaked iff ``min_{j != y}`` of the minimum margin is > 0 (exact). Hidden here means some j has
maximum margin < 0 (every student ranks j above y): sound, and exact for c = 2, but for c > 2 a
point can be misclassified by every student without one fixed j beating y for all of them, so the
hidden fraction is a lower bound on the truly hidden fraction.

Outputs matched only within ``tol`` (``|X_S w - z| <= tol`` elementwise, on centered logits in the
multiclass case): each per-point minimum and maximum is a second-order cone program, solved with
cvxpy (Clarabel), accurate to the solver's tolerance (~1e-8 relative). Only "optimal" statuses are
used; equivalent reformulations are tried in turn when one ends "inaccurate" (see
``_formulations``). Measured on the loaded 2-core development machine: ~0.4-1.5 s per SOCP at
d = 200, so this is for small d or few points; the closed form is ~1.5 s for 400 points at
d = 1000.

Normalisation for c = 2: a binary teacher w corresponds to centered multiclass rows ``-+ w/2`` with
``||W||_F = ||w|| / sqrt(2)``, so multiclass bound B certifies exactly what binary bound
``sqrt(2) B`` does.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal

import cvxpy as cp
import numpy as np

from softleak.theory.feasibility import binary_signs
from softleak.theory.pinv import LeastSquaresFactor, factorize

__all__ = [
    "BOUND_RTOL",
    "CONSISTENCY_RTOL",
    "CertifiedLeakage",
    "certified_leakage",
    "minimum_bound",
]

logger = logging.getLogger(__name__)

CONSISTENCY_RTOL: float = 1e-6
"""With ``tol == 0`` the outputs must be reproducible by some linear student: the min-norm solution
must match them to ``CONSISTENCY_RTOL * max(1, max |output|)`` (absolute, elementwise). Outputs
computed as ``X w`` in float64 match to ~1e-13; float32 outputs to ~1e-7 relative; a teacher that
is not linear in X (or m > d arbitrary outputs) misses by O(1). Otherwise ``ValueError``."""

BOUND_RTOL: float = 1e-9
"""A bound below ``||w0||`` by at most this relative amount is read as ``||w0||`` (radius 0), so
that ``bound = ||w_T||`` works when the teacher is identified (m >= d) and ``w0`` equals ``w_T``
only up to rounding."""

Method = Literal["auto", "closed_form", "cvxpy"]


@dataclass(frozen=True)
class CertifiedLeakage:
    """Per-point certificates over all linear students consistent with the teacher's outputs.

    Attributes:
        leaked: (t,) bool, every consistent student with norm <= bound classifies the point right.
        hidden: (t,) bool, every such student gets it wrong (binary, c = 2: exact); for c > 2 some
            class j beats the true class for every such student (sound lower bound, see module doc).
        margin_min: (t,) the smallest margin over the set: ``min_w y w.x`` (binary) or
            ``min_W min_{j != y} (w_y - w_j).x`` (multiclass). ``leaked == margin_min > 0``.
        margin_max: (t,) binary: ``max_w y w.x``; multiclass: ``min_{j != y} max_W (w_y - w_j).x``
            (an upper bound on the best student's margin, exact for c = 2).
            ``hidden == margin_max < 0``.
        leaked_fraction, hidden_fraction: means of ``leaked`` and ``hidden``.
        bound: the norm bound B used.
        method: ``"closed_form"`` or ``"cvxpy:<SOLVER>"``.
        min_norm: norm of the minimum-norm consistent student (``||w0||``, or ``||W0||_F``
            centered); the smallest admissible bound.
    """

    leaked: np.ndarray
    hidden: np.ndarray
    margin_min: np.ndarray
    margin_max: np.ndarray
    leaked_fraction: float
    hidden_fraction: float
    bound: float
    method: str
    min_norm: float | None = None


def _as_2d(X: np.ndarray, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] < 1:
        raise ValueError(f"{name} must be 2-D (rows, d), got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or inf")
    return X


def _prepare_outputs(outputs: np.ndarray, m: int, c: int | None) -> tuple[np.ndarray, bool, int]:
    """Returns (targets, multiclass, c): z (m,) for binary or centered logits (m, c)."""
    z = np.asarray(outputs, dtype=np.float64)
    if z.ndim == 1:
        if z.shape[0] != m:
            raise ValueError(f"outputs must have {m} rows, got shape {z.shape}")
        if c not in (None, 2):
            raise ValueError(f"1-D outputs are a single binary logit; c must be None or 2, got {c}")
        multiclass, c_out = False, 2
    elif z.ndim == 2:
        if z.shape[0] != m or z.shape[1] < 2:
            raise ValueError(f"outputs must have shape ({m}, c) with c >= 2, got {z.shape}")
        if c is not None and c != z.shape[1]:
            raise ValueError(f"c={c} does not match outputs with {z.shape[1]} columns")
        multiclass, c_out = True, int(z.shape[1])
        z = z - z.mean(axis=1, keepdims=True)  # centered logits: only log-ratios are observable
    else:
        raise ValueError(f"outputs must be (m,) or (m, c), got shape {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError("outputs contain NaN or inf (log of a zero soft label?)")
    return z, multiclass, c_out


def _prepare_labels(y: np.ndarray, t: int, multiclass: bool, c: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (t,):
        raise ValueError(f"y_test must have shape ({t},), got {y.shape}")
    if multiclass:
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= c:
            raise ValueError(f"multiclass labels must be integers in 0..{c - 1}")
        return y.astype(np.int64)
    return binary_signs(y, t)


def _min_norm_solution(
    fac: LeastSquaresFactor, X: np.ndarray, z: np.ndarray
) -> tuple[np.ndarray, float]:
    """w0 = X^+ z ((d,) or (d, c)) and its (Frobenius) norm; checks the outputs are reproducible."""
    w0 = fac.solve(z)
    miss = float(np.abs(X @ w0 - z).max()) if z.size else 0.0
    scale = max(1.0, float(np.abs(z).max()) if z.size else 0.0)
    if miss > CONSISTENCY_RTOL * scale:
        raise ValueError(
            f"no linear student reproduces the outputs (residual {miss:.3g}); use tol > 0"
        )
    return w0, float(np.linalg.norm(w0))


def _radius(bound: float, min_norm: float) -> float:
    if bound < min_norm * (1.0 - BOUND_RTOL):
        raise ValueError(
            f"bound {bound:.6g} is below the minimum-norm consistent student's norm "
            f"{min_norm:.6g}: no student satisfies it"
        )
    return float(np.sqrt(max(bound * bound - min_norm * min_norm, 0.0)))


def minimum_bound(X_train: np.ndarray, outputs_train: np.ndarray) -> float:
    """Smallest admissible ``bound``: ``||X_S^+ z||`` (binary) or ``||X_S^+ Z_centered||_F``.

    Args:
        X_train: (m, d). outputs_train: (m,) binary logits or (m, c) logits / log soft labels.
    """
    X = _as_2d(X_train, "X_train")
    z, _, _ = _prepare_outputs(outputs_train, X.shape[0], None)
    return _min_norm_solution(factorize(X), X, z)[1]


def _finish(
    margin_min: np.ndarray,
    margin_max: np.ndarray,
    bound: float,
    method: str,
    min_norm: float | None,
) -> CertifiedLeakage:
    leaked = margin_min > 0.0
    hidden = margin_max < 0.0
    return CertifiedLeakage(
        leaked=leaked,
        hidden=hidden,
        margin_min=margin_min,
        margin_max=margin_max,
        leaked_fraction=float(np.mean(leaked)),
        hidden_fraction=float(np.mean(hidden)),
        bound=float(bound),
        method=method,
        min_norm=min_norm,
    )


def _closed_form(
    X: np.ndarray,
    z: np.ndarray,
    X_test: np.ndarray,
    y: np.ndarray,
    bound: float,
    multiclass: bool,
) -> CertifiedLeakage:
    fac = factorize(X)
    w0, n0 = _min_norm_solution(fac, X, z)  # (d,) or (d, c)
    r = _radius(bound, n0)
    pn_norm = np.linalg.norm(fac.null_component(X_test.T), axis=0)  # (t,) ||P_N x||
    if not multiclass:
        center = y * (X_test @ w0)  # (t,)
        width = pn_norm * r
        return _finish(center - width, center + width, bound, "closed_form", n0)
    t = X_test.shape[0]
    scores = X_test @ w0  # (t, c)
    diff = scores[np.arange(t), y][:, None] - scores  # (t, c): (w_y - w_j).x
    width = (np.sqrt(2.0) * pn_norm * r)[:, None]  # (t, 1)
    lo = diff - width
    hi = diff + width
    lo[np.arange(t), y] = np.inf  # exclude j == y
    hi[np.arange(t), y] = np.inf
    return _finish(lo.min(axis=1), hi.min(axis=1), bound, "closed_form", n0)


@dataclass(frozen=True)
class _Formulation:
    """One convex model of the margin extremes; ``direct`` maps (x, e) to parameter values."""

    name: str
    p_min: cp.Problem
    p_max: cp.Problem
    direct: Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True, eq=False)
class _TolSet:
    """The tolerance set of ``_formulations`` with the SVD pieces its models are written in."""

    X: np.ndarray  # (m, d)
    bound: float
    tol: float
    multiclass: bool
    k: int  # output columns
    u: np.ndarray  # (m, m) left singular vectors of X
    s: np.ndarray  # singular values
    r: int  # numerical rank
    v_r: np.ndarray  # (r, d) row-space basis
    null: np.ndarray  # (d, q) null-space basis
    c0: np.ndarray  # (r, k) coordinates of the min-norm solution
    w0: np.ndarray  # (d, k) the min-norm solution W0^T
    rho: np.ndarray  # (m, k) its residual, ~0 when the outputs are reproducible
    n0sq: float  # ||W0||_F^2


def _formulations(
    X: np.ndarray, z2: np.ndarray, bound: float, tol: float, multiclass: bool
) -> tuple[np.ndarray, int, list[Callable[[], _Formulation]]]:
    """Min-norm solution W0^T (d, k), the null-space dimension q, and builders of equivalent SOCPs for the tolerance set.

    The set is ``{W^T = W0^T + D : |X D - rho| <= tol, ||W0^T + D||_F <= B, D 1 = 0 (multiclass)}``
    with ``rho = Z - X W0^T``. Interior-point solvers find some of these models ill-conditioned
    (a tol-thin slab meeting a large ball); Clarabel then ends with "optimal_inaccurate" on one
    model while another solves cleanly, so the models are tried in turn (see ``_extreme``):

    - ``delta``: D itself, cone ``||W0^T + D|| <= B``.
    - ``scaled``: with the SVD ``X = U_r S_r V_r`` and null basis N (d, q),
      ``D = tol V_r^T Bm + N Um``: the fit becomes the unit box
      ``|-rho / tol + U_r S_r Bm| <= 1`` and the cone ``||[c0 + tol Bm, Um]|| <= B``
      (row and null parts are orthogonal; ``c0 = V_r W0^T``).
    - ``scaled-quad``: the same with ``||c0||^2`` subtracted analytically,
      ``tol^2 ||Bm||^2 + 2 tol <c0, Bm> + ||Um||^2 <= B^2 - ||c0||^2``.
    - ``delta-quad``: ``||D||^2 + 2 <W0^T, D> <= B^2 - ||W0||^2``.

    Every objective is a unit-norm linear function of the free variables (the constant part
    ``<A, W0>`` is added outside), so optimal values are O(1) for the solver's relative gap test.
    With ``tol == 0`` only the null directions are free: one model, ``||Um|| <= radius``.
    """
    m, d = X.shape
    k = z2.shape[1]
    u, s, vt = np.linalg.svd(X, full_matrices=True)
    r = int(np.count_nonzero(s > max(m, d) * np.finfo(np.float64).eps * s[0])) if s.size else 0
    v_r, null = vt[:r], vt[r:].T  # (r, d), (d, q)
    q = d - r
    c0 = (u[:, :r].T @ z2) / s[:r, None]  # (r, k) coordinates of the min-norm solution
    w0 = v_r.T @ c0  # (d, k)
    rho = z2 - X @ w0  # (m, k), ~0 when the outputs are reproducible
    n0sq = float(np.sum(c0**2))
    ts = _TolSet(X, bound, tol, multiclass, k, u, s, r, v_r, null, c0, w0, rho, n0sq)
    if tol == 0:
        return w0, q, [partial(_scaled_model, ts, False)]
    return (
        w0,
        q,
        [
            partial(_delta_model, ts, False),
            partial(_scaled_model, ts, False),
            partial(_scaled_model, ts, True),
            partial(_delta_model, ts, True),
        ],
    )


def _delta_model(ts: _TolSet, quad: bool) -> _Formulation:
    """``delta`` / ``delta-quad`` of ``_formulations``: the offset D from W0^T itself."""
    d, k = ts.w0.shape
    D = cp.Variable((d, k))
    G = cp.Parameter((d, k))
    fit = ts.X @ D - ts.rho
    cons = [fit <= ts.tol, fit >= -ts.tol]
    if quad:
        cons.append(cp.sum_squares(D) + 2 * cp.sum(cp.multiply(ts.w0, D)) <= ts.bound**2 - ts.n0sq)
    else:
        cons.append(cp.norm(cp.vec(ts.w0 + D, order="F"), 2) <= ts.bound)
    if ts.multiclass:
        cons.append(D @ np.ones(k) == 0)
    objective = cp.sum(cp.multiply(G, D))

    def direct(x: np.ndarray, e: np.ndarray) -> float:
        g = np.outer(x, e)
        size = float(np.linalg.norm(g))
        G.value = g / size if size > 0 else g
        return size

    name = "delta-quad" if quad else "delta"
    return _Formulation(
        name,
        cp.Problem(cp.Minimize(objective), cons),
        cp.Problem(cp.Maximize(objective), cons),
        direct,
    )


def _scaled_model(ts: _TolSet, quad: bool) -> _Formulation:
    """``scaled`` / ``scaled-quad`` of ``_formulations``: row part in units of tol, null part."""
    tol, r, k, q = ts.tol, ts.r, ts.k, ts.null.shape[1]
    ones = np.ones(k)
    free_row = tol > 0 and r > 0
    cons = []
    objective = 0
    Bm = Um = Pr = Pn = None
    if free_row:
        Bm = cp.Variable((r, k))
        Pr = cp.Parameter((r, k))
        fit = -ts.rho / tol + (ts.u[:, :r] * ts.s[:r]) @ Bm  # (m, k), must lie in [-1, 1]
        cons += [fit <= 1, fit >= -1]
        objective = objective + cp.sum(cp.multiply(Pr, Bm))
        if ts.multiclass:
            cons.append(Bm @ ones == 0)
    if q > 0:
        Um = cp.Variable((q, k))
        Pn = cp.Parameter((q, k))
        objective = objective + cp.sum(cp.multiply(Pn, Um))
        if ts.multiclass:
            cons.append(Um @ ones == 0)
    cons.append(_scaled_cone(ts, Bm, Um, quad))

    def direct(x: np.ndarray, e: np.ndarray) -> float:
        gr = tol * np.outer(ts.v_r @ x, e) if Pr is not None else np.zeros((0, k))
        gn = np.outer(ts.null.T @ x, e) if Pn is not None else np.zeros((0, k))
        size = float(np.sqrt(np.sum(gr**2) + np.sum(gn**2)))
        if Pr is not None:
            Pr.value = gr / size if size > 0 else gr
        if Pn is not None:
            Pn.value = gn / size if size > 0 else gn
        return size

    name = "scaled-quad" if quad else "scaled"
    return _Formulation(
        name,
        cp.Problem(cp.Minimize(objective), cons),
        cp.Problem(cp.Maximize(objective), cons),
        direct,
    )


def _scaled_cone(ts: _TolSet, Bm: cp.Variable | None, Um: cp.Variable | None, quad: bool):
    """The norm bound of the ``scaled`` models on the free row (Bm) and null (Um) parts."""
    if Bm is None:  # no free row part (tol == 0 or rank 0): a ball of null directions
        assert Um is not None
        radius = _radius(ts.bound, float(np.sqrt(ts.n0sq)))
        return cp.norm(cp.vec(Um, order="F"), 2) <= radius
    if quad:
        lhs = ts.tol**2 * cp.sum_squares(Bm) + 2 * ts.tol * cp.sum(cp.multiply(ts.c0, Bm))
        if Um is not None:
            lhs = lhs + cp.sum_squares(Um)
        return lhs <= ts.bound**2 - ts.n0sq
    parts = [cp.vec(ts.c0 + ts.tol * Bm, order="F")]
    if Um is not None:
        parts.append(cp.vec(Um, order="F"))
    return cp.norm(cp.hstack(parts), 2) <= ts.bound


def _extreme(
    forms: list[_Formulation | None],
    builders: list[Callable[[], _Formulation]],
    x: np.ndarray,
    e: np.ndarray,
    maximize: bool,
    solver: str,
) -> float:
    """Optimum of +-<(e) x^T, D> over the set, trying the models in turn.

    Explicit status mapping: only ``optimal`` yields a value; ``optimal_inaccurate``, other
    statuses and solver errors move on to the next model; the set is declared empty only when
    every model reports infeasibility; otherwise ``RuntimeError``.
    """
    attempts: list[str] = []
    for idx, build in enumerate(builders):
        form = forms[idx]
        if form is None:
            form = forms[idx] = build()
        size = form.direct(x, e)
        if size == 0.0:
            return 0.0
        problem = form.p_max if maximize else form.p_min
        try:
            with warnings.catch_warnings():
                # cvxpy warns on inaccurate solutions; the status is mapped explicitly below.
                warnings.simplefilter("ignore", UserWarning)
                problem.solve(solver=solver)
        except cp.error.SolverError:
            attempts.append(f"{form.name}: solver error")
            continue
        if problem.status == cp.OPTIMAL:
            return size * float(problem.value)
        attempts.append(f"{form.name}: {problem.status}")
    if all(a.endswith(": infeasible") for a in attempts):
        raise ValueError(
            "no student reproduces the outputs within tol under this bound (SOCP infeasible)"
        )
    raise RuntimeError("certification SOCP undetermined; attempts: " + "; ".join(attempts))


def _cvxpy(
    X: np.ndarray,
    z: np.ndarray,
    X_test: np.ndarray,
    y: np.ndarray,
    bound: float,
    tol: float,
    multiclass: bool,
    c: int,
    solver: str,
) -> CertifiedLeakage:
    """Per-point margin extremes over the tolerance set by SOCPs (see ``_formulations``)."""
    z2 = z[:, None] if z.ndim == 1 else z  # (m, k)
    k = z2.shape[1]
    w0, q, builders = _formulations(X, z2, bound, tol, multiclass)
    method = f"cvxpy:{solver}"
    if tol == 0:
        miss = float(np.abs(X @ w0 - z2).max())
        if miss > CONSISTENCY_RTOL * max(1.0, float(np.abs(z2).max())):
            raise ValueError(
                f"no linear student reproduces the outputs (residual {miss:.3g}); use tol > 0"
            )
        if q == 0 or _radius(bound, float(np.linalg.norm(w0))) == 0.0:
            return _margins_of(w0, X_test, y, bound, multiclass, method)  # a single student
    forms: list[_Formulation | None] = [None] * len(builders)
    t = X_test.shape[0]
    lo = np.full(t, np.inf)
    hi = np.full(t, np.inf)
    for i in range(t):
        pairs = [j for j in range(c) if j != y[i]] if multiclass else [None]
        for j in pairs:
            e = np.zeros(k)
            if multiclass:
                e[y[i]], e[j] = 1.0, -1.0
            else:
                e[0] = y[i]
            const = float(X_test[i] @ w0 @ e)
            lo[i] = min(lo[i], const + _extreme(forms, builders, X_test[i], e, False, solver))
            hi[i] = min(hi[i], const + _extreme(forms, builders, X_test[i], e, True, solver))
    logger.debug("certification SOCP models built: %s", [f.name for f in forms if f is not None])
    return _finish(lo, hi, bound, method, None)


def _margins_of(
    w0: np.ndarray, X_test: np.ndarray, y: np.ndarray, bound: float, multiclass: bool, method: str
) -> CertifiedLeakage:
    """Certificates when the set is the single student w0 (d, k)."""
    scores = X_test @ w0  # (t, k)
    if not multiclass:
        mm = y * scores[:, 0]
        return _finish(mm, mm.copy(), bound, method, None)
    t = X_test.shape[0]
    diff = scores[np.arange(t), y][:, None] - scores
    diff[np.arange(t), y] = np.inf
    mm = diff.min(axis=1)
    return _finish(mm, mm.copy(), bound, method, None)


def certified_leakage(
    X_train: np.ndarray,
    outputs_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    bound: float,
    tol: float = 0.0,
    c: int | None = None,
    *,
    method: Method = "auto",
    solver: str = "CLARABEL",
) -> CertifiedLeakage:
    """Certify held-out points as leaked / hidden over all consistent bounded linear students.

    Args:
        X_train: (m, d) the student's training inputs ``X_S``.
        outputs_train: (m,) the teacher's single binary logit (``sign`` predicts class 1 / +1), or
            (m, c) the teacher's logits. For soft labels pass ``log(soft)``: only log-ratios matter
            (outputs are centered per sample), and at temperature tau they are ``logits / tau``, so
            the consistent students are the teacher's ``W / tau`` and ``bound`` must be scaled
            alike. Zero soft labels (log = -inf) are rejected.
        X_test: (t, d) held-out points. y_test: (t,) true labels: {0, 1} or {-1, +1} for binary;
            integers 0..c-1 for multiclass.
        bound: norm bound B on the student (``||w||``; centered ``||W||_F`` for multiclass), at
            least :func:`minimum_bound` (e.g. the teacher's own norm, which always qualifies).
        tol: elementwise absolute tolerance on reproducing the (centered) outputs; 0 = exact.
        c: number of classes, optional check against ``outputs_train.shape[1]``.
        method: ``"auto"`` (closed form when ``tol == 0``, cvxpy otherwise), ``"closed_form"``
            (tol must be 0) or ``"cvxpy"``.
        solver: cvxpy conic solver for ``method="cvxpy"``.

    Returns:
        CertifiedLeakage with per-point certificates and margin ranges.

    Raises:
        ValueError: bad shapes or labels, ``bound < minimum_bound`` (empty set), or (tol = 0)
            outputs that no linear student reproduces.
    """
    X = _as_2d(X_train, "X_train")
    Xt = _as_2d(X_test, "X_test")
    if Xt.shape[1] != X.shape[1] or Xt.shape[0] < 1:
        raise ValueError(f"X_test must be (t >= 1, {X.shape[1]}), got {Xt.shape}")
    z, multiclass, c_out = _prepare_outputs(outputs_train, X.shape[0], c)
    y = _prepare_labels(y_test, Xt.shape[0], multiclass, c_out)
    if not (np.isfinite(bound) and bound > 0):
        raise ValueError(f"bound must be finite and > 0, got {bound}")
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be finite and >= 0, got {tol}")
    if method == "auto":
        method = "closed_form" if tol == 0 else "cvxpy"
    if method == "closed_form":
        if tol != 0:
            raise ValueError("the closed form needs tol == 0; use method='cvxpy'")
        return _closed_form(X, z, Xt, y, float(bound), multiclass)
    if method == "cvxpy":
        return _cvxpy(X, z, Xt, y, float(bound), float(tol), multiclass, c_out, solver)
    raise ValueError(f"method must be 'auto', 'closed_form' or 'cvxpy', got {method!r}")
