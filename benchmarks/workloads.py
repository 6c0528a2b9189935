"""Work accounting for the benchmark suite: FLOPs, memory traffic and sequential steps of a sweep,
counted the way the engine executes it, and the paper's grids the suite projects.

FLOPs count the matrix multiplies only (elementwise ops, softmax and Adam are a few percent at the
sizes that matter): a training step of a model with layer sizes d -> p_1 ... -> k on m rows is the
forward pass (2 m sum(a b)), the weight gradients (the same again) and the gradients through every
layer above the first (no gradient w.r.t. the inputs). A pseudo-inverse student group (one rho, all
its shuffles) is the Gram matrix (2 N k^2, k = min(m, d), N = max(m, d)), its Cholesky factor
(k^3 / 3), the solves and the predictions on the teacher's n rows and the validation rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from softleak.simulate import protocol
from softleak.simulate.chunks import ROW_SHARING_WIDTH, student_width

# The counting rules live with the time estimates of ``softleak figs list``.
from softleak.simulate.estimate import DTYPE_BYTES, pinv_flops, rows_of, step_flops
from softleak.simulate.memory import replicas_that_fit
from softleak.simulate.spec import SweepSpec


@dataclass
class Work:
    """One component of a sweep: what a device must do for it."""

    flops: float = 0.0  # matrix-multiply FLOPs
    bytes: float = 0.0  # input-matrix traffic (each step reads X for the forward and the gradient)
    steps: int = 0  # sequential optimizer steps (each launches a fixed set of kernels)
    models: int = 0  # models trained (teachers or students)

    def add(self, other: Work) -> None:
        self.flops += other.flops
        self.bytes += other.bytes
        self.steps += other.steps
        self.models += other.models


@dataclass
class SweepWork:
    teachers: Work = field(default_factory=Work)
    students: Work = field(default_factory=Work)  # gradient students
    pinv: Work = field(default_factory=Work)  # pseudo-inverse students (CPU, float64)


def sweep_work(spec: SweepSpec, *, free_bytes: float, device: str = "cpu") -> SweepWork:
    """The work of ``spec`` as the engine batches it, with ``free_bytes`` of device memory."""
    out = SweepWork()
    b = DTYPE_BYTES[spec.dtype]
    k_t = 1 if spec.single_logit else None
    keys = [(d, c, n, rep) for d, c, n in spec.teacher_sizes() for rep in range(spec.seeds)]
    for batch in protocol.teacher_batches(spec, keys):
        d, c = batch[0][0], batch[0][1]
        k = k_t or c
        e = spec.teacher_epochs
        for _, _, n, _ in batch:
            out.teachers.flops += e * step_flops(d, spec.p_teacher, k, n)
            out.teachers.bytes += e * 2 * n * d * b
        out.teachers.steps += e
        out.teachers.models += len(batch)
    for d, c, n, _rep in keys:
        runs = protocol.student_runs(spec, (d, c, n, 0))
        if spec.single_logit:
            for rho in spec.rho:
                group = [r for r in runs if r.rho == rho]
                m = rows_of(n, c, rho)
                out.pinv.add(Work(pinv_flops(m, d, len(group), n + spec.n_val), 0, 1, len(group)))
            continue
        groups = (
            [[r for r in runs if r.rho == rho] for rho in spec.rho]
            if student_width(spec, c) >= ROW_SHARING_WIDTH
            else [runs]
        )
        fit = replicas_that_fit(spec, d, c, n, free=free_bytes, device=device)
        size = max(1, min(spec.max_replicas, fit))
        e = spec.student_epochs
        for group in groups:
            for i in range(0, len(group), size):
                part = group[i : i + size]
                m = rows_of(n, c, max(r.rho for r in part))
                out.students.flops += e * len(part) * step_flops(d, spec.p_student, c, m)
                out.students.bytes += e * 2 * m * d * b
                out.students.steps += e
                out.students.models += len(part)
    return out


def paper_grids() -> dict[str, tuple[SweepSpec, str]]:
    """The paper's grids (docs/reference.md; the recipes' ``paper`` presets where they exist) with the
    reference's reported cost."""
    from softleak.paper_figs.common import linear_grid
    from softleak.paper_figs.fig4 import PAPER as fig4
    from softleak.paper_figs.fig5a import PAPER as fig5a

    n_per_class = [int(round(v)) for v in np.linspace(50, 2500, 21)]
    mlp = SweepSpec(
        "multinomial",
        d=(1000,),
        c=(100,),
        n=tuple(100 * v for v in n_per_class),
        rho=linear_grid(0.05, 0.95, 10),
        tau=(20.0,),
        seeds=5,
        p_teacher=(500,),
        p_student=(500,),
        teacher_epochs=2_000,
        student_epochs=10_000,
    )
    return {
        "Fig. 4 (logistic-pinv, d=1600)": (fig4, "not reported"),
        "Fig. 5A (c=2, 20 alpha x 40 tau)": (fig5a, "13 GPU-days"),
        "Figs. 6/7 MLP grid": (mlp, "~10 GPU-days"),
    }
