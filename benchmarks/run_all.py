"""The benchmark suite: throughput of the engine's workloads, against a one-model-at-a-time loop that
follows the reference's protocol, and projected times of the paper's grids.

Usage: ``python -m benchmarks.run_all [--quick] [--threads N]``

For each workload slice (logistic-pinv: teachers + pseudo-inverse students; multinomial temperature
grid: teachers + 80 students on one teacher; MLP teachers and students through the engine; MLP
students of the quick scale on one input matrix, from ``benchmarks.bench_mlp``) it prints the work in
FLOPs (matrix multiplies, counted as in ``benchmarks.workloads``), the FLOP/s achieved, that rate as
a fraction of a large float32 GEMM measured in the same run on the same threads, and the speed-up
against ``benchmarks.common.reference_loop`` (nn.Linear / nn.Sequential + torch.optim.Adam +
F.cross_entropy, one model at a time; ``np.linalg.pinv`` per student for the pinv students) on the
same slice. Engine times per epoch are differences of a long and a one-epoch run, so set-up
(data, soft labels, final evaluation) cancels; it is amortized over 10,000 epochs in the real grids.

From those rates it projects each paper grid on this CPU (one process at the measured rates) and on
a GPU. The GPU figures are ASSUMPTIONS, not measurements (no GPU here): an H200 float32 GEMM rate
(no TF32) times an efficiency, the HBM bandwidth for memory-bound steps, and a fixed kernel-launch
cost per optimizer step; the pinv students stay on the host CPU (they are float64 SciPy).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time
from dataclasses import dataclass

import numpy as np
import torch

from benchmarks.common import gemm_flops, reference_loop
from benchmarks.workloads import (
    paper_grids,
    pinv_flops,
    rows_of,
    step_flops,
    sweep_work,
)
from softleak.simulate import estimate, protocol
from softleak.simulate.chunks import train_students
from softleak.simulate.data import student_split
from softleak.simulate.device import thread_count
from softleak.simulate.estimate import hours
from softleak.simulate.memory import free_bytes
from softleak.simulate.spec import SweepSpec

TAUS_5A = tuple(float(f"{t:.6g}") for t in np.logspace(-0.5, 3.5, 40))


@dataclass(frozen=True)
class Sizes:
    """Epochs and reference-loop sizes of one suite run."""

    logistic_rho: int  # rho values of the pinv slice (the paper: 50)
    logistic_teacher_epochs: int
    logistic_ref_teachers: int
    pinv_ref_rho: tuple[float, ...]  # rho of the one-at-a-time pinv students (x 2 shuffles)
    multi_teacher_epochs: int
    multi_student_epochs: int
    multi_ref_teachers: int
    multi_ref_students: int
    mlp_teachers: int
    mlp_teacher_epochs: int
    mlp_student_epochs: int
    mlp_ref_students: int
    gemm_size: int
    repeats: int


QUICK = Sizes(10, 20, 1, (0.35, 0.65), 20, 60, 1, 2, 2, 3, 3, 3, 2048, 2)
FULL = Sizes(50, 100, 2, (0.15, 0.35, 0.65, 0.85), 100, 300, 2, 4, 5, 8, 8, 10, 4096, 2)


@dataclass
class Row:
    workload: str
    part: str
    models: int  # models in the slice
    flops: float  # work of the timed engine run
    engine_rate: float  # FLOP/s
    ref_rate: float  # FLOP/s of the one-at-a-time loop on the same kind of work
    note: str = ""

    @property
    def speedup(self) -> float:
        return self.engine_rate / self.ref_rate


# ---------------------------------------------------------------------------------------------
# timing helpers
# ---------------------------------------------------------------------------------------------
def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def per_epoch(run, epochs: int, repeats: int) -> float:
    """Seconds per epoch of ``run(epochs)``: (t(epochs) - t(1)) / (epochs - 1), set-up cancelled."""
    t1 = best_time(lambda: run(1), repeats)
    tn = best_time(lambda: run(epochs), repeats)
    return max(tn - t1, 1e-9) / (epochs - 1)


def _f32(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=torch.float32)


# ---------------------------------------------------------------------------------------------
# workloads
# ---------------------------------------------------------------------------------------------
def bench_logistic(sz: Sizes, threads: int) -> tuple[list[Row], dict]:
    d, n, seeds = 1600, 2400, 5  # alpha = 1.5 at the paper's d; 5 seeds batch together
    rho = tuple(float(f"{v:.6g}") for v in np.linspace(0.05, 0.95, sz.logistic_rho))
    spec = SweepSpec("logistic-pinv", d=(d,), n=(n,), rho=rho, seeds=seeds, shuffle="both")
    keys = [(d, 2, n, r) for r in range(seeds)]
    teachers = []

    def run(e):
        teachers[:] = protocol.train_teachers(
            dataclasses.replace(spec, teacher_epochs=e), keys, threads=threads
        )

    epoch_s = per_epoch(run, sz.logistic_teacher_epochs, sz.repeats)
    fl = seeds * step_flops(d, (), 1, n)
    t = teachers[0]
    X = [_f32(tt.data.X) for tt in teachers[: sz.logistic_ref_teachers]]
    y = [_f32(tt.data.y) for tt in teachers[: sz.logistic_ref_teachers]]
    e_ref = max(10, sz.logistic_teacher_epochs // 2)
    ref_s = reference_loop(X, y, e_ref, lr=1e-3) / (len(X) * e_ref)
    rows = [
        Row(
            "logistic-pinv",
            "teachers",
            seeds,
            fl * sz.logistic_teacher_epochs,
            fl / epoch_s,
            step_flops(d, (), 1, n) / ref_s,
            f"d={d} n={n}, {seeds} teachers (bmm)",
        )
    ]
    # Pseudo-inverse students: all rho x shuffle of one teacher, against np.linalg.pinv per student.
    pinv_s = best_time(lambda: protocol.pinv_students(spec, t, threads), sz.repeats)
    work = sum(pinv_flops(rows_of(n, 2, r), d, 2, n + spec.n_val) for r in rho)
    z = t.logits[:, 0]
    t0 = time.perf_counter()
    for r in sz.pinv_ref_rho:
        train, _ = student_split(t.data.y, r, 2)
        for _shuffle in range(2):
            w = np.linalg.pinv(t.data.X[train]) @ z[train]
            _ = t.data.X @ w, t.X_val @ w
    ref_time = time.perf_counter() - t0
    ref_work = sum(pinv_flops(rows_of(n, 2, r), d, 2, n + spec.n_val) for r in sz.pinv_ref_rho)
    rows.append(
        Row(
            "logistic-pinv",
            "pinv students",
            2 * len(rho),
            work,
            work / pinv_s,
            ref_work / ref_time,
            f"{len(rho)} rho x 2 shuffles, float64",
        )
    )
    return rows, {"teachers": rows[0].engine_rate, "pinv": rows[1].engine_rate}


def bench_multinomial(sz: Sizes, threads: int) -> tuple[list[Row], dict]:
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
    keys = [(d, c, n, r) for r in range(seeds)]
    teachers = []

    def run_t(e):
        teachers[:] = protocol.train_teachers(
            dataclasses.replace(spec, teacher_epochs=e), keys, threads=threads
        )

    t_epoch = per_epoch(run_t, sz.multi_teacher_epochs, sz.repeats)
    fl_t = seeds * step_flops(d, (), c, n)
    X = [_f32(t.data.X) for t in teachers[: sz.multi_ref_teachers]]
    y = [torch.as_tensor(t.data.y) for t in teachers[: sz.multi_ref_teachers]]
    ref_t = reference_loop(X, y, sz.multi_teacher_epochs, lr=1e-3) / (
        len(X) * sz.multi_teacher_epochs
    )
    teacher = teachers[0]
    runs = protocol.student_runs(spec, teacher.key)
    s_epoch = per_epoch(
        lambda e: train_students(dataclasses.replace(spec, student_epochs=e), teacher, threads),
        sz.multi_student_epochs,
        sz.repeats,
    )
    m = rows_of(n, c, 0.8)
    fl_s = len(runs) * step_flops(d, (), c, m)
    train, _ = student_split(teacher.data.y, 0.8, c)
    X_S = _f32(teacher.data.X[train])
    z = torch.as_tensor(teacher.logits[train])
    taus = TAUS_5A[:: max(1, len(TAUS_5A) // sz.multi_ref_students)][: sz.multi_ref_students]
    soft = [torch.softmax(z / tau, -1).float() for tau in taus]
    e_ref = sz.multi_student_epochs
    reference_loop([X_S], soft[:1], 2)  # warm-up
    ref_s = reference_loop([X_S] * len(soft), soft, e_ref) / (len(soft) * e_ref)
    rows = [
        Row(
            "multinomial tau",
            "teachers",
            seeds,
            fl_t * sz.multi_teacher_epochs,
            fl_t / t_epoch,
            step_flops(d, (), c, n) / ref_t,
            f"d={d} c={c} n={n}, {seeds} teachers (bmm)",
        ),
        Row(
            "multinomial tau",
            "students",
            len(runs),
            fl_s * sz.multi_student_epochs,
            fl_s / s_epoch,
            step_flops(d, (), c, m) / ref_s,
            f"40 tau x 2 shuffles on one teacher, n_S={m}",
        ),
    ]
    return rows, {"teachers": rows[0].engine_rate, "students": rows[1].engine_rate}


def bench_mlp(sz: Sizes, threads: int) -> tuple[list[Row], dict]:
    d, c, p, n = 1000, 100, 500, 2500
    rho = tuple(float(f"{v:.6g}") for v in np.linspace(0.05, 0.95, 10))
    spec = SweepSpec(
        "multinomial",
        d=(d,),
        c=(c,),
        n=(n,),
        rho=rho,
        tau=(20.0,),
        seeds=sz.mlp_teachers,
        p_teacher=(p,),
        p_student=(p,),
    )
    keys = [(d, c, n, r) for r in range(sz.mlp_teachers)]
    teachers = []

    def run_t(e):
        teachers[:] = protocol.train_teachers(
            dataclasses.replace(spec, teacher_epochs=e), keys, threads=threads
        )

    t_epoch = per_epoch(run_t, sz.mlp_teacher_epochs, sz.repeats)
    fl_t = len(keys) * step_flops(d, (p,), c, n)
    X = [_f32(teachers[0].data.X)]
    y = [torch.as_tensor(teachers[0].data.y)]
    reference_loop(X, y, 1, lr=1e-3, hidden=p)  # warm-up
    ref_t = reference_loop(X, y, sz.mlp_teacher_epochs, lr=1e-3, hidden=p) / sz.mlp_teacher_epochs
    teacher = teachers[0]
    s_epoch = per_epoch(
        lambda e: train_students(dataclasses.replace(spec, student_epochs=e), teacher, threads),
        sz.mlp_student_epochs,
        sz.repeats,
    )
    fl_s = sum(step_flops(d, (p,), c, rows_of(n, c, r)) for r in rho)
    ref_rho = rho[:: max(1, len(rho) // sz.mlp_ref_students)][: sz.mlp_ref_students]
    z = torch.as_tensor(teacher.logits)
    X_list, soft, work = [], [], 0.0
    for r in ref_rho:
        train, _ = student_split(teacher.data.y, r, c)
        X_list.append(_f32(teacher.data.X[train]))
        soft.append(torch.softmax(z[train] / 20.0, -1).float())
        work += step_flops(d, (p,), c, len(train))
    e_ref = sz.mlp_student_epochs
    ref_time = reference_loop(X_list, soft, e_ref, hidden=p) / e_ref
    rows = [
        Row(
            "mlp (engine)",
            "teachers",
            len(keys),
            fl_t * sz.mlp_teacher_epochs,
            fl_t / t_epoch,
            step_flops(d, (p,), c, n) / ref_t,
            f"d={d} c={c} p={p} n={n}, {len(keys)} teachers (bmm)",
        ),
        Row(
            "mlp (engine)",
            "students",
            len(rho),
            fl_s * sz.mlp_student_epochs,
            fl_s / s_epoch,
            work / ref_time,
            "10 rho in 0.05..0.95, tau=20, one batch per rho",
        ),
    ]
    return rows, {"teachers": rows[0].engine_rate, "students": rows[1].engine_rate}


def bench_mlp_shared(sz: Sizes, threads: int) -> tuple[list[Row], dict]:
    """The quick MLP scale (d = 100, p = 50, c = 100, 1,000 rows): R students on one input matrix
    against the same students one at a time (``benchmarks.bench_mlp``, which also times the
    paper-like slice and fits the CPU constants of ``simulate.estimate``)."""
    from benchmarks import bench_mlp

    R = 8 if sz is QUICK else 32
    cfg = dataclasses.replace(bench_mlp.QUICK_SCALE, students=(R,))
    (r,) = bench_mlp.bench_config(cfg, threads, repeats=sz.repeats)
    row = Row(
        "mlp (quick scale)",
        "students",
        R,
        r.step_flops * (cfg.long - cfg.short),
        r.engine_rate,
        r.ref_rate,
        f"d={cfg.d} p={cfg.p} c={cfg.c}, {r.rows} rows, {R} students on one X",
    )
    return [row], {"students": r.engine_rate}


# ---------------------------------------------------------------------------------------------
# projections and report
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GpuAssumptions:
    """ASSUMED H200 rates (no GPU here): ``simulate.estimate``'s constants, so that these
    projections and ``softleak figs list`` agree."""

    gemm: float = estimate.H200_GEMM  # dense float32 GEMM, no TF32
    efficiency: float = estimate.H200_EFFICIENCY  # fraction of that the engine's GEMMs reach
    bandwidth: float = estimate.H200_BANDWIDTH  # achievable HBM3e bandwidth
    op_s: float = estimate.H200_OP_S  # per torch op of an optimizer step (dispatch + launch)
    memory: float = estimate.H200_FREE_BYTES  # device memory, for replica batch sizes


def project(rates: dict, gpu: GpuAssumptions) -> list[tuple]:
    """(grid, CPU seconds, GPU seconds, reference cost, work) per paper grid."""
    kinds = {
        "Fig. 4": ("logistic", None),
        "Fig. 5A": ("multinomial", "multinomial"),
        "Figs. 6/7": ("mlp", "mlp"),
    }
    out = []
    cpu_free = free_bytes("cpu")
    for name, (spec, ref_cost) in paper_grids().items():
        teach_kind, stud_kind = next(v for k, v in kinds.items() if name.startswith(k))
        w_cpu = sweep_work(spec, free_bytes=cpu_free, device="cpu")
        cpu = w_cpu.teachers.flops / rates[teach_kind]["teachers"]
        if w_cpu.students.flops:
            cpu += w_cpu.students.flops / rates[stud_kind]["students"]
        pinv_s = w_cpu.pinv.flops / rates["logistic"]["pinv"] if w_cpu.pinv.flops else 0.0
        cpu += pinv_s
        w_gpu = sweep_work(spec, free_bytes=gpu.memory, device="cuda")
        gpu_s = pinv_s  # float64 SciPy on the host
        for part, hidden in ((w_gpu.teachers, spec.p_teacher), (w_gpu.students, spec.p_student)):
            if part.steps:
                family = "mlp" if hidden else "linear"
                gpu_s += estimate.h200_part_seconds(part.flops, part.bytes, part.steps, family)
        flops = w_cpu.teachers.flops + w_cpu.students.flops + w_cpu.pinv.flops
        out.append((name, cpu, gpu_s, ref_cost, flops, w_cpu))
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short runs (about 1-2 minutes)")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch/BLAS threads for the engine, the reference loop and the GEMM (default 1)",
    )
    args = ap.parse_args(argv)
    threads = args.threads or 1
    sz = QUICK if args.quick else FULL
    gpu = GpuAssumptions()
    start = time.perf_counter()
    print(
        f"softleak benchmark suite ({'quick' if args.quick else 'full'}): torch "
        f"{torch.__version__}, {platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    print(
        f"threads: {threads} torch/BLAS thread(s) for the engine, the one-at-a-time loop and the "
        "GEMM" + (" (default; --threads N to change)" if args.threads is None else "")
    )
    with thread_count(threads):
        _warm_up()
        gemm0 = gemm_flops(sz.gemm_size, threads=threads)
        rows, rates = [], {}
        for key, bench in (
            ("logistic", bench_logistic),
            ("multinomial", bench_multinomial),
            ("mlp", bench_mlp),
            ("mlp-quick", bench_mlp_shared),
        ):
            r, rate = bench(sz, threads)
            rows += r
            rates[key] = rate
        gemm1 = gemm_flops(sz.gemm_size, threads=threads)
    gemm = max(gemm0, gemm1)
    print(
        f"\nlarge float32 GEMM ({sz.gemm_size}^3): {gemm0 / 1e9:.1f} GFLOP/s before, "
        f"{gemm1 / 1e9:.1f} after; the best, {gemm / 1e9:.1f}, is the reference rate below\n"
    )
    head = (
        f"{'workload':<16} {'part':<14} {'models':>6} {'work':>10} {'GFLOP/s':>8} "
        f"{'of GEMM':>8} {'1-at-a-time':>11} {'speed-up':>9}  slice"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.workload:<16} {r.part:<14} {r.models:>6} {_fmt_flops(r.flops) + 'FLOP':>10} "
            f"{r.engine_rate / 1e9:>8.1f} {r.engine_rate / gemm:>8.0%} "
            f"{r.ref_rate / 1e9:>8.1f} GF {r.speedup:>8.1f}x  {r.note}"
        )
    print(
        "\nwork: matrix-multiply FLOPs of the timed engine run (per-epoch rates from a long minus "
        "a one-epoch run); 1-at-a-time: the reference's protocol (nn.Linear/nn.Sequential + "
        "Adam + F.cross_entropy, or np.linalg.pinv per student), one model after another, on "
        "the same slice, in FLOP/s of the same work."
    )

    print(
        f"\nprojected paper grids: CPU = this machine, 1 process x {threads} thread(s), at the "
        "rates above (teachers, students, pinv each at its slice's rate); GPU = ASSUMED H200 "
        f"(no GPU here): {gpu.gemm / 1e12:.0f} TFLOP/s fp32 GEMM without TF32 x "
        f"{gpu.efficiency:.0%} efficiency, {gpu.bandwidth / 1e12:.1f} TB/s, "
        f"{gpu.op_s * 1e6:.0f} us per torch op x {estimate.OPS_PER_STEP['linear']} (linear) or "
        f"{estimate.OPS_PER_STEP['mlp']} (MLP) ops per step, pinv students on the host CPU "
        "(simulate.estimate)"
    )
    proj = project(rates, gpu)
    print(
        f"{'grid':<34} {'teachers':>8} {'students':>9} {'work':>11} {'this CPU':>10} "
        f"{'GPU (assumed)':>13}  reference"
    )
    for name, cpu_s, gpu_s, ref_cost, flops, w in proj:
        students = w.students.models + w.pinv.models
        print(
            f"{name:<34} {w.teachers.models:>8} {students:>9} {_fmt_flops(flops) + 'FLOP':>11} "
            f"{hours(cpu_s):>10} {hours(gpu_s):>13}  {ref_cost}"
        )
    by = {name.split(" (")[0]: (cpu_s, gpu_s) for name, cpu_s, gpu_s, *_ in proj}
    multi = next(r for r in rows if r.workload.startswith("multinomial") and r.part == "students")
    targets = [
        ("multinomial students >= 30x the one-at-a-time loop", multi.speedup >= 30,
         f"{multi.speedup:.1f}x"),
        ("multinomial students >= 40% of the GEMM rate", multi.engine_rate / gemm >= 0.4,
         f"{multi.engine_rate / gemm:.0%}"),
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
    mlp_flops = next(f for name, _, _, _, f, _ in proj if name.startswith("Figs. 6/7"))
    print(
        f"  (the MLP grid is {_fmt_flops(mlp_flops)}FLOP: 3 h needs "
        f"{mlp_flops / 3 / 3600 / 1e12:.0f} TFLOP/s sustained, above an H200's float32 peak; "
        "only TF32/bf16 tensor cores reach it, and simulate.precision says what must be checked "
        "before their thresholds are trusted)"
    )
    bound = gemm / multi.ref_rate
    print(
        f"\nnotes: the speed-up of any batched program over the one-at-a-time loop is bounded by "
        f"GEMM rate / loop rate = {bound:.1f}x here (the loop's X_S fits in cache, so one small "
        "model is not far from compute bound on this CPU). --workers N runs N such processes; "
        "on an idle machine with N cores the CPU projections divide by up to N. "
        f"Load average {os.getloadavg()[0]:.1f} at the end; {time.perf_counter() - start:.0f} s."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
