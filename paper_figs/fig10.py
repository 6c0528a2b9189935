"""Fig. 10: learning curves of transformer students of the grokked teacher (checkpoint 3).

A student with a small training set at a high temperature (rho ~ 0.3, tau = 10) generalizes within
a few epochs; one with a large training set at the smallest temperature learns nearly hard labels
and groks like the teacher did. Same sweep as Fig. 3 (``modadd-transformer``): with a shared data
folder (``softleak figs ... --data DIR``) it runs once. Drawing: ``paper_figs.modadd_figs``.
"""

from __future__ import annotations

from softleak.paper_figs.modadd_figs import curves_recipe
from softleak.paper_figs.modadd_runs import PAPER_TRANSFORMER, QUICK_TRANSFORMER, TRANSFORMER_SWEEP

RECIPE = curves_recipe(
    "fig10",
    "Modular addition, transformer students of the grokked teacher: fast generalization vs grokking",
    TRANSFORMER_SWEEP,
    QUICK_TRANSFORMER,
    PAPER_TRANSFORMER,
    "about 10-15 min (none with Fig. 3's data)",
)
