"""One entry point for every experiment's spec: run (or resume) it into a directory, count its work.

Counted work and estimated times of every family are ``simulate.estimate``'s (one cost model).

The random-data families (logistic-pinv, multinomial, mlp) are ``SweepSpec`` grids run by
``simulate.sweep``; the 2D examples are a ``Toy2DSpec`` run by ``simulate.toy2d``; modular addition
is a ``ModAddSpec`` run by ``simulate.modadd``; the GPT-2 classifiers are a ``GPT2Spec`` run by
``simulate.gpt2`` (it needs the optional ``transformers``, imported only when one runs); the
memorized canaries on a real data set are a ``CanarySpec`` run by ``simulate.canaries``. Figure
recipes and the command line go through here: a new family adds its spec type to ``Spec`` and its
runner to :func:`run_experiment` (and its work to ``simulate.estimate``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from softleak.simulate.canary_spec import CanarySpec
from softleak.simulate.gpt2 import GPT2Spec, run_gpt2
from softleak.simulate.modadd import ModAddSpec, run_modadd
from softleak.simulate.spec import SweepSpec
from softleak.simulate.toy2d import Toy2DSpec, run_toy2d

Spec = SweepSpec | Toy2DSpec | ModAddSpec | GPT2Spec | CanarySpec


def run_experiment(
    spec: Spec,
    out: str | Path,
    *,
    threads: int | None = None,
    progress: bool | None = None,
    restart: bool = False,
    **kwargs,
) -> pd.DataFrame:
    """Run or resume ``spec`` into ``out``; returns its results table. Every family's directory
    follows ``simulate.rundir``'s contract (``restart`` clears its records first). ``kwargs`` go
    to the family's runner (e.g. ``client=``, ``allow_tf32=`` for sweeps)."""
    preflight(spec)
    common: dict[str, Any] = {"threads": threads, "progress": progress, "restart": restart}
    if isinstance(spec, Toy2DSpec):
        return run_toy2d(spec, out, **common, **kwargs)
    if isinstance(spec, ModAddSpec):
        return run_modadd(spec, out, **common, **kwargs)
    if isinstance(spec, GPT2Spec):
        return run_gpt2(spec, out, **common, **kwargs)
    if isinstance(spec, CanarySpec):
        from softleak.simulate.canaries import run_canaries

        return run_canaries(spec, out, **common, **kwargs)
    if isinstance(spec, SweepSpec):
        from softleak.simulate.sweep import run_sweep

        return run_sweep(spec, out, **common, **kwargs)
    raise TypeError(f"no runner for {type(spec).__name__}")


def preflight(spec: Spec) -> None:
    """Before a run starts: log its work and estimated time on its device when that is over
    ``simulate.rundir.ANNOUNCE_S`` (the runners refuse one that cannot fit in memory)."""
    from softleak.simulate.estimate import cached_rates, estimate, work_of
    from softleak.simulate.rundir import announce

    work = work_of(spec)
    rates = cached_rates() or None  # the measured rates figs list uses, when there are any
    seconds = estimate(spec, rates)["h200_s" if spec.device.startswith("cuda") else "cpu_s"]
    what = f"{work['teachers']} teachers and {work['students']} students"
    announce(seconds, f"{what} ({work['flops'] / 1e12:.3g} TFLOP)", spec.device)
