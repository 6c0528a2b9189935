"""Fig. 11: Fig. 3 with 2-hidden-layer ReLU MLPs (one-hot (a, b) input, hidden [200, 200]).

Teacher curves with checkpoints 1-3 and the students' accuracies vs rho per checkpoint and tau.
Presets: ``paper_figs.modadd_runs``, drawing: ``paper_figs.modadd_figs`` (sweep ``modadd-mlp``).
"""

from __future__ import annotations

from softleak.paper_figs.modadd_figs import rho_recipe
from softleak.paper_figs.modadd_runs import MLP_SWEEP, PAPER_MLP, QUICK_MLP

RECIPE = rho_recipe(
    "fig11",
    "Modular addition, ReLU MLP [200, 200]: students of memorizing and grokked teachers vs rho, tau",
    MLP_SWEEP,
    QUICK_MLP,
    PAPER_MLP,
    "about 10 min",
)
