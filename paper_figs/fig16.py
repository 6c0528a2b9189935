"""Fig. 16: learning curves of the Fig. 7C students next to within-class shuffled controls.

Before the jump the normal student's accuracies follow the shuffled student's (it memorizes); the
shuffled student never jumps. See ``paper_figs.mlp_figs``.
"""

from __future__ import annotations

from softleak.paper_figs.mlp_curve_claims import FIG16_CLAIMS
from softleak.paper_figs.mlp_figs import QUICK, curves_sweep, make_fig16, presets
from softleak.paper_figs.mlp_scale import PAPER
from softleak.paper_figs.registry import Recipe


def sweeps(preset: str) -> dict:
    return {"mlp-curves": curves_sweep(QUICK if preset == "quick" else PAPER, preset)}


RECIPE = Recipe(
    name="fig16",
    title="ReLU MLPs: learning curves with the within-class shuffle control (rho = 0.65)",
    presets=presets(sweeps),
    make=make_fig16,
    claims=FIG16_CLAIMS,
    paper={"n": [15_000, 50_000, 100_000, 200_000], "rho": 0.65},
)
