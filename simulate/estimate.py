"""How long a preset takes: its work, counted the way the engine batches it, over device rates.

The work of a run is split into *parts*, each a sequence of optimizer steps that run one after
the other on one device (``parts_of``; every family counts its own, ``Family.parts`` in the
registry ``simulate.families``): e.g. for a sweep a teacher batch (per-replica inputs through
``bmm``, or one shared input matrix with nested data), a student batch (every student of a batch
reads the same rows; ``simulate.chunks.student_batches``), or a pseudo-inverse group (float64 on
the host). Per part:

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
bytes / H200_BANDWIDTH) + steps * step_s``, pinv groups on the host CPU. ``benchmarks.run_all``
projects the paper grids through ``estimate`` too, so its numbers and ``softleak figs list`` agree.

A family whose runs the replica engine does not train (GPT-2: Hugging Face models in
minibatches) prices its parts with a time model of its own (``Family.seconds``,
``simulate.gpt2.family``). Estimates ignore data generation, teacher outputs, the final evaluation and the store (seconds per
unit), and early stopping (an upper bound where a spec stops early).

Measured rates (``load_rates``): a rates file -- written by ``python -m benchmarks.run_all`` (this
CPU; also to ``default_rates_path()``, which ``softleak figs list`` reads by default) or by
``python -m benchmarks.gpu_check`` (a CUDA device) -- holds the FLOP/s measured on workload slices
and each slice's geometry. ``estimate(spec, rates=...)`` then divides every part's modelled time by
``measured rate / modelled rate`` at the slice of the part's kind (``CALIBRATION``): the model keeps
its shape (GEMMs, elementwise entries, fixed cost per step), the measured machine sets its speed;
where a kind has several measured slices, a part takes the one nearest to it in FLOPs per step and
model.
Without a file the constants below are used unchanged.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

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
#: The constants above were fitted on 2-core Xeons under load 1.5-2; these factors (modelled
#: seconds x factor) calibrate them to an idle machine of the development kind. CALIBRATED
#: 2026-12-07 on one end-to-end ``softleak figs all --preset quick`` (2 workers) on an idle AMD EPYC
#: (2 cores, AVX512-BF16, no AMX), 29.6 min wall: per family, measured / modelled seconds summed
#: over its sweeps: mlp 0.58 (13 sweeps, 0.53-0.63 for the large ones), transformer 0.72 (the
#: modadd transformer), linear 0.70 (11 sweeps, 0.48-1.09), gpt2 0.67; pinv 1.07 (left at 1).
CPU_TIME_SCALE = {"mlp": 0.58, "transformer": 0.72, "linear": 0.70, "gpt2": 0.67, "pinv": 1.0}
#: Where the built-in rates come from (``softleak figs list`` says it when no measured rates
#: file is used).
BUILT_IN_RATES = (
    "fitted on 2-core Xeons, calibrated 2026-12-07 to an idle end-to-end quick run on an AMD EPYC "
    "(simulate/estimate.py)"
)

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
    from softleak.simulate.data import train_per_class

    return c * train_per_class(n // c, rho)


@dataclass(frozen=True)
class Part:
    """Work that runs as one sequence of steps on one device (see the module docstring)."""

    role: str  # teachers | students | pinv
    family: str  # linear | mlp | transformer | pinv (| gpt2: its family's own time model)
    flops: float  # matrix-multiply FLOPs, all steps
    entries: float = 0.0  # hidden and logit values written, all steps
    bytes: float = 0.0  # input-matrix traffic, all steps
    steps: int = 0  # sequential optimizer steps (pinv: 1 per group)
    shared: bool = True  # one input matrix for the whole batch (False: per-replica inputs)
    models: int = 0


def parts_of(spec, *, free_bytes: float = CPU_FREE_BYTES, device: str = "cpu") -> list[Part]:
    """The parts of any registered family's spec (``simulate.families``: ``Family.parts``) as
    the engine runs them on ``device`` with ``free_bytes`` of memory (which sets the student
    batch sizes)."""
    from softleak.simulate.families import family_of

    return family_of(spec).parts(spec, free_bytes=free_bytes, device=device)


# --- timing -----------------------------------------------------------------------------------
def cpu_part_seconds(part: Part, rates: Rates | None = None, precision: str = "fp32") -> float:
    """Seconds of ``part`` on this CPU (1 process, 1 thread) at the measured rates (the constants
    above, or scaled by a CPU rates file: see ``Rates.speed``)."""
    seconds = _cpu_model_seconds(part)
    if rates is not None and rates.device == "cpu":
        seconds /= rates.speed(calibration_key(part), precision, part_size(part))
    return seconds


def _cpu_model_seconds(part: Part) -> float:
    return CPU_TIME_SCALE.get(part.family, 1.0) * _cpu_fitted_seconds(part)


def _cpu_fitted_seconds(part: Part) -> float:
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


def estimate(spec, rates: Rates | list[Rates] | None = None) -> dict:
    """Estimated wall time of one sweep: ``{"cpu_s": this CPU, "h200_s": one H200}`` in seconds.

    Pseudo-inverse students run on the host CPU in both (float64 SciPy). ``rates``: measured rates
    (``load_rates``; a CPU file scales the CPU column and the pinv parts, a CUDA file the GPU
    column). A family with a time model of its own (``Family.seconds``: GPT-2) gives its own."""
    from softleak.simulate.families import family_of

    own = family_of(spec).seconds(spec, rates)
    if own is not None:
        return own
    cpu_rates, gpu_rates = _by_device(rates)
    precision = getattr(spec, "precision", "fp32")
    cpu = sum(
        cpu_part_seconds(p, cpu_rates, precision)
        for p in parts_of(spec, free_bytes=CPU_FREE_BYTES, device="cpu")
    )
    gpu = 0.0
    for p in parts_of(spec, free_bytes=H200_FREE_BYTES, device="cuda"):
        if p.family == "pinv":
            gpu += cpu_part_seconds(p, cpu_rates, precision)
        else:
            seconds = h200_part_seconds(p.flops, p.bytes, p.steps, p.family)
            if gpu_rates is not None:
                seconds /= gpu_rates.speed(calibration_key(p), precision, part_size(p))
            gpu += seconds
    return {"cpu_s": cpu, "h200_s": gpu}


# --- measured rates ---------------------------------------------------------------------------
#: Which measured slice calibrates which kind of part (the first one in the file that is usable):
#: a part's kind is its family, with "-own-inputs" for linear/MLP parts whose replicas read their
#: own inputs (teachers without nested data, toy2d, the modadd MLP) -- memory traffic, not GEMMs.
CALIBRATION = {
    "linear": ("multinomial-tau/students",),
    "linear-own-inputs": ("logistic-pinv/teachers", "multinomial-tau/teachers"),
    "mlp": ("mlp-paper-slice/students", "mlp-quick-scale/students"),
    "mlp-own-inputs": ("mlp-paper-slice/teachers",),
    "transformer": ("modadd-transformer/students", "modadd-transformer/teachers"),
    "pinv": ("logistic-pinv/students",),
}
#: The precision a part falls back to when its spec's precision was not measured.
BASE_PRECISION = {"pinv": "fp64"}


class RatesError(ValueError):
    """A rates file that cannot be used (missing, not JSON, not in the rates format): one line."""


def default_rates_path() -> Path:
    """Where ``benchmarks.run_all`` leaves its last measured rates (``softleak figs list`` reads
    them by default): ``$XDG_CACHE_HOME/softleak/rates.json``, ``~/.cache/softleak/rates.json``."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "softleak" / "rates.json"


def busy_reason(meta: dict) -> str | None:
    """Why rates with this metadata were measured on a busy machine (a 1-minute load average
    above half its cores before or during the run: other work then sets the rates), else None."""
    loads = meta.get("load_average")
    loads = [loads] if isinstance(loads, (int, float)) else list(loads or [])
    loads = [x for x in loads if isinstance(x, (int, float))]
    cores = meta.get("cores") or os.cpu_count() or 1
    if meta.get("busy") or any(x > cores / 2 for x in loads):
        top = f"up to {max(loads):g}" if loads else "high"
        return f"measured on a busy machine (load average {top} on {cores} cores)"
    return None


def cached_rates(warn: Callable[[str], None] | None = None) -> list[Rates]:
    """The last measured rates (:func:`default_rates_path`) when that file reads and was measured
    on an idle machine, else none: what ``softleak figs list`` and the runs' own time estimates
    use by default. A file that does not read, or that a busy machine wrote (:func:`busy_reason`),
    is a warning (``warn(text)``; default: logged) and the built-in rates are used; ``figs list
    --rates FILE`` still reads it when asked."""
    path = default_rates_path()
    if not path.is_file():
        return []
    try:
        rates = load_rates(path)
    except RatesError as err:
        (warn or log.warning)(f"{err}; using the built-in CPU rates")
        return []
    busy = busy_reason(rates.meta)
    if busy is not None:
        (warn or log.warning)(
            f"rates in {path} were {busy}: using the built-in CPU rates (rerun python -m "
            "benchmarks.run_all on an idle machine, or pass figs list --rates to use them)"
        )
        return []
    return [rates]


def calibration_key(part: Part) -> str:
    """The kind of ``part`` in ``CALIBRATION``."""
    if part.family in ("linear", "mlp") and not part.shared:
        return f"{part.family}-own-inputs"
    return part.family


@dataclass(frozen=True)
class Calibration:
    """One measured slice against the model: ``speed`` = measured rate / modelled rate."""

    workload: str  # "mlp-paper-slice/students"
    precision: str
    measured: float  # FLOP/s
    modelled: float  # FLOP/s the constants give for the same slice on the same device kind
    size: float = 0.0  # FLOPs of one step of one model of the slice (to pick the nearest)

    @property
    def speed(self) -> float:
        return self.measured / self.modelled


@dataclass(frozen=True)
class Rates:
    """Measured rates of one device (``load_rates``)."""

    device: str  # "cpu" or "cuda": which column they calibrate
    source: str  # the file (or "<dict>")
    calibrations: dict = field(default_factory=dict)  # (kind, precision) -> [Calibration, ...]
    rejected: tuple[str, ...] = ()  # rows not used, with the reason
    meta: dict = field(default_factory=dict)  # what the file says about its run (load, date)

    def calibration(
        self, key: str, precision: str = "fp32", size: float | None = None
    ) -> Calibration | None:
        """The slice that calibrates parts of kind ``key`` at ``precision`` (else the kind's
        base precision): the one nearest in FLOPs per step and model to ``size`` when given, else
        the first of ``CALIBRATION``'s order."""
        base = BASE_PRECISION.get(key, "fp32")
        found = self.calibrations.get((key, precision)) or self.calibrations.get((key, base))
        if not found:
            return None
        if size is None or size <= 0:
            return found[0]
        return min(found, key=lambda c: abs(math.log(max(c.size, 1.0) / size)))

    def speed(self, key: str, precision: str = "fp32", size: float | None = None) -> float:
        """How much faster than the constants parts of kind ``key`` run (1: not measured)."""
        cal = self.calibration(key, precision, size)
        return cal.speed if cal is not None else 1.0

    def provenance(self) -> str:
        """Where these rates come from: when and on which device they were measured."""
        where = self.meta.get("device_name") or self.device
        when = self.meta.get("written") or "an unknown date"
        busy = busy_reason(self.meta)
        return f"measured {when} on {where} ({self.source})" + (f"; {busy}" if busy else "")

    def summary(self) -> str:
        """One line: the speed of every measured slice per kind."""
        bits = []
        for (key, p), cals in sorted(self.calibrations.items()):
            tag = "" if p in ("fp32", "fp64") else " " + p
            speeds = "/".join(f"x{c.speed:.2g}" for c in cals)
            bits.append(f"{key}{tag} {speeds}")
        return ", ".join(bits) or "no usable rows"


def part_size(part: Part) -> float:
    """FLOPs of one step of one model of ``part`` (what ``Rates.calibration`` matches)."""
    return part.flops / max(part.steps, 1) / max(part.models, 1)


def _by_device(rates) -> tuple[Rates | None, Rates | None]:
    if rates is None:
        return None, None
    items = [rates] if isinstance(rates, Rates) else list(rates)
    cpu = next((r for r in items if r.device == "cpu"), None)
    gpu = next((r for r in items if r.device != "cpu"), None)
    return cpu, gpu


def load_rates(path: str | os.PathLike) -> Rates:
    """Read a rates file (``benchmarks.run_all --json`` or ``benchmarks.gpu_check --out``);
    ``RatesError`` with one line if it is missing or malformed."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise RatesError(f"rates file {path}: {err.strerror or err}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise RatesError(f"rates file {path} is not JSON ({err.msg}, line {err.lineno})") from None
    return rates_from_dict(data, str(path))


def rates_from_dict(data, source: str = "<dict>") -> Rates:
    """``Rates`` from the parsed JSON of a rates file (see ``load_rates``)."""
    if isinstance(data, dict) and isinstance(data.get("rates"), dict):
        data = data["rates"]  # a gpu_check report holds its rates under "rates"
    if not isinstance(data, dict) or not isinstance(data.get("workloads"), list):
        raise RatesError(f"rates file {source} has no 'workloads' list: not a rates file")
    gemm = data.get("gemm")
    if not isinstance(gemm, dict) or not all(_number(v) for v in gemm.values()):
        raise RatesError(f"rates file {source} has no 'gemm' table of numbers: not a rates file")
    device = "cpu" if str(data.get("device", "cpu")).startswith("cpu") else "cuda"
    calibrations: dict = {}
    rejected = []
    for i, row in enumerate(data["workloads"]):
        cal, why = _calibration(row, gemm, device, source, i)
        if cal is None:
            if why:
                rejected.append(why)
            continue
        for key, names in CALIBRATION.items():
            if cal.workload in names:
                found = calibrations.setdefault((key, cal.precision), [])
                found.append(cal)
                found.sort(key=lambda c, names=names: names.index(c.workload))
    meta = {k: v for k, v in data.items() if k not in ("workloads", "gemm")}
    return Rates(device, source, calibrations, tuple(rejected), meta)


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _calibration(row, gemm: dict, device: str, source: str, i: int):
    """(Calibration, None) for a usable row; (None, reason) for one measured wrong; (None, None)
    for a row that calibrates nothing (fused steps, other workloads)."""
    if not isinstance(row, dict) or not {"workload", "part", "precision"} <= set(row):
        raise RatesError(f"rates file {source}: workload row {i} lacks workload/part/precision")
    name = f"{row['workload']}/{row['part']}"
    if row.get("fused") or not any(name in names for names in CALIBRATION.values()):
        return None, None
    rate, precision = row.get("gflop_per_s"), row["precision"]
    if row.get("status", "ok") != "ok" or rate is None:
        return None, f"{name} {precision}: {row.get('status', 'no rate')}"
    if not _number(rate):
        raise RatesError(f"rates file {source}: {name} gflop_per_s is not a positive number")
    peak = gemm.get(precision)
    if peak is not None and rate > peak:
        return None, f"{name} {precision}: {rate:.4g} GFLOP/s above the GEMM peak {peak:.4g}"
    geometry = row.get("slice")
    if not isinstance(geometry, dict):
        raise RatesError(f"rates file {source}: {name} has no usable 'slice' geometry")
    try:
        part = Part(
            role=row["part"],
            family=str(geometry["family"]),
            flops=float(geometry["flops"]),
            entries=float(geometry.get("entries", 0.0)),
            bytes=float(geometry.get("bytes", 0.0)),
            steps=int(geometry.get("steps", 1)),
            shared=bool(geometry.get("shared", True)),
        )
    except (TypeError, KeyError, ValueError):
        raise RatesError(f"rates file {source}: {name} has no usable 'slice' geometry") from None
    if part.flops <= 0:
        raise RatesError(f"rates file {source}: {name} slice has no FLOPs")
    if device == "cpu":
        model_s = _cpu_model_seconds(part)
    elif part.family == "pinv":
        return None, None  # pinv students stay on the host CPU
    else:
        model_s = h200_part_seconds(part.flops, part.bytes, part.steps, part.family)
    models = row.get("models") or geometry.get("models") or 1
    size = part.flops / max(part.steps, 1) / max(int(models), 1)
    return Calibration(name, precision, rate * 1e9, part.flops / model_s, size), None


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
    """Counted work of any registered family's spec (``Family.work``): ``teachers``,
    ``students`` and training ``flops`` (multiply-adds x 2, forward and backward, full batch)."""
    from softleak.simulate.families import family_of

    return family_of(spec).work(spec)
