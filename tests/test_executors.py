"""Sweeps on a Dask cluster give the in-process table, and survive SIGKILL of a worker or of the
client: no unit lost, none written twice, the rerun resumes to the same table.

A local cluster of 2 worker processes (CI has 2 cores). Workers start with multiprocessing's spawn
and import torch, ~10-15 s on a busy 2-core machine, so the module starts few clusters: one shared
by the worker-kill and the --scheduler tests, one per CLI run with --workers.
"""

import os
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from sweep_fixtures import (  # noqa: E402
    KEY,
    STUDENTS_PER_TEACHER,
    sweep_args,
    sweep_spec,
    table,
)

from softleak.cli import main  # noqa: E402
from softleak.simulate.sweep import run_sweep, units_of  # noqa: E402

ARGS = sweep_args(teacher_epochs=400, student_epochs=1000)
SPEC = sweep_spec(teacher_epochs=400, student_epochs=1000)
UNITS = len(units_of(SPEC))
ROWS = UNITS * STUDENTS_PER_TEACHER
_table = table


def _parts(path) -> int:
    folder = path / "parts"
    return len(list(folder.glob("*.parquet"))) if folder.exists() else 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The in-process table (one thread, as the workers use)."""
    out = tmp_path_factory.mktemp("executors") / "ref"
    assert main([*ARGS, "--threads", "1", "--out", str(out)]) == 0
    table = _table(out)
    assert len(table) == ROWS
    return table


@pytest.fixture(scope="module")
def cluster():
    import logging

    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard": False, "dashboard_address": ":0"},
            silence_logs=logging.ERROR,
        ) as local,
        Client(local) as client,
    ):
        yield local, client


def test_workers_cli_gives_the_in_process_table(tmp_path, reference, capsys):
    out = tmp_path / "dist"
    assert main([*ARGS, "--workers", "2", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert stdout.count("\n") == 1 and "student runs" in stdout  # one summary line, no Dask chatter
    table = _table(out)
    assert not table.duplicated(KEY).any()
    pd.testing.assert_frame_equal(reference, table)


def test_sigkilled_worker_loses_and_duplicates_nothing(tmp_path, reference, cluster):
    _, client = cluster
    out = tmp_path / "worker-kill"
    result: dict = {}

    def sweep():
        try:
            result["table"] = run_sweep(SPEC, out, client=client, progress=False)
        except BaseException as err:  # surfaced by the main thread
            result["error"] = err

    thread = threading.Thread(target=sweep)
    thread.start()
    killed = None
    deadline = time.time() + 60
    while killed is None and time.time() < deadline and thread.is_alive():
        busy = [addr for addr, keys in client.processing().items() if keys]
        # Kill once a chunk has finished (so the worker had warmed up) and another one is running.
        if busy and _parts(out) >= 1:
            pids = client.run(os.getpid, workers=busy[:1])
            if busy[0] in pids and client.processing().get(busy[0]):
                killed = busy[0]
                os.kill(pids[killed], signal.SIGKILL)
                units_at_kill = _parts(out)
        time.sleep(0.02)
    thread.join(timeout=120)
    assert not thread.is_alive(), "the sweep did not finish after the worker was killed"
    assert "error" not in result, result.get("error")
    assert killed is not None, "no chunk was running to kill; enlarge the sweep"
    assert units_at_kill < UNITS
    table = _table(out)
    assert not table.duplicated(KEY).any()
    assert _parts(out) == UNITS
    pd.testing.assert_frame_equal(reference, table)


def test_sigkilled_client_resumes_to_the_same_table(tmp_path, reference, cluster):
    local, _ = cluster
    out = tmp_path / "client-kill"
    proc = subprocess.Popen(
        [sys.executable, "-m", "softleak", *ARGS, "--workers", "2", "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the client, its nannies and workers
    )
    try:
        deadline = time.time() + 90
        while time.time() < deadline and proc.poll() is None and _parts(out) < 1:
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = _parts(out)
    assert 1 <= done < UNITS, f"{done} units done at the kill; resize the sweep"
    _assert_group_gone(proc.pid)
    # Resume on the shared cluster (covers --scheduler too): finished units are skipped.
    assert main([*ARGS, "--scheduler", local.scheduler_address, "--out", str(out)]) == 0
    table = _table(out)
    assert not table.duplicated(KEY).any()
    pd.testing.assert_frame_equal(reference, table)


def test_scheduler_resolves_the_device_on_a_worker(tmp_path, cluster, capsys):
    local, client = cluster
    from softleak.simulate.executors import remote_device

    assert remote_device(client, "auto") in ("cpu", "cuda")
    if client.submit(_has_cuda, pure=False).result():
        pytest.skip("the workers have CUDA")
    out = tmp_path / "cuda"
    argv = [*ARGS, "--scheduler", local.scheduler_address, "--device", "cuda", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cuda" in err[0].lower()
    assert not out.exists()


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _assert_group_gone(pgid: int, wait_s: float = 10) -> None:
    """No process of the killed command's group survives (no leaked workers)."""
    deadline = time.time() + wait_s
    while time.time() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"processes of group {pgid} survived SIGKILL")
