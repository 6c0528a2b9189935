"""The weak-leakage phase of the binary linear problem: held-out accuracy of the pseudo-inverse
student of an l2 max-margin teacher, as a function of alpha = n/d and rho (docs/theory.md).

Setting (paper sec. 5.1 with a teacher whose implicit bias is known): inputs x ~ N(0, I/d), n =
alpha d random labels y = +-1; the teacher w is the hard-margin l2 max-margin separator (min ||w||
subject to y x.w >= 1; it exists for alpha < 2 as d -> infinity); the student is the projection
w_S = P_S w of the teacher onto the span of its rho n training inputs (the pseudo-inverse student
on the teacher's logits, ``theory.pinv``), with rho alpha < 1. The held-out member accuracy is

    acc(alpha, rho) = Int Dt Phi( [r t + g (kappa - t)_+] / sqrt(r (1 - r)) ),

a Gaussian integral in closed form (bivariate normal probabilities, :func:`accuracy_from_overlaps`)
with

- kappa(alpha): Gardner's margin, alpha [(1 + k^2) Phi(k) + k phi(k)] = 1 (kappa(2) = 0), in units
  where kappa = sqrt(d) / ||w|| for x ~ N(0, I/d) (:func:`gardner_kappa`);
- a = alpha Phi(kappa): support vectors per input dimension, n_SV / d (:func:`support_density`);
- g = rho (alpha - a) / (1 - rho a): the fraction of a held-out support vector's own push on the
  teacher that the student sees, tr(P_S Q_A) / tr(Q_A) with Q_A the projector off the other
  support vectors' span;
- r = ||P_S w||^2 / ||w||^2 = [rho (1 - a) + (1 - rho) g] / (1 - rho a).

Derivation (docs/theory.md): Gardner's cavity picture of the max-margin perceptron gives each
held-out member's teacher field as max(t, kappa) with t the cavity field (its field under the teacher
trained without it, a standard Gaussian); the member leaves the teacher unchanged when t > kappa and
pushes it along Q_A x by kappa - t when t < kappa. The student's field on the member is r t plus
independent Gaussian noise of variance r (1 - r), plus g times the push. Summing the pushes of the
held-out support vectors gives r self-consistently; g comes from the dimension of span(S) beyond
span(A) (two independent Gaussian spans meet as free subspaces). This is a heuristic (cavity,
replica symmetric) derivation, not a theorem; the simulation checks it
(``benchmarks/leakage_validation.py``).

Exact control: a square-loss minimum-norm teacher (w = X^+ y, alpha < 1) satisfies X_S w = y_S, so
its student X_S^+ y_S never depends on a held-out label: held-out accuracy is exactly 1/2
(:func:`minnorm_accuracy`). Leakage needs inactive constraints (t > kappa) and pushes the student
only partly sees.

Everything is vectorized: ``alpha`` and ``rho`` broadcast against each other. Pure numpy/scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

__all__ = [
    "ALPHA_SEPARABLE",
    "LeakagePrediction",
    "accuracy_from_overlaps",
    "bivariate_normal_cdf",
    "gardner_kappa",
    "leakage_prediction",
    "minnorm_accuracy",
    "overlaps",
    "predicted_accuracy",
    "support_density",
]

ALPHA_SEPARABLE: float = 2.0
"""Cover's capacity: random labels are separable (a max-margin teacher exists) below alpha = 2."""

_BISECTIONS = 200  # halvings of Gardner's bracket at most (it stops at float64 resolution)


def _phi(x):
    return np.exp(-0.5 * np.square(x)) / np.sqrt(2 * np.pi)


def _Phi(x):
    return special.ndtr(x)


def _gardner(k, alpha):
    """alpha * Int_{-inf}^{k} Dt (k - t)^2 - 1 (increasing in k)."""
    return alpha * ((1 + k * k) * _Phi(k) + k * _phi(k)) - 1.0


def gardner_kappa(alpha) -> np.ndarray:
    """Gardner's maximal margin kappa(alpha) of random labels (Gardner 1988), any alpha > 0.

    Solves ``alpha [(1 + k^2) Phi(k) + k phi(k)] = 1``, i.e. ``1/alpha = Int_{-inf}^{k} Dt (k -
    t)^2``; kappa > 0 for alpha < 2, kappa(2) = 0, kappa < 0 beyond (no separating teacher there).
    kappa is the margin in units of the teacher's field: ``sqrt(d) / ||w||`` for x ~ N(0, I/d)
    and the hard-margin teacher (min ||w|| s.t. y x.w >= 1).

    Args:
        alpha: array-like of sample complexities n/d > 0.

    Returns:
        float64 array of alpha's shape.
    """
    alpha = np.asarray(alpha, dtype=float)
    if np.any(~(alpha > 0)):
        raise ValueError("alpha must be > 0")
    if alpha.ndim > 1 or alpha.size > 64:  # grids repeat alpha: solve each value once
        values, inverse = np.unique(alpha, return_inverse=True)
        if values.size < alpha.size:
            return gardner_kappa(values)[inverse].reshape(alpha.shape)
    # The left side increases from -1 (k -> -inf) to +inf. Bracket: (1 + k^2) Phi(k) + k phi(k)
    # >= k^2 Phi(k) >= k^2 / 2 for k >= 0, so the root lies below max(sqrt(2 / alpha), 0) < hi;
    # at k = -10 the integral is ~1e-24, below 1/alpha for every alpha < 1e23.
    lo = np.full(alpha.shape, -10.0)
    hi = np.sqrt(2.0 / alpha) + 1.0
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        up = _gardner(mid, alpha) > 0
        hi = np.where(up, mid, hi)
        lo = np.where(up, lo, mid)
        if np.all(hi - lo <= 4 * np.finfo(float).eps * np.maximum(1.0, np.abs(hi))):
            break
    return 0.5 * (lo + hi)


def support_density(alpha, kappa=None) -> np.ndarray:
    """Support vectors per input dimension, n_SV / d = alpha Phi(kappa(alpha)).

    a -> alpha as alpha -> 0 (every constraint active), a = 1 at alpha = 2 (n_SV = d).
    """
    alpha = np.asarray(alpha, dtype=float)
    k = gardner_kappa(alpha) if kappa is None else np.asarray(kappa, dtype=float)
    return alpha * _Phi(k)


def overlaps(alpha, rho, support=None) -> tuple[np.ndarray, np.ndarray]:
    """(r, g) of the max-margin teacher's pseudo-inverse student (module docstring).

    r = ||P_S w||^2 / ||w||^2 and g = tr(P_S Q_A) / tr(Q_A) for rho alpha < 1; both are 1 for
    rho alpha >= 1 (the student's inputs span R^d: P_S = I).

    Args:
        alpha, rho: broadcastable arrays, 0 < alpha < 2 (NaN beyond), 0 < rho < 1.
        support: n_SV / d when already computed (``support_density(alpha)``).

    Returns:
        (r, g), float64 arrays of the broadcast shape.
    """
    alpha, rho = np.broadcast_arrays(np.asarray(alpha, float), np.asarray(rho, float))
    _check_rho(rho)
    a = support_density(alpha) if support is None else np.broadcast_to(support, alpha.shape)
    full = rho * alpha >= 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        g = rho * (alpha - a) / (1.0 - rho * a)
        r = (rho * (1.0 - a) + (1.0 - rho) * g) / (1.0 - rho * a)
    r = np.where(full, 1.0, r)
    g = np.where(full, 1.0, g)
    beyond = alpha > ALPHA_SEPARABLE
    return np.where(beyond, np.nan, r), np.where(beyond, np.nan, g)


def bivariate_normal_cdf(h, k, corr) -> np.ndarray:
    """P(X <= h, Y <= k) for standard normals with correlation ``corr`` in (-1, 1), by Owen's T
    function (Owen 1956): exact to float64 round-off, vectorized. h, k may be +-inf."""
    h, k, corr = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (h, k, corr)))
    shape = h.shape
    h, k, corr = (np.ravel(v) for v in (h, k, corr))
    out = np.empty(h.shape)
    s = np.sqrt(1.0 - corr * corr)
    # Infinite limits reduce to one variable.
    inf_h, inf_k = np.isinf(h), np.isinf(k)
    out[inf_h] = np.where(h[inf_h] > 0, _Phi(k[inf_h]), 0.0)
    only_k = inf_k & ~inf_h
    out[only_k] = np.where(k[only_k] > 0, _Phi(h[only_k]), 0.0)
    fin = ~inf_h & ~inf_k
    hf, kf, cf, sf = h[fin], k[fin], corr[fin], s[fin]
    out[fin] = (
        0.5 * (_Phi(hf) + _Phi(kf))
        - _owen_half(hf, kf - cf * hf, sf)
        - _owen_half(kf, hf - cf * kf, sf)
        - np.where((hf * kf < 0) | ((hf * kf == 0) & (hf + kf < 0)), 0.5, 0.0)
    )
    both_zero = fin.copy()
    both_zero[fin] = (hf == 0) & (kf == 0)
    out[both_zero] = 0.25 + np.arcsin(corr[both_zero]) / (2 * np.pi)
    return np.clip(out, 0.0, 1.0).reshape(shape)


def _owen_half(x, num, s):
    """T(x, num / (x s)) with its limit sign(num)/4 at x = 0 (T(0, +-inf) = +-1/4)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = special.owens_t(x, num / (x * s))
    return np.where(x == 0, 0.25 * np.sign(num), t)


def _half_line(upper, a, b):
    """Int_{-inf}^{upper} phi(t) Phi(a + b t) dt = P(T <= upper, Z - b T <= a)."""
    norm = np.sqrt(1.0 + b * b)
    return bivariate_normal_cdf(upper, a / norm, -b / norm)


def accuracy_from_overlaps(kappa, r, g) -> np.ndarray:
    """Held-out accuracy Int Dt Phi([r t + g (kappa - t)_+] / sqrt(r (1 - r))), in closed form.

    Splits the integral at t = kappa: below, the argument is linear in t (support vectors, pushed
    by kappa - t); above, r t / sqrt(r (1 - r)). Each half-line is a bivariate normal
    probability. r = 1 gives 1 (the student is the teacher, which fits every member); r = 0 (an
    empty projection, which the theory pairs with g = 0) gives 1/2.

    Args:
        kappa, r, g: broadcastable arrays (kappa real, 0 <= r <= 1, g >= 0).

    Returns:
        float64 array of the broadcast shape.
    """
    kappa, r, g = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (kappa, r, g)))
    out = np.full(kappa.shape, np.nan)
    nan = np.isnan(kappa) | np.isnan(r) | np.isnan(g)
    one = ~nan & (r >= 1.0)
    zero = ~nan & (r <= 0.0)
    out[one] = 1.0
    out[zero] = 0.5
    mid = ~nan & ~one & ~zero
    k, rr, gg = kappa[mid], r[mid], g[mid]
    s = np.sqrt(rr * (1.0 - rr))
    below = _half_line(k, gg * k / s, (rr - gg) / s)  # t < kappa: support vectors
    b = rr / s
    above = 0.5 - _half_line(k, 0.0, b)  # t > kappa: P(Z <= b T) - P(T <= kappa, Z <= b T)
    out[mid] = below + above
    return out


def predicted_accuracy(alpha, rho) -> np.ndarray:
    """Held-out member accuracy of the pseudo-inverse student of the max-margin teacher.

    1 for rho alpha >= 1 (the student is the teacher); NaN for alpha > 2 (no separating teacher as
    d -> infinity). alpha -> 0 gives 1/2; rho alpha -> 1 gives 1.
    """
    return leakage_prediction(alpha, rho).accuracy


def minnorm_accuracy(alpha, rho) -> np.ndarray:
    """The exact control: held-out accuracy of the pseudo-inverse student of the square-loss
    minimum-norm teacher w = X^+ y.

    For alpha < 1 the teacher interpolates (X w = y), so the student P_S w = X_S^+ y_S depends on
    no held-out label: its expected held-out accuracy is exactly 1/2 at every d (rho alpha <
    alpha < 1, so the student never spans R^d). For alpha >= 1 the teacher is a least-squares fit
    that no longer interpolates: NaN (not covered).
    """
    alpha, rho = np.broadcast_arrays(np.asarray(alpha, float), np.asarray(rho, float))
    _check_rho(rho)
    if np.any(~(alpha > 0)):
        raise ValueError("alpha must be > 0")
    return np.where(alpha < 1.0, 0.5, np.nan)


@dataclass(frozen=True)
class LeakagePrediction:
    """The max-margin theory on a grid: every field has the broadcast shape of (alpha, rho)."""

    alpha: np.ndarray
    rho: np.ndarray
    kappa: np.ndarray  # Gardner's margin (NaN for alpha > 2)
    support_density: np.ndarray  # n_SV / d
    r: np.ndarray  # ||P_S w||^2 / ||w||^2
    g: np.ndarray  # the seen fraction of a held-out support vector's push
    accuracy: np.ndarray  # predicted held-out member accuracy

    def rows(self) -> list[dict]:
        """One dict per grid point: ``{alpha, rho, kappa, support_density, r, g, accuracy}``
        (NaN where the theory does not apply)."""
        names = ("alpha", "rho", "kappa", "support_density", "r", "g", "accuracy")
        flat = [np.ravel(getattr(self, k)) for k in names]
        return [
            {k: float(v[i]) for k, v in zip(names, flat, strict=True)} for i in range(flat[0].size)
        ]


def leakage_prediction(alpha, rho) -> LeakagePrediction:
    """Every quantity of the theory at (alpha, rho) (broadcast): kappa, n_SV / d, r, g and the
    predicted held-out accuracy. alpha > 2: NaN throughout (no max-margin teacher); rho alpha >=
    1: r = g = 1 and accuracy 1."""
    alpha, rho = np.broadcast_arrays(np.asarray(alpha, float), np.asarray(rho, float))
    _check_rho(rho)
    kappa = gardner_kappa(alpha)
    beyond = alpha > ALPHA_SEPARABLE
    kappa = np.where(beyond, np.nan, kappa)
    a = np.where(beyond, np.nan, support_density(alpha, kappa))
    r, g = overlaps(alpha, rho, a)
    acc = accuracy_from_overlaps(kappa, r, g)
    return LeakagePrediction(alpha, rho, kappa, a, r, g, acc)


def _check_rho(rho: np.ndarray) -> None:
    if np.any(~((rho > 0) & (rho < 1))):
        raise ValueError("rho must lie strictly between 0 and 1")
