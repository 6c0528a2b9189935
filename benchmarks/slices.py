"""The suite's workload slices on this CPU (``benchmarks.run_all`` lists them): each times the
engine's teachers and students of one slice, and the float32 one-at-a-time reference loop on the
same work, into ``Row``s of the rates file. ``WORKLOADS`` maps the workload ids to them."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from benchmarks.common import Timing, reference_loop
from benchmarks.peaks import timed_precisions
from benchmarks.rates_doc import Row
from benchmarks.slice_specs import (
    TAUS_5A,
    eager,
    eager_fit_kwargs,
    fused_variant,
    linear_slice,
    modadd_bench_spec,
)
from benchmarks.timed_run import Bench, Sizes, timing_text
from softleak.simulate import protocol
from softleak.simulate.chunks import train_students
from softleak.simulate.data import student_split
from softleak.simulate.device import thread_count
from softleak.simulate.estimate import pinv_flops, rows_of, step_flops
from softleak.simulate.spec import SweepSpec


def _f32(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=torch.float32)


def bench_logistic(sz: Sizes, b: Bench) -> None:
    """5 binary teachers (d = 1600, n = 2400, own inputs through ``bmm``) and the pseudo-inverse
    students of one teacher (every rho x 2 shuffles, float64) against ``np.linalg.pinv``."""
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
    b.log(f"  logistic-pinv teachers: {timing_text(engine)}")
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
    b.log(f"  logistic-pinv pinv students: {timing_text(engine)}")


def bench_multinomial(sz: Sizes, b: Bench, precisions=None) -> None:
    """5 teachers (d = 1000, c = 2, n = 2500) and the 80 students of one teacher (40 tau x 2
    shuffles, rho 0.8): the Fig. 5A workload, at each of ``precisions``."""
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
    b.log(f"  multinomial-tau teachers: {timing_text(engine)}")
    _multinomial_students(sz, b, spec, teachers[0], precisions)


def _multinomial_students(sz: Sizes, b: Bench, spec, teacher, precisions) -> None:
    """The students of ``teacher`` at each precision, and the loop on a few of their taus."""
    d, c, n = spec.d[0], spec.c[0], spec.n[0]
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
        b.log(f"  multinomial-tau students {precision}: {timing_text(engine)}")


def _mlp_students(b: Bench, cfg, R: int, precision: str, span: int, fused: bool = False):
    """(geometry, engine timing, teacher, rows) of R MLP students of ``bench_mlp``'s config
    ``cfg``; None where ``fused`` finds no compiled steps."""
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
    """MLP teachers at the paper's d, p, c (n = 2500, own inputs) and the paper slice's students
    (``bench_mlp.PAPER_SLICE``: 16,100 rows; a step of one student is ~37 GFLOP)."""
    precisions = precisions or timed_precisions()
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
    b.log(f"  mlp-paper-slice teachers: {timing_text(engine)}")
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
        b.log(f"  mlp-paper-slice students {precision}: {timing_text(engine)}")


def bench_mlp_quick(sz: Sizes, b: Bench, precisions=None) -> None:
    """The quick MLP scale (d = 100, p = 50, c = 100, 1,000 rows): R students on one input matrix;
    ``"fused": true`` rows only where ``fused_variant`` finds compiled steps."""
    precisions = precisions or timed_precisions()
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
            b.log(f"  mlp-quick-scale students {precision} fused={fused}: {timing_text(engine)}")


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
                    **eager_fit_kwargs(fit),
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
        b.log(f"  modadd-transformer teacher {precision}: {timing_text(engine)}")
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
        b.log(f"  modadd-transformer students {precision}: {timing_text(engine)}")


#: The workload ids (those of the rates file) and the function that times each.
WORKLOADS = {
    "logistic-pinv": bench_logistic,
    "multinomial-tau": bench_multinomial,
    "mlp-paper-slice": bench_mlp_paper,
    "mlp-quick-scale": bench_mlp_quick,
    "modadd-transformer": bench_modadd,
}
