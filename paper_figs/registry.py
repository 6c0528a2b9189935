"""Figure recipes: each paper figure is a preset table plus calls into simulate and compare.

A recipe declares presets (``quick`` for a 2-core laptop CPU, ``paper`` for the paper's grid), each a
set of named sweeps, and a ``make`` function that turns the sweeps' result tables into figures and a
summary of headline numbers. Recipes hold no training loop and no threshold logic.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from softleak.simulate.experiments import Spec

log = logging.getLogger(__name__)

# Recipe modules, in the paper's order. Each defines RECIPE.
MODULES = (
    "fig1",
    "fig3",
    "fig4",
    "fig12",
    "fig5a",
    "fig15",
    "fig5b",
    "fig6",
    "fig7",
    "fig8",
    "fig9",
    "fig10",
    "fig11",
    "fig16",
    "fig17",
    "fig18",
    "fig19",
    "fig20",
    "fig21",
    "fig22",
    "fss",
    "theory_curve",
    "canaries",
)


@dataclass(frozen=True)
class Preset:
    sweeps: Mapping[str, Spec]  # sweep name -> spec; each runs into OUT/data/<name>
    note: str = ""  # what the preset is for (hardware, scale)


@dataclass(frozen=True)
class Recipe:
    name: str  # fig4, fig12, ... or a short name for figures not in the paper
    title: str
    presets: dict[str, Preset]
    make: Callable  # make(tables: dict[str, DataFrame], out: Path, preset: str) -> dict
    paper: dict = field(default_factory=dict)  # the paper's reported numbers, for the summary
    # the paper's statements this figure checks (``compare.claims.Claim``); ``make`` judges each
    # and returns the records under ``claims`` (``judged_claims`` completes and orders them)
    claims: tuple = ()

    def preset(self, name: str) -> Preset:
        """A declared preset, or ``tiny`` (internal, for tests) derived from the quick one by
        ``paper_figs.tiny.shrink`` when the recipe declares none."""
        if name in self.presets:
            return self.presets[name]
        if name == "tiny":
            from softleak.paper_figs.tiny import shrink

            quick = self.presets["quick"]
            sweeps = {k: shrink(s) for k, s in quick.sweeps.items()}
            return Preset(sweeps, "seconds-sized quick sweeps, for tests")
        raise KeyError(f"{self.name} has no preset {name!r}")


def load_recipes() -> dict[str, Recipe]:
    recipes = {}
    for module in MODULES:
        try:
            recipe = importlib.import_module(f"softleak.paper_figs.{module}").RECIPE
        except ModuleNotFoundError as err:
            if err.name != f"softleak.paper_figs.{module}":
                raise
            continue
        recipes[recipe.name] = recipe
    return recipes


def run_recipe(
    recipe: Recipe,
    preset: str,
    out: str | Path,
    *,
    threads: int | None = None,
    progress: bool | None = None,
    device: str = "cpu",
    data_root: str | Path | None = None,
    restart: bool = False,
    restarted: set[str] | None = None,
    precision: str | None = None,
    sweep_s: dict[str, float] | None = None,
) -> dict:
    """Run (resuming) every sweep of the preset, then draw the figures and write summary.json.

    data_root: where the sweeps' folders go (default OUT/data). Figures that declare the same sweep
    (same name and spec) under one data root share it: the second one finds it finished. Each
    sweep folder follows ``simulate.rundir``'s contract: one holding a run of other settings (e.g.
    another preset's) is refused unless ``restart``, which clears the recipe's own sweeps first.
    precision: every sweep's precision instead of the preset's (``--precision``).
    restarted: folders already restarted by this command (``figs all``: a sweep two figures share
    is cleared once, not again by the second figure); updated in place.
    sweep_s: {folder: seconds} of sweeps already run elsewhere (``figs all``'s worker processes):
    added to the summary's ``run_s``, so it counts the figure's simulation wherever it ran.
    """
    from softleak.compare.style import write_text_atomic
    from softleak.simulate.experiments import run_experiment
    from softleak.simulate.rundir import resolve_out

    out = resolve_out(out)
    t0 = time.perf_counter()
    tables = {}
    restarted = set() if restarted is None else restarted
    for name, spec in resolved_sweeps(recipe, preset, device, precision).items():
        where = Path(data_root or out / "data") / name
        clear = restart and str(where) not in restarted
        restarted.add(str(where))
        table = run_experiment(spec, where, threads=threads, progress=progress, restart=clear)
        table.attrs["path"] = str(where)  # recipes find curves and other files there
        tables[name] = table
    run_s = time.perf_counter() - t0
    run_s += sum((sweep_s or {}).get(str(t.attrs["path"]), 0.0) for t in tables.values())
    summary = recipe.make(tables, out, preset)
    summary = {
        "figure": recipe.name,
        "preset": preset,
        "title": recipe.title,
        **summary,
        "claims": judged_claims(recipe, summary.get("claims", ())),
        "paper": recipe.paper,
        "run_s": round(run_s, 1),
    }
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2, default=_jsonable))
    return summary


def resolved_sweeps(
    recipe: Recipe, preset: str, device: str = "cpu", precision: str | None = None
) -> dict[str, Spec]:
    """The preset's sweeps as they run: on ``device``, at ``precision`` when one is given (else
    each spec's own); a combination a spec refuses is one line (``RunDirError``)."""
    import dataclasses

    from softleak.simulate.rundir import RunDirError

    changes: dict = {"device": device}
    if precision is not None:
        changes["precision"] = precision
    out = {}
    for name, spec in recipe.preset(preset).sweeps.items():
        try:
            out[name] = dataclasses.replace(spec, **changes)
        except ValueError as err:
            raise RunDirError(f"{recipe.name} sweep {name}: {err}") from None
    return out


def judged_claims(recipe: Recipe, records) -> list[dict]:
    """The recipe's claim records in declaration order; a declared claim ``make`` did not judge is
    ``untested`` (say so), and a record of an undeclared claim is an error in the recipe."""
    from softleak.compare.claims import untested

    by_id = {r["id"]: r for r in records}
    declared = {c.id for c in recipe.claims}
    extra = sorted(set(by_id) - declared)
    if extra:
        raise ValueError(f"{recipe.name}: make judged undeclared claims {extra}")
    out = []
    for claim in recipe.claims:
        if claim.id in by_id:
            out.append(by_id[claim.id])
        else:
            log.warning("%s: claim %s was not judged", recipe.name, claim.id)
            out.append(untested(claim, "not judged by this preset's run"))
    return out


def _jsonable(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
