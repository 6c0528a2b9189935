"""Run a sweep into a store directory, resuming whatever is already finished.

Units of work are one teacher and all its students. Teachers train in batches (``teacher_batches``);
a trained teacher's weights are saved before its students start, and a unit's rows are written
atomically when its students finish. A rerun of the same command skips finished units and reuses
saved teachers, so a killed sweep (SIGKILL included) loses at most the students in progress.
"""

from __future__ import annotations

import io
import logging
import platform
import sys
import time

import pandas as pd
import torch

from simulate import protocol
from simulate.spec import SweepSpec
from simulate.store import Store, atomic_write_bytes

log = logging.getLogger(__name__)


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


def run_sweep(
    spec: SweepSpec,
    out: str,
    *,
    threads: int | None = None,
    progress: bool | None = None,
    stop_after_units: int | None = None,
) -> pd.DataFrame:
    """Run (or resume) ``spec`` into the directory ``out``; returns the consolidated table.

    progress: a tqdm bar (None: only when stderr is a terminal).
    stop_after_units: stop after finishing that many units (for tests of resumption).
    """
    from tqdm.auto import tqdm

    store = Store(out)
    units = units_of(spec)
    config = sweep_config(spec, threads)
    config["units"] = {uid: list(key) for key, uid in units}
    store.write_config(config)
    pending = [key for key, uid in units if not store.is_done(uid)]
    uid_of = dict(units)
    per_teacher = students_per_teacher(spec)
    if progress is None:
        progress = sys.stderr.isatty()
    bar = tqdm(
        total=len(units) * per_teacher,
        initial=(len(units) - len(pending)) * per_teacher,
        unit="student",
        disable=not progress,
        desc=spec.experiment,
    )
    finished = 0
    try:
        for batch in protocol.teacher_batches(spec, pending):
            states = _load_teachers(spec, store, batch)
            teachers = protocol.train_teachers(spec, batch, threads=threads, states=states)
            for t in teachers:
                if t.key not in states:
                    _save_teacher(spec, store, t)
            for t in teachers:
                rows, curves = _students(spec, t, threads)
                store.write_unit(
                    uid_of[t.key], pd.DataFrame(rows), pd.DataFrame(curves) if curves else None
                )
                bar.update(per_teacher)
                finished += 1
                if stop_after_units is not None and finished >= stop_after_units:
                    return store.consolidate([uid for _, uid in units])
            store.consolidate([uid for _, uid in units])
    finally:
        bar.close()
    return store.consolidate([uid for _, uid in units])


def _students(spec: SweepSpec, teacher, threads) -> tuple[list[dict], list[dict]]:
    if spec.single_logit:
        return protocol.pinv_students(spec, teacher, threads), []
    runs = protocol.student_runs(spec, teacher.key)
    rows, curves = [], []
    for i in range(0, len(runs), spec.max_replicas):
        r, c, _ = protocol.gradient_students(
            spec, teacher, runs[i : i + spec.max_replicas], threads
        )
        rows += r
        curves += c
    return rows, curves


def _save_teacher(spec: SweepSpec, store: Store, teacher) -> None:
    buf = io.BytesIO()
    torch.save(teacher.model.state(), buf)
    atomic_write_bytes(store.teacher_path(spec.teacher_id(*teacher.key)), buf.getvalue())


def _load_teachers(spec: SweepSpec, store: Store, keys) -> dict:
    states = {}
    for key in keys:
        path = store.teacher_path(spec.teacher_id(*key))
        if path.exists():
            state = torch.load(path, weights_only=True, map_location="cpu")
            states[key] = [state[f"p{i}"][0] for i in range(len(state))]
    return states


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0
