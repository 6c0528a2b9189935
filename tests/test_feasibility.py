"""Exact feasibility checks against Cover's counting theorem (Cover 1965) and exact identities."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from softleak.theory import feasibility as feas
from softleak.theory.feasibility import (
    FeasibilityResult,
    available_solvers,
    linearly_separable,
    multiclass_separable,
    random_instance,
    softlabel_consistent,
)

SIGMAS = 4.0
"""Width of the binomial band for empirical separability rates: |k/N - p| <= 4 sd + 1/N (the 1/N
is a continuity correction for p near 0 or 1). A fair check fails ~1e-4 of the time per point."""


def _seed(global_seed: int, *k: int) -> int:
    return int(np.random.SeedSequence([global_seed, *k]).generate_state(1)[0])


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _check_separator(X: np.ndarray, y: np.ndarray, res: FeasibilityResult, bias: bool) -> None:
    s = np.where(y == 1, 1.0, -1.0)
    assert res.w is not None and res.margin is not None
    Xa = np.hstack([X, np.ones((len(X), 1))]) if bias else X
    margins = s * (Xa @ res.w)
    assert np.all(margins > 0)
    norm = np.linalg.norm(res.w[:-1] if bias else res.w)
    assert res.margin == pytest.approx(margins.min() / norm, rel=1e-12)


def test_random_instance(global_seed: int) -> None:
    X, y = random_instance(30, 7, c=3, seed=global_seed)
    assert X.shape == (30, 7) and X.dtype == np.float64 and y.shape == (30,)
    assert np.array_equal(np.bincount(y), [10, 10, 10])
    X2, y2 = random_instance(30, 7, c=3, seed=global_seed)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    with pytest.raises(ValueError):
        random_instance(31, 7, c=2)


def test_available_solvers() -> None:
    names = available_solvers()
    assert names and set(names) <= {"HIGHS", "HIGHS-ipm", "CLARABEL", "SCIPY"}


@pytest.mark.parametrize("n", [30, 36, 40, 44, 50])
def test_separability_rate_matches_cover(global_seed: int, n: int) -> None:
    """Rate over 40 random instances vs P(n, d) = P[Bin(n-1, 1/2) <= d-1], d = 20.

    By the symmetry x -> -x of the Gaussian, every fixed labelling (balanced ones too) is separable
    with Cover's probability.
    """
    d, trials = 20, 40
    p = float(binom.cdf(d - 1, n - 1, 0.5))
    hits = 0
    for k in range(trials):
        X, y = random_instance(n, d, seed=_seed(global_seed, n, k))
        res = linearly_separable(X, y)
        if res.feasible:
            _check_separator(X, y, res, bias=False)
            hits += 1
    band = SIGMAS * np.sqrt(p * (1 - p) / trials) + 1.0 / trials
    assert abs(hits / trials - p) <= band, (hits, trials, p)


@pytest.mark.parametrize("n", [2, 10, 20])
def test_n_le_d_always_separable(global_seed: int, n: int) -> None:
    for k in range(3):
        X, y = random_instance(n, 20, seed=_seed(global_seed, 100 + n, k))
        res = linearly_separable(X, y)
        assert res.feasible and res.status.startswith("optimal")
        assert res.solver in available_solvers()
        _check_separator(X, y, res, bias=False)


def test_bias_equals_homogeneous_in_d_plus_1(global_seed: int) -> None:
    d = 10
    for n in (20, 22, 24, 26):
        for k in range(3):
            X, y = random_instance(n, d, seed=_seed(global_seed, 200 + n, k))
            with_bias = linearly_separable(X, y, bias=True)
            augmented = linearly_separable(np.hstack([X, np.ones((n, 1))]), y)
            assert with_bias.feasible == augmented.feasible
            if with_bias.feasible:
                assert with_bias.w is not None and with_bias.w.shape == (d + 1,)
                _check_separator(X, y, with_bias, bias=True)


def test_labels_pm1_and_01_agree(global_seed: int) -> None:
    X, y = random_instance(40, 20, seed=_seed(global_seed, 300))
    assert linearly_separable(X, y).feasible == linearly_separable(X, 2 * y - 1).feasible
    with pytest.raises(ValueError):
        linearly_separable(X, y + 1)


def test_multiclass_c2_agrees_with_binary(global_seed: int) -> None:
    d = 10
    for n in (16, 20, 24, 28):
        for k in range(3):
            X, y = random_instance(n, d, seed=_seed(global_seed, 400 + n, k))
            binary = linearly_separable(X, y)
            multi = multiclass_separable(X, y, c=2)
            assert binary.feasible == multi.feasible
            if multi.feasible:
                assert multi.w is not None and multi.w.shape == (2, d)
                assert np.all(np.argmax(X @ multi.w.T, axis=1) == y)


@pytest.mark.parametrize("c", [3, 5])
def test_multiclass_extremes(global_seed: int, c: int) -> None:
    d = 10
    # n <= d: X has full row rank, so any logits (one-hot ones included) are reachable.
    X, y = random_instance(c * (d // c), d, c=c, seed=_seed(global_seed, 500 + c))
    res = multiclass_separable(X, y)
    assert res.feasible and res.w is not None and res.margin is not None and res.margin > 0
    assert np.allclose(res.w.sum(axis=0), 0.0, atol=1e-9 * np.abs(res.w).max())
    scores = X @ res.w.T
    assert np.all(np.argmax(scores, axis=1) == y)
    # n = 30 d c samples: far beyond the multiclass capacity (alpha = n/(d c) = 30; P ~ 0).
    X, y = random_instance(30 * d * c, d, c=c, seed=_seed(global_seed, 600 + c))
    assert not multiclass_separable(X, y).feasible


@pytest.mark.parametrize("tau", [0.5, 1.0, 10.0, 100.0])
@pytest.mark.parametrize("m", [12, 40])
def test_soft_labels_of_linear_teacher_are_consistent(global_seed: int, tau: float, m: int) -> None:
    rng = np.random.default_rng(_seed(global_seed, 700, m, int(tau * 10)))
    d, c = 20, 4
    X = rng.standard_normal((m, d))
    W = rng.standard_normal((c, d))
    soft = _softmax(X @ W.T / tau)
    res = softlabel_consistent(X, soft)
    assert res.feasible and res.solver == "lstsq" and res.w is not None
    assert res.w.shape == (c, d)
    # The witness reproduces the observable log-ratios exactly (to rounding) ...
    logs = np.log(soft)
    pred = X @ res.w.T
    ratio_err = (pred - pred[:, :1]) - (logs - logs[:, :1])
    assert np.abs(ratio_err).max() <= 1e-9 * max(1.0, np.abs(logs).max())
    # ... and once m >= d it identifies W / tau up to a common row.
    if m >= d:
        Wc = (W - W.mean(axis=0)) / tau
        np.testing.assert_allclose(res.w, Wc, atol=1e-8 * np.abs(Wc).max())
    # Perturbing one soft label row: inconsistent iff X has more rows than columns.
    soft2 = soft.copy()
    soft2[m // 2] = rng.dirichlet(np.ones(c))
    assert softlabel_consistent(X, soft2).feasible == (m <= d)


def test_soft_label_tolerance_lp(global_seed: int) -> None:
    rng = np.random.default_rng(_seed(global_seed, 800))
    m, d, c = 40, 20, 3
    X = rng.standard_normal((m, d))
    W = rng.standard_normal((c, d))
    soft = _softmax(X @ W.T)
    assert softlabel_consistent(X, soft, tol=1e-6).feasible
    soft[5] = rng.dirichlet(np.ones(c))
    R = np.log(soft[:, 1:]) - np.log(soft[:, :1])  # (m, c-1) observable log-ratios
    V, *_ = np.linalg.lstsq(X, R, rcond=None)
    ls_resid = X @ V - R
    # Rigorous brackets of the min over V of max |X V - R|: the least-squares V is feasible at its
    # own max residual; and no V does better than ||LS residual||_2 / sqrt(#entries).
    upper = float(np.abs(ls_resid).max())
    lower = float(np.linalg.norm(ls_resid) / np.sqrt(ls_resid.size))
    ok = softlabel_consistent(X, soft, tol=upper * 1.001)
    assert ok.feasible and ok.residual is not None and ok.residual <= upper * 1.001 + 1e-6
    assert ok.w is not None and ok.w.shape == (c, d)
    bad = softlabel_consistent(X, soft, tol=0.5 * lower)
    assert not bad.feasible and bad.status in ("infeasible", "infeasible_or_unbounded")


def test_soft_labels_float32_and_zeros(global_seed: int) -> None:
    rng = np.random.default_rng(_seed(global_seed, 900))
    X = rng.standard_normal((30, 10))
    W = rng.standard_normal((3, 10))
    soft = _softmax(X @ W.T / 2.0).astype(np.float32)
    assert softlabel_consistent(X, soft).feasible  # float32 rounding tolerance applies
    soft64 = soft.astype(np.float64)
    soft64[0, 1] = 0.0
    res = softlabel_consistent(X, soft64)
    assert not res.feasible and res.status == "zero probability"
    with pytest.raises(ValueError):
        softlabel_consistent(X, -soft64)


class _StubProblem:
    """Plays back a script of solver outcomes (a status, or an exception to raise)."""

    def __init__(self, script: list[object]) -> None:
        self.script = list(script)
        self.status = "unset"

    def solve(self, **_: object) -> None:
        outcome = self.script.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        self.status = outcome


def _decide(script: list[object], verified: bool = True):
    w = np.ones(3)
    return feas._decide(_StubProblem(script), lambda: w, lambda _: verified, None)  # type: ignore[arg-type]


def test_status_mapping_is_explicit() -> None:
    n_backends = len(available_solvers())
    # "unknown" and solver errors are never answers: the next backend decides.
    if n_backends >= 3:
        ok, name, status, _ = _decide(["unknown", ValueError("no solution"), "infeasible"])
        assert not ok and status == "infeasible" and name == available_solvers()[2]
    # An optimal status whose point fails verification is not read as feasible.
    with pytest.raises(RuntimeError):
        _decide(["optimal"] * n_backends, verified=False)
    # Nothing decided -> RuntimeError, never a guess.
    with pytest.raises(RuntimeError):
        _decide(["optimal_inaccurate"] * n_backends, verified=False)
    with pytest.raises(RuntimeError):
        _decide(["user_limit"] * n_backends)
    # A verified point from an inaccurate solve is still a proof when nothing better comes.
    ok, _, status, w = _decide(["optimal_inaccurate"] + ["unknown"] * (n_backends - 1))
    assert ok and w is not None and "verified" in status
    ok, _, _, _ = _decide(["infeasible_or_unbounded"])  # zero objective: cannot be unbounded
    assert not ok
