"""The sweep family: ``SweepSpec`` grids of teachers and their students on random data, one
command per experiment (logistic-pinv, multinomial, mlp), run by ``simulate.sweep``.

What the registry (``simulate.families``) reads: the runner, the directory's identity
(``simulate.sweep.sweep_identity``), the counted work and the parts the cost model prices (the
batches ``simulate.protocol`` and ``simulate.chunks`` form), the tiny presets and the GPU check's
agreement runs. Its command line is the command line's own (``softleak.commands_simulate``:
each experiment hides fields and changes defaults, ``EXPERIMENT_OPTIONS``, and runs on Dask
clusters too).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from softleak.simulate.families import Family, thin
from softleak.simulate.spec import EXPERIMENT_OPTIONS, EXPERIMENTS, SweepSpec

#: Tiny presets: two seeds, short training with large learning rates (small teachers still
#: memorize).
SHORT_TRAINING: dict[str, Any] = dict(
    seeds=2, teacher_epochs=150, teacher_lr=0.05, student_epochs=60, student_lr=0.05
)


class SweepFamily(Family):
    name = "sweep"
    spec_type = SweepSpec

    def commands(self) -> tuple[str, ...]:
        return EXPERIMENTS

    def help_of(self, command: str) -> str:
        return EXPERIMENT_OPTIONS[command]["help"].split(";")[0]

    def description_of(self, command: str) -> str:
        return EXPERIMENT_OPTIONS[command]["help"]

    def run(self, spec, out, *, threads=None, progress=None, restart=False, **kwargs):
        from softleak.simulate.sweep import run_sweep

        return run_sweep(spec, out, threads=threads, progress=progress, restart=restart, **kwargs)

    def identity(self, spec: SweepSpec) -> dict:
        from softleak.simulate.sweep import sweep_identity

        return sweep_identity(spec)

    def work(self, spec: SweepSpec) -> dict:
        return sweep_work(spec)

    def parts(self, spec: SweepSpec, *, free_bytes: float, device: str) -> list:
        return sweep_parts(spec, free_bytes=free_bytes, device=device)

    def tiny(self, spec: SweepSpec) -> SweepSpec:
        if spec.n is not None and spec.p_student:
            # MLP grids: keep the smallest sizes (every n has >= 2 per class at rho >= 0.2), d = 12.
            return dataclasses.replace(
                spec,
                d=(12,),
                n=thin(sorted(spec.n)[:4], 3),
                rho=thin([r for r in spec.rho if r >= 0.2] or spec.rho, 3),
                tau=thin(spec.tau, 3),
                curve_every=min(spec.curve_every, 20),
                **SHORT_TRAINING,
            )
        return _tiny_linear(spec)

    def check_spec(self, command: str, kind: str, *, scale: float, seeds: int) -> SweepSpec:
        long = kind == "float32"
        e = lambda n: max(10, int(n * scale))  # noqa: E731 - epochs at this scale
        dtype = "float64" if kind == "float64" else "float32"
        seeds = seeds if long else 2
        if command == "logistic-pinv":
            return SweepSpec(
                "logistic-pinv",
                d=(30,),
                n=(16, 300) if long else (20, 40),
                rho=(0.5, 0.9),
                seeds=seeds,
                shuffle="both",
                teacher_epochs=e(1500 if long else 200),
                teacher_lr=1e-2,
                dtype=dtype,
            )
        hidden = (32,) if command == "mlp" else ()
        return SweepSpec(
            command,
            d=(20,),
            c=(3,),
            n=(15, 600) if long else (30, 60),
            rho=(0.5, 0.8),
            tau=(1.0, 10.0),
            seeds=seeds,
            p_teacher=hidden,
            p_student=hidden,
            teacher_epochs=e(1500 if long else 200),
            student_epochs=e(1000 if long else 100),
            teacher_lr=1e-2,
            student_lr=1e-2,
            dtype=dtype,
        )


FAMILY = SweepFamily()


def _tiny_linear(spec: SweepSpec) -> SweepSpec:
    d0 = spec.d[0]
    d = max(8, d0 // 10) if spec.single_logit else 12
    c = spec.c[0]
    alphas = (
        spec.alpha
        if spec.alpha is not None
        else tuple(sorted({spec.alpha_of(n, d0, c) for n in spec.n or ()}))
    )
    rhos = thin([r for r in spec.rho if r >= 0.2] or spec.rho, 3)
    # Keep alphas whose student split has at least 2 samples per class at the smallest rho.
    per_class = [a * d * (1 if not spec.single_logit else 0.5) for a in alphas]
    alphas = tuple(a for a, m in zip(alphas, per_class, strict=True) if m * min(rhos) >= 2)
    if not alphas:
        raise ValueError(f"shrink(): no alpha of {spec.alpha} keeps 2 points per class")
    # one alpha per realized n at the small d (two alphas of one n would be refused as collapsed)
    by_n = {spec.n_of(a, d, c): a for a in reversed(thin(alphas, 6))}
    return dataclasses.replace(
        spec,
        d=(d,),
        alpha=tuple(sorted(by_n.values())),
        n=None,
        rho=rhos,
        tau=thin(spec.tau, 3),
        **SHORT_TRAINING,
    )


# --- counted work and parts (``simulate.estimate`` prices them) -------------------------------
def sweep_work(spec: SweepSpec) -> dict:
    """Counted work: teachers, students and training FLOPs (multiply-adds x 2, forward and
    backward, full batch; the students at the grid's mean rho)."""
    from softleak.simulate.chunks import students_per_teacher
    from softleak.simulate.exact_teachers import exact_teacher_flops

    sizes = spec.teacher_sizes()
    teachers = len(sizes) * spec.seeds
    per_teacher = students_per_teacher(spec)
    flops = 0.0
    for d, c, n in sizes:
        k = 1 if spec.single_logit else c
        tw = _mlp_weights(d, spec.p_teacher, k)
        if spec.exact_teacher:
            flops += spec.seeds * exact_teacher_flops(spec.teacher_kind, n, d)
        else:
            flops += spec.seeds * 3 * 2 * tw * n * spec.teacher_epochs
        if not spec.single_logit:
            sw = _mlp_weights(d, spec.p_student, c)
            mean_rho = sum(spec.rho) / len(spec.rho)
            flops += spec.seeds * per_teacher * 3 * 2 * sw * mean_rho * n * spec.student_epochs
    return {"teachers": teachers, "students": teachers * per_teacher, "flops": flops}


def _mlp_weights(d: int, hidden: tuple[int, ...], k: int) -> int:
    sizes = [d, *hidden, k]
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def sweep_parts(spec: SweepSpec, *, free_bytes: float, device: str) -> list:
    """Teacher batches (``protocol.teacher_batches``: per-replica inputs through ``bmm``, or one
    shared input matrix with nested data; exact teachers solved in float64), then per teacher its
    student batches (``simulate.chunks``: one per rho when wide, cut where the memory budget
    ends) or, for the single logit, one pseudo-inverse group per rho."""
    from softleak.simulate import protocol
    from softleak.simulate.estimate import DTYPE_BYTES, Part, step_flops
    from softleak.simulate.exact_teachers import exact_teacher_flops

    b = DTYPE_BYTES[spec.dtype]
    k_t = 1 if spec.single_logit else None
    keys = [(d, c, n, rep) for d, c, n in spec.teacher_sizes() for rep in range(spec.seeds)]
    parts = []
    family_t = "mlp" if spec.p_teacher else "linear"
    e = spec.teacher_epochs
    for batch in protocol.teacher_batches(spec, keys):
        d, c = batch[0][0], batch[0][1]
        k = k_t or c
        ns = [key[2] for key in batch]
        if spec.exact_teacher:  # solved in float64 on the host, not trained (exact_teachers)
            flops = sum(exact_teacher_flops(spec.teacher_kind, n, d) for n in ns)
            parts.append(Part("teachers", "pinv", flops, steps=len(ns), models=len(batch)))
            continue
        # Nested data: every teacher of the batch reads the largest data set (prefix masks).
        rows = [max(ns)] * len(ns) if spec.nested_data else ns
        parts.append(
            Part(
                "teachers",
                family_t,
                e * sum(step_flops(d, spec.p_teacher, k, r) for r in rows),
                e * sum(rows) * (sum(spec.p_teacher) + k),
                e * 2 * d * b * (max(ns) if spec.nested_data else sum(ns)),
                e,
                spec.nested_data,
                len(batch),
            )
        )
    # Every teacher has the same runs (rho, tau, shuffle, ablation, seed): only their seeds differ.
    runs = protocol.student_runs(spec, (1, 2, 2, 0))
    for d, c, n, _rep in keys:
        parts += _student_parts(spec, runs, (d, c, n), free_bytes, device)
    return parts


def _student_parts(spec: SweepSpec, runs: list, size_of: tuple, free_bytes: float, device: str):
    """The student parts of one teacher of size (d, c, n) whose students are ``runs``."""
    from softleak.simulate.chunks import ROW_SHARING_WIDTH, student_width
    from softleak.simulate.estimate import DTYPE_BYTES, Part, forward_flops, pinv_flops, rows_of
    from softleak.simulate.estimate import step_flops as step
    from softleak.simulate.memory import BUDGET_FRACTION, shared_bytes, student_bytes

    d, c, n = size_of
    parts: list[Any] = []
    if spec.single_logit:
        for rho in spec.rho:
            group = [r for r in runs if r.rho == rho]
            flops = pinv_flops(rows_of(n, c, rho), d, len(group), n + spec.n_val)
            parts.append(Part("pinv", "pinv", flops, steps=1, models=len(group)))
        return parts
    b = DTYPE_BYTES[spec.dtype]
    kind = "cuda" if str(device).startswith("cuda") else "cpu"
    wide = student_width(spec, c) >= ROW_SHARING_WIDTH  # as simulate.chunks.student_batches
    groups = [[r for r in runs if r.rho == rho] for rho in spec.rho] if wide else [runs]
    # simulate.memory.replicas_that_fit, without its warning when one student does not fit.
    budget = BUDGET_FRACTION[kind] * free_bytes - shared_bytes(spec, d, c, n)
    fit = int(budget // student_bytes(spec, d, c, n))
    size = max(1, min(spec.max_replicas, fit))
    per_row = sum(spec.p_student) + c
    e = spec.student_epochs
    evals = e // spec.curve_every + 1 if spec.curve_every else 0
    family_s = "mlp" if spec.p_student else "linear"
    for group in groups:
        for i in range(0, len(group), size):
            R = len(group[i : i + size])
            m = rows_of(n, c, max(r.rho for r in group[i : i + size]))
            parts.append(
                Part(
                    "students",
                    family_s,
                    e * R * step(d, spec.p_student, c, m)
                    + evals * R * forward_flops(d, spec.p_student, c, n),
                    (e * m + evals * n) * R * per_row,
                    e * 2 * m * d * b + evals * n * d * b,
                    e + evals,
                    True,
                    R,
                )
            )
    return parts
