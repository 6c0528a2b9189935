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


@dataclass
class UnitResult:
    """What one unit produced: its rows, its curve records, and the teacher's weights when they
    were trained now (None when they came from the store)."""

    key: tuple[int, int, int, int]
    rows: list[dict]
    curves: list[dict]
    teacher_state: dict | None


def sweep_identity(spec: SweepSpec, allow_tf32: bool = False) -> dict:
    """What a sweep directory is for: every setting that changes the numbers and is not a grid axis
    (the grid axes alpha / n, rho, tau, shuffle, ablation, seeds and student seeds may grow or
    shrink under one identity; d and c fix the data design and stay)."""
    return {**spec.run_settings(), "d": spec.d, "c": spec.c, "allow_tf32": bool(allow_tf32)}


def legacy_identity(config: dict) -> dict:
    """The identity of a sweep folder written before identities were recorded (today's defaults
    for the spec fields it lacks)."""
    spec = SweepSpec.from_dict(config["spec"])
    return sweep_identity(spec, bool(config.get("allow_tf32", False)))


def check_sizes(spec: SweepSpec, free: int | None = None) -> None:
    """Refuse, before anything is written, a sweep whose largest teacher with one student cannot
    fit in the device's free memory (``free`` bytes when given: a cluster worker's); announce a
    long one (work and estimated time)."""
    from simulate.estimate import estimate
    from simulate.experiments import work_of
    from simulate.memory import unit_bytes
    from simulate.rundir import announce, check_fits

    d, c, n = max(spec.teacher_sizes(), key=lambda s: unit_bytes(spec, *s))
    check_fits(
        unit_bytes(spec, d, c, n),
        spec.device,
        f"one teacher of d = {d}, c = {c}, n = {n} with one student",
        free,
    )
    work = work_of(spec)
    times = estimate(spec)
    seconds = times["h200_s" if spec.device.startswith("cuda") else "cpu_s"]
    announce(
        seconds,
        f"{work['teachers']} teachers and {work['students']} students "
        f"({work['flops'] / 1e12:.3g} TFLOP)",
        spec.device,
    )


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
    restart: bool = False,
) -> pd.DataFrame:
    """Run (or resume) ``spec`` into the directory ``out``; returns the consolidated table.

    The directory follows ``simulate.rundir``'s contract: a folder holding a sweep of another
    identity (``sweep_identity``) is refused (``IdentityMismatch``) unless ``restart``, which
    clears its old records; another process writing there is refused (``DirectoryBusy``); a
    sweep whose smallest unit cannot fit in memory is refused before anything is written
    (``TooLarge``).

    threads: torch/BLAS threads (None: in-process, ``simulate.device.threads_for`` decides; on a
        cluster, 1 per worker process).
    progress: a tqdm bar (None: only when stderr is a terminal).
    stop_after_units: stop after finishing that many units (for tests of resumption; in-process).
    client: a ``distributed.Client``: run the chunks on its cluster (``simulate.executors``).
    retries: on a cluster, how often a chunk that raised is retried (a chunk whose worker died is
        rescheduled by the scheduler in any case).
    allow_tf32: TF32 GEMMs on CUDA (see ``simulate.precision``); part of the run's identity.
    restart: start over, clearing the directory's old records.
    """
    from simulate.rundir import claim, resolve_out

    out = resolve_out(out)
    if client is None:
        check_sizes(spec)
    else:
        from simulate.executors import remote_free_bytes

        check_sizes(spec, remote_free_bytes(client, spec.device))
    units = units_of(spec)
    all_uids = [uid for _, uid in units]
    with claim(
        out,
        experiment=spec.experiment,
        identity=sweep_identity(spec, allow_tf32),
        restart=restart,
        legacy=legacy_identity,
    ) as store:
        config = sweep_config(spec, threads)
        config["units"] = {uid: list(key) for key, uid in units}
        config["allow_tf32"] = allow_tf32
        config["executor"] = _executor_info(client)
        store.write_config(config)
        per_teacher = students_per_teacher(spec)
        key_of = {uid: key for key, uid in units}
        run_ids = None if spec.single_logit else (lambda u: protocol.unit_run_ids(spec, key_of[u]))
        done = store.finished(all_uids, per_teacher, run_ids)
        pending = [key for key, uid in units if uid not in done]
        uid_of = dict(units)
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
                for results in run_chunks(
                    client, spec, chunks, threads=threads, retries=retries, allow_tf32=allow_tf32
                ):
                    for unit in results:
                        _record(spec, store, uid_of[unit.key], unit)
                        bar.update(per_teacher)
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
    """Saved teacher weights by key, checked when read (a damaged file is set aside and that
    teacher retrained)."""
    from simulate.store import set_aside

    states = {}
    for key in keys:
        path = store.teacher_path(spec.teacher_id(*key))
        state = store.load_state(path)
        if state is None:
            continue
        try:
            states[key] = [state[f"p{i}"][0] for i in range(len(state))]
        except (KeyError, IndexError, TypeError):
            set_aside(store.root, path, "not a teacher's weights")
    return states


def _executor_info(client) -> dict:
    if client is None:
        return {"kind": "in-process"}
    workers = client.scheduler_info().get("workers", {})
    return {"kind": "dask", "scheduler": client.scheduler.address, "workers": len(workers)}
