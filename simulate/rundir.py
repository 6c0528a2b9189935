"""The run-directory contract, shared by every command that writes results (torch-free).

A run directory is a researcher's lab notebook: it never mixes two experiments, never loses a
finished unit of work, and never ends in a traceback. :func:`claim` makes a directory ready for one
run and holds it for the run's whole life:

1. **Paths first** (:func:`resolve_out`): ``~`` and environment variables are expanded; an empty
   path, a path that is a file or sits under one, a broken or looping link, and a location that
   cannot be written are refused before anything is written. Runs never nest
   (``simulate.nesting``): a folder inside another run's, around one, or over the command's own
   input is refused; and no record is ever a link (``simulate.files``: records are opened with
   ``O_NOFOLLOW``, a folder whose records are links is refused).
2. **Sizes first**: each runner estimates the peak memory of its smallest unit of work and calls
   :func:`check_fits` before claiming (nothing is written for a run that cannot fit), and
   :func:`announce` logs the estimated work and time of a long grid.
3. **One writer**: an exclusive ``flock`` on ``DIR/.lock`` (the kernel frees it when the holder
   dies, ``kill -9`` included); a second process is refused in one line naming the holder's pid.
4. **One identity**: ``config.json`` records the run's *identity* (every setting that changes the
   numbers and is not a grid axis) and its fingerprint. A run of another identity is refused in one
   line naming the settings that differ, unless ``restart=True``, which clears the directory's old
   records (only the files this contract writes). Growing or shrinking the grid under one identity
   keeps every finished unit. Folders written before this contract carry no identity: the runner's
   ``legacy`` function rebuilds it from their recorded spec, with today's defaults for fields they
   lack, and the folder is adopted when it matches.
5. **Records checked when read** (``simulate.store``): parts, teachers, checkpoints and configs
   that do not parse, do not match their unit, or could only be read by executing code are moved to
   ``DIR/damaged/``, reported in one line, and recomputed.

Errors a user can cause are :class:`RunDirError` (a ``ValueError``): the command line prints them
as one line with exit code 2.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import math
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
CONFIG_FILE = "config.json"
DAMAGED_DIR = "damaged"

#: Records every run directory may hold (``restart`` clears these, and a family's own outputs).
COMMON_OUTPUTS = (
    CONFIG_FILE,
    "results.parquet",
    "curves.parquet",
    "examples.parquet",
    "manifest.jsonl",
    "parts",
    "curve_parts",
    "example_parts",
    "teachers",
)

#: A grid whose estimated time is over this many seconds is announced before it starts.
ANNOUNCE_S = 600.0


class RunDirError(ValueError):
    """A problem with a run directory that the user caused or can fix: one line, exit code 2."""


class IdentityMismatch(RunDirError):
    """The directory holds a run of other settings (or of another experiment)."""


class DirectoryBusy(RunDirError):
    """Another process holds the directory's lock."""


class TooLarge(RunDirError):
    """The run's smallest unit of work cannot fit in the free memory of its device."""


# ---------------------------------------------------------------------------------------------
# identities
# ---------------------------------------------------------------------------------------------
def digest(obj) -> str:
    """The 16-hex-digit SHA-256 of ``obj`` as sorted JSON (the one run-id / fingerprint hash)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def jsonable(obj):
    """``obj`` as JSON would give it back (tuples become lists), so identities compare equal
    whether they were computed now or read from ``config.json``."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


#: Settings an identity leaves out at these values (``settled``), named when they differ
#: (``teacher_kind`` logistic: the teacher of every logistic-pinv sweep before exact teachers).
SETTLED_DEFAULTS = {"precision": "fp32", "teacher_kind": "logistic"}


def settled(settings: Mapping) -> dict:
    """Settings as an identity or id hashes them: ``precision`` fp32 (what every run used before
    precisions existed) is left out, so folders and ids from before keep theirs; a bf16 contract
    also names its arithmetic (``simulate.precision.named_arithmetic``), so a folder written when
    ``bf16`` meant different arithmetic on different CPUs is refused, not resumed."""
    from softleak.simulate.precision import named_arithmetic

    out = named_arithmetic(dict(settings))
    for key, value in SETTLED_DEFAULTS.items():
        if out.get(key) == value:
            del out[key]
    return out


def differences(old: Mapping, new: Mapping) -> list[str]:
    """``name: OLD there, NEW here`` for every setting that differs between two identities."""
    out = []
    for key in sorted(set(old) | set(new)):
        unset = SETTLED_DEFAULTS.get(key, "<unset>")  # what ``settled`` leaves out
        a, b = old.get(key, unset), new.get(key, unset)
        if a != b:
            out.append(f"{key}: {_short(a)} there, {_short(b)} here")
    return out


def _short(value) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def spec_from_dict(cls, data: Mapping):
    """A frozen spec dataclass rebuilt from its ``dataclasses.asdict`` (as read from a config:
    lists become tuples; fields the record lacks take today's defaults). Raises ValueError for
    fields the class does not know or values it refuses."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"not {cls.__name__} fields: {', '.join(unknown)}")
    values = {k: _tuples(v) for k, v in data.items()}
    try:
        return cls(**values)
    except TypeError as err:
        raise ValueError(str(err)) from None


def _tuples(value):
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def repeated(values) -> list:
    """The values that occur more than once in a grid (compared as floats)."""
    seen, out = set(), []
    for v in values:
        key = float(v) if isinstance(v, (int, float)) else v
        if key in seen and v not in out:
            out.append(v)
        seen.add(key)
    return out


def refuse_repeats(**grids) -> None:
    """ValueError naming the first grid with a repeated value (a table would get duplicate rows)."""
    for name, values in grids.items():
        if values is None:
            continue
        rep = repeated(values)
        if rep:
            raise ValueError(f"{name} repeats {rep[0]!r}: give each grid value once")


def run_config(spec, threads: int | None) -> dict:
    """What every run directory's ``config.json`` records besides its identity: the resolved spec,
    versions, platform, device, threads and how the precision is computed here
    (``simulate.precision.Mechanism.record``; each runner adds its units and family facts)."""
    import platform
    import sys

    from softleak import __version__
    from softleak.simulate.precision import resolve

    torch = sys.modules.get("torch")
    mechanism = resolve(spec.precision, spec.device) if hasattr(spec, "precision") else None
    return {
        "spec": spec.to_dict(),
        "precision": mechanism.record() if mechanism is not None else None,
        "softleak_version": __version__,
        "torch_version": getattr(torch, "__version__", None),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": spec.device,
        "threads": threads,
    }


# ---------------------------------------------------------------------------------------------
# paths
# ---------------------------------------------------------------------------------------------
def resolve_out(out: str | os.PathLike) -> Path:
    """The output directory ``out`` with ``~`` and ``$VARS`` expanded, checked before anything is
    written: it must not be empty, be a file, sit under a file, or lie where nothing can be
    created. Raises :class:`RunDirError`; writes nothing."""
    text = os.fspath(out) if out is not None else ""
    if not str(text).strip():
        raise RunDirError("the output directory is empty: give a folder with --out")
    path = Path(os.path.expandvars(os.path.expanduser(str(text))))
    if path.is_symlink() and not path.exists():
        raise RunDirError(f"{path} is a symbolic link to nothing (broken or a loop): give a folder")
    if path.exists():
        if not path.is_dir():
            raise RunDirError(f"{path} exists and is not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise RunDirError(f"{path} is not writable")
        return path
    parent = path.parent
    while not parent.exists():
        if parent == parent.parent:
            break
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise RunDirError(f"{path} cannot be created: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RunDirError(f"{path} cannot be created: {parent} is not writable")
    return path


def make_dir(path: Path) -> None:
    """Create ``path`` (and its parents); an OSError becomes one line."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunDirError(f"cannot create {path}: {err.strerror or err}") from None


# ---------------------------------------------------------------------------------------------
# sizes
# ---------------------------------------------------------------------------------------------
def check_fits(need_bytes: float, device: str, what: str, free: int | None = None) -> None:
    """Refuse (:class:`TooLarge`) a run whose smallest unit needs more than the free memory of
    ``device`` (``free`` bytes when given, e.g. measured on a cluster's worker). ``what`` names
    the unit in the message."""
    from softleak.simulate.memory import free_bytes

    free = free_bytes(device) if free is None else free
    if need_bytes > free:
        raise TooLarge(
            f"{what} needs ~{_bytes(need_bytes)} of memory, but {device} has {_bytes(free)} free; "
            "shrink the problem (d, n, widths) or use a larger device"
        )


def announce(seconds: float, work: str, device: str) -> None:
    """Log the estimated work and time of a run that will take longer than ``ANNOUNCE_S``."""
    if math.isfinite(seconds) and seconds > ANNOUNCE_S:
        log.warning("%s: estimated %s on %s", work, _duration(seconds), device)


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# ---------------------------------------------------------------------------------------------
# the lock
# ---------------------------------------------------------------------------------------------
class DirectoryLock:
    """An exclusive, non-blocking ``flock`` on ``DIR/.lock`` holding the owner's pid. The kernel
    frees it when the process dies; the file itself stays (deleting a lock file races)."""

    def __init__(self, root: Path):
        self.path = Path(root) / LOCK_FILE
        self.fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        from softleak.simulate.files import open_record

        try:
            fd = open_record(self.path, os.O_RDWR | os.O_CREAT)  # never through a planted link
        except OSError as err:
            raise RunDirError(f"cannot lock {self.path.parent}: {err.strerror or err}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                os.close(fd)
                raise RunDirError(f"cannot lock {self.path.parent}: {err.strerror}") from None
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DirectoryBusy(
                f"{self.path.parent} is in use by another softleak run (pid {holder}); wait for it "
                "to finish or use another --out"
            ) from None
        self.fd = fd

    def record_pid(self) -> None:
        """Write this process's pid into the held lock file (for a refused second writer's
        message); done once the run is allowed, so a refused run writes nothing."""
        mine = f"{os.getpid()}\n".encode()
        if self.fd is not None and os.pread(self.fd, 64, 0) != mine:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, mine, 0)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None


# ---------------------------------------------------------------------------------------------
# claiming a directory
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def claim(
    out: str | os.PathLike,
    *,
    experiment: str,
    identity: Mapping,
    restart: bool = False,
    legacy: Callable[[dict], Mapping | None] | None = None,
    outputs: tuple[str, ...] = (),
    inputs: tuple[str | os.PathLike, ...] = (),
) -> Iterator:
    """Hold ``out`` for one run of ``experiment`` with ``identity``; yields its ``Store``.

    restart: clear the directory's old records first (``COMMON_OUTPUTS`` and ``outputs``), whatever
        run they belong to.
    legacy: ``legacy(old_config) -> identity`` for a config written before identities were
        recorded (None when it cannot be rebuilt: the folder is then refused as another run).
    inputs: the files and folders the run reads (a sweep folder, array files): ``out`` may not
        be one, lie inside one, or hold one among its records (``check_place``).
    Raises :class:`RunDirError` (bad path, nesting, linked records, busy, other identity) before
    writing any record.
    """
    from softleak.simulate.files import refuse_linked_records
    from softleak.simulate.nesting import check_place
    from softleak.simulate.store import Store, set_aside

    root = resolve_out(out)
    check_place(root, inputs, (*COMMON_OUTPUTS, *outputs))
    refuse_linked_records(root, (*COMMON_OUTPUTS, *outputs))
    make_dir(root)
    lock = DirectoryLock(root)
    lock.acquire()
    try:
        identity = jsonable(dict(identity))
        fingerprint = digest({"experiment": experiment, **identity})
        config_path = root / CONFIG_FILE
        if restart:
            cleared = clear_records(root, outputs)
            if cleared:
                log.warning("%s: cleared %d old records (--restart)", root, cleared)
        elif config_path.exists():
            old = _read_config(config_path)
            if old is None:
                set_aside(root, config_path, "config.json does not parse")
            else:
                _check_identity(root, old, experiment, identity, fingerprint, legacy)
        lock.record_pid()
        yield Store(root, fingerprint=fingerprint, experiment=experiment, identity=identity)
    finally:
        lock.release()


def _read_config(path: Path) -> dict | None:
    from softleak.simulate.files import read_record

    try:
        value = json.loads(read_record(path))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def article(word: str) -> str:
    """``word`` with its indefinite article (a multinomial run, an audit run)."""
    return f"{'an' if str(word)[:1].lower() in 'aeiou' else 'a'} {word}"


def _check_identity(root, old, experiment, identity, fingerprint, legacy) -> None:
    old_experiment = old.get("experiment") or (old.get("spec") or {}).get("experiment")
    if old_experiment is not None and old_experiment != experiment:
        raise IdentityMismatch(
            f"{root} holds {article(old_experiment)} run, not {experiment}; use another --out or "
            "--restart to clear it"
        )
    if old.get("fingerprint") == fingerprint:
        return
    old_identity = old.get("identity")
    if old_identity is None and legacy is not None:
        try:
            old_identity = legacy(old)
        except (ValueError, TypeError, KeyError):
            old_identity = None
        old_identity = None if old_identity is None else jsonable(dict(old_identity))
    if old_identity == identity:
        return
    if old_identity is None:
        raise IdentityMismatch(
            f"{root} holds a run whose settings this version cannot read; use another --out or "
            "--restart to clear it"
        )
    diff = differences(old_identity, identity)
    raise IdentityMismatch(
        f"{root} holds {article(experiment)} run with other settings ({'; '.join(diff)}); use "
        "another --out or --restart to clear it"
    )


def clear_records(root: Path, outputs: tuple[str, ...] = ()) -> int:
    """Delete the records a run directory may hold (``COMMON_OUTPUTS`` and ``outputs``); files the
    contract did not write stay. Returns how many top-level entries went."""
    cleared = 0
    for name in dict.fromkeys((*COMMON_OUTPUTS, *outputs)):
        path = root / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
            cleared += 1
        elif path.exists() or path.is_symlink():
            path.unlink()
            cleared += 1
    for tmp in root.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
    return cleared
