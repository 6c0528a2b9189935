"""Run a sweep into a store directory, resuming whatever is already finished.

Units of work are one teacher and all its students. Teachers train in batches (``teacher_batches``);
a *chunk* is one teacher batch with all the students of its teachers, the piece of work an executor
hands out (``chunk_units`` computes one). In-process (the default), a trained teacher's weights are
saved before its students start, and a unit's rows are written atomically when its students finish.
On a Dask cluster (``client=``, see ``simulate.executors``) workers compute chunks and return rows,
curves and new teacher weights; this process writes them through the same store, so the table does
not depend on the executor. A rerun of the same command skips finished units and reuses saved
teachers, so a killed sweep (SIGKILL included) loses at most the chunks in progress.
"""

from __future__ import annotations

import io
import logging
import platform
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pandas as pd
import torch

from simulate import protocol
from simulate.memory import replica_batch
from simulate.precision import matmul_precision
from simulate.progress import student_bar
from simulate.spec import SweepSpec
from simulate.store import Store, atomic_write_bytes

log = logging.getLogger(__name__)

# Students with a layer of at least this many outputs per replica (a hidden width, or the classes)
# run compute-bound GEMMs on their own: sharing one row set across rho buys
# nothing, while training every rho on the rows of the largest costs up to max(rho)/rho times the
# work. Such students train in one batch per rho, on exactly their own rows; narrower ones (c = 2
# linear students, memory bound) keep one shared row set for all rho. Measured for MLP students
# d = 100, p = 50, c = 100, n = 1000, six rho: one batch per rho took 0.55-0.8x the time of one
# shared-row batch (1 thread).
ROW_SHARING_WIDTH = 100

# The distributed path rewrites results.parquet at most this often (and at the end): it re-reads
# every part file, so doing it per chunk would cost O(chunks^2) on big sweeps.
CONSOLIDATE_EVERY_S = 60.0


def sweep_config(spec: SweepSpec, threads: int | None) -> dict:
    from softleak import __version__

    return {
        "spec": spec.to_dict(),
        "softleak_version": __version__,
        "torch_version": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": spec.device,
        "threads": threads,
        "units": {},
    }


def units_of(spec: SweepSpec) -> list[tuple[tuple[int, int, int, int], str]]:
    """All (teacher key, unit id) of the spec, in grid order."""
    return [
        ((d, c, n, rep), spec.unit_id(d, c, n, rep))
        for d, c, n in spec.teacher_sizes()
        for rep in range(spec.seeds)
    ]


def students_per_teacher(spec: SweepSpec) -> int:
    return len(protocol.student_runs(spec, (1, 2, 2, 0)))


class ResumeMismatch(ValueError):
    """The directory holds a sweep started under settings that change its numbers."""


@dataclass
class UnitResult:
    """What one unit produced: its rows, its curve records, and the teacher's weights when they
    were trained now (None when they came from the store)."""

    key: tuple[int, int, int, int]
    rows: list[dict]
    curves: list[dict]
    teacher_state: dict | None


def run_sweep(
    spec: SweepSpec,
    out: str,
    *,
    threads: int | None = None,
    progress: bool | None = None,
    stop_after_units: int | None = None,
    client=None,
    retries: int = 3,
    allow_tf32: bool = False,
) -> pd.DataFrame:
    """Run (or resume) ``spec`` into the directory ``out``; returns the consolidated table.

    threads: torch/BLAS threads (None: in-process, ``simulate.device.threads_for`` decides; on a
        cluster, 1 per worker process).
    progress: a tqdm bar (None: only when stderr is a terminal).
    stop_after_units: stop after finishing that many units (for tests of resumption; in-process).
    client: a ``distributed.Client``: run the chunks on its cluster (``simulate.executors``).
    retries: on a cluster, how often a chunk that raised is retried (a chunk whose worker died is
        rescheduled by the scheduler in any case).
    allow_tf32: TF32 GEMMs on CUDA (see ``simulate.precision``); recorded in config.json, and a
        directory started under the other setting refuses to resume (``ResumeMismatch``).
    """
    store = Store(out)
    old = store.read_config()
    if old is not None and bool(old.get("allow_tf32", False)) != allow_tf32:
        raise ResumeMismatch(
            f"{out} was started with allow_tf32={bool(old.get('allow_tf32', False))}; "
            "resume it with the same setting or use a new directory"
        )
    units = units_of(spec)
    all_uids = [uid for _, uid in units]
    config = sweep_config(spec, threads)
    config["units"] = {uid: list(key) for key, uid in units}
    config["allow_tf32"] = allow_tf32
    config["executor"] = _executor_info(client)
    store.write_config(config)
    pending = [key for key, uid in units if not store.is_done(uid)]
    uid_of = dict(units)
    per_teacher = students_per_teacher(spec)
    bar = student_bar(
        len(units) * per_teacher,
        (len(units) - len(pending)) * per_teacher,
        spec.experiment,
        progress,
    )
    finished = 0
    try:
        if client is not None:
            from simulate.executors import run_chunks

            chunks = [
                (batch, _load_teachers(spec, store, batch))
                for batch in protocol.teacher_batches(spec, pending)
            ]
            last = time.monotonic()
            for results in run_chunks(
                client, spec, chunks, threads=threads, retries=retries, allow_tf32=allow_tf32
            ):
                for unit in results:
                    _record(spec, store, uid_of[unit.key], unit)
                    bar.update(per_teacher)
                if time.monotonic() - last > CONSOLIDATE_EVERY_S:
                    store.consolidate(all_uids)
                    last = time.monotonic()
            return store.consolidate(all_uids)

        def save(new: dict) -> None:
            for key, state in new.items():
                _save_teacher_state(spec, store, key, state)

        with matmul_precision(allow_tf32):
            for batch in protocol.teacher_batches(spec, pending):
                states = _load_teachers(spec, store, batch)
                for unit in chunk_units(spec, batch, states, threads, on_teachers=save):
                    unit.teacher_state = None  # saved above, before the students ran
                    _record(spec, store, uid_of[unit.key], unit)
                    bar.update(per_teacher)
                    finished += 1
                    if stop_after_units is not None and finished >= stop_after_units:
                        return store.consolidate(all_uids)
                store.consolidate(all_uids)
    finally:
        bar.close()
    return store.consolidate(all_uids)


def chunk_units(
    spec: SweepSpec,
    keys: list[tuple[int, int, int, int]],
    states: dict,
    threads: int | None,
    on_teachers: Callable[[dict], object] | None = None,
) -> Iterator[UnitResult]:
    """Compute one chunk: train the teacher batch ``keys`` (reusing ``states``), then yield each
    teacher's unit as soon as its students are done.

    ``on_teachers({key: state})`` is called with the newly trained teachers' weights before any
    student trains (the in-process runner saves them there).
    """
    teachers = protocol.train_teachers(spec, keys, threads=threads, states=states)
    new = {t.key: t.model.state() for t in teachers if t.key not in states}
    if on_teachers is not None and new:
        on_teachers(new)
    for t in teachers:
        rows, curves = train_students(spec, t, threads)
        yield UnitResult(t.key, rows, curves, new.get(t.key))


def student_width(spec: SweepSpec, c: int) -> int:
    """The widest layer output of a student (hidden widths and the c logits): what decides whether
    its steps are compute bound (see ``ROW_SHARING_WIDTH``)."""
    return max([*spec.p_student, c])


def student_batches(spec: SweepSpec, runs: list, teacher_key: tuple) -> list[list]:
    """Split one teacher's student runs into the batches that train together.

    Wide students (``ROW_SHARING_WIDTH``) are grouped by rho; each group is cut into pieces of
    ``simulate.memory.replica_batch`` students (``min(spec.max_replicas, what fits in memory)``).
    """
    d, c, n, _ = teacher_key
    if student_width(spec, c) >= ROW_SHARING_WIDTH:
        groups: dict[float, list] = {}
        for run in runs:
            groups.setdefault(run.rho, []).append(run)
        by_rho = list(groups.values())
    else:
        by_rho = [runs]
    size = replica_batch(spec, d, c, n)
    return [group[i : i + size] for group in by_rho for i in range(0, len(group), size)]


def train_students(spec: SweepSpec, teacher, threads) -> tuple[list[dict], list[dict]]:
    """All students of one trained teacher, in the engine's batches: (rows in grid order, curves)."""
    if spec.single_logit:
        return protocol.pinv_students(spec, teacher, threads), []
    runs = protocol.student_runs(spec, teacher.key)
    results: dict = {}
    curves: list[dict] = []
    for batch in student_batches(spec, runs, teacher.key):
        r, cv, _ = protocol.gradient_students(spec, teacher, batch, threads)
        results.update(zip(batch, r, strict=True))
        curves += cv
    return [results[run] for run in runs], curves  # rows in grid order, whatever the batches


def _record(spec: SweepSpec, store: Store, uid: str, unit: UnitResult) -> None:
    """Write one finished unit (its new teacher first, then curves, then rows)."""
    if unit.teacher_state is not None:
        _save_teacher_state(spec, store, unit.key, unit.teacher_state)
    store.write_unit(
        uid, pd.DataFrame(unit.rows), pd.DataFrame(unit.curves) if unit.curves else None
    )


def _save_teacher_state(spec: SweepSpec, store: Store, key: tuple, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(store.teacher_path(spec.teacher_id(*key)), buf.getvalue())


def _load_teachers(spec: SweepSpec, store: Store, keys) -> dict:
    states = {}
    for key in keys:
        path = store.teacher_path(spec.teacher_id(*key))
        if path.exists():
            state = torch.load(path, weights_only=True, map_location="cpu")
            states[key] = [state[f"p{i}"][0] for i in range(len(state))]
    return states


def _executor_info(client) -> dict:
    if client is None:
        return {"kind": "in-process"}
    workers = client.scheduler_info().get("workers", {})
    return {"kind": "dask", "scheduler": client.scheduler.address, "workers": len(workers)}
