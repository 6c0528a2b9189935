"""Vmapped against looped module replicas (``simulate.module_engine``), side by side in one run.

A step is what ``simulate.train.fit`` runs per epoch for a module student: the forward of R
replicas on one shared input matrix, the soft-label cross-entropy, autograd's backward and the
Adam update (``StepGradients`` and ``Adam`` exactly as ``fit`` builds them). Per case the engines
alternate (``--repeats`` rounds; each timing repeats steps for >= 0.5 s, ``benchmarks.common``),
so load from other processes hits both alike; the medians and their ratio are printed. The MLP
case adds the built-in ``ReplicaMLP`` (analytic backward, one GEMM for all replicas' first layer)
with the same widths: the path ``--student mlp`` keeps.

Cases, on digits-shaped rows (8x8 images; the real digits when scikit-learn is installed --
values do not change the time): ``mlp`` (64 -> 256 -> 10, ReLU) and ``cnn`` (the built-in
``simulate.factories.small_cnn``), R replicas on ``--rows`` rows.

    python -m benchmarks.bench_module_engine [--replicas 8] [--rows 700] [--repeats 5] [--json F]

~1-2 min on a 2-core CPU at 1 thread. Prints numbers only (no assertions).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

CASES = ("mlp", "cnn")


def _mlp_module(in_shape, c):
    import torch.nn as nn

    return nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, c))


def _rows(n: int):
    """(n, 64) float32 digits pixels / 16 (random pixels without scikit-learn) and labels."""
    import numpy as np
    import torch

    try:
        from sklearn.datasets import load_digits

        data = load_digits()
        X, y = data.data[:n] / 16.0, data.target[:n]
    except ImportError:
        rng = np.random.default_rng(0)
        X, y = rng.integers(0, 17, (n, 64)) / 16.0, rng.integers(0, 10, n)
    return torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y)


def _stepper(model, X, targets):
    from softleak.simulate.losses import Objective
    from softleak.simulate.optim import Adam, AdamConfig
    from softleak.simulate.train import StepGradients

    grads = StepGradients(
        model,
        X,
        Objective("soft", targets),
        autograd=not hasattr(model, "forward_backward"),
        compiled=False,
    )
    opt = Adam(model.params, AdamConfig(lr=1e-3))
    return lambda: opt.step(grads())


def measure(case: str, R: int, rows: int, repeats: int) -> dict:
    """Median seconds per step of each engine (and ReplicaMLP for ``mlp``), engines alternating."""
    import torch

    from benchmarks.common import time_call
    from softleak.simulate.factories import small_cnn
    from softleak.simulate.models import ReplicaMLP
    from softleak.simulate.module_engine import ModuleReplicas

    X, y = _rows(rows)
    targets = torch.softmax(
        torch.randn(R, rows, 10, generator=torch.Generator().manual_seed(0)), -1
    )
    factory = _mlp_module if case == "mlp" else small_cnn
    steps = {
        engine: _stepper(
            ModuleReplicas.init(factory, range(R), (1, 8, 8), 10, engine=engine), X, targets
        )
        for engine in ("vmap", "loop")
    }
    if case == "mlp":
        model = ReplicaMLP.init(range(R), 64, 10, (256,), True)
        t = model.empty_like_logits(rows, 10)
        t.copy_(targets)
        steps["replica_mlp"] = _stepper(model, X, t)
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            times[name].append(time_call(step, timings=1).seconds)
    out = {name: statistics.median(v) for name, v in times.items()}
    out["vmap_over_loop"] = out["vmap"] / out["loop"]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--replicas", type=int, default=8)
    p.add_argument("--rows", type=int, default=700)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="also write the numbers to this file")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    results = {}
    for case in CASES:
        r = measure(case, args.replicas, args.rows, args.repeats)
        results[case] = r
        extra = f", ReplicaMLP {1e3 * r['replica_mlp']:.2f} ms" if "replica_mlp" in r else ""
        print(
            f"{case}: R = {args.replicas}, {args.rows} rows, {args.threads} thread(s): vmap "
            f"{1e3 * r['vmap']:.2f} ms, loop {1e3 * r['loop']:.2f} ms per step (vmap / loop "
            f"{r['vmap_over_loop']:.2f}){extra}; medians of {args.repeats}"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (at the start {load:.2f})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
