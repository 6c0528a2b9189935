"""Reading a user's teacher outputs for the audit (``simulate.audit_data``).

Oracles: every file type round-trips the arrays written; files that would execute code when read
(pickled objects in ``.npy``, arbitrary objects in ``.pt``) are refused and a trap in them never
fires; each bad input gives one ValueError naming the file or the array; ``describe`` against a
direct count; ``from_model`` equals the module's own float64 outputs, batched == unbatched.
"""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from softleak.simulate.audit_data import AuditData, load_array, outputs_of_model


class _Trap:
    """Unpickling this creates ``marker``: proof that a reader executed code from the file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _arrays(seed: int, n: int = 30, c: int = 5, d: int = 4):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, c)), rng.integers(0, c, size=n), rng.standard_normal((n, d))


# --- NumPy files ---------------------------------------------------------------------------------


def test_npy_round_trip(tmp_path, global_seed):
    z, y, _ = _arrays(global_seed)
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y)
    np.testing.assert_array_equal(load_array(str(tmp_path / "z.npy")), z)
    np.testing.assert_array_equal(load_array(tmp_path / "y.npy", "labels"), y)
    with pytest.raises(ValueError, match=r"z\.npy.*one array"):
        load_array(f"{tmp_path / 'z.npy'}:logits")


def test_npz_role_keys_file_key_and_single_array(tmp_path, global_seed):
    z, y, X = _arrays(global_seed)
    both = tmp_path / "members.npz"
    np.savez(both, logits=z, labels=y, inputs=X, extra=X[:, 0])
    np.testing.assert_array_equal(load_array(both, "logits"), z)
    np.testing.assert_array_equal(load_array(both, "labels"), y)
    np.testing.assert_array_equal(load_array(f"{both}:extra", "logits"), X[:, 0])  # key wins
    np.testing.assert_array_equal(load_array(f"{both}:inputs"), X)
    single = tmp_path / "one.npz"
    np.savez(single, whatever=z)
    np.testing.assert_array_equal(load_array(single, "labels"), z)  # the only array there is
    data = AuditData.from_files(both, both, both, both, both, both)
    np.testing.assert_array_equal(data.logits, z)
    np.testing.assert_array_equal(data.labels, y)
    np.testing.assert_array_equal(data.holdout_inputs, X)


def test_ambiguous_npz_lists_its_arrays(tmp_path, global_seed):
    z, y, _ = _arrays(global_seed)
    path = tmp_path / "two.npz"
    np.savez(path, scores=z, targets=y)
    for role in (None, "logits"):
        with pytest.raises(ValueError, match=r"two\.npz.*scores, targets.*NAME"):
            load_array(path, role)
    with pytest.raises(ValueError, match=r"two\.npz has no array 'logit'.*scores, targets"):
        load_array(f"{path}:logit")


def test_pickled_npy_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.npy"
    np.save(path, np.array([_Trap(marker)], dtype=object), allow_pickle=True)
    np.load(path, allow_pickle=True)  # the trap works when a reader unpickles
    assert marker.exists()
    marker.unlink()
    with pytest.raises(ValueError, match=r"evil\.npy"):
        load_array(path)
    assert not marker.exists()
    archive = tmp_path / "evil.npz"
    np.savez(archive, logits=np.array([_Trap(marker)], dtype=object))
    with pytest.raises(ValueError, match=r"evil\.npz"):
        load_array(archive, "logits")
    assert not marker.exists()


# --- Parquet -------------------------------------------------------------------------------------


def test_parquet_numeric_columns_are_a_matrix(tmp_path, global_seed):
    z, y, _ = _arrays(global_seed)
    path = tmp_path / "z.parquet"
    pd.DataFrame(z, columns=[f"class{j}" for j in range(z.shape[1])]).to_parquet(path)
    np.testing.assert_array_equal(load_array(path, "logits"), z)
    np.testing.assert_array_equal(load_array(f"{path}:class2"), z[:, 2])


def test_parquet_list_column_and_named_label_column(tmp_path, global_seed):
    z, y, X = _arrays(global_seed)
    path = tmp_path / "members.parquet"
    pd.DataFrame({"logits": list(z), "labels": y, "inputs": list(X)}).to_parquet(path)
    np.testing.assert_array_equal(load_array(path, "logits"), z)  # role names the column
    np.testing.assert_array_equal(load_array(f"{path}:inputs", "logits"), X)
    np.testing.assert_array_equal(load_array(f"{path}:labels"), y)
    data = AuditData.from_files(path, f"{path}:labels", path)
    np.testing.assert_array_equal(data.logits, z)
    np.testing.assert_array_equal(data.labels, y)
    np.testing.assert_array_equal(data.inputs, X)
    only = tmp_path / "only.parquet"
    pd.DataFrame({"scores": list(z)}).to_parquet(only)
    np.testing.assert_array_equal(load_array(only, "logits"), z)  # one list column


def test_parquet_errors_name_the_file(tmp_path, global_seed):
    z, y, _ = _arrays(global_seed)
    mixed = tmp_path / "mixed.parquet"
    pd.DataFrame({"name": [f"x{i}" for i in range(len(y))], "labels": y}).to_parquet(mixed)
    with pytest.raises(ValueError, match=r"mixed\.parquet.*COLUMN"):
        load_array(mixed, "logits")
    with pytest.raises(ValueError, match=r"mixed\.parquet has no array 'label'.*name, labels"):
        load_array(f"{mixed}:label")
    ragged = tmp_path / "ragged.parquet"
    pd.DataFrame({"logits": [[1.0, 2.0], [1.0, 2.0, 3.0]]}).to_parquet(ragged)
    with pytest.raises(ValueError, match=r"ragged\.parquet.*different lengths"):
        load_array(ragged)
    holes = tmp_path / "holes.parquet"
    pd.DataFrame({"logits": [[1.0, 2.0], None]}).to_parquet(holes)
    with pytest.raises(ValueError, match=r"holes\.parquet"):
        load_array(holes)


# --- PyTorch files -------------------------------------------------------------------------------


def test_pt_tensor_and_dict_of_tensors(tmp_path, global_seed):
    z, y, X = _arrays(global_seed)
    one = tmp_path / "z.pt"
    torch.save(torch.from_numpy(z), one)
    np.testing.assert_array_equal(load_array(one, "logits"), z)
    with pytest.raises(ValueError, match=r"z\.pt.*one tensor"):
        load_array(f"{one}:logits")
    many = tmp_path / "members.pth"
    tensors = {"logits": torch.from_numpy(z), "labels": torch.from_numpy(y)}
    torch.save({**tensors, "inputs": torch.from_numpy(X).requires_grad_()}, many)
    data = AuditData.from_files(many, many, many)
    np.testing.assert_array_equal(data.logits, z)
    np.testing.assert_array_equal(data.labels, y)
    np.testing.assert_array_equal(data.inputs, X)
    np.testing.assert_array_equal(load_array(f"{many}:labels", "logits"), y)
    with pytest.raises(ValueError, match=r"members\.pth has no array 'x'.*logits, labels, inputs"):
        load_array(f"{many}:x")


def test_pt_integer_keys_and_bfloat16(tmp_path, global_seed):
    z, _, _ = _arrays(global_seed)
    path = tmp_path / "ints.pt"
    torch.save({0: torch.from_numpy(z), 1: torch.zeros(3)}, path)
    np.testing.assert_array_equal(load_array(f"{path}:0"), z)
    half = tmp_path / "bf16.pt"
    torch.save(torch.from_numpy(z).to(torch.bfloat16), half)
    out = load_array(half)
    np.testing.assert_array_equal(out, torch.from_numpy(z).to(torch.bfloat16).float().numpy())


def test_pt_with_objects_is_refused_by_weights_only(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.pt"
    torch.save({"logits": _Trap(marker)}, path)
    torch.load(path, weights_only=False)  # the trap works when a reader unpickles
    assert marker.exists()
    marker.unlink()
    with pytest.raises(
        ValueError, match=r"evil\.pt: not a plain tensor file: it loads only by executing code"
    ):
        load_array(path, "logits")
    assert not marker.exists()
    funcs = tmp_path / "funcs.pt"
    torch.save({"logits": torch.zeros(2, 2), "hook": np.sum}, funcs)
    with pytest.raises(ValueError, match=r"funcs\.pt: not a plain tensor file"):
        load_array(funcs, "logits")
    listed = tmp_path / "listed.pt"
    torch.save({"logits": [1.0, 2.0]}, listed)  # allowed by weights_only, but not a tensor
    with pytest.raises(ValueError, match=r"listed\.pt.*expected a tensor, found list"):
        load_array(listed, "logits")


# --- file errors ---------------------------------------------------------------------------------


def test_missing_file_unknown_suffix_bad_key_name_the_file(tmp_path, global_seed):
    z, _, _ = _arrays(global_seed)
    with pytest.raises(ValueError, match=r"no such file: .*absent\.npy"):
        load_array(tmp_path / "absent.npy")
    csv = tmp_path / "z.csv"
    np.savetxt(csv, z)
    with pytest.raises(ValueError, match=r"z\.csv.*unsupported file type '\.csv'"):
        load_array(csv)
    np.savez(tmp_path / "a.npz", logits=z)
    with pytest.raises(ValueError, match=r"a\.npz has no array 'nope'"):
        load_array(f"{tmp_path / 'a.npz'}:nope")
    broken = tmp_path / "broken.npy"
    broken.write_bytes(b"not an array at all")
    with pytest.raises(ValueError, match=r"broken\.npy"):
        load_array(broken)
    with pytest.raises(ValueError, match=r"absent\.npz"):
        AuditData.from_files(tmp_path / "absent.npz", tmp_path / "a.npz", tmp_path / "a.npz")


# --- AuditData validation ------------------------------------------------------------------------


def test_valid_data_is_float64_and_int64(global_seed):
    z, y, X = _arrays(global_seed)
    data = AuditData(z.astype(np.float32), y.astype(np.int32), X.astype(np.float16))
    assert data.logits.dtype == data.inputs.dtype == np.float64
    assert data.labels.dtype == np.int64
    assert (data.n, data.c, data.d) == z.shape + X.shape[1:]
    assert not data.has_holdout


def test_higher_rank_inputs_are_flattened_and_column_labels_accepted(global_seed):
    z, y, _ = _arrays(global_seed)
    images = np.random.default_rng(global_seed).standard_normal((len(y), 2, 3, 3))
    data = AuditData(z, y[:, None].astype(float), images, z[:4], y[:4, None], images[:4])
    assert data.inputs.shape == (len(y), 18)
    np.testing.assert_array_equal(data.inputs, images.reshape(len(y), -1))
    np.testing.assert_array_equal(data.labels, y)
    assert data.holdout_inputs.shape == (4, 18)
    np.testing.assert_array_equal(data.holdout_labels, y[:4])


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("logits_1d", "2-D"),
        ("one_class", "c >= 2"),
        ("inputs_rows", "rows"),
        ("labels_rows", r"shape \(30,\)"),
        ("labels_2_columns", r"shape \(30,\)"),
        ("labels_fraction", "integers"),
        ("labels_nan", "integers"),
        ("labels_text", "integers"),
        ("labels_negative", "0..4"),
        ("labels_too_big", "0..4"),
        ("inputs_nan", "NaN"),
        ("logits_inf", "NaN or inf"),
        ("holdout_classes", "classes"),
        ("holdout_dims", "holdout inputs"),
        ("holdout_label_rows", "holdout labels"),
        ("holdout_label_range", "holdout labels"),
        ("holdout_partial", "all three"),
        ("holdout_two_of_three", "all three"),
    ],
)
def test_validation_errors(global_seed, case, match):
    z, y, X = _arrays(global_seed)
    hz, hy, hX = z[:6].copy(), y[:6].copy(), X[:6].copy()
    if case == "logits_1d":
        z = z[:, 0]
    elif case == "one_class":
        z, y = z[:, :1], np.zeros_like(y)
    elif case == "inputs_rows":
        X = X[:-1]
    elif case == "labels_rows":
        y = y[:-1]
    elif case == "labels_2_columns":
        y = np.stack([y, y], 1)
    elif case == "labels_fraction":
        y = y + 0.5
    elif case == "labels_nan":
        y = y.astype(float)
        y[3] = np.nan
    elif case == "labels_text":
        y = y.astype(str)
    elif case == "labels_negative":
        y[2] = -1
    elif case == "labels_too_big":
        y[2] = z.shape[1]
    elif case == "inputs_nan":
        X[1, 1] = np.nan
    elif case == "logits_inf":
        z[0, 0] = np.inf
    elif case == "holdout_classes":
        hz = hz[:, :-1]
    elif case == "holdout_dims":
        hX = hX[:, :-1]
    elif case == "holdout_label_rows":
        hy = hy[:-1]
    elif case == "holdout_label_range":
        hy[0] = z.shape[1] if z.ndim == 2 else 99
    if case == "holdout_partial":
        args = (z, y, X, hz)
    elif case == "holdout_two_of_three":
        args = (z, y, X, hz, hy, None)
    else:
        args = (z, y, X, hz, hy, hX)
    with pytest.raises(ValueError, match=match):
        AuditData(*args)


def test_describe_against_a_direct_count(global_seed):
    z, y, X = _arrays(global_seed, n=200)
    # make the teacher right on a known set of members
    right = np.random.default_rng(global_seed + 1).random(200) < 0.6
    z[right, y[right]] = z[right].max(1) + 1.0
    pred = np.array([max(range(z.shape[1]), key=lambda j: z[i, j]) for i in range(len(y))])
    data = AuditData(z, y, X, z[:50], y[:50], X[:50])
    info = data.describe()
    assert info["n_members"] == 200 and info["c"] == 5 and info["d"] == 4
    assert info["teacher_member_acc"] == pytest.approx(np.sum(pred == y) / 200, abs=1e-15)
    assert info["teacher_member_acc"] >= right.mean()
    assert info["n_nonmembers"] == 50
    assert info["teacher_nonmember_acc"] == pytest.approx(np.sum(pred[:50] == y[:50]) / 50)
    bare = AuditData(z, y, X).describe()
    assert bare["n_nonmembers"] == 0 and "teacher_nonmember_acc" not in bare


# --- from a torch module -------------------------------------------------------------------------


@pytest.mark.parametrize("training", [True, False])
def test_from_model_equals_the_module_outputs(global_seed, training):
    torch.manual_seed(global_seed)
    d, c = 6, 4
    model = torch.nn.Linear(d, c).train(training)
    rng = np.random.default_rng(global_seed)
    X, Xh = rng.standard_normal((25, d)), rng.standard_normal((9, d))
    y, yh = rng.integers(0, c, 25), rng.integers(0, c, 9)
    data = AuditData.from_model(model, X, y, Xh, yh)
    assert model.training is training  # the flag is restored
    with torch.no_grad():
        expected = model(torch.as_tensor(X, dtype=torch.float32)).double().numpy()
        expected_h = model(torch.as_tensor(Xh, dtype=torch.float32)).double().numpy()
    assert data.logits.dtype == np.float64
    np.testing.assert_allclose(data.logits, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(data.holdout_logits, expected_h, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(data.labels, y)
    np.testing.assert_array_equal(data.inputs, X)
    # a float64 module gives its float64 outputs exactly (affine map computed directly)
    model64 = torch.nn.Linear(d, c).double()
    w, b = model64.weight.detach().numpy(), model64.bias.detach().numpy()
    np.testing.assert_allclose(AuditData.from_model(model64, X, y).logits, X @ w.T + b, rtol=1e-12)


def test_outputs_use_eval_mode(global_seed):
    torch.manual_seed(global_seed)
    model = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.Dropout(0.5)).train()
    X = np.random.default_rng(global_seed).standard_normal((40, 5))
    with torch.no_grad():
        expected = model[0](torch.as_tensor(X, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(outputs_of_model(model, X), expected, rtol=1e-6, atol=1e-7)
    assert model.training


def test_outputs_batched_equal_unbatched(global_seed):
    torch.manual_seed(global_seed)
    layers = torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)
    model = torch.nn.Sequential(*layers).double()  # float64: batching changes no rounding
    seen = []
    model.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    X = torch.randn(53, 5)  # float32 inputs are cast to the module's dtype
    full = outputs_of_model(model, X, batch_size=4096)
    assert seen == [53]
    for size in (1, 7, 52, 53):
        seen.clear()
        np.testing.assert_allclose(outputs_of_model(model, X, batch_size=size), full, rtol=1e-12)
        assert max(seen) <= size and sum(seen) == 53 and len(seen) == -(-53 // size)
    assert full.shape == (53, 3) and full.dtype == np.float64
    data = AuditData.from_model(model, X, torch.zeros(53, dtype=torch.long), batch_size=10)
    np.testing.assert_allclose(data.logits, full, rtol=1e-12)


def test_outputs_of_a_model_returning_logits_objects(global_seed):
    """Hugging Face style: the module returns an object with ``.logits``."""
    torch.manual_seed(global_seed)
    inner = torch.nn.Linear(4, 3).double()  # float64: batching changes no rounding

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return types.SimpleNamespace(logits=self.inner(x))

    X = torch.randn(11, 4)
    np.testing.assert_allclose(
        outputs_of_model(Wrapped(), X, batch_size=4), outputs_of_model(inner, X), rtol=1e-12
    )


def test_from_model_accepts_tensors_with_grad_and_upper_case_suffixes(tmp_path):
    import torch

    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3).double()
    X = torch.randn(12, 5, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 3, (12,))
    data = AuditData.from_model(model, X, y, X[:4], y[:4])
    assert data.inputs.shape == (12, 5) and data.holdout_labels.tolist() == y[:4].tolist()
    with open(tmp_path / "A.NPZ", "wb") as fh:  # np.savez would append ".npz" to the name
        np.savez(fh, logits=np.zeros((2, 2)), other=np.ones(3))
    assert load_array(f"{tmp_path / 'A.NPZ'}:other").tolist() == [1.0, 1.0, 1.0]
