"""logistic-pinv's teachers (``--teacher logistic|svm|minnorm``): the default keeps every run id,
the exact teachers are what they claim (LP, closed forms), resume == uninterrupted, and wrong
uses are one line with exit code 2."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from softleak.cli import main
from softleak.simulate.spec import SweepSpec
from softleak.simulate.sweep import run_sweep, sweep_identity

SVM = SweepSpec(
    "logistic-pinv",
    d=(20,),
    alpha=(0.5, 1.5, 2.5),
    rho=(0.3, 0.6),
    seeds=3,
    teacher_kind="svm",
    n_val=20,
)


def test_default_teacher_keeps_every_existing_id():
    """Ids of specs that do not name a teacher, recorded on main before teachers existed."""
    from softleak.simulate.rundir import digest

    s = SweepSpec("logistic-pinv", d=(20,), alpha=(0.5, 1.0), rho=(0.5,), seeds=2)
    assert s.teacher_id(20, 2, 10, 0) == "5cb725d067638ff6"
    assert s.unit_id(20, 2, 10, 0) == "3be6b140760eb8d9"
    assert digest(sweep_identity(s)) == "ce6e9c9b426652df"
    m = SweepSpec("multinomial", d=(20,), c=(3,), alpha=(0.5,), rho=(0.5,), tau=(2.0,))
    assert m.teacher_id(20, 3, 30, 0) == "ab5a9fa79cb3f8bd"
    assert m.unit_id(20, 3, 30, 0) == "f005357a10866951"
    assert digest(sweep_identity(m)) == "79d6205164ac1be1"
    explicit = dataclasses.replace(s, teacher_kind="logistic")
    assert explicit.unit_id(20, 2, 10, 0) == s.unit_id(20, 2, 10, 0)
    svm = dataclasses.replace(s, teacher_kind="svm")
    assert "teacher_kind" not in sweep_identity(s) and sweep_identity(svm)["teacher_kind"] == "svm"
    ids = {
        t.unit_id(20, 2, 10, 0) for t in (s, svm, dataclasses.replace(s, teacher_kind="minnorm"))
    }
    assert len(ids) == 3
    assert len({svm.unit_id(20, 2, n, r) for n in (10, 20) for r in (0, 1)}) == 4


def test_inputs_default_to_raw_for_exact_teachers():
    base = SweepSpec("logistic-pinv", alpha=(1.0,))
    assert base.do_standardize  # the reference's logistic teacher
    assert not dataclasses.replace(base, teacher_kind="svm").do_standardize
    assert not dataclasses.replace(base, teacher_kind="minnorm").do_standardize
    assert dataclasses.replace(base, teacher_kind="svm", standardize=True).do_standardize
    with pytest.raises(ValueError, match="logistic-pinv"):
        SweepSpec("multinomial", alpha=(1.0,), teacher_kind="svm")
    with pytest.raises(ValueError, match="teacher_kind"):
        SweepSpec("logistic-pinv", alpha=(1.0,), teacher_kind="adam")


def test_svm_teachers_are_max_margin_or_recorded_as_not_separable(tmp_path):
    from softleak.simulate.protocol import teacher_data
    from softleak.theory.feasibility import linearly_separable
    from softleak.theory.maxmargin import KKT_TOL

    table = run_sweep(SVM, tmp_path)
    per_teacher = table.groupby(["n", "seed"]).first()
    assert set(per_teacher["teacher"]) == {"svm"} and (per_teacher["teacher_epochs"] == 0).all()
    for (n, seed), row in per_teacher.iterrows():
        data = teacher_data(SVM, 20, 2, n, seed)
        assert not data.X.mean(0).std() < 1e-12  # raw inputs (standardized ones are centred)
        separable = linearly_separable(data.X, 2 * data.y - 1).feasible
        if separable:
            assert row["teacher_status"] == "ok" and row["teacher_kkt"] <= KKT_TOL
            assert row["teacher_train_acc"] == 1.0 and row["teacher_kappa"] > 0
        else:  # no max-margin teacher: w = 0, every logit 0, predicted class 0
            assert row["teacher_status"] == "not_separable"
            assert row["teacher_train_acc"] == 0.5 and row["student_test_acc"] == 0.5
    assert (per_teacher.loc[[10, 30], "teacher_status"] == "ok").all()  # alpha 0.5, 1.5


def test_svm_sweep_resumes_to_the_uninterrupted_table(tmp_path):
    spec = dataclasses.replace(SVM, alpha=(0.5, 1.5), seeds=2)
    run_sweep(spec, tmp_path / "a", stop_after_units=1)
    resumed = run_sweep(spec, tmp_path / "a").drop(columns="wall_s")
    whole = run_sweep(spec, tmp_path / "b").drop(columns="wall_s")
    pd.testing.assert_frame_equal(resumed, whole)


def test_minnorm_teacher_interpolates_below_alpha_one(tmp_path):
    spec = dataclasses.replace(SVM, teacher_kind="minnorm", alpha=(0.5, 1.5), seeds=2)
    table = run_sweep(spec, tmp_path)
    low, high = table[table["alpha"] == 0.5], table[table["alpha"] == 1.5]
    assert (low["teacher_status"] == "ok").all() and (low["teacher_kkt"] <= 1e-8).all()
    assert (low["teacher_train_acc"] == 1.0).all()
    assert (high["teacher_status"] == "not_interpolating").all()
    assert np.isnan(table["teacher_kappa"]).all()


def _code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


def test_command_line_teacher_option(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["simulate", "logistic-pinv", "--d", "12", "--alpha", "0.5", "--rho", "0.5"]
    assert _code([*base, "--teacher", "svm", "--out", str(out)]) == 0
    assert pd.read_parquet(out / "results.parquet")["teacher"].eq("svm").all()
    assert "all 1 exact teachers ok" in capsys.readouterr().out
    wide = ["simulate", "logistic-pinv", "--d", "12", "--alpha", "4", "--rho", "0.5"]
    assert _code([*wide, "--teacher", "svm", "--out", str(tmp_path / "w")]) == 0
    assert "not linearly separable" in capsys.readouterr().out  # alpha = 4 in d = 12
    # the folder holds svm teachers: the logistic default is another identity
    assert _code([*base, "--teacher-epochs", "5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "teacher_kind: svm there, logistic here" in err and "Traceback" not in err
    assert _code([*base, "--teacher", "ridge", "--out", str(tmp_path / "x")]) == 2
    capsys.readouterr()
    multinomial = ["simulate", "multinomial", "--d", "12", "--alpha", "0.5", "--teacher", "svm"]
    assert _code([*multinomial, "--out", str(tmp_path / "m")]) == 2
    assert not (tmp_path / "x").exists() and not (tmp_path / "m").exists()
