"""Tests of softleak.compare.privacy against oracles: scipy, exact binomial sums, closed forms,
brute-force definitions and the randomized-response mechanism, whose label-DP epsilon is known.

Stochastic tests take ``global_seed`` and must pass for any seed: each states why its failure
probability is below 1e-6.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from softleak.compare.privacy import (
    auc,
    clopper_pearson_lower,
    clopper_pearson_upper,
    epsilon_lower_bound,
    epsilon_lower_bound_vs_baseline,
    holm,
    label_dp_epsilon,
    precision_at_coverage,
    randomized_response,
    roc_curve,
    tpr_at_fpr,
)

# Failure probability each stochastic assertion is allowed.
TAIL = 1e-7


def p_eps(eps: float, c: int) -> float:
    """The best label-guessing accuracy under eps-label-DP, uniform prior over c classes."""
    return math.exp(eps) / (math.exp(eps) + c - 1)


def binom_count_limit(trials: int, q: float, tail: float = TAIL) -> int:
    """The smallest x with P[Binomial(trials, q) > x] < tail: a count that a Binomial(trials, q') with
    q' <= q exceeds with probability < tail (binomial tails are increasing in q)."""
    x = int(stats.binom.isf(tail, trials, q))
    while stats.binom.sf(x, trials, q) >= tail:
        x += 1
    return x


# ---------------------------------------------------------------------------------------------
# Clopper-Pearson


@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
@pytest.mark.parametrize("n", [1, 7, 40, 333])
def test_clopper_pearson_matches_scipy_exact_interval(n, confidence):
    # The two-sided exact interval at level 2 conf - 1 puts (1 - conf) in each tail, so its ends
    # are the one-sided bounds at conf. scipy finds them with brentq (xtol 2e-12): abs 1e-11.
    for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
        ci = stats.binomtest(k, n).proportion_ci(
            confidence_level=2 * confidence - 1, method="exact"
        )
        assert clopper_pearson_lower(k, n, confidence) == pytest.approx(ci.low, rel=1e-9, abs=1e-11)
        assert clopper_pearson_upper(k, n, confidence) == pytest.approx(
            ci.high, rel=1e-9, abs=1e-11
        )


def test_clopper_pearson_edges_and_order():
    assert clopper_pearson_lower(0, 10, 0.95) == 0.0
    assert clopper_pearson_upper(10, 10, 0.95) == 1.0
    # closed forms at the edges: Beta(n, 1) and Beta(1, n) quantiles
    assert clopper_pearson_lower(10, 10, 0.95) == pytest.approx(0.05 ** (1 / 10))
    assert clopper_pearson_upper(0, 10, 0.95) == pytest.approx(1 - 0.05 ** (1 / 10))
    for k in range(11):
        lo, hi = clopper_pearson_lower(k, 10, 0.9), clopper_pearson_upper(k, 10, 0.9)
        assert 0.0 <= lo <= k / 10 <= hi <= 1.0 and lo < hi
        # the tails at the bounds are exactly 1 - confidence (Beta-binomial identity)
        if k > 0:
            assert stats.binom.sf(k - 1, 10, lo) == pytest.approx(0.1, rel=1e-9)
        if k < 10:
            assert stats.binom.cdf(k, 10, hi) == pytest.approx(0.1, rel=1e-9)


@pytest.mark.parametrize("confidence", [0.9, 0.95])
@pytest.mark.parametrize("n", [10, 50, 200])
@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.9])
def test_clopper_pearson_coverage_exact(n, p, confidence):
    # Exact: sum over all k of Binom(k; n, p) [bound misses p], no sampling.
    pmf = stats.binom.pmf(np.arange(n + 1), n, p)
    miss_lo = sum(pmf[k] for k in range(n + 1) if clopper_pearson_lower(k, n, confidence) > p)
    miss_hi = sum(pmf[k] for k in range(n + 1) if clopper_pearson_upper(k, n, confidence) < p)
    assert miss_lo <= 1 - confidence + 1e-12
    assert miss_hi <= 1 - confidence + 1e-12


@pytest.mark.parametrize(
    "k, n, confidence",
    [
        (-1, 5, 0.9),
        (6, 5, 0.9),
        (0, 0, 0.9),
        (1, 5, 0.0),
        (1, 5, 1.0),
        (1, 5, math.nan),
        (1.5, 5, 0.9),
    ],
)
def test_clopper_pearson_validation(k, n, confidence):
    with pytest.raises(ValueError):
        clopper_pearson_lower(k, n, confidence)
    with pytest.raises(ValueError):
        clopper_pearson_upper(k, n, confidence)


# ---------------------------------------------------------------------------------------------
# label-DP epsilon


@pytest.mark.parametrize("c", [2, 3, 10, 100])
@pytest.mark.parametrize("eps", [0.01, 0.5, 1.0, 2.0, 5.0, 10.0])
def test_label_dp_epsilon_inverts_best_guess(eps, c):
    assert label_dp_epsilon(p_eps(eps, c), c) == pytest.approx(eps, rel=1e-9, abs=1e-12)


def test_label_dp_epsilon_boundaries():
    assert label_dp_epsilon(0.5, 2) == 0.0
    assert label_dp_epsilon(0.1, 10) == 0.0
    assert label_dp_epsilon(0.0, 10) == 0.0
    assert label_dp_epsilon(0.05, 10) == 0.0
    assert label_dp_epsilon(1.0, 2) == math.inf
    assert label_dp_epsilon(1.0, 10) == math.inf
    # closed form: c = 2, p = 3/4 -> ln 3
    assert label_dp_epsilon(0.75, 2) == pytest.approx(math.log(3))
    # strictly increasing above chance
    ps = np.linspace(0.11, 0.99, 50)
    assert np.all(np.diff([label_dp_epsilon(float(p), 10) for p in ps]) > 0)
    for bad in (1, 0, 2.0):
        with pytest.raises(ValueError):
            label_dp_epsilon(0.5, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        label_dp_epsilon(math.nan, 2)


# ---------------------------------------------------------------------------------------------
# The oracle: randomized response is eps-label-DP with best guessing accuracy exactly p_eps.

EPSILONS = [0.5, 1.0, 2.0, 4.0]
CLASSES = [2, 10]


@pytest.mark.parametrize("c", CLASSES)
@pytest.mark.parametrize("eps", EPSILONS)
@pytest.mark.parametrize("trials", [50, 500])
def test_epsilon_lower_bound_validity_exact(eps, c, trials):
    # The adversary guesses the released label: right with probability p_eps, independently, so
    # k ~ Binomial(trials, p_eps). P[bound > eps] computed exactly over all k.
    p = p_eps(eps, c)
    pmf = stats.binom.pmf(np.arange(trials + 1), trials, p)
    over = sum(pmf[k] for k in range(trials + 1) if epsilon_lower_bound(k, trials, c) > eps)
    assert over <= 0.05 + 1e-12
    if trials >= 500:  # not vacuous: the audit does reach eps at about the nominal rate
        assert over > 0.01
    # a weaker release (accuracy below p_eps) is a fortiori within the guarantee
    pmf_weak = stats.binom.pmf(np.arange(trials + 1), trials, (p + 1 / c) / 2)
    over_weak = sum(
        pmf_weak[k] for k in range(trials + 1) if epsilon_lower_bound(k, trials, c) > eps
    )
    assert over_weak <= 0.05 + 1e-12


@pytest.mark.parametrize("c", CLASSES)
@pytest.mark.parametrize("eps", EPSILONS)
def test_epsilon_lower_bound_validity_sampled(eps, c, global_seed):
    rng = np.random.default_rng([global_seed, int(eps * 10), c])
    reps, trials = 200, 400
    violations = 0
    kept_total = 0
    changed_shift = []
    for _ in range(reps):
        labels = rng.integers(0, c, size=trials)
        released = randomized_response(labels, c, eps, rng)
        guess = released  # the best adversary against randomized response
        k = int((guess == labels).sum())
        kept_total += k
        violations += epsilon_lower_bound(k, trials, c) > eps
        changed_shift.append(((released - labels) % c)[released != labels])
    # Each repetition violates with probability <= 0.05 (validity), independently, so violations
    # is dominated by Binomial(200, 0.05); exceeding the limit has probability < 1e-7.
    assert violations <= binom_count_limit(reps, 0.05)
    # The mechanism itself: labels kept ~ Binomial(reps * trials, p_eps) exactly; both tails of
    # the observed count have probability >= 1e-7 except with probability < 2e-7.
    n_all = reps * trials
    assert stats.binom.cdf(kept_total, n_all, p_eps(eps, c)) > TAIL
    assert stats.binom.sf(kept_total - 1, n_all, p_eps(eps, c)) > TAIL
    # replaced labels are uniform over the other c - 1: chi-square p-value > 1e-7 (false alarm
    # probability 1e-7 under the null; the expected count per cell is > 1000 here)
    if c > 2:
        shifts = np.concatenate(changed_shift)
        counts = np.bincount(shifts, minlength=c)[1:]
        assert stats.chisquare(counts).pvalue > TAIL
    else:
        assert np.all(np.concatenate(changed_shift) == 1)


@pytest.mark.parametrize("c", CLASSES)
def test_epsilon_lower_bound_approaches_eps(c):
    eps = 2.0
    p = p_eps(eps, c)
    z = stats.norm.ppf(0.95)
    gaps = []
    for trials in (10**2, 10**3, 10**4, 10**5):
        k = round(trials * p)  # the expected count
        bound = epsilon_lower_bound(k, trials, c)
        assert 0.0 <= bound < eps
        gaps.append(eps - bound)
        if trials >= 10**4:
            # delta method: CP lower ~ p - z sqrt(p(1-p)/n), d eps / dp = 1 / (p (1 - p))
            assert eps - bound == pytest.approx(z / math.sqrt(trials * p * (1 - p)), rel=0.1)
    assert np.all(np.diff(gaps) < 0)
    assert gaps[-1] < 0.05


def test_epsilon_lower_bound_bonferroni():
    for k, n, c in [(90, 100, 2), (700, 1000, 10), (6000, 10000, 2)]:
        one = epsilon_lower_bound(k, n, c, 0.95, tests=1)
        ten = epsilon_lower_bound(k, n, c, 0.95, tests=10)
        assert 0 < ten < one
        # Bonferroni over 10 tests at 0.95 is one test at 1 - 0.05 / 10
        assert ten == pytest.approx(epsilon_lower_bound(k, n, c, 0.995, tests=1), rel=1e-12)
        # closed form through scipy
        lo = stats.beta.ppf(0.005, k, n - k + 1)
        assert ten == pytest.approx(math.log(lo * (c - 1) / (1 - lo)), rel=1e-9)


def test_epsilon_lower_bound_edges_and_validation():
    assert epsilon_lower_bound(0, 100, 2) == 0.0
    assert epsilon_lower_bound(50, 100, 2) == 0.0  # chance
    assert math.isfinite(epsilon_lower_bound(100, 100, 2))  # even all right is a finite bound
    for kwargs in ({"tests": 0}, {"tests": 1.5}, {"confidence": 1.0}, {"confidence": 0.0}):
        with pytest.raises(ValueError):
            epsilon_lower_bound(60, 100, 2, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        epsilon_lower_bound(60, 100, 1)


@pytest.mark.parametrize("c", CLASSES)
def test_label_blind_guessing_gives_zero(c, global_seed):
    trials = 1000
    # exact: a guess independent of the label is right w.p. 1/c; P[bound > 0] <= 0.05
    pmf = stats.binom.pmf(np.arange(trials + 1), trials, 1 / c)
    over = sum(pmf[k] for k in range(trials + 1) if epsilon_lower_bound(k, trials, c) > 0)
    assert over <= 0.05 + 1e-12
    rng = np.random.default_rng([global_seed, c])
    labels = rng.integers(0, c, size=trials)
    guesses = rng.integers(0, c, size=trials)  # ignores the labels
    k = int((guesses == labels).sum())
    # at confidence 1 - 1e-7 the bound is positive with probability <= 1e-7
    assert epsilon_lower_bound(k, trials, c, confidence=1 - 1e-7) == 0.0
    # 200 audits at 0.95: positive bounds ~ dominated by Binomial(200, 0.05)
    reps = 200
    ks = (rng.integers(0, c, size=(reps, trials)) == rng.integers(0, c, size=(reps, trials))).sum(1)
    positive = sum(epsilon_lower_bound(int(k), trials, c) > 0 for k in ks)
    assert positive <= binom_count_limit(reps, 0.05)


def test_randomized_response_basics(global_seed):
    rng = np.random.default_rng(global_seed)
    labels = rng.integers(0, 5, size=(4, 30)).astype(np.int32)
    assert np.array_equal(randomized_response(labels, 5, math.inf, rng), labels)
    out = randomized_response(labels, 5, 1.0, rng)
    assert out.shape == labels.shape and out.dtype.kind == "i"
    assert out is not labels and out.min() >= 0 and out.max() < 5
    before = labels.copy()
    randomized_response(labels, 5, 0.0, rng)
    assert np.array_equal(labels, before)  # input untouched
    # epsilon = 0: the output is uniform whatever the label; P[kept] = 1/c
    assert p_eps(0.0, 5) == pytest.approx(0.2)
    for bad in [dict(c=1, epsilon=1.0), dict(c=5, epsilon=-1.0), dict(c=5, epsilon=math.nan)]:
        with pytest.raises(ValueError):
            randomized_response(labels, rng=rng, **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        randomized_response(np.array([0, 5]), 5, 1.0, rng)
    with pytest.raises(ValueError):
        randomized_response(np.array([0.0, 1.0]), 5, 1.0, rng)


# ---------------------------------------------------------------------------------------------
# heuristic bound against a baseline


def test_vs_baseline_closed_form():
    # independent computation of the documented formula with scipy's Beta quantiles
    for km, nm, kn, nn, tests in [
        (80, 100, 50, 100, 1),
        (990, 1000, 500, 1000, 3),
        (30, 40, 5, 40, 2),
    ]:
        level = 1 - 0.05 / (2 * tests)
        a_lo = stats.beta.ppf(1 - level, km, nm - km + 1)
        b_hi = stats.beta.ppf(level, kn + 1, nn - kn)
        want = max(math.log(a_lo / b_hi), math.log((1 - b_hi) / (1 - a_lo)), 0.0)
        got = epsilon_lower_bound_vs_baseline(km, nm, kn, nn, tests=tests)
        assert got == pytest.approx(want, rel=1e-9)
        assert got > 0


def test_vs_baseline_guards():
    assert epsilon_lower_bound_vs_baseline(0, 50, 0, 50) == 0.0  # a_lo = 0, b_hi < 1
    assert epsilon_lower_bound_vs_baseline(0, 50, 50, 50) == 0.0  # a_lo = 0 and b_hi = 1
    assert epsilon_lower_bound_vs_baseline(50, 50, 50, 50) == 0.0  # b_hi = 1: no evidence
    assert epsilon_lower_bound_vs_baseline(25, 50, 25, 50) == 0.0
    top = epsilon_lower_bound_vs_baseline(50, 50, 0, 50)
    assert math.isfinite(top) and top > 0
    for args in itertools.product([0, 1, 25, 49, 50], repeat=2):
        value = epsilon_lower_bound_vs_baseline(args[0], 50, args[1], 50)
        assert not math.isnan(value) and value >= 0
    # monotone: more member hits, fewer baseline hits -> larger bound
    assert epsilon_lower_bound_vs_baseline(45, 50, 20, 50) >= epsilon_lower_bound_vs_baseline(
        40, 50, 20, 50
    )
    assert epsilon_lower_bound_vs_baseline(45, 50, 10, 50) >= epsilon_lower_bound_vs_baseline(
        45, 50, 20, 50
    )


@pytest.mark.parametrize("c", CLASSES)
@pytest.mark.parametrize("eps", [1.0, 2.0])
def test_vs_baseline_valid_when_baseline_is_the_counterfactual(eps, c):
    # Randomized response: members guessed right w.p. p_eps, a label the release never saw w.p.
    # 1/c; both DP ratios hold. Exact P[bound > eps] over both binomials (pmf < 1e-13 cells, in
    # total < 61 * 61 * 1e-13, left out).
    nm = nn = 60
    pm = stats.binom.pmf(np.arange(nm + 1), nm, p_eps(eps, c))
    pn = stats.binom.pmf(np.arange(nn + 1), nn, 1 / c)
    over = 0.0
    for km in np.flatnonzero(pm > 1e-13):
        for kn in np.flatnonzero(pn > 1e-13):
            if epsilon_lower_bound_vs_baseline(int(km), nm, int(kn), nn) > eps:
                over += pm[km] * pn[kn]
    assert over <= 0.05


# ---------------------------------------------------------------------------------------------
# AUC and ROC


def brute_auc(m: np.ndarray, n: np.ndarray) -> float:
    diff = m[:, None] - n[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def trapezoid(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def test_auc_matches_pairwise_definition_and_scipy(global_seed):
    rng = np.random.default_rng(global_seed)
    for size_m, size_n, high in [(30, 45, 5), (1, 7, 3), (200, 150, 20), (50, 50, 2)]:
        m = rng.integers(0, high, size=size_m).astype(float) + (rng.random() < 0.5)
        n = rng.integers(0, high, size=size_n).astype(float)
        assert auc(m, n) == pytest.approx(brute_auc(m, n), abs=1e-12)
        u = stats.mannwhitneyu(m, n, method="asymptotic").statistic
        assert auc(m, n) == pytest.approx(u / (size_m * size_n), abs=1e-12)
    assert auc([1.0, 2.0], [0.0]) == 1.0
    assert auc([0.0], [1.0, 2.0]) == 0.0
    assert auc([1.0], [1.0]) == 0.5
    assert math.isnan(auc([], [1.0])) and math.isnan(auc([1.0], []))


def test_auc_identical_distributions(global_seed):
    rng = np.random.default_rng(global_seed)
    size = 2000
    m, n = rng.normal(size=size), rng.normal(size=size)
    # Under H0 (continuous, no ties) Var[U / (n_m n_n)] = (n_m + n_n + 1) / (12 n_m n_n); at
    # these sizes U is very nearly normal, and |z| > 6 has probability ~2e-9.
    sd = math.sqrt((2 * size + 1) / (12 * size * size))
    assert abs(auc(m, n) - 0.5) < 6 * sd


def test_roc_curve_shape_and_area(global_seed):
    rng = np.random.default_rng(global_seed)
    for _ in range(5):
        m = rng.integers(0, 8, size=int(rng.integers(1, 60))).astype(float)
        n = rng.integers(0, 8, size=int(rng.integers(1, 60))).astype(float)
        fpr, tpr = roc_curve(m, n)
        assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
        assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
        assert fpr.size == np.unique(np.concatenate([m, n])).size + 1
        assert trapezoid(fpr, tpr) == pytest.approx(auc(m, n), abs=1e-12)
        # each point is the rule "score >= t" at a distinct t, counted directly
        for t, x, y in zip(np.unique(np.concatenate([m, n]))[::-1], fpr[1:], tpr[1:], strict=True):
            assert x == pytest.approx(np.mean(n >= t)) and y == pytest.approx(np.mean(m >= t))
    m, n = rng.normal(1, 1, 300), rng.normal(0, 1, 400)
    fpr, tpr = roc_curve(m, n)
    assert trapezoid(fpr, tpr) == pytest.approx(auc(m, n), abs=1e-12)
    # a full tie is one diagonal step
    fpr, tpr = roc_curve([3.0, 3.0], [3.0])
    assert fpr.tolist() == [0.0, 1.0] and tpr.tolist() == [0.0, 1.0]
    with pytest.raises(ValueError):
        roc_curve([], [1.0])


def test_tpr_at_fpr_hand_case():
    members = [9.5, 8.5, 8.5, 7.0, 3.0]
    nonmembers = [float(s) for s in range(10)]  # 0..9
    # fpr 0.1 allows 1 false positive of 10: t in (8, 9] flags non-member 9 and members 9.5, 8.5,
    # 8.5 -> 3/5; fpr 0.2 (2 FPs, t in (7, 8]) adds no member; fpr 0.3 (t = 7) adds the member
    # that ties non-member 7 -> 4/5, up to fpr 0.6 (t in (3, 4]); fpr 0.7 (t = 3) adds the
    # member at 3 -> 5/5.
    assert tpr_at_fpr(members, nonmembers, 0.1) == pytest.approx(0.6)
    assert tpr_at_fpr(members, nonmembers, 0.15) == pytest.approx(0.6)
    assert tpr_at_fpr(members, nonmembers, 0.2) == pytest.approx(0.6)
    assert tpr_at_fpr(members, nonmembers, 0.3) == pytest.approx(0.8)
    assert tpr_at_fpr(members, nonmembers, 0.6) == pytest.approx(0.8)
    assert tpr_at_fpr(members, nonmembers, 0.7) == pytest.approx(1.0)
    # too few non-members: 0.05 needs ceil(1/0.05) = 20
    assert tpr_at_fpr(members, nonmembers, 0.05) is None
    assert tpr_at_fpr(members, nonmembers, 0.099) is None  # needs 11
    # all non-members tie with all members: a rule flags everybody or nobody
    assert tpr_at_fpr([1.0] * 3, [1.0] * 10, 0.5) == 0.0
    assert tpr_at_fpr([1.0] * 3, [1.0] * 10, 1.0) == 1.0
    # members all above: full TPR at the smallest measurable FPR
    assert tpr_at_fpr([5.0, 6.0], [0.0] * 4 + [1.0] * 6, 0.1) == 1.0
    assert math.isnan(tpr_at_fpr([], nonmembers, 0.5))  # type: ignore[arg-type]
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError):
            tpr_at_fpr(members, nonmembers, bad)


def test_tpr_at_fpr_brute_force_and_monotone(global_seed):
    rng = np.random.default_rng(global_seed)
    m = rng.integers(0, 30, size=80).astype(float) + 3
    n = rng.integers(0, 30, size=120).astype(float)
    thresholds = np.concatenate([np.unique(np.concatenate([m, n])), [np.inf]])
    previous = -1.0
    for fpr in np.linspace(1 / 120, 1.0, 60):
        got = tpr_at_fpr(m, n, float(fpr))
        assert got is not None
        want = max(np.mean(m >= t) for t in thresholds if np.mean(n >= t) <= fpr + 1e-12)
        want_strict = max(np.mean(m > t) for t in thresholds if np.mean(n > t) <= fpr + 1e-12)
        assert got == pytest.approx(want) and got == pytest.approx(want_strict)
        assert got >= previous
        previous = got


# ---------------------------------------------------------------------------------------------
# precision at coverage


def test_precision_at_coverage_hand_cases():
    conf = np.array([0.6, 0.9, 0.7, 0.8])
    right = np.array([False, True, False, True])  # the two most confident are right
    assert precision_at_coverage(conf, right, 0.5) == 1.0
    assert precision_at_coverage(conf, right, 0.75) == pytest.approx(2 / 3)
    assert precision_at_coverage(conf, right, 0.01) == 1.0  # k = max(1, ...) = 1
    assert precision_at_coverage(conf, right, 1.0) == 0.5
    assert precision_at_coverage(conf, right.astype(int), 0.6) == pytest.approx(2 / 3)  # ceil 2.4
    # ties at the cut: stable sort keeps index order
    assert precision_at_coverage(np.array([0.5, 0.5, 0.5]), np.array([0, 1, 1]), 1 / 3) == 0.0
    assert precision_at_coverage(np.array([0.5, 0.5, 0.5]), np.array([1, 0, 0]), 1 / 3) == 1.0
    # coverage 0.3 of 10 is 3 predictions, not ceil(3.0000000000000004) = 4
    conf10 = np.linspace(1.0, 0.1, 10)
    right10 = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0], dtype=bool)
    assert precision_at_coverage(conf10, right10, 0.3) == 1.0
    assert math.isnan(precision_at_coverage(np.array([]), np.array([], dtype=bool), 0.5))
    for bad in (0.0, 1.01, -0.5):
        with pytest.raises(ValueError):
            precision_at_coverage(conf, right, bad)
    with pytest.raises(ValueError):
        precision_at_coverage(conf, right[:3], 0.5)


def test_precision_at_coverage_full_is_accuracy_and_order_free(global_seed):
    rng = np.random.default_rng(global_seed)
    conf = rng.random(101)  # continuous: no ties almost surely, and ties would not matter below
    right = rng.random(101) < conf
    assert precision_at_coverage(conf, right, 1.0) == pytest.approx(right.mean())
    perm = rng.permutation(101)
    for coverage in (0.05, 0.2, 0.5, 0.9):
        k = math.ceil(coverage * 101)
        top = np.sort(conf)[::-1][k - 1]
        # brute force: accuracy among those with confidence >= the k-th largest (exact with no ties)
        if np.sum(conf >= top) == k:
            assert precision_at_coverage(conf, right, coverage) == pytest.approx(
                right[conf >= top].mean()
            )
        assert precision_at_coverage(conf[perm], right[perm], coverage) == pytest.approx(
            precision_at_coverage(conf, right, coverage)
        )


# ---------------------------------------------------------------------------------------------
# Holm


def brute_holm_reject(p: np.ndarray, alpha: float) -> np.ndarray:
    """Step down: walk the sorted p-values, stop at the first p_(j) > alpha / (m - j + 1)."""
    m = p.size
    order = sorted(
        range(m), key=lambda i: (math.isnan(p[i]), p[i] if not math.isnan(p[i]) else 0, i)
    )
    reject = np.zeros(m, dtype=bool)
    for j, i in enumerate(order, start=1):
        if math.isnan(p[i]) or p[i] > alpha / (m - j + 1):
            break
        reject[i] = True
    return reject


def brute_holm_adjusted(p: np.ndarray) -> np.ndarray:
    m = p.size
    order = sorted(range(m), key=lambda i: (p[i], i))
    out = np.empty(m)
    for pos, i in enumerate(order, start=1):
        out[i] = max(min(1.0, (m - j + 1) * p[order[j - 1]]) for j in range(1, pos + 1))
    return out


def test_holm_hand_case():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    adjusted, reject, levels = holm(p, 0.05)
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04 -> running max
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    assert reject.tolist() == [True, False, False, True]
    np.testing.assert_allclose(levels, [0.05 / 3, 0.05 / 1, 0.05 / 2, 0.05 / 4])
    # ties ordered by index: the first of two equal p-values gets the stricter level
    _, _, levels = holm(np.array([0.02, 0.02]), 0.05)
    np.testing.assert_allclose(levels, [0.025, 0.05])


def test_holm_vs_brute_force(global_seed):
    rng = np.random.default_rng(global_seed)
    for m in (1, 2, 5, 20, 50):
        p = rng.random(m) ** 3  # many small p-values
        p[rng.random(m) < 0.2] = 0.01  # and ties
        adjusted, _, levels = holm(p)
        np.testing.assert_allclose(adjusted, brute_holm_adjusted(p), rtol=1e-12)
        for alpha in (0.01, 0.05, 0.2):
            _, reject, _ = holm(p, alpha)
            assert np.array_equal(reject, brute_holm_reject(p, alpha))
            # contains the Bonferroni reject set
            assert np.all(reject[p <= alpha / m])
        ranks = np.empty(m, dtype=int)
        ranks[np.argsort(p, kind="stable")] = np.arange(1, m + 1)
        np.testing.assert_allclose(levels, 0.05 / (m - ranks + 1))


def test_holm_nan_and_empty(global_seed):
    rng = np.random.default_rng(global_seed)
    p = rng.random(12) ** 4
    p[[2, 7]] = np.nan
    adjusted, reject, levels = holm(p, 0.1)
    nan = np.isnan(p)
    assert np.isnan(adjusted[nan]).all() and not reject[nan].any() and np.isnan(levels[nan]).all()
    # NaN counts in m: the others are adjusted as if the NaNs were p = 1 (ranked last)
    filled = np.where(nan, 1.0, p)
    adjusted_filled, reject_filled, _ = holm(filled, 0.1)
    np.testing.assert_allclose(adjusted[~nan], adjusted_filled[~nan])
    assert np.array_equal(reject[~nan], reject_filled[~nan])
    assert np.array_equal(reject, brute_holm_reject(p, 0.1))
    out = holm(np.array([]))
    assert all(a.size == 0 for a in out) and out[1].dtype == bool
    with pytest.raises(ValueError):
        holm(np.array([0.5, 1.5]))
    with pytest.raises(ValueError):
        holm(np.array([0.5]), alpha=0.0)


def test_holm_vs_statsmodels(global_seed):
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    rng = np.random.default_rng(global_seed)
    p = rng.random(30) ** 3
    adjusted, reject, _ = holm(p, 0.05)
    sm_reject, sm_adjusted, _, _ = multitest.multipletests(p, alpha=0.05, method="holm")
    np.testing.assert_allclose(adjusted, sm_adjusted, rtol=1e-12)
    assert np.array_equal(reject, sm_reject)
