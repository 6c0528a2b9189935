"""The run directory: ``run_modadd`` runs (or resumes) a spec into it; ``load_checkpoints``
reads its saved teacher."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd

from softleak.simulate.modadd.data import make_data
from softleak.simulate.modadd.spec import ModAddSpec, student_runs
from softleak.simulate.modadd.students import run_id_of, students_of_checkpoint
from softleak.simulate.modadd.teacher import Checkpoint, train_teacher
from softleak.simulate.progress import student_bar
from softleak.simulate.store import load_state, save_state

OUTPUTS = (
    "results.parquet",
    "curves.parquet",
    "teacher_curves.parquet",
    "checkpoints.json",
    "checkpoints",
    "parts",
    "curve_parts",
)


def load_checkpoints(out: str | Path, with_states: bool = True, store=None):
    """The teacher checkpoints of a run directory (None when its teacher is not finished).

    store: the claimed ``Store`` of ``out`` when the caller writes there: records that fail their
    check (a checkpoint list that does not parse, weights that do not load) are then moved aside
    and None is returned, so the teacher is retrained (same seed: the same checkpoints)."""
    out = Path(out)
    meta = out / "checkpoints.json"
    if store is None:
        if not meta.exists():
            return None
        from softleak.simulate.files import read_record

        records = json.loads(read_record(meta))  # never through a link
    else:
        records = store.read_json(meta)
        if records is None:
            return None
    fields = {f.name for f in dataclasses.fields(Checkpoint)}
    try:
        checkpoints = [Checkpoint(**{k: v for k, v in m.items() if k in fields}) for m in records]
    except (TypeError, AttributeError):
        if store is None:
            raise
        from softleak.simulate.store import set_aside

        set_aside(store.root, meta, "not a list of checkpoints")
        return None
    if with_states:
        for c in checkpoints:
            if c.epoch is not None:
                path = out / "checkpoints" / f"{c.name}.pt"
                c.state = load_state(path) if store is None else store.load_state(path)
                if c.state is None:
                    return None
    return checkpoints


def run_modadd(
    spec: ModAddSpec,
    out: str | Path,
    *,
    threads: int | None = None,
    progress: bool | None = None,
    restart: bool = False,
) -> pd.DataFrame:
    """Run (or resume) ``spec`` into the directory ``out``; returns the results table.

    threads: torch/BLAS threads (None: ``simulate.device.threads_for`` decides).
    progress: a tqdm bar over students (None: only when stderr is a terminal).
    restart: start over, clearing the directory's records (a directory holding a run of other
        settings is refused without it: ``simulate.rundir.IdentityMismatch``).
    """
    from softleak.simulate.precision import require_precision
    from softleak.simulate.rundir import check_fits, claim, resolve_out, run_config, spec_from_dict
    from softleak.simulate.store import atomic_write_bytes, atomic_write_parquet

    out = resolve_out(out)
    require_precision(spec.precision, spec.device)  # refused here, before any record
    check_fits(spec.peak_bytes(), spec.device, f"a modadd {spec.model} at p = {spec.p}")
    with claim(
        out,
        experiment="modadd",
        identity=spec.identity(),
        restart=restart,
        legacy=lambda old: spec_from_dict(ModAddSpec, old["spec"]).identity(),
        outputs=OUTPUTS,
    ) as store:
        config = run_config(spec, threads)
        config["run_id"] = spec.run_id()
        config["work"] = spec.work()
        store.write_config(config)
        for tmp in (out / "checkpoints").glob(".*.tmp"):
            tmp.unlink(missing_ok=True)

        data = make_data(spec)
        checkpoints = load_checkpoints(out, store=store)
        if checkpoints is None:
            checkpoints, curves, wall = train_teacher(spec, data, threads)
            for c in checkpoints:
                if c.state is not None:
                    save_state(out / "checkpoints" / f"{c.name}.pt", c.state)
            atomic_write_parquet(out / "teacher_curves.parquet", curves)
            meta = [c.meta() | {"wall_s": wall} for c in checkpoints]
            atomic_write_bytes(out / "checkpoints.json", json.dumps(meta, indent=2).encode())
            for c in checkpoints:  # the student stage reads the saved weights, as a resume would
                if c.state is not None:
                    c.state = load_state(out / "checkpoints" / f"{c.name}.pt")
        names = [c.name for c in checkpoints if c.epoch is not None]
        config["units"] = names  # checkpoints whose rule never held have no students
        store.write_config(config)
        runs = student_runs(spec)
        done = store.finished(names, len(runs), lambda c: [run_id_of(spec, c, r) for r in runs])
        pending = [c for c in checkpoints if c.epoch is not None and c.name not in done]
        bar = student_bar(
            len(names) * len(runs), (len(names) - len(pending)) * len(runs), "modadd", progress
        )
        try:
            for c in pending:
                rows, curves = students_of_checkpoint(spec, data, c, threads, on_batch=bar.update)
                store.write_unit(c.name, rows, curves if len(curves) else None)
        finally:
            bar.close()
        return store.consolidate(names)
