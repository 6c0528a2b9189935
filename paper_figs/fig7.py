"""Fig. 7: ReLU MLP phases over alpha x rho, the accuracies, and learning curves at rho = 0.65.

(A) phases (full recovery, weak leakage with and without memorization, teacher fails with the
student matching it or not) with parameter-counting estimates; (B) teacher train, student train and
student test accuracy; (C) student accuracy vs training time at four n: the sudden joint jump.
See ``paper_figs.mlp_figs``.
"""

from __future__ import annotations

from softleak.paper_figs.mlp_claims import FIG7_CLAIMS
from softleak.paper_figs.mlp_figs import (
    QUICK,
    curves_sweep,
    grid_sweep,
    make_fig7,
    presets,
)
from softleak.paper_figs.mlp_scale import PAPER
from softleak.paper_figs.registry import Recipe


def sweeps(preset: str) -> dict:
    scale = QUICK if preset == "quick" else PAPER
    return {"mlp-grid": grid_sweep(scale, preset), "mlp-curves": curves_sweep(scale, preset)}


RECIPE = Recipe(
    name="fig7",
    title="ReLU MLPs: phases over alpha x rho, accuracies, and the jump in training time",
    presets=presets(sweeps),
    make=make_fig7,
    claims=FIG7_CLAIMS,
    paper={"jump_time_rho_0.65": "t ~ 100 (Fig. 7C)", "d": 1000, "c": 100, "p": 500, "tau": 20},
)
