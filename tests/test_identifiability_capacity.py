"""Identifiability thresholds, softmax float limits and the capacity bounds built on them."""

import dataclasses
import math

import numpy as np
import pytest

from softleak.theory import capacity, cover, identifiability

# Relative margin around a float limit when probing it numerically: the gap is rescaled by 1 -/+ 1e-3,
# which moves exp(-gap/tau) by >= 1.6% (gap/tau >= 16 here), far more than the few-ulp rounding of
# exp and of the division gap/tau in the tested dtype, and far less than the distance to any other
# rounding boundary.
GAP_MARGIN = 1e-3
# Absolute error allowed on a pseudo-inverse recovery of a unit-scale weight vector (see its test).
RECOVERY_ATOL = 1e-6


# ------------------------------------------------------------------------------------------------
# alpha_id


def test_alpha_scale():
    assert identifiability.alpha_scale(2) == "n/d"
    assert identifiability.alpha_scale(2, single_logit=True) == "n/d"
    assert identifiability.alpha_scale(2, single_logit=False) == "n/(d c)"
    assert identifiability.alpha_scale(10) == "n/(d c)"
    with pytest.raises(ValueError):
        identifiability.alpha_scale(3, single_logit=True)


@pytest.mark.parametrize("rho", [0.05, 0.5, 0.8, 0.95])
def test_alpha_id_values(rho):
    assert identifiability.alpha_id(rho) == pytest.approx(1 / rho, rel=1e-15)
    assert identifiability.alpha_id(rho, 2, single_logit=False) == pytest.approx(1 / (2 * rho))
    for c in [3, 10, 100]:
        assert identifiability.alpha_id(rho, c) == pytest.approx(1 / (rho * c), rel=1e-15)
        # Same condition rho n >= d in every scale: convert n/(d c) -> n/d.
        assert identifiability.alpha_id(rho, c) * c == pytest.approx(1 / rho, rel=1e-15)


def test_alpha_id_vectorized_and_edges():
    rho = np.array([0.1, 0.25, 0.5])
    np.testing.assert_allclose(identifiability.alpha_id(rho), 1 / rho, rtol=1e-15)
    assert isinstance(identifiability.alpha_id(0.5), float)
    assert identifiability.alpha_id(1 - 2**-53) > 1.0  # just below 1: threshold just above n = d
    assert np.isfinite(identifiability.alpha_id(1e-300))
    for bad in [0.0, 1.0, -0.1, 1.5, math.nan]:
        with pytest.raises(ValueError, match="rho"):
            identifiability.alpha_id(bad)
    with pytest.raises(ValueError, match="rho"):
        identifiability.alpha_id(np.array([0.5, 1.0]))
    for bad_c in [1, 0, -3, 2.5, True]:
        with pytest.raises(ValueError, match="classes"):
            identifiability.alpha_id(0.5, bad_c)


def test_alpha_id_is_rank_condition(global_seed):
    # Oracle: alpha_id is where a Gaussian (rho n, d) design first has full column rank d, i.e. where
    # the least-squares student recovers w exactly from logits (Phuong & Lampert 2019). Gaussian
    # matrices have full rank with probability 1, so this holds for any seed.
    rng = np.random.default_rng(global_seed)
    d, rho = 40, 0.8
    w = rng.standard_normal(d)
    for n in range(40, 60):
        m = math.floor(round(rho * n, 9))  # student samples (the reference's per-class floor)
        beyond = n / d >= identifiability.alpha_id(rho) * (1 - 1e-12)
        assert beyond == (m >= d)
        X = rng.standard_normal((m, d))
        w_hat = np.linalg.pinv(X) @ (X @ w)
        assert (np.linalg.matrix_rank(X) == d) == beyond
        # Recovery error is cond(X) * 1e-16 when identifiable (cond of a 40 x 40 Gaussian exceeds
        # 1e9 with probability ~1e-7), and ~ sqrt(1 - m/d) |w| >> 1e-6 when not.
        assert np.allclose(w_hat, w, rtol=0, atol=RECOVERY_ATOL) == beyond


def test_softmax_shift_invariance_reduces_both_sides():
    # c logits through a softmax: W -> W + 1 u^T leaves every soft label unchanged, so the observable
    # parameters are (c - 1) d: the rank of the soft-label Jacobian in W is (c - 1) * rank(X).
    rng = np.random.default_rng(1)
    c, d, m = 4, 5, 9
    X = rng.standard_normal((m, d))
    W = rng.standard_normal((c, d))
    u = rng.standard_normal(d)

    def soft(W):
        z = X @ W.T
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    np.testing.assert_allclose(soft(W + u[None, :]), soft(W), rtol=0, atol=1e-15)
    h = 1e-6
    J = np.stack(
        [
            (soft(W + h * E) - soft(W - h * E)).ravel() / (2 * h)
            for E in np.eye(c * d).reshape(-1, c, d)
        ],
        axis=1,
    )
    assert np.linalg.matrix_rank(J, tol=1e-6) == (c - 1) * d  # m >= d here


# ------------------------------------------------------------------------------------------------
# softmax float limits


def _stable_softmax2(gap: float, tau: float, dtype) -> np.ndarray:
    z = np.array([gap, 0.0], dtype=dtype) / dtype(tau)
    e = np.exp(z - z.max())
    return e / e.sum()


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("tau", [0.5, 1.0, 20.0])
def test_softmax_limits_numerically(dtype, tau):
    lim = identifiability.softmax_limits(tau, dtype)
    assert lim.tau == tau and lim.dtype == dtype
    assert 0 < lim.gap_saturate < lim.gap_underflow
    dt = np.dtype(dtype).type
    below = _stable_softmax2(lim.gap_saturate * (1 - GAP_MARGIN), tau, dt)
    above = _stable_softmax2(lim.gap_saturate * (1 + GAP_MARGIN), tau, dt)
    assert below[0] < 1 and above[0] == 1 and above[1] > 0
    below = _stable_softmax2(lim.gap_underflow * (1 - GAP_MARGIN), tau, dt)
    above = _stable_softmax2(lim.gap_underflow * (1 + GAP_MARGIN), tau, dt)
    assert below[1] > 0 and above[1] == 0 and above[0] == 1  # one-hot: a hard label


def test_softmax_limits_closed_forms():
    lim = identifiability.softmax_limits(1.0, "float32")
    assert lim.gap_saturate == pytest.approx(24 * math.log(2))  # ln(2/eps) = 24 ln 2
    assert lim.gap_underflow == pytest.approx(150 * math.log(2))  # ln(2 / 2^-149)
    assert identifiability.softmax_limits(1.0, "float64").gap_underflow == pytest.approx(
        1075 * math.log(2)
    )
    ftz = identifiability.softmax_limits(2.0, "float32", subnormals=False)
    assert ftz.gap_underflow == pytest.approx(2.0 * 126 * math.log(2))  # flush below 2^-126
    assert identifiability.softmax_limits(10.0).gap_saturate == pytest.approx(10 * lim.gap_saturate)
    with pytest.raises(dataclasses.FrozenInstanceError):
        lim.tau = 2.0  # type: ignore[misc]
    for bad in [0.0, -1.0, math.inf]:
        with pytest.raises(ValueError):
            identifiability.softmax_limits(bad)
    with pytest.raises(ValueError):
        identifiability.softmax_limits(1.0, "int32")


# ------------------------------------------------------------------------------------------------
# capacity bounds


def test_bound_provenance_is_checked():
    with pytest.raises(ValueError):
        capacity.Bound(1.0, "guess", "x", "y")


def test_alpha_label_T_binary():
    b = capacity.alpha_label_T()
    assert (b.value, b.provenance) == (2.0, "asymptotic")
    b = capacity.alpha_label_T(2, d=1600)
    assert (b.value, b.provenance) == (2.0, "exact")
    assert cover.p_separable(b.value * 1600, 1600) == 0.5
    b = capacity.alpha_label_T(2, d=100, bias=True)
    assert b.value == pytest.approx(2 * 101 / 100)
    assert cover.p_separable(b.value * 100, 100, bias=True) == 0.5
    # Two logits through a softmax: the same problem in alpha = n/(d c).
    assert capacity.alpha_label_T(2, single_logit=False).value == 1.0
    assert capacity.alpha_label_T(2, d=50, single_logit=False).value == 1.0


def test_alpha_label_T_multiclass_heuristic():
    for c in [3, 10, 50]:
        b = capacity.alpha_label_T(c)
        assert b.provenance == "heuristic"
        assert b.value == pytest.approx(1 / (2 * math.log(c)))
        # Below the 2-samples-per-parameter counting bound 2 ln 2 (c - 1)/(c ln c).
        assert b.value < 2 * math.log(2) * (c - 1) / (c * math.log(c))
        assert "0.92" in b.note


def test_alpha_id_bound():
    b = capacity.alpha_id_bound(0.8)
    assert (b.value, b.provenance) == (pytest.approx(1.25), "exact")
    assert capacity.alpha_id_bound(0.55, 10).value == pytest.approx(1 / 5.5)
    with pytest.raises(ValueError):
        capacity.alpha_id_bound(1.2)


def test_mlp_param_count():
    assert capacity.mlp_param_count(1000, 500, 100) == 1000 * 500 + 500 + 500 * 100 + 100
    assert capacity.mlp_param_count(2, [150], 3, bias=True) == 2 * 150 + 150 + 150 * 3 + 3
    assert capacity.mlp_param_count(10, [4, 3], 2, bias=False) == 40 + 12 + 6
    assert capacity.mlp_param_count(7, (), 5, bias=False) == 35  # linear
    with pytest.raises(ValueError):
        capacity.mlp_param_count(10, [0], 2)


def test_mlp_bounds_reduce_to_linear_results():
    # A "MLP" without hidden layers is the linear model: Cover's 2d and the identifiability rho n = d.
    for d in [5, 100]:
        assert capacity.mlp_memorization_n(d, (), 2, bias=False).value == 2 * d
        assert capacity.mlp_memorization_n(d, (), 2, bias=True).value == 2 * (d + 1)
        for c in [2, 3, 10]:
            b = capacity.mlp_identifiability_rho_n(d, (), c, bias=False)
            assert b.value == pytest.approx(d) and b.provenance == "heuristic"
            assert capacity.mlp_identifiability_rho_n(d, (), c, bias=True).value == pytest.approx(
                d + 1
            )
        # Multiclass memorization uses the linear large-c heuristic with #params = d c.
        for c in [3, 10]:
            n = capacity.mlp_memorization_n(d, (), c, bias=False).value
            assert n / (d * c) == pytest.approx(capacity.alpha_label_T(c).value)


def test_mlp_bounds_reference_sizes():
    p = capacity.mlp_param_count(1000, 500, 100)
    b = capacity.mlp_memorization_n(1000, 500, 100)
    assert b.value == pytest.approx(p / (2 * math.log(100)))
    r = capacity.mlp_identifiability_rho_n(1000, 500, 100)
    assert r.value == pytest.approx((p - 501) / 99)
