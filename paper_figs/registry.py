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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from simulate.spec import SweepSpec

log = logging.getLogger(__name__)

# Recipe modules, in the paper's order. Each defines RECIPE.
MODULES = ("fig4", "fig12", "fig5a", "fig15", "fig5b", "fss")


@dataclass(frozen=True)
class Preset:
    sweeps: dict[str, SweepSpec]  # sweep name -> spec; each runs into OUT/data/<name>
    note: str = ""  # what the preset is for (hardware, scale)


@dataclass(frozen=True)
class Recipe:
    name: str  # fig4, fig12, ... or a short name for figures not in the paper
    title: str
    presets: dict[str, Preset]
    make: Callable  # make(tables: dict[str, DataFrame], out: Path, preset: str) -> dict
    paper: dict = field(default_factory=dict)  # the paper's reported numbers, for the summary


def load_recipes() -> dict[str, Recipe]:
    recipes = {}
    for module in MODULES:
        try:
            recipe = importlib.import_module(f"paper_figs.{module}").RECIPE
        except ModuleNotFoundError as err:
            if err.name != f"paper_figs.{module}":
                raise
            continue
        recipes[recipe.name] = recipe
    return recipes


def work_of(spec: SweepSpec) -> dict:
    """Counted work of a sweep: teachers, students, and training FLOPs (multiply-adds x 2, forward
    and backward, full batch)."""
    from simulate.sweep import students_per_teacher

    sizes = spec.teacher_sizes()
    teachers = len(sizes) * spec.seeds
    per_teacher = students_per_teacher(spec)
    flops = 0.0
    for d, c, n in sizes:
        k = 1 if spec.single_logit else c
        tw = _mlp_weights(d, spec.p_teacher, k)
        flops += spec.seeds * 3 * 2 * tw * n * spec.teacher_epochs
        if not spec.single_logit:
            sw = _mlp_weights(d, spec.p_student, c)
            mean_rho = sum(spec.rho) / len(spec.rho)
            flops += spec.seeds * per_teacher * 3 * 2 * sw * mean_rho * n * spec.student_epochs
    return {"teachers": teachers, "students": teachers * per_teacher, "flops": flops}


def _mlp_weights(d: int, hidden: tuple[int, ...], k: int) -> int:
    sizes = [d, *hidden, k]
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def run_recipe(
    recipe: Recipe,
    preset: str,
    out: str | Path,
    *,
    threads: int | None = None,
    progress: bool | None = None,
    device: str = "cpu",
) -> dict:
    """Run (resuming) every sweep of the preset, then draw the figures and write summary.json."""
    import dataclasses

    from compare.style import write_text_atomic
    from simulate.store import Store
    from simulate.sweep import run_sweep

    out = Path(out)
    t0 = time.perf_counter()
    tables = {}
    for name, spec in recipe.presets[preset].sweeps.items():
        spec = dataclasses.replace(spec, device=device)
        run_sweep(spec, out / "data" / name, threads=threads, progress=progress)
        tables[name] = Store(out / "data" / name).results()
    run_s = time.perf_counter() - t0
    summary = recipe.make(tables, out, preset)
    summary = {
        "figure": recipe.name,
        "preset": preset,
        "title": recipe.title,
        **summary,
        "paper": recipe.paper,
        "run_s": round(run_s, 1),
    }
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2, default=_jsonable))
    return summary


def _jsonable(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
