"""Memorized canaries (``simulate.canaries``, ``compare.canaries``, ``softleak simulate canaries``)
on a small synthetic data set of the user-array kind (no scikit-learn needed).

Oracles: the split invariants (a student's rows never hold a held-out canary or point; rho_c = 0
holds no canary); resume == uninterrupted and a grown grid keeps finished units; one setting
batched with others == trained alone; the epsilon column equals ``compare.privacy`` on the pooled
counts; a module teacher and student from a factory file run from the command line.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from softleak.cli import main
from softleak.compare.canaries import canary_recovery
from softleak.compare.claims import t_interval
from softleak.compare.privacy import epsilon_lower_bound
from softleak.simulate import canaries as K
from softleak.simulate.canary_spec import CanarySpec, CanaryUnit
from softleak.simulate.estimate import estimate, work_of
from softleak.simulate.real_data import load_real
from softleak.simulate.rundir import IdentityMismatch

C = 4


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """240 4x4 images in 4 well-separated classes (a class mean plus noise)."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(C), 60)
    means = rng.normal(0, 1.5, (C, 1, 4, 4))
    X = means[y] + rng.normal(0, 1, (len(y), 1, 4, 4))
    path = tmp_path_factory.mktemp("canary-data") / "blobs.npz"
    np.savez(path, inputs=X, labels=y)
    return str(path)


def small(dataset, **kw) -> CanarySpec:
    base = dict(
        data=dataset,
        seeds=2,
        k=(16,),
        rho=(0.5,),
        rho_c=(0.0,),
        tau=(1.0, 20.0),
        teacher_width=(32,),
        student_width=(16,),
        teacher_epochs=200,
        teacher_lr=0.02,
        student_epochs=60,
        student_lr=0.02,
    )
    return CanarySpec(**{**base, **kw})


def test_student_rows_never_hold_held_out_points(dataset, global_seed):
    spec = small(dataset, seed=global_seed, k=(12, 24), rho_c=(0.0, 0.5))
    data = load_real(dataset)
    setup = K.setup_of(spec, data, 0)
    for k in spec.k:
        canaries = setup.order[:k]
        for rho_c in spec.rho_c:
            rows, held_c, held = K.student_rows(spec, data, setup, CanaryUnit(0, k, 0.5, rho_c))
            assert not set(rows) & set(held_c) and not set(rows) & set(held)
            assert set(rows) | set(held_c) | set(held) == set(range(len(setup.train)))
            seen = np.intersect1d(rows, canaries)
            assert set(held_c) == set(canaries) - set(seen)
            assert (len(seen) == 0) == (rho_c == 0)
    # the canaries of k = 12 are among those of k = 24 (nested), their labels the same
    y12, y24 = setup.labels(data, 12), setup.labels(data, 24)
    assert np.array_equal(y12[setup.order[:12]], y24[setup.order[:12]])


def test_resume_grid_growth_and_identity(dataset, tmp_path, monkeypatch):
    out = tmp_path / "run"
    first = K.run_canaries(small(dataset), out, threads=1)
    assert len(first) == 2 * 5 and set(first["kind"]) == {"soft", "shuffle", "hard"}
    assert first["canary_recovery"].between(0, 1).all() and (first["n_canary_test"] == 16).all()
    assert (first["teacher_canary_acc"] == 1.0).all()  # it memorized its canaries
    assert (first["n"] == len(load_real(dataset).labels) - 4 * 12).all()  # 20% of 60 per class
    calls = []
    real = K.train_unit
    monkeypatch.setattr(K, "train_teacher", lambda *a, **k: pytest.fail("teacher retrained"))
    monkeypatch.setattr(K, "train_unit", lambda *a, **k: calls.append(a[3]) or real(*a, **k))
    grown = K.run_canaries(small(dataset, rho_c=(0.0, 0.5)), out, threads=1)
    assert [u.rho_c for u in calls] == [0.5, 0.5]  # only the new units: teachers reused
    old = grown[grown["rho_c"] == 0.0].reset_index(drop=True)
    assert old.drop(columns="wall_s").equals(first.drop(columns="wall_s"))
    with pytest.raises(IdentityMismatch, match="student_epochs"):
        K.run_canaries(small(dataset, student_epochs=61), out, threads=1)


def test_one_setting_batched_with_others_equals_it_alone(dataset, tmp_path):
    both = K.run_canaries(small(dataset, seeds=1), tmp_path / "both", threads=1)
    alone = K.run_canaries(small(dataset, seeds=1, tau=(20.0,)), tmp_path / "alone", threads=1)
    cols = ["canary_recovery", "null_recovery", "student_test_acc", "student_train_acc"]
    for kind in ("soft", "shuffle", "hard"):
        a = both[(both["kind"] == kind) & ~(both["tau"] == 1.0)][cols].to_numpy()
        b = alone[alone["kind"] == kind][cols].to_numpy()
        # replicas are independent; a prediction flips only at a float32 tie (one point)
        assert np.allclose(a, b, atol=1 / 60 + 1e-9), kind


def test_the_summary_pools_seeds_for_epsilon_and_intervals_over_seeds(dataset, tmp_path):
    table = K.run_canaries(small(dataset, seeds=3), tmp_path / "run", threads=1)
    summary = canary_recovery(table)
    assert len(summary.table) == 5
    row = summary.table[(summary.table["kind"] == "soft") & (summary.table["tau"] == 20.0)].iloc[0]
    rows = table[(table["kind"] == "soft") & (table["tau"] == 20.0)]
    hits, trials = int(rows["canary_hits"].sum()), int(rows["n_canary_test"].sum())
    assert row["epsilon_lb"] == epsilon_lower_bound(hits, trials, C, 0.95, 5)
    assert (row["recovery_low"], row["recovery_high"]) == pytest.approx(
        t_interval(rows["canary_recovery"].to_numpy(), 0.95)
    )
    assert "| soft | 20 | 3 |" in summary.markdown()
    assert summary.plot().get_ylabel() == "held-out canaries recovered"


def test_counted_work_and_estimate(dataset):
    spec = small(dataset, seeds=3, k=(8, 16), rho_c=(0.0, 0.5))
    work = work_of(spec)
    assert work["teachers"] == 3 * 2 and work["students"] == 3 * 2 * 2 * 5
    d, n_train = 16, 192
    t_fps = 2 * (d * 32 + 32 * C)
    assert work["flops"] > 3 * t_fps * n_train * 200 * 6  # the teachers alone
    assert 0 < estimate(spec)["cpu_s"] < 60


FACTORY = """
import torch.nn as nn

def tiny_cnn(in_shape, c):
    return nn.Sequential(nn.Conv2d(in_shape[0], 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * in_shape[1] * in_shape[2], c))
"""


def _exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as stop:  # argparse's own errors (one line, code 2)
        return int(stop.code)


def test_cli_module_teacher_and_student_from_a_factory_file(dataset, tmp_path, capsys):
    path = tmp_path / "nets.py"
    path.write_text(FACTORY)
    out = tmp_path / "run"
    args = [
        *("simulate", "canaries", "--data", dataset, "--teacher", "cnn"),
        *("--student", f"{path}:tiny_cnn", "--k", "12", "--rho-c", "0,0.5", "--tau", "1,20"),
        *("--seeds", "1", "--teacher-epochs", "60", "--teacher-lr", "0.02"),
        *("--student-epochs", "20", "--student-lr", "0.02", "--no-progress", "--out", str(out)),
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "held-out canaries recovered" in text and "| shuffle |" in text
    identity = json.loads((out / "config.json").read_text())["identity"]
    assert identity["student"]["name"] == "tiny_cnn" and len(identity["student"]["sha256"]) == 64
    assert identity["teacher"]["params"][0] == ["0.weight", [16, 1, 3, 3]]
    assert main([*args, "--json"]) == 0  # resumes; JSON rows
    rows = json.loads(capsys.readouterr().out)
    assert {r["kind"] for r in rows} == {"soft", "shuffle", "hard"}
    for extra, message in (
        (["--precision", "bf16"], "use fp32"),
        (["--data", "mnist"], "unknown data"),
        (["--student", "resnet"], "unknown architecture"),
        (["--rho-c", "1"], "[0, 1)"),
    ):
        bad = tmp_path / "bad"
        assert _exit_code([*args[:-1], str(bad), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not (bad / "results.parquet").exists()


def test_a_canary_teacher_is_audited_with_its_input_shape(dataset, tmp_path):
    from softleak.simulate.leakage_audit import AuditSpec, audit

    spec = small(dataset, seeds=1)
    K.run_canaries(spec, tmp_path / "run", threads=1)
    data = K.teacher_audit_data(spec, tmp_path / "run")
    assert data.input_shape == (1, 4, 4) and data.n == 192 and data.has_holdout
    assert data.describe()["teacher_member_acc"] == 1.0
    result = audit(
        data, AuditSpec(student="cnn", rho=(0.5,), seeds=1, epochs=10, settings=("soft",))
    )
    assert (result.rows["student"] == "cnn").all()
    with pytest.raises(ValueError, match="no teacher"):
        K.teacher_audit_data(spec, tmp_path / "run", seed=3)
    with pytest.raises(ValueError, match="other settings"):
        K.teacher_audit_data(dataclasses.replace(spec, student_lr=0.5), tmp_path / "run")
