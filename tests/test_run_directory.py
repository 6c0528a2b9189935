"""The run-directory contract (``simulate.rundir``, ``simulate.store``) over every command that
writes results: one identity per directory, one writer, records checked when read, sizes and
paths checked before anything is written, and every user-caused error one line with exit code 2.

Most rows are a table: a command, its expected exit code, and what the folder must hold afterwards
(unchanged checksums where a run is refused, nothing at all where a path or size is refused). The
two-writer and kill-and-resume rows use real processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from softleak.cli import main
from softleak.simulate.rundir import COMMON_OUTPUTS, RunDirError, claim, resolve_out
from softleak.simulate.store import read_results

FAST = ["--threads", "1", "--no-progress"]
SWEEP = ["simulate", "multinomial", "--d", "6", "--c", "2", "--n", "8,12", "--rho", "0.5",
         "--teacher-epochs", "5", "--student-epochs", "5", *FAST]  # fmt: skip
PINV = ["simulate", "logistic-pinv", "--d", "6", "--n", "8,12", "--rho", "0.5",
        "--teacher-epochs", "5", *FAST]  # fmt: skip
MLP = ["simulate", "mlp", "--d", "6", "--c", "2", "--n", "8", "--p-teacher", "4",
       "--teacher-epochs", "5", "--student-epochs", "5", "--rho", "0.5", *FAST]  # fmt: skip
TOY = ["simulate", "toy2d", "--seeds", "1", "--teacher-epochs", "5", "--student-epochs", "5",
       "--grid", "5", *FAST]  # fmt: skip
MODADD = ["simulate", "modadd", "--p", "7", "--train-frac", "0.6", "--d-model", "16",
          "--n-heads", "2", "--d-head", "8", "--d-mlp", "32", "--checkpoints", "10", "--rho", "0.5",
          "--tau", "1", "--student-epochs", "10", "--student-seeds", "1", "--curve-every", "5",
          "--device", "cpu", *FAST]  # fmt: skip
GPT2 = ["simulate", "gpt2", "--config", "tiny", "--n", "40", "--c", "4", "--vocab", "20",
        "--n-val", "10", "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--dropout", "0",
        "--teacher-epochs", "2", "--student-epochs", "1", "--rho", "0.5", "--device", "cpu",
        *FAST]  # fmt: skip

# Every run-writing command with its smallest arguments, and one setting that changes its identity.
FAMILIES = {
    "multinomial": (SWEEP, ["--student-epochs", "6"]),
    "logistic-pinv": (PINV, ["--teacher-epochs", "6"]),
    "mlp": (MLP, ["--p-student", "3"]),
    "toy2d": (TOY, ["--tau", "3"]),
    "modadd": (MODADD, ["--tau", "2"]),
    "gpt2": (GPT2, ["--teacher-epochs", "3"]),
}


def run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as stop:  # argparse's own errors (one line, code 2)
        return int(stop.code)


def checksums(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` but the lock file (it is no record)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def table(root: Path) -> pd.DataFrame:
    df = pd.read_parquet(root / "results.parquet")
    df = df.drop(columns=[c for c in df if c.endswith("wall_s")])  # timings differ run to run
    keys = [c for c in ("d", "c", "n", "seed", "rho", "tau", "shuffle", "run_id") if c in df]
    return df.sort_values(keys).reset_index(drop=True)


def one_line_error(capsys, code: int = 2) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("softleak: error:")]
    assert len(errors) == 1, err
    assert not any("Traceback" in line for line in err), err
    return errors[0]


def warnings_of(capsys, caplog) -> str:
    """What a run said on stderr and through logging (pytest captures the log records)."""
    return capsys.readouterr().err + caplog.text


def needs(family: str) -> None:
    if family == "gpt2":
        pytest.importorskip("transformers")


# ---------------------------------------------------------------------------------------------
# paths, devices and sizes: refused before anything is written
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize(
    "where, message",
    [
        ("file", "exists and is not a directory"),
        ("under-file", "is a file"),
        ("empty", "output directory is empty"),
        ("proc", "cannot create"),
    ],
)
def test_bad_out_is_one_line_and_writes_nothing(
    family, where, message, tmp_path, monkeypatch, capsys
):
    needs(family)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "F").write_text("not a folder")
    out = {"file": "F", "under-file": "F/x", "empty": "", "proc": "/proc/softleak-x"}[where]
    before = checksums(tmp_path)
    assert run([*FAMILIES[family][0], "--out", out]) == 2
    assert message in one_line_error(capsys)
    assert checksums(tmp_path) == before


@pytest.mark.parametrize("family", list(FAMILIES))
def test_unavailable_device_is_one_line_and_writes_nothing(family, tmp_path, capsys):
    needs(family)
    import torch

    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    argv = list(FAMILIES[family][0])
    if "--device" in argv:
        i = argv.index("--device")
        del argv[i : i + 2]
    assert run([*argv, "--device", "cuda:7", "--out", str(tmp_path / "x")]) == 2
    assert "cuda:7" in one_line_error(capsys)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["simulate", "multinomial", "--d", "100000", "--c", "2", "--alpha", "10"], "TiB"),
        (["simulate", "mlp", "--d", "50000", "--c", "1000", "--n", "100000"], "of memory"),
        (["simulate", "modadd", "--p", "100000", "--train-frac", "0.5"], "of memory"),
    ],
)
def test_a_run_that_cannot_fit_is_refused_before_anything_is_written(
    argv, message, tmp_path, capsys
):
    assert run([*argv, "--device", "cpu", "--out", str(tmp_path / "x")]) == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "x").exists()


def test_home_and_variables_are_expanded(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SOFTLEAK_RUNS", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path)
    assert run([*SWEEP, "--out", "~/a"]) == 0
    assert run([*SWEEP, "--out", "$SOFTLEAK_RUNS/b"]) == 0
    assert (tmp_path / "home" / "a" / "results.parquet").is_file()
    assert (tmp_path / "runs" / "b" / "results.parquet").is_file()
    assert not (tmp_path / "~").exists() and not (tmp_path / "$SOFTLEAK_RUNS").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--rho", "0.5,0.5"], "rho repeats"),
        (["--tau", "1,1.0"], "tau repeats"),
        (["--n", "8,8"], "n repeats"),
    ],
)
def test_repeated_grid_values_are_refused(extra, message, tmp_path, capsys):
    assert run([*SWEEP, *extra, "--out", str(tmp_path / "x")]) == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "x").exists()


def test_resolve_out_writes_nothing_and_refuses_unusable_paths(tmp_path):
    (tmp_path / "f").write_text("x")
    for bad in ("", "   ", tmp_path / "f", tmp_path / "f" / "y"):
        with pytest.raises(RunDirError):
            resolve_out(bad)
    assert resolve_out(tmp_path / "new" / "deep") == tmp_path / "new" / "deep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


# ---------------------------------------------------------------------------------------------
# one identity
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", list(FAMILIES))
def test_other_settings_are_refused_unchanged_and_restart_starts_over(family, tmp_path, capsys):
    needs(family)
    base, change = FAMILIES[family]
    out = tmp_path / "run"
    assert run([*base, "--out", str(out)]) == 0
    before = checksums(out)
    old = json.loads((out / "config.json").read_text())
    capsys.readouterr()
    assert run([*base, *change, "--out", str(out)]) == 2
    line = one_line_error(capsys)
    assert "other settings" in line and "--restart" in line
    setting = change[0].lstrip("-").replace("-", "_")
    assert f"{setting}: " in line  # the line names the setting that differs
    assert checksums(out) == before
    assert run([*base, *change, "--restart", "--out", str(out)]) == 0
    new = json.loads((out / "config.json").read_text())
    assert new["fingerprint"] != old["fingerprint"]
    assert new["identity"][setting] != old["identity"][setting]


@pytest.mark.parametrize("other", ["mlp", "logistic-pinv", "toy2d"])
def test_another_experiment_in_a_sweep_folder_is_refused(other, tmp_path, capsys):
    out = tmp_path / "run"
    assert run([*SWEEP, "--out", str(out)]) == 0
    before = checksums(out)
    capsys.readouterr()
    assert run([*FAMILIES[other][0], "--out", str(out)]) == 2
    assert f"holds a multinomial run, not {other}" in one_line_error(capsys)
    assert checksums(out) == before


def test_a_grown_grid_keeps_finished_units_and_the_table_is_the_grid(tmp_path, monkeypatch):
    from softleak.simulate import protocol

    out = tmp_path / "run"
    assert run([*SWEEP, "--out", str(out)]) == 0
    small = table(out)
    trained = []
    real = protocol.train_teachers

    def spy(spec, keys, threads=None, states=None):
        trained.extend(k for k in keys if k not in (states or {}))
        return real(spec, keys, threads=threads, states=states)

    monkeypatch.setattr(protocol, "train_teachers", spy)
    assert run([*SWEEP, "--seeds", "2", "--out", str(out)]) == 0
    assert sorted(k[3] for k in trained) == [1, 1]  # only the new seed's teachers trained
    grown = table(out)
    assert len(grown) == 2 * len(small)
    pd.testing.assert_frame_equal(grown[grown.seed == 0].reset_index(drop=True), small)
    trained.clear()
    assert run([*SWEEP, "--out", str(out)]) == 0  # shrunk back: nothing trains
    assert trained == []
    pd.testing.assert_frame_equal(table(out), small)


def test_a_folder_written_before_the_contract_is_adopted(tmp_path, monkeypatch, capsys):
    """A config without identity or fingerprint (an older version), no manifest, parts without
    metadata: the same command adopts it without training; other settings are refused."""
    from softleak.simulate import protocol

    out = tmp_path / "run"
    assert run([*SWEEP, "--out", str(out)]) == 0
    ref = table(out)
    config = json.loads((out / "config.json").read_text())
    for key in ("experiment", "identity", "fingerprint"):
        config.pop(key)
    config["spec"].pop("max_replicas")  # a field an older version did not know: today's default
    (out / "config.json").write_text(json.dumps(config))
    (out / "manifest.jsonl").unlink()
    for part in (out / "parts").glob("*.parquet"):
        pd.read_parquet(part).to_parquet(part, index=False)  # no softleak metadata
    monkeypatch.setattr(protocol, "train_teachers", lambda *a, **k: pytest.fail("retrained"))
    assert run([*SWEEP, "--out", str(out)]) == 0
    pd.testing.assert_frame_equal(table(out), ref)
    assert run([*SWEEP, "--student-epochs", "9", "--out", str(out)]) == 2
    assert "student_epochs: 5 there, 9 here" in one_line_error(capsys)


def test_restart_clears_only_the_records(tmp_path):
    out = tmp_path / "run"
    assert run([*SWEEP, "--out", str(out)]) == 0
    (out / "notes.txt").write_text("mine")
    assert run([*SWEEP, "--student-epochs", "7", "--restart", "--out", str(out)]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert set(table(out).student_epochs) == {7}
    assert len(list((out / "parts").glob("*.parquet"))) == 2


# ---------------------------------------------------------------------------------------------
# records checked when read
# ---------------------------------------------------------------------------------------------
def truncate(path: Path, keep: int = 60) -> None:
    path.write_bytes(path.read_bytes()[:keep])


class _Trap:
    """Unpickling this creates the marker file: proof that a reader executed code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize(
    "family, damage",
    [
        ("multinomial", "part"),
        ("multinomial", "part-other-unit"),
        ("multinomial", "config"),
        ("multinomial", "teacher"),
        ("multinomial", "teacher-pickle"),
        ("mlp", "curve-part"),
        ("modadd", "checkpoint"),
        ("modadd", "checkpoints-json"),
        ("gpt2", "teacher"),
        ("toy2d", "results"),
    ],
)
def test_a_damaged_record_is_set_aside_and_recomputed(family, damage, tmp_path, capsys, caplog):
    needs(family)
    base = list(FAMILIES[family][0])
    if damage == "curve-part":
        base += ["--curve-every", "2"]
    out = tmp_path / "run"
    assert run([*base, "--out", str(out)]) == 0
    ref = table(out)
    marker = tmp_path / "executed"
    parts = sorted((out / "parts").glob("*.parquet")) if (out / "parts").exists() else []
    if damage == "part":
        target = parts[0]
        truncate(target)
    elif damage == "part-other-unit":  # a whole file, of another unit: its ids do not match
        target = parts[0]
        shutil.copy(parts[1], target)
    elif damage == "config":
        target = out / "config.json"
        truncate(target, 30)
    elif damage == "teacher":
        target = (
            sorted((out / "teachers").glob("*.pt"))[0] if family != "gpt2" else out / "teacher.pt"
        )
        truncate(target)
        for part in parts:  # its students must retrain, so the teacher is read again
            part.unlink()
    elif damage == "teacher-pickle":
        target = sorted((out / "teachers").glob("*.pt"))[0]
        target.write_bytes(pickle.dumps({"p0": _Trap(marker)}))
        for part in parts:
            part.unlink()
    elif damage == "curve-part":
        target = sorted((out / "curve_parts").glob("*.parquet"))[0]
        truncate(target)
    elif damage == "checkpoint":
        target = out / "checkpoints" / "e10.pt"
        truncate(target)
        for part in parts:
            part.unlink()
    elif damage == "checkpoints-json":
        target = out / "checkpoints.json"
        truncate(target, 10)
    else:
        target = out / "results.parquet"
        truncate(target)
    capsys.readouterr()
    caplog.clear()
    assert run([*base, "--out", str(out)]) == 0
    err = warnings_of(capsys, caplog)
    assert "is damaged" in err and "moved to" in err, err
    assert not marker.exists(), "a record was read by executing code"
    assert (out / "damaged").is_dir() and any((out / "damaged").rglob("*"))
    pd.testing.assert_frame_equal(table(out), ref)  # same seeds, same device: same numbers


def test_finished_work_that_reads_fine_is_never_redone(tmp_path, monkeypatch):
    from softleak.simulate import protocol

    out = tmp_path / "run"
    assert run([*SWEEP, "--out", str(out)]) == 0
    truncate(sorted((out / "parts").glob("*.parquet"))[0])
    calls = []
    real = protocol.gradient_students

    def spy(spec, teacher, runs, threads=None):
        calls.append(teacher.key)
        return real(spec, teacher, runs, threads)

    monkeypatch.setattr(protocol, "gradient_students", spy)
    assert run([*SWEEP, "--out", str(out)]) == 0
    assert len(calls) == 1  # the damaged unit only


def test_export_teacher_reports_a_damaged_teacher_and_never_retrains(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    assert run([*SWEEP, "--out", str(sweep)]) == 0
    for pt in (sweep / "teachers").glob("*.pt"):
        truncate(pt)
    before = checksums(sweep)
    capsys.readouterr()
    assert run(["simulate", "export-teacher", str(sweep), "--out", str(tmp_path / "t")]) == 2
    assert "is damaged" in one_line_error(capsys)
    assert checksums(sweep) == before  # a reader never moves another run's records


def test_export_teacher_follows_the_contract(tmp_path, capsys):
    sweep, out = tmp_path / "sweep", tmp_path / "t"
    assert run([*SWEEP, "--out", str(sweep)]) == 0
    assert run(["simulate", "export-teacher", str(sweep), "--out", str(out)]) == 0
    before = checksums(out)
    capsys.readouterr()
    assert run(["simulate", "export-teacher", str(sweep), "--n", "8", "--out", str(out)]) == 2
    assert "other settings" in one_line_error(capsys)
    assert checksums(out) == before
    assert (
        run(["simulate", "export-teacher", str(sweep), "--n", "8", "--restart", "--out", str(out)])
        == 0
    )
    assert json.loads((out / "teacher.json").read_text())["n"] == 8
    (tmp_path / "file").write_text("x")
    assert run(["simulate", "export-teacher", str(sweep), "--out", str(tmp_path / "file")]) == 2
    one_line_error(capsys)
    truncate(sweep / "config.json", 20)
    assert run(["simulate", "export-teacher", str(sweep), "--out", str(tmp_path / "u")]) == 2
    assert "config.json" in one_line_error(capsys)


# ---------------------------------------------------------------------------------------------
# the audit
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def members(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "members.npz"
    np.savez(
        path,
        inputs=rng.standard_normal((40, 5)),
        labels=rng.integers(0, 2, 40),
        logits=rng.standard_normal((40, 2)),
    )
    return path


AUDIT = ["audit", "--rho", "0.5", "--seeds", "1", "--settings", "soft,hard", "--no-progress",
         "--threads", "1"]  # fmt: skip


def test_audit_follows_the_contract(members, tmp_path, capsys, caplog):
    out = tmp_path / "audit"
    assert run([*AUDIT, "--members", str(members), "--out", str(out)]) == 0
    ref = table(out)
    before = checksums(out)
    capsys.readouterr()
    assert run([*AUDIT, "--members", str(members), "--tau", "2", "--out", str(out)]) == 2
    assert "tau: 1.0 there, 2.0 here" in one_line_error(capsys)
    assert checksums(out) == before
    # more seeds: same identity, the finished (seed, rho) is kept
    assert (
        run([*AUDIT, "--members", str(members), "--seeds", "2", "--json", "--out", str(out)]) == 0
    )
    grown = table(out)
    pd.testing.assert_frame_equal(
        grown[grown.seed == 0].reset_index(drop=True), ref, check_like=True
    )
    truncate(sorted((out / "parts").glob("*.parquet"))[0])
    capsys.readouterr()
    assert (
        run([*AUDIT, "--members", str(members), "--seeds", "2", "--json", "--out", str(out)]) == 0
    )
    assert "is damaged" in warnings_of(capsys, caplog)
    pd.testing.assert_frame_equal(table(out), grown)


def test_audit_file_problems_are_one_line(members, tmp_path, capsys):
    import torch

    evil = tmp_path / "evil.pt"
    marker = tmp_path / "executed"
    torch.save({"x": _Trap(marker)}, evil)
    bad_npz = tmp_path / "bad.npz"
    bad_npz.write_bytes(members.read_bytes()[:100])
    for argv in (
        ["--logits", str(evil), "--labels", str(evil), "--inputs", str(evil)],
        ["--members", str(bad_npz)],
        ["--members", str(tmp_path / "missing.npz")],
    ):
        assert run([*AUDIT, *argv, "--out", str(tmp_path / "o")]) == 2
        one_line_error(capsys)
    assert not marker.exists()
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------------
# figs
# ---------------------------------------------------------------------------------------------
def test_recipe_sweeps_of_one_name_are_one_spec():
    """``figs all`` shares one data folder: a sweep name two recipes declare must be one spec."""
    from softleak.paper_figs.registry import load_recipes

    seen: dict = {}
    for name, recipe in load_recipes().items():
        for preset, p in recipe.presets.items():
            for sweep, spec in p.sweeps.items():
                other = seen.setdefault((preset, sweep), (name, spec))
                assert other[1] == spec, f"{name} and {other[0]} declare {sweep!r} differently"


def test_figs_bad_out_is_one_line(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    for out in (str(tmp_path / "f"), ""):
        assert run(["figs", "fig4", "--out", out, "--no-progress"]) == 2
        one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


# ---------------------------------------------------------------------------------------------
# compare reads, never writes
# ---------------------------------------------------------------------------------------------
def test_compare_says_when_a_sweep_is_partial_and_reads_its_parts(tmp_path, capsys, caplog):
    out = tmp_path / "run"
    assert run([*SWEEP, "--n", "8,12,16,20", "--out", str(out)]) == 0
    full = len(table(out))
    # as after a kill: the table is written at the end only, and one unit is not finished
    (out / "results.parquet").unlink()
    sorted((out / "parts").glob("*.parquet"))[0].unlink()
    before = checksums(out)
    capsys.readouterr()
    assert run(["compare", "thresholds", str(out), "--json", "--n-boot", "10"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["complete"] is False
    assert "3 of its 4 units" in captured.err + caplog.text
    assert checksums(out) == before
    found = read_results(out)
    assert found.stale and found.complete is False and len(found.frame) == full * 3 // 4


def test_compare_reports_a_damaged_part_without_touching_it(tmp_path, capsys, caplog):
    out = tmp_path / "run"
    assert run([*SWEEP, "--out", str(out)]) == 0
    (out / "results.parquet").unlink()
    truncate(sorted((out / "parts").glob("*.parquet"))[0])
    before = checksums(out)
    capsys.readouterr()
    assert run(["compare", "thresholds", str(out), "--json", "--n-boot", "10"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["complete"] is False
    assert "does not read" in captured.err + caplog.text
    assert checksums(out) == before


def test_compare_names_missing_metric_columns(tmp_path, capsys):
    out = tmp_path / "run"
    assert run([*SWEEP, "--out", str(out)]) == 0
    df = pd.read_parquet(out / "results.parquet")
    df.drop(columns=["student_test_acc", "teacher_train_acc"]).to_parquet(
        out / "results.parquet", index=False
    )
    capsys.readouterr()
    assert run(["compare", "thresholds", str(out)]) == 2
    line = one_line_error(capsys)
    assert "teacher_train_acc" in line and "student_test_acc" in line


# ---------------------------------------------------------------------------------------------
# the command-line boundary
# ---------------------------------------------------------------------------------------------
def test_an_unexpected_error_is_one_line_with_a_hint_and_the_traceback_under_v(
    tmp_path, monkeypatch, capsys
):
    from softleak.simulate import experiments

    def bug(*args, **kwargs):
        raise TypeError("a bug\nwith a second line")

    monkeypatch.setattr(experiments, "run_experiment", bug)
    assert run([*SWEEP, "--out", str(tmp_path / "x")]) == 1
    line = one_line_error(capsys)
    assert "unexpected TypeError: a bug" in line and "softleak -v" in line
    assert run(["-v", *SWEEP, "--out", str(tmp_path / "x")]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_an_os_error_on_the_output_is_one_line(tmp_path, monkeypatch, capsys):
    from softleak.simulate import store

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "x" / "parts"))

    monkeypatch.setattr(store, "atomic_write_parquet", full)
    assert run([*SWEEP, "--out", str(tmp_path / "x")]) == 2
    assert "No space left on device" in one_line_error(capsys)


@pytest.mark.parametrize(
    "argv",
    [FAMILIES[f][0][:2] for f in FAMILIES]
    + [["simulate", "export-teacher", "DIR"], ["audit"], ["figs", "fig4"]],
)
def test_every_run_writing_command_takes_restart_and_no_progress(argv, capsys):
    from softleak.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--help"])
    text = capsys.readouterr().out
    assert "--restart" in text and "--no-progress" in text


# ---------------------------------------------------------------------------------------------
# one writer, and kill -9 with real processes
# ---------------------------------------------------------------------------------------------
SLOW = ["simulate", "multinomial", "--d", "30", "--c", "3", "--n", "30,60,90,120,150,180",
        "--rho", "0.5,0.8", "--teacher-epochs", "2000", "--student-epochs", "4000",
        "--device", "cpu", *FAST]  # fmt: skip


def _start(argv: list[str], out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "softleak", *argv, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not condition():
        time.sleep(0.02)


def test_a_second_writer_is_refused_naming_the_first(tmp_path):
    out = tmp_path / "run"
    first = _start(SLOW, out)
    try:
        lock = out / ".lock"
        _wait_for(lambda: (out / "config.json").exists(), first)
        assert first.poll() is None, "the first run ended before the second could start"
        second = _start([*SLOW, "--student-lr", "0.1"], out)
        _, err = second.communicate(timeout=120)
        err = err.decode()
        assert second.returncode == 2, err
        assert f"pid {lock.read_text().strip()}" in err and "in use" in err
        assert err.count("\n") == 1
    finally:
        first.kill()
        first.wait()
    # the kernel freed the lock of the killed holder: a new run may claim it
    with claim(out, experiment="multinomial", identity={"x": 1}, restart=True):
        pass


def test_kill_9_then_rerun_gives_the_uninterrupted_table(tmp_path):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    fast = [a if a not in ("2000", "4000") else str(int(a) // 4) for a in SLOW]
    assert run([*fast, "--out", str(ref)]) == 0
    proc = _start(fast, killed)
    _wait_for(lambda: len(list((killed / "parts").glob("*.parquet"))) >= 2, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "results.parquet").exists() or proc.returncode == 0
    partial = read_results(killed)
    if proc.returncode != 0:
        assert partial.complete is False
    assert run([*fast, "--out", str(killed)]) == 0
    pd.testing.assert_frame_equal(table(ref), table(killed))
    assert read_results(killed).complete is True


def test_recording_does_not_grow_with_the_square_of_the_units(tmp_path, monkeypatch):
    """results.parquet is written once per run, not after every unit; each unit appends one
    manifest line."""
    from softleak.simulate import store as store_module

    writes = []
    real = store_module.atomic_write_parquet

    def spy(path, frame, meta=None):
        writes.append(Path(path).name)
        return real(path, frame, meta)

    monkeypatch.setattr(store_module, "atomic_write_parquet", spy)
    out = tmp_path / "run"
    assert run([*SWEEP, "--n", "8,12,16,20,24,28", "--out", str(out)]) == 0
    assert writes.count("results.parquet") == 1
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 6
    assert set(COMMON_OUTPUTS) >= {"manifest.jsonl", "parts", "results.parquet"}


# ---------------------------------------------------------------------------------------------
# hostile inputs: planted links, nested folders, grids that would change silently, tiny holdouts
# ---------------------------------------------------------------------------------------------
# Each row: a setup that builds the situation under tmp_path (from finished folders the module
# makes once) and returns the command line and the files that must not change; the exit code
# and a fragment of the one line it must print. Rows with code 0 are the neighbouring cases that
# must keep working.
@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> dict[str, Path]:
    """Finished folders, made once: a sweep, a toy2d run, an export of the sweep's teacher and
    an audit of it (each row copies what it touches)."""
    root = tmp_path_factory.mktemp("finished")
    out = {"sweep": root / "sweep", "toy": root / "toy", "export": root / "export"}
    assert run([*SWEEP, "--out", str(out["sweep"])]) == 0
    assert run([*TOY, "--out", str(out["toy"])]) == 0
    assert run(["simulate", "export-teacher", str(out["sweep"]), "--out", str(out["export"])]) == 0
    rng = np.random.default_rng(0)
    out["members"] = root / "members.npz"
    np.savez(
        out["members"],
        inputs=rng.standard_normal((40, 5)),
        labels=np.repeat([0, 1], 20),
        logits=rng.standard_normal((40, 2)),
    )
    out["audit"] = root / "audit"
    assert run([*AUDIT, "--members", str(out["members"]), "--out", str(out["audit"])]) == 0
    return out


def _copy(finished, name: str, tmp: Path) -> Path:
    target = tmp / name
    shutil.copytree(finished[name], target, symlinks=True)
    return target


def _victim(tmp: Path) -> Path:
    (tmp / "victim.txt").write_text("keep\n")
    return tmp / "victim.txt"


def _linked_record(record: str):
    """A fresh --out whose ``record`` is a link to a file of the user's (the issue's case 1)."""

    def setup(tmp, fx):
        out = tmp / "d"
        out.mkdir()
        (out / record).symlink_to(_victim(tmp))
        return [*SWEEP, "--out", str(out)], [tmp / "victim.txt"]

    return setup


def _linked_folder(tmp, fx):
    """``teachers`` a link to another run's teachers: they would receive this run's files."""
    sweep = _copy(fx, "sweep", tmp)
    out = tmp / "f"
    out.mkdir()
    (out / "teachers").symlink_to(sweep / "teachers")
    return [*SWEEP, "--n", "16", "--out", str(out)], [sweep]


def _linked_part(tmp, fx):
    sweep = _copy(fx, "sweep", tmp)
    part = sorted((sweep / "parts").glob("*.parquet"))[0]
    part.unlink()
    part.symlink_to(_victim(tmp))
    return [*SWEEP, "--out", str(sweep)], [tmp / "victim.txt"]


def _compare_linked_results(tmp, fx):
    sweep = _copy(fx, "sweep", tmp)
    other = _copy(fx, "toy", tmp)
    (sweep / "results.parquet").unlink()
    (sweep / "results.parquet").symlink_to(other / "results.parquet")
    return ["compare", "thresholds", str(sweep)], [other]


def _export_linked_teachers(tmp, fx):
    sweep = _copy(fx, "sweep", tmp)
    elsewhere = tmp / "elsewhere"
    (sweep / "teachers").rename(elsewhere)
    (sweep / "teachers").symlink_to(elsewhere)
    return ["simulate", "export-teacher", str(sweep), "--out", str(tmp / "t")], [sweep]


def _export_into(where: str, restart: bool = False):
    """export-teacher SWEEP --out SWEEP[/where] (the issue's cases 2 and 3)."""

    def setup(tmp, fx):
        sweep = _copy(fx, "sweep", tmp)
        argv = ["simulate", "export-teacher", str(sweep), "--out", str(sweep / where)]
        return argv + (["--restart"] if restart else []), [sweep]

    return setup


def _sweep_into(where: str):
    """A sweep whose --out is inside (``parts``, ``sub``) or around (``..``) a finished run."""

    def setup(tmp, fx):
        sweep = _copy(fx, "sweep", tmp)
        return [*SWEEP, "--student-epochs", "6", "--out", str(sweep / where)], [sweep]

    return setup


def _sweep_around_nested(tmp, fx):
    """--out X where X/parts is itself a run folder: X's --restart would delete it."""
    out = tmp / "x"
    shutil.copytree(fx["sweep"], out / "parts", symlinks=True)
    return [*SWEEP, "--out", str(out)], [out]


def _audit_input_among_records(tmp, fx):
    out = _copy(fx, "audit", tmp)
    data = out / "parts" / "members.npz"
    shutil.copy(fx["members"], data)
    return [*AUDIT, "--members", str(data), "--restart", "--out", str(out)], [data]


def _audit_over_export(tmp, fx):
    export = _copy(fx, "export", tmp)
    argv = [*AUDIT, "--members", str(export / "members.npz"), "--out", str(export)]
    return argv, [export]


def _out_link(kind: str):
    def setup(tmp, fx):
        link = tmp / "out"
        if kind == "loop":
            link.symlink_to(link)
        elif kind == "broken":
            link.symlink_to(tmp / "nowhere")
        else:  # a link to a real folder: the user's own choice, allowed
            (tmp / "real").mkdir()
            link.symlink_to(tmp / "real")
        return [*SWEEP, "--out", str(link)], []

    return setup


def _command(*argv, copy: str | None = None):
    """A command on a copy of a finished folder (``{copy}`` in argv) or with a fresh --out."""

    def setup(tmp, fx):
        folder = _copy(fx, copy, tmp) if copy else None
        names = {"copy": str(folder), "members": str(fx["members"]), "tmp": str(tmp)}
        args = [a.format(**names) for a in argv]
        if "--out" not in args and args[0] != "compare" and args[0] != "theory":
            args += ["--out", str(tmp / "new")]
        return args, [folder] if folder else []

    return setup


def _arrays(name: str, **arrays):
    """An audit of members whose ``name`` file holds ``arrays`` (or is made by a callable)."""

    def setup(tmp, fx):
        path = tmp / name
        if "make" in arrays:
            arrays["make"](path)
        else:
            np.savez(path, **arrays)
        role = ["--members", str(path)] if name.endswith(".npz") else [
            "--logits", str(path), "--labels", f"{fx['members']}:labels",
            "--inputs", f"{fx['members']}:inputs",
        ]  # fmt: skip
        return [*AUDIT, *role, "--out", str(tmp / "new")], []

    return setup


def _tiny_holdout(n: int):
    def setup(tmp, fx):
        rng = np.random.default_rng(1)
        hold = tmp / "holdout.npz"
        labels = rng.integers(0, 2, n)
        np.savez(hold, inputs=rng.standard_normal((n, 5)), labels=labels,
                 logits=rng.standard_normal((n, 2)))  # fmt: skip
        argv = [*AUDIT, "--members", str(fx["members"]), "--holdout", str(hold)]
        return [*argv, "--out", str(tmp / "new")], []

    return setup


_RNG = np.random.default_rng(0)
HOSTILE = {
    # records are never links, folders never nest, --restart never clears its own input
    "lock-link": (_linked_record(".lock"), 2, "is a symbolic link"),
    "manifest-link": (_linked_record("manifest.jsonl"), 2, "is a symbolic link"),
    "config-link": (_linked_record("config.json"), 2, "is a symbolic link"),
    "teachers-link": (_linked_folder, 2, "teachers is a symbolic link"),
    "part-link": (_linked_part, 2, "is a symbolic link"),
    "compare-linked-results": (_compare_linked_results, 2, "is a symbolic link"),
    "export-linked-teachers": (_export_linked_teachers, 2, "teachers is a symbolic link"),
    "export-into-its-sweep": (_export_into("."), 2, "own input"),
    "export-into-its-sweep-restart": (_export_into(".", restart=True), 2, "own input"),
    "export-into-its-teachers": (_export_into("teachers"), 2, "inside this command's input"),
    "sweep-into-parts": (_sweep_into("parts"), 2, "lies inside the softleak run folder"),
    "sweep-into-subfolder": (_sweep_into("sub"), 2, "lies inside the softleak run folder"),
    "sweep-around-a-run": (_sweep_into(".."), 2, "holds the softleak run folder"),
    "sweep-around-nested-records": (_sweep_around_nested, 2, "holds the softleak run folder"),
    "audit-input-among-records": (_audit_input_among_records, 2, "among the records"),
    "audit-over-an-export": (_audit_over_export, 2, "holds an export-teacher run, not audit"),
    "out-link-loop": (_out_link("loop"), 2, "symbolic link to nothing"),
    "out-link-broken": (_out_link("broken"), 2, "symbolic link to nothing"),
    "out-link-to-a-folder": (_out_link("folder"), 0, ""),
    # grids realized exactly or refused
    "alpha-clamped": (_command(*SWEEP[:2], "--d", "20", "--alpha", "0.01"), 2,
                      "alpha = 0.01 at d = 20, c = 2 asks n = alpha d c = 0.4"),
    "alpha-collapse-by-clamp": (_command(*SWEEP[:2], "--d", "1", "--alpha", "0.5,1"), 2,
                                "below one sample per class"),
    "alpha-collapse": (_command(*SWEEP[:2], "--d", "2", "--alpha", "0.5,0.6"), 2,
                       "both give n = 2"),
    "pinv-alpha-collapse": (_command("simulate", "logistic-pinv", "--d", "10", "--alpha",
                                     "1,1.05"), 2, "both give n = 10"),
    "rho-no-rows": (_command("simulate", "logistic-pinv", "--d", "20", "--alpha", "0.5",
                             "--rho", "0.01"), 2, "trains on no row"),
    "rho-collapse": (_command("simulate", "mlp", "--d", "100", "--c", "100", "--n", "500",
                              "--rho", "0.2,0.35"), 2, "both train on 1 of 5 rows"),
    "modadd-rho-collapse": (_command("simulate", "modadd", "--p", "7", "--rho", "0.5,0.52"), 2,
                            "both train on 7 of 14 rows"),
    "audit-rho-collapse": (_command(*AUDIT, "--members", "{members}", "--rho", "0.5,0.51"), 2,
                           "both train on the same 20 of 40 members"),
    "log-grid-overflow": (_command(*SWEEP[:2], "--alpha", "log:400:401:2"), 2,
                          "log exponents"),
    "ablation-top-k-0": (_command(*SWEEP, "--ablation", "top_k:0"), 2, "k must be >= 1"),
    "huge-seed-exact": (_command(*SWEEP, "--seed", "99999999999999999999999"), 0, ""),
    # audit inputs
    "holdout-of-one": (_tiny_holdout(1), 2, "the holdout has 1 non-member"),
    "holdout-of-29": (_tiny_holdout(29), 2, "needs at least 30"),
    "holdout-of-30": (_tiny_holdout(30), 0, ""),
    "complex-logits": (_arrays("c.npz", inputs=_RNG.standard_normal((40, 5)),
                               labels=np.repeat([0, 1], 20),
                               logits=_RNG.standard_normal((40, 2)) + 1j), 2, "complex"),
    "empty-logits": (_arrays("e.npy", make=lambda p: np.save(p, np.zeros(0))), 2, "is empty"),
    "folder-named-npy": (_arrays("f.npy", make=lambda p: p.mkdir()), 2, "is a folder"),
    "zeros-named-npy": (_arrays("z.npy", make=lambda p: p.write_bytes(bytes(1 << 16))), 2,
                        "not a .npy file"),
    "settings-top-k-0": (_command(*AUDIT, "--settings", "top_k:0", "--members", "{members}"),
                         2, "K must be >= 1"),
    "width-with-linear-student": (_command(*AUDIT, "--members", "{members}", "--width", "8"),
                                  2, "--student mlp"),
    # readers name the right cause
    "compare-a-file": (_command("compare", "thresholds", "{members}"), 2, "is a file"),
    "compare-toy2d": (_command("compare", "thresholds", "{copy}", copy="toy"), 2,
                      "holds a toy2d run, not a sweep"),
    "phase-toy2d": (_command("compare", "phase", "{copy}", "--out", "{tmp}/p.png", copy="toy"),
                    2, "holds a toy2d run, not a sweep"),
    "export-a-toy2d-run": (_command("simulate", "export-teacher", "{copy}", copy="toy"), 2,
                           "holds a toy2d run, not a sweep"),
    "export-an-audit": (_command("simulate", "export-teacher", "{copy}", copy="audit"), 2,
                        "holds an audit run, not a sweep"),
    "sweep-over-an-audit": (_command(*SWEEP, "--out", "{copy}", copy="audit"), 2,
                            "holds an audit run, not multinomial"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_input_is_one_line_exit_2_and_changes_nothing(case, finished, tmp_path, capsys):
    setup, code, fragment = HOSTILE[case]
    if "modadd" in case:
        pytest.importorskip("torch")
    argv, guarded = setup(tmp_path, finished)
    before = {str(p): checksums(p) if p.is_dir() else p.read_bytes() for p in guarded}
    capsys.readouterr()
    assert run(argv) == code, capsys.readouterr().err
    err = capsys.readouterr().err.strip().splitlines()
    if code == 2:
        assert len(err) == 1 and "error:" in err[0] and fragment in err[0], err
    else:
        assert not [line for line in err if "error" in line.lower()], err
    for p in guarded:
        after = checksums(p) if p.is_dir() else p.read_bytes()
        assert after == before[str(p)], f"{p} changed"
    if case == "huge-seed-exact":
        config = json.loads((tmp_path / "new" / "config.json").read_text())
        assert config["spec"]["seed"] == 99999999999999999999999


def test_a_planted_lock_link_with_a_real_process_leaves_its_target(tmp_path):
    """The issue's exact command in a real process: the lock file is a link to a file of the
    user's; it is refused, not truncated and overwritten with a pid."""
    out = tmp_path / "d"
    out.mkdir()
    (out / ".lock").symlink_to(_victim(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "softleak", "simulate", "multinomial", "--d", "10", "--alpha",
         "0.5", "--rho", "0.5", "--teacher-epochs", "50", "--student-epochs", "50", "--out",
         str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "symbolic link" in proc.stderr
    assert (tmp_path / "victim.txt").read_text() == "keep\n"
    assert sorted(p.name for p in out.iterdir()) == [".lock"]


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_files_follow_the_umask(finished, tmp_path, mask):
    """Figures, CSVs, HTML, Markdown, JSON and parquet files alike: the mode a plain ``open``
    gives under the user's umask (``mkstemp`` alone made the figures and reports 0600)."""
    old = os.umask(mask)
    try:
        out = tmp_path / "audit"
        assert run([*AUDIT, "--members", str(finished["members"]), "--out", str(out)]) == 0
    finally:
        os.umask(old)
    files = [p for p in out.rglob("*") if p.is_file()]
    suffixes = {p.suffix for p in files}
    assert {".png", ".csv", ".html", ".md", ".json", ".parquet"} <= suffixes
    modes = {str(p.relative_to(out)): oct(p.stat().st_mode & 0o777) for p in files}
    assert set(modes.values()) == {oct(0o666 & ~mask)}, modes


def test_a_full_disk_names_the_file_it_was_writing(tmp_path, monkeypatch, capsys):
    """An OSError without a file name (ENOSPC from a writer) is reported with the file."""
    import errno

    import pyarrow.parquet as pq

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", full)
    out = tmp_path / "x"
    assert run([*SWEEP, "--out", str(out)]) == 2
    line = one_line_error(capsys)
    assert "No space left on device" in line and str(out / "parts") in line, line
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*.tmp"))


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_workers_run_says_one_line(tmp_path, sig, code):
    """Ctrl-C (or SIGTERM) to the whole process group of a ``--workers 2`` run: one line on
    stderr and the conventional exit code, none of Dask's teardown chatter (killed workers,
    cancelled tasks, tracebacks); the rerun resumes (the kill tests check its table)."""
    pytest.importorskip("distributed")
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "softleak", *SLOW, "--workers", "2", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True,
    )  # fmt: skip
    _wait_for(lambda: len(list((out / "parts").glob("*.parquet"))) >= 1, proc, timeout=300)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=120)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == code and len(lines) == 1, lines
    assert "rerun the same command to resume" in lines[0]
