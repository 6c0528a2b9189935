"""The benchmark suite: throughput of the engine's workloads, against a one-model-at-a-time loop that
follows the reference's protocol, and projected times of the paper's grids.

Usage: ``python -m benchmarks.run_all [--quick] [--threads N] [--json FILE] [--only WORKLOAD]``

Workload slices (their ids are those of the rates file below):

- ``logistic-pinv``: 5 binary teachers (d = 1600, n = 2400, per-replica inputs through ``bmm``) and
  the pseudo-inverse students of one teacher (float64, every rho x 2 shuffles);
- ``multinomial-tau``: 5 teachers (d = 1000, c = 2, n = 2500) and the 80 students of one teacher
  (40 tau x 2 shuffles, rho 0.8) -- the Fig. 5A workload;
- ``mlp-paper-slice``: MLP teachers (d = 1000, p = 500, c = 100, n = 2500) and students of one
  teacher on 16,100 rows (n = 17,000, rho 0.95), fp32 and the reduced precisions that run here;
- ``mlp-quick-scale``: R MLP students (d = 100, p = 50, c = 100, 1,000 rows) on one input matrix;
- ``modadd-transformer``: the modular-addition transformer (p = 113), its teacher and 4 students.

For each it prints the work per step in FLOPs (matrix multiplies, counted as in
``simulate.estimate``), the FLOP/s achieved, that rate as a fraction of the same-precision GEMM
peak (2048^3, the operands the engine uses: float64, float32, and float32 under
``precision_scope`` at each reduced precision this machine computes natively: ``bf16`` where
oneDNN's flag meets its contract, ``bf16r`` where bf16 products pay; bf16 tensors for reference) measured in the same run on the same
threads, and the speed-up against the float32 ``benchmarks.common.reference_loop``
(nn.Linear / nn.Sequential + torch.optim.Adam + F.cross_entropy, one model at a time;
``np.linalg.pinv`` per student for the pinv students).

Timing (``benchmarks.common``): every timing lasts >= 0.5 s (a call is repeated until it does), rates
are medians of 3 timings, and a per-epoch time is the difference of a long and a short run (set-up
cancels) only when that difference itself lasts >= 0.5 s -- else it is reported as unmeasurable. A
rate above its precision's GEMM peak is a measurement error: printed so, and used nowhere.

The rates go to a JSON file (``--json FILE``, and always ``simulate.estimate.default_rates_path()``,
which ``softleak figs list`` reads): ``{"gemm": {...}, "workloads": [...]}``. From them the paper
grids are projected on this CPU with ``simulate.estimate`` (its model scaled to the measured
rates, as ``softleak figs list``) and on an H200 (ASSUMED rates, no GPU here; ``python -m
benchmarks.gpu_check`` measures them on one).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import (
    MEASUREMENT_ERROR,
    MIN_TIMING_S,
    OK,
    TIMINGS,
    Timing,
    gemm_timing,
    judge,
    per_epoch,
    reduced_precisions,
    reference_loop,
    time_call,
)
from benchmarks.workloads import paper_grids
from softleak.simulate import estimate, protocol
from softleak.simulate.chunks import train_students
from softleak.simulate.data import student_split
from softleak.simulate.device import cpu_name, thread_count
from softleak.simulate.estimate import hours, pinv_flops, rows_of, step_flops
from softleak.simulate.spec import SweepSpec

TAUS_5A = tuple(float(f"{t:.6g}") for t in np.logspace(-0.5, 3.5, 40))
RATES_FORMAT = 1


def peak_precisions(device: str = "cpu") -> tuple[str, ...]:
    """The precisions whose GEMM peaks form the "gemm" table (the engine's operands): float64,
    float32 and each reduced precision this machine computes natively (its probe decides)."""
    return ("fp64", "fp32", *reduced_precisions(device))


def timed_precisions(device: str = "cpu") -> tuple[str, ...]:
    """The precisions the workloads are timed at: fp32 and the natively computed reduced ones."""
    return ("fp32", *reduced_precisions(device))


@dataclass(frozen=True)
class Sizes:
    """Slice sizes and initial epoch spans (per_epoch grows a span that is too short)."""

    logistic_rho: int  # rho values of the pinv slice (the paper: 50)
    logistic_span: int  # teacher epochs between the short and the long run
    pinv_ref_rho: tuple[float, ...]  # rho of the one-at-a-time pinv students (x 2 shuffles)
    multi_teacher_span: int
    multi_student_span: int
    multi_ref_students: int
    mlp_teachers: int
    mlp_teacher_span: int
    paper_students: int  # R of the paper slice
    quick_students: int  # R of the quick-scale slice
    quick_span: int
    modadd_students: int
    gemm_size: int = 2048


QUICK = Sizes(6, 120, (0.35, 0.65), 160, 120, 2, 2, 4, 2, 8, 60, 4)
FULL = Sizes(50, 120, (0.15, 0.35, 0.65, 0.85), 160, 120, 4, 5, 4, 4, 32, 120, 8)


@dataclass
class Row:
    """One timed slice: the engine on ``unit_flops`` of work per ``engine`` second, and the fp32
    one-at-a-time loop (where timed) on ``loop_flops`` per ``loop`` second."""

    workload: str
    part: str
    precision: str
    models: int
    unit_flops: float  # FLOPs of one timed unit (an epoch of the batch, or one call)
    engine: Timing  # seconds per unit
    slice: dict  # the unit's geometry for simulate.estimate (family, flops, entries, ...)
    loop: Timing | None = None
    loop_flops: float = 0.0
    loop_kind: str = ""
    loop_precision: str = "fp32"
    note: str = ""
    fused: bool = False

    @property
    def rate(self) -> float | None:
        return self.unit_flops / self.engine.seconds if self.engine.ok else None

    @property
    def loop_rate(self) -> float | None:
        if self.loop is None or not self.loop.ok:
            return None
        return self.loop_flops / self.loop.seconds


@dataclass
class Bench:
    """How this run times: threads, the minimum timing and the number of timings."""

    threads: int = 1
    min_s: float = MIN_TIMING_S
    timings: int = TIMINGS
    log: Callable[[str], None] = print
    rows: list[Row] = field(default_factory=list)

    def epoch(self, run, span: int, short: int = 1) -> Timing:
        return per_epoch(run, short, short + span, min_s=self.min_s, timings=self.timings)

    def call(self, fn, warm_up: bool = True) -> Timing:
        return time_call(fn, min_s=self.min_s, timings=self.timings, warm_up=warm_up)


def _f32(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=torch.float32)


def linear_slice(models: int, d: int, k: int, rows: int, shared: bool, hidden=()) -> dict:
    """One step's geometry (``simulate.estimate.Part`` fields) of ``models`` d -> hidden -> k
    models on ``rows`` rows each (float32 inputs)."""
    family = "mlp" if hidden else "linear"
    return {
        "family": family,
        "flops": models * step_flops(d, tuple(hidden), k, rows),
        "entries": models * rows * (sum(hidden) + k),
        "bytes": (1 if shared else models) * 2 * rows * d * 4,
        "steps": 1,
        "shared": shared,
        "d": d,
        "hidden": list(hidden),
        "k": k,
        "rows": rows,
        "models": models,
    }


# ---------------------------------------------------------------------------------------------
# the hook for fused (torch.compile'd) steps
# ---------------------------------------------------------------------------------------------
#: Spec fields that switch compiled (fused) training steps on or off, in the order looked for
#: (``bool | None``: None lets the engine decide by step size).
FUSED_FIELDS = ("compile", "fused", "torch_compile")


def _fused_field(spec) -> str | None:
    fields = {f.name: f for f in dataclasses.fields(spec)}
    for name in FUSED_FIELDS:
        f = fields.get(name)
        if f is not None and (f.default is None or isinstance(f.default, bool)):
            return name
    return None


def fused_variant(spec):
    """HOOK for fused steps: ``spec`` with torch.compile'd steps switched on, or None while
    ``softleak.simulate`` offers no such switch (a ``bool | None`` spec field named in
    ``FUSED_FIELDS``). The suite times ``"fused": true`` rows only where this returns a spec."""
    name = _fused_field(spec)
    return dataclasses.replace(spec, **{name: True}) if name else None


def eager(spec):
    """``spec`` with compiled steps off where it has the switch: ``"fused": false`` rows time the
    eager steps, whatever the engine's default would choose for their size."""
    name = _fused_field(spec)
    return dataclasses.replace(spec, **{name: False}) if name else spec


def modadd_bench_spec(students: int, **changes):
    """The modadd-transformer workload's spec: ``students`` students at rho 0.5, tau 1 of a
    one-epoch teacher checkpoint (only the students are timed), eager steps; ``changes`` set sizes
    (``gpu_check``'s profiles), the precision or the device."""
    from softleak.simulate.modadd import ModAddSpec

    spec = ModAddSpec(
        **{
            "rho": (0.5,),
            "tau": (1.0,),
            "student_seeds": students,
            "checkpoints": (1,),
            "teacher_epochs": 1,
            "curve_every": 0,
            **changes,
        }
    )
    return eager(spec)


def _eager_fit_kwargs(fit) -> dict:
    import inspect

    return {"compile": False} if "compile" in inspect.signature(fit).parameters else {}


# ---------------------------------------------------------------------------------------------
# workloads
# ---------------------------------------------------------------------------------------------
def bench_logistic(sz: Sizes, b: Bench) -> None:
    d, n, seeds = 1600, 2400, 5  # alpha = 1.5 at the paper's d; 5 seeds batch together
    rho = tuple(float(f"{v:.6g}") for v in np.linspace(0.05, 0.95, sz.logistic_rho))
    spec = eager(SweepSpec("logistic-pinv", d=(d,), n=(n,), rho=rho, seeds=seeds, shuffle="both"))
    keys = [(d, 2, n, r) for r in range(seeds)]
    teachers = protocol.train_teachers(dataclasses.replace(spec, teacher_epochs=1), keys, 1)

    def run(e):
        protocol.train_teachers(
            dataclasses.replace(spec, teacher_epochs=e), keys, threads=b.threads
        )

    geo = linear_slice(seeds, d, 1, n, shared=False)
    engine = b.epoch(run, sz.logistic_span)
    X, y = _f32(teachers[0].data.X), _f32(teachers[0].data.y)
    loop = b.epoch(lambda e: reference_loop([X], [y], e, lr=1e-3), 10 * sz.logistic_span)
    b.rows.append(
        Row(
            "logistic-pinv",
            "teachers",
            "fp32",
            seeds,
            geo["flops"],
            engine,
            geo,
            loop,
            step_flops(d, (), 1, n),
            "nn.Linear + Adam + BCE, one teacher",
            note=f"d={d} n={n}, {seeds} teachers (bmm, own inputs)",
        )
    )
    b.log(f"  logistic-pinv teachers: {_timing_text(engine)}")
    # Pseudo-inverse students: all rho x shuffle of one teacher, against np.linalg.pinv per student.
    t = teachers[0]
    work = sum(pinv_flops(rows_of(n, 2, r), d, 2, n + spec.n_val) for r in rho)
    engine = b.call(lambda: protocol.pinv_students(spec, t, b.threads))
    z = t.logits[:, 0]

    def ref():
        for r in sz.pinv_ref_rho:
            train, _ = student_split(t.data.y, r, 2)
            for _shuffle in range(2):
                w = np.linalg.pinv(t.data.X[train]) @ z[train]
                _ = t.data.X @ w, t.X_val @ w

    with thread_count(b.threads):
        loop = b.call(ref, warm_up=False)  # NumPy: nothing to initialise
    ref_work = sum(pinv_flops(rows_of(n, 2, r), d, 2, n + spec.n_val) for r in sz.pinv_ref_rho)
    geo = {"family": "pinv", "flops": work, "steps": len(rho), "shared": True}
    b.rows.append(
        Row(
            "logistic-pinv",
            "students",
            "fp64",
            2 * len(rho),
            work,
            engine,
            geo,
            loop,
            ref_work,
            "np.linalg.pinv per student",
            "fp64",
            f"pinv students: {len(rho)} rho x 2 shuffles of one teacher, float64",
        )
    )
    b.log(f"  logistic-pinv pinv students: {_timing_text(engine)}")


def bench_multinomial(sz: Sizes, b: Bench, precisions=None) -> None:
    precisions = precisions or timed_precisions()
    d, c, n, seeds = 1000, 2, 2500, 5
    spec = SweepSpec(
        "multinomial",
        d=(d,),
        c=(c,),
        n=(n,),
        rho=(0.8,),
        tau=TAUS_5A,
        seeds=seeds,
        shuffle="both",
    )
    spec = eager(spec)
    keys = [(d, c, n, r) for r in range(seeds)]
    teachers = protocol.train_teachers(dataclasses.replace(spec, teacher_epochs=1), keys, 1)

    def run_t(e):
        protocol.train_teachers(
            dataclasses.replace(spec, teacher_epochs=e), keys, threads=b.threads
        )

    geo = linear_slice(seeds, d, c, n, shared=False)
    engine = b.epoch(run_t, sz.multi_teacher_span)
    X, y = _f32(teachers[0].data.X), torch.as_tensor(teachers[0].data.y)
    loop = b.epoch(lambda e: reference_loop([X], [y], e, lr=1e-3), 10 * sz.multi_teacher_span)
    b.rows.append(
        Row(
            "multinomial-tau",
            "teachers",
            "fp32",
            seeds,
            geo["flops"],
            engine,
            geo,
            loop,
            step_flops(d, (), c, n),
            "nn.Linear + Adam + CE, one teacher",
            note=f"d={d} c={c} n={n}, {seeds} teachers (bmm, own inputs)",
        )
    )
    b.log(f"  multinomial-tau teachers: {_timing_text(engine)}")
    teacher = teachers[0]
    runs = protocol.student_runs(spec, teacher.key)
    m = rows_of(n, c, 0.8)
    geo = linear_slice(len(runs), d, c, m, shared=True)
    train, _ = student_split(teacher.data.y, 0.8, c)
    X_S = _f32(teacher.data.X[train])
    z = torch.as_tensor(teacher.logits[train])
    taus = TAUS_5A[:: max(1, len(TAUS_5A) // sz.multi_ref_students)][: sz.multi_ref_students]
    soft = [torch.softmax(z / tau, -1).float() for tau in taus]
    k = len(soft)
    loop = b.epoch(lambda e: reference_loop([X_S] * k, soft, e), 4 * sz.multi_student_span)
    for precision in precisions:
        s = dataclasses.replace(spec, precision=precision)

        def run_s(e, s=s):
            train_students(dataclasses.replace(s, student_epochs=e), teacher, b.threads)

        span = sz.multi_student_span * (1 if precision == "fp32" else 2)
        engine = b.epoch(run_s, span)
        b.rows.append(
            Row(
                "multinomial-tau",
                "students",
                precision,
                len(runs),
                geo["flops"],
                engine,
                geo,
                loop if precision == "fp32" else None,
                k * step_flops(d, (), c, m),
                f"nn.Linear + Adam + soft CE, {k} students one after another",
                note=f"40 tau x 2 shuffles on one teacher, n_S={m}",
            )
        )
        b.log(f"  multinomial-tau students {precision}: {_timing_text(engine)}")


def _mlp_students(b: Bench, cfg, R: int, precision: str, span: int, fused: bool = False):
    """(Row or None, teacher, rows) for R MLP students of ``bench_mlp``'s config ``cfg``."""
    from benchmarks import bench_mlp

    spec = dataclasses.replace(bench_mlp.student_spec(cfg, R, 1), precision=precision)
    spec = fused_variant(spec) if fused else eager(spec)
    if spec is None:
        return None
    teacher = protocol.train_teachers(spec, [(cfg.d, cfg.c, cfg.n, 0)], threads=b.threads)[0]
    runs = protocol.student_runs(spec, teacher.key)

    def run(e):
        protocol.gradient_students(
            dataclasses.replace(spec, student_epochs=e), teacher, runs, b.threads
        )

    rows = len(student_split(teacher.data.y, cfg.rho, cfg.c)[0])
    geo = linear_slice(R, cfg.d, cfg.c, rows, shared=True, hidden=cfg.hidden)
    engine = b.epoch(run, span)
    return geo, engine, teacher, rows


def _mlp_loop(b: Bench, cfg, teacher, k: int, span: int) -> tuple[Timing, float]:
    train, _ = student_split(teacher.data.y, cfg.rho, cfg.c)
    X_S = _f32(teacher.data.X[train])
    soft = torch.softmax(torch.as_tensor(teacher.logits[train]) / 20.0, -1).float()
    with thread_count(b.threads):
        loop = b.epoch(
            lambda e: reference_loop([X_S] * k, [soft] * k, e, lr=1e-3, hidden=cfg.p), span
        )
    return loop, k * step_flops(cfg.d, cfg.hidden, cfg.c, len(train))


def bench_mlp_paper(sz: Sizes, b: Bench, precisions=None) -> None:
    precisions = precisions or timed_precisions()
    """MLP teachers at the paper's d, p, c (n = 2500, own inputs) and the paper slice's students
    (``bench_mlp.PAPER_SLICE``: 16,100 rows; a step of one student is ~37 GFLOP)."""
    from benchmarks import bench_mlp

    d, c, p, n = 1000, 100, 500, 2500
    spec = SweepSpec(
        "mlp", d=(d,), c=(c,), n=(n,), rho=(0.5,), seeds=sz.mlp_teachers, p_teacher=(p,)
    )
    spec = eager(dataclasses.replace(spec, p_student=(p,)))
    keys = [(d, c, n, r) for r in range(sz.mlp_teachers)]
    teacher = protocol.train_teachers(dataclasses.replace(spec, teacher_epochs=1), keys[:1], 1)[0]

    def run_t(e):
        protocol.train_teachers(
            dataclasses.replace(spec, teacher_epochs=e), keys, threads=b.threads
        )

    geo = linear_slice(len(keys), d, c, n, shared=False, hidden=(p,))
    engine = b.epoch(run_t, sz.mlp_teacher_span)
    X, y = _f32(teacher.data.X), torch.as_tensor(teacher.data.y)
    with thread_count(b.threads):
        loop = b.epoch(
            lambda e: reference_loop([X], [y], e, lr=1e-3, hidden=p), sz.mlp_teacher_span
        )
    b.rows.append(
        Row(
            "mlp-paper-slice",
            "teachers",
            "fp32",
            len(keys),
            geo["flops"],
            engine,
            geo,
            loop,
            step_flops(d, (p,), c, n),
            "nn.Sequential + Adam + CE, one teacher",
            note=f"d={d} p={p} c={c} n={n}, {len(keys)} teachers (bmm, own inputs)",
        )
    )
    b.log(f"  mlp-paper-slice teachers: {_timing_text(engine)}")
    cfg = bench_mlp.PAPER_SLICE
    R = sz.paper_students
    loop = loop_flops = None
    for precision in precisions:
        span = 1 if precision == "fp32" else 3
        geo, engine, teacher, rows = _mlp_students(b, cfg, R, precision, span)
        if loop is None:
            loop, loop_flops = _mlp_loop(b, cfg, teacher, 1, 3)
        b.rows.append(
            Row(
                "mlp-paper-slice",
                "students",
                precision,
                R,
                geo["flops"],
                engine,
                geo,
                loop if precision == "fp32" else None,
                loop_flops,
                "nn.Sequential + Adam + soft CE, one student",
                note=f"d={cfg.d} p={cfg.p} c={cfg.c}, {rows} rows, {R} students on one X",
            )
        )
        b.log(f"  mlp-paper-slice students {precision}: {_timing_text(engine)}")


def bench_mlp_quick(sz: Sizes, b: Bench, precisions=None) -> None:
    precisions = precisions or timed_precisions()
    """The quick MLP scale (d = 100, p = 50, c = 100, 1,000 rows): R students on one input matrix;
    ``"fused": true`` rows only where ``fused_variant`` finds compiled steps."""
    from benchmarks import bench_mlp

    cfg, R = bench_mlp.QUICK_SCALE, sz.quick_students
    loop = loop_flops = None
    for fused in (False, True):
        # fused: fp32 only (each compiled graph costs seconds to build)
        for precision in precisions if not fused else precisions[:1]:
            got = _mlp_students(b, cfg, R, precision, sz.quick_span, fused=fused)
            if got is None:
                b.log(f"  mlp-quick-scale fused {precision}: no compiled steps (fused_variant)")
                continue
            geo, engine, teacher, rows = got
            if loop is None:
                loop, loop_flops = _mlp_loop(b, cfg, teacher, 2, 2 * sz.quick_span)
            b.rows.append(
                Row(
                    "mlp-quick-scale",
                    "students",
                    precision,
                    R,
                    geo["flops"],
                    engine,
                    geo,
                    loop if precision == "fp32" and not fused else None,
                    loop_flops,
                    "nn.Sequential + Adam + soft CE, 2 students one after another",
                    note=f"d={cfg.d} p={cfg.p} c={cfg.c}, {rows} rows, {R} students on one X",
                    fused=fused,
                )
            )
            b.log(f"  mlp-quick-scale students {precision} fused={fused}: {_timing_text(engine)}")


def bench_modadd(sz: Sizes, b: Bench, precisions=("fp32",)) -> None:
    """The modular-addition transformer at p = 113: the teacher's steps (``simulate.train.fit``
    on the model the engine builds) and a replica batch of students at rho 0.5."""
    from softleak.simulate.losses import Objective
    from softleak.simulate.modadd.data import make_data
    from softleak.simulate.modadd.models import make_model, model_inputs
    from softleak.simulate.modadd.spec import student_runs
    from softleak.simulate.modadd.students import train_students as modadd_students
    from softleak.simulate.train import fit

    for precision in precisions:
        spec = modadd_bench_spec(sz.modadd_students, precision=precision)
        data = make_data(spec)
        rows = torch.as_tensor(data.teacher)
        X = model_inputs(spec, torch.as_tensor(data.tokens)[rows])
        y = torch.as_tensor(data.labels)[rows]
        fps = spec.flops_per_sample()

        def run_t(e, spec=spec, X=X, y=y):
            model = make_model(spec, [spec.teacher_seed()])
            with thread_count(b.threads):
                fit(
                    model,
                    X,
                    Objective("ce", y),
                    epochs=e,
                    optim=spec.teacher_optim(),
                    precision=spec.precision,
                    **_eager_fit_kwargs(fit),
                )

        geo = {"family": "transformer", "flops": 3.0 * fps * spec.n, "steps": 1, "shared": True}
        engine = b.epoch(run_t, 6)
        b.rows.append(
            Row(
                "modadd-transformer",
                "teachers",
                precision,
                1,
                geo["flops"],
                engine,
                geo,
                note=f"p={spec.p}, {spec.n} pairs, d_model={spec.d_model}",
            )
        )
        b.log(f"  modadd-transformer teacher {precision}: {_timing_text(engine)}")
        runs = student_runs(spec)
        z = torch.randn(
            spec.p**2, spec.p, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
        )

        def run_s(e, spec=spec, data=data, runs=runs, z=z):
            s = dataclasses.replace(spec, student_epochs=e)
            modadd_students(s, data, 3 * z, runs, b.threads)

        m = spec.n_train(0.5)
        R = len(runs)
        geo = {"family": "transformer", "flops": 3.0 * fps * m * R, "steps": 1, "shared": True}
        engine = b.epoch(run_s, 3)
        b.rows.append(
            Row(
                "modadd-transformer",
                "students",
                precision,
                R,
                geo["flops"],
                engine,
                geo,
                note=f"p={spec.p}, {R} students at rho 0.5 ({m} pairs each)",
            )
        )
        b.log(f"  modadd-transformer students {precision}: {_timing_text(engine)}")


WORKLOADS = {
    "logistic-pinv": bench_logistic,
    "multinomial-tau": bench_multinomial,
    "mlp-paper-slice": bench_mlp_paper,
    "mlp-quick-scale": bench_mlp_quick,
    "modadd-transformer": bench_modadd,
}


# ---------------------------------------------------------------------------------------------
# peaks, rows of the rates file, projections
# ---------------------------------------------------------------------------------------------
def measure_peaks(size: int, b: Bench, device: str = "cpu", precisions=None) -> dict:
    """FLOP/s of a ``size``^3 GEMM per precision (None: unmeasurable), on ``b``'s threads."""
    out = {}
    with thread_count(b.threads):
        for precision in precisions or (*peak_precisions(device), "bf16-tensors"):
            out[precision], _ = gemm_timing(
                precision, size, device, min_s=b.min_s, timings=b.timings
            )
    return out


def best_peaks(*runs: dict) -> dict:
    """The larger of each precision's peaks over several measurements (None if all failed)."""
    keys = {k for r in runs for k in r}
    return {k: max((r[k] for r in runs if r.get(k)), default=None) for k in sorted(keys)}


def _timing_text(t: Timing) -> str:
    return f"{t.seconds * 1e3:.4g} ms per unit ({t.note})" if t.ok else f"unmeasurable: {t.note}"


def workload_rows(rows: list[Row], gemm: dict) -> list[dict]:
    """The rates file's rows, with the honesty rules applied: a rate above its precision's GEMM
    peak is a measurement error (``gflop_per_s`` null, the raw value kept as
    ``measured_gflop_per_s``), one without a peak to check against is ``unverified``; speed-ups
    are against the fp32 loop of the same slice (null where none was timed or it was measured
    wrong)."""
    loops = {}
    for r in rows:
        if r.loop is not None and not r.fused:
            status = judge(r.loop_rate, gemm.get(r.loop_precision))
            loops[(r.workload, r.part)] = (r.loop_rate if status == OK else None, r, status)
    out = []
    for r in rows:
        peak = gemm.get(r.precision)
        status = judge(r.rate, peak)
        if status == OK and peak is None:
            status = f"unverified: no {r.precision} GEMM peak"
        good = status == OK
        loop_rate, loop_row, loop_status = loops.get((r.workload, r.part), (None, None, None))
        out.append(
            {
                "workload": r.workload,
                "part": r.part,
                "precision": r.precision,
                "fused": r.fused,
                "gflop_per_s": r.rate / 1e9 if good else None,
                "fraction_of_gemm": r.rate / peak if good else None,
                "speedup_vs_loop": r.rate / loop_rate if good and loop_rate else None,
                "status": status,
                "measured_gflop_per_s": r.rate / 1e9 if r.rate else None,
                "models": r.models,
                "gflop_per_unit": r.unit_flops / 1e9,
                "unit_s": r.engine.seconds,
                "timing": r.engine.note,
                "loop": loop_row.loop_kind if loop_row else None,
                "loop_gflop_per_s": loop_rate / 1e9 if loop_rate else None,
                "loop_status": loop_status,
                "note": r.note,
                "slice": r.slice,
            }
        )
    return out


def rates_document(
    rows: list[Row], gemm: dict, reference: dict, *, meta: dict | None = None
) -> dict:
    """The rates file: run facts, the "gemm" peaks (GFLOP/s), the reference peaks, the rows."""
    gemm_g = {k: (v / 1e9 if v else None) for k, v in gemm.items()}
    table = workload_rows(rows, gemm)
    return {
        "format": RATES_FORMAT,
        **(meta or {}),
        "gemm": {k: v for k, v in gemm_g.items() if v is not None},
        "gemm_unmeasurable": sorted(k for k, v in gemm_g.items() if v is None),
        "gemm_reference": {k: (v / 1e9 if v else None) for k, v in reference.items()},
        "workloads": table,
    }


def project(rates) -> list[tuple]:
    """(grid, CPU seconds, GPU seconds, reference cost, counted work) per paper grid, from
    ``simulate.estimate`` with the measured rates (CPU) and the assumed H200."""
    out = []
    for name, (spec, ref_cost) in paper_grids().items():
        e = estimate.estimate(spec, rates=rates)
        out.append((name, e["cpu_s"], e["h200_s"], ref_cost, estimate.work_of(spec)))
    return out


def _warm_up() -> None:
    """The first autograd/optimizer step of a process costs ~2 s of lazy initialisation: pay it
    before any timing (both the engine and the loop)."""
    X = torch.randn(64, 16)
    reference_loop([X, X, X], [torch.rand(64), torch.randint(0, 3, (64,)), torch.rand(64, 3)], 2)
    reference_loop([X], [torch.randint(0, 3, (64,))], 2, hidden=8)
    spec = SweepSpec("multinomial", d=(16,), c=(2,), n=(32,), teacher_epochs=2, student_epochs=2)
    teacher = protocol.train_teachers(spec, [(16, 2, 32, 0)], threads=1)[0]
    train_students(spec, teacher, 1)


def _fmt_flops(x: float) -> str:
    for unit, scale in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6)):
        if x >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g} "


def _g(x) -> str:
    return f"{x:.1f}" if x is not None else "-"


def print_rows(table: list[dict]) -> None:
    head = (
        f"{'workload':<19} {'part':<9} {'precision':<10} {'models':>6} {'work/unit':>10} "
        f"{'GFLOP/s':>8} {'of GEMM':>8} {'1-at-a-time':>11} {'speed-up':>9}  slice"
    )
    print(head)
    print("-" * len(head))
    for r in table:
        prec = r["precision"] + ("+fused" if r["fused"] else "")
        work = _fmt_flops(r["gflop_per_unit"] * 1e9) + "FLOP"
        if r["status"] == OK:
            rate = f"{r['gflop_per_s']:>8.1f} {r['fraction_of_gemm']:>8.0%}"
        elif r["status"] == MEASUREMENT_ERROR:
            rate = f"{'measurement error':>17}"
        else:
            rate = f"{r['status'][:17]:>17}"
        loop = f"{_g(r['loop_gflop_per_s']):>8} GF" if r["loop"] else f"{'-':>11}"
        speed = f"{r['speedup_vs_loop']:>8.1f}x" if r["speedup_vs_loop"] else f"{'-':>9}"
        print(
            f"{r['workload']:<19} {r['part']:<9} {prec:<10} {r['models']:>6} {work:>10} "
            f"{rate} {loop} {speed}  {r['note']}"
        )
        if r["status"] == MEASUREMENT_ERROR:
            print(
                f"{'':<19} ^ {r['measured_gflop_per_s']:.4g} GFLOP/s is above the "
                f"{r['precision']} GEMM peak: a measurement error, used in no projection"
            )


def write_rates(doc: dict, paths: list[Path]) -> None:
    text = json.dumps(doc, indent=1)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small slices (a few minutes)")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch/BLAS threads for the engine, the reference loop and the GEMM (default 1)",
    )
    ap.add_argument(
        "--json",
        metavar="FILE",
        help="also write the measured rates here (always written to "
        f"{estimate.default_rates_path()})",
    )
    ap.add_argument(
        "--only",
        metavar="WORKLOAD",
        action="append",
        choices=list(WORKLOADS),
        help="time only these workloads (repeatable; default all); such a partial run writes "
        "--json only, not the cache figs list reads",
    )
    args = ap.parse_args(argv)
    threads = args.threads or 1
    sz = QUICK if args.quick else FULL
    start = time.perf_counter()
    loads = [os.getloadavg()[0]]  # sampled at every log line: a busy machine sets the rates

    def log(text: str) -> None:
        loads.append(os.getloadavg()[0])
        print(f"[{time.perf_counter() - start:4.0f} s]{text}", flush=True)

    b = Bench(threads=threads, log=log)
    load0 = loads[0]
    print(
        f"softleak benchmark suite ({'quick' if args.quick else 'full'}): torch "
        f"{torch.__version__}, {platform.machine()}, {os.cpu_count()} cores, "
        f"load average {load0:.1f} at start"
    )
    print(
        f"threads: {threads} torch/BLAS thread(s) for the engine, the one-at-a-time loop and the "
        "GEMM" + (" (default; --threads N to change)" if args.threads is None else "")
    )
    print(f"timings: medians of {b.timings} timings of >= {b.min_s:g} s each")
    with thread_count(threads):
        _warm_up()
        peaks0 = measure_peaks(sz.gemm_size, b)
        b.log(" GEMM peaks measured")
        for name, bench in WORKLOADS.items():
            if args.only and name not in args.only:
                continue
            bench(sz, b)
        peaks1 = measure_peaks(sz.gemm_size, b)
    peaks = best_peaks(peaks0, peaks1)
    print(f"\nGEMM peaks ({sz.gemm_size}^3, GFLOP/s; before / after the workloads, the best used):")
    for k in (*peak_precisions(), "bf16-tensors"):
        extra = " (bf16 tensors, for reference)" if k == "bf16-tensors" else ""
        print(
            f"  {k:<13} {_g(_div(peaks0[k]))} / {_g(_div(peaks1[k]))} -> {_g(_div(peaks[k]))}{extra}"
        )
    gemm = {k: peaks[k] for k in peak_precisions()}
    reference = {"bf16-tensors": peaks["bf16-tensors"]}
    meta = {
        "device": "cpu",
        "device_name": cpu_name(),
        "torch": torch.__version__,
        "threads": threads,
        "quick": args.quick,
        "written": datetime.datetime.now().isoformat(timespec="seconds"),
        "load_average": [round(x, 2) for x in (*loads, os.getloadavg()[0])],
        "cores": os.cpu_count(),
        "min_timing_s": b.min_s,
        "timings": b.timings,
        "gemm_size": sz.gemm_size,
    }
    busy = estimate.busy_reason(meta)
    meta["busy"] = busy is not None
    doc = rates_document(b.rows, gemm, reference, meta=meta)
    print()
    print_rows(doc["workloads"])
    print(
        "\nwork/unit: matrix-multiply FLOPs of one step of the whole batch (the pinv row: one "
        "call); GFLOP/s: per-epoch times from the difference of a long and a short run "
        f"(>= {b.min_s:g} s apart), medians of {b.timings}; of GEMM: against the same "
        "precision's peak; 1-at-a-time: the reference's protocol (nn.Linear/nn.Sequential + "
        "Adam + F.cross_entropy in float32, or np.linalg.pinv per student), one model after "
        "another, on the same slice; speed-up: engine FLOP/s over that loop's."
    )
    # A run of some workloads only (--only) leaves the last complete run's cache alone.
    paths = [] if args.only else [estimate.default_rates_path()]
    if args.json:
        paths.insert(0, Path(args.json))
    write_rates(doc, paths)
    if paths:
        print(f"\nrates written to {', '.join(map(str, paths))}")
    if busy:
        print(
            f"these rates were {busy}: the file is marked busy and softleak figs list will not "
            "read it by default; rerun on an idle machine"
        )
    _report_projections(doc, threads)
    print(
        f"\nLoad average {os.getloadavg()[0]:.1f} at the end; {time.perf_counter() - start:.0f} s."
    )
    return 0


def _div(x):
    return x / 1e9 if x else None


def _find(table: list[dict], workload: str, part: str, precision: str = "fp32") -> dict | None:
    return next(
        (
            r
            for r in table
            if (r["workload"], r["part"], r["precision"]) == (workload, part, precision)
            and not r["fused"]
        ),
        None,
    )


def _report_projections(doc: dict, threads: int) -> None:
    rates = estimate.rates_from_dict(doc, "this run")
    print(
        f"\nprojected paper grids: CPU = this machine, 1 process x {threads} thread(s): "
        "simulate.estimate scaled to the rates above (" + rates.summary() + "); GPU = ASSUMED "
        f"H200 (no GPU here): {estimate.H200_GEMM / 1e12:.0f} TFLOP/s fp32 GEMM without TF32 x "
        f"{estimate.H200_EFFICIENCY:.0%} efficiency, {estimate.H200_BANDWIDTH / 1e12:.1f} TB/s, "
        f"{estimate.H200_OP_S * 1e6:.0f} us per torch op, pinv students on the host CPU"
    )
    for why in rates.rejected:
        print(f"  not used: {why}")
    proj = project(rates)
    print(
        f"{'grid':<34} {'teachers':>8} {'students':>9} {'work':>11} {'this CPU':>10} "
        f"{'GPU (assumed)':>13}  reference"
    )
    for name, cpu_s, gpu_s, ref_cost, w in proj:
        print(
            f"{name:<34} {w['teachers']:>8} {w['students']:>9} "
            f"{_fmt_flops(w['flops']) + 'FLOP':>11} {hours(cpu_s):>10} {hours(gpu_s):>13}  "
            f"{ref_cost}"
        )
    by = {name.split(" (")[0]: (cpu_s, gpu_s) for name, cpu_s, gpu_s, *_ in proj}
    table = doc["workloads"]
    multi = _find(table, "multinomial-tau", "students") or {}
    speed, frac = multi.get("speedup_vs_loop"), multi.get("fraction_of_gemm")
    targets = [
        ("multinomial students >= 30x the one-at-a-time loop", speed is not None and speed >= 30,
         f"{speed:.1f}x" if speed else "not measured"),
        ("multinomial students >= 40% of the GEMM rate", frac is not None and frac >= 0.4,
         f"{frac:.0%}" if frac else "not measured"),
        ("Fig. 5A grid < 8 h on this CPU (projected)", by["Fig. 5A"][0] < 8 * 3600,
         hours(by["Fig. 5A"][0])),
        ("Fig. 5A grid < 10 min on a GPU (projected, assumed GPU)", by["Fig. 5A"][1] < 600,
         hours(by["Fig. 5A"][1])),
        ("MLP grid < 3 h on a GPU (projected, assumed GPU)", by["Figs. 6/7 MLP grid"][1] < 3 * 3600,
         hours(by["Figs. 6/7 MLP grid"][1])),
    ]  # fmt: skip
    print("\ntargets")
    for text, ok, value in targets:
        print(f"  {'met    ' if ok else 'NOT met'}  {text}: {value}")
    mlp_flops = next(w["flops"] for name, _, _, _, w in proj if name.startswith("Figs. 6/7"))
    print(
        f"  (the MLP grid is {_fmt_flops(mlp_flops)}FLOP: 3 h needs "
        f"{mlp_flops / 3 / 3600 / 1e12:.0f} TFLOP/s sustained, above an H200's float32 peak; "
        "only TF32/bf16 tensor cores reach it, and simulate.precision says what must be checked "
        "before their thresholds are trusted)"
    )
    fp32 = _find(table, "mlp-paper-slice", "students", "fp32")
    for p in reduced_precisions():
        low = _find(table, "mlp-paper-slice", "students", p)
        if fp32 and low and fp32["gflop_per_s"] and low["gflop_per_s"]:
            print(
                f"  mlp paper slice students: {p} / fp32 = "
                f"{low['gflop_per_s'] / fp32['gflop_per_s']:.2f}x "
                f"({fp32['fraction_of_gemm']:.0%} of the fp32 GEMM, "
                f"{low['fraction_of_gemm']:.0%} of the {p} one)"
            )
    loop = (multi.get("loop_gflop_per_s") or 0) * 1e9
    if loop and doc["gemm"].get("fp32"):
        print(
            f"\nnotes: the speed-up of any batched program over the one-at-a-time loop is bounded "
            f"by GEMM rate / loop rate = {doc['gemm']['fp32'] * 1e9 / loop:.1f}x here (the loop's "
            "X_S fits in cache, so one small model is not far from compute bound on this CPU). "
            "--workers N runs N such processes; on an idle machine with N cores the CPU "
            "projections divide by up to N."
        )


if __name__ == "__main__":
    raise SystemExit(main())
