"""How long a preset takes: its work, counted the way the engine batches it, over device rates.

The work of a sweep is split into *parts*, each a sequence of optimizer steps that run one after
the other on one device (``parts_of``): a teacher batch (per-replica inputs through ``bmm``, or one
shared input matrix with nested data), a student batch (every student of a batch reads the same
rows; ``simulate.chunks.student_batches``), or a pseudo-inverse group (float64 on the host). Per part:

- ``flops``: matrix-multiply FLOPs (``step_flops``: forward, weight gradients, and the gradients
  through every layer above the first -- no gradient w.r.t. the inputs);
- ``entries``: hidden-layer and logit values written per step, summed over the steps (the
  elementwise work: bias, ReLU, softmax, masks, gradients);
- ``bytes``: input-matrix traffic (each step reads X for the forward and the weight gradient);
- ``steps``: sequential optimizer steps (each pays a fixed cost: Python, dispatch, launches).

This CPU (one process, one torch thread, the measured rates below):
``flops / rate + entries * entry_s + steps * step_s`` per family (linear or MLP), the first term no
less than ``bytes / CPU_BANDWIDTH`` for per-replica inputs; a pinv group costs
``flops / CPU_PINV_RATE + CPU_PINV_GROUP_S``.
An H200 (ASSUMED rates, none measured): ``max(flops / (H200_GEMM * H200_EFFICIENCY),
bytes / H200_BANDWIDTH) + steps * step_s``, pinv groups on the host CPU -- the model of
``benchmarks.run_all``'s projections, which import these constants and ``h200_part_seconds``.

Estimates ignore data generation, teacher outputs, the final evaluation and the store (seconds per
unit), and early stopping (an upper bound where a spec stops early).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# --- this CPU: the 2-core development machine, 1 process x 1 torch thread (MEASURED) ---------
# Fitted by ``python -m benchmarks.bench_mlp`` (it prints them) to the time per step of the
# engine's student batches, per family, as  step_s + flops / rate + entries * entry_s : step_s
# from a tiny batch, rate and entry_s by least squares over batches at several sizes (the rate
# capped at the large-GEMM rate of the same run, ~100 GFLOP/s at 3072^3). Measured with other
# processes busy (load average 1.5-2 on the 2 cores); a run at load 2.5-3 fitted rates ~1.3x lower
# and fixed costs ~1.2-2x higher (slower estimates by ~1.5x), and another at load 5 was ~2x slower.
CPU_LINEAR_STEP_S = 1.7e-4  # s: a step of 1 linear student, d = 8, c = 2 (~30 torch ops)
CPU_LINEAR_RATE = 90e9  # FLOP/s (fit: 80 students c = 2 and 20 c = 10 at d = 1000, 24 c = 2
#   students at d = 100; worst row off by 5%. bench_multinomial measured 78-87 GFLOP/s for 80)
CPU_LINEAR_ENTRY_S = 13e-9  # s per logit entry per step (softmax, targets, masks, gradient)
CPU_MLP_STEP_S = 4.1e-4  # s: a step of 1 MLP student, d = p = 8, c = 2 (~63 torch ops)
CPU_MLP_RATE = 75e9  # FLOP/s (fit: R = 8/16/32 at d = 100, p = 50, c = 100, 1,000 rows and
#   R = 4/8 at d = 1000, p = 500, c = 100, 16,100 rows; worst row off by 23%)
CPU_MLP_ENTRY_S = 7.8e-9  # s per hidden or logit entry per step (bias, ReLU, softmax, gradients)
# Modular-addition transformer (``simulate.transformer``, p = 113, 1 thread, load ~2; MEASURED by
# the engine's author): a teacher epoch on 3,830 pairs 114 ms, 8 students at rho = 0.5 (1,915 rows
# each) 517 ms per epoch -- 56 and 49 GFLOP/s of ``ModAddSpec.flops_per_sample`` x 3 per row; the
# p = 59 teacher (1,392 pairs, evaluations included) ran 46 ms per epoch (~50 GFLOP/s).
CPU_TRANSFORMER_RATE = 50e9  # FLOP/s
CPU_TRANSFORMER_STEP_S = 1e-3  # s per step (ASSUMED: ~3x the MLP's op count)
# Linear teachers with their own inputs (independent data: matrix-vector products per replica) are
# memory bound: 5 teachers at d = 1000-1600, n = 2,400-2,500 (c = 2, 10 and the single logit) ran
# at 5.6-8.7 GB/s of input traffic (``protocol.train_teachers``, 1 thread, same load).
CPU_BANDWIDTH = 7e9  # bytes/s
# Float64 pseudo-inverse groups (Gram matrix, Cholesky, solves, predictions, per-run metrics):
# ``protocol.pinv_students`` on one teacher (10 rho x 2 shuffles, 1 thread) took 72 ms at d = 200,
# n = 300 and 1.4 s at d = 1600, n = 2400; rate and fixed cost per group solved from the two.
CPU_PINV_RATE = 45e9  # FLOP/s
CPU_PINV_GROUP_S = 7e-3  # s per rho group (Python and small NumPy calls around the solve)
# Free memory for replica batches (``simulate.memory`` budgets half of it): MemAvailable of the
# development machine (~21 GB).
CPU_FREE_BYTES = 20e9

# --- one NVIDIA H200 (ASSUMED: no GPU measured; benchmarks.run_all uses the same numbers) ------
H200_FP32_PEAK = 67e12  # FLOP/s: datasheet float32 (CUDA cores; no TF32 tensor cores)
H200_GEMM = 0.75 * H200_FP32_PEAK  # FLOP/s a large cuBLAS SGEMM reaches (~50 T; assumed)
H200_EFFICIENCY = 0.5  # fraction of H200_GEMM the engine's thin GEMMs/bmm and elementwise reach
H200_BANDWIDTH = 3.3e12  # bytes/s: ~70% of the 4.8 TB/s HBM3e peak (assumed)
H200_OP_S = 6e-6  # s per eager torch op on the host: dispatch + kernel launch (assumed ~5-10 us)
H200_FREE_BYTES = 139 * 2**30  # device memory for replica batches
# Top-level torch ops per optimizer step of the engine (counted with torch.profiler on a tiny
# batch: forward, loss gradient, backward, Adam): a GPU step costs at least this many launches.
OPS_PER_STEP = {"linear": 30, "mlp": 63, "transformer": 200}  # transformer: ASSUMED

DTYPE_BYTES = {"float32": 4, "float64": 8}


# --- counting ---------------------------------------------------------------------------------
def step_flops(d: int, hidden: tuple[int, ...], k: int, rows: float) -> float:
    """FLOPs of one full-batch training step of one model d -> hidden... -> k on ``rows`` samples:
    forward 2 rows sum(a b), weight gradients the same, and the backward through every layer above
    the first (no gradient w.r.t. the inputs)."""
    sizes = [d, *hidden, k]
    layers = [a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    return 2 * rows * (2 * sum(layers) + sum(layers[1:]))


def forward_flops(d: int, hidden: tuple[int, ...], k: int, rows: float) -> float:
    """FLOPs of one forward pass on ``rows`` samples."""
    sizes = [d, *hidden, k]
    return 2 * rows * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def pinv_flops(m: int, d: int, rhs: int, n_eval: int) -> float:
    """FLOPs of one pseudo-inverse group: factor X_S (m, d) once (Gram matrix 2 N k^2 with
    k = min(m, d), N = max(m, d); Cholesky k^3 / 3), solve ``rhs`` right-hand sides, predict on
    ``n_eval`` rows."""
    k, big = min(m, d), max(m, d)
    return 2 * big * k * k + k**3 / 3 + rhs * (2 * m * d + 4 * k * k) + 2 * n_eval * d * rhs


def rows_of(n: int, c: int, rho: float) -> int:
    """Student training rows at rho (the stratified per-class prefix rule of ``student_split``)."""
    return c * int(rho * (n // c))


@dataclass(frozen=True)
class Part:
    """Work that runs as one sequence of steps on one device (see the module docstring)."""

    role: str  # teachers | students | pinv
    family: str  # linear | mlp | transformer | pinv
    flops: float  # matrix-multiply FLOPs, all steps
    entries: float = 0.0  # hidden and logit values written, all steps
    bytes: float = 0.0  # input-matrix traffic, all steps
    steps: int = 0  # sequential optimizer steps (pinv: 1 per group)
    shared: bool = True  # one input matrix for the whole batch (False: per-replica inputs)
    models: int = 0


def parts_of(spec, *, free_bytes: float = CPU_FREE_BYTES, device: str = "cpu") -> list[Part]:
    """The parts of a ``SweepSpec``, ``Toy2DSpec`` or ``ModAddSpec`` as the engine runs them on
    ``device`` with ``free_bytes`` of memory (which sets the student batch sizes)."""
    from softleak.simulate.modadd import ModAddSpec
    from softleak.simulate.toy2d import Toy2DSpec

    if isinstance(spec, Toy2DSpec):
        return _toy2d_parts(spec)
    if isinstance(spec, ModAddSpec):
        return _modadd_parts(spec, device=device)
    return _sweep_parts(spec, free_bytes=free_bytes, device=device)


def _toy2d_parts(spec) -> list[Part]:
    """Toy 2D: all teachers one batch, all students (both kinds) another; per-replica inputs."""
    h, c = tuple(spec.hidden), spec.c
    students = spec.seeds * spec.student_seeds * 2
    m = spec.n_train
    per_row = sum(h) + c
    return [
        Part(
            "teachers",
            "mlp",
            spec.teacher_epochs * spec.seeds * step_flops(2, h, c, spec.n),
            spec.teacher_epochs * spec.seeds * spec.n * per_row,
            spec.teacher_epochs * spec.seeds * 2 * spec.n * 2 * DTYPE_BYTES[spec.dtype],
            spec.teacher_epochs,
            False,
            spec.seeds,
        ),
        Part(
            "students",
            "mlp",
            spec.student_epochs * students * step_flops(2, h, c, m),
            spec.student_epochs * students * m * per_row,
            spec.student_epochs * students * 2 * m * 2 * DTYPE_BYTES[spec.dtype],
            spec.student_epochs,
            False,
            students,
        ),
    ]


def _modadd_parts(spec, *, device: str = "cpu") -> list[Part]:
    """Modular addition: the teacher (n rows per step, evaluated on all p^2 pairs every
    ``teacher_curve_every`` epochs, to ``teacher_epochs``: an upper bound when stop rules end it
    early), then per checkpoint the replica batches of ``simulate.modadd.student_batches`` (rows
    padded to the batch's largest rho; evaluated on all p^2 pairs every ``curve_every`` epochs).
    FLOPs as ``ModAddSpec.work``; the transformer runs at its own measured rate, the MLP variant
    as an MLP with per-replica one-hot inputs."""
    from softleak.simulate.modadd import student_batches, student_runs

    if str(device).startswith("cuda") and spec.batch_by != "checkpoint":
        spec = _replace(spec, batch_by="checkpoint")  # what a GPU run would choose
    fps, P, b = spec.flops_per_sample(), spec.p**2, DTYPE_BYTES[spec.dtype]
    family = "transformer" if spec.model == "transformer" else "mlp"
    width = sum(spec.hidden) + spec.p if family == "mlp" else 0
    d_in = 2 * spec.p

    def part(role, rows, replicas, epochs, every):
        evals = epochs // every + 1 if every else 1
        return Part(
            role,
            family,
            3.0 * fps * rows * replicas * epochs + fps * P * replicas * evals,
            (rows * epochs + P * evals) * replicas * width,
            (rows * epochs + P * evals) * replicas * d_in * b if family == "mlp" else 0.0,
            epochs + evals,
            family != "mlp",
            replicas,
        )

    parts = [part("teachers", spec.n, 1, spec.teacher_epochs, spec.teacher_curve_every)]
    n_ckpt = len(spec.checkpoints) + len(spec.stop_rules)
    for _ in range(n_ckpt):
        for batch in student_batches(spec, student_runs(spec)):
            m = max(spec.n_train(r.rho) for r in batch)
            parts.append(part("students", m, len(batch), spec.student_epochs, spec.curve_every))
    return parts


def _replace(spec, **changes):
    import dataclasses

    return dataclasses.replace(spec, **changes)


def _sweep_parts(spec, *, free_bytes: float, device: str) -> list[Part]:
    from softleak.simulate import protocol
    from softleak.simulate.chunks import ROW_SHARING_WIDTH, student_width
    from softleak.simulate.memory import BUDGET_FRACTION, shared_bytes, student_bytes

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
    family_s = "mlp" if spec.p_student else "linear"
    kind = "cuda" if str(device).startswith("cuda") else "cpu"
    # Every teacher has the same runs (rho, tau, shuffle, ablation, seed): only their seeds differ.
    runs = protocol.student_runs(spec, (1, 2, 2, 0))
    for d, c, n, _rep in keys:
        if spec.single_logit:
            for rho in spec.rho:
                group = [r for r in runs if r.rho == rho]
                m = rows_of(n, c, rho)
                flops = pinv_flops(m, d, len(group), n + spec.n_val)
                parts.append(Part("pinv", "pinv", flops, steps=1, models=len(group)))
            continue
        wide = student_width(spec, c) >= ROW_SHARING_WIDTH  # as simulate.chunks.student_batches
        groups = [[r for r in runs if r.rho == rho] for rho in spec.rho] if wide else [runs]
        # simulate.memory.replicas_that_fit, without its warning when one student does not fit.
        budget = BUDGET_FRACTION[kind] * free_bytes - shared_bytes(spec, d, c, n)
        fit = int(budget // student_bytes(spec, d, c, n))
        size = max(1, min(spec.max_replicas, fit))
        per_row = sum(spec.p_student) + c
        e = spec.student_epochs
        evals = e // spec.curve_every + 1 if spec.curve_every else 0
        for group in groups:
            for i in range(0, len(group), size):
                R = len(group[i : i + size])
                m = rows_of(n, c, max(r.rho for r in group[i : i + size]))
                parts.append(
                    Part(
                        "students",
                        family_s,
                        e * R * step_flops(d, spec.p_student, c, m)
                        + evals * R * forward_flops(d, spec.p_student, c, n),
                        (e * m + evals * n) * R * per_row,
                        e * 2 * m * d * b + evals * n * d * b,
                        e + evals,
                        True,
                        R,
                    )
                )
    return parts


# --- timing -----------------------------------------------------------------------------------
def cpu_part_seconds(part: Part) -> float:
    """Seconds of ``part`` on this CPU (1 process, 1 thread) at the measured rates."""
    if part.family == "pinv":
        return part.flops / CPU_PINV_RATE + part.steps * CPU_PINV_GROUP_S
    if part.family == "transformer":
        return part.flops / CPU_TRANSFORMER_RATE + part.steps * CPU_TRANSFORMER_STEP_S
    if part.family == "linear":
        rate, entry_s, step_s = CPU_LINEAR_RATE, CPU_LINEAR_ENTRY_S, CPU_LINEAR_STEP_S
    else:
        rate, entry_s, step_s = CPU_MLP_RATE, CPU_MLP_ENTRY_S, CPU_MLP_STEP_S
    compute = part.flops / rate
    if not part.shared:
        compute = max(compute, part.bytes / CPU_BANDWIDTH)
    return compute + part.entries * entry_s + part.steps * step_s


def h200_step_s(family: str) -> float:
    """Fixed cost of one optimizer step on the GPU: its torch ops, each dispatched and launched."""
    return OPS_PER_STEP[family] * H200_OP_S


def h200_part_seconds(flops: float, bytes_: float, steps: int, family: str = "mlp") -> float:
    """Seconds of a gradient-trained part on an H200 (ASSUMED rates): the roofline of its GEMMs
    and input traffic, plus a fixed cost per step."""
    compute = flops / (H200_GEMM * H200_EFFICIENCY)
    return max(compute, bytes_ / H200_BANDWIDTH) + steps * h200_step_s(family)


def estimate(spec) -> dict:
    """Estimated wall time of one sweep: ``{"cpu_s": this CPU, "h200_s": one H200}`` in seconds.

    Pseudo-inverse students run on the host CPU in both (float64 SciPy)."""
    from softleak.simulate.gpt2 import GPT2Spec

    if isinstance(spec, GPT2Spec):
        return _gpt2_estimate(spec)
    cpu = sum(cpu_part_seconds(p) for p in parts_of(spec, free_bytes=CPU_FREE_BYTES, device="cpu"))
    gpu = 0.0
    for p in parts_of(spec, free_bytes=H200_FREE_BYTES, device="cuda"):
        if p.family == "pinv":
            gpu += cpu_part_seconds(p)
        else:
            gpu += h200_part_seconds(p.flops, p.bytes, p.steps, p.family)
    return {"cpu_s": cpu, "h200_s": gpu}


# --- GPT-2 classifiers (``simulate.gpt2``: Hugging Face models, one at a time, minibatches) ----
# MEASURED on this CPU (1 thread, load ~2): the tiny config (2 layers, width 128, 5 tokens per
# sequence, c = 50) took 0.45-0.9 s per teacher epoch on 1,000 sequences (batch 64) and ~0.55 ms
# per sample-epoch for students (batch 32, 800 rows): steps are dominated by per-layer Python and
# autograd overhead, ~15 ms per step of 2 layers, and the model below reproduces that.
CPU_GPT2_RATE = 50e9  # FLOP/s of the GEMMs (as the modadd transformer's; ASSUMED for GPT-2 small)
CPU_GPT2_STEP_S = 3e-3  # s per optimizer step: AdamW, clipping, the head, Python
CPU_GPT2_LAYER_STEP_S = 6e-3  # s per step and transformer block (forward + backward ops)
# H200 (ASSUMED): eager torch ops per step, ~250 per block (forward, backward, AdamW foreach)
GPT2_OPS_BASE, GPT2_OPS_PER_LAYER = 150, 250


def _gpt2_parts(spec) -> list[Part]:
    """GPT-2: the teacher, then every student one after another; minibatch steps
    (ceil(rows / batch) per epoch), FLOPs as ``GPT2Spec.work`` (3 x forward per row and epoch,
    plus one evaluation of D_*^T and D_val per model)."""
    f = spec.flops_per_sequence()
    evals = f * (spec.n + spec.n_val)

    def part(role, rows, batch, epochs):
        steps = epochs * math.ceil(rows / batch)
        return Part(role, "gpt2", 3.0 * f * rows * epochs + evals, steps=steps, models=1)

    parts = [part("teachers", spec.n, spec.teacher_batch, spec.teacher_epochs)]
    for rho, _, _ in spec.students():
        parts.append(part("students", spec.n_train(rho), spec.student_batch, spec.student_epochs))
    return parts


def _gpt2_estimate(spec) -> dict:
    """Seconds of a ``GPT2Spec`` on this CPU (measured overheads) and on one H200 (assumed)."""
    cpu = gpu = 0.0
    for p in _gpt2_parts(spec):
        cpu += p.flops / CPU_GPT2_RATE
        cpu += p.steps * (CPU_GPT2_STEP_S + spec.n_layer * CPU_GPT2_LAYER_STEP_S)
        ops = GPT2_OPS_BASE + GPT2_OPS_PER_LAYER * spec.n_layer
        gpu += p.flops / (H200_GEMM * H200_EFFICIENCY) + p.steps * ops * H200_OP_S
    return {"cpu_s": cpu, "h200_s": gpu}


def hours(seconds: float) -> str:
    """A duration for people: "42 s", "4.2 min", "3.1 h", "2.5 days" (n/a if not finite)."""
    if not math.isfinite(seconds):
        return "n/a"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# ---------------------------------------------------------------------------------------------
# counted work (what `softleak figs list` shows; FLOPs only, independent of any device)
# ---------------------------------------------------------------------------------------------
def work_of(spec) -> dict:
    """Counted work of any spec family: ``teachers``, ``students`` and training ``flops``
    (multiply-adds x 2, forward and backward, full batch)."""
    if not hasattr(spec, "teacher_sizes"):  # Toy2DSpec, ModAddSpec, GPT2Spec count their own
        return spec.work()
    from softleak.simulate.chunks import students_per_teacher

    sizes = spec.teacher_sizes()
    teachers = len(sizes) * spec.seeds
    per_teacher = students_per_teacher(spec)
    flops = 0.0
    for d, c, n in sizes:
        k = 1 if spec.single_logit else c
        tw = _mlp_weights(d, spec.p_teacher, k)
        flops += spec.seeds * 3 * 2 * tw * n * spec.teacher_epochs
        if not spec.single_logit:
            sw = _mlp_weights(d, spec.p_student, c)
            mean_rho = sum(spec.rho) / len(spec.rho)
            flops += spec.seeds * per_teacher * 3 * 2 * sw * mean_rho * n * spec.student_epochs
    return {"teachers": teachers, "students": teachers * per_teacher, "flops": flops}


def _mlp_weights(d: int, hidden: tuple[int, ...], k: int) -> int:
    sizes = [d, *hidden, k]
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
