"""Entry point of the ``softleak`` command: ``softleak theory|simulate|compare|figs ...``.

The command modules import their libraries inside the handlers, so that parsing is cheap and
``softleak theory ...`` never loads torch.
"""

from __future__ import annotations

import argparse
import logging
import sys

from softleak import __version__
from softleak.errors import UsageError


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr and exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse's signature
        self.exit(2, f"{self.prog}: error: {message}\n")


# Command groups in the order --help lists them: their modules import nothing heavy at import time.
GROUPS = {
    "theory": "commands_theory",
    "simulate": "commands_simulate",
    "compare": "commands_compare",
    "figs": "commands_figs",
    "audit": "commands_audit",
}


def build_parser(group: str | None = None) -> Parser:
    """The command line. ``group``: register only that command group's options (the others are
    listed by name and help): its specs import torch, which ``softleak theory ...`` must not
    load. None registers every group."""
    import importlib

    parser = Parser(
        prog="softleak",
        description=(
            "How much of a teacher's held-out memorized data can a student recover from its soft "
            "labels, and when? Closed-form thresholds (theory), batched teacher/student sweeps "
            "(simulate), thresholds and phase diagrams from result tables (compare), the "
            "paper's figures (figs), and a leakage audit of your own teacher (audit)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"softleak {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    groups = parser.add_subparsers(dest="group", metavar="{theory,...}", parser_class=Parser)
    groups.required = True
    for name, module_name in GROUPS.items():
        module = importlib.import_module(f"softleak.{module_name}")
        if group is None or name == group:
            module.register(groups)
        else:
            groups.add_parser(name, help=module.HELP)
    return parser


def _group_of(argv: list[str]) -> str:
    """The command group ``argv`` names ('' when none: then every group is listed)."""
    for token in argv:
        if not token.startswith("-"):
            return token if token in GROUPS else ""
    return ""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    group = _group_of(argv)
    parser = build_parser(group or None) if group else build_parser("")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from softleak.simulate.precision import PrecisionUnavailable
    from softleak.simulate.rundir import RunDirError

    previous = _terminate_as_interrupt()
    try:
        return int(args.handler(args) or 0)
    except (UsageError, RunDirError, PrecisionUnavailable) as err:
        return _fail(str(err), 2)
    except BrokenPipeError:  # e.g. `softleak figs list | head`: the reader left; not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Terminated:
        print("softleak: terminated (SIGTERM); rerun the same command to resume", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("softleak: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except OSError as err:  # the disk, the output folder, a file the user named
        where = f"{err.filename}: " if err.filename else ""
        return _fail(f"{where}{err.strerror or err}", 2)
    except Exception as err:  # a bug: one line, the traceback with -v
        if args.verbose:
            import traceback

            traceback.print_exc()
        text = f"{type(err).__name__}: {err}".splitlines()[0][:300]
        return _fail(f"unexpected {text}; run `softleak -v ...` for the traceback", 1)
    finally:
        if previous is not None:
            import signal

            signal.signal(signal.SIGTERM, previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C: the run unwinds (worker clusters close, the lock and temp
    files go) instead of dying mid-write, and says in one line how to resume."""


def _terminate_as_interrupt():
    """Turn SIGTERM into :class:`Terminated` for the command's run; returns the previous
    handler (None where signals cannot be set: not the main thread)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise Terminated()

    return signal.signal(signal.SIGTERM, handler)


def _fail(message: str, code: int) -> int:
    """One line on stderr (a multi-line message from a library keeps its first line)."""
    lines = str(message).strip().splitlines() or ["(no message)"]
    print(f"softleak: error: {lines[0]}", file=sys.stderr)
    return code
