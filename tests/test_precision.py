"""The precision policy (``simulate.precision``): a precision names a contract; the mechanism that
computes it here is probed (never read off a CPU flag); each probe outcome (engaged / not engaged
/ absent) is forced and checked; a contract with no fast path is refused in one line unless the
user insists; the mechanism is recorded in config.json and in every part; precision is part of a
run's identity (a bf16 identity also names its arithmetic) and a column of its table; reduced
precision changes numbers, not outcomes, on the same seeds.

Numerical expectations come from this machine's own probe, so the file passes on an AMX Xeon, on
AVX512-BF16 without AMX and on a CPU without bf16 units alike."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from softleak.cli import main
from softleak.simulate import protocol
from softleak.simulate.precision import (
    ARITHMETIC_KEY,
    CONTRACTS,
    SLOW_ENV,
    PrecisionUnavailable,
    check_precision,
    precision_scope,
    require_precision,
    resolve,
)
from softleak.simulate.precision_probe import FORCE_ENV, OUTCOMES, probe
from softleak.simulate.rundir import IdentityMismatch
from softleak.simulate.spec import SweepSpec
from softleak.simulate.store import read_parquet_checked
from softleak.simulate.sweep import run_sweep

MLP = SweepSpec(
    "mlp",
    d=(20,),
    c=(4,),
    n=(40,),
    rho=(0.5,),
    tau=(4.0,),
    seeds=1,
    p_teacher=(32,),
    p_student=(32,),
    teacher_epochs=300,
    student_epochs=300,
    teacher_lr=1e-2,
    student_lr=1e-2,
)
TINY = dataclasses.replace(MLP, teacher_epochs=5, student_epochs=5)

#: What each forced probe outcome makes of each precision on a CPU: (mechanism, native), or None
#: for a refusal; with SLOW_ENV set, a refusal becomes the slow mechanism.
EXPECTED = {
    "engaged": {
        "fp32": ("ieee", True),
        "bf16": ("onednn-bf16", True),
        "bf16r": ("bf16-tensors", True),
    },
    "not-engaged": {"fp32": ("ieee", True), "bf16": None, "bf16r": ("bf16-tensors", True)},
    "absent": {"fp32": ("ieee", True), "bf16": None, "bf16r": None},
}
SLOW = {"bf16": ("emulated", False), "bf16r": ("bf16-tensors", False)}


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv(FORCE_ENV, raising=False)
    monkeypatch.delenv(SLOW_ENV, raising=False)
    return monkeypatch


@pytest.fixture
def runs_anywhere(clean_env):
    """Reduced precisions run on this machine whatever it has (emulated where nothing pays)."""
    clean_env.setenv(SLOW_ENV, "1")
    return clean_env


@pytest.mark.parametrize(
    "precision, device, dtype, message",
    [
        ("fp16", "cpu", "float32", "one of fp32, tf32, bf16, bf16r"),
        ("tf32", "cpu", "float32", "CUDA tensor-core mode"),
        ("bf16", "cpu", "float64", "dtype float64"),
        ("bf16r", "cpu", "float64", "dtype float64"),
        ("bf16", "cuda", "float64", "dtype float64"),
    ],
)
def test_precisions_a_run_cannot_name_are_refused(precision, device, dtype, message):
    with pytest.raises(ValueError, match=message):
        check_precision(precision, device, dtype)
    check_precision("fp32", device, dtype)  # always fine
    check_precision("bf16r", "cuda", "float32")


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_each_probe_outcome_picks_its_mechanisms_and_refuses_the_rest(outcome, clean_env):
    clean_env.setenv(FORCE_ENV, outcome)
    for precision, want in EXPECTED[outcome].items():
        got = resolve(precision, "cpu")
        if want is None:
            assert got is None
            with pytest.raises(PrecisionUnavailable) as err:
                require_precision(precision, "cpu")
            text = str(err.value)
            assert "\n" not in text and "no fast path on this CPU" in text
            assert "--precision fp32" in text and f"{SLOW_ENV}=1" in text
            assert f"forced by {FORCE_ENV}={outcome}" in text  # a forced answer says so
            # bf16 points to bf16r exactly where bf16r pays
            assert ("or bf16r" in text) == (precision == "bf16" and outcome == "not-engaged")
        else:
            assert (got.name, got.native) == want
            assert got.record()["contract"] == CONTRACTS[precision]
    clean_env.setenv(SLOW_ENV, "1")  # the user insists
    for precision, want in EXPECTED[outcome].items():
        got = resolve(precision, "cpu")
        assert (got.name, got.native) == (want if want is not None else SLOW[precision])


def test_an_unknown_forced_outcome_is_one_line(clean_env):
    clean_env.setenv(FORCE_ENV, "maybe")
    with pytest.raises(ValueError, match="use one of engaged, not-engaged, absent"):
        probe("cpu")


@pytest.mark.parametrize("precision, outcome", [("bf16", "not-engaged"), ("bf16r", "absent")])
def test_a_refused_precision_is_one_line_exit_2_and_writes_nothing(
    precision, outcome, clean_env, tmp_path, capsys
):
    clean_env.setenv(FORCE_ENV, outcome)
    out = tmp_path / "x"
    argv = ["simulate", "multinomial", "--d", "6", "--n", "8", "--device", "cpu"]
    assert main([*argv, "--no-progress", "--precision", precision, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"precision {precision}" in err and "fp32" in err
    assert not out.exists()


def test_the_scope_sets_and_restores_the_flags_on_an_exception_too(clean_env):
    clean_env.setenv(FORCE_ENV, "engaged")  # the flag mechanism, whatever this CPU does
    before = torch.backends.mkldnn.matmul.fp32_precision
    with precision_scope("bf16", "cpu"):
        assert torch.backends.mkldnn.matmul.fp32_precision == "bf16"
    assert torch.backends.mkldnn.matmul.fp32_precision == before
    with pytest.raises(RuntimeError), precision_scope("bf16", "cpu"):
        raise RuntimeError("inside")
    assert torch.backends.mkldnn.matmul.fp32_precision == before
    torch.backends.mkldnn.matmul.fp32_precision = "bf16"
    try:  # fp32 turns a flag someone left on off inside, and puts it back after
        with precision_scope("fp32", "cpu"):
            assert torch.backends.mkldnn.matmul.fp32_precision == "ieee"
        assert torch.backends.mkldnn.matmul.fp32_precision == "bf16"
    finally:
        torch.backends.mkldnn.matmul.fp32_precision = before
    tf32 = torch.backends.cuda.matmul.allow_tf32
    with resolve("tf32", "cuda").context("cuda"):  # forced: tf32 engaged on the (absent) GPU
        assert torch.backends.cuda.matmul.allow_tf32 is True
    assert torch.backends.cuda.matmul.allow_tf32 == tf32


def _contract_distance(precision: str, out: torch.Tensor, a, b) -> float:
    """How far ``out`` lies from ``precision``'s contract for ``a @ b``, in units of the bf16
    rounding (the distance between float32's product and the oracle)."""
    oracle = a.bfloat16().double() @ b.bfloat16().double()
    if precision == "bf16r":  # the contract rounds the result once more
        oracle = oracle.float().bfloat16().double()
    scale = ((a @ b).double() - oracle).norm()
    return float((out.double() - oracle).norm() / scale)


@pytest.mark.parametrize("precision", ["bf16", "bf16r"])
def test_the_mechanism_this_machine_picks_meets_its_contract(precision, clean_env, global_seed):
    """The real probe decides: a mechanism it offers computes the contract (bf16: within 5% of
    the bf16 rounding from the oracle; bf16r: every result a bf16 number, within one rounding);
    where it offers none, the probe found no fast path, and the slow mechanism still meets it."""
    found = probe("cpu")
    mechanism = resolve(precision, "cpu")
    fast = found.flag_pays if precision == "bf16" else found.tensors_pay
    assert (mechanism is not None) == fast
    if mechanism is None:
        clean_env.setenv(SLOW_ENV, "1")
        mechanism = resolve(precision, "cpu")
    g = torch.Generator().manual_seed(global_seed)
    a, b = torch.randn(64, 256, generator=g), torch.randn(256, 32, generator=g)
    with mechanism.context("cpu"):
        out = a @ b
    assert out.dtype == torch.float32
    assert _contract_distance(precision, out, a, b) < (0.05 if precision == "bf16" else 0.6)
    rounded = torch.equal(out, out.bfloat16().float())
    assert rounded == (precision == "bf16r")
    assert not torch.equal(a @ b, out)  # the scope is gone after the block; it did round


def test_precision_is_part_of_the_identity_and_fp32_ids_are_unchanged(runs_anywhere, tmp_path):
    bf16 = dataclasses.replace(MLP, precision="bf16")
    bf16r = dataclasses.replace(MLP, precision="bf16r")
    assert "precision" not in MLP.run_settings() and ARITHMETIC_KEY not in MLP.run_settings()
    assert bf16.run_settings()[ARITHMETIC_KEY] == CONTRACTS["bf16"]
    key = (20, 4, 40, 0)
    ids = {s.unit_id(*key) for s in (MLP, bf16, bf16r)}
    assert len(ids) == 3 and len({s.teacher_id(*key) for s in (MLP, bf16, bf16r)}) == 3
    # the fp32 id of this spec before precisions existed (its settings hashed as they were)
    assert MLP.unit_id(*key) == "3b55f3b766ace767"  # computed at commit d877a8d
    run_sweep(TINY, tmp_path / "a")
    with pytest.raises(IdentityMismatch, match="precision: fp32 there, bf16 here"):
        run_sweep(dataclasses.replace(TINY, precision="bf16"), tmp_path / "a")


def test_a_bf16_folder_from_before_the_contracts_is_refused_not_resumed(runs_anywhere, tmp_path):
    """Before this policy a bf16 folder held bf16 products on one CPU and float32 products on
    another under one label: its identity names no arithmetic, so today's bf16 refuses it."""
    spec = dataclasses.replace(TINY, precision="bf16")
    run_sweep(spec, tmp_path / "old")
    config_path = tmp_path / "old" / "config.json"
    config = json.loads(config_path.read_text())
    del config["identity"][ARITHMETIC_KEY]  # as the folder was written then
    config["fingerprint"] = "0" * 16
    config_path.write_text(json.dumps(config))
    with pytest.raises(IdentityMismatch, match=f"{ARITHMETIC_KEY}: <unset> there, bf16 operands"):
        run_sweep(spec, tmp_path / "old")


def test_config_and_every_part_record_the_mechanism(runs_anywhere, tmp_path):
    spec = dataclasses.replace(TINY, precision="bf16r", n=(40, 48))
    table = run_sweep(spec, tmp_path / "b")
    assert set(table["precision"]) == {"bf16r"}
    mechanism = resolve("bf16r", "cpu")
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["precision"] == mechanism.record()
    assert config["precision"]["mechanism"] == "bf16-tensors"
    parts = sorted((tmp_path / "b" / "parts").glob("*.parquet"))
    assert len(parts) == 2
    for part in parts:
        _, meta = read_parquet_checked(part)
        assert meta["arithmetic"] == {
            "precision": "bf16r",
            "mechanism": "bf16-tensors",
            "native": mechanism.native,
        }
    manifest = (tmp_path / "b" / "manifest.jsonl").read_text().splitlines()
    assert all(json.loads(line)["arithmetic"]["precision"] == "bf16r" for line in manifest)
    table = run_sweep(dataclasses.replace(TINY, precision="fp32"), tmp_path / "f")
    assert set(table["precision"]) == {"fp32"}
    config = json.loads((tmp_path / "f" / "config.json").read_text())
    assert config["precision"]["mechanism"] == "ieee"


def test_teacher_outputs_are_float32_whatever_the_teacher_trained_in(runs_anywhere):
    spec = dataclasses.replace(MLP, precision="bf16r")
    (teacher,) = protocol.train_teachers(spec, [(20, 4, 40, 0)], threads=1)
    with torch.no_grad():
        z = teacher.model.forward(torch.as_tensor(teacher.data.X, dtype=torch.float32))
    np.testing.assert_array_equal(teacher.logits, z[0].double().numpy())


@pytest.mark.parametrize("precision", ["bf16", "bf16r"])
def test_reduced_training_ends_where_fp32_does_on_the_same_seeds(
    precision, runs_anywhere, tmp_path, global_seed
):
    """An MLP teacher memorizes 40 random labels and its students learn them from soft labels,
    in fp32 and at a reduced precision from the same seeds: the numbers change (the products
    round) but not the outcome -- both teachers memorize, and the students' accuracies agree
    within two of the 20-point sets' steps."""
    spec = dataclasses.replace(MLP, seed=global_seed)
    fp32 = run_sweep(spec, tmp_path / "fp32")
    low = run_sweep(dataclasses.replace(spec, precision=precision), tmp_path / precision)
    assert not np.allclose(fp32["train_ce"], low["train_ce"], rtol=0, atol=1e-7)
    assert (fp32["teacher_train_acc"] == 1).all() and (low["teacher_train_acc"] == 1).all()
    cols = ["student_train_acc", "student_test_acc"]
    diff = (fp32[cols].to_numpy() - low[cols].to_numpy()).__abs__().max()
    assert diff <= 2 / 20 + 1e-9, pd.concat([fp32[cols], low[cols]], axis=1)


def test_tf32_on_a_cpu_and_the_deprecated_flag_are_one_line(tmp_path, capsys):
    base = ["simulate", "multinomial", "--d", "6", "--n", "8", "--device", "cpu", "--no-progress"]
    for flag in (["--precision", "tf32"], ["--allow-tf32"]):
        assert main([*base, *flag, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert "tf32 is a CUDA tensor-core mode" in err
    assert not (tmp_path / "x").exists()


def test_the_speed_probe_times_one_thread_and_restores_the_threads():
    """On two threads with the other core busy, float32 BLAS stalled on hand-offs and a CPU
    without bf16 units read as 1.9x faster in bf16: the speed probe times on one thread."""
    from softleak.simulate.precision_probe import _speedup

    old = torch.get_num_threads()
    seen = []
    real = torch.set_num_threads

    def spy(n):
        seen.append(n)
        real(n)

    torch.set_num_threads = spy
    try:
        _speedup("cpu", "tensors")
    finally:
        torch.set_num_threads = real
    assert seen == [1, old] and torch.get_num_threads() == old


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="oneDNN's x86 ISA limit")
def test_a_cpu_without_bf16_units_is_probed_absent(tmp_path):
    """oneDNN limited to AVX2 stands in for a CPU without bf16 units (bf16 GEMMs measured 0.3-2.7
    GFLOP/s there against ~80 in float32): the probe says no bf16 arithmetic pays, whatever the
    CPU's flags say."""
    code = (
        "from softleak.simulate.precision_probe import probe\n"
        "p = probe('cpu'); print(p.outcome, p.tensors_speedup)\n"
    )
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    env.pop(FORCE_ENV, None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    outcome, speedup = out.stdout.split()
    assert outcome == "absent" and float(speedup) < 0.5, out.stderr[-2000:]
