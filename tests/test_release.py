"""Release settings (``simulate.release``) and the within-class derangement behind the shuffle.

Oracles: ``soft``/``tau:T`` against scipy's softmax; ``top_k`` against an argsort and the soft
labels' ratios (``top_k:1`` == ``hard``); ``round`` values are multiples of 10^-D within half a
unit of the soft labels; ``noise:0`` == ``soft``; the noise std recovered from log-ratios within a
CLT bound; ``shuffle`` is a fixed-point-free within-class permutation of the training rows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import softmax as scipy_softmax

from softleak.simulate.release import (
    DEFAULT_SETTINGS,
    MAX_DECIMALS,
    Release,
    default_settings,
    parse_release,
    release_soft_labels,
    softmax,
)
from softleak.simulate.softlabels import within_class_derangement


def _logits(seed: int, n: int = 40, c: int = 7, scale: float = 3.0) -> np.ndarray:
    """Continuous random logits: no ties, every soft-label row distinct."""
    return scale * np.random.default_rng(seed).standard_normal((n, c))


def _release(z, text, tau=2.0, rng=None, **kw):
    return release_soft_labels(z, parse_release(text, z.shape[1]), tau, rng, **kw)


# --- softmax, soft, tau --------------------------------------------------------------------------


def test_softmax_matches_scipy_and_is_stable(global_seed):
    z = _logits(global_seed)
    np.testing.assert_allclose(softmax(z), scipy_softmax(z, axis=1), rtol=1e-12, atol=0)
    big = np.array([[1000.0, 999.0, -1000.0]])  # would overflow a naive exp
    np.testing.assert_allclose(softmax(big), scipy_softmax(big, axis=1), rtol=1e-12)
    assert np.isfinite(softmax(big)).all()


@pytest.mark.parametrize("tau", [0.3, 1.0, 20.0])
def test_soft_is_softmax_of_tempered_logits(global_seed, tau):
    z = _logits(global_seed)
    out = _release(z, "soft", tau)
    assert out.dtype == np.float64 and out.shape == z.shape
    np.testing.assert_allclose(out, scipy_softmax(z / tau, axis=1), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("base", [0.5, 1.0, 20.0])
def test_tau_setting_ignores_the_base_temperature(global_seed, base):
    z = _logits(global_seed)
    out = _release(z, "tau:5", base)
    np.testing.assert_allclose(out, scipy_softmax(z / 5.0, axis=1), rtol=1e-12, atol=1e-300)
    if base != 5.0:
        assert not np.allclose(out, _release(z, "soft", base))


# --- top_k ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 4, 7])
def test_top_k_keeps_the_k_largest_in_the_soft_ratios(global_seed, k):
    tau = 2.0
    z = _logits(global_seed)
    soft = scipy_softmax(z / tau, axis=1)
    out = _release(z, f"top_k:{k}", tau)
    kept = np.argsort(-soft, axis=1)[:, :k]
    mask = np.zeros_like(soft, dtype=bool)
    np.put_along_axis(mask, kept, True, axis=1)
    assert ((out > 0) == mask).all()  # exactly the K largest survive
    assert (out[~mask] == 0).all()
    np.testing.assert_allclose(out.sum(1), 1.0, rtol=1e-12)
    # renormalised: kept entries are the soft entries divided by the kept mass
    kept_mass = np.where(mask, soft, 0).sum(1, keepdims=True)
    np.testing.assert_allclose(out[mask], (soft / kept_mass)[mask], rtol=1e-12)


def test_top_k_one_is_hard_and_top_k_c_is_soft(global_seed):
    z = _logits(global_seed)
    np.testing.assert_array_equal(_release(z, "top_k:1"), _release(z, "hard"))
    np.testing.assert_allclose(_release(z, f"top_k:{z.shape[1]}"), _release(z, "soft"), rtol=1e-12)


def test_top_k_beyond_c_is_refused_not_silently_wrong(global_seed):
    z = _logits(global_seed, c=5)
    release = parse_release("top_k:7")  # parsed without c: the bound is checked on release
    with pytest.raises(ValueError, match="top_k"):
        release_soft_labels(z, release, 1.0)


# --- round ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("decimals", [0, 1, 2, 3])
def test_round_gives_multiples_of_ten_to_minus_d(global_seed, decimals):
    tau = 1.5
    z = _logits(global_seed, n=60, c=5, scale=2.0)
    soft = scipy_softmax(z / tau, axis=1)
    out = _release(z, f"round:{decimals}", tau)
    np.testing.assert_allclose(out.sum(1), 1.0, rtol=1e-12)
    rounded = np.round(soft, decimals)
    ok = rounded.sum(1) > 0
    # before renormalisation: the values rounded to D decimals
    np.testing.assert_allclose(out[ok] * rounded[ok].sum(1, keepdims=True), rounded[ok], atol=1e-12)
    unit = 10.0**-decimals
    units = out[ok] * rounded[ok].sum(1, keepdims=True) / unit
    np.testing.assert_allclose(units, np.round(units), atol=1e-9)  # whole multiples of 10^-D
    assert (np.abs(units * unit - soft[ok]) <= unit / 2 + 1e-12).all()  # the nearest ones
    # a row that rounds to all zeros is the one-hot argmax
    np.testing.assert_array_equal(out[~ok], np.eye(z.shape[1])[soft[~ok].argmax(1)])


def test_round_all_zero_row_falls_back_to_one_hot_argmax(global_seed):
    rng = np.random.default_rng(global_seed)
    c = 300
    flat = 0.01 * rng.standard_normal((3, c))  # near uniform: every entry ~1/300 < 0.005
    peaked = rng.standard_normal((2, c))
    peaked[np.arange(2), [5, 17]] = 50.0  # rounds to a one-hot on its own
    z = np.vstack([flat, peaked])
    for decimals in (0, 1, 2):
        assert (np.round(scipy_softmax(flat, axis=1), decimals) == 0).all()  # the crafted case
        out = _release(z, f"round:{decimals}", 1.0)
        assert np.isfinite(out).all()
        np.testing.assert_array_equal(out, np.eye(c)[z.argmax(1)])
    # with enough decimals the flat rows survive and are not one-hot
    out = _release(z, "round:4", 1.0)
    assert ((out[:3] > 0).sum(1) > 1).all()


# --- noise ---------------------------------------------------------------------------------------


def test_noise_zero_is_soft_exactly(global_seed):
    z = _logits(global_seed)
    out = _release(z, "noise:0", 2.0, np.random.default_rng(global_seed))
    np.testing.assert_array_equal(out, _release(z, "soft", 2.0))


def test_noise_is_reproducible_from_the_generator(global_seed):
    z = _logits(global_seed)
    a = _release(z, "noise:1", 2.0, np.random.default_rng(global_seed))
    b = _release(z, "noise:1", 2.0, np.random.default_rng(global_seed))
    c = _release(z, "noise:1", 2.0, np.random.default_rng(global_seed + 1))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_allclose(a.sum(1), 1.0, rtol=1e-12)
    with pytest.raises(ValueError, match="random generator"):
        _release(z, "noise:1", 2.0, None)


@pytest.mark.parametrize("std", [0.5, 2.0])
@pytest.mark.parametrize("tau", [1.0, 20.0])
def test_noise_std_is_recovered_from_log_ratios(global_seed, std, tau):
    """log out - log soft = S * eps + a row constant: the row-centred differences have pooled
    variance S^2 (c - 1) / c per entry, estimated from n (c - 1) degrees of freedom."""
    n, c = 2000, 10
    z = _logits(global_seed, n=n, c=c)
    out = _release(z, f"noise:{std}", tau, np.random.default_rng(global_seed))
    diff = np.log(out) - np.log(scipy_softmax(z / tau, axis=1))
    diff -= diff.mean(1, keepdims=True)
    dof = n * (c - 1)
    estimate = math.sqrt((diff**2).sum() / dof)
    # chi-square: the relative std of the variance estimate is sqrt(2 / dof) ~ 0.011 here;
    # allow 8 of them on the variance (~4.2% on the std)
    assert abs(estimate**2 / std**2 - 1) < 8 * math.sqrt(2 / dof)
    # the noise is on the tempered logits: the same S whatever tau (not S * tau)
    assert abs(estimate / std - 1) < 0.05


# --- hard ----------------------------------------------------------------------------------------


def test_hard_is_one_hot_argmax(global_seed):
    z = _logits(global_seed)
    out = _release(z, "hard", 3.0)
    expected = np.zeros_like(z)
    for i, j in enumerate(np.argmax(z, axis=1)):
        expected[i, j] = 1.0
    np.testing.assert_array_equal(out, expected)


# --- shuffle -------------------------------------------------------------------------------------


def _shuffle_case(seed: int):
    rng = np.random.default_rng(seed)
    n, c = 60, 4
    z = 3.0 * rng.standard_normal((n, c))
    labels = rng.integers(0, c - 1, size=n)  # class c - 1 has no training rows
    labels[0] = c - 1
    train = np.sort(rng.choice(np.arange(1, n), size=40, replace=False))
    labels[train[:6]] = [0, 0, 1, 1, 2, 2]  # classes 0 and 1 have >= 2 training rows
    # class 2 has exactly one: move all but one of its training rows out of train
    in_two = train[labels[train] == 2]
    train = np.setdiff1d(train, in_two[1:])
    return z, labels, train


def test_shuffle_is_a_within_class_derangement_of_train_rows(global_seed):
    z, labels, train = _shuffle_case(global_seed)
    tau = 2.0
    soft = scipy_softmax(z / tau, axis=1)
    out = _release(
        z, "shuffle", tau, np.random.default_rng(global_seed), labels=labels, train=train
    )
    # each output row is some soft row: find which
    match = np.all(np.isclose(out[:, None, :], soft[None, :, :], rtol=1e-12, atol=0), axis=2)
    assert (match.sum(1) == 1).all()
    source = match.argmax(1)
    assert sorted(source) == list(range(len(z)))  # a permutation of the soft rows
    outside = np.setdiff1d(np.arange(len(z)), train)
    np.testing.assert_array_equal(source[outside], outside)  # untouched outside train
    counts = {k: int((labels[train] == k).sum()) for k in np.unique(labels[train])}
    assert counts[2] == 1
    for i in train:
        j = source[i]
        assert j in train and labels[j] == labels[i]  # another training row of its class
        if counts[labels[i]] >= 2:
            assert j != i  # no fixed points
        else:
            assert j == i  # a lone row is left as is


def test_shuffle_needs_labels_train_and_rng(global_seed):
    z, labels, train = _shuffle_case(global_seed)
    rng = np.random.default_rng(global_seed)
    with pytest.raises(ValueError, match="random generator"):
        _release(z, "shuffle", 1.0, None, labels=labels, train=train)
    with pytest.raises(ValueError, match="labels"):
        _release(z, "shuffle", 1.0, rng, labels=None, train=train)
    with pytest.raises(ValueError, match="labels"):
        _release(z, "shuffle", 1.0, rng, labels=labels, train=None)


def test_within_class_derangement_has_no_fixed_points_and_keeps_classes(global_seed):
    rng = np.random.default_rng(global_seed)
    y = rng.integers(0, 5, size=200)
    subset = np.sort(rng.choice(200, size=120, replace=False))
    perm = within_class_derangement(y, subset, rng)
    assert sorted(perm) == list(range(200))
    outside = np.setdiff1d(np.arange(200), subset)
    np.testing.assert_array_equal(perm[outside], outside)
    assert (y[perm] == y).all()
    assert np.isin(perm[subset], subset).all()
    sizes = np.bincount(y[subset], minlength=5)
    assert (sizes >= 2).all()  # 120 draws from 5 classes: every class has partners
    assert (perm[subset] != subset).all()  # no fixed points


def test_within_class_derangement_partners_are_uniform(global_seed):
    """Over many seeds, each other same-class index is the partner of a given index about equally
    often: m - 1 = 4 candidates, 2,000 draws; expected 500 each, binomial sd ~19."""
    y = np.array([0, 0, 0, 0, 0, 1, 1, 2])
    subset = np.arange(8)
    rng = np.random.default_rng(global_seed)
    draws = 2000
    counts = np.zeros((8, 8), dtype=int)
    for _ in range(draws):
        perm = within_class_derangement(y, subset, rng)
        counts[np.arange(8), perm] += 1
    assert np.trace(counts[:5, :5]) == 0  # never itself
    off = counts[:5, :5][~np.eye(5, dtype=bool)]
    assert (np.abs(off - draws / 4) < 6 * math.sqrt(draws * 0.25 * 0.75)).all()
    assert counts[5, 6] == counts[6, 5] == draws  # a class of two swaps
    assert counts[7, 7] == draws  # a class of one stays
    assert counts[:5, 5:].sum() == 0 and counts[5:7, :5].sum() == 0  # classes kept


# --- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "warm",
        "",
        "Soft",
        "soft:1",
        "hard:2",
        "shuffle:0",
        "tau",
        "tau:",
        "tau:x",
        "tau:1:2",
        "tau:0",
        "tau:-1",
        "tau:inf",
        "tau:nan",
        "top_k:0",
        "top_k:11",
        "top_k:2.5",
        "top_k:-1",
        "round:-1",
        f"round:{MAX_DECIMALS + 1}",
        "round:1.5",
        "noise:-0.1",
        "noise:inf",
        "noise:nan",
    ],
)
def test_parse_errors(text):
    with pytest.raises(ValueError):
        parse_release(text, c=10)


def test_top_k_bound_needs_c():
    assert parse_release("top_k:11").value == 11  # no c: no upper bound at parse time
    assert parse_release("top_k:10", c=10).value == 10


@pytest.mark.parametrize(
    ("text", "name", "kind", "value"),
    [
        ("soft", "soft", "soft", None),
        (" hard ", "hard", "hard", None),
        ("shuffle", "shuffle", "shuffle", None),
        ("tau:5.0", "tau:5", "tau", 5.0),
        ("tau:0.25", "tau:0.25", "tau", 0.25),
        ("top_k:3.0", "top_k:3", "top_k", 3),
        ("round:2", "round:2", "round", 2),
        ("noise:0", "noise:0", "noise", 0.0),
        ("noise:1e-1", "noise:0.1", "noise", 0.1),
    ],
)
def test_canonical_names(text, name, kind, value):
    release = parse_release(text, c=10)
    assert release == Release(name, kind, value)
    assert type(release.value) is type(value)
    assert parse_release(release.name, c=10) == release


@pytest.mark.parametrize("text", ["tau:0.1234567", "noise:2.000001", "top_k:1234567", "tau:1e-9"])
def test_canonical_names_keep_the_value(text):
    """The name stands for the setting (the audit stores names): it must not round the value."""
    release = parse_release(text)
    assert release.value == float(text.partition(":")[2])
    assert parse_release(release.name) == release


def test_distinct_values_get_distinct_names():
    assert parse_release("tau:0.1234567").name != parse_release("tau:0.1234568").name


@pytest.mark.parametrize("tau", [1.0, 20.0, 0.3])
def test_default_settings(tau):
    settings = default_settings(tau)
    assert {"soft", "hard", "shuffle"} <= set(settings)
    parsed = [parse_release(s, c=10) for s in settings]
    assert [p.name for p in parsed] == list(settings)  # already canonical
    taus = sorted(p.value for p in parsed if p.kind == "tau")
    assert taus == pytest.approx([tau / 4, tau * 4], rel=1e-5)
    assert len(set(settings)) == len(settings)
    assert DEFAULT_SETTINGS == default_settings(1.0)


def test_only_shuffle_is_a_control():
    controls = [s for s in default_settings(2.0) if parse_release(s).control]
    assert controls == ["shuffle"]
