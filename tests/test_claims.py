"""compare.claims: the judges' verdicts against known cases, the error rates of the interval and the
test under the null, and the record every summary.json carries."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from softleak.compare import claims as C

CLAIM = C.Claim("figx.example", "An example statement of the paper (Fig. X).", paper=0.5)


@pytest.fixture
def rng(global_seed):
    return np.random.default_rng(global_seed)


KEYS = {"id", "claim", "measured", "criterion", "paper", "verdict", "holds", "note"}


def test_a_claim_id_names_its_figure():
    with pytest.raises(ValueError, match="<figure>.<name>"):
        C.Claim("nofigure", "A statement.")


def test_close_holds_within_the_tolerance_and_says_why_not_outside():
    assert C.judge_close(CLAIM, 0.55, 0.5, 0.05)["verdict"] == "holds"
    bad = C.judge_close(CLAIM, 0.56, 0.5, 0.05, why_not="finite training")
    assert bad["verdict"] == "fails" and not bad["holds"] and bad["note"] == "finite training"
    assert "0.06" in C.judge_close(CLAIM, 0.56, 0.5, 0.05)["note"]  # the default reason
    for missing in (None, float("nan")):
        out = C.judge_close(CLAIM, missing, 0.5, 0.05)
        assert out["verdict"] == "untested" and out["note"]
    assert set(C.judge_close(CLAIM, 0.5, 0.5, 0.0)) == KEYS


def test_bounds_are_inclusive_and_either_side_may_be_open():
    assert C.judge_bound(CLAIM, 0.9, at_least=0.9)["holds"]
    assert not C.judge_bound(CLAIM, 0.89, at_least=0.9)["holds"]
    assert C.judge_bound(CLAIM, 0.3, at_least=0.2, at_most=0.3)["holds"]
    assert not C.judge_bound(CLAIM, 0.31, at_least=0.2, at_most=0.3)["holds"]
    with pytest.raises(ValueError):
        C.judge_bound(CLAIM, 0.3)


def test_the_t_interval_is_scipys():
    x = [0.1, 0.3, 0.2, 0.5]
    lo, hi = C.t_interval(x, 0.9)
    ref = stats.t.interval(0.9, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert lo == pytest.approx(ref[0]) and hi == pytest.approx(ref[1])


def test_a_difference_needs_three_seeds():
    out = C.judge_sign(CLAIM, [0.5, 0.6], sign=1)
    assert out["verdict"] == "untested" and "2 seed(s)" in out["note"]
    assert out["measured"]["seeds"] == 2


def test_the_sign_rule_is_the_one_sided_t_test_at_half_its_level(rng):
    # "> 0" holds exactly when scipy's one-sided t test rejects at (1 - 0.95) / 2, so under the
    # null it is declared in 2.5% of trials (the t test's exact level for normal seeds)
    from scipy import stats

    for _ in range(300):
        x = rng.normal(rng.choice([0.0, 0.5]), 1, rng.integers(3, 8))
        p = stats.ttest_1samp(x, 0, alternative="greater").pvalue
        assert C.judge_sign(CLAIM, x, sign=1)["holds"] == (p < 0.025)
        q = stats.ttest_1samp(x, 0, alternative="less").pvalue
        assert C.judge_sign(CLAIM, x, sign=-1)["holds"] == (q < 0.025)


def test_the_sign_rule_finds_a_clear_difference_and_its_direction(rng):
    up = rng.normal(1.0, 0.1, 5)
    assert C.judge_sign(CLAIM, up, sign=1)["verdict"] == "holds"
    down = C.judge_sign(CLAIM, up, sign=-1)
    assert down["verdict"] == "fails" and "other side" in down["note"]
    lo, hi = down["measured"]["interval"]
    assert lo < np.mean(up) < hi


def test_the_sign_flip_test_is_exact_for_few_cells():
    for k in (5, 8, 12):
        assert C.sign_flip_p(np.ones(k)) == pytest.approx(2.0**-k)
        assert C.sign_flip_p(-np.ones(k)) == 1.0
        assert C.sign_flip_p(-np.ones(k), sign=-1) == pytest.approx(2.0**-k)
    # the Monte Carlo branch agrees with the exact p on the same cells
    x = np.array([0.3, -0.1, 0.2, 0.25, -0.05, 0.4, 0.1, -0.2, 0.15, 0.05, 0.3, -0.1, 0.2, 0.1])
    x17 = np.concatenate([x, [0.0, 0.0, 0.0]])  # the same flips' distribution, 17 cells
    exact, mc = C.sign_flip_p(x), C.sign_flip_p(x17)  # zero cells change no flipped mean
    assert mc == pytest.approx(exact, abs=4 * np.sqrt(exact * (1 - exact) / 20_000))
    assert C.sign_flip_p(x17) == mc  # seeded: the same p for the same input
    assert C.sign_flip_p(np.ones(40)) == pytest.approx(1 / 20_001)  # never 0


def test_the_paired_test_is_scipys_exact_sign_flip_permutation_test(rng):
    # the p-value is scipy's exact one-sample permutation (sign-flip) test, whose level under a
    # symmetric null is at most alpha by construction
    from scipy import stats

    for _ in range(40):
        x = rng.normal(rng.choice([0.0, 0.7]), 1, rng.integers(5, 13))
        want = stats.permutation_test(
            (x,), np.mean, permutation_type="samples", alternative="greater", n_resamples=np.inf
        ).pvalue
        assert C.sign_flip_p(x) == pytest.approx(want, abs=1e-12)
        assert C.judge_paired(CLAIM, x, sign=1)["holds"] == (want < 0.05)


def test_the_paired_test_needs_five_cells_and_finds_a_shift(rng):
    assert C.judge_paired(CLAIM, [1, 1, 1, 1], sign=1)["verdict"] == "untested"
    out = C.judge_paired(CLAIM, rng.normal(1, 0.2, 8), sign=1)
    assert out["verdict"] == "holds" and out["measured"]["p"] == pytest.approx(2.0**-8, abs=1e-6)


def test_monotone_allows_steps_within_the_tolerance():
    assert C.judge_monotone(CLAIM, [0.1, 0.2, 0.19, 0.5], increasing=True, tol=0.02)["holds"]
    out = C.judge_monotone(CLAIM, [0.1, 0.2, 0.1], increasing=True, tol=0.02)
    assert out["verdict"] == "fails" and "0.1" in out["note"]
    assert C.judge_monotone(CLAIM, [0.5, 0.2], increasing=False)["holds"]
    assert C.judge_monotone(CLAIM, [0.5], increasing=False)["verdict"] == "untested"


def test_a_disputed_claim_quotes_the_paper_and_records_are_json():
    disputed = C.Claim(
        "figx.direction", "The threshold moves up with tau (sec. 5.1).", disputed="it moves down"
    )
    out = C.judge_bound(disputed, np.float32(0.7), at_least=0.5)
    assert out["holds"] and 'the paper: "it moves down"' in out["note"]
    text = json.dumps(C.judge_sign(CLAIM, np.array([0.1, 0.2, 0.3]), sign=1))
    assert json.loads(text)["measured"]["seeds"] == 3
    assert C.count([out, C.untested(CLAIM, "no")]) == {"holds": 1, "fails": 0, "untested": 1}
    with pytest.raises(ValueError):
        C.record(CLAIM, measured=1, criterion="x", verdict="maybe")


def test_present_names_the_missing_regimes():
    out = C.judge_present(CLAIM, {"a": 3, "b": 0}, ["a", "b", "c"], why_not="small grid")
    assert (
        out["verdict"] == "fails" and "missing: b, c" in out["note"] and "small grid" in out["note"]
    )
    assert out["measured"] == 1
    assert C.judge_present(CLAIM, {"a": 1, "c": 2}, ["a", "c"])["holds"]
