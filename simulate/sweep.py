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

import logging
import os

import pandas as pd

from softleak.simulate import protocol
from softleak.simulate.chunks import UnitResult, chunk_units, students_per_teacher
from softleak.simulate.progress import student_bar
from softleak.simulate.spec import SweepSpec
from softleak.simulate.store import Store, save_state

log = logging.getLogger(__name__)


def units_of(spec: SweepSpec) -> list[tuple[tuple[int, int, int, int], str]]:
    """All (teacher key, unit id) of the spec, in grid order."""
    return [
        ((d, c, n, rep), spec.unit_id(d, c, n, rep))
        for d, c, n in spec.teacher_sizes()
        for rep in range(spec.seeds)
    ]


def sweep_identity(spec: SweepSpec) -> dict:
    """What a sweep directory is for: every setting that changes the numbers and is not a grid axis
    (the grid axes alpha / n, rho, tau, shuffle, ablation, seeds and student seeds may grow or
    shrink under one identity; d and c fix the data design and stay)."""
    return {**spec.run_settings(), "d": spec.d, "c": spec.c}


def legacy_identity(config: dict) -> dict:
    """The identity of a sweep folder written before identities were recorded (today's defaults
    for the spec fields it lacks)."""
    spec_dict = dict(config["spec"])
    if config.get("allow_tf32"):  # before precisions: the TF32 switch
        spec_dict["precision"] = "tf32"
    spec = SweepSpec.from_dict(spec_dict)
    return sweep_identity(spec)


def check_sizes(spec: SweepSpec, free: int | None = None) -> None:
    """Refuse, before anything is written, a sweep whose largest teacher with one student cannot
    fit in the device's free memory (``free`` bytes when given: a cluster worker's)."""
    from softleak.simulate.memory import unit_bytes
    from softleak.simulate.rundir import check_fits

    d, c, n = max(spec.teacher_sizes(), key=lambda s: unit_bytes(spec, *s))
    check_fits(
        unit_bytes(spec, d, c, n),
        spec.device,
        f"one teacher of d = {d}, c = {c}, n = {n} with one student",
        free,
    )


def run_sweep(
    spec: SweepSpec,
    out: str | os.PathLike,
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
    allow_tf32: deprecated: ``precision="tf32"`` in the spec (``simulate.precision``).
    restart: start over, clearing the directory's old records.
    """
    from softleak.simulate.precision import require_precision
    from softleak.simulate.rundir import claim, resolve_out, run_config

    if allow_tf32:
        import dataclasses

        log.warning("allow_tf32 is deprecated: give the spec precision='tf32'")
        spec = dataclasses.replace(spec, precision="tf32")

    out = resolve_out(out)
    require_precision(spec.precision, spec.device)  # refused here, before any record
    if client is None:
        check_sizes(spec)
    else:
        from softleak.simulate.executors import remote_free_bytes

        check_sizes(spec, remote_free_bytes(client, spec.device))
    units = units_of(spec)
    all_uids = [uid for _, uid in units]
    with claim(
        out,
        experiment=spec.experiment,
        identity=sweep_identity(spec),
        restart=restart,
        legacy=legacy_identity,
    ) as store:
        config = run_config(spec, threads)
        config["units"] = {uid: list(key) for key, uid in units}
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
        try:
            if client is not None:
                _run_on_cluster(client, spec, store, pending, uid_of, bar, threads, retries)
            else:
                _run_in_process(spec, store, pending, uid_of, bar, threads, stop_after_units)
        finally:
            bar.close()
        return store.consolidate(all_uids)


def _run_on_cluster(
    client,
    spec: SweepSpec,
    store: Store,
    pending: list,
    uid_of: dict,
    bar,
    threads: int | None,
    retries: int,
) -> None:
    """Compute the pending units' chunks on the cluster of ``client``; record what returns."""
    from softleak.simulate.executors import run_chunks

    per_teacher = students_per_teacher(spec)
    chunks = [
        (batch, _load_teachers(spec, store, batch))
        for batch in protocol.teacher_batches(spec, pending)
    ]
    for results in run_chunks(client, spec, chunks, threads=threads, retries=retries):
        # every teacher of the chunk first, as in process: a teacher trained with its batch and
        # retrained alone after a kill differ by float32 round-off (~6e-8 in the weights, ~3e-5
        # in its students' train_ce), so a resume must load it, never retrain it alone
        for unit in results:
            if unit.teacher_state is not None:
                _save_teacher_state(spec, store, unit.key, unit.teacher_state)
                unit.teacher_state = None
        for unit in results:
            _record(spec, store, uid_of[unit.key], unit)
            bar.update(per_teacher)


def _run_in_process(
    spec: SweepSpec,
    store: Store,
    pending: list,
    uid_of: dict,
    bar,
    threads: int | None,
    stop_after_units: int | None,
) -> None:
    """Compute the pending units here, saving each teacher batch's weights before its students
    and stopping after ``stop_after_units`` units when given."""
    per_teacher = students_per_teacher(spec)

    def save(new: dict) -> None:
        for key, state in new.items():
            _save_teacher_state(spec, store, key, state)

    finished = 0
    for batch in protocol.teacher_batches(spec, pending):
        states = _load_teachers(spec, store, batch)
        for unit in chunk_units(spec, batch, states, threads, on_teachers=save):
            unit.teacher_state = None  # saved above, before the students ran
            _record(spec, store, uid_of[unit.key], unit)
            bar.update(per_teacher)
            finished += 1
            if stop_after_units is not None and finished >= stop_after_units:
                return


def _record(spec: SweepSpec, store: Store, uid: str, unit: UnitResult) -> None:
    """Write one finished unit (its new teacher first, then curves, then rows)."""
    if unit.teacher_state is not None:
        _save_teacher_state(spec, store, unit.key, unit.teacher_state)
    store.write_unit(
        uid,
        pd.DataFrame(unit.rows),
        pd.DataFrame(unit.curves) if unit.curves else None,
        arithmetic=unit.arithmetic,
    )


def _save_teacher_state(spec: SweepSpec, store: Store, key: tuple, state: dict) -> None:
    save_state(store.teacher_path(spec.teacher_id(*key)), state)


def _load_teachers(spec: SweepSpec, store: Store, keys) -> dict:
    """Saved teacher weights by key, checked when read (a damaged file is set aside and that
    teacher retrained)."""
    from softleak.simulate.store import set_aside

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
