"""Fig. 17: cross-entropy on D_train^S and D_test^S along training for the runs of Fig. 16.

The loss drops at the moment the accuracies jump. See ``paper_figs.mlp_figs``.
"""

from __future__ import annotations

from softleak.paper_figs.fig16 import sweeps
from softleak.paper_figs.mlp_curve_claims import FIG17_CLAIMS
from softleak.paper_figs.mlp_figs import make_fig17, presets
from softleak.paper_figs.registry import Recipe

RECIPE = Recipe(
    name="fig17",
    title="ReLU MLPs: train and test cross-entropy along training (rho = 0.65)",
    presets=presets(sweeps),
    make=make_fig17,
    claims=FIG17_CLAIMS,
    paper={"n": [15_000, 50_000, 100_000, 200_000], "rho": 0.65},
)
