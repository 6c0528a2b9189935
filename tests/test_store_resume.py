"""The store's guarantees: a sweep killed at any moment (SIGKILL) resumes to the same table, with no
duplicate and no lost row; a finished sweep reruns without training."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from sweep_fixtures import KEY, STUDENTS_PER_TEACHER, TEACHERS, sweep_args, table

from softleak.cli import main
from softleak.simulate import protocol
from softleak.simulate.spec import SweepSpec
from softleak.simulate.sweep import run_sweep

ARGS = [*sweep_args(teacher_epochs=300, student_epochs=600), "--threads", "1"]
_table = table


def test_sigkill_then_rerun_gives_the_uninterrupted_table(tmp_path):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    assert main([*ARGS, "--out", str(ref)]) == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "softleak", *ARGS, "--out", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        parts = list((killed / "parts").glob("*.parquet")) if (killed / "parts").exists() else []
        if len(parts) >= 2 or proc.poll() is not None:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list((killed / "parts").glob("*.parquet")))
    assert done_before < TEACHERS, "the sweep finished before it could be killed; enlarge it"
    assert main([*ARGS, "--out", str(killed)]) == 0
    a, b = _table(ref), _table(killed)
    assert not b.duplicated(KEY).any()
    assert len(b) == TEACHERS * STUDENTS_PER_TEACHER
    pd.testing.assert_frame_equal(a, b)
    # A write interrupted by the kill leaves a temp file; the rerun removes it.
    assert not list((killed / "parts").glob(".*.tmp"))


TINY = SweepSpec(
    "multinomial",
    d=(10,),
    c=(2,),
    n=(20,),
    rho=(0.5,),
    tau=(1.0,),
    seeds=2,
    teacher_epochs=50,
    student_epochs=50,
)


def test_finished_sweep_reruns_without_training(tmp_path, monkeypatch):
    spec = TINY
    first = run_sweep(spec, tmp_path)

    def boom(*a, **k):
        raise AssertionError("a finished sweep must not train")

    monkeypatch.setattr(protocol, "train_teachers", boom)
    monkeypatch.setattr(protocol, "gradient_students", boom)
    again = run_sweep(spec, tmp_path)
    pd.testing.assert_frame_equal(first, again)


def test_saved_teachers_are_not_retrained(tmp_path, monkeypatch):
    spec, out = TINY, tmp_path / "run"
    run_sweep(spec, out, stop_after_units=1)
    # Simulate a kill after the teachers were saved but before the second unit's students.
    assert len(list((out / "teachers").glob("*.pt"))) == 2
    calls = []
    real_fit = protocol.fit
    monkeypatch.setattr(protocol, "fit", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    table = run_sweep(spec, out)
    assert len(calls) == 1  # the missing students only; no teacher fit
    assert len(table) == 2
    ref = run_sweep(spec, tmp_path / "ref").drop(columns="wall_s")  # beside it: runs never nest
    pd.testing.assert_frame_equal(table.drop(columns="wall_s"), ref)


def _exit_code(argv) -> int:
    """main's return code, or the code of the SystemExit argparse raises."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--rho", "1.2"], "rho"),
        (["--tau", "0"], "tau"),
        (["--tau", "abc"], "tau"),
        (["--alpha", "1:2:0"], "alpha"),
        (["--n", "31", "--c", "2"], "multiple"),
        (["--d", "0"], "d"),
        (["--device", "tpu"], "device"),
    ],
)
def test_bad_grids_fail_before_any_work(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert _exit_code(["simulate", "multinomial", *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not out.exists()


def test_unknown_experiment_exit_2(capsys):
    assert _exit_code(["simulate", "nope", "--out", "x"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
