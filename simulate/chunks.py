"""The piece of work an executor hands out: one teacher batch with all the students of its teachers.

``chunk_units`` trains a teacher batch (reusing saved weights) and yields each teacher's unit (its
rows, curves and new weights) as soon as its students are done; ``train_students`` splits one
teacher's students into the engine's replica batches (``student_batches``). The in-process runner
(``simulate.sweep``) and the Dask workers (``simulate.executors``) both call it, and neither writes
here: results go back to the one writer of the run directory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from softleak.simulate import protocol
from softleak.simulate.memory import replica_batch
from softleak.simulate.precision import part_record
from softleak.simulate.spec import SweepSpec

# Students with a layer of at least this many outputs per replica (a hidden width, or the classes)
# run compute-bound GEMMs on their own: sharing one row set across rho buys
# nothing, while training every rho on the rows of the largest costs up to max(rho)/rho times the
# work. Such students train in one batch per rho, on exactly their own rows; narrower ones (c = 2
# linear students, memory bound) keep one shared row set for all rho. Measured for MLP students
# d = 100, p = 50, c = 100, n = 1000, six rho: one batch per rho took 0.55-0.8x the time of one
# shared-row batch (1 thread).
ROW_SHARING_WIDTH = 100


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
    arithmetic: dict | None = None  # how this process computed the precision (part metadata)


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
        arithmetic = part_record(spec.precision, spec.device)
        yield UnitResult(t.key, rows, curves, new.get(t.key), arithmetic)


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
