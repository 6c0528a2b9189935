"""Replica batches sized to the free memory of the device.

All students of one teacher share its input matrix, so the more of them train in one batch, the
fewer passes over the inputs a sweep makes. How many fit is set by memory: every student carries its
own targets, logits, gradients and Adam state, and an MLP student its hidden activations too. This
module estimates those bytes from the spec (``student_bytes``; ``shared_bytes`` for what the batch
shares), reads the free memory of the device (``free_bytes``), and returns the largest batch that
fits (``replicas_that_fit``). ``simulate.sweep`` trains ``min(spec.max_replicas, that)`` students at
a time; the numbers do not depend on the batch size (batched == alone, tested), only the speed does.

Free memory: on CUDA, ``torch.cuda.mem_get_info`` plus what this process's caching allocator holds
but does not use; on CPU, ``MemAvailable`` of ``/proc/meminfo`` (no psutil), capped by a Dask
worker's memory limit when running inside one. Only a fraction of it is budgeted
(``BUDGET_FRACTION``): other processes (other workers on the same host) and allocator fragmentation
need the rest.
"""

from __future__ import annotations

import logging
import math
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the spec module imports nothing from here
    from softleak.simulate.spec import SweepSpec

log = logging.getLogger(__name__)

# Fraction of the free memory a replica batch may take. CPU: conservative, since other processes
# (Dask workers, the user's) share the RAM and MemAvailable moves; CUDA: the device is ours, but
# the caching allocator fragments and cuBLAS needs workspace.
BUDGET_FRACTION = {"cpu": 0.5, "cuda": 0.8}

# Safety factor on the estimate: temporaries of elementwise ops that the count below misses
# (e.g. an expression a * b - c allocates one buffer per operator) and allocator rounding.
SLACK = 1.25

DTYPE_BYTES = {"float32": 4, "float64": 8}


def student_bytes(spec: SweepSpec, d: int, c: int, n: int) -> int:
    """Bytes one student replica adds to a batch on one teacher of size (d, c, n).

    Counted (b = bytes of spec.dtype; m = rows the batch trains on, at most max(rho) n; P = the
    student's parameters; p_i its hidden widths):
    - parameters, gradients, Adam's two moments and its denominator temporary: 5 P b;
    - training step: targets and their copy in the logits' layout, logits, softmax, dL/dlogits and
      ~3 elementwise temporaries: 8 m c b; weights, mask and row sums: 4 m b;
    - hidden layers: activation kept for backward, pre-activation, dL/dh, its product with the ReLU
      mask and the mask itself: m p_i (4 b + 1);
    - evaluation on the teacher's n rows: the float64 soft targets kept all run (n c 8), logits,
      their float64 copy and the float64 log-softmax and product (n c (b + 24)), hidden activations
      (2 n p_i b), train/test masks (2 n).
    """
    b = DTYPE_BYTES[spec.dtype]
    m = math.ceil(max(spec.rho) * n)
    widths = [d, *spec.p_student, c]
    weights = sum(a * o for a, o in zip(widths[:-1], widths[1:], strict=True))
    biases = sum(widths[1:]) if spec.has_bias else 0
    params = weights + biases
    total = 5 * params * b
    total += 8 * m * c * b + 4 * m * b
    total += sum(m * p * (4 * b + 1) for p in spec.p_student)
    total += n * c * 8 + n * c * (b + 24) + sum(2 * n * p * b for p in spec.p_student) + 2 * n
    return int(SLACK * total)


def shared_bytes(spec: SweepSpec, d: int, c: int, n: int) -> int:
    """Bytes the batch shares, whatever its size: inputs on the device (all n rows, the student
    rows, validation inputs) and the teacher's float64 logits."""
    b = DTYPE_BYTES[spec.dtype]
    m = math.ceil(max(spec.rho) * n)
    return int(SLACK * ((n + m + spec.n_val) * d * b + n * c * 8))


def teacher_bytes(spec: SweepSpec, d: int, c: int, n: int) -> int:
    """Bytes one teacher of size (d, c, n) takes while it trains, alone in its batch: its data as
    drawn (float64, plus a standardised copy), on the device (inputs and validation inputs), and
    its parameters, gradients, Adam state and activations on its n rows (as ``student_bytes``)."""
    b = DTYPE_BYTES[spec.dtype]
    k = 1 if spec.single_logit else c
    data = (n + spec.n_val) * d * (16 + b)
    widths = [d, *spec.p_teacher, k]
    params = sum(a * o for a, o in zip(widths[:-1], widths[1:], strict=True)) + sum(widths[1:])
    steps = 5 * params * b + 8 * n * k * b + sum(n * p * (4 * b + 1) for p in spec.p_teacher)
    return int(SLACK * (data + steps))


def unit_bytes(spec: SweepSpec, d: int, c: int, n: int) -> int:
    """Peak bytes of the smallest unit of work on a (d, c, n) teacher: the teacher while it
    trains, or its data with one student batch of one (whichever is larger)."""
    student = shared_bytes(spec, d, c, n) + (
        0 if spec.single_logit else student_bytes(spec, d, c, n)
    )
    return max(teacher_bytes(spec, d, c, n), student)


def free_bytes(device: str = "cpu") -> int:
    """Bytes free for new tensors on ``device`` (see the module docstring)."""
    if str(device).startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        idle = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + max(0, idle))
    avail = _meminfo_available()
    limit = _dask_worker_memory_limit()
    return int(min(avail, limit) if limit else avail)


def _meminfo_available(path: str = "/proc/meminfo") -> int:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 * 2**30  # no /proc (not Linux): assume a small machine


def _dask_worker_memory_limit() -> int | None:
    """The memory limit of the Dask worker this code runs in (None outside a worker)."""
    if "distributed" not in sys.modules:
        return None
    try:
        from distributed import get_worker

        limit = get_worker().memory_manager.memory_limit
    except (ValueError, AttributeError):  # not inside a worker
        return None
    return int(limit) if limit else None


def replicas_that_fit(
    spec: SweepSpec, d: int, c: int, n: int, *, free: int | None = None, device: str | None = None
) -> int:
    """Most students of one (d, c, n) teacher that fit in one batch on the device (at least 1).

    ``free``: free bytes (default: ``free_bytes(device)``, device defaulting to ``spec.device``).
    """
    device = spec.device if device is None else device
    if free is None:
        free = free_bytes(device)
    kind = "cuda" if str(device).startswith("cuda") else "cpu"
    budget = BUDGET_FRACTION[kind] * free - shared_bytes(spec, d, c, n)
    fit = int(budget // student_bytes(spec, d, c, n))
    if fit < 1:
        log.warning(
            "one student of (d=%d, c=%d, n=%d) needs ~%.2g GB, more than the %.2g GB budgeted on "
            "%s; trying one at a time",
            d,
            c,
            n,
            student_bytes(spec, d, c, n) / 1e9,
            max(budget, 0) / 1e9,
            device,
        )
    return max(1, fit)


def replica_batch(spec: SweepSpec, d: int, c: int, n: int) -> int:
    """Students per batch: ``min(spec.max_replicas, replicas_that_fit(...))``."""
    return max(1, min(spec.max_replicas, replicas_that_fit(spec, d, c, n)))
