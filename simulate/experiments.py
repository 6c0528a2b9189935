"""One entry point for every experiment's spec: run (or resume) it into a directory.

The runner, the counted work and the estimated time of a spec are its family's, found in the one
registry ``simulate.families`` (``family_of(spec)``): the random-data sweeps (``SweepSpec``:
logistic-pinv, multinomial, mlp), the 2D examples (``Toy2DSpec``), modular addition
(``ModAddSpec``), the GPT-2 classifiers (``GPT2Spec``; it needs the optional ``transformers``,
imported only when one runs) and the memorized canaries on a real data set (``CanarySpec``).
Figure recipes and the command line go through here; a new family is registered there, not here.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from softleak.simulate.families import family_of
from softleak.simulate.run_spec import RunSpec

#: Any registered family's spec (what a recipe's preset holds).
Spec = RunSpec


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
    family = family_of(spec)
    preflight(spec)
    return family.run(spec, out, threads=threads, progress=progress, restart=restart, **kwargs)


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
