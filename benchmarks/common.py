"""Helpers shared by the benchmark scripts: timing, the GEMM roofline, the reference-style loop."""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F


def median_time(fn, repeats: int = 3) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs (one warm-up first)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def gemm_flops(size: int = 4096, threads: int | None = None, dtype=torch.float32) -> float:
    """FLOP/s of a large square matrix multiply on this CPU (the roofline the workloads aim at)."""
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        a = torch.randn(size, size, dtype=dtype)
        b = torch.randn(size, size, dtype=dtype)
        t = median_time(lambda: a @ b, repeats=3)
    finally:
        torch.set_num_threads(old)
    return 2 * size**3 / t


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
