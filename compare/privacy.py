"""Privacy-audit statistics for the leakage of a teacher's held-out memorized labels.

The leakage audit asks how much a student, distilled from a teacher's soft labels, reveals the
labels of the teacher's *members* (training points the student never saw). This module states the
answer in the terms the privacy community uses: a lower bound on the epsilon of label differential
privacy, membership-inference ROC statistics, and the multiple-testing correction for looking at
several such numbers. Every function is pure; imports numpy and scipy only.

**Exact binomial bounds.** :func:`clopper_pearson_lower` / :func:`clopper_pearson_upper` are the
one-sided exact bounds of Clopper and Pearson (1934) on a binomial proportion from ``k`` successes
in ``n`` trials: the ``1 - confidence`` quantile of Beta(k, n - k + 1) and the ``confidence``
quantile of Beta(k + 1, n - k). For every true p, P_p[lower > p] <= 1 - confidence and
P_p[upper < p] <= 1 - confidence (the Beta-binomial tail identity).

**Label-DP epsilon from guessing accuracy.** A randomized release M of a labelled data set is
eps-label-DP (Ghazi et al. 2021) when changing one label changes the probability of any output
set by at most a factor e^eps. If a member's label L is uniform over c classes and an adversary
guesses g(Y) from the output Y, then for every output y, P(y | l) >= e^-eps P(y | g(y)) for all l,
so sum_l P(y | l) >= P(y | g(y)) (1 + (c - 1) e^-eps) and

    P[g(Y) = L] = (1/c) sum_y P(y | g(y)) <= e^eps / (e^eps + c - 1) =: p_eps,

attained by randomized response (Warner 1965; :func:`randomized_response`). Inverting,
an adversary right with probability p forces eps >= ln(p (c - 1) / (1 - p)) (:func:`label_dp_epsilon`).

**Auditing.** With ``trials`` members whose labels are i.i.d. uniform, the argument of Steinke,
Nasr and Jagielski (2023, "Privacy auditing with one (1) training run") applies although all
members share one release: conditioned on the release and the other members' labels, each label
is still within a factor e^eps of uniform, so each guess is right with conditional probability
<= p_eps and the number right is stochastically dominated by Binomial(trials, p_eps). Hence the
Clopper-Pearson lower bound on the accuracy, mapped through :func:`label_dp_epsilon`, is a valid
lower confidence bound on eps (:func:`epsilon_lower_bound`; Bonferroni over the ``tests`` audits
looked at). :func:`epsilon_lower_bound_vs_baseline` instead compares member accuracy with the
accuracy on non-members; that bound is a heuristic (see its docstring).

**Membership-inference statistics.** :func:`auc` is the Mann-Whitney (1947) statistic
U / (n_m n_n), the probability that a random member outscores a random non-member (ties 1/2);
:func:`roc_curve` is the empirical ROC curve, whose trapezoid area is :func:`auc`;
:func:`tpr_at_fpr` is the true-positive rate at a low false-positive rate, the figure
Carlini et al. (2022, "Membership inference attacks from first principles") recommend reporting.
:func:`precision_at_coverage` is the accuracy of a model's most confident predictions (the
selective-prediction risk-coverage curve, Geifman and El-Yaniv 2017).

**Two-sided intervals.** :func:`wilson_interval` is Wilson's (1927) score interval on a
proportion, the building block of Newcombe's (1998) interval for a difference of two
proportions that the audit's leakage interval uses (``compare.audit_summary``).

**Multiple testing.** :func:`holm` is Holm's (1979) step-down procedure, which controls the
family-wise error rate at alpha under any dependence and rejects everything Bonferroni rejects.

References: C. J. Clopper, E. S. Pearson, Biometrika 26 (1934); E. B. Wilson, JASA 22 (1927);
R. G. Newcombe, Stat. Med. 17 (1998) 873-890; S. L. Warner, JASA 60 (1965);
H. B. Mann, D. R. Whitney, Ann. Math. Stat. 18 (1947); S. Holm, Scand. J. Stat. 6 (1979);
B. Ghazi, N. Golowich, R. Kumar, P. Manurangsi, C. Zhang, "Deep learning with label differential
privacy", NeurIPS 2021; T. Steinke, M. Nasr, M. Jagielski, "Privacy auditing with one (1)
training run", NeurIPS 2023; N. Carlini, S. Chien, M. Nasr, S. Song, A. Terzis, F. Tramer,
"Membership inference attacks from first principles", IEEE S&P 2022; Y. Geifman, R. El-Yaniv,
"Selective classification for deep neural networks", NeurIPS 2017.
"""

from __future__ import annotations

import logging
import math
import numbers

import numpy as np
from scipy import stats

log = logging.getLogger(__name__)

__all__ = [
    "auc",
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "epsilon_lower_bound",
    "epsilon_lower_bound_vs_baseline",
    "holm",
    "label_dp_epsilon",
    "precision_at_coverage",
    "randomized_response",
    "roc_curve",
    "tpr_at_fpr",
    "wilson_interval",
]

# Slack for ceil(x * n) and ceil(1 / x) so that e.g. 0.3 * 10 = 3.0000000000000004 counts as 3.
_CEIL_SLACK = 1e-9


def _is_int(x: object) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _check_binomial(k: int, n: int, confidence: float) -> None:
    if not (_is_int(k) and _is_int(n) and n >= 1 and 0 <= k <= n):
        raise ValueError(f"need integers 0 <= k <= n and n >= 1, got k={k!r}, n={n!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")


def _audit_level(confidence: float, tests: int, bounds_per_test: int) -> float:
    """The per-bound confidence of a Bonferroni correction over ``tests * bounds_per_test`` bounds."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    if not (_is_int(tests) and tests >= 1):
        raise ValueError(f"tests must be an integer >= 1, got {tests!r}")
    return 1.0 - (1.0 - confidence) / (tests * bounds_per_test)


def clopper_pearson_lower(k: int, n: int, confidence: float) -> float:
    """One-sided exact lower confidence bound on a binomial proportion (Clopper-Pearson).

    The ``1 - confidence`` quantile of Beta(k, n - k + 1); 0.0 when ``k == 0``. For every true p,
    P[bound > p] <= 1 - confidence. Raises ValueError unless 0 <= k <= n, n >= 1 (integers) and
    0 < confidence < 1.
    """
    _check_binomial(k, n, confidence)
    if k == 0:
        return 0.0
    return float(stats.beta.ppf(1.0 - confidence, k, n - k + 1))


def clopper_pearson_upper(k: int, n: int, confidence: float) -> float:
    """One-sided exact upper confidence bound on a binomial proportion (Clopper-Pearson).

    The ``confidence`` quantile of Beta(k + 1, n - k); 1.0 when ``k == n``. For every true p,
    P[bound < p] <= 1 - confidence. Same validation as :func:`clopper_pearson_lower`.
    """
    _check_binomial(k, n, confidence)
    if k == n:
        return 1.0
    return float(stats.beta.ppf(confidence, k + 1, n - k))


def wilson_interval(successes: float, trials: float, confidence: float) -> tuple[float, float]:
    """Two-sided Wilson (1927) score interval on a binomial proportion.

    The set of p whose score test does not reject ``successes / trials`` at ``1 - confidence``:
    ``(p_hat + z^2/2n -+ z sqrt(p_hat (1 - p_hat)/n + z^2/4n^2)) / (1 + z^2/n)`` with
    ``z = Phi^-1((1 + confidence)/2)``. Unlike the Wald interval it keeps a width at p_hat = 0
    or 1 (0/1 at 95%: [0, 0.79]), which is what a proportion from a handful of trials needs.
    ``successes`` may be fractional (a mean accuracy times its trials); ``confidence`` 0 gives
    the point ``successes / trials`` (a p-value search starts there). Raises ValueError unless
    0 <= successes <= trials, trials > 0 and 0 <= confidence < 1.
    """
    successes, trials = float(successes), float(trials)
    if not (trials > 0 and 0.0 <= successes <= trials and math.isfinite(trials)):
        raise ValueError(f"need 0 <= successes <= trials, trials > 0; got {successes}, {trials}")
    if not 0.0 <= confidence < 1.0:
        raise ValueError(f"confidence must lie in [0, 1), got {confidence!r}")
    from scipy import special

    z = float(special.ndtri(0.5 + confidence / 2.0))  # stats.norm.ppf, ~50x faster
    p_hat = successes / trials
    z2n = z * z / trials
    center = (p_hat + z2n / 2.0) / (1.0 + z2n)
    half = z * math.sqrt(p_hat * (1.0 - p_hat) / trials + z2n / (4.0 * trials)) / (1.0 + z2n)
    return max(center - half, 0.0), min(center + half, 1.0)


def label_dp_epsilon(p: float, c: int) -> float:
    """The smallest epsilon of an eps-label-DP release that lets an adversary guess a member's label
    with probability ``p`` when the label is uniform over ``c`` classes.

    Under eps-label-DP the best guessing probability is e^eps / (e^eps + c - 1) (module docstring),
    so eps = ln(p (c - 1) / (1 - p)). Returns 0.0 when p <= 1/c (chance needs no leakage, and
    values below 0 are read as 0) and math.inf when p >= 1. Raises ValueError when c is not an
    integer >= 2 or p is NaN.
    """
    if not (_is_int(c) and c >= 2):
        raise ValueError(f"c (the number of classes) must be an integer >= 2, got {c!r}")
    p = float(p)
    if math.isnan(p):
        raise ValueError("p is NaN")
    if p <= 1.0 / c:
        return 0.0
    if p >= 1.0:
        return math.inf
    # ln p + ln(c - 1) - ln(1 - p), with log1p for accuracy near p = 1
    return max(0.0, math.log(p) + math.log(c - 1) - math.log1p(-p))


def epsilon_lower_bound(
    correct: int, trials: int, c: int, confidence: float = 0.95, tests: int = 1
) -> float:
    """Audited lower bound on label-DP epsilon from ``correct`` right guesses among ``trials``.

    The guesses are of held-out members' labels, made from the release, with the labels i.i.d.
    uniform over ``c`` classes; the count right is then dominated by Binomial(trials, p_eps) even
    though all members share one release (Steinke, Nasr and Jagielski 2023; module docstring).
    The bound is :func:`label_dp_epsilon` of the Clopper-Pearson lower bound on the accuracy at
    level ``1 - (1 - confidence) / tests`` (Bonferroni over the ``tests`` audits looked at); 0.0
    when that lower bound does not exceed chance. Guarantee: if the release is eps-label-DP,
    P[bound > eps] <= (1 - confidence) / tests.

    Not valid when labels are not uniform or not independent of the inputs the adversary sees
    (a prior better than chance is then mistaken for leakage).
    """
    level = _audit_level(confidence, tests, 1)
    lower = clopper_pearson_lower(correct, trials, level)
    return label_dp_epsilon(lower, c)


def _log_ratio(numerator: float, denominator: float) -> float:
    """ln(numerator / denominator) clipped below at 0; 0 when numerator <= 0, inf when only the
    denominator is <= 0. Never NaN."""
    if numerator <= 0.0:
        return 0.0
    if denominator <= 0.0:
        return math.inf
    return max(0.0, math.log(numerator) - math.log(denominator))


def epsilon_lower_bound_vs_baseline(
    member_correct: int,
    member_trials: int,
    nonmember_correct: int,
    nonmember_trials: int,
    confidence: float = 0.95,
    tests: int = 1,
) -> float:
    """HEURISTIC lower bound on label-DP epsilon from member accuracy against non-member accuracy.

    With a = the accuracy on members and b = the accuracy on non-members standing in for "the same
    guess had the member's label not been used", the DP inequality P[E | used] <= e^eps P[E | not
    used], applied to E = "right" and to its complement "wrong", gives

        eps >= max(ln(a / b), ln((1 - b) / (1 - a)), 0).

    Both terms grow with a and fall with b, so the conservative plug-in is a_lo (Clopper-Pearson
    lower bound on a) and b_hi (upper bound on b):
    ``max(ln(a_lo / b_hi), ln((1 - b_hi) / (1 - a_lo)), 0)``; each bound at level
    ``1 - (1 - confidence) / (2 * tests)`` (Bonferroni over the 2 * tests one-sided bounds), so if
    b were the right counterfactual the bound would exceed the true eps with probability at most
    (1 - confidence) / tests. A term whose numerator is 0 contributes 0; one whose denominator is
    0 (and numerator > 0) is inf; never NaN.

    Why it is only a heuristic: the right counterfactual is the accuracy on the *same* points when
    their labels were not used, i.e. how predictable those labels are from the inputs alone. The
    non-member accuracy underestimates that predictability whenever members' labels are easier
    to infer from their inputs than non-members' are (members resemble the training data more,
    near-duplicates, a different label distribution), so a_lo / b_hi overstates the ratio the
    release itself causes: the bound is optimistic (too large) and carries no guarantee. It also
    tests only the direction "members guessed better".
    """
    level = _audit_level(confidence, tests, 2)
    a_lo = clopper_pearson_lower(member_correct, member_trials, level)
    b_hi = clopper_pearson_upper(nonmember_correct, nonmember_trials, level)
    right = _log_ratio(a_lo, b_hi)
    wrong = _log_ratio(1.0 - b_hi, 1.0 - a_lo)
    return max(right, wrong, 0.0)


def randomized_response(
    labels: np.ndarray, c: int, epsilon: float, rng: np.random.Generator
) -> np.ndarray:
    """The eps-label-DP randomized-response mechanism on labels in ``0..c-1``.

    Each label is kept with probability e^eps / (e^eps + c - 1), else replaced by one of the other
    c - 1 labels uniformly at random, independently per label; epsilon = inf keeps every label
    (and draws nothing). Returns a new int64 array of the same shape. Raises ValueError for
    c < 2, epsilon < 0 or NaN, non-integer labels or labels outside 0..c-1.
    """
    if not (_is_int(c) and c >= 2):
        raise ValueError(f"c (the number of classes) must be an integer >= 2, got {c!r}")
    epsilon = float(epsilon)
    if math.isnan(epsilon) or epsilon < 0.0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon!r}")
    arr = np.asarray(labels)
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got dtype {arr.dtype}")
    out = arr.astype(np.int64, copy=True)
    if out.size and (out.min() < 0 or out.max() >= c):
        raise ValueError(f"labels must lie in 0..{c - 1}")
    if epsilon == math.inf or out.size == 0:
        return out
    keep_prob = 1.0 / (1.0 + (c - 1) * math.exp(-epsilon))  # e^eps / (e^eps + c - 1), no overflow
    flip = rng.random(out.shape) >= keep_prob
    shift = rng.integers(1, c, size=int(flip.sum()))  # 1..c-1: uniform over the other labels
    out[flip] = (out[flip] + shift) % c
    return out


def _scores(member_scores, nonmember_scores) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(member_scores, dtype=float).ravel()
    n = np.asarray(nonmember_scores, dtype=float).ravel()
    if np.isnan(m).any() or np.isnan(n).any():
        raise ValueError("scores contain NaN")
    return m, n


def auc(member_scores, nonmember_scores) -> float:
    """Area under the ROC curve of telling members (positives) from non-members by score.

    The Mann-Whitney statistic U / (n_m n_n): the fraction of (member, non-member) pairs in which
    the member scores higher, ties counted 1/2; computed from mid-ranks of the pooled scores in
    O(n log n). NaN when either group is empty; ValueError for NaN scores.
    """
    m, n = _scores(member_scores, nonmember_scores)
    if m.size == 0 or n.size == 0:
        return math.nan
    ranks = stats.rankdata(np.concatenate([m, n]))  # mid-ranks: ties get the average rank
    u = float(ranks[: m.size].sum()) - m.size * (m.size + 1) / 2.0
    return u / (m.size * n.size)


def roc_curve(member_scores, nonmember_scores) -> tuple[np.ndarray, np.ndarray]:
    """The empirical ROC curve (fpr, tpr) of the rules "score >= t" for members.

    One point per distinct pooled score t, in decreasing t, preceded by (0, 0) (t = +inf): so the
    curve runs from (0, 0) to (1, 1), both coordinates non-decreasing, and a tie between members
    and non-members is one diagonal step (as sklearn's ``roc_curve`` with
    ``drop_intermediate=False``). Its trapezoid area equals :func:`auc`. Raises ValueError when
    either group is empty or a score is NaN.
    """
    m, n = _scores(member_scores, nonmember_scores)
    if m.size == 0 or n.size == 0:
        raise ValueError("roc_curve needs at least one member and one non-member score")
    thresholds = np.unique(np.concatenate([m, n]))[::-1]
    m_sorted, n_sorted = np.sort(m), np.sort(n)
    # number of scores >= t: size minus the number strictly below t
    tp = m.size - np.searchsorted(m_sorted, thresholds, side="left")
    fp = n.size - np.searchsorted(n_sorted, thresholds, side="left")
    tpr = np.concatenate([[0.0], tp / m.size])
    fpr = np.concatenate([[0.0], fp / n.size])
    return fpr, tpr


def tpr_at_fpr(member_scores, nonmember_scores, fpr: float) -> float | None:
    """The largest true-positive rate of a threshold rule whose empirical false-positive rate is at
    most ``fpr``, as reported in membership inference (Carlini et al. 2022).

    Definition: over the rules "member iff score >= t" for every real t (t = +inf flags nobody),
    the maximum of TPR(t) = #{members >= t} / n_m subject to FPR(t) = #{non-members >= t} / n_n
    <= fpr. (The rules "score > t" give the same set of (FPR, TPR) points, so the answer does not
    depend on that choice.) Only deterministic rules count: no interpolation between ROC points.
    A tie between a member and a non-member score cannot be split, so e.g. when every non-member
    ties with every member, any rule flags all or none and the answer is 0.0 for fpr < 1.

    Returns None when there are fewer than ceil(1 / fpr) non-members (then not even one false
    positive fits under ``fpr``, and the rate cannot be measured at that level), NaN when there
    are no members. Raises ValueError unless 0 < fpr <= 1, or for NaN scores.
    """
    fpr = float(fpr)
    if not 0.0 < fpr <= 1.0:
        raise ValueError(f"fpr must lie in (0, 1], got {fpr!r}")
    m, n = _scores(member_scores, nonmember_scores)
    if n.size < math.ceil(1.0 / fpr - _CEIL_SLACK):
        return None
    if m.size == 0:
        return math.nan
    rates_fp, rates_tp = roc_curve(m, n)
    fp_counts = np.rint(rates_fp * n.size)
    allowed = math.floor(fpr * n.size + _CEIL_SLACK)
    return float(rates_tp[fp_counts <= allowed].max())  # (0, 0) always qualifies


def precision_at_coverage(confidence: np.ndarray, correct: np.ndarray, coverage: float) -> float:
    """Accuracy of the ``k = max(1, ceil(coverage * n))`` most confident predictions.

    ``confidence[i]`` is the model's confidence in its own prediction i, ``correct[i]`` whether that
    prediction is right (booleans or 0/1). Predictions are ordered by a stable sort on descending
    confidence, so ties at the cut are broken in favour of the lower index (no averaging over
    ties). ``ceil`` forgives floating error of 1e-9 (coverage 0.3 of 10 is 3 predictions).
    Returns NaN when n == 0. Raises ValueError unless 0 < coverage <= 1, the arrays are 1-D of
    equal length and confidences are not NaN.
    """
    coverage = float(coverage)
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"coverage must lie in (0, 1], got {coverage!r}")
    conf = np.asarray(confidence, dtype=float)
    right = np.asarray(correct)
    if conf.ndim != 1 or right.shape != conf.shape:
        raise ValueError(
            f"confidence and correct must be 1-D of equal length, got {conf.shape} and {right.shape}"
        )
    if np.isnan(conf).any():
        raise ValueError("confidence contains NaN")
    n = conf.size
    if n == 0:
        return math.nan
    k = max(1, math.ceil(coverage * n - _CEIL_SLACK))
    order = np.argsort(-conf, kind="stable")
    return float(np.mean(right[order[:k]].astype(float)))


def holm(pvalues, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Holm's step-down correction of m p-values for family-wise error rate ``alpha``.

    With p_(1) <= ... <= p_(m) the sorted p-values (ties ordered by index), returns

    - adjusted p-values ``p_adj[(i)] = max_{j <= i} min(1, (m - j + 1) p_(j))``;
    - the reject mask ``p_adj <= alpha`` (the same as stepping down while
      p_(j) <= alpha / (m - j + 1));
    - per hypothesis the level ``alpha / (m - rank + 1)`` its own p-value was compared with, rank
      its 1-based position in the sorted order.

    NaN p-values (a test that could not be run) count in m, as a test that was planned, are ranked
    after all others, are never rejected, and get NaN as adjusted p-value and as level. Empty
    input gives three empty arrays. Raises ValueError unless the input is 1-D with values in
    [0, 1] or NaN, and 0 < alpha < 1.
    """
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be 1-D, got shape {p.shape}")
    finite = ~np.isnan(p)
    if ((p[finite] < 0.0) | (p[finite] > 1.0)).any():
        raise ValueError("p-values must lie in [0, 1] (or be NaN)")
    m = p.size
    if m == 0:
        return np.zeros(0), np.zeros(0, dtype=bool), np.zeros(0)
    order = np.argsort(p, kind="stable")  # NaN sort last; ties keep index order
    multipliers = m - np.arange(m)  # m - j + 1 for j = 1..m
    sorted_p = p[order]
    adjusted_sorted = np.maximum.accumulate(np.minimum(1.0, multipliers * np.nan_to_num(sorted_p)))
    adjusted_sorted[np.isnan(sorted_p)] = np.nan
    levels_sorted = alpha / multipliers
    levels_sorted[np.isnan(sorted_p)] = np.nan
    adjusted = np.empty(m)
    levels = np.empty(m)
    adjusted[order] = adjusted_sorted
    levels[order] = levels_sorted
    reject = np.zeros(m, dtype=bool)
    reject[finite] = adjusted[finite] <= alpha
    if (~finite).any():
        log.debug(
            "holm: %d of %d p-values are NaN (counted in m, not rejected)", (~finite).sum(), m
        )
    return adjusted, reject, levels
