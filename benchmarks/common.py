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
    d, c = X.shape[1], soft_list[0].shape[1]
    t0 = time.perf_counter()
    for soft in soft_list:
        torch.manual_seed(0)
        if hidden:
            model = torch.nn.Sequential(
                torch.nn.Linear(d, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, c)
            )
        else:
            model = torch.nn.Linear(d, c, bias=False)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        for _ in range(epochs):
            opt.zero_grad()
            loss = F.cross_entropy(model(X), soft)
            loss.backward()
            opt.step()
    return (time.perf_counter() - t0) / (len(soft_list) * epochs)
