"""The ReLU-MLP figures' two scales (Figs. 6, 7, 16-22): the paper's, and a small one for a CPU.

The paper: d = 1000, c = 100, p = 500, tau = 20, teacher 2,000 epochs (lr 1e-3), students 10,000
epochs (lr 1e-4), n = 100 x {50, ..., 2500}. The quick scale keeps c = 100 (each sample gives c - 1
equations) and divides d and p by 10. The paper's Fig. 19 shows that the accuracies collapse in
alpha / p with alpha = n / (d c): dividing d and p by 10 each maps n_paper to n_paper / 100 at the
same alpha / p, so every paper n has a quick counterpart (``MLPScale.n``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from softleak.simulate.spec import SweepSpec


@dataclass(frozen=True)
class MLPScale:
    d: int  # input dimension
    c: int  # classes
    p: int  # hidden width of teacher and student (one hidden layer)
    tau: float  # soft-label temperature
    teacher_epochs: int  # full-batch Adam steps of the teacher
    teacher_lr: float
    student_epochs: int  # full-batch Adam steps of the students
    student_lr: float
    n_factor: float  # n at this scale = n at the paper's scale x n_factor (same alpha / p)
    p_factor: float  # widths at this scale = the paper's widths x p_factor

    def n(self, n_paper: float, c: int | None = None) -> int:
        """The teacher set size matching the paper's ``n_paper`` (a multiple of c, >= 2 per class)."""
        c = c or self.c
        per_class = max(2, round(n_paper * self.n_factor / c))
        return per_class * c

    def width(self, p_paper: int) -> int:
        return max(2, round(p_paper * self.p_factor))

    def spec(self, *, n, rho, **overrides) -> SweepSpec:
        """An mlp SweepSpec at this scale; ``n`` at this scale (see ``n``), ``overrides`` any field."""
        settings: dict[str, Any] = dict(
            d=(self.d,),
            c=(self.c,),
            n=tuple(n),
            rho=tuple(rho),
            tau=(self.tau,),
            p_teacher=(self.p,),
            p_student=(self.p,),
            teacher_epochs=self.teacher_epochs,
            teacher_lr=self.teacher_lr,
            student_epochs=self.student_epochs,
            student_lr=self.student_lr,
        )
        settings.update(overrides)
        return SweepSpec("mlp", **settings)


#: docs/reference.md's settings.
PAPER = MLPScale(
    d=1000,
    c=100,
    p=500,
    tau=20.0,
    teacher_epochs=2_000,
    teacher_lr=1e-3,
    student_epochs=10_000,
    student_lr=1e-4,
    n_factor=1.0,
    p_factor=1.0,
)

#: A 2-core CPU: d and p / 10 (n / 100 at equal alpha / p).
QUICK = MLPScale(
    d=100,
    c=100,
    p=50,
    tau=20.0,
    teacher_epochs=2_000,
    teacher_lr=1e-3,
    student_epochs=3_000,
    student_lr=1e-3,
    n_factor=0.01,
    p_factor=0.1,
)

#: The quick scale with the paper's student training (10,000 epochs at lr 1e-4), for the figures
#: whose phenomena are finite-training effects (Figs. 6, 7, 16, 17: the student that no longer
#: memorizes, the jump in training time). ~3.3x the work of QUICK's students.
QUICK_PAPER_TRAINING = dataclasses.replace(QUICK, student_epochs=10_000, student_lr=1e-4)

#: The paper's teacher set sizes: n = c x n_per_class, n_per_class 21 values from 50 to 2,500.
PAPER_N = tuple(100 * int(round(v)) for v in np.linspace(50, 2500, 21))
