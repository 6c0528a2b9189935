"""Data sets, the stratified split, the shuffle control and the soft-label ablations."""

import numpy as np
import pytest
import torch

from softleak.simulate.data import balanced_labels, make_teacher_set, make_validation, student_split
from softleak.simulate.softlabels import (
    apply_ablation,
    keep_top_k,
    parse_ablation,
    soft_targets,
    within_class_permutation,
    zero_class_entry,
    zero_smallest,
)


@pytest.mark.parametrize("c", [2, 3, 10])
def test_labels_balanced_and_nested_prefixes_balanced(c, global_seed):
    rng = np.random.default_rng(global_seed)
    y = balanced_labels(20 * c, c, rng)
    assert np.all(np.bincount(y, minlength=c) == 20)
    nested = balanced_labels(20 * c, c, rng, nested=True)
    for k in range(1, 21):
        assert np.all(np.bincount(nested[: k * c], minlength=c) == k)
    with pytest.raises(ValueError, match="multiple"):
        balanced_labels(7, 2, rng)


def test_teacher_set_seeded_and_standardized(global_seed):
    a = make_teacher_set(40, 5, 2, global_seed)
    b = make_teacher_set(40, 5, 2, global_seed)
    np.testing.assert_array_equal(a.X, b.X)
    s = make_teacher_set(40, 5, 2, global_seed, standardize=True)
    np.testing.assert_allclose(s.X.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(s.X.std(0), 1, atol=1e-12)


def test_nested_data_prefix_is_the_same_set(global_seed):
    """Nesting changes only the label order constraint: the inputs are the same draws, and every
    prefix of a multiple of c samples is a balanced teacher set."""
    big = make_teacher_set(60, 4, 3, global_seed, nested=True)
    plain = make_teacher_set(60, 4, 3, global_seed)
    np.testing.assert_array_equal(big.X, plain.X)
    for k in range(1, 21):
        assert np.all(np.bincount(big.y[: 3 * k], minlength=3) == k)


@pytest.mark.parametrize("rho", [0.05, 0.3, 0.55, 0.8, 0.95])
def test_student_split_stratified(rho, global_seed):
    c, per = 4, 25
    y = balanced_labels(c * per, c, np.random.default_rng(global_seed))
    train, test = student_split(y, rho, c)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == len(y)
    assert np.all(np.bincount(y[train], minlength=c) == int(rho * per))
    # Within each class the first int(rho * n/c) samples in data order are the train set.
    for cls in range(c):
        idx = np.flatnonzero(y == cls)
        assert set(idx[: int(rho * per)]) == set(train[y[train] == cls])


def test_student_splits_nested_in_rho(global_seed):
    y = balanced_labels(200, 2, np.random.default_rng(global_seed))
    prev = np.array([], dtype=int)
    for rho in np.linspace(0.05, 0.95, 10):
        train, _ = student_split(y, rho, 2)
        assert set(prev) <= set(train)
        prev = train


def test_validation_kinds(global_seed):
    X, y = make_validation(500, 3, 4, global_seed, "uniform")
    assert X.min() >= 0 and X.max() < 1 and set(np.unique(y)) <= set(range(4))
    X, _ = make_validation(500, 3, 4, global_seed)
    assert X.min() < 0
    with pytest.raises(ValueError):
        make_validation(5, 3, 4, 0, "other")


def test_within_class_permutation_keeps_classes(global_seed):
    rng = np.random.default_rng(global_seed)
    y = balanced_labels(60, 3, rng)
    train, test = student_split(y, 0.5, 3)
    perm = within_class_permutation(y, train, rng)
    np.testing.assert_array_equal(y[perm], y)  # every sample gets a same-class soft label
    np.testing.assert_array_equal(perm[test], test)  # the held-out set is untouched
    assert set(perm[train]) == set(train)


def test_shuffled_soft_labels_keep_argmax_for_a_memorizing_teacher(global_seed):
    g = torch.Generator().manual_seed(global_seed)
    y = torch.as_tensor(balanced_labels(30, 3, np.random.default_rng(global_seed)))
    logits = torch.randn(30, 3, generator=g) + 10 * torch.nn.functional.one_hot(y, 3)
    soft = soft_targets(logits, 5.0)
    perm = within_class_permutation(y.numpy(), np.arange(30), np.random.default_rng(1))
    assert torch.equal(soft[perm].argmax(-1), y)


def test_ablations(global_seed):
    g = torch.Generator().manual_seed(global_seed)
    soft = torch.softmax(torch.randn(8, 6, generator=g), -1)
    z = zero_smallest(soft, 2)
    assert torch.all((z == 0).sum(-1) == 2)
    kept = soft.sort(-1).values[:, 2:]
    torch.testing.assert_close(z.sort(-1).values[:, 2:], kept)
    t = keep_top_k(soft, 1, renormalize=True)
    assert torch.equal(t.argmax(-1), soft.argmax(-1)) and torch.allclose(t.sum(-1), torch.ones(8))
    y = torch.arange(8) % 6
    zc = zero_class_entry(soft, y, 0)
    assert torch.all(zc[y != 0, 0] == 0) and torch.equal(zc[y == 0], soft[y == 0])
    assert torch.equal(zc[:, 1:], soft[:, 1:])
    out, drop = apply_ablation(soft, y, "drop_class:2")
    assert drop == 2 and torch.equal(out, soft)
    with pytest.raises(ValueError):
        parse_ablation("zero_smallest")
    with pytest.raises(ValueError):
        parse_ablation("nope:1")
