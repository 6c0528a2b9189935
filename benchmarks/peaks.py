"""The precisions the suite times and their GEMM peaks: the "gemm" table of the rates file is
the peak of a ``size``^3 GEMM per precision, measured before and after the workloads (the larger
used), on the run's threads."""

from __future__ import annotations

from benchmarks.common import gemm_timing, reduced_precisions
from benchmarks.timed_run import Bench
from softleak.simulate.device import thread_count


def peak_precisions(device: str = "cpu") -> tuple[str, ...]:
    """The precisions whose GEMM peaks form the "gemm" table (the engine's operands): float64,
    float32 and each reduced precision this machine computes natively (its probe decides)."""
    return ("fp64", "fp32", *reduced_precisions(device))


def timed_precisions(device: str = "cpu") -> tuple[str, ...]:
    """The precisions the workloads are timed at: fp32 and the natively computed reduced ones."""
    return ("fp32", *reduced_precisions(device))


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
