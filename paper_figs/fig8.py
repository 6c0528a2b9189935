"""Fig. 8 (appendix A): the 2D example with c = 20 classes.

Teacher and students 2 -> 300 -> 20 (ReLU, biases); the teacher trains up to 8,000 epochs and stops
once its train accuracy exceeds 0.999, the students learn at lr 0.01 for 4,000 epochs from tau = 20
soft labels (or the class labels: the baseline). Reported: baseline ~6%, student ~66% held-out
accuracy. Presets and drawing: ``paper_figs.toy2d_figs``.
"""

from __future__ import annotations

from softleak.paper_figs.toy2d_figs import recipe
from softleak.simulate.toy2d import Toy2DSpec

#: The reference code's settings (docs/reference.md "2D toy examples"); the presets set the seeds.
SPEC = Toy2DSpec(
    c=20,
    hidden=(300,),
    tau=20.0,
    teacher_epochs=8_000,  # at most; each teacher stops once its train acc exceeds 0.999
    teacher_stop_acc=0.999,
    teacher_lr=1e-3,
    student_epochs=4_000,
    student_lr=1e-2,
)

RECIPE = recipe(
    "fig8",
    "2D example, c = 20: soft-label student vs hard-label baseline on held-out memorized points",
    SPEC,
    paper={"baseline_test_acc": 0.06, "student_test_acc": 0.66},
)
