"""``softleak simulate export-teacher``: a sweep teacher's outputs as audit input files.

Oracles: the exported arrays equal the protocol's regenerated data (``protocol.teacher_data``,
``data.make_validation``) and an independent forward pass of the saved weights; the accuracies
recomputed from the files equal those the sweep recorded in results.parquet.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import _default_seed

from softleak.cli import main
from softleak.simulate import protocol
from softleak.simulate.data import make_validation
from softleak.simulate.models import ReplicaMLP
from softleak.simulate.precision import DTYPES
from softleak.simulate.spec import SweepSpec
from softleak.simulate.store import Store
from softleak.simulate.teacher_outputs import load_sweep_spec

# The exported logits and a fresh forward pass of the saved float32 weights run the same float32
# operations on the same inputs; allow float32 rounding in case the two take different kernels.
FLOAT32_FORWARD_RTOL = 1e-6

TINY = ["--teacher-epochs", "200", "--teacher-lr", "0.01", "--rho", "0.5"]
TINY_STUDENTS = ["--student-epochs", "5", "--no-progress", "--device", "cpu"]


def _sweep(tmp_path_factory, name: str, *args: str):
    out = tmp_path_factory.mktemp(name) / "sweep"
    seed = str(_default_seed())
    assert main(["simulate", *args, *TINY, *TINY_STUDENTS, "--seed", seed, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def mlp_sweep(tmp_path_factory):
    # 4 teachers (n = 20, 40; 2 seeds), p = 8 hidden units: ~1 s.
    return _sweep(
        tmp_path_factory,
        "mlp",
        "mlp",
        *("--d", "10", "--c", "4", "--n", "20,40", "--seeds", "2", "--p-teacher", "8"),
    )


@pytest.fixture(scope="module")
def multinomial_sweep(tmp_path_factory):
    # Two input dimensions with the same n: a teacher is named by --d.
    return _sweep(
        tmp_path_factory, "multinomial", "multinomial", "--d", "6,8", "--c", "3", "--n", "24"
    )


def _export(sweep, out, *extra: str) -> int:
    return main(["simulate", "export-teacher", str(sweep), "--out", str(out), *extra])


def _load(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _saved_forward(sweep, spec: SweepSpec, key: tuple, X: np.ndarray) -> np.ndarray:
    """Logits (m, c) of the saved teacher weights, loaded and run independently of the export."""
    path = Store(sweep).teacher_path(spec.teacher_id(*key))
    state = torch.load(path, weights_only=True, map_location="cpu")
    model = ReplicaMLP.from_state(state, spec.has_bias)
    with torch.no_grad():
        z = model.forward(torch.as_tensor(X, dtype=DTYPES[spec.dtype]))
    return z[0].double().numpy()


def _results_row(sweep, n: int, seed: int, d: int | None = None) -> pd.Series:
    df = pd.read_parquet(sweep / "results.parquet")
    df = df[(df.n == n) & (df.seed == seed) & ((df.d == d) if d is not None else True)]
    return df.iloc[0]


def test_default_export_is_the_largest_teacher_with_its_data_and_outputs(mlp_sweep, tmp_path):
    out = tmp_path / "export"
    assert _export(mlp_sweep, out) == 0
    spec = load_sweep_spec(mlp_sweep)
    key = (10, 4, 40, 0)  # default: the largest n, seed 0
    info = json.loads((out / "teacher.json").read_text())
    assert (info["d"], info["c"], info["n"], info["seed"]) == key
    assert info["teacher_id"] == spec.teacher_id(*key)
    assert info["experiment"] == "mlp" and info["p_teacher"] == [8] and info["tau"] == [20.0]

    members, holdout = _load(out / "members.npz"), _load(out / "holdout.npz")
    for arrays, m in ((members, 40), (holdout, spec.n_val)):
        assert sorted(arrays) == ["inputs", "labels", "logits"]
        assert arrays["inputs"].shape == (m, 10) and arrays["inputs"].dtype == np.float64
        assert arrays["labels"].shape == (m,) and arrays["labels"].dtype == np.int64
        assert arrays["logits"].shape == (m, 4) and arrays["logits"].dtype == np.float64

    data = protocol.teacher_data(spec, *key)
    np.testing.assert_array_equal(members["inputs"], data.X)
    np.testing.assert_array_equal(members["labels"], data.y)
    np.testing.assert_allclose(
        members["logits"],
        _saved_forward(mlp_sweep, spec, key, data.X),
        rtol=FLOAT32_FORWARD_RTOL,
        atol=0,
    )
    X_val, y_val = make_validation(spec.n_val, 10, 4, spec.val_seed(*key), spec.val_kind)
    np.testing.assert_array_equal(holdout["inputs"], X_val)
    np.testing.assert_array_equal(holdout["labels"], y_val)
    np.testing.assert_allclose(
        holdout["logits"], _saved_forward(mlp_sweep, spec, key, X_val), rtol=FLOAT32_FORWARD_RTOL
    )

    # Accuracies from the files equal what the sweep recorded (same weights, same data).
    row = _results_row(mlp_sweep, 40, 0)
    train_acc = np.mean(members["logits"].argmax(1) == members["labels"])
    val_acc = np.mean(holdout["logits"].argmax(1) == holdout["labels"])
    assert train_acc == pytest.approx(row.teacher_train_acc, abs=1e-12)
    assert info["teacher_train_acc"] == pytest.approx(train_acc, abs=1e-12)
    assert val_acc == pytest.approx(row.teacher_val_acc, abs=1e-12)
    assert info["teacher_val_acc"] == pytest.approx(val_acc, abs=1e-12)


def test_chosen_teacher_and_holdout_size(mlp_sweep, tmp_path, capsys):
    out = tmp_path / "export"
    assert _export(mlp_sweep, out, "--n", "20", "--seed", "1", "--n-holdout", "7", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["n"], info["seed"], info["n_holdout"]) == (20, 1, 7)
    spec = load_sweep_spec(mlp_sweep)
    key = (10, 4, 20, 1)
    members, holdout = _load(info["members"]), _load(info["holdout"])
    np.testing.assert_array_equal(members["labels"], protocol.teacher_data(spec, *key).y)
    X7, y7 = make_validation(7, 10, 4, spec.val_seed(*key), spec.val_kind)
    np.testing.assert_array_equal(holdout["inputs"], X7)
    np.testing.assert_array_equal(holdout["labels"], y7)
    row = _results_row(mlp_sweep, 20, 1)
    acc = np.mean(members["logits"].argmax(1) == members["labels"])
    assert acc == pytest.approx(row.teacher_train_acc, abs=1e-12)


def test_multinomial_sweep_exports_the_named_dimension(multinomial_sweep, tmp_path, capsys):
    out = tmp_path / "export"
    # Two teachers (d = 6 and 8) have n = 24, seed 0: the export asks which.
    assert _export(multinomial_sweep, out) == 2
    assert "several teachers" in capsys.readouterr().err
    assert not out.exists()
    assert _export(multinomial_sweep, out, "--d", "8") == 0
    spec = load_sweep_spec(multinomial_sweep)
    key = (8, 3, 24, 0)
    members = _load(out / "members.npz")
    data = protocol.teacher_data(spec, *key)
    np.testing.assert_array_equal(members["inputs"], data.X)
    assert members["logits"].shape == (24, 3)
    np.testing.assert_allclose(
        members["logits"],
        _saved_forward(multinomial_sweep, spec, key, data.X),
        rtol=FLOAT32_FORWARD_RTOL,
    )
    acc = np.mean(members["logits"].argmax(1) == members["labels"])
    assert acc == pytest.approx(_results_row(multinomial_sweep, 24, 0, d=8).teacher_train_acc)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("softleak: error:")
    return err


@pytest.mark.parametrize(
    ("extra", "needle"),
    [(["--n", "30"], "no saved teacher with n=30"), (["--seed", "5"], "seed=5")],
)
def test_missing_teacher_is_a_usage_error(mlp_sweep, tmp_path, capsys, extra, needle):
    out = tmp_path / "export"
    assert _export(mlp_sweep, out, *extra) == 2
    err = _one_line_error(capsys)
    assert needle in err and "d=10 c=4 n=40 seed=1" in err  # names the teachers available
    assert not out.exists()


def test_sweep_without_saved_weights_is_a_usage_error(mlp_sweep, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(mlp_sweep, copy)
    shutil.rmtree(copy / "teachers")
    out = tmp_path / "export"
    assert _export(copy, out) == 2
    assert "no saved teacher weights" in _one_line_error(capsys)
    assert not out.exists()


def test_logistic_pinv_empty_and_missing_directories_are_usage_errors(tmp_path, capsys):
    pinv = tmp_path / "pinv"
    args = ["--d", "6", "--n", "12", "--teacher-epochs", "20", "--no-progress", "--device", "cpu"]
    assert main(["simulate", "logistic-pinv", *args, "--out", str(pinv)]) == 0
    capsys.readouterr()
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [(pinv, "single-logit"), (empty, "no config.json"), (tmp_path / "nope", "not a dir")]
    for sweep, needle in cases:
        out = tmp_path / "export"
        assert _export(sweep, out) == 2
        assert needle in _one_line_error(capsys)
        assert not out.exists()


def test_spec_round_trips_through_config_json(global_seed):
    specs = [
        SweepSpec("mlp", d=(10, 20), c=(4,), n=(40,), tau=(20.0, 5.0), p_teacher=(8, 4)),
        SweepSpec("multinomial", c=(3,), alpha=(0.5, 1.25), ablation=("none", "top_k:1")),
        SweepSpec("logistic-pinv", d=(30,), alpha=(1.0,), seed=global_seed, nested_data=True),
    ]
    for spec in specs:
        back = SweepSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
        assert back == spec
        assert back.unit_id(*back.teacher_sizes()[0], 0) == spec.unit_id(
            *spec.teacher_sizes()[0], 0
        )
    with pytest.raises(ValueError, match="not SweepSpec fields: colour"):
        SweepSpec.from_dict({**specs[0].to_dict(), "colour": "red"})
    with pytest.raises(ValueError, match="rho"):  # validation still runs
        SweepSpec.from_dict({**specs[0].to_dict(), "rho": [1.5]})


def test_exported_config_spec_is_the_sweep_spec(mlp_sweep):
    spec = load_sweep_spec(mlp_sweep)
    config = Store(mlp_sweep).read_config()
    units = {uid: tuple(key) for uid, key in config["units"].items()}
    assert units == {spec.unit_id(*k): k for k in _keys(spec)}
    assert dataclasses.replace(spec, device="cpu").teacher_id(10, 4, 40, 0) == spec.teacher_id(
        10, 4, 40, 0
    )


def _keys(spec: SweepSpec) -> list[tuple]:
    return [(d, c, n, rep) for d, c, n in spec.teacher_sizes() for rep in range(spec.seeds)]
