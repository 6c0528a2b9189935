"""Helpers shared by the benchmark scripts: honest timing, the GEMM peaks, the reference-style loop.

Timing rules (every rate the suite prints or writes comes through here):

- a *timing* repeats a call until it lasts at least ``MIN_TIMING_S`` (``time_call``); a rate is the
  median of at least ``TIMINGS`` such timings, never a single short one;
- a per-epoch time from two run lengths (``per_epoch``: set-up cancels) needs the difference of the
  two medians to be at least ``MIN_TIMING_S`` itself; the longer run grows until it is, and when it
  never is the result is *unmeasurable* (``Timing.seconds is None``), never a clamped 1e-9;
- a rate above the same-precision GEMM peak of the same run is a *measurement error*
  (``judge``): printed as such and used in no projection.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

MIN_TIMING_S = 0.5  # shortest timing that is trusted (s)
TIMINGS = 3  # timings per measurement (the median is reported)
MAX_CALLS = 100_000  # calls in one timing before a call is declared too fast to time

# Status of a measured rate.
OK, UNMEASURABLE, MEASUREMENT_ERROR = "ok", "unmeasurable", "measurement error"


@dataclass(frozen=True)
class Timing:
    """Median seconds per call (or per epoch) of a measurement; ``None`` when unmeasurable."""

    seconds: float | None
    timings: tuple[float, ...] = ()  # the accepted timings (s), each >= the minimum
    calls: int = 0  # calls in the last accepted timing
    note: str = ""  # why it is unmeasurable, or how it was derived

    @property
    def ok(self) -> bool:
        return self.seconds is not None and self.seconds > 0 and math.isfinite(self.seconds)


def _no_sync() -> None:
    pass


def time_call(
    fn: Callable[[], object],
    *,
    min_s: float = MIN_TIMING_S,
    timings: int = TIMINGS,
    warm_up: bool = True,
    clock: Callable[[], float] = time.perf_counter,
    sync: Callable[[], None] = _no_sync,
    max_calls: int = MAX_CALLS,
) -> Timing:
    """Median seconds per call of ``fn()``: ``timings`` timings, each calling ``fn`` again and
    again until it lasts at least ``min_s`` (``sync`` after every call: a CUDA device's queue).
    Unmeasurable (``seconds=None``) when ``max_calls`` calls do not reach ``min_s``."""
    if warm_up:
        fn()
        sync()
    per_call, spans, calls = [], [], 0
    for _ in range(timings):
        t0 = clock()
        calls, elapsed = 0, 0.0
        while elapsed < min_s and calls < max_calls:
            fn()
            sync()
            calls += 1
            elapsed = clock() - t0
        if elapsed < min_s:
            return Timing(
                None, note=f"{calls} calls took {elapsed:.3g} s < {min_s:g} s: too fast to time"
            )
        per_call.append(elapsed / calls)
        spans.append(elapsed)
    return Timing(statistics.median(per_call), tuple(spans), calls, "median per call")


def per_epoch(
    run: Callable[[int], object],
    short: int,
    long: int,
    *,
    min_s: float = MIN_TIMING_S,
    timings: int = TIMINGS,
    rounds: int = 5,
    max_epochs: int | None = None,
    clock: Callable[[], float] = time.perf_counter,
    sync: Callable[[], None] = _no_sync,
) -> Timing:
    """Seconds per epoch of ``run(epochs)`` from two run lengths, set-up cancelled:
    ``(t(long) - t(short)) / (long - short)`` with both ``time_call`` medians. The difference
    must itself last ``min_s``: otherwise ``long`` grows (``rounds`` times, to ``max_epochs`` at
    most) and the result is unmeasurable if it never does. (Five rounds: with three, a dry run
    on a loaded 2-core machine once ended at 0.047 s against 0.05, its growth aimed by a round
    whose epochs ran slower than the next.)"""
    if long <= short:
        raise ValueError("per_epoch needs long > short")
    opts = dict(min_s=min_s, timings=timings, clock=clock, sync=sync)
    t_short = time_call(lambda: run(short), **opts)
    if not t_short.ok:
        return Timing(None, note=f"{short}-epoch run: {t_short.note}")
    diff, warm = 0.0, True
    for _ in range(rounds):
        t_long = time_call(lambda n=long: run(n), warm_up=warm, **opts)
        warm = False
        if not t_long.ok:
            return Timing(None, note=f"{long}-epoch run: {t_long.note}")
        diff = t_long.seconds - t_short.seconds
        if diff >= min_s:
            return Timing(
                diff / (long - short),
                t_long.timings,
                t_long.calls,
                f"({long} - {short})-epoch difference {diff:.3g} s",
            )
        span = long - short
        grow = 20 if diff <= 0 else min(20, max(2, math.ceil(1.5 * min_s / diff)))
        new = short + span * grow
        if max_epochs is not None:
            new = min(new, max_epochs)
        if new <= long:
            break
        long = new
    return Timing(
        None,
        note=f"the ({long} - {short})-epoch difference {diff:.3g} s stayed below {min_s:g} s",
    )


def judge(rate: float | None, peak: float | None) -> str:
    """``OK``, ``UNMEASURABLE`` (no rate) or ``MEASUREMENT_ERROR`` (above the same-precision
    GEMM peak measured in the same run: not physical)."""
    if rate is None or not math.isfinite(rate) or rate <= 0:
        return UNMEASURABLE
    if peak is not None and rate > peak:
        return MEASUREMENT_ERROR
    return OK


def median_time(fn, repeats: int = 3) -> float:
    """Median seconds per call of ``fn()`` (``time_call``: timings of >= ``MIN_TIMING_S``); NaN
    when unmeasurable."""
    t = time_call(fn, timings=max(repeats, TIMINGS))
    return t.seconds if t.ok else float("nan")


#: GEMM operands per precision: the engine's (fp64, fp32, and bf16 / bf16r = float32 tensors
#: under ``precision_scope``, tf32 likewise on CUDA) and, for reference, bf16 tensors.
GEMM_PRECISIONS = ("fp64", "fp32", "tf32", "bf16", "bf16r", "bf16-tensors")
REDUCED = ("tf32", "bf16", "bf16r")


def reduced_precisions(device: str = "cpu") -> tuple[str, ...]:
    """The reduced precisions this machine computes natively on ``device`` (its probe decides:
    ``simulate.precision.resolve``); the benchmarks time these beside fp32."""
    from softleak.simulate.precision import resolve

    found = []
    for precision in REDUCED:
        try:
            mechanism = resolve(precision, device)
        except ValueError:  # tf32 on a CPU
            continue
        if mechanism is not None and mechanism.native:
            found.append(precision)
    return tuple(found)


def gemm_timing(
    precision: str = "fp32",
    size: int = 2048,
    device: str = "cpu",
    *,
    min_s: float = MIN_TIMING_S,
    timings: int = TIMINGS,
) -> tuple[float | None, Timing]:
    """FLOP/s of a ``size``^3 matrix multiply with the operands the engine uses at ``precision``
    (see ``GEMM_PRECISIONS``); ``(None, timing)`` when unmeasurable."""
    from softleak.simulate.precision import precision_scope

    dtype = {"fp64": torch.float64, "bf16-tensors": torch.bfloat16}.get(precision, torch.float32)
    scope = precision if precision in REDUCED else "fp32"
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else _no_sync
    with precision_scope(scope, device):
        t = time_call(lambda: a @ b, min_s=min_s, timings=timings, sync=sync)
    return (2 * size**3 / t.seconds if t.ok else None), t


def gemm_flops(size: int = 4096, threads: int | None = None, dtype=torch.float32) -> float:
    """FLOP/s of a large square matrix multiply on this CPU (the roofline the workloads aim at);
    NaN when unmeasurable."""
    precision = {torch.float64: "fp64", torch.bfloat16: "bf16-tensors"}.get(dtype, "fp32")
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        rate, _ = gemm_timing(precision, size)
    finally:
        torch.set_num_threads(old)
    return rate if rate is not None else float("nan")


def reference_student_loop(X, soft_list, epochs: int, lr: float = 1e-4, hidden: int = 0) -> float:
    """One model at a time, as the reference did: nn.Linear (or a 1-hidden-layer MLP),
    torch.optim.Adam, CE with probability targets, full batch. Returns seconds per student-epoch."""
    total = reference_loop([X] * len(soft_list), soft_list, epochs, lr=lr, hidden=hidden)
    return total / (len(soft_list) * epochs)


def reference_loop(
    X_list, target_list, epochs: int, lr: float = 1e-4, hidden: int = 0, bias: bool | None = None
) -> float:
    """Train one model per (X, targets) pair, one after the other, as the reference's code did:
    ``nn.Linear(d, k, bias=False)`` (or ``nn.Sequential(Linear, ReLU, Linear)`` with biases when
    ``hidden``), ``torch.optim.Adam``, full batch. The loss follows the targets: float (n, k)
    probabilities -> ``F.cross_entropy`` with probability targets; long (n,) -> ``F.cross_entropy``
    on hard labels; float (n,) -> ``F.binary_cross_entropy_with_logits`` (single logit).
    Returns the total seconds."""
    bias = bool(hidden) if bias is None else bias
    t0 = time.perf_counter()
    for X, targets in zip(X_list, target_list, strict=True):
        d = X.shape[1]
        single = targets.dim() == 1 and targets.is_floating_point()
        k = 1 if single else (targets.shape[1] if targets.dim() == 2 else int(targets.max()) + 1)
        torch.manual_seed(0)
        if hidden:
            model = torch.nn.Sequential(
                torch.nn.Linear(d, hidden, bias=bias),
                torch.nn.ReLU(),
                torch.nn.Linear(hidden, k, bias=bias),
            )
        else:
            model = torch.nn.Linear(d, k, bias=bias)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        for _ in range(epochs):
            opt.zero_grad()
            out = model(X)
            if single:
                loss = F.binary_cross_entropy_with_logits(out[:, 0], targets)
            else:
                loss = F.cross_entropy(out, targets)
            loss.backward()
            opt.step()
    return time.perf_counter() - t0
