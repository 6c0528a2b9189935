"""Declared parameters: each spec field carries its help text and constraint once (torch-free).

A spec dataclass declares a field with :func:`param` (``default``, a one-line ``help``, the
``kind`` of value it takes, and the command-line ``group`` it shows in); the command line
(``softleak/spec_args.py``) generates its options, their types and their help from these
declarations, and the spec's ``__post_init__`` validates the values, for the command line and for
Python alike (scikit-learn's declarative parameter constraints are the model). A field without a
declaration is not on the command line (``device`` is resolved there, ``extra`` is internal).

Kinds (what the command line accepts; the spec stores the value shown):

- ``count``: an integer >= 1; ``count0``: an integer >= 0; ``seed``: an integer >= 0;
- ``positive``: a finite number > 0; ``nonnegative``: a finite number >= 0;
- ``fraction``: a number strictly between 0 and 1;
- ``positive_grid``, ``fraction_grid``, ``int_grid``: grids (``a,b``, ``start:stop:num``,
  ``log:start:stop:num``) -> tuples; ``fraction0_grid``: a grid of values in [0, 1);
- ``widths``: hidden widths ``500`` or ``500,200`` -> a tuple of ints;
- ``text``: any text (e.g. a path);
- ``choice``: one of ``choices``; ``flag``: a switch (True when given; a field whose default is
  True is switched off by its flag, e.g. ``--no-amp``); ``tristate``:
  ``--x/--no-x`` with None for "the default rule"; ``texts``: a repeatable text option -> a tuple;
  ``csv``: comma-separated texts -> a tuple.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import MISSING
from typing import Any

KINDS = (
    "count",
    "count0",
    "seed",
    "positive",
    "nonnegative",
    "fraction",
    "positive_grid",
    "fraction_grid",
    "fraction0_grid",
    "int_grid",
    "widths",
    "choice",
    "flag",
    "tristate",
    "texts",
    "csv",
    "text",
)


@dataclasses.dataclass(frozen=True)
class Param:
    """A field's declaration: what the command line shows and accepts."""

    help: str  # one line; the command line adds the default
    kind: str  # one of KINDS
    group: str = "options"  # the --help section
    choices: tuple[str, ...] = ()  # for kind "choice"
    flag: str | None = None  # the option's name (default: --field-name)
    metavar: str | None = None
    exclusive: str | None = None  # fields sharing this name are mutually exclusive options

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown parameter kind {self.kind!r}")
        if self.kind == "choice" and not self.choices:
            raise ValueError("a choice parameter needs choices")


def param(
    default: Any = MISSING,
    *,
    help: str,
    kind: str,
    group: str = "options",
    choices: tuple[str, ...] = (),
    flag: str | None = None,
    metavar: str | None = None,
    exclusive: str | None = None,
) -> Any:
    """A dataclass field declared for the command line (see the module docstring)."""
    meta = {"param": Param(help, kind, group, tuple(choices), flag, metavar, exclusive)}
    return dataclasses.field(default=default, metadata=meta)


def declared(spec_cls) -> Iterator[tuple[dataclasses.Field, Param]]:
    """The declared fields of a spec class, in field order."""
    for f in dataclasses.fields(spec_cls):
        p = f.metadata.get("param")
        if p is not None:
            yield f, p


def flag_of(f: dataclasses.Field, p: Param) -> str:
    """The option a field is given by: ``--student-epochs`` for ``student_epochs``."""
    return p.flag or "--" + f.name.replace("_", "-")


#: The ``compile`` field of every spec that trains through ``simulate.train.fit`` (not part of a
#: run's identity: compiled and eager steps differ by float32 round-off only).
COMPILE_HELP = (
    "fuse each training step's gradient with torch.compile (default: only where the step is large "
    "and the run long enough to repay the ~15 s compile; eager where torch.compile is unavailable)"
)


def compile_field():
    """The ``compile`` field (one declaration): ``--compile/--no-compile``, None = the measured
    threshold of ``simulate.train``."""
    return param(None, help=COMPILE_HELP, kind="tristate", group="execution")
