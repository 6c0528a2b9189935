"""The results store of a sweep directory (torch-free: ``compare`` may import it).

Layout of DIR:
- ``config.json``: the resolved sweep spec, package/torch versions, device (written first).
- ``parts/<unit>.parquet``: the rows of one finished unit of work (a teacher and its students),
  written atomically (temp file + ``os.replace``) when the unit completes.
- ``teachers/<teacher>.pt``: trained teacher weights, so a resumed sweep never retrains them.
- ``results.parquet``: the consolidated table (one row per student run), rewritten atomically after
  every unit and at the end.
- ``curves.parquet``: learning curves in long form (``run_id, epoch, metric, value``), where recorded.

Killing the process at any moment loses at most the unit in progress; rerunning the same command
skips every unit whose part file exists.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_parquet(path: Path, frame: pd.DataFrame) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def other_run_config(out: str | os.PathLike, run_id: str) -> dict | None:
    """The config of the run in ``out`` when it was started with settings other than ``run_id``
    (None when ``out`` holds no run or the same one). For experiments whose whole run has one id
    (modadd, gpt2)."""
    path = Path(out) / "config.json"
    if not path.exists():
        return None
    old = json.loads(path.read_text())
    return None if old.get("run_id") == run_id else old


def claim_run_directory(
    out: str | os.PathLike,
    run_id: str,
    *,
    experiment: str,
    outputs: tuple[str, ...],
    on_mismatch: str,
    error: type[Exception],
) -> None:
    """Make ``out`` ready for the run ``run_id`` of a single-run experiment (modadd, gpt2).

    A directory holding a run of other settings raises ``error`` (``on_mismatch="refuse"``) or
    has its ``outputs`` (files or folders) deleted (``"restart"``); nothing is written here.
    """
    if on_mismatch not in ("refuse", "restart"):
        raise ValueError("on_mismatch must be 'refuse' or 'restart'")
    out = Path(out)
    old = other_run_config(out, run_id)
    if old is None:
        return
    if on_mismatch == "refuse":
        raise error(
            f"{out} holds a {experiment} run with other settings (run_id {old.get('run_id')}, "
            f"this spec {run_id}); use a new directory or restart it"
        )
    log.warning("%s held a run with other settings: starting over", out)
    for name in outputs:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


class Store:
    """A sweep directory: finished units, their rows, and the consolidated table."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.parts = self.root / "parts"
        self.curve_parts = self.root / "curve_parts"
        self.teachers = self.root / "teachers"

    # config -------------------------------------------------------------------------------
    def write_config(self, config: dict) -> None:
        """Start (or resume) a run: write config.json and remove temp files a killed run left."""
        self.remove_stale_temps()
        atomic_write_bytes(self.root / "config.json", json.dumps(config, indent=2).encode())

    def remove_stale_temps(self) -> int:
        """Delete ``.*.tmp`` files of interrupted atomic writes (SIGKILL skips their clean-up)."""
        removed = 0
        for folder in (self.root, self.parts, self.curve_parts, self.teachers):
            if folder.exists():
                for tmp in folder.glob(".*.tmp"):
                    tmp.unlink(missing_ok=True)
                    removed += 1
        return removed

    def read_config(self) -> dict | None:
        path = self.root / "config.json"
        return json.loads(path.read_text()) if path.exists() else None

    # units --------------------------------------------------------------------------------
    def part_path(self, unit: str) -> Path:
        return self.parts / f"{unit}.parquet"

    def is_done(self, unit: str) -> bool:
        return self.part_path(unit).exists()

    def write_unit(self, unit: str, rows: pd.DataFrame, curves: pd.DataFrame | None = None) -> None:
        """Record a finished unit. Curves go first: a unit counts as done once its rows exist."""
        if curves is not None and len(curves):
            atomic_write_parquet(self.curve_parts / f"{unit}.parquet", curves)
        atomic_write_parquet(self.part_path(unit), rows)

    def teacher_path(self, teacher: str) -> Path:
        return self.teachers / f"{teacher}.pt"

    # consolidation ------------------------------------------------------------------------
    def consolidate(self, units: list[str] | None = None) -> pd.DataFrame:
        """Concatenate the finished units (those listed, or all) into ``results.parquet``."""
        frame = _concat(self.parts, units)
        if frame is not None:
            atomic_write_parquet(self.root / "results.parquet", frame)
        curves = _concat(self.curve_parts, units)
        if curves is not None:
            atomic_write_parquet(self.root / "curves.parquet", curves)
        return frame if frame is not None else pd.DataFrame()

    def results(self) -> pd.DataFrame:
        return pd.read_parquet(self.root / "results.parquet")


def _concat(folder: Path, units: list[str] | None) -> pd.DataFrame | None:
    if not folder.exists():
        return None
    if units is None:
        paths = sorted(folder.glob("*.parquet"))
    else:
        paths = [folder / f"{u}.parquet" for u in units if (folder / f"{u}.parquet").exists()]
    frames = [pd.read_parquet(p) for p in paths]
    frames = [f for f in frames if len(f)]
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True)
