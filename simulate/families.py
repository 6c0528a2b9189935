"""One registry of run families: what a family declares, and the one table every reader uses.

A *family* is a kind of run: a spec (a ``simulate.run_spec.RunSpec`` whose ``family`` names its
entry here), a runner that fills a run directory, the identity of that directory, its counted
work and the parts the cost model prices, a seconds-sized version of a spec (the tiny presets),
small runs for the GPU check, and its command line. :class:`Family` is that protocol;
:data:`FAMILIES` names, per family, the module that defines its ``FAMILY`` object, imported on
first use (this module stays torch-free). The readers:

- ``simulate.run`` (``simulate.experiments.run_experiment``): :meth:`Family.run`;
- the cost model (``simulate.estimate``): :meth:`Family.work`, :meth:`Family.parts` and, for a
  family with its own time model, :meth:`Family.seconds`;
- the tiny presets (``paper_figs.tiny.shrink``): :meth:`Family.tiny`;
- the command line (``softleak simulate NAME``, ``softleak.commands_simulate``): one command per
  name in :meth:`Family.commands`, its options from the spec's declared fields, its texts
  ``help`` and ``description``, its default ``device``, and :meth:`Family.summary` after a run;
- the GPU check (``benchmarks.gpu_check``): :meth:`Family.check_spec` per command and ``needs``.

A new family is its own module or package -- a spec, a runner and a ``FAMILY`` -- and one line in
:data:`FAMILIES`. (A package, as opposed to modules, also needs its line in ``pyproject.toml``'s
explicit package list: that is packaging, not the registry.)
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from softleak.simulate.estimate import Part
    from softleak.simulate.run_spec import RunSpec

__all__ = [
    "FAMILIES",
    "Family",
    "families",
    "family",
    "family_of",
    "fingerprint",
    "for_command",
    "thin",
]

#: name -> the module whose ``FAMILY`` declares it, in the order ``softleak simulate`` lists
#: them and the GPU check runs them (the paper's random-data sweeps first)
FAMILIES: dict[str, str] = {
    "sweep": "softleak.simulate.sweep_family",
    "toy2d": "softleak.simulate.toy2d_family",
    "modadd": "softleak.simulate.modadd.family",
    "gpt2": "softleak.simulate.gpt2.family",
    "canaries": "softleak.simulate.canary_family",
}


class Family:
    """The protocol of a run family. A family subclasses it, sets the attributes and implements
    ``run``, ``parts`` and ``tiny``; the other methods have defaults it may keep."""

    name: str = ""  # its key in FAMILIES (and its spec's ``family``)
    spec_type: type[RunSpec]  # the spec class
    help: str = ""  # one line: ``softleak simulate --help``
    description: str = ""  # the command's description: what runs, the defaults, a CPU-sized example
    device: str = "auto"  # the command line's default device
    needs: tuple[str, ...] = ()  # optional modules a run imports (the GPU check skips without them)

    def commands(self) -> tuple[str, ...]:
        """The command-line names of its experiments (``softleak simulate NAME``)."""
        return (self.name,)

    def help_of(self, command: str) -> str:
        return self.help

    def description_of(self, command: str) -> str:
        return self.description

    def run(
        self,
        spec: Any,
        out: Any,
        *,
        threads: int | None = None,
        progress: bool | None = None,
        restart: bool = False,
        **kwargs: Any,
    ) -> pd.DataFrame:
        """Run or resume ``spec`` into the directory ``out`` (``simulate.rundir``'s contract);
        returns its results table. ``kwargs``: the family's own runner options."""
        raise NotImplementedError

    def identity(self, spec: Any) -> dict:
        """The identity its run directory records (``config.json``; see :func:`fingerprint`)."""
        return spec.identity()

    def work(self, spec: Any) -> dict:
        """Counted work: ``teachers``, ``students`` and training ``flops``."""
        return spec.work()

    def parts(self, spec: Any, *, free_bytes: float, device: str) -> list[Part]:
        """The work as ``simulate.estimate.Part``s, as the engine runs it on ``device`` with
        ``free_bytes`` of memory."""
        raise NotImplementedError

    def seconds(self, spec: Any, rates: Any) -> dict | None:
        """``{"cpu_s", "h200_s"}`` from a family's own time model; None (the default): the cost
        model prices :meth:`parts`."""
        return None

    def tiny(self, spec: Any) -> Any:
        """A seconds-sized version of ``spec`` with the same structure (the tiny presets)."""
        raise NotImplementedError

    def check_spec(self, command: str, kind: str, *, scale: float, seeds: int) -> Any | None:
        """The GPU check's agreement run of ``command``: ``kind`` "float64" (short, compared to
        round-off) or "float32" (longer, ``seeds`` seeds, compared by outcome); epochs scaled by
        ``scale``. None: the family has no such run (a skipped check)."""
        return None

    def summary(self, spec: Any, table: pd.DataFrame) -> list[str]:
        """Lines the command line prints after a run, before its closing line."""
        return []


@functools.cache
def family(name: str) -> Family:
    """The registered family ``name`` (KeyError naming the registered ones)."""
    if name not in FAMILIES:
        raise KeyError(f"no family {name!r}; registered: {', '.join(FAMILIES)}")
    found = importlib.import_module(FAMILIES[name]).FAMILY
    if not isinstance(found, Family) or found.name != name:
        raise TypeError(f"{FAMILIES[name]}.FAMILY is not the Family {name!r}")
    return found


def families() -> list[Family]:
    """Every registered family, in the registry's order."""
    return [family(name) for name in FAMILIES]


def family_of(spec: Any) -> Family:
    """The family of a spec (by its class's ``family``); TypeError for anything else."""
    name = getattr(type(spec), "family", None)
    if not isinstance(name, str) or name not in FAMILIES:
        raise TypeError(f"{type(spec).__name__} is not the spec of a registered family")
    found = family(name)
    if not isinstance(spec, found.spec_type):
        raise TypeError(f"{type(spec).__name__} is not {found.spec_type.__name__}")
    return found


def for_command(command: str) -> Family:
    """The family that runs ``softleak simulate COMMAND``."""
    for found in families():
        if command in found.commands():
            return found
    raise KeyError(f"no family runs {command!r}")


def fingerprint(spec: Any) -> str:
    """The fingerprint its run directory's ``config.json`` records (``simulate.rundir.claim``)."""
    from softleak.simulate.rundir import digest, jsonable

    return digest({"experiment": spec.experiment, **jsonable(family_of(spec).identity(spec))})


def thin(values: Any, keep: int) -> tuple:
    """``keep`` values spread over ``values`` (first and last included): how tiny presets thin a
    grid."""
    import numpy as np

    values = tuple(values)
    if len(values) <= keep:
        return values
    idx = np.unique(np.linspace(0, len(values) - 1, keep).round().astype(int))
    return tuple(values[i] for i in idx)
