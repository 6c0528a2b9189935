"""The ``memory/replica_batch`` check: the replica batch ``simulate.memory.replica_batch`` picks
at the MLP paper slice trains without running out of memory, its peak (CUDA) within the
budgeted fraction."""

from __future__ import annotations

import dataclasses

from benchmarks.check_profiles import Profile
from benchmarks.check_report import Report


def check_memory(report: Report, prof: Profile, device: str) -> None:
    """Check ``memory/replica_batch`` on ``device`` at ``prof``'s paper slice."""

    def check():
        import torch

        from benchmarks import bench_mlp
        from benchmarks.slice_specs import eager
        from softleak.simulate import protocol
        from softleak.simulate.memory import (
            BUDGET_FRACTION,
            free_bytes,
            replica_batch,
            shared_bytes,
            student_bytes,
        )

        d, p, c, n, rho, _ = prof.paper
        cfg = dataclasses.replace(bench_mlp.PAPER_SLICE, d=d, p=p, c=c, n=n, rho=rho)
        spec = bench_mlp.student_spec(cfg, prof.max_replicas, 1)
        spec = eager(dataclasses.replace(spec, device=device, max_replicas=prof.max_replicas))
        cuda = device.startswith("cuda")
        teacher = protocol.train_teachers(spec, [(d, c, n, 0)])[0]
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
        free = free_bytes(device)
        R = replica_batch(spec, d, c, n)
        runs = protocol.student_runs(spec, teacher.key)[:R]
        budget = BUDGET_FRACTION["cuda" if cuda else "cpu"] * free
        model_bytes = shared_bytes(spec, d, c, n) + R * student_bytes(spec, d, c, n)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        try:
            protocol.gradient_students(spec, teacher, runs)
        except torch.cuda.OutOfMemoryError as err:  # the sizing is wrong
            torch.cuda.empty_cache()
            return False, f"replica_batch picked {R} students and the device ran out: {err}"
        detail = (
            f"replica_batch picked {R} students (d={d} p={p} c={c} n={n}); modelled "
            f"{model_bytes / 1e9:.3g} GB of a {budget / 1e9:.3g} GB budget"
        )
        if not cuda:
            return True, detail + "; trained (peak memory is measured on CUDA only)"
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        torch.cuda.empty_cache()  # the rates below start from an empty cache
        per = (peak - shared_bytes(spec, d, c, n)) / R
        detail += (
            f"; measured peak {peak / 1e9:.3g} GB ({per / 1e6:.0f} MB per student vs "
            f"{student_bytes(spec, d, c, n) / 1e6:.0f} MB modelled)"
        )
        return peak <= budget, detail

    report.run("memory/replica_batch", check)
