"""The precision policy (``simulate.precision``): what each precision may run on, the scope that
sets and restores the backend flags around training steps only, precision as part of a run's
identity and a column of its table, and bf16 against fp32 on the same seeds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from softleak.cli import main
from softleak.simulate import protocol
from softleak.simulate.precision import check_precision, cpu_has_bf16_units, precision_scope
from softleak.simulate.rundir import IdentityMismatch
from softleak.simulate.spec import SweepSpec
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


@pytest.mark.parametrize(
    "precision, device, dtype, message",
    [
        ("fp16", "cpu", "float32", "one of fp32, tf32, bf16"),
        ("tf32", "cpu", "float32", "CUDA tensor-core mode"),
        ("bf16", "cpu", "float64", "dtype float64"),
        ("bf16", "cuda", "float32", "explicit casts"),
    ],
)
def test_precisions_a_run_cannot_use_are_refused(precision, device, dtype, message):
    with pytest.raises(ValueError, match=message):
        check_precision(precision, device, dtype)
    check_precision("fp32", device, dtype)  # always fine
    check_precision("bf16", "cuda", "float32", cuda_bf16=True)  # GPT-2's autocast


def test_the_scope_sets_and_restores_the_flags_on_an_exception_too():
    before = torch.backends.mkldnn.matmul.fp32_precision
    with precision_scope("bf16", "cpu"):
        assert torch.backends.mkldnn.matmul.fp32_precision == "bf16"
    assert torch.backends.mkldnn.matmul.fp32_precision == before
    with pytest.raises(RuntimeError), precision_scope("bf16", "cpu"):
        raise RuntimeError("inside")
    assert torch.backends.mkldnn.matmul.fp32_precision == before
    with precision_scope("fp32", "cpu"):  # fp32 touches nothing
        assert torch.backends.mkldnn.matmul.fp32_precision == before
    tf32 = torch.backends.cuda.matmul.allow_tf32
    with precision_scope("tf32", "cuda"):
        assert torch.backends.cuda.matmul.allow_tf32 is True
    assert torch.backends.cuda.matmul.allow_tf32 == tf32


@pytest.mark.skipif(not cpu_has_bf16_units(), reason="no bf16 matrix units on this CPU")
def test_bf16_products_round_and_accumulate_in_float32(global_seed):
    g = torch.Generator().manual_seed(global_seed)
    a, b = torch.randn(64, 256, generator=g), torch.randn(256, 32, generator=g)
    exact = a.double() @ b.double()
    with precision_scope("bf16", "cpu"):
        low = a @ b
    assert low.dtype == torch.float32
    rel = ((low.double() - exact).norm() / exact.norm()).item()
    # bf16 operands (8-bit mantissa: relative rounding <= 2^-9 each) with float32 accumulation:
    # the product's relative error is ~2^-9 / sqrt(...) -- clearly above float32's, well below 1%
    assert 1e-5 < rel < 1e-2
    assert ((a @ b).double() - exact).norm().item() / exact.norm().item() < 1e-6


def test_precision_is_part_of_the_identity_and_fp32_ids_are_unchanged(tmp_path):
    bf16 = dataclasses.replace(MLP, precision="bf16")
    assert "precision" not in MLP.run_settings() and bf16.run_settings()["precision"] == "bf16"
    key = (20, 4, 40, 0)
    assert MLP.unit_id(*key) != bf16.unit_id(*key)
    assert MLP.teacher_id(*key) != bf16.teacher_id(*key)
    run_sweep(dataclasses.replace(MLP, teacher_epochs=5, student_epochs=5), tmp_path / "a")
    with pytest.raises(IdentityMismatch, match="precision: fp32 there, bf16 here"):
        run_sweep(dataclasses.replace(bf16, teacher_epochs=5, student_epochs=5), tmp_path / "a")


def test_tf32_on_a_cpu_and_the_deprecated_flag_are_one_line(tmp_path, capsys):
    base = ["simulate", "multinomial", "--d", "6", "--n", "8", "--device", "cpu", "--no-progress"]
    for flag in (["--precision", "tf32"], ["--allow-tf32"]):
        assert main([*base, *flag, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert "tf32 is a CUDA tensor-core mode" in err
    assert not (tmp_path / "x").exists()


def test_every_table_records_its_precision(tmp_path):
    spec = dataclasses.replace(MLP, teacher_epochs=5, student_epochs=5, precision="bf16")
    table = run_sweep(spec, tmp_path / "b")
    assert set(table["precision"]) == {"bf16"}
    table = run_sweep(dataclasses.replace(spec, precision="fp32"), tmp_path / "f")
    assert set(table["precision"]) == {"fp32"}


@pytest.mark.skipif(not cpu_has_bf16_units(), reason="no bf16 matrix units on this CPU")
def test_teacher_outputs_are_float32_whatever_the_teacher_trained_in():
    spec = dataclasses.replace(MLP, precision="bf16")
    (teacher,) = protocol.train_teachers(spec, [(20, 4, 40, 0)], threads=1)
    with torch.no_grad():
        z = teacher.model.forward(torch.as_tensor(teacher.data.X, dtype=torch.float32))
    np.testing.assert_array_equal(teacher.logits, z[0].double().numpy())


@pytest.mark.skipif(not cpu_has_bf16_units(), reason="no bf16 matrix units on this CPU")
def test_bf16_training_ends_where_fp32_does_on_the_same_seeds(tmp_path, global_seed):
    """An MLP teacher memorizes 40 random labels and its students learn them from soft labels,
    in fp32 and in bf16 from the same seeds: bf16 changes the numbers (the flag is on) but not
    the outcome -- both teachers memorize, and the students' accuracies agree within two of the
    40-point sets' steps."""
    spec = dataclasses.replace(MLP, seed=global_seed)
    fp32 = run_sweep(spec, tmp_path / "fp32")
    bf16 = run_sweep(dataclasses.replace(spec, precision="bf16"), tmp_path / "bf16")
    assert not np.allclose(fp32["train_ce"], bf16["train_ce"], rtol=0, atol=1e-7)
    assert (fp32["teacher_train_acc"] == 1).all() and (bf16["teacher_train_acc"] == 1).all()
    cols = ["student_train_acc", "student_test_acc"]
    diff = (fp32[cols].to_numpy() - bf16[cols].to_numpy()).__abs__().max()
    assert diff <= 2 / 20 + 1e-9, pd.concat([fp32[cols], bf16[cols]], axis=1)
