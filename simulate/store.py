"""The records of a run directory (torch-free: ``compare`` reads result folders through here).

Layout of DIR (``simulate.rundir`` claims it: path checks, lock, identity):
- ``config.json``: the run's experiment, identity and fingerprint, the resolved spec, the units of
  the command's grid, versions and device (written first).
- ``parts/<unit>.parquet``: the rows of one finished unit of work (e.g. a teacher and its
  students), written atomically (temp file + ``os.replace``) with the unit id, the run's
  fingerprint and the row count in the file's metadata.
- ``curve_parts/<unit>.parquet``: its learning curves, where recorded, and
  ``example_parts/<unit>.parquet``: its per-example scores (the audit): the unit's *side tables*
  (:data:`SIDE_TABLES`), written before its rows and checked with them.
- ``manifest.jsonl``: one line per finished unit, appended after its part (constant cost per unit).
- ``teachers/<teacher>.pt``: trained teacher weights, so a resumed run never retrains them.
- ``results.parquet``: the consolidated table of the command's grid, written once at the end (its
  metadata names the units it holds, so a reader can tell when it is stale); ``curves.parquet``
  and ``examples.parquet`` likewise for the side tables.
- ``damaged/``: records that failed their check when read, moved aside (then recomputed).

Killing the process at any moment loses at most the unit in progress; rerunning the same command
skips every unit whose part reads back whole and matches its unit. Readers that must not write
(``compare``) use :func:`read_results`, which reads the parts when results.parquet is stale and
reports damaged ones without touching them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from softleak.simulate.files import (
    append_record,
    atomic_write_bytes,
    atomic_write_with,
    check_folder,
    read_record,
    record_handle,
)

log = logging.getLogger(__name__)

META_KEY = b"softleak"
MANIFEST = "manifest.jsonl"
RESULTS = "results.parquet"
#: A unit's side tables: name -> (folder of its parts, consolidated file).
SIDE_TABLES = {
    "curves": ("curve_parts", "curves.parquet"),
    "examples": ("example_parts", "examples.parquet"),
}


def _part_arithmetic(record) -> dict | None:
    """The short per-part form of config.json's ``precision`` record."""
    if not isinstance(record, dict) or "mechanism" not in record:
        return None
    return {k: record.get(k) for k in ("precision", "mechanism", "native")}


def atomic_write_parquet(path: Path, frame: pd.DataFrame, meta: dict | None = None) -> None:
    """Write ``frame`` atomically (``files.atomic_write_with``: the user's umask, a link at
    ``path`` replaced, never followed); ``meta`` goes into the file's key-value metadata."""

    def write(tmp: str) -> None:
        if meta is None:
            frame.to_parquet(tmp, index=False)
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        old = table.schema.metadata or {}
        table = table.replace_schema_metadata({**old, META_KEY: json.dumps(meta).encode()})
        pq.write_table(table, tmp)

    atomic_write_with(path, write)


def save_state(path: Path, state: dict) -> None:
    """Atomically write a dict of tensors (``torch.save``; detached, on the CPU)."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state.items()}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_state(path: Path) -> dict:
    """Saved weights, loaded with ``weights_only=True`` (no code runs). Unchecked: a run's own
    records go through ``Store.load_state``, which sets a damaged file aside."""
    import torch

    with record_handle(path) as handle:  # never through a link
        return torch.load(handle, weights_only=True, map_location="cpu")


def read_parquet_checked(path: Path) -> tuple[pd.DataFrame, dict]:
    """A parquet file and its softleak metadata ({} when it has none); ValueError (one line) when
    it does not parse."""
    import pyarrow.parquet as pq

    handle = record_handle(path)  # a link is refused (LinkedRecord), never followed
    try:
        table = pq.read_table(handle)
        frame = table.to_pandas()
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise ValueError(f"{type(err).__name__}: {err}".splitlines()[0]) from None
    finally:
        handle.close()
    raw = (table.schema.metadata or {}).get(META_KEY)
    try:
        meta = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        raise ValueError("its softleak metadata does not parse") from None
    return frame, meta


def set_aside(root: Path, path: Path, reason: str) -> Path:
    """Move a damaged record to ``root/damaged/`` (never deleted) and say so in one line."""
    root, path = Path(root), Path(path)
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path(path.name)
    check_folder(root / "damaged")
    target = root / "damaged" / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    k = 1
    while target.exists():
        target = root / "damaged" / rel.with_name(f"{rel.name}.{k}")
        k += 1
    shutil.move(str(path), str(target))
    reason = reason if len(reason) <= 100 else reason[:97] + "..."
    log.warning("%s is damaged (%s): moved to %s and recomputed", path, reason, target)
    return target


def part_problem(frame: pd.DataFrame, meta: dict, unit: str, fingerprint, rows, run_ids):
    """Why a part does not belong to ``unit`` (None when it does)."""
    if meta.get("unit") not in (None, unit):
        return f"it holds unit {meta['unit']}"
    if fingerprint is not None and meta.get("fingerprint") not in (None, fingerprint):
        return "it was written by a run of other settings"
    if rows is not None and len(frame) != rows:
        return f"{len(frame)} rows, expected {rows}"
    if run_ids is not None and "run_id" in frame and set(frame["run_id"]) != set(run_ids):
        return "its run ids are not its unit's"
    return None


class Store:
    """The records of one claimed run directory (see the module docstring)."""

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        fingerprint: str | None = None,
        experiment: str | None = None,
        identity: Mapping | None = None,
    ):
        self.root = Path(root)
        self.parts = self.root / "parts"
        self.side = {name: self.root / folder for name, (folder, _) in SIDE_TABLES.items()}
        self.teachers = self.root / "teachers"
        self.fingerprint = fingerprint
        self.experiment = experiment
        self.identity = dict(identity) if identity is not None else None
        self.device: str | None = None  # recorded per part (not part of the identity)
        self.arithmetic: dict | None = None  # how the precision was computed, recorded per part

    # config -------------------------------------------------------------------------------
    def write_config(self, config: dict) -> None:
        """Start (or resume) a run: write config.json (with the run's experiment, identity and
        fingerprint) and remove temp files a killed run left."""
        self.remove_stale_temps()
        self.device = config.get("device", self.device)
        self.arithmetic = _part_arithmetic(config.get("precision")) or self.arithmetic
        record = dict(config)
        if self.fingerprint is not None:
            record.update(
                experiment=self.experiment, identity=self.identity, fingerprint=self.fingerprint
            )
        text = json.dumps(record, indent=2, default=str)
        atomic_write_bytes(self.root / "config.json", text.encode())

    def remove_stale_temps(self) -> int:
        """Delete ``.*.tmp`` files of interrupted atomic writes (SIGKILL skips their clean-up)."""
        removed = 0
        for folder in (self.root, self.parts, *self.side.values(), self.teachers):
            if folder.exists():
                for tmp in folder.glob(".*.tmp"):
                    tmp.unlink(missing_ok=True)
                    removed += 1
        return removed

    def read_config(self) -> dict | None:
        path = self.root / "config.json"
        return json.loads(read_record(path)) if os.path.lexists(path) else None

    # units --------------------------------------------------------------------------------
    def part_path(self, unit: str) -> Path:
        return self.parts / f"{unit}.parquet"

    def side_path(self, name: str, unit: str) -> Path:
        """The part of side table ``name`` (:data:`SIDE_TABLES`) of ``unit``."""
        return self.side[name] / f"{unit}.parquet"

    def read_unit(
        self,
        unit: str,
        rows: int | None = None,
        run_ids: Iterable[str] | None = None,
        need: Iterable[str] = (),
    ) -> pd.DataFrame | None:
        """The rows of a finished unit, checked (they parse; their unit, fingerprint, row count
        and run ids match; its side tables parse); None when absent. A part that fails is moved
        aside (then it counts as not done), with its side tables. ``need``: side tables the
        unit must have (a part written before they existed: None, left in place to be
        rewritten)."""
        path = self.part_path(unit)
        if not path.exists():
            return None
        if any(not self.side_path(name, unit).exists() for name in need):
            log.info("%s: unit %s lacks its %s; it is recomputed", self.root, unit, "/".join(need))
            return None
        try:
            frame, meta = read_parquet_checked(path)
            problem = part_problem(frame, meta, unit, self.fingerprint, rows, run_ids)
        except ValueError as err:
            problem = str(err)
        sides = [self.side_path(name, unit) for name in self.side]
        for side in sides:
            if problem is None and side.exists():
                try:
                    read_parquet_checked(side)
                except ValueError as err:
                    problem = f"its {side.parent.name}: {err}"
        if problem is not None:
            set_aside(self.root, path, problem)
            for side in sides:
                if side.exists():
                    set_aside(self.root, side, "its unit was set aside")
            return None
        return frame

    def finished(
        self,
        units: Iterable[str],
        rows: Mapping[str, int] | int | None = None,
        run_ids: Callable[[str], Iterable[str]] | None = None,
        need: Iterable[str] = (),
    ) -> set[str]:
        """The units whose parts read back whole (damaged ones are moved aside). ``run_ids(unit)``
        gives the run ids a unit's part must hold (asked only for parts that exist); ``need``
        the side tables it must have (``read_unit``)."""
        need = tuple(need)
        done = set()
        for unit in units:
            if not self.part_path(unit).exists():
                continue
            want = rows.get(unit) if isinstance(rows, Mapping) else rows
            ids = run_ids(unit) if run_ids is not None else None
            if self.read_unit(unit, want, ids, need) is not None:
                done.add(unit)
        return done

    def write_unit(
        self,
        unit: str,
        rows: pd.DataFrame,
        curves: pd.DataFrame | None = None,
        examples: pd.DataFrame | None = None,
        arithmetic: dict | None = None,
    ) -> None:
        """Record a finished unit. Side tables go first: a unit counts as done once its rows
        exist; the manifest line comes last. ``arithmetic``: how the process that computed it
        ran the precision (``simulate.precision.part_record``; default: this run's)."""
        for folder in (self.parts, *self.side.values()):
            check_folder(folder)  # a planted link is refused, never written through
        meta: dict[str, object] = {
            "unit": unit,
            "fingerprint": self.fingerprint,
            "rows": len(rows),
            "device": self.device,
        }
        if arithmetic or self.arithmetic:
            meta["arithmetic"] = arithmetic or self.arithmetic
        for name, table in (("curves", curves), ("examples", examples)):
            if table is not None and (len(table) or name == "examples"):
                atomic_write_parquet(self.side_path(name, unit), table, meta)
        atomic_write_parquet(self.part_path(unit), rows, meta)
        append_record(self.root / MANIFEST, json.dumps(meta) + "\n")

    def teacher_path(self, teacher: str) -> Path:
        return check_folder(self.teachers) / f"{teacher}.pt"

    # checked reads of other records -------------------------------------------------------
    def load_state(self, path: Path) -> dict | None:
        """Saved weights (``torch.load(weights_only=True)``: no code runs); None when absent. A
        file that does not load, or that only loads by executing code, is moved aside."""
        path = Path(path)
        if not path.exists():
            return None
        try:
            state = load_state(path)
        except Exception as err:  # truncated zip, unpickling refused, ... (torch raises many)
            set_aside(self.root, path, f"{type(err).__name__}: {err}".splitlines()[0][:120])
            return None
        if not isinstance(state, dict):
            set_aside(self.root, path, "not a dict of tensors")
            return None
        return state

    def read_json(self, path: Path):
        """A JSON record; None when absent or when it does not parse (then it is moved aside)."""
        path = Path(path)
        if not path.exists():
            return None
        try:
            return json.loads(read_record(path))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            set_aside(self.root, path, f"{type(err).__name__}")
            return None

    def read_table(self, path: Path) -> pd.DataFrame | None:
        """A parquet record other than a part; None when absent or damaged (moved aside)."""
        path = Path(path)
        if not path.exists():
            return None
        try:
            return read_parquet_checked(path)[0]
        except ValueError as err:
            set_aside(self.root, path, str(err))
            return None

    # consolidation ------------------------------------------------------------------------
    def consolidate(self, units: list[str]) -> pd.DataFrame:
        """Concatenate the finished ``units`` (in that order) into ``results.parquet`` and the
        side tables' files (``curves.parquet``, ``examples.parquet``); other finished units stay on disk (counted in one log line)."""
        present = [u for u in units if self.part_path(u).exists()]
        frames = [read_parquet_checked(self.part_path(u))[0] for u in present]
        frames = [f for f in frames if len(f)]
        meta = {"fingerprint": self.fingerprint, "units": present}
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if frames:
            atomic_write_parquet(self.root / RESULTS, frame, meta)
        for name, (_, file) in SIDE_TABLES.items():
            paths = [self.side_path(name, u) for u in present]
            tables = [read_parquet_checked(p)[0] for p in paths if p.exists()]
            tables = [t for t in tables if len(t)]
            if tables:
                table = pd.concat(tables, ignore_index=True)
                atomic_write_parquet(self.root / file, table, {"units": present})
        others = _part_names(self.parts) - set(units)
        if others:
            log.warning(
                "%s: results.parquet holds the %d units of this grid; %d other finished units "
                "stay in parts/",
                self.root,
                len(present),
                len(others),
            )
        return frame


def read_side_table(root: str | os.PathLike, name: str, units: list[str]) -> pd.DataFrame | None:
    """Side table ``name`` (:data:`SIDE_TABLES`) of the finished ``units`` of a run directory,
    writing nothing: the consolidated file when its metadata names exactly these units, else the
    units' own parts concatenated (a file of another grid, or one a kill left unwritten, is not
    used). None when no unit has one; ValueError (one line) for a part that does not parse."""
    root = Path(root)
    folder, file = SIDE_TABLES[name]
    path = root / file
    if path.is_file():
        frame, meta = read_parquet_checked(path)
        if meta.get("units") == list(units):
            return frame
    parts = [root / folder / f"{u}.parquet" for u in units]
    tables = [read_parquet_checked(p)[0] for p in parts if p.is_file()]
    return pd.concat(tables, ignore_index=True) if tables else None


def _part_names(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.parquet")} if folder.exists() else set()


# ---------------------------------------------------------------------------------------------
# reading a run directory without writing (compare)
# ---------------------------------------------------------------------------------------------
@dataclass
class RunResults:
    """What a run directory holds, read without writing anything."""

    frame: pd.DataFrame
    config: dict
    units: list[str] | None = None  # the units of the grid config.json records (None: unknown)
    done: list[str] = field(default_factory=list)  # those finished
    damaged: list[str] = field(default_factory=list)  # parts that failed to read (left in place)
    stale: bool = False  # results.parquet was missing units (the parts were read instead)

    @property
    def complete(self) -> bool | None:
        """Whether every unit of the grid is finished (None when the grid is unknown)."""
        if self.units is None:
            return None
        return not self.damaged and set(self.units) <= set(self.done)


def config_units(config: Mapping) -> list[str] | None:
    """The units of the grid a config records (sweeps: a dict unit -> key; others: a list)."""
    units = config.get("units")
    if isinstance(units, Mapping):
        return list(units)
    if isinstance(units, list):
        return [str(u) for u in units]
    return None


def read_results(root: str | os.PathLike) -> RunResults:
    """The table of a run directory as its records say, writing nothing: results.parquet when it
    holds every finished unit of the grid, else the finished parts themselves. ValueError (one
    line) when the folder holds no readable table or config."""
    from softleak.simulate.files import refuse_linked_records
    from softleak.simulate.rundir import COMMON_OUTPUTS

    root = Path(root)
    if not root.is_dir():
        if root.exists():
            raise ValueError(f"{str(root)!r} is a file, not a run directory")
        raise ValueError(f"run directory {str(root)!r} does not exist")
    refuse_linked_records(root, COMMON_OUTPUTS)  # a planted link is refused, never read
    config_path = root / "config.json"
    config: dict = {}
    if config_path.is_file():
        try:
            config = json.loads(read_record(config_path))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read {str(config_path)!r}: {err}") from None
        if not isinstance(config, dict):
            raise ValueError(f"{str(config_path)!r} is not a config object")
    units = config_units(config)
    finished = _manifest_units(root, config.get("fingerprint"))
    if finished is None:  # a folder written before the manifest: its part files say
        finished = _part_names(root / "parts")
    grid = units if units is not None else sorted(finished)
    done = [u for u in grid if u in finished]
    results = root / RESULTS
    if results.is_file():
        try:
            frame, meta = read_parquet_checked(results)
        except ValueError as err:
            raise ValueError(f"cannot read {str(results)!r}: {err}") from None
        held = meta.get("units")
        if held is None or set(done) <= set(held):
            if held is not None:
                done = [u for u in grid if u in set(held)]
            return RunResults(frame, config, units, done)
    frames, damaged = [], []
    for unit in done:
        try:
            frames.append(read_parquet_checked(root / "parts" / f"{unit}.parquet")[0])
        except (ValueError, FileNotFoundError):
            damaged.append(unit)
    done = [u for u in done if u not in damaged]
    if not frames:
        raise ValueError(f"no {RESULTS} and no finished parts in {str(root)!r}")
    frame = pd.concat([f for f in frames if len(f)] or frames, ignore_index=True)
    return RunResults(frame, config, units, done, damaged, stale=True)


def _manifest_units(root: Path, fingerprint) -> set[str] | None:
    path = root / MANIFEST
    if not path.is_file():
        return None
    out = set()
    for line in read_record(path).decode(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # the line a kill cut short (its part may still exist)
            continue
        if isinstance(rec, dict) and rec.get("fingerprint") in (None, fingerprint):
            if (root / "parts" / f"{rec.get('unit')}.parquet").exists():
                out.add(str(rec["unit"]))
    return out
