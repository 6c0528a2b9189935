"""What each precision mechanism buys on this machine: the probe, GEMM rates and training steps.

    python -m benchmarks.bench_precision [--json FILE] [--repeats N] [--threads N] [--quick]

Prints what ``simulate.precision_probe`` finds here, then side by side, in one run and on the same
tensors (timings alternate between the mechanisms, so load slows them alike; medians of
``--repeats`` timings of >= ``benchmarks.common.MIN_TIMING_S`` each):

- GEMM FLOP/s at 256^3, 1024^3 and 2048^3: float32, bf16 tensors, and float32 tensors under each
  mechanism that runs here (``bf16-tensors`` for bf16r, ``emulated`` for bf16 -- set for this
  measurement even where it is refused by default -- and ``onednn-bf16`` where the probe finds it);
- one training step of four engine workloads (the modadd transformer's teacher and students at
  the quick preset's p = 59, MLP students at the quick scale and at the paper slice) under the
  same mechanisms.

Ratios against float32 are the figures to quote; the absolute rates hold for this CPU and load
only. ``--json`` writes the record (``benchmarks/records/precision_mechanisms.json`` keeps one).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import statistics
import sys
from pathlib import Path

import torch

from benchmarks.common import MIN_TIMING_S, time_call
from softleak.simulate.device import cpu_name, thread_count
from softleak.simulate.precision import SLOW_ENV, resolve
from softleak.simulate.precision_probe import probe

SIZES = (256, 1024, 2048)


def mechanisms() -> dict:
    """name -> context factory: float32 and every bf16 mechanism that can run here."""
    out = {"fp32": contextlib.nullcontext}
    for precision in ("bf16", "bf16r"):
        old = os.environ.get(SLOW_ENV)
        os.environ[SLOW_ENV] = "1"  # measure the emulation too
        try:
            mech = resolve(precision, "cpu")
        finally:
            if old is None:
                os.environ.pop(SLOW_ENV)
            else:
                os.environ[SLOW_ENV] = old
        out[f"{precision}:{mech.name}"] = lambda m=mech: m.context("cpu")
    return out


def transformer_step(R: int, n: int, p: int = 59, **model):
    """One autograd training step (gradients) of R modadd transformers on n soft-labelled rows;
    ``model``: ``ReplicaTransformer.init`` sizes (default the engine's)."""
    from softleak.simulate.losses import Objective, normalized_weights
    from softleak.simulate.train import _autograd_grads, _loss
    from softleak.simulate.transformer import ReplicaTransformer

    model = ReplicaTransformer.init(range(R), p, **model)
    g = torch.Generator().manual_seed(1)
    a, b = (torch.randint(0, p, (R, n), generator=g) for _ in range(2))
    X = torch.stack([a, b, torch.full_like(a, p)], -1)
    targets = torch.softmax(torch.randn(R, n, p, generator=g), -1)
    objective = Objective("soft", targets, normalized_weights(torch.ones(R, n)))
    return lambda: _autograd_grads(_loss, model, X, objective)


def mlp_step(R: int, n: int, d: int, p: int, c: int):
    """One analytic training step (gradients) of R replica MLPs d -> p -> c on n shared rows."""
    from softleak.simulate.losses import Objective
    from softleak.simulate.models import ReplicaMLP
    from softleak.simulate.train import _analytic_grads

    model = ReplicaMLP.init(range(R), d, c, (p,), True)
    g = torch.Generator().manual_seed(1)
    X = torch.randn(n, d, generator=g)
    targets = model.empty_like_logits(n, c)
    targets.copy_(torch.softmax(2 * torch.randn(R, n, c, generator=g), -1))
    objective = Objective("soft", targets)

    def step():
        with torch.no_grad():
            return _analytic_grads(model, X, objective)

    return step


STEPS = {
    "modadd transformer teacher (p 59, 1,392 rows)": lambda: transformer_step(1, 1392),
    "modadd transformer students (R 5, 700 rows)": lambda: transformer_step(5, 700),
    "MLP students, quick scale (R 8, 1,000 rows, d 100, p 50, c 100)": lambda: mlp_step(
        8, 1000, 100, 50, 100
    ),
    "MLP student, paper slice (16,250 rows, d 1,000, p 500, c 100)": lambda: mlp_step(
        1, 16250, 1000, 500, 100
    ),
}


def compare(fn_of: dict, repeats: int) -> dict:
    """Median seconds per call of each ``fn_of[name]()``, timings alternating between names."""
    times: dict = {name: [] for name in fn_of}
    for _ in range(repeats):
        for name, fn in fn_of.items():
            t = time_call(fn, timings=1, min_s=MIN_TIMING_S / 2)
            times[name].append(t.seconds if t.ok else float("nan"))
    return {name: statistics.median(v) for name, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", metavar="FILE", help="also write the record here")
    ap.add_argument("--repeats", type=int, default=5, help="timings per figure (median)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="256^3 and the small steps only (tests)")
    args = ap.parse_args(argv)
    sizes = SIZES[:1] if args.quick else SIZES
    steps = dict(list(STEPS.items())[:1]) if args.quick else STEPS
    found = probe("cpu")
    load0 = os.getloadavg()[0]
    print(f"{cpu_name()}, torch {torch.__version__}, {args.threads} thread(s), load {load0:.1f}")
    print(f"probe: {found.outcome}: {found.line()}")
    modes = mechanisms()
    record: dict = {"gemm_gflop_per_s": {}, "step_ms": {}}
    with thread_count(args.threads):
        for size in sizes:
            a, b = torch.randn(size, size), torch.randn(size, size)
            a16, b16 = a.bfloat16(), b.bfloat16()
            fns = {"bf16-tensors (reference)": lambda a16=a16, b16=b16: a16 @ b16}

            def under(ctx, a=a, b=b):
                def run():
                    with ctx():
                        a @ b

                return run

            fns |= {name: under(ctx) for name, ctx in modes.items()}
            med = compare(fns, args.repeats)
            rates = {k: 2 * size**3 / v / 1e9 for k, v in med.items()}
            record["gemm_gflop_per_s"][str(size)] = {k: round(v, 1) for k, v in rates.items()}
            print(f"GEMM {size}^3 GFLOP/s: " + _ratios(rates, "fp32", higher=True))
        for name, make in steps.items():
            step = make()
            fns = {}
            for mode, ctx in modes.items():

                def run(ctx=ctx, step=step):
                    with ctx():
                        step()

                fns[mode] = run
            med = compare(fns, args.repeats)
            record["step_ms"][name] = {k: round(1e3 * v, 2) for k, v in med.items()}
            print(f"{name}, ms per step: " + _ratios({k: 1e3 * v for k, v in med.items()}, "fp32"))
    record.update(
        machine=cpu_name(),
        torch=torch.__version__,
        threads=args.threads,
        probe={"outcome": found.outcome, "line": found.line()},
        load_average=[round(load0, 2), round(os.getloadavg()[0], 2)],
        repeats=args.repeats,
        written=datetime.date.today().isoformat(),
    )
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")
        print(f"written to {args.json}")
    return 0


def _ratios(values: dict, base: str, higher: bool = False) -> str:
    """``name value (ratio x)`` for each, the ratio as float32's time over its own."""
    ref = values[base]
    parts = []
    for k, v in values.items():
        ratio = v / ref if higher else ref / v
        parts.append(f"{k} {v:.4g}" + ("" if k == base else f" ({ratio:.2f}x)"))
    return ", ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
