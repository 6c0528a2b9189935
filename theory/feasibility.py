"""Exact feasibility checks: linear separability (LP) and soft-label consistency.

Cover (1965), "Geometrical and statistical properties of systems of linear inequalities with
applications in pattern recognition": n points in general position in R^d admit
``C(n, d) = 2 sum_{k<d} binom(n-1, k)`` homogeneously separable dichotomies, so a random
labelling of Gaussian inputs is separable with probability ``P(n, d) = P[Bin(n-1, 1/2) <= d-1]``
(1/2 at n = 2d). Here a given instance is decided exactly with a linear program, which is the
finite-size check of the teacher's memorization capacity ``alpha_label^T`` (paper sec. 5.1).

Solver policy. LPs go through cvxpy. Backends are tried in the order of :func:`available_solvers`:
HiGHS (dual simplex, the fastest on these LPs), HiGHS's interior point, Clarabel, SciPy. Statuses
are mapped explicitly: ``optimal`` -> feasible, but only after the returned point is verified in
float64 (for separability: every margin > 0); ``infeasible`` -> infeasible
(``infeasible_or_unbounded`` too, since every LP here has a zero objective and cannot be
unbounded); anything else (``unknown``, ``*_inaccurate``, solver errors, a point that fails
verification) -> re-solve with the next backend, and raise ``RuntimeError`` if none decides. A
non-optimal status is never read as either answer. (Measured here: HiGHS's simplex ends some
infeasible separability LPs with model status "Unknown", at d = 20 and d = 200; its interior point
and Clarabel report them as infeasible.)
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cvxpy as cp
import cvxpy.settings as cps
import numpy as np
import scipy.sparse as sp

from softleak.theory.pinv import factorize

__all__ = [
    "EXACT_RESIDUAL_RTOL",
    "TOL_VERIFY_SLACK",
    "FeasibilityResult",
    "available_solvers",
    "linearly_separable",
    "multiclass_separable",
    "random_instance",
    "softlabel_consistent",
]

logger = logging.getLogger(__name__)

EXACT_RESIDUAL_RTOL: float = 1e-9
"""``softlabel_consistent(tol=0)`` for float64 input: the soft labels are consistent when the
least-squares residual of the log-ratio system is at most this times ``max(1, max |log-ratio|)``.
Rounding in ``softmax`` -> ``log`` and in the solve is ~1e-16 relative (times the conditioning
of X), while a genuinely inconsistent row leaves an O(1) residual: 1e-9 separates the two.
For lower-precision input the tolerance is ``1e3 * eps(dtype)`` (1.2e-4 for float32) instead."""

TOL_VERIFY_SLACK: float = 1e-6
"""Relative slack (times ``max(1, tol, max |log-ratio|)``) allowed when verifying an LP answer to
``softlabel_consistent(tol>0)``: LP solvers satisfy constraints only up to their feasibility
tolerance (HiGHS 1e-7 absolute, Clarabel ~1e-8), so ``|X V - R| <= tol`` is checked as
``<= tol + slack``."""

# (name, cvxpy solver, options). Options silence HiGHS's log and pick its algorithm.
_LP_BACKENDS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("HIGHS", "HIGHS", {"highs_options": {"output_flag": False}}),
    ("HIGHS-ipm", "HIGHS", {"highs_options": {"output_flag": False, "solver": "ipm"}}),
    ("CLARABEL", "CLARABEL", {}),
    ("SCIPY", "SCIPY", {"scipy_options": {"method": "highs-ipm"}}),
)


@dataclass(frozen=True)
class FeasibilityResult:
    """Outcome of one exact feasibility check.

    Attributes:
        feasible: the decision (only ever from an explicit ``optimal`` + verified point, or an
            explicit ``infeasible``).
        solver: backend that decided (``"HIGHS"``, ``"HIGHS-ipm"``, ``"CLARABEL"``, ``"SCIPY"``;
            ``"lstsq"`` for the exact linear-system route; ``"none"`` when decided without one).
        solve_s: wall time of the whole decision in seconds (model building and all attempts).
        status: the deciding status (cvxpy's, e.g. ``"optimal"``/``"infeasible"``, or e.g.
            ``"zero probability"``, ``"residual <= tol"``).
        w: a verified witness when feasible, else None: (d,) homogeneous separator; (d+1,) with the
            bias last when ``bias=True``; (c, d) with rows summing to zero for the multiclass and
            soft-label checks.
        margin: for separability, the geometric margin of the witness (not the maximum margin):
            ``min_i s_i (w.x_i + b) / ||w||``, resp. ``min_{i, j != y_i} (w_y - w_j).x_i /
            ||w_y - w_j||``; None otherwise.
        residual: for soft-label consistency, ``max |X (w_j - w_0) - log-ratio|`` of the best
            solution found; None otherwise.
    """

    feasible: bool
    solver: str
    solve_s: float
    status: str
    w: np.ndarray | None
    margin: float | None
    residual: float | None = None


def available_solvers() -> list[str]:
    """Backend names usable as ``solver=`` here, installed ones only, in the default order."""
    installed = set(cp.installed_solvers())
    return [name for name, cv, _ in _LP_BACKENDS if cv in installed]


def _backend_order(solver: str | None) -> list[tuple[str, str, dict[str, Any]]]:
    known = {name: (name, cv, opts) for name, cv, opts in _LP_BACKENDS}
    order = [known[name] for name in available_solvers()]
    if solver is None:
        return order
    if solver in known:
        first = known[solver]
    elif solver.upper() in cp.installed_solvers():
        first = (solver.upper(), solver.upper(), {})
    else:
        raise ValueError(
            f"unknown or uninstalled solver {solver!r}; available: {available_solvers()}"
        )
    if first[1] not in cp.installed_solvers():
        raise ValueError(f"solver {solver!r} is not installed; available: {available_solvers()}")
    return [first] + [b for b in order if b[0] != first[0]]


def _decide(
    problem: cp.Problem,
    witness: Callable[[], np.ndarray | None],
    verify: Callable[[np.ndarray], bool],
    solver: str | None,
) -> tuple[bool, str, str, np.ndarray | None]:
    """Solve a zero-objective feasibility LP with explicit status mapping and fallbacks.

    Returns (feasible, backend name, status, verified witness or None).
    """
    attempts: list[str] = []
    inaccurate: tuple[str, np.ndarray] | None = None
    for name, cv_solver, opts in _backend_order(solver):
        try:
            with warnings.catch_warnings():
                # cvxpy warns on inaccurate solutions; the status is mapped explicitly below.
                warnings.simplefilter("ignore", UserWarning)
                problem.solve(solver=cv_solver, **opts)
            status = str(problem.status)
        except (cp.error.SolverError, ValueError) as err:
            # cvxpy raises ValueError("Cannot unpack invalid solution") on HiGHS's "Unknown".
            attempts.append(f"{name}: error ({type(err).__name__})")
            continue
        logger.debug("LP backend %s: %s (earlier attempts: %s)", name, status, attempts)
        if status == cp.OPTIMAL:
            w = witness()
            if w is not None and np.all(np.isfinite(w)) and verify(w):
                return True, name, status, w
            attempts.append(f"{name}: optimal but the point failed verification")
            continue
        if status in (cp.INFEASIBLE, cps.INFEASIBLE_OR_UNBOUNDED):
            # Zero objective: "unbounded" is impossible, so both statuses mean infeasible.
            return False, name, status, None
        if status == cp.OPTIMAL_INACCURATE and inaccurate is None:
            w = witness()
            if w is not None and np.all(np.isfinite(w)) and verify(w):
                inaccurate = (name, w)  # a verified point is a proof; still ask the next backend
        attempts.append(f"{name}: {status}")
    if inaccurate is not None:
        return True, inaccurate[0], "optimal_inaccurate (verified)", inaccurate[1]
    raise RuntimeError("feasibility undetermined; attempts: " + "; ".join(attempts))


def random_instance(n: int, d: int, c: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random memorization instance of the paper's protocol (docs/reference.md, common protocol).

    Draws, from ``numpy.random.default_rng(seed)``, first X then a permutation of the labels.

    Returns:
        X: (n, d) float64 standard Gaussian; y: (n,) int64 in 0..c-1, exactly n/c of each class,
        randomly permuted.

    Raises:
        ValueError: n not a positive multiple of c, d < 1 or c < 2.
    """
    if c < 2 or d < 1 or n < 1 or n % c != 0:
        raise ValueError(
            f"need c >= 2, d >= 1 and n a positive multiple of c; got {n=}, {d=}, {c=}"
        )
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = rng.permutation(np.repeat(np.arange(c, dtype=np.int64), n // c))
    return X, y


def binary_signs(y: np.ndarray, n: int) -> np.ndarray:
    """(n,) binary labels in {0, 1} or {-1, +1} -> float64 signs in {-1, +1}; ValueError else."""
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},), got {y.shape}")
    values = set(np.unique(y).tolist())
    if values <= {0, 1}:
        return np.where(y == 1, 1.0, -1.0)
    if values <= {-1, 1}:
        return y.astype(np.float64)
    raise ValueError(f"binary labels must be in {{0, 1}} or {{-1, +1}}, got {sorted(values)}")


def _check_X(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must be a non-empty 2-D array (n, d), got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or inf")
    return X


def linearly_separable(
    X: np.ndarray, y: np.ndarray, bias: bool = False, solver: str | None = None
) -> FeasibilityResult:
    """Is the binary labelling strictly linearly separable? (exact LP; Cover 1965)

    LP: find w (and b) with ``s_i (w.x_i + b) >= 1`` for all i, where ``s_i = +-1``. By scaling, it
    is feasible iff some hyperplane separates strictly. The bias version is the homogeneous problem
    on ``[X, 1]`` (d+1 dimensions), formulated exactly that way.

    Args:
        X: (n, d) inputs. y: (n,) labels in {0, 1} or {-1, +1}.
        bias: allow an affine separator. solver: first backend to try (see module docstring).

    Returns:
        FeasibilityResult; when feasible, ``w`` (d,) or (d+1,) (bias last) is verified to give
        every point a positive margin in float64, and ``margin`` is its geometric margin.
    """
    start = time.perf_counter()
    X = _check_X(X)
    s = binary_signs(y, X.shape[0])
    if bias:
        X = np.hstack([X, np.ones((X.shape[0], 1))])
    A = s[:, None] * X  # (n, d[+1]); constraint A w >= 1
    w_var = cp.Variable(A.shape[1])
    problem = cp.Problem(cp.Minimize(0), [A @ w_var >= 1])

    def verify(w: np.ndarray) -> bool:
        return bool(np.all(A @ w > 0.0))

    feasible, name, status, w = _decide(problem, lambda: w_var.value, verify, solver)
    margin = None
    if feasible and w is not None:
        w = np.asarray(w, dtype=np.float64)
        norm = np.linalg.norm(w[:-1] if bias else w)
        margin = float(np.min(A @ w) / norm) if norm > 0 else float("inf")
    return FeasibilityResult(feasible, name, time.perf_counter() - start, status, w, margin)


def _multiclass_labels(y: np.ndarray, n: int, c: int | None) -> tuple[np.ndarray, int]:
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be an integer array of shape ({n},), got {y.dtype} {y.shape}")
    if c is None:
        c = max(int(y.max()) + 1, 2)
    if c < 2 or y.min() < 0 or y.max() >= c:
        raise ValueError(
            f"labels must lie in 0..c-1 with c >= 2; got c={c}, range {y.min()}..{y.max()}"
        )
    return y.astype(np.int64), int(c)


def _pairwise_constraints(X: np.ndarray, y: np.ndarray, c: int) -> sp.csr_matrix:
    """Sparse (n (c-1), c d) matrix M with ``(M vec(W))_(i,j) = (w_{y_i} - w_j).x_i``, j != y_i.

    ``vec`` is row-major: block k of the variable is row k of W (c, d).
    """
    n, d = X.shape
    i_idx = np.repeat(np.arange(n), c - 1)  # (n (c-1),)
    others = np.array([[j for j in range(c) if j != yi] for yi in range(c)])  # (c, c-1)
    j_idx = others[y].ravel()  # (n (c-1),)
    rows = np.arange(n * (c - 1))
    cols_pos = y[i_idx][:, None] * d + np.arange(d)  # (n (c-1), d)
    cols_neg = j_idx[:, None] * d + np.arange(d)
    data = np.concatenate([X[i_idx].ravel(), -X[i_idx].ravel()])
    r = np.concatenate([np.repeat(rows, d), np.repeat(rows, d)])
    col = np.concatenate([cols_pos.ravel(), cols_neg.ravel()])
    return sp.csr_matrix((data, (r, col)), shape=(n * (c - 1), c * d))


def multiclass_separable(
    X: np.ndarray, y: np.ndarray, c: int | None = None, solver: str | None = None
) -> FeasibilityResult:
    """Can a linear multiclass model W (c, d) classify all points by argmax? (exact LP)

    LP: find W with ``(w_{y_i} - w_j).x_i >= 1`` for every sample i and every class j != y_i (by
    scaling, feasible iff strict argmax separability). For c = 2 this is binary homogeneous
    separability with ``w = w_1 - w_0`` (Cover 1965).

    Args:
        X: (n, d) inputs. y: (n,) integer labels in 0..c-1. c: number of classes (default
            ``max(y) + 1``). solver: first backend to try.

    Returns:
        FeasibilityResult; when feasible ``w`` is the (c, d) witness centered to rows summing to
        zero (softmax/argmax are invariant to adding a common row), verified to rank every sample's
        class strictly first, and ``margin`` is
        ``min_{i, j != y_i} (w_y - w_j).x_i / ||w_y - w_j||``.
    """
    start = time.perf_counter()
    X = _check_X(X)
    n, d = X.shape
    y, c = _multiclass_labels(y, n, c)
    M = _pairwise_constraints(X, y, c)
    w_var = cp.Variable(c * d)
    problem = cp.Problem(cp.Minimize(0), [M @ w_var >= 1])

    def verify(w: np.ndarray) -> bool:
        return bool(np.all(M @ w > 0.0))

    feasible, name, status, w = _decide(problem, lambda: w_var.value, verify, solver)
    W = None
    margin = None
    if feasible and w is not None:
        W = np.asarray(w, dtype=np.float64).reshape(c, d)
        W = W - W.mean(axis=0, keepdims=True)
        margins = (M @ W.ravel()).reshape(n, c - 1)
        others = np.array([[j for j in range(c) if j != yi] for yi in range(c)])[y]  # (n, c-1)
        norms = np.linalg.norm(W[y][:, None, :] - W[others], axis=2)  # (n, c-1)
        margin = float(np.min(margins / norms))
    return FeasibilityResult(feasible, name, time.perf_counter() - start, status, W, margin)


def softlabel_consistent(
    X: np.ndarray, soft: np.ndarray, tol: float = 0.0, solver: str | None = None
) -> FeasibilityResult:
    """Are soft labels exactly those of some linear softmax model on X?

    A softmax output is invariant to per-sample shifts of the logits, so only the log-ratios
    ``R_ij = log soft_ij - log soft_i0`` (j = 1..c-1) are observable; the question is whether some
    W (c, d) satisfies ``(w_j - w_0).x_i = R_ij`` for all i, j (within ``tol`` in absolute value).
    With soft labels at temperature tau, ``softmax(W x / tau)``, the log-ratios are the logit
    differences divided by tau, so a consistent answer identifies ``W / tau`` (up to a common row).
    Row normalisation of ``soft`` is irrelevant (ratios only).

    ``tol == 0``: the linear system is solved by minimum-norm least squares and declared consistent
    when its largest absolute residual is at most ``EXACT_RESIDUAL_RTOL * max(1, max |R|)`` (float64
    input; ``1e3 * eps`` of the input dtype otherwise). ``tol > 0``: LP feasibility of
    ``|X V - R| <= tol`` elementwise via cvxpy, verified with ``TOL_VERIFY_SLACK``.

    A zero entry makes a log-ratio infinite: softmax of finite logits is strictly positive, so no
    finite W reproduces it (zeros come from underflow at small tau or from truncation). Such input
    is reported infeasible with status ``"zero probability"``; pass logits (or raise tau) instead.

    Args:
        X: (m, d) inputs. soft: (m, c) non-negative soft labels, c >= 2. tol: absolute tolerance on
            the log-ratios. solver: first LP backend to try when ``tol > 0``.

    Returns:
        FeasibilityResult with ``w`` the (c, d) witness (rows summing to zero) when feasible and
        ``residual`` the max absolute log-ratio residual of the solution found.
    """
    start = time.perf_counter()
    X = _check_X(X)
    soft64, in_dtype = _check_soft(soft, X.shape[0], tol)
    if np.any(soft64 == 0):
        return FeasibilityResult(
            False, "none", time.perf_counter() - start, "zero probability", None, None
        )
    logs = np.log(soft64)
    R = logs[:, 1:] - logs[:, :1]  # (m, c-1)
    scale = max(1.0, float(np.abs(R).max()))
    if tol == 0.0:
        return _exact_consistent(X, R, scale, in_dtype, start)
    return _lp_consistent(X, R, scale, tol, solver, start)


def _check_soft(soft: np.ndarray, m: int, tol: float) -> tuple[np.ndarray, np.dtype]:
    """Validated soft labels (m, c) as float64, with the floating dtype they came in (float64
    for other input); checks ``tol`` too."""
    soft_in = np.asarray(soft)
    if soft_in.ndim != 2 or soft_in.shape[0] != m or soft_in.shape[1] < 2:
        raise ValueError(f"soft must have shape ({m}, c) with c >= 2, got {soft_in.shape}")
    in_dtype = soft_in.dtype if np.issubdtype(soft_in.dtype, np.floating) else np.dtype(np.float64)
    soft64 = soft_in.astype(np.float64)
    if not np.all(np.isfinite(soft64)) or np.any(soft64 < 0):
        raise ValueError("soft labels must be finite and non-negative")
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be finite and >= 0, got {tol}")
    return soft64, in_dtype


def _centered_W(Vt: np.ndarray) -> np.ndarray:
    """Rows ``w_j - w_0`` (c-1, d) -> the centered (c, d) weights (rows summing to zero)."""
    W = np.vstack([np.zeros((1, Vt.shape[1])), Vt])
    return W - W.mean(axis=0, keepdims=True)


def _exact_consistent(
    X: np.ndarray, R: np.ndarray, scale: float, in_dtype: np.dtype, start: float
) -> FeasibilityResult:
    """``softlabel_consistent(tol=0)``: the log-ratios R (m, c-1) by minimum-norm least squares."""
    V = factorize(X).solve(R)  # (d, c-1)
    residual = float(np.abs(X @ V - R).max())
    rtol = max(EXACT_RESIDUAL_RTOL, 1e3 * float(np.finfo(in_dtype).eps))
    ok = residual <= rtol * scale
    status = "residual <= rounding tolerance" if ok else "residual > rounding tolerance"
    return FeasibilityResult(
        ok,
        "lstsq",
        time.perf_counter() - start,
        status,
        _centered_W(V.T) if ok else None,
        None,
        residual,
    )


def _lp_consistent(
    X: np.ndarray, R: np.ndarray, scale: float, tol: float, solver: str | None, start: float
) -> FeasibilityResult:
    """``softlabel_consistent(tol>0)``: LP feasibility of ``|X V - R| <= tol``, verified."""
    d = X.shape[1]
    V_var = cp.Variable((d, R.shape[1]))
    resid = X @ V_var - R
    problem = cp.Problem(cp.Minimize(0), [resid <= tol, resid >= -tol])
    slack = TOL_VERIFY_SLACK * max(scale, tol)

    def verify(V: np.ndarray) -> bool:
        return bool(np.abs(X @ V - R).max() <= tol + slack)

    feasible, name, status, V_found = _decide(problem, lambda: V_var.value, verify, solver)
    V = V_found if V_found is not None else np.zeros((d, R.shape[1]))
    found = feasible and V_found is not None
    return FeasibilityResult(
        feasible,
        name,
        time.perf_counter() - start,
        status,
        _centered_W(V.T) if found else None,
        None,
        float(np.abs(X @ V - R).max()) if found else None,
    )
