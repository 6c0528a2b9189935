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
        ("bf16", "cuda", "float64", "dtype float64"),
    ],
)
def test_precisions_a_run_cannot_use_are_refused(precision, device, dtype, message):
    with pytest.raises(ValueError, match=message):
        check_precision(precision, device, dtype)
    check_precision("fp32", device, dtype)  # always fine
    check_precision("bf16", "cuda", "float32")  # explicit casts there


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


# ---------------------------------------------------------------------------------------------
# bf16 by explicit casts (the CUDA path), checked on the CPU against the exact-rounding oracle
# and the mkldnn bf16 products
# ---------------------------------------------------------------------------------------------
def _mlp_step():
    from softleak.simulate.losses import Objective
    from softleak.simulate.models import ReplicaMLP
    from softleak.simulate.train import _analytic_grads

    R, n, d, k = 3, 256, 96, 16
    model = ReplicaMLP.init(range(R), d, k, (64,), True)
    g = torch.Generator().manual_seed(1)
    X = torch.randn(n, d, generator=g)
    targets = model.empty_like_logits(n, k)
    targets.copy_(torch.softmax(2 * torch.randn(R, n, k, generator=g), -1))
    objective = Objective("soft", targets)

    def grads():
        with torch.no_grad():
            return _analytic_grads(model, X, objective)

    return grads


def _transformer_step():
    from softleak.simulate.losses import Objective, normalized_weights
    from softleak.simulate.train import _autograd_grads, _loss
    from softleak.simulate.transformer import ReplicaTransformer

    R, n, p = 2, 128, 23
    model = ReplicaTransformer.init(range(R), p, d_model=64, n_heads=2, d_head=32, d_mlp=128)
    g = torch.Generator().manual_seed(1)
    a, b = (torch.randint(0, p, (R, n), generator=g) for _ in range(2))
    X = torch.stack([a, b, torch.full_like(a, p)], -1)
    targets = torch.softmax(torch.randn(R, n, p, generator=g), -1)
    objective = Objective("soft", targets, normalized_weights(torch.ones(R, n)))
    return lambda: _autograd_grads(_loss, model, X, objective)


def _distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """Largest relative difference over a step's gradients."""
    return max(float((x - y).norm() / y.norm()) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("step", [_mlp_step, _transformer_step], ids=["mlp", "transformer"])
def test_bf16_casts_cover_every_product_of_a_step(step):
    grads = step()
    fp32 = grads()
    with precision_scope("bf16", "cpu", casts="exact"):
        exact = grads()
    with precision_scope("bf16", "cpu", casts=True):  # the CUDA code path, run on a CPU
        casts = grads()
    rounding = _distance(exact, fp32)
    # bf16 operands change a step's gradient at the bf16 resolution (2^-8), not more
    assert 1e-4 < rounding < 0.1
    # the cast path is the exact contract plus one bf16 rounding of each product
    assert _distance(casts, exact) < 2 * rounding
    # and it does round: it is as far from fp32 as bf16 operands put the exact contract
    assert _distance(casts, fp32) > 0.5 * rounding
    assert all(float((x - y).abs().max()) > 0 for x, y in zip(casts, fp32, strict=True))
    # every parameter's gradient moved: no product of the step escaped the mode
    assert all(float((x - y).abs().max()) > 0 for x, y in zip(exact, fp32, strict=True))
    if cpu_has_bf16_units():
        with precision_scope("bf16", "cpu"):  # mkldnn's bf16 products: the same contract
            mkldnn = grads()
        assert _distance(mkldnn, exact) < 0.05 * rounding
    assert _distance(grads(), fp32) == 0  # the mode is gone after the block


def test_the_casts_keep_float32_results_and_the_added_terms():
    from softleak.simulate.precision import BF16Casts

    g = torch.Generator().manual_seed(0)
    A, B = torch.randn(4, 8, 16, generator=g), torch.randn(4, 16, 5, generator=g)
    bias = torch.randn(4, 1, 5, generator=g) * 1e-3 + 1.0  # 1 + 1e-3 x: erased by bf16 rounding
    for exact in (True, False):
        with BF16Casts(exact=exact):
            out = torch.baddbmm(bias, A, B)
            lin = torch.nn.functional.linear(A[0], B[0].T, bias[0, 0])
            prod = A @ B
        assert out.dtype == lin.dtype == prod.dtype == torch.float32
        ref = torch.bmm(A.bfloat16().float(), B.bfloat16().float())
        tol = 1e-6 if exact else 1e-2  # exact: float32 round-off of adding the bias back
        torch.testing.assert_close(out - bias, ref, rtol=tol, atol=tol * 4)
        torch.testing.assert_close(prod, ref, rtol=tol, atol=tol * 4)
        torch.testing.assert_close(lin - bias[0, 0], ref[0], rtol=tol, atol=tol * 4)
        # the added term stays float32 in both modes: its 1e-3 part survives to round-off
        # (rounding it to bf16, or dropping that part, moves the difference by >= 1e-3)
        torch.testing.assert_close(out - prod, bias.expand_as(out), rtol=0, atol=1e-6)
        torch.testing.assert_close(lin - prod[0], bias[0, 0].expand_as(lin), rtol=0, atol=1e-6)
        # float64 products are not cast
        with BF16Casts(exact=exact):
            wide = A.double() @ B.double()
        assert wide.dtype == torch.float64
        torch.testing.assert_close(wide, A.double() @ B.double(), rtol=0, atol=0)
