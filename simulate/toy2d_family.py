"""The toy2d family (the 2D examples of Figs. 1 and 8, ``simulate.toy2d``) as the registry
(``simulate.families``) reads it: its runner, counted work and parts, tiny preset, GPU-check runs
and command line."""

from __future__ import annotations

import dataclasses

from softleak.simulate.families import Family
from softleak.simulate.toy2d import KINDS, Toy2DSpec

DESCRIPTION = (
    "the 2D examples (paper Figs. 1 and 8): an MLP teacher memorizes 60 random points in "
    "[-1, 1]^2 with random labels; a soft-label student and a hard-label baseline learn from 60% "
    "and are tested on the other 40%. Defaults are Fig. 1's (c = 3); Fig. 8 is --c 20 --hidden "
    "300 --tau 20 --teacher-epochs 8000 --teacher-stop-acc 0.999 --student-lr 0.01"
)


class Toy2DFamily(Family):
    name = "toy2d"
    spec_type = Toy2DSpec
    help = "the 2D examples of Figs. 1 and 8"
    description = DESCRIPTION
    device = "cpu"  # the problem is tiny

    def run(self, spec, out, *, threads=None, progress=None, restart=False, **kwargs):
        from softleak.simulate.toy2d import run_toy2d

        return run_toy2d(spec, out, threads=threads, progress=progress, restart=restart, **kwargs)

    def parts(self, spec: Toy2DSpec, *, free_bytes: float, device: str) -> list:
        """All teachers one batch, all students (both kinds) another; per-replica inputs."""
        from softleak.simulate.estimate import DTYPE_BYTES, Part, step_flops

        h, c = tuple(spec.hidden), spec.c
        students = spec.seeds * spec.student_seeds * len(KINDS)
        m = spec.n_train
        per_row = sum(h) + c
        b = DTYPE_BYTES[spec.dtype]
        e_t, e_s = spec.teacher_epochs, spec.student_epochs
        return [
            Part(
                "teachers",
                "mlp",
                e_t * spec.seeds * step_flops(2, h, c, spec.n),
                e_t * spec.seeds * spec.n * per_row,
                e_t * spec.seeds * 2 * spec.n * 2 * b,
                e_t,
                False,
                spec.seeds,
            ),
            Part(
                "students",
                "mlp",
                e_s * students * step_flops(2, h, c, m),
                e_s * students * m * per_row,
                e_s * students * 2 * m * 2 * b,
                e_s,
                False,
                students,
            ),
        ]

    def tiny(self, spec: Toy2DSpec) -> Toy2DSpec:
        return dataclasses.replace(
            spec, seeds=2, teacher_epochs=150, student_epochs=100, grid=16, teacher_lr=0.01
        )

    def check_spec(self, command: str, kind: str, *, scale: float, seeds: int) -> Toy2DSpec:
        long = kind == "float32"
        e = lambda n: max(10, int(n * scale))  # noqa: E731 - epochs at this scale
        return Toy2DSpec(
            c=3,
            n=40,
            hidden=(128,) if long else (16,),
            seeds=seeds if long else 2,
            teacher_epochs=e(3000 if long else 200),
            student_epochs=e(1000 if long else 100),
            teacher_lr=1e-2,
            student_lr=1e-2,
            grid=8,
            n_val=100,
            dtype="float64" if kind == "float64" else "float32",
        )

    def summary(self, spec: Toy2DSpec, table) -> list[str]:
        acc = table.groupby("student_kind")["student_test_acc"].agg(["mean", "sem"])
        teacher = table.drop_duplicates("seed")["teacher_train_acc"].mean()
        return [
            f"held-out accuracy over {spec.seeds} data sets (chance {1 / spec.c:.3f}; teacher "
            f"train acc {teacher:.3f}): soft-label student {acc.loc['soft', 'mean']:.3f} +- "
            f"{acc.loc['soft', 'sem']:.3f}, hard-label baseline {acc.loc['hard', 'mean']:.3f} "
            f"+- {acc.loc['hard', 'sem']:.3f}"
        ]


FAMILY = Toy2DFamily()
