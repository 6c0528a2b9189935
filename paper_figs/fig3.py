"""Fig. 3: information leakage via soft labels in a 1-layer transformer on modular addition.

(A) the teacher's loss and accuracy curves with checkpoints 1 (memorizing), 2 (partly
generalizing) and 3 (grokked); (B) per checkpoint (rows) and tau (columns) the students' train,
test (held-out memorized pairs) and val accuracy vs rho, with the teacher's val accuracy. Presets:
``paper_figs.modadd_runs``, drawing: ``paper_figs.modadd_figs`` (sweep ``modadd-transformer``, shared with Fig. 10).
"""

from __future__ import annotations

from softleak.paper_figs.modadd_figs import rho_recipe
from softleak.paper_figs.modadd_runs import PAPER_TRANSFORMER, QUICK_TRANSFORMER, TRANSFORMER_SWEEP

RECIPE = rho_recipe(
    "fig3",
    "Modular addition, 1-layer transformer: students of memorizing and grokked teachers vs rho, tau",
    TRANSFORMER_SWEEP,
    QUICK_TRANSFORMER,
    PAPER_TRANSFORMER,
    "about 10-15 min",
)
