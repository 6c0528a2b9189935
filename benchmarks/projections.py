"""The paper's grids projected from measured rates (``simulate.estimate.estimate(spec,
rates=...)``): ``project`` for ``benchmarks.run_all``'s printed table, ``projections`` (the grids
and every recipe's paper preset) for ``benchmarks.gpu_check``'s report. The imports are made
where used: ``gpu_check`` imports this module on a bare machine before it knows what is there."""

from __future__ import annotations

import math


def project(rates) -> list[tuple]:
    """(grid, CPU seconds, GPU seconds, reference cost, counted work) per paper grid, from
    ``simulate.estimate`` with the measured rates (CPU) and the assumed H200."""
    from benchmarks.workloads import paper_grids
    from softleak.simulate import estimate

    out = []
    for name, (spec, ref_cost) in paper_grids().items():
        e = estimate.estimate(spec, rates=rates)
        out.append((name, e["cpu_s"], e["h200_s"], ref_cost, estimate.work_of(spec)))
    return out


def projections(rates_doc: dict) -> dict:
    """Paper grids and every recipe's paper preset at the measured rates (and the assumed)."""
    from benchmarks.workloads import paper_grids
    from softleak.simulate.estimate import estimate, rates_from_dict

    rates = rates_from_dict(rates_doc, "gpu_check")
    key = "h200_s" if rates.device != "cpu" else "cpu_s"
    grids = []
    for name, (spec, ref_cost) in paper_grids().items():
        measured, assumed = estimate(spec, rates=rates), estimate(spec)
        grids.append(
            {"grid": name, "seconds": measured[key], "assumed_seconds": assumed[key],
             "reference": ref_cost}
        )  # fmt: skip
    out = {
        "column": key,
        "calibration": rates.summary(),
        "not_used": list(rates.rejected),
        "grids": grids,
        "paper_presets": None,
        "paper_presets_total_s": None,
    }
    try:
        from softleak.paper_figs.registry import load_recipes

        recipes = load_recipes()
    except Exception as err:  # the recipes' plotting stack may be missing on a bare machine
        out["paper_presets_error"] = f"{type(err).__name__}: {err}"
        return out
    presets = []
    for name, recipe in recipes.items():
        sweeps = recipe.presets["paper"].sweeps.values()
        measured = sum(estimate(s, rates=rates)[key] for s in sweeps)
        assumed = sum(estimate(s)[key] for s in sweeps)
        presets.append({"figure": name, "seconds": measured, "assumed_seconds": assumed})
    out["paper_presets"] = presets
    out["paper_presets_total_s"] = sum(r["seconds"] for r in presets)
    return out


def projection_check(rates: dict):
    """The ``projections`` check: (every grid's time finite and positive, its detail, the
    projections)."""
    proj = projections(rates)
    finite = all(math.isfinite(g["seconds"]) and g["seconds"] > 0 for g in proj["grids"])
    text = "; ".join(
        f"{g['grid'].split(' (')[0]} {g['seconds'] / 3600:.3g} h" for g in proj["grids"]
    )
    return finite, f"{proj['column']} at the measured rates ({proj['calibration']}): {text}", proj
