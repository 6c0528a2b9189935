"""Device and thread choices.

On a 2-core CPU, small-tensor loops on 2 torch threads can run ~10x slower than on 1 when another
process is busy (thread hand-off), while large shared GEMMs gain ~2x from 2 threads. ``threads_for``
picks per workload by the work of one step; ``--threads`` overrides it.
"""

from __future__ import annotations

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
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but torch sees no CUDA device")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"unknown device {device!r}: use auto, cpu or cuda")
    return device


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def threads_for(step_flops: float, requested: int | None = None) -> int:
    """Torch intra-op threads for a workload whose one step costs ``step_flops``."""
    if requested:
        return requested
    return 1 if step_flops < SMALL_STEP_FLOPS else cpu_count()


class thread_count:
    """Context manager: run a block with the given number of torch threads."""

    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        self.old = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        torch.set_num_threads(self.old)
