"""``softleak figs all``'s sweeps on worker processes: every distinct sweep of the chosen figures
runs once, longest first, on ``workers`` processes of one torch thread each; the figures are drawn
afterwards in the main process from the finished folders.

A sweep is identified by its folder (``DATA/<name>``): figures that declare the same sweep share
it (the first declaration runs; a figure whose spec differs is refused by the folder's identity
when it is drawn, as in one process). A sweep that fails is one line; the figures that need it are
not drawn (``figs all`` reports them) and the others go on. Workers are started by ``spawn`` (no
forked torch/OpenMP state) and run with ``progress=False``; the main process prints one line per
finished sweep.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

log = logging.getLogger(__name__)


def default_workers(device: str) -> int:
    """Worker processes ``figs all`` uses by default: one per CPU core on a CPU (each on one
    thread), one on a GPU (the device is the shared resource)."""
    if str(device).startswith("cuda"):
        return 1
    return max(
        1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )


def plan(recipes: dict, preset: str, data_root: str | Path, device: str, precision: str | None):
    """{folder: spec} of every distinct sweep of ``recipes`` (first declaration wins), and
    {figure: [folders]} of the sweeps each figure needs."""
    from softleak.paper_figs.registry import resolved_sweeps

    jobs: dict[str, object] = {}
    needs: dict[str, list[str]] = {}
    for name, recipe in recipes.items():
        for sweep, spec in resolved_sweeps(recipe, preset, device, precision).items():
            where = str(Path(data_root) / sweep)
            jobs.setdefault(where, spec)
            needs.setdefault(name, []).append(where)
    return jobs, needs


def schedule(jobs: dict, workers: int, rates=None) -> tuple[list[str], float]:
    """The order sweeps are submitted in (longest estimated first) and the estimated wall time of
    running them on ``workers`` processes (longest-first list scheduling), in seconds; ``rates``:
    measured rates for ``simulate.estimate.estimate`` (default: the built-in ones)."""
    from softleak.simulate.estimate import estimate

    cost = {w: estimate(spec, rates=rates)["cpu_s"] for w, spec in jobs.items()}
    order = sorted(jobs, key=lambda w: -cost[w])
    loads = [0.0] * max(1, workers)
    for w in order:
        i = loads.index(min(loads))
        loads[i] += cost[w]
    return order, max(loads)


def _run_one(spec, where: str, restart: bool) -> tuple[str | None, float]:
    """In a worker: run (resuming) one sweep on one thread; (error line or None, seconds)."""
    from softleak.simulate.experiments import run_experiment

    t0 = time.perf_counter()
    try:
        run_experiment(spec, where, threads=1, progress=False, restart=restart)
    except Exception as err:  # noqa: BLE001 - reported as one line, the other sweeps go on
        return f"{type(err).__name__}: {err}".splitlines()[0], time.perf_counter() - t0
    return None, time.perf_counter() - t0


def run_sweeps(
    jobs: dict,
    workers: int,
    *,
    restart: bool = False,
    restarted: set[str] | None = None,
    rates=None,
    say=print,
    seconds: dict[str, float] | None = None,
) -> dict[str, str]:
    """Run every sweep of ``jobs`` ({folder: spec}) on ``workers`` processes; {folder: error
    line} of those that failed. ``restarted`` (updated): folders this command already cleared;
    ``rates``: the measured rates the estimate and the order use (as ``figs list``);
    ``seconds`` (filled in): each folder's wall seconds on its worker."""
    restarted = set() if restarted is None else restarted
    order, estimate_s = schedule(jobs, workers, rates=rates)
    say(f"{len(order)} sweeps on {workers} worker process(es), estimated {estimate_s / 60:.1f} min")
    errors: dict[str, str] = {}
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = {}
        for where in order:
            clear = restart and where not in restarted
            restarted.add(where)
            futures[pool.submit(_run_one, jobs[where], where, clear)] = where
        for i, done in enumerate(as_completed(futures), 1):
            where = futures[done]
            error, took = done.result()
            if seconds is not None:
                seconds[where] = took
            status = f"failed: {error}" if error else f"done in {took:.0f} s"
            say(
                f"[{i}/{len(order)}] {Path(where).name} {status} ({time.perf_counter() - t0:.0f} s)"
            )
            if error:
                errors[where] = error
    return errors
