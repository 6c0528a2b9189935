"""The files of a run directory: written atomically with the user's umask, read and written
without following symbolic links (torch-free).

A run folder can be copied, shared or handed over; a symbolic link planted among its records
(``.lock -> ~/.bashrc``, ``manifest.jsonl -> notes.txt``, ``teachers -> ../other-run/teachers``)
must never make softleak write through it or read someone else's file as its own. So:

- every record file is opened with ``O_NOFOLLOW`` (:func:`open_record`, :func:`read_record`,
  :func:`append_record`): a link is refused (:class:`LinkedRecord`, one line, exit code 2),
  never followed; a record that is not a regular file (a folder, a FIFO) is refused too;
- record folders are checked before they are used (:func:`check_folder`): a link or a file
  where a folder belongs is refused;
- new files are written atomically (a temporary file in the same folder, then ``os.replace``,
  which replaces a link itself, never its target) with the mode a plain ``open`` gives under the
  user's umask (:func:`file_mode`; ``mkstemp`` alone would make them 0600, unreadable to a group
  that shares a results folder);
- an OSError while writing (a full disk) names the file it was writing.

The checks guard against links planted before a run (a copied folder); a process racing to swap
a folder for a link while softleak holds the folder's lock is beyond them.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from softleak.simulate.rundir import RunDirError


class LinkedRecord(RunDirError):
    """A record of a run directory is a symbolic link, or not the kind of file it must be (one
    line, exit code 2)."""


def file_mode() -> int:
    """The mode a plain ``open`` gives a new file under the current umask (0644 under 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _linked(path: Path) -> LinkedRecord:
    return LinkedRecord(
        f"{path} is a symbolic link; softleak never follows links among a run's records: "
        "remove it or use another folder"
    )


def check_folder(path: str | os.PathLike) -> Path:
    """``path`` as a record folder: absent, or a real directory (not a link, not a file).
    Raises :class:`LinkedRecord`."""
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return path
    if stat.S_ISLNK(info.st_mode):
        raise _linked(path)
    if not stat.S_ISDIR(info.st_mode):
        raise LinkedRecord(f"{path} should be a folder of run records but is a file")
    return path


def make_folder(path: str | os.PathLike) -> Path:
    """Create the record folder ``path`` (and its parents) after :func:`check_folder`."""
    path = check_folder(path)
    path.mkdir(parents=True, exist_ok=True)
    return check_folder(path)  # a link that appeared meanwhile


def open_record(path: str | os.PathLike, flags: int = os.O_RDONLY, mode: int = 0o666) -> int:
    """``os.open`` of a record without following a final symbolic link; the descriptor of a
    regular file. Raises :class:`LinkedRecord` for a link or a non-regular file (a folder named
    like a record, a FIFO that would block), OSError (with the file name) for the rest."""
    path = Path(path)
    nonblock = getattr(os, "O_NONBLOCK", 0)  # a FIFO must not block the open
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | nonblock, mode)
    except OSError as err:
        if err.errno == errno.ELOOP or (err.errno == errno.EMLINK and path.is_symlink()):
            raise _linked(path) from None
        if err.errno == errno.EISDIR:
            raise LinkedRecord(f"{path} is a folder, not a file") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise LinkedRecord(f"{path} is {kind}, not a file")
    if nonblock:
        os.set_blocking(fd, True)
    return fd


def read_record(path: str | os.PathLike) -> bytes:
    """The bytes of a record file, read without following links (:func:`open_record`)."""
    with os.fdopen(open_record(path), "rb") as handle:
        return handle.read()


def record_handle(path: str | os.PathLike):
    """A binary file object of a record opened without following links (for readers that take a
    file, e.g. pyarrow or ``torch.load``)."""
    return os.fdopen(open_record(path), "rb")


def append_record(path: str | os.PathLike, text: str) -> None:
    """Append ``text`` to a record file (created with :func:`file_mode`), never through a link."""
    fd = open_record(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with os.fdopen(fd, "a") as handle:
        try:
            handle.write(text)
            handle.flush()
        except OSError as err:
            raise _named(err, path) from None


def _named(err: OSError, path: str | os.PathLike) -> OSError:
    """``err`` with ``path`` as its file name when it has none (a full disk names the file)."""
    if err.filename:
        return err
    return OSError(err.errno, err.strerror or str(err), str(path))


def atomic_write_with(path: str | os.PathLike, write) -> Path:
    """Like :func:`atomic_write_bytes` for writers that need a file name: ``write(tmp_path)``
    writes the temporary file (e.g. ``pyarrow.parquet.write_table``), then it replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, file_mode())
        os.close(fd)
        write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise _named(err, path) from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, then
    ``os.replace``) with :func:`file_mode`. A link at ``path`` is replaced, never written
    through; an OSError names ``path``."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    return atomic_write_with(path, write)


def refuse_linked_records(root: str | os.PathLike, names) -> None:
    """Refuse (:class:`LinkedRecord`) a run folder whose records are links: any of ``names``
    (and the lock file) directly under ``root``, or any entry of those that are folders
    (``parts/*``, ``teachers/*``, ...). Reads folder listings only; writes nothing."""
    from softleak.simulate.rundir import DAMAGED_DIR, LOCK_FILE

    root = Path(root)
    if not root.is_dir():
        return
    for name in dict.fromkeys((LOCK_FILE, *names, DAMAGED_DIR)):
        path = root / name
        if path.is_symlink():
            raise _linked(path)
        if path.is_dir():
            _refuse_links_below(path)


def _refuse_links_below(folder: Path) -> None:
    with os.scandir(folder) as entries:
        for entry in entries:  # the file type comes with the listing: no stat per entry
            if entry.is_symlink():
                raise _linked(Path(entry.path))
            if entry.is_dir(follow_symlinks=False):
                _refuse_links_below(Path(entry.path))
