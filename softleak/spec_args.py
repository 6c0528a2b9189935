"""Command-line options generated from a spec's declared fields (``simulate.params``).

``add_spec_options`` adds one option per declared field (its flag, type, default and help, in
its group); ``spec_values`` reads them back as the spec's field values. The constraints are the
field's kind (the argparse types of ``softleak.args``: one line and exit code 2 on bad input) and
the spec's own validation, so the command line and Python accept the same values.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from softleak import args as A
from softleak.simulate.params import declared, flag_of

TYPES = {
    "count": A.positive_int,
    "count0": A.nonnegative_int,
    "seed": A.nonnegative_int,
    "positive": A.positive_float,
    "nonnegative": A.nonnegative_float,
    "fraction": A.fraction,
    "positive_grid": A.positive_grid,
    "fraction_grid": A.fraction_grid,
    "fraction0_grid": A.fraction0_grid,
    "int_grid": A.int_grid,
    "widths": A.widths,
}
TUPLES = ("positive_grid", "fraction_grid", "fraction0_grid", "widths", "texts")


def add_spec_options(
    parser: argparse.ArgumentParser,
    spec_cls,
    *,
    defaults: Mapping[str, Any] | None = None,
    skip: Iterable[str] = (),
    groups: dict[str, Any] | None = None,
    default_help: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Add the declared fields of ``spec_cls`` to ``parser``; returns the argument groups by name
    (pass them back to add more options to a group). ``defaults`` override the spec's;
    ``default_help`` replaces the "(default X)" text of a field."""
    defaults = dict(defaults or {})
    skip = set(skip)
    groups = {} if groups is None else groups
    for name in _group_order(spec_cls, skip):
        if name not in groups:
            groups[name] = parser.add_argument_group(name)
    exclusive: dict[tuple[str, str], Any] = {}
    for f, p in declared(spec_cls):
        if f.name in skip:
            continue
        group = groups.get(p.group)
        if group is None:
            group = groups[p.group] = parser.add_argument_group(p.group)
        target = group
        if p.exclusive is not None:
            key = (p.group, p.exclusive)
            if key not in exclusive:
                exclusive[key] = group.add_mutually_exclusive_group()
            target = exclusive[key]
        default = defaults.get(f.name, f.default)
        shown = (default_help or {}).get(f.name, _shown(default, p.kind))
        kwargs: dict[str, Any] = {"dest": f.name, "help": p.help + (f" ({shown})" if shown else "")}
        if p.metavar:
            kwargs["metavar"] = p.metavar
        if p.kind == "flag":  # a True default is switched off by the flag (--no-amp)
            kwargs.update(action="store_false" if default else "store_true", default=bool(default))
        elif p.kind == "tristate":
            kwargs.update(action=argparse.BooleanOptionalAction, default=default)
        elif p.kind == "choice":
            kwargs.update(choices=list(p.choices), default=default)
        elif p.kind == "texts":
            kwargs.update(action="append", default=None)
        elif p.kind == "text":
            kwargs.update(default=default)
        elif p.kind == "csv":
            kwargs.update(default=",".join(default) if isinstance(default, tuple) else default)
        else:
            kwargs.update(type=TYPES[p.kind], default=default)
        target.add_argument(flag_of(f, p), **kwargs)
    return groups


def _group_order(spec_cls, skip: set[str]) -> list[str]:
    """The --help sections in the order the spec's own fields first name them: the fields every
    spec inherits (``simulate.run_spec.RunSpec``: seed, precision) come first in field order but
    do not put their section first."""
    inherited = {
        f.name
        for base in spec_cls.__mro__[1:]
        if dataclasses.is_dataclass(base)
        for f in dataclasses.fields(base)
    }
    shown = [(f, p) for f, p in declared(spec_cls) if f.name not in skip]
    own = [p.group for f, p in shown if f.name not in inherited]
    return list(dict.fromkeys([*own, *(p.group for _, p in shown)]))


def spec_values(args: argparse.Namespace, spec_cls, skip: Iterable[str] = ()) -> dict[str, Any]:
    """The declared fields' values in ``args``, converted to what the spec stores (tuples for grids
    and widths, ints for integer grids, a tuple for a comma-separated list)."""
    skip = set(skip)
    out: dict[str, Any] = {}
    for f, p in declared(spec_cls):
        if f.name in skip or not hasattr(args, f.name):
            continue
        value = getattr(args, f.name)
        if value is None:
            out[f.name] = () if p.kind == "texts" else None
            continue
        if p.kind == "int_grid":
            value = tuple(int(v) for v in value)
        elif p.kind in TUPLES:
            value = tuple(value)
        elif p.kind == "csv":
            value = tuple(v.strip() for v in str(value).split(",") if v.strip())
        out[f.name] = value
    return out


def _shown(default: Any, kind: str) -> str:
    if default is None or kind in ("flag", "tristate", "texts"):
        return ""
    if isinstance(default, tuple):
        return "default " + (
            ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default) or "none"
        )
    if isinstance(default, float):
        return f"default {default:g}"
    return f"default {default}"
