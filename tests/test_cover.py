"""Cover's function counting (Cover 1965): exact integers, limit identities and high-precision oracles."""

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from softleak.theory import cover

# Relative tolerance for float64 results against exact or 40-digit references: the computation is a
# handful of log/exp/lgamma evaluations and a continued fraction, each good to a few ulps, so 1e-12
# leaves ~4 orders of margin. The huge-size cases use RTOL_HUGE (see there).
RTOL = 1e-12
# At n = 1e7 the Stirling/Loader prefactor is exact to a few ulps of the terms it sums; near the
# centre the value comes from Boost's ibeta whose documented error at such sizes is a few hundred
# ulps. 1e-10 relative on log P covers both with margin.
RTOL_HUGE = 1e-10


def _exact_p(n: int, d: int, bias: bool = False) -> Fraction:
    return Fraction(cover.cover_count_exact(n, d, bias), 2**n)


def _mp_log_p(n: int, d: int, dps: int = 40):
    """ln P[Bin(n-1, 1/2) <= d-1] in mpmath: the largest term of the smaller tail from 40-digit
    log-gammas, times the sum of the term ratios (a method independent of the one under test)."""
    with mpmath.workdps(dps):
        m, k = n - 1, d - 1
        if k >= m:
            return mpmath.mpf(0)
        lower = 2 * k < m
        top = k if lower else m - k - 1  # the upper tail of Bin(m, 1/2) is the mirrored lower tail
        log_term = (
            mpmath.loggamma(m + 1)
            - mpmath.loggamma(top + 1)
            - mpmath.loggamma(m - top + 1)
            - m * mpmath.log(2)
        )
        total, term, j = mpmath.mpf(1), mpmath.mpf(1), top
        eps = mpmath.mpf(10) ** (-dps + 5)
        while j > 0:
            term *= mpmath.mpf(j) / (m - j + 1)
            total += term
            if term < eps * total:
                break
            j -= 1
        log_tail = log_term + mpmath.log(total)
        return log_tail if lower else mpmath.log1p(-mpmath.exp(log_tail))


# ------------------------------------------------------------------------------------------------
# exact integers


def test_cover_count_small_table():
    # Hand-computable values: C(n, 1) = 2 (only the all-one / all-other labelings through the origin),
    # C(n, 2) = 2n (lines through the origin in the plane), C(10, 3) = 2 (1 + 9 + 36) = 92.
    assert [cover.cover_count_exact(n, 1) for n in range(1, 6)] == [2] * 5
    assert [cover.cover_count_exact(n, 2) for n in range(2, 8)] == [2 * n for n in range(2, 8)]
    assert cover.cover_count_exact(10, 3) == 92
    assert cover.cover_count_exact(10, 2, bias=True) == 92  # bias: d -> d + 1


@pytest.mark.parametrize("d", [1, 2, 5, 17])
def test_cover_count_is_all_dichotomies_for_n_le_d(d):
    for n in range(0, d + 1):
        assert cover.cover_count_exact(n, d) == 2**n
        assert cover.p_separable(n, d) == 1.0
        assert cover.log_p_separable(n, d) == 0.0


def test_cover_recursion():
    # Cover's recursion C(n + 1, d) = C(n, d) + C(n, d - 1) (adding a point), exact integers.
    for d in range(2, 12):
        for n in range(1, 40):
            assert cover.cover_count_exact(n + 1, d) == cover.cover_count_exact(
                n, d
            ) + cover.cover_count_exact(n, d - 1)


@pytest.mark.parametrize("d", [1, 2, 3, 7, 50, 301])
def test_half_at_twice_d_exact_integers(d):
    assert _exact_p(2 * d, d) == Fraction(1, 2)
    assert _exact_p(2 * d + 2, d, bias=True) == Fraction(1, 2)


@pytest.mark.parametrize("d", [1, 2, 3, 10, 999, 12345, 10**6, 10**7])
def test_half_at_twice_d_float(d):
    assert cover.p_separable(2 * d, d) == 0.5
    assert cover.log_p_separable(2 * d, d) == -math.log(2)
    assert cover.p_separable(2 * d + 2, d, bias=True) == 0.5
    assert cover.alpha_half(d) == 2.0
    assert cover.alpha_half(d, bias=True) == 2.0 * (d + 1) / d
    # alpha_half is the root of the continuous extension too.
    assert cover.alpha_at_p(d, 0.5) == 2.0


def test_log_cover_count_matches_big_int():
    ns = np.arange(1, 120)
    for d in [1, 2, 3, 10, 40, 77]:
        got = cover.log_cover_count(ns, d)
        want = np.array([math.log(cover.cover_count_exact(int(n), d)) for n in ns])
        np.testing.assert_allclose(got, want, rtol=RTOL)


def test_p_matches_big_int_including_deep_tails():
    # Exact fractions where P spans 1 .. 1e-578 and 1 - P spans 1 .. below 1e-324: checks both
    # tails and the switch between scipy and the log-space continued fraction.
    cases = [(60, 7), (400, 3), (2000, 10), (900, 30), (900, 700), (1200, 1100), (3000, 1500)]
    for n, d in cases + [(3000, 2400), (3000, 2600)]:
        exact = _exact_p(n, d)
        if exact <= Fraction(1, 2):  # lower tail: log of the exact fraction, via big-int logs
            want = math.log(exact.numerator) - math.log(exact.denominator)
        else:  # upper tail: log1p of the correctly rounded 1 - P (tiny negative numbers near P = 1)
            want = math.log1p(-float(1 - exact))
        np.testing.assert_allclose(cover.log_p_separable(n, d), want, rtol=RTOL)
        np.testing.assert_allclose(cover.p_separable(n, d), float(exact), rtol=RTOL)


def test_broadcast_shapes_and_scalars():
    out = cover.log_p_separable(np.arange(1, 8)[:, None], np.arange(1, 4))
    assert out.shape == (7, 3)
    assert np.ndim(cover.p_separable(10, 3)) == 0
    assert np.all(out[0] == 0.0)  # n = 1 <= d: P = 1
    np.testing.assert_allclose(out[6], [cover.log_p_separable(7, d) for d in (1, 2, 3)], rtol=0)


# ------------------------------------------------------------------------------------------------
# huge sizes against a 40-digit independent computation


@pytest.mark.parametrize("d", [10**3, 4 * 10**6, 5 * 10**6 - 10**4, 5 * 10**6 + 10**4, 6 * 10**6])
def test_log10_p_huge_against_mpmath(d):
    n = 10**7
    want = _mp_log_p(n, d) / mpmath.log(10)
    got = cover.log10_p_separable(n, d)
    assert np.isfinite(got)
    if float(want) == 0.0:  # d = 6e6: 1 - P ~ 1e-87451 underflows in float64: log P is -0.0
        assert got == 0.0
    else:
        np.testing.assert_allclose(got, float(want), rtol=RTOL_HUGE)
    if d == 10**3:
        assert -3.1e6 < got < -2.9e6  # finite, not -inf, although P itself underflows
        assert cover.p_separable(n, d) == 0.0


def test_log_p_tiny_negative_when_one_minus_p_is_1e_minus_300():
    # n = 3000, d = 2480: 1 - P ~ 4e-305 (computed exactly from big integers); log P = log1p(-Q)
    # must be that tiny negative number, not 0.
    n, d = 3000, 2480
    q = 1 - _exact_p(n, d)
    want = -float(q)  # Fraction -> float is correctly rounded
    got = cover.log_p_separable(n, d)
    assert got < 0.0
    np.testing.assert_allclose(got, want, rtol=RTOL)
    assert 1e-310 < -got < 1e-300


def test_continued_fraction_agrees_with_scipy_where_both_apply():
    # Independent methods: Boost's ibeta (scipy) vs the Loader-prefactor continued fraction.
    for s in [40.0, 1e3, 1e5]:
        for frac in [0.5, 0.52, 0.6, 0.8, 0.97]:
            a, b = s * frac, s * (1 - frac)
            ref = special.betainc(a, b, 0.5)
            if ref > 1e-300:
                got = cover._log_betainc_half_cf(a, b)
                np.testing.assert_allclose(got, np.log(ref), rtol=RTOL, atol=1e-13)


# ------------------------------------------------------------------------------------------------
# properties


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 10**6), d=st.integers(1, 10**6), bias=st.booleans())
def test_p_decreasing_in_n_increasing_in_d(n, d, bias):
    lp = cover.log_p_separable(n, d, bias)
    assert cover.log_p_separable(n + 1, d, bias) <= lp
    assert cover.log_p_separable(n, d + 1, bias) >= lp
    assert lp <= 0.0
    assert np.isfinite(lp)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 400), d=st.integers(1, 60))
def test_p_is_probability_and_count_consistent(n, d):
    p = cover.p_separable(n, d)
    assert 0.0 < p <= 1.0
    exact = _exact_p(n, d)
    np.testing.assert_allclose(p, float(exact), rtol=RTOL)


def test_continuous_extension_interpolates_integers():
    # The continuous extension I_{1/2}(n - d, d) is monotone between consecutive integer n.
    d = 50
    grid = np.linspace(60, 140, 801)
    lp = cover.log_p_separable(grid, d)
    assert np.all(np.diff(lp) < 0)
    np.testing.assert_allclose(cover.log_p_separable(np.arange(60, 141), d), lp[::10], rtol=RTOL)


def test_normal_approximation_within_001_at_d_1000():
    # Berry-Esseen with the continuity correction: the error is O(1/n) at d = 1000, well below 0.01.
    d = 1000
    ns = np.arange(1700, 2301, 5)
    err = np.abs(cover.p_separable_normal(ns, d) - cover.p_separable(ns, d))
    assert err.max() < 0.01
    assert cover.p_separable_normal(2 * d, d) == 0.5
    assert cover.p_separable_normal(1, 1) == 1.0


def test_alpha_at_p_inverts_p():
    for d in [5, 100, 2000]:
        for p in [1e-200, 1e-6, 0.1, 0.5, 0.9, 1 - 1e-9]:
            alpha = cover.alpha_at_p(d, p)
            np.testing.assert_allclose(cover.p_separable(alpha * d, d), p, rtol=1e-9)
    for p in [0.1, 0.9]:  # bias: P(n, d + 1) at the returned n = alpha d
        alpha = cover.alpha_at_p(30, p, bias=True)
        np.testing.assert_allclose(cover.p_separable(alpha * 30, 31), p, rtol=1e-9)


def test_transition_width_constant():
    # Large-d: width = 2 sqrt(2) z_0.9 / sqrt(d) with z_0.9 = Phi^-1(0.9); corrections are O(1/d)
    # (the O(1/sqrt d) skewness terms cancel; measured ~0.17/d relative), so 1e-4 relative at
    # d = 1e4 has a 5x margin.
    const = 2 * math.sqrt(2) * special.ndtri(0.9)
    assert abs(const - 3.6249) < 1e-3
    d = 10**4
    np.testing.assert_allclose(cover.transition_width(d) * math.sqrt(d), const, rtol=1e-4)
    # The ends are where they should be.
    d = 400
    a_lo, a_hi = cover.alpha_at_p(d, 0.9), cover.alpha_at_p(d, 0.1)
    np.testing.assert_allclose(cover.transition_width(d), a_hi - a_lo, rtol=1e-12)


def test_bad_inputs():
    with pytest.raises(ValueError):
        cover.cover_count_exact(5, 0)
    with pytest.raises(ValueError):
        cover.log_p_separable(-1, 3)
    with pytest.raises(ValueError):
        cover.log_p_separable(3, 0)
    with pytest.raises(ValueError):
        cover.alpha_at_p(10, 1.0)
    with pytest.raises(ValueError):
        cover.transition_width(10, lower=0.9, upper=0.1)
    assert cover.cover_count_exact(3, 0, bias=True) == cover.cover_count_exact(3, 1)


@pytest.mark.parametrize("n", [1e17, 5e100, 5e200, 1e300])
@pytest.mark.parametrize("d", [1, 5, 1e7])
def test_astronomical_n_stays_finite_without_warnings(n, d):
    """Far in the tail (n >> d) Cover's sum is its last term: log P = -(n - 1) ln 2 +
    ln binom(n - 1, d - 1) (1 + O(d/n)), here ln Gamma(n)/Gamma(n - d + 1) ~ (d - 1) ln(n - d)
    to O(d^2/n). The log-space path must give that (it overflowed to NaN from n ~ 1e154), with no
    floating-point warning, and P = 0 (underflow), never NaN."""
    import warnings

    exact = -(n - 1) * math.log(2.0) + (d - 1) * math.log(n - d) - special.gammaln(d)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log_p = float(cover.log_p_separable(n, d))
        p = float(cover.p_separable(n, d))
    assert log_p == pytest.approx(exact, rel=1e-12)
    assert p == 0.0


def test_sizes_beyond_the_domain_are_one_line_errors():
    for n, d in ((1.01e300, 5), (10**400, 5), (5, 10**400), (5, 2e300)):
        with pytest.raises(ValueError, match="at most"):
            cover.log_p_separable(n, d)
    with pytest.raises(ValueError, match="at most"):
        cover.alpha_half(10**400)
    with pytest.raises(ValueError, match="at most"):
        cover.transition_width(1e301)


def test_the_large_d_closed_form_continues_the_bisection():
    """From d = LARGE_D on, alpha_at_p and transition_width use the normal approximation in
    closed form: at the switch it agrees with the bisection to its 1e-14 resolution, and for
    d -> infinity the width is 2 sqrt(2) z_0.9 / sqrt(d) (it used to be stuck at ~1.5e-14, the
    bisection's resolution, for every d above ~1e28)."""
    below = cover.LARGE_D * (1 - 1e-9)
    for p in (0.1, 0.9, 1e-30):
        assert cover.alpha_at_p(cover.LARGE_D, p) == pytest.approx(
            cover.alpha_at_p(below, p), abs=2e-14
        )
    const = 2 * math.sqrt(2) * special.ndtri(0.9)
    for d in (1e20, 1e100, 1e300):
        assert cover.transition_width(d) * math.sqrt(d) == pytest.approx(const, rel=1e-12)
