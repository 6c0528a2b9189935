"""The linear protocol against closed forms: pinv recovery, L-BFGS -> projection, batching."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from softleak.simulate import protocol
from softleak.simulate.spec import SweepSpec
from softleak.simulate.sweep import run_sweep


def _spec(**kw):
    base = dict(
        experiment="multinomial",
        d=(12,),
        c=(3,),
        n=(18,),
        rho=(0.5,),
        tau=(2.0,),
        seeds=3,
        teacher_epochs=200,
        student_epochs=150,
        student_lr=1e-2,
        dtype="float64",
    )
    base.update(kw)
    return SweepSpec(**base)


def test_pinv_student_recovers_teacher_once_rho_n_reaches_d(global_seed, tmp_path):
    spec = SweepSpec(
        "logistic-pinv",
        d=(30,),
        n=(40, 80),
        rho=(0.5, 0.8),
        seeds=3,
        teacher_epochs=300,
        seed=global_seed,
    )
    df = run_sweep(spec, tmp_path)
    full = df[df.rho * df.n >= df.d + 1]  # rho n >= d (one spare: centred features lose a rank)
    assert len(full)
    # Exact recovery: the student's logits equal the teacher's on held-out data.
    assert full.test_mse.max() < 1e-12 * (1 + full.train_mse.abs().max()) + 1e-9
    assert (full.match_teacher_test_acc == 1).all()
    part = df[df.rho * df.n < df.d - 1]
    assert (part.test_mse > 1e-6).all()


def test_pinv_held_out_accuracy_above_chance_and_rises_with_alpha(global_seed, tmp_path):
    # d = 100, rho = 0.8: alpha 0.6 (rho n = 48 < d) vs 1.0 (80 < d). Measured over 4 base seeds
    # x 12 replicates: per-replicate std ~0.1-0.16, means 0.50-0.61 (alpha 0.6) and 0.66-0.76
    # (alpha 1.0). With 24 replicates the standard error of a mean is ~0.025: alpha 1.0 sits
    # > 4 of them above 0.55, and above alpha 0.6 by ~0.15 (~4 standard errors of the difference).
    spec = SweepSpec(
        "logistic-pinv",
        d=(100,),
        alpha=(0.6, 1.0),
        rho=(0.8,),
        seeds=24,
        teacher_epochs=1500,
        seed=global_seed,
    )
    df = run_sweep(spec, tmp_path)
    acc = df.groupby("alpha").student_test_acc.mean()
    assert acc.loc[1.0] > 0.55 and acc.loc[1.0] > acc.loc[0.6]


def test_shuffled_pinv_students_lose_the_held_out_signal(global_seed, tmp_path):
    spec = SweepSpec(
        "logistic-pinv",
        d=(20,),
        alpha=(1.5,),
        rho=(0.8,),
        seeds=20,
        teacher_epochs=2000,
        shuffle="both",
        seed=global_seed,
    )
    df = run_sweep(spec, tmp_path)
    match = df.groupby("shuffle").match_teacher_test_acc.mean()
    # Unshuffled: exact recovery of the teacher (rho n = 24 > d + 1), whether or not the teacher
    # fits its labels at this small d. Shuffled: 6 held-out points x 20 seeds near chance (measured
    # ~0.5-0.6; standard error ~0.045, so 0.8 is > 4 of them away).
    assert match[False] == 1.0 and match[True] < 0.8


def test_batched_teachers_equal_teachers_alone(global_seed):
    spec = _spec(seed=global_seed)
    keys = [(12, 3, 18, r) for r in range(3)]
    together = protocol.train_teachers(spec, keys)
    for t in together:
        alone = protocol.train_teachers(spec, [t.key])[0]
        np.testing.assert_allclose(t.logits, alone.logits, rtol=1e-9, atol=1e-9)


def test_nested_teachers_equal_teachers_alone(global_seed):
    spec = _spec(nested_data=True, n=(9, 18), seeds=1, seed=global_seed)
    keys = [(12, 3, 9, 0), (12, 3, 18, 0)]
    together = protocol.train_teachers(spec, keys)
    assert together[0].data.n == 9
    np.testing.assert_array_equal(together[0].data.X, together[1].data.X[:9])
    for t in together:
        alone = protocol.train_teachers(spec, [t.key])[0]
        np.testing.assert_allclose(t.logits, alone.logits, rtol=1e-9, atol=1e-9)


def test_batched_students_equal_students_alone(global_seed):
    spec = _spec(
        rho=(0.3, 0.7),
        tau=(0.5, 4.0),
        shuffle="both",
        seeds=1,
        seed=global_seed,
        ablation=("none", "drop_class:1"),
    )
    teacher = protocol.train_teachers(spec, [(12, 3, 18, 0)])[0]
    runs = protocol.student_runs(spec, teacher.key)
    rows, _, _ = protocol.gradient_students(spec, teacher, runs)
    for run, row in zip(runs, rows, strict=True):
        alone, _, _ = protocol.gradient_students(spec, teacher, [run])
        for k in ("student_train_acc", "student_test_acc", "train_ce", "test_mse"):
            assert row[k] == pytest.approx(alone[0][k], rel=1e-9, abs=1e-12), k


def test_lbfgs_student_converges_to_the_projection_of_the_teacher(global_seed):
    """Phuong & Lampert (2019): from zero init, the student that fits soft labels at tau is
    P_row(W_T) / tau up to the per-class shift, so its logits on ANY input are those of the
    projected teacher. rho n < d here, so the projection differs from the teacher."""
    spec = _spec(
        d=(20,),
        n=(24,),
        rho=(0.5,),
        tau=(3.0,),
        seeds=1,
        solver="lbfgs",
        student_init="zero",
        student_epochs=500,
        teacher_epochs=500,
        seed=global_seed,
    )
    teacher = protocol.train_teachers(spec, [(20, 3, 24, 0)])[0]
    runs = protocol.student_runs(spec, teacher.key)
    _, _, model = protocol.gradient_students(spec, teacher, runs)
    from softleak.simulate.data import student_split
    from softleak.theory.pinv import project_rowspace

    train, _ = student_split(teacher.data.y, 0.5, 3)
    W_T = teacher.model.params[0][0].double().numpy()  # (c, d)
    W_proj = project_rowspace(teacher.data.X[train], W_T.T).T / 3.0
    W_S = model.params[0][0].double().numpy()
    centre = lambda W: W - W.mean(0, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(centre(W_S), centre(W_proj), atol=1e-5)


def test_tiny_tau_makes_shuffle_irrelevant(global_seed):
    """tau -> 0: soft labels become one-hot, and a within-class shuffle changes nothing."""
    spec = _spec(
        tau=(1e-3,), shuffle="both", seeds=1, seed=global_seed, teacher_lr=0.05, teacher_epochs=500
    )
    teacher = protocol.train_teachers(spec, [(12, 3, 18, 0)])[0]
    assert teacher.train_acc == 1.0
    rows, _, _ = protocol.gradient_students(spec, teacher, protocol.student_runs(spec, teacher.key))
    a, b = rows
    assert a["shuffle"] != b["shuffle"]
    for k in ("student_train_acc", "student_test_acc", "train_ce"):
        assert a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-9)


def test_same_spec_same_table(tmp_path, global_seed):
    spec = _spec(seeds=2, rho=(0.5, 0.8), tau=(1.0, 3.0), seed=global_seed, dtype="float32")
    a = run_sweep(spec, tmp_path / "a").drop(columns="wall_s")
    b = run_sweep(spec, tmp_path / "b").drop(columns="wall_s")
    pd.testing.assert_frame_equal(a, b)
    assert {"data_seed", "teacher_seed", "model_seed", "seed"} <= set(a.columns)


def test_curves_recorded(tmp_path, global_seed):
    spec = _spec(seeds=1, curve_every=50, seed=global_seed)
    run_sweep(spec, tmp_path)
    curves = pd.read_parquet(tmp_path / "curves.parquet")
    assert list(curves.columns) == ["run_id", "epoch", "metric", "value"]
    assert sorted(curves.epoch.unique()) == [0, 50, 100, 150]
    assert {"student_train_acc", "student_test_acc", "train_ce"} <= set(curves.metric)


def test_spec_validation():
    with pytest.raises(ValueError, match="rho"):
        _spec(rho=(1.2,))
    with pytest.raises(ValueError, match="tau"):
        _spec(tau=(0.0,))
    with pytest.raises(ValueError, match="multiple"):
        _spec(n=(19,))
    with pytest.raises(ValueError, match="one of"):
        dataclasses.replace(_spec(), alpha=(1.0,))
    with pytest.raises(ValueError, match="experiment"):
        _spec(experiment="nope")
    assert _spec(alpha=(0.5,), n=None).teacher_sizes() == [(12, 3, 18)]


def test_float64_teachers_memorize_below_capacity(global_seed):
    spec = _spec(d=(40,), c=(2,), n=(40,), teacher_epochs=3000, seeds=2, seed=global_seed)
    for t in protocol.train_teachers(spec, [(40, 2, 40, 0), (40, 2, 40, 1)]):
        assert t.train_acc == 1.0
        assert abs(t.val_acc - 0.5) < 0.1  # random labels: chance on fresh data (n_val = 1000)
    assert torch.get_num_threads() >= 1


def test_mlp_students_batched_equal_alone(global_seed):
    spec = _spec(
        experiment="mlp",
        p_teacher=(6,),
        p_student=(4,),
        rho=(0.3, 0.7),
        tau=(1.0, 20.0),
        seeds=1,
        seed=global_seed,
    )
    assert spec.has_bias  # MLPs carry biases, as in the reference
    teacher = protocol.train_teachers(spec, [(12, 3, 18, 0)])[0]
    runs = protocol.student_runs(spec, teacher.key)
    rows, _, model = protocol.gradient_students(spec, teacher, runs)
    assert [p.shape[1:] for p in model.params] == [(4, 12), (4,), (3, 4), (3,)]
    for run, row in zip(runs, rows, strict=True):
        alone, _, _ = protocol.gradient_students(spec, teacher, [run])
        assert row["train_ce"] == pytest.approx(alone[0]["train_ce"], rel=1e-9, abs=1e-12)


def test_mlp_command_line(tmp_path, capsys):
    from softleak.cli import main

    out = tmp_path / "mlp"
    args = [
        "simulate",
        "mlp",
        "--d",
        "10",
        "--c",
        "5",
        "--n",
        "50",
        "--rho",
        "0.6",
        "--p-teacher",
        "8",
        "--p-student",
        "12,6",
        "--teacher-epochs",
        "50",
        "--student-epochs",
        "50",
        "--no-progress",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    df = pd.read_parquet(out / "results.parquet")
    assert df.p_teacher.tolist() == ["8"] and df.p_student.tolist() == ["12,6"]
    assert df.tau.tolist() == [20.0]  # the reference's MLP temperature is the default
