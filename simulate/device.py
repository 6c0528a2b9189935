"""Device and thread choices.

On a 2-core CPU, small-tensor loops on 2 torch threads can run ~10x slower than on 1 when another
process is busy (thread hand-off), while large shared GEMMs gain up to ~2x from 2 threads on an
idle machine. Measured here with another process busy: 80 multinomial students (d = 1000) ran at
78 GFLOP/s on 1 thread and 21 GFLOP/s on 2 (every elementwise op paid ~7 ms of hand-off).
``threads_for`` therefore uses one thread for small steps, and all cores for large steps only when
the machine looked idle when first asked; ``--threads`` overrides it.
"""

from __future__ import annotations

import functools
import os

import torch

# Below this many FLOPs per training step, one thread beats two on the development CPU
# (measured: a d = 200 logistic teacher step is ~0.1 MFLOP and ran 0.08 ms on 1 thread, up to
# 8 ms on 2 with the other core busy; an 80-student step at d = 1000 is ~1 GFLOP and gains ~1.8x).
SMALL_STEP_FLOPS = 5e7


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``. Raises ValueError for unusable choices."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"unknown device {device!r}: use auto, cpu or cuda")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device} asked for, but torch sees no CUDA device")
        if device != "cuda":
            index = device.partition(":")[2]
            count = torch.cuda.device_count()
            if not index.isdigit() or int(index) >= count:
                raise ValueError(
                    f"--device {device}: torch sees {count} CUDA device(s), 0..{count - 1}"
                )
    return device


@functools.lru_cache(maxsize=1)
def cpu_name() -> str:
    """This CPU's model name, for messages and records (never to decide what it can do: that is
    probed, ``simulate.precision_probe``)."""
    import platform

    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_name(device: str) -> str:
    """The model name of ``device`` (a CUDA device's, or this CPU's)."""
    if str(device).startswith("cuda"):
        if not torch.cuda.is_available():
            return "no CUDA device"
        return torch.cuda.get_device_name(torch.device(device))
    return cpu_name()


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def idle_cores() -> float:
    """Cores not busy with other work, from the 1-minute load average (read once per process)."""
    try:
        return max(0.0, cpu_count() - os.getloadavg()[0])
    except OSError:  # pragma: no cover - no load average on this platform
        return float(cpu_count())


def threads_for(step_flops: float, requested: int | None = None) -> int:
    """Torch intra-op threads for a workload whose one step costs ``step_flops``."""
    if requested:
        return requested
    if step_flops < SMALL_STEP_FLOPS:
        return 1
    return cpu_count() if idle_cores() >= cpu_count() - 0.5 else 1


class thread_count:
    """Context manager: run a block with the given number of torch AND BLAS threads.

    NumPy/SciPy's BLAS suffers the same hand-off: a 1000 x 200 pseudo-inverse took 331 ms on 2
    OpenBLAS threads with another process busy, 3.2 ms on 1.
    """

    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        from threadpoolctl import threadpool_limits

        self.old = torch.get_num_threads()
        torch.set_num_threads(self.n)
        self.blas = threadpool_limits(limits=self.n, user_api="blas")

    def __exit__(self, *exc):
        self.blas.restore_original_limits()
        torch.set_num_threads(self.old)
