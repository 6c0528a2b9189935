"""Declared parameters: each spec field carries its help text and constraint once (torch-free).

A spec dataclass declares a field with :func:`param` (``default``, a one-line ``help``, the
``kind`` of value it takes, and the command-line ``group`` it shows in); the command line
(``softleak/spec_args.py``) generates its options, their types and their help from these
declarations, and :func:`check_declared` holds every declared value to its kind when a spec is
built (``simulate.run_spec.RunSpec``), for the command line and for Python alike
(scikit-learn's declarative parameter constraints are the model). A spec's own validation keeps
only what a kind cannot say: rules across fields and bounds of its own (``c >= 2``). A field
without a declaration is not on the command line (``device`` is resolved there, ``extra`` is
internal).

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

What :func:`check_declared` adds for Python callers (values the command line cannot even form):
integers may be any integral number (``2.0``, ``numpy.int64``); a grid holds each value once and
at least one value unless its default is None or empty; ``text`` is not checked (from Python a
spec may take richer values there, e.g. a model factory, and checks them itself); None passes
wherever the field's default is None (the spec's rule fills it in, or it means "none").
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Iterator
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


def check_declared(spec) -> None:
    """ValueError (one line naming the field) for the first declared field of ``spec`` whose value
    its kind does not admit (see the module docstring)."""
    for f, p in declared(type(spec)):
        value = getattr(spec, f.name)
        if value is None and f.default is None:
            continue
        problem = CHECKS[p.kind](value, p)
        if problem is None and p.kind in GRIDS:
            problem = _grid_problem(value, f.default)
        if problem is not None:
            raise ValueError(f"{f.name} {problem}, got {_shown(value)}")


def _shown(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_shown(v) for v in value) + ")"
    return f"{value:g}" if isinstance(value, float) else repr(value)


def _integral(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer()


def _real(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _each(values: Any, ok: Callable[[Any], bool]) -> bool:
    return isinstance(values, (tuple, list)) and all(ok(v) for v in values)


def _from_one(values: Any) -> bool:
    return _each(values, lambda x: _integral(x) and x >= 1)


def _rule(ok: Callable[[Any], bool], what: str) -> Callable[[Any, Param], str | None]:
    return lambda value, p: None if ok(value) else what


#: kind -> check(value, declaration) -> what is wrong (None: admitted)
CHECKS: dict[str, Callable[[Any, Param], str | None]] = {
    "count": _rule(lambda v: _integral(v) and v >= 1, "must be an integer >= 1"),
    "count0": _rule(lambda v: _integral(v) and v >= 0, "must be an integer >= 0"),
    "seed": _rule(lambda v: _integral(v) and v >= 0, "must be an integer >= 0"),
    "positive": _rule(lambda v: _real(v) and v > 0, "must be a finite number > 0"),
    "nonnegative": _rule(lambda v: _real(v) and v >= 0, "must be a finite number >= 0"),
    "fraction": _rule(lambda v: _real(v) and 0 < v < 1, "must lie strictly between 0 and 1"),
    "positive_grid": _rule(
        lambda v: _each(v, lambda x: _real(x) and x > 0), "must be finite numbers > 0"
    ),
    "fraction_grid": _rule(
        lambda v: _each(v, lambda x: _real(x) and 0 < x < 1),
        "must lie strictly between 0 and 1",
    ),
    "fraction0_grid": _rule(
        lambda v: _each(v, lambda x: _real(x) and 0 <= x < 1), "must lie in [0, 1)"
    ),
    "int_grid": _rule(_from_one, "must be integers >= 1"),
    "widths": _rule(_from_one, "must be integers >= 1"),
    "choice": lambda v, p: None if v in p.choices else "must be one of " + ", ".join(p.choices),
    "flag": _rule(lambda v: v in (True, False), "must be true or false"),
    "tristate": _rule(lambda v: v in (None, True, False), "must be true, false or None"),
    "texts": _rule(lambda v: _each(v, lambda x: isinstance(x, str)), "must be texts"),
    "csv": _rule(lambda v: _each(v, lambda x: isinstance(x, str)), "must be texts"),
    "text": lambda v, p: None,
}
GRIDS = ("positive_grid", "fraction_grid", "fraction0_grid", "int_grid")


def _grid_problem(values: Any, default: Any) -> str | None:
    """A grid holds each value once, and a value at least unless its default is None or empty."""
    from softleak.simulate.rundir import repeated

    if not values and default is not None and default != ():
        return "needs at least one value"
    twice = repeated(values)
    if twice:
        return f"repeats {twice[0]!r}: give each grid value once"
    return None


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
