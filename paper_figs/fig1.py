"""Fig. 1: information leakage via soft labels in 2D (c = 3).

An MLP teacher (2 -> 150 -> 3, ReLU, biases; the paper's text says 100 hidden units, its code 150)
memorizes 60 random points with random labels; a soft-label student (tau = 10) and an independent
hard-label baseline learn from 60% and are tested on the other 40%. Reported: baseline ~30%, student
~50% held-out accuracy. Presets and drawing: ``paper_figs.toy2d_figs``.
"""

from __future__ import annotations

from softleak.paper_figs.toy2d_figs import recipe
from softleak.simulate.toy2d import Toy2DSpec

#: The reference code's settings (docs/reference.md "2D toy examples"); the presets set the seeds.
SPEC = Toy2DSpec(
    c=3,
    hidden=(150,),
    tau=10.0,
    teacher_epochs=4_000,  # fixed epochs, Adam lr 1e-3
    teacher_lr=1e-3,
    student_epochs=4_000,
    student_lr=1e-3,
)

RECIPE = recipe(
    "fig1",
    "2D example, c = 3: soft-label student vs hard-label baseline on held-out memorized points",
    SPEC,
    paper={"baseline_test_acc": 0.30, "student_test_acc": 0.50},
)
