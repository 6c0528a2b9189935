"""Where a run folder may lie: never inside another run's folder, never around one, never over
its own input (torch-free; part of the run-directory contract, ``simulate.rundir``).

Run folders that nest eat each other: a sweep written into ``OTHER/parts`` is counted among
OTHER's finished units, a teacher exported into ``SWEEP/teachers`` is deleted by the sweep's
``--restart``, and ``export-teacher SWEEP --out SWEEP --restart`` clears the sweep it reads. So
before a run claims its folder OUT (all paths compared after resolving links):

- OUT may not lie inside another run's folder (one holding a softleak ``config.json``, or a
  ``.lock`` beside a run's records), at any depth;
- OUT may not hold another run's folder directly, nor anywhere inside the records a run writes
  and ``--restart`` clears (``parts/``, ``teachers/``, ...);
- OUT may not be, lie inside, or hold among its records any input of the run (the sweep an
  export reads, the audit's array files).

Each refusal is one line (:class:`~softleak.simulate.rundir.RunDirError`, exit code 2) naming
both folders. Folders deeper than one level below OUT outside its records are not searched (a
results root holding many runs can be large).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from softleak.simulate.rundir import (
    COMMON_OUTPUTS,
    CONFIG_FILE,
    DAMAGED_DIR,
    LOCK_FILE,
    RunDirError,
)


def is_run_folder(path: Path) -> bool:
    """Whether ``path`` is a softleak run folder: a ``config.json`` that names a fingerprint or a
    spec, or a lock file beside any of the records a run writes (``.lock`` alone is too common a
    name: pytest's own temporary folders hold one)."""
    if os.path.lexists(path / LOCK_FILE) and any(
        os.path.lexists(path / name) for name in COMMON_OUTPUTS
    ):
        return True
    config = path / CONFIG_FILE
    if not config.is_file() or config.is_symlink():
        return False
    try:
        with open(config, "rb") as handle:
            value = json.loads(handle.read(1 << 20))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(value, dict) and ("fingerprint" in value or "spec" in value)


def _inside(path: Path, folder: Path) -> bool:
    return path != folder and folder in path.parents


def check_place(
    out: Path, inputs: Iterable[str | os.PathLike] = (), records: Iterable[str] = ()
) -> None:
    """Refuse (:class:`RunDirError`, nothing written) an output folder ``out`` that lies inside
    another run's folder, holds one (directly, or anywhere among ``records``), or is, lies inside
    or holds among its ``records`` one of the run's ``inputs``."""
    real = Path(os.path.realpath(out))
    names = {*records, DAMAGED_DIR, LOCK_FILE}
    for source in inputs:
        _check_input(out, real, Path(source), names)
    for parent in real.parents:
        if is_run_folder(parent):
            raise RunDirError(
                f"{out} lies inside the softleak run folder {parent}; runs never nest: use a "
                "folder outside it"
            )
    if not real.is_dir():
        return
    for child in _children(real):
        if child.is_dir() and not child.is_symlink() and is_run_folder(child):
            raise RunDirError(
                f"{out} holds the softleak run folder {child}; runs never nest: use another "
                "--out (e.g. a new folder beside it)"
            )
    for name in names:
        folder = real / name
        if not folder.is_dir() or folder.is_symlink():
            continue
        for where, dirs, _ in os.walk(folder):  # os.walk never follows links by default
            for sub in dirs:
                if is_run_folder(Path(where) / sub):
                    raise RunDirError(
                        f"{out} holds the softleak run folder {Path(where) / sub} among its "
                        f"records ({name}/), which a rerun reads and --restart clears; move it out"
                    )


def _check_input(out: Path, real: Path, source: Path, names: set[str]) -> None:
    source_real = Path(os.path.realpath(source))
    if source_real == real:
        raise RunDirError(
            f"{out} is this command's own input ({source}); write the results into another "
            "folder (--restart would clear it)"
        )
    if _inside(real, source_real):
        raise RunDirError(
            f"{out} lies inside this command's input {source}; write the results outside it"
        )
    if _inside(source_real, real):
        first = source_real.relative_to(real).parts[0]
        if first in names:
            raise RunDirError(
                f"this command's input {source} lies among the records of its output folder "
                f"{out} ({first}), which the run rewrites and --restart clears; move it out or "
                "use another --out"
            )


def _children(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as entries:
            return [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
