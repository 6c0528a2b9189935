"""MLP students sharing one teacher's input matrix, against the same students one at a time.

R one-hidden-layer ReLU students (d -> p -> c) of one teacher, all on the same rows, train through
the engine (``simulate.protocol.gradient_students``: one batch; the first layer is one GEMM over all
R students); the one-at-a-time loop trains the same students with the reference's protocol
(``benchmarks.common.reference_loop``: nn.Sequential + torch.optim.Adam + cross-entropy with soft
targets, full batch). Both in FLOP/s of the matrix multiplies they do (``step_flops``), and both as
a fraction of a large float32 GEMM timed in the same run on the same threads.

Times per epoch are the difference of a long and a short run divided by the epochs between them
(set-up -- data, soft labels, the final evaluation -- cancels), from medians of 3 timings of >= 0.5
s each, the difference itself >= 0.5 s (``benchmarks.common.per_epoch``; the long run grows until
it is, else the row is unmeasurable: NaN, never a clamped 1e-9).

Configurations: the quick MLP scale (``paper_figs.mlp_scale.QUICK``: d = 100, p = 50, c = 100,
1,000 student rows, R = 8 / 16 / 32) and a paper-like slice (d = 1000, p = 500, c = 100, 16,100
rows, R = 4 / 8); linear c = 2 students (the Fig. 5A workload at d = 1000, and at the quick
presets' d = 100), linear c = 10 students (Fig. 15's), and a tiny batch of each family, whose time
per step is the fixed cost of an optimizer step. From these it fits the CPU constants of
``simulate.estimate`` (time per step = fixed cost + FLOPs / rate + hidden and logit entries x
seconds per entry) and prints them.

Usage: ``python -m benchmarks.bench_mlp [--quick] [--threads N]`` (default ~2 min of CPU time,
--quick ~30 s; wall time grows with the load of other processes).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import platform
import time
from dataclasses import dataclass

import numpy as np
import torch

from benchmarks.common import gemm_flops, per_epoch, reference_loop
from softleak.simulate import protocol
from softleak.simulate.data import student_split
from softleak.simulate.device import thread_count
from softleak.simulate.estimate import step_flops
from softleak.simulate.spec import SweepSpec


@dataclass(frozen=True)
class Config:
    """One timed slice: R students (hidden width p, 0 = linear) on one teacher (d, c, n) at rho."""

    name: str
    d: int
    p: int  # hidden width of teacher and students (0: linear models)
    c: int
    n: int  # teacher set size; the students train on rows_of(n, c, rho) of it
    rho: float
    students: tuple[int, ...]  # R values timed through the engine
    short: int  # epochs of the short run
    long: int  # epochs of the long run
    ref_students: int  # students in each one-at-a-time run (0: no loop)
    ref_short: int
    ref_long: int
    warm_up: bool = True  # one short engine run before timing (skipped where a step takes s)

    @property
    def family(self) -> str:
        return "mlp" if self.p else "linear"

    @property
    def hidden(self) -> tuple[int, ...]:
        return (self.p,) if self.p else ()

    @property
    def tiny(self) -> bool:
        return self.name.startswith("tiny")


TINY_LINEAR = Config("tiny linear", 8, 0, 2, 20, 0.8, (1,), 20, 420, 0, 0, 0)
TINY_MLP = Config("tiny mlp", 8, 8, 2, 20, 0.8, (1,), 20, 420, 0, 0, 0)
LINEAR_100 = Config("linear d=100", 100, 0, 2, 400, 0.8, (24,), 20, 220, 2, 20, 220)
LINEAR_1000 = Config("linear d=1000", 1000, 0, 2, 2500, 0.8, (80,), 5, 25, 2, 5, 45)
LINEAR_C10 = Config("linear c=10", 1000, 0, 10, 2500, 0.8, (20,), 5, 25, 2, 5, 25)
QUICK_SCALE = Config("mlp quick scale", 100, 50, 100, 1600, 0.65, (8, 16, 32), 5, 25, 2, 5, 25)
PAPER_SLICE = Config(
    "mlp paper slice", 1000, 500, 100, 17000, 0.95, (4, 8), 1, 2, 1, 1, 2, warm_up=False
)

FULL_RUN = (TINY_LINEAR, TINY_MLP, LINEAR_100, LINEAR_1000, LINEAR_C10, QUICK_SCALE, PAPER_SLICE)
QUICK_RUN = (
    TINY_LINEAR,
    TINY_MLP,
    LINEAR_1000,
    dataclasses.replace(QUICK_SCALE, students=(8, 32)),
)


@dataclass(frozen=True)
class Result:
    config: Config
    students: int
    rows: int
    step_flops: float  # FLOPs of one step of all R students
    entries: float  # hidden and logit entries of one step of all R students
    engine_step_s: float  # seconds per epoch (= optimizer step) of the batch of R
    ref_student_step_s: float  # seconds per epoch of one student in the loop (nan: no loop)

    @property
    def engine_rate(self) -> float:
        return self.step_flops / self.engine_step_s

    @property
    def ref_rate(self) -> float:
        return self.step_flops / self.students / self.ref_student_step_s

    @property
    def ratio(self) -> float:
        return self.engine_rate / self.ref_rate


def student_spec(cfg: Config, students: int, epochs: int) -> SweepSpec:
    """R students of one teacher: one rho, one tau, R student seeds (one engine batch)."""
    return SweepSpec(
        "mlp" if cfg.p else "multinomial",
        d=(cfg.d,),
        c=(cfg.c,),
        n=(cfg.n,),
        rho=(cfg.rho,),
        tau=(20.0,),
        student_seeds=students,
        p_teacher=cfg.hidden,
        p_student=cfg.hidden,
        teacher_epochs=1,  # a (nearly) random teacher: its soft labels do not change the speed
        student_epochs=epochs,
        student_lr=1e-3,
        n_val=100,
    )


def bench_config(cfg: Config, threads: int, repeats: int = 3) -> list[Result]:
    """Time ``cfg`` through the engine for every R, and the one-at-a-time loop (NaN where a time
    is unmeasurable)."""
    spec = student_spec(cfg, max(cfg.students), 1)
    teacher = protocol.train_teachers(spec, [(cfg.d, cfg.c, cfg.n, 0)], threads=threads)[0]
    train, _ = student_split(teacher.data.y, cfg.rho, cfg.c)
    rows = len(train)
    X_S = torch.as_tensor(teacher.data.X[train], dtype=torch.float32)  # (rows, d)
    soft = torch.softmax(torch.as_tensor(teacher.logits[train]) / 20.0, -1).float()  # (rows, c)

    def ref(epochs: int) -> None:
        k = cfg.ref_students
        with thread_count(threads):
            reference_loop([X_S] * k, [soft] * k, epochs, lr=1e-3, hidden=cfg.p)

    out = []
    for R in cfg.students:
        spec = student_spec(cfg, R, 1)
        runs = protocol.student_runs(spec, teacher.key)

        def engine(epochs: int, spec=spec, runs=runs) -> None:
            protocol.gradient_students(
                dataclasses.replace(spec, student_epochs=epochs), teacher, runs, threads
            )

        # Honest times (benchmarks.common.per_epoch): timings of >= 0.5 s, medians of
        # ``repeats``, and a long-minus-short difference of >= 0.5 s or no number at all.
        eng = per_epoch(engine, cfg.short, cfg.long, timings=repeats)
        loop = (
            per_epoch(ref, cfg.ref_short, cfg.ref_long, timings=repeats)
            if cfg.ref_students
            else None
        )
        out.append(
            Result(
                cfg,
                R,
                rows,
                R * step_flops(cfg.d, cfg.hidden, cfg.c, rows),
                R * rows * (cfg.p + cfg.c),
                eng.seconds if eng.ok else float("nan"),
                loop.seconds / cfg.ref_students if loop is not None and loop.ok else float("nan"),
            )
        )
    return out


def fit_constants(results: list[Result], gemm: float) -> dict[str, dict[str, float]]:
    """Per family: fixed cost per step (its tiny row), FLOP/s and seconds per entry fitted by
    non-negative least squares on the relative error of the other rows' step times. A fitted rate
    above the large GEMM's (``gemm``) is not physical: the rate is then set to it and only the
    seconds per entry are fitted."""
    from scipy.optimize import nnls

    out = {}
    for family in ("linear", "mlp"):
        # unmeasurable rows (NaN, benchmarks.common.per_epoch) fit nothing
        rows = [r for r in results if r.config.family == family and math.isfinite(r.engine_step_s)]
        tiny = [r.engine_step_s for r in rows if r.config.tiny]
        big = [r for r in rows if not r.config.tiny]
        if not tiny or len(big) < 2:
            continue
        step_s = tiny[0]
        T = np.array([r.engine_step_s for r in big])
        F = np.array([r.step_flops for r in big])
        N = np.array([r.entries for r in big])
        y = np.maximum(T - step_s, 0.0) / T
        A = np.stack([F / T, N / T], 1)
        scale = A.max(0)  # condition the columns
        (inv_rate, entry_s), _ = nnls(A / scale, y)
        inv_rate, entry_s = inv_rate / scale[0], entry_s / scale[1]
        if inv_rate < 1 / gemm:
            inv_rate = 1 / gemm
            entry_s = max(0.0, float(np.linalg.lstsq((N / T)[:, None], y - F / T / gemm)[0][0]))
        pred = step_s + F * inv_rate + N * entry_s
        out[family] = {
            "step_s": step_s,
            "rate": 1 / inv_rate if inv_rate > 0 else float("inf"),
            "entry_s": entry_s,
            "worst": float(np.max(np.abs(pred / T - 1))),
        }
    return out


def _warm_up() -> None:
    """The first autograd/optimizer step of a process costs ~2 s of lazy initialisation."""
    X = torch.randn(64, 16)
    reference_loop([X], [torch.softmax(torch.randn(64, 3), -1)], 2, hidden=8)


def print_table(results: list[Result], gemm: float) -> None:
    head = (
        f"{'configuration':<16} {'R':>3} {'rows':>6} {'GFLOP/step':>10} {'engine ms':>10} "
        f"{'engine GF/s':>11} {'1-by-1 GF/s':>11} {'ratio':>6} {'engine/GEMM':>11} "
        f"{'1-by-1/GEMM':>11}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        ref = (
            f"{r.ref_rate / 1e9:>11.1f} {r.ratio:>5.1f}x"
            if r.config.ref_students
            else f"{'-':>11} {'-':>6}"
        )
        ref_frac = f"{r.ref_rate / gemm:>11.0%}" if r.config.ref_students else f"{'-':>11}"
        print(
            f"{r.config.name:<16} {r.students:>3} {r.rows:>6} {r.step_flops / 1e9:>10.3g} "
            f"{r.engine_step_s * 1e3:>10.3g} {r.engine_rate / 1e9:>11.1f} {ref} "
            f"{r.engine_rate / gemm:>11.0%} {ref_frac}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the quick MLP scale only (~30 s)")
    ap.add_argument("--threads", type=int, default=1, help="torch/BLAS threads (default 1)")
    args = ap.parse_args(argv)
    configs = QUICK_RUN if args.quick else FULL_RUN
    size = 2048 if args.quick else 3072
    start = time.perf_counter()
    print(
        f"MLP students: engine (R students, one shared input matrix) vs one at a time; torch "
        f"{torch.__version__}, {platform.machine()}, {os.cpu_count()} cores, {args.threads} "
        f"thread(s), load average {os.getloadavg()[0]:.1f} at start"
    )
    with thread_count(args.threads):
        _warm_up()
        gemm0 = gemm_flops(size, threads=args.threads)
        results = [r for cfg in configs for r in bench_config(cfg, args.threads)]
        gemm1 = gemm_flops(size, threads=args.threads)
    gemm = max(gemm0, gemm1)
    print(
        f"float32 GEMM {size}^3: {gemm0 / 1e9:.1f} GFLOP/s before, {gemm1 / 1e9:.1f} after; "
        f"the best, {gemm / 1e9:.1f}, is the reference rate\n"
    )
    print_table(results, gemm)
    print(
        "\nengine ms: one optimizer step of all R students (median of 3 long-minus-short runs); "
        "1-by-1: nn.Sequential/nn.Linear + Adam + soft-target cross-entropy, one student after "
        "another, alternating with the engine's runs; ratio: engine FLOP/s over 1-by-1 FLOP/s "
        "on the same work (matrix-multiply FLOPs, simulate.estimate.step_flops). A tiny row's "
        "engine ms is the fixed cost of one step."
    )
    fits = fit_constants(results, gemm)
    if fits:
        print(
            "\nfitted CPU constants for simulate/estimate.py (step = fixed + FLOPs/rate + "
            "entries x entry_s; entries = R rows (p + c))"
        )
        for family, f in fits.items():
            key = family.upper()
            print(
                f"  CPU_{key}_STEP_S = {f['step_s']:.2g}  CPU_{key}_RATE = {f['rate']:.3g}  "
                f"CPU_{key}_ENTRY_S = {f['entry_s']:.2g}   (worst row off by {f['worst']:.0%})"
            )
    print(f"load average {os.getloadavg()[0]:.1f} at the end; {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
