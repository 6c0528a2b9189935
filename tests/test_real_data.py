"""Real data (``simulate.real_data``): scikit-learn's bundled sets (skipped without it) and a
user's arrays, read without executing anything; the stratified split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from softleak.simulate.real_data import BUNDLED, describe_source, load_real, stratified_split


def test_npz_images_keep_their_shape_and_labels_map_to_0_c(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.random((30, 1, 4, 4))
    y = rng.choice([3, 7, 11], 30)
    np.savez(tmp_path / "d.npz", inputs=X, labels=y)
    data = load_real(str(tmp_path / "d.npz"))
    assert data.in_shape == (1, 4, 4) and data.inputs.shape == (30, 16) and data.c == 3
    assert np.array_equal(data.inputs, X.reshape(30, -1))
    assert np.array_equal(data.labels, np.searchsorted([3, 7, 11], y))
    assert describe_source(str(tmp_path / "d.npz")) == (30, (1, 4, 4), 3)
    flat = load_real(str(tmp_path / "d.npz"), input_shape=(4, 4))
    assert flat.in_shape == (4, 4) and flat.fingerprint() != data.fingerprint()


def test_parquet_feature_columns_or_a_list_column(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.random((20, 3))
    y = np.array(["a", "b"] * 10)
    frame = pd.DataFrame(X, columns=["f0", "f1", "f2"]).assign(labels=y)
    frame.to_parquet(tmp_path / "cols.parquet")
    data = load_real(str(tmp_path / "cols.parquet"))
    assert np.allclose(data.inputs, X) and data.c == 2 and data.in_shape == (3,)
    pd.DataFrame({"inputs": list(X), "labels": y}).to_parquet(tmp_path / "list.parquet")
    assert np.allclose(load_real(str(tmp_path / "list.parquet")).inputs, X)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no such file"),
        (lambda p: np.savez(p, inputs=np.ones((5, 2)), labels=np.zeros(5)), "one class"),
        (lambda p: np.savez(p, inputs=np.ones((5, 2)), labels=np.arange(4)), "share their rows"),
        (lambda p: np.savez(p, x=np.ones((5, 2)), labels=np.arange(5)), "no array 'inputs'"),
    ],
)
def test_bad_files_are_one_line(tmp_path, make, message):
    path = tmp_path / "bad.npz"
    make(path)
    with pytest.raises(ValueError, match=message) as err:
        load_real(str(path))
    assert "\n" not in str(err.value)


def test_unknown_names_and_wrong_shapes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown data"):
        load_real("mnist")
    np.savez(tmp_path / "d.npz", inputs=np.ones((6, 4)), labels=np.arange(6) % 2)
    with pytest.raises(ValueError, match="holds 6 values"):
        load_real(str(tmp_path / "d.npz"), input_shape=(2, 3))


def test_the_stratified_split_partitions_each_class(global_seed):
    y = np.random.default_rng(global_seed).integers(0, 5, 200)
    train, test = stratified_split(y, 0.2, global_seed)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(200))
    for c in range(5):
        assert (y[test] == c).sum() == round(0.2 * (y == c).sum())


@pytest.mark.parametrize("name", list(BUNDLED))
def test_bundled_sets_match_their_recorded_sizes(name):
    pytest.importorskip("sklearn")
    data = load_real(name)
    info = BUNDLED[name]
    assert (data.n, data.in_shape, data.c) == (info.n, info.in_shape, info.c)
    assert describe_source(name) == (data.n, data.in_shape, data.c)
    if info.scale == "pixels16":
        assert data.inputs.min() == 0.0 and data.inputs.max() == 1.0
    else:
        assert np.allclose(data.inputs.mean(0), 0, atol=1e-9)
        assert np.allclose(data.inputs.std(0), 1)
