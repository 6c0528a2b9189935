"""Fig. 6: student train and held-out accuracy vs rho at two sample complexities (ReLU MLPs).

(A) at the lower n the student memorizes its soft labels and its held-out accuracy rises with rho;
(B) at the higher n it first falls while the student no longer fits its set, then jumps to 100%
once the student identifies the teacher. See ``paper_figs.mlp_figs``.
"""

from __future__ import annotations

from softleak.paper_figs.mlp_claims import FIG6_CLAIMS
from softleak.paper_figs.mlp_figs import fig6_sweeps, make_fig6, presets
from softleak.paper_figs.registry import Recipe

RECIPE = Recipe(
    name="fig6",
    title="ReLU MLPs: student accuracies vs rho at two sample complexities",
    presets=presets(fig6_sweeps),
    make=make_fig6,
    claims=FIG6_CLAIMS,
    paper={"n": [25_000, 100_000], "d": 1000, "c": 100, "p": 500, "tau": 20},
)
