"""Cover's function-counting theorem: how many dichotomies of n points a linear classifier realizes.

Cover (1965), "Geometrical and statistical properties of systems of linear inequalities with
applications in pattern recognition", IEEE Trans. Electron. Comput. EC-14(3), Theorem 1: n points in
general position in R^d admit

    C(n, d) = 2 * sum_{k=0}^{d-1} binom(n - 1, k)

dichotomies realizable by a homogeneous linear threshold function sign(w . x) (no bias). A random
dichotomy (labels i.i.d. fair coins) is therefore linearly separable with probability

    P(n, d) = C(n, d) / 2^n = P[Bin(n - 1, 1/2) <= d - 1] = I_{1/2}(n - d, d),

where I_x(a, b) is the regularized incomplete beta function (the binomial-CDF identity
P[Bin(m, p) <= k] = I_{1-p}(m - k, k + 1) with m = n - 1, k = d - 1, p = 1/2). The right-hand side is
smooth in n and d, which gives the continuous extension in n used for the threshold ``alpha = n/d`` at
a given probability and for the transition width. P = 1 exactly for n <= d and P(2d, d) = 1/2 exactly
(by the symmetry of Bin(2d - 1, 1/2)), so in the proportional limit n, d -> infinity the teacher's
memorization capacity of the paper (section 5.1) is alpha_label^T = n/d = 2.

With ``bias=True`` the classifier is sign(w . x + b): an affine classifier in R^d is a homogeneous one
in R^{d+1} (append a constant 1), so d is replaced by d + 1 everywhere.

Numerics. All functions broadcast ``n`` and ``d`` (integers or reals) like numpy and stay exact to a
few ulps up to n, d ~ 1e7 and beyond: the smaller of the two tails P and Q = 1 - P is evaluated with
``scipy.special.betainc`` (Boost's ibeta, accurate to relative precision) where it is above 1e-250,
and otherwise in log space: the prefactor x^a (1-x)^b / B(a, b) from Stirling's series with Loader's
(2000) deviance form (no cancellation between huge log-gammas), times Lentz's continued fraction for
the incomplete beta. ``log P`` is then ``log(P)`` in the lower tail and ``log1p(-Q)`` in the upper tail,
so it is accurate both when P is astronomically small (n = 1e7, d = 1e3: log10 P ~ -3e6) and when it
is astronomically close to 1 (log P ~ -1e-300 is returned as that tiny negative number, not 0).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "alpha_at_p",
    "alpha_half",
    "cover_count_exact",
    "log10_p_separable",
    "log_cover_count",
    "log_p_separable",
    "p_separable",
    "p_separable_normal",
    "transition_width",
]

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)
_HALF_LN_2PI = 0.5 * math.log(2.0 * math.pi)

# Below this value the scipy tail is replaced by the log-space continued fraction. Boost's ibeta is
# accurate to relative precision down to underflow; 1e-250 keeps a wide margin above the subnormal
# range (~1e-308), where relative accuracy is lost.
_SCIPY_FLOOR = 1e-250
# Convergence of Lentz's method: relative change of the continued fraction below ~ 1 ulp.
_CF_EPS = 2.0 * np.finfo(np.float64).eps
_CF_TINY = 1e-300
_CF_MAXIT = 1_000_000

#: The largest n and d accepted (a ValueError beyond): the log-space evaluation forms sums such as
#: a + (a + b)/2 that overflow float64 near its maximum ~1.8e308.
MAX_SIZE = 1e300

#: From this d_eff on, ``alpha_at_p`` and ``transition_width`` use the normal approximation in
#: closed form: its O(1/d) error is below the bisection's 1e-14 resolution in alpha, which alone
#: could not resolve a width of 3.6 / sqrt(d) < 1e-7 from differences of two alphas near 2.
LARGE_D = 1e14


def _special():
    """scipy.special, imported on first use: importing it costs ~0.4 s, which the closed forms that
    need no special function (``alpha_half``, and through it ``softleak theory thresholds``) skip."""
    from scipy import special

    return special


# --------------------------------------------------------------------------------------------------
# exact integers


def _effective_d(d: int, bias: bool) -> int:
    return d + 1 if bias else d


def cover_count_exact(n: int, d: int, bias: bool = False) -> int:
    """Cover's count C(n, d) = 2 * sum_{k<d} binom(n-1, k) as an exact Python integer (Cover 1965).

    Args:
        n: number of points, n >= 0 (C(0, d) = 1: the empty dichotomy).
        d: input dimension, d >= 1 (d >= 0 with ``bias``).
        bias: affine classifier sign(w . x + b): d -> d + 1.

    Returns:
        The number of dichotomies of n points in general position realizable by a (homogeneous, or
        affine with ``bias``) linear classifier; equals 2**n for n <= d.
    """
    n, d = int(n), int(d)
    de = _effective_d(d, bias)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if de < 1:
        raise ValueError(f"d must be >= 1 (>= 0 with bias), got {d}")
    if n <= de:
        return 1 << n
    m = n - 1
    total, term = 0, 1  # term = binom(m, k)
    for k in range(de):
        total += term
        term = term * (m - k) // (k + 1)
    return 2 * total


# --------------------------------------------------------------------------------------------------
# log-space incomplete beta (private; exercised directly by the tests as an independent method)


def _stirling_correction(z: np.ndarray) -> np.ndarray:
    """delta(z) = ln Gamma(z) - [(z - 1/2) ln z - z + ln sqrt(2 pi)] for z > 0 (elementwise)."""
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    big = z >= 15.0
    zb = z[big]
    inv = 1.0 / zb
    inv2 = inv * inv
    # Stirling series; the first omitted term 691/(360360 z^11) is < 1e-16 at z = 15.
    out[big] = inv * (
        1.0 / 12.0
        - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 * (1.0 / 1680.0 - inv2 / 1188.0)))
    )
    zs = z[~big]
    out[~big] = _special().gammaln(zs) - ((zs - 0.5) * np.log(zs) - zs + _HALF_LN_2PI)
    return out


def _bd0(k: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Loader's deviance term k ln(k/mu) + mu - k >= 0, without cancellation (elementwise)."""
    k = np.asarray(k, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    out = np.empty(np.broadcast(k, mu).shape)
    k, mu = np.broadcast_arrays(k, mu)
    close = np.abs(k - mu) < 0.1 * (k + mu)
    # Direct formula where k/mu is far from 1 (no cancellation there).
    kf, mf = k[~close], mu[~close]
    with np.errstate(divide="ignore", invalid="ignore"):
        out[~close] = np.where(kf > 0, kf * np.log(kf / mf), 0.0) + mf - kf
    # Series in v = (k - mu)/(k + mu), |v| < 0.1: 2 k sum_j v^(2j+1)/(2j+1) - (k - mu) v ... (Loader).
    kc, mc = k[close], mu[close]
    v = (kc - mc) / (kc + mc)
    s = (kc - mc) * v
    ej = 2.0 * kc * v
    v2 = v * v
    for j in range(1, 40):  # v2 < 0.01: 17 terms reach 1e-34 relative; stop early when flat
        ej = ej * v2
        s_new = s + ej / (2 * j + 1)
        if np.all(s_new == s):
            break
        s = s_new
    out[close] = s
    return out


def _log_beta_prefactor_half(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ln[ (1/2)^(a+b) / B(a, b) ] for a, b > 0 without cancellation (Loader 2000 / Stirling).

    Uses Gamma(z) = sqrt(2 pi) z^(z-1/2) e^(-z) e^delta(z):
    ln[x^a y^b Gamma(a+b)/(Gamma(a) Gamma(b))] = -(bd0(a, x s) + bd0(b, y s))
    + (1/2) ln(a b / (2 pi s)) + delta(s) - delta(a) - delta(b), with s = a + b and x = y = 1/2.
    """
    s = a + b
    return (
        -(_bd0(a, 0.5 * s) + _bd0(b, 0.5 * s))
        + 0.5 * (np.log(a) + np.log(b) - np.log(2.0 * np.pi * s))  # a b alone may overflow
        + _stirling_correction(s)
        - _stirling_correction(a)
        - _stirling_correction(b)
    )


def _log_betainc_half_cf(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """ln I_{1/2}(a, b) in log space, for a >= b > 0 (elementwise), by Lentz's continued fraction.

    I_x(a, b) = x^a (1-x)^b / (a B(a, b)) * CF(a, b, x), with the classical continued fraction
    (Numerical Recipes 6.4) that converges for x < (a + 1)/(a + b + 2), which holds at x = 1/2 when
    a >= b. Number of iterations ~ O(sqrt(a + b)) near a = b, a handful far in the tail.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a, b = np.broadcast_arrays(a, b)
    shape = a.shape
    a = a.ravel().copy()
    b = b.ravel().copy()
    x = 0.5
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = np.ones_like(a)
    dd = 1.0 - qab * x / qap
    dd = np.where(np.abs(dd) < _CF_TINY, _CF_TINY, dd)
    dd = 1.0 / dd
    log_h = np.log(np.abs(dd))  # the fraction is positive; keep its log to avoid overflow
    active = np.arange(a.size)
    for m in range(1, _CF_MAXIT + 1):
        if active.size == 0:
            break
        aa_, bb_, qab_, qap_, qam_ = a[active], b[active], qab[active], qap[active], qam[active]
        c_, d_ = c[active], dd[active]
        m2 = 2.0 * m
        # products of ratios: a and b up to ~1e308 never overflow (a * a would from ~1e154)
        coef = (m / (qam_ + m2)) * ((bb_ - m) / (aa_ + m2)) * x
        d_ = 1.0 + coef * d_
        d_ = np.where(np.abs(d_) < _CF_TINY, _CF_TINY, d_)
        c_ = 1.0 + coef / c_
        c_ = np.where(np.abs(c_) < _CF_TINY, _CF_TINY, c_)
        d_ = 1.0 / d_
        step = d_ * c_
        coef = -((aa_ + m) / (aa_ + m2)) * ((qab_ + m) / (qap_ + m2)) * x
        d_ = 1.0 + coef * d_
        d_ = np.where(np.abs(d_) < _CF_TINY, _CF_TINY, d_)
        c_ = 1.0 + coef / c_
        c_ = np.where(np.abs(c_) < _CF_TINY, _CF_TINY, c_)
        d_ = 1.0 / d_
        delta = d_ * c_
        log_h[active] += np.log(step * delta)
        c[active], dd[active] = c_, d_
        active = active[np.abs(delta - 1.0) >= _CF_EPS]
    else:  # pragma: no cover - only for arguments far outside the documented range
        raise ArithmeticError("incomplete-beta continued fraction did not converge")
    out = _log_beta_prefactor_half(a, b) - np.log(a) + log_h
    return out.reshape(shape)


def _floats(value: ArrayLike, name: str) -> np.ndarray:
    """``value`` as float64, checked to lie in the domain ``[0, MAX_SIZE]`` (one-line ValueError)."""
    try:
        out = np.asarray(value, dtype=np.float64)
    except OverflowError:  # a Python integer beyond float64
        raise ValueError(f"{name} must be at most {MAX_SIZE:g}") from None
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} must be finite")
    if np.any(out > MAX_SIZE):
        raise ValueError(f"{name} must be at most {MAX_SIZE:g}, got {float(np.max(out)):g}")
    return out


def _log_tail_pair(n: ArrayLike, d: ArrayLike, bias: bool) -> tuple[np.ndarray, np.ndarray]:
    """(ln P, P) for P = I_{1/2}(n - d_eff, d_eff), broadcast over n and d."""
    n = _floats(n, "n")
    d = _floats(d, "d")
    if np.any(n < 0):
        raise ValueError("n must be >= 0")
    de = d + 1.0 if bias else d
    if np.any(de < 1):
        raise ValueError("d must be >= 1 (>= 0 with bias)")
    n, de = np.broadcast_arrays(n, de)
    log_p = np.zeros(n.shape)
    p = np.ones(n.shape)
    live = n > de  # P = 1 exactly for n <= d
    if not np.any(live):
        return log_p, p
    nn, dl = n[live], de[live]
    a = nn - dl  # I_{1/2}(a, b): P = I(a, b) with a = n - d, b = d; Q = 1 - P = I(b, a)
    lower = a >= dl  # P <= 1/2 (n >= 2d): P itself is the small tail
    big, small = np.where(lower, a, dl), np.where(lower, dl, a)
    tail = _special().betainc(big, small, 0.5)  # the smaller of P and Q, >= 0
    log_tail = np.empty_like(tail)
    ok = tail >= _SCIPY_FLOOR
    log_tail[ok] = np.log(tail[ok])
    if np.any(~ok):
        log_tail[~ok] = _log_betainc_half_cf(big[~ok], small[~ok])
        tail[~ok] = np.exp(log_tail[~ok])
    lp = np.where(lower, log_tail, np.log1p(-tail))
    pv = np.where(lower, tail, 1.0 - tail)
    # I_{1/2}(b, b) = 1/2 exactly by symmetry (n = 2 d_eff); betainc is off by a few ulps there.
    mid = a == dl
    lp[mid], pv[mid] = -_LN2, 0.5
    log_p[live] = lp
    p[live] = pv
    return log_p, p


def _out(x: np.ndarray) -> np.ndarray:
    return x[()] if x.ndim == 0 else x


# --------------------------------------------------------------------------------------------------
# public probability functions


def log_p_separable(n: ArrayLike, d: ArrayLike, bias: bool = False) -> np.ndarray:
    """Natural log of Cover's separability probability P(n, d) = I_{1/2}(n - d, d) (Cover 1965).

    Args:
        n: number of points, any real >= 0 (continuous extension), shape broadcastable with d.
        d: input dimension, real >= 1 (>= 0 with ``bias``).
        bias: affine classifier: d -> d + 1.

    Returns:
        ln P with the broadcast shape of (n, d) (a numpy scalar for scalar inputs); 0 for n <= d,
        finite (never -inf) however small P is, and ``log1p(-Q)`` (tiny negative) when P ~ 1.
    """
    return _out(_log_tail_pair(n, d, bias)[0])


def log10_p_separable(n: ArrayLike, d: ArrayLike, bias: bool = False) -> np.ndarray:
    """log10 of Cover's separability probability P(n, d) (Cover 1965); see ``log_p_separable``.

    Example: n = 1e7, d = 1e3 gives about -3.0e6 (a finite number; P itself underflows to 0).
    """
    return _out(_log_tail_pair(n, d, bias)[0] / _LN10)


def p_separable(n: ArrayLike, d: ArrayLike, bias: bool = False) -> np.ndarray:
    """Probability that n random points with random labels in R^d are linearly separable.

    P(n, d) = C(n, d) / 2^n = P[Bin(n-1, 1/2) <= d-1] = I_{1/2}(n - d, d) (Cover 1965, Theorem 1).
    Exact to a few ulps in relative terms (underflows to 0 only below ~1e-308; use
    ``log_p_separable`` there). Shapes broadcast; 1 exactly for n <= d; 1/2 exactly at n = 2d.
    """
    return _out(_log_tail_pair(n, d, bias)[1])


def log_cover_count(n: ArrayLike, d: ArrayLike, bias: bool = False) -> np.ndarray:
    """Natural log of Cover's count C(n, d) = 2 sum_{k<d} binom(n-1, k) = 2^n P(n, d) (Cover 1965).

    Vectorized over broadcast (n, d); equals n ln 2 for n <= d. Never overflows (C itself has
    ~3e6 digits at n = 1e7).
    """
    log_p, _ = _log_tail_pair(n, d, bias)
    n_arr = np.broadcast_to(np.asarray(n, dtype=np.float64), log_p.shape)
    return _out(log_p + n_arr * _LN2)


def p_separable_normal(n: ArrayLike, d: ArrayLike, bias: bool = False) -> np.ndarray:
    """Normal (de Moivre-Laplace) approximation of Cover's P(n, d): Phi((2 d - n) / sqrt(n - 1)).

    Bin(n - 1, 1/2) has mean (n - 1)/2 and standard deviation sqrt(n - 1)/2; with the continuity
    correction P[Bin <= d - 1] ~ Phi((d - 1/2 - (n - 1)/2) / (sqrt(n - 1)/2)) = Phi((2d - n)/sqrt(n-1)),
    which is exactly 1/2 at n = 2d like the exact P. Error O(1/sqrt(n)) (Berry-Esseen). Shapes
    broadcast; n = 1 gives 1.
    """
    n = np.asarray(n, dtype=np.float64)
    d = np.asarray(d, dtype=np.float64)
    de = d + 1.0 if bias else d
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (2.0 * de - n) / np.sqrt(n - 1.0)
    z = np.where(n <= 1.0, np.inf, z)
    return _out(np.asarray(_special().ndtr(z)))


# --------------------------------------------------------------------------------------------------
# thresholds in alpha = n/d


def alpha_half(d: float, bias: bool = False) -> float:
    """alpha = n/d at which P(n, d) = 1/2 (Cover 1965): exactly 2, or 2 (d + 1)/d with ``bias``.

    P(2 d_eff, d_eff) = P[Bin(2 d_eff - 1, 1/2) <= d_eff - 1] = 1/2 by the symmetry of a binomial
    with an odd number of fair trials (and I_{1/2}(b, b) = 1/2 for the continuous extension), so the
    root is n = 2 d_eff exactly, with d_eff = d (+ 1 with bias). ``alpha`` is measured in n/d with
    the input dimension d, not d_eff.
    """
    d = float(_floats(d, "d"))
    if not d > 0:
        raise ValueError(f"d must be a finite number > 0, got {d}")
    return 2.0 * (d + 1.0) / d if bias else 2.0


def alpha_at_p(d: float, p: float, bias: bool = False) -> float:
    """alpha = n/d at which Cover's P(n, d) = p, using the continuous extension I_{1/2}(n - d, d).

    P decreases strictly from 1 (n -> d_eff) to 0 (n -> infinity), so the root is unique; it is found
    by bisection on ln P (robust for p down to ~1e-300 and beyond) to relative precision 1e-14 in n.

    Args:
        d: input dimension (> 0; >= 1 without bias).
        p: target probability, 0 < p < 1.
        bias: affine classifier (d -> d + 1 in P; alpha still n/d).
    """
    d = float(_floats(d, "d"))
    p = float(p)
    if not d > 0:
        raise ValueError(f"d must be a finite number > 0, got {d}")
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie strictly between 0 and 1, got {p}")
    de = d + 1.0 if bias else d
    if de < 1:
        raise ValueError(f"d must be >= 1 (>= 0 with bias), got {d}")
    if p == 0.5:
        return alpha_half(d, bias)
    if de >= LARGE_D:
        return (2.0 + _normal_offset(de, _normal_z(p))) * de / d
    target = math.log(p)

    def f(n: float) -> float:
        return float(_log_tail_pair(n, d, bias)[0]) - target  # decreasing in n

    lo, hi = de, 2.0 * de  # f(lo) = -ln p > 0
    while f(hi) > 0:
        lo, hi = hi, 2.0 * hi
    for _ in range(400):
        mid = 0.5 * (lo + hi)
        if hi - lo <= 1e-14 * hi or mid in (lo, hi):
            break
        if f(mid) > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi) / d


def transition_width(d: float, lower: float = 0.1, upper: float = 0.9, bias: bool = False) -> float:
    """Width in alpha = n/d of Cover's transition: alpha(P = lower) - alpha(P = upper) > 0.

    Uses the continuous-n extension (``alpha_at_p``). Large-d constant: P ~ Phi((2 - alpha)
    sqrt(d / alpha)) near alpha = 2 (normal approximation with n = alpha d), so P = 1 - q and P = q
    sit at alpha ~ 2 -/+ z_{1-q} sqrt(2/d) and the width is 2 sqrt(2) z_{1-q} / sqrt(d); for the
    default 10%-90% width, z_{0.9} = 1.2816 gives ~ 3.625 / sqrt(d) (the O(1/sqrt(d)) skewness
    corrections cancel between the two ends, leaving O(1/d)).

    Args:
        d: input dimension.
        lower, upper: the two probabilities, 0 < lower < upper < 1.
        bias: affine classifier.
    """
    if not 0.0 < lower < upper < 1.0:
        raise ValueError(f"need 0 < lower < upper < 1, got lower={lower}, upper={upper}")
    d = float(_floats(d, "d"))
    de = d + 1.0 if bias else d
    if de >= LARGE_D:  # closed form: no difference of two numbers near 2
        offsets = _normal_offset(de, _normal_z(lower)) - _normal_offset(de, _normal_z(upper))
        return offsets * de / d
    return alpha_at_p(d, lower, bias) - alpha_at_p(d, upper, bias)


def _normal_z(p: float) -> float:
    """z with Phi(z) = p (the normal quantile)."""
    return float(_special().ndtri(p))


def _normal_offset(d_eff: float, z: float) -> float:
    """alpha - 2 where the normal approximation Phi((2 - alpha) sqrt(d/alpha)) equals Phi(z):
    with e = 1/sqrt(d) and u = sqrt(alpha), u^2 + z e u - 2 = 0, so alpha - 2 =
    z^2 e^2 / 2 - (z e / 2) sqrt(8 + z^2 e^2) (no cancellation for small e)."""
    e = 1.0 / math.sqrt(d_eff)
    return 0.5 * z * z * e * e - 0.5 * z * e * math.sqrt(8.0 + z * z * e * e)
