"""Compiled against eager training steps (``simulate.train``'s ``compile``): what a step costs each
way, what the first compile costs, and the data behind the size threshold of ``compile=None``.

A step is what ``simulate.train.fit`` runs per epoch: the gradient (``StepGradients``, compiled or
eager, exactly as ``fit`` builds it) and the eager Adam update. Per configuration: the time per
step, eager and compiled, each the median of ``--repeats`` timings of >= ``--min-seconds`` (0.5 s)
of back-to-back steps, eager and compiled alternating so that load from other processes hits both
alike; the compile time separately: the first compiled step's wall time less one eager step, in a
fresh process with an empty inductor cache (``TORCHINDUCTOR_CACHE_DIR`` in a temporary folder), so
it is a run's first compile (what ``COMPILE_SECONDS`` prices), and its largest relative parameter
difference from an eager twin after ``--steps`` steps.

Configurations: the replica-batched MLP student at the quick MLP scale (``paper_figs.mlp_scale.QUICK``:
R = 8 students, n = 1,000 shared rows, d = 100, p = 50, c = 100, soft labels) and a transformer
student batch at the modadd quick scale (``paper_figs.modadd_runs.QUICK_TRANSFORMER``: p = 59,
one rho = 0.5 batch: R = 3 (the taus), 696 rows, AdamW with warm-up). ``--scan`` adds the sizes the
threshold's constants come from (saved seconds per activation entry, and the small steps where the
compiled call's fixed cost wins), in one process (graphs are shared there; compile times not shown).

    python -m benchmarks.bench_compile [--scan] [--threads N]

Prints numbers only (no assertions). ~1 min on a 2-core CPU (``--scan``: ~1 min more); with
another process busy on the machine, 2-thread timings can be many times slower (use --threads 1).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CASES = ("mlp", "transformer")


def _setup(case: str, R: int | None = None, n: int | None = None, **shape):
    """(model, X, objective, optimizer config) of one configuration, seeded."""
    import torch

    from softleak.simulate.losses import Objective, normalized_weights
    from softleak.simulate.models import ReplicaMLP
    from softleak.simulate.optim import AdamConfig

    g = torch.Generator().manual_seed(0)
    if case == "mlp":
        R, n = R or 8, n or 1_000
        d, p, c = shape.get("d", 100), shape.get("p", 50), shape.get("c", 100)
        shared = shape.get("shared", True)
        model = ReplicaMLP.init(range(R), d, c, (p,) if p else (), True)
        X = torch.randn(n, d, generator=g) if shared else torch.randn(R, n, d, generator=g)
        targets = model.empty_like_logits(n, c, shared=shared)
        targets.copy_(torch.softmax(torch.randn(R, n, c, generator=g) * 3, -1))
        return model, X, Objective("soft", targets), AdamConfig(lr=1e-4)
    from softleak.paper_figs.modadd_runs import QUICK_TRANSFORMER as spec
    from softleak.simulate.modadd.models import make_model

    R, n = R or len(spec.tau) * spec.student_seeds, n or spec.n_train(0.5)
    model = make_model(spec, list(range(R)))
    a, b = (torch.randint(0, spec.p, (R, n), generator=g) for _ in range(2))
    X = torch.stack([a, b, torch.full_like(a, spec.p)], -1)  # (R, n, 3) per-replica rows
    targets = torch.softmax(torch.randn(R, n, spec.p, generator=g), -1)
    weights = normalized_weights(torch.ones(R, n))
    return model, X, Objective("soft", targets, weights), spec.student_optim()


def _step(case: str, compiled: bool, **shape):
    """A step function (gradient + Adam, as ``fit`` runs it) and its model."""
    from softleak.simulate.optim import Adam
    from softleak.simulate.train import StepGradients

    model, X, objective, optim = _setup(case, **shape)
    autograd = not hasattr(model, "forward_backward")
    gradients = StepGradients(model, X, objective, autograd, compiled)
    opt = Adam(model.params, optim)
    return (lambda: opt.step(gradients())), model, X


def _per_step(step, min_seconds: float) -> float:
    k, t0 = 0, time.perf_counter()
    while True:
        step()
        k += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return elapsed / k


def _timings(steps: dict, repeats: int, min_seconds: float) -> dict[str, float]:
    """Median seconds per step of each step function, the functions alternating."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            times[name].append(_per_step(step, min_seconds))
    return {name: statistics.median(t) for name, t in times.items()}


def measure(case: str, repeats: int, min_seconds: float, steps: int) -> dict:
    """One configuration (in a fresh process: the compile is its first)."""
    from softleak.simulate.train import step_entries

    eager, model, X = _step(case, False)
    eager()  # warm-up (allocator, thread pool)
    t0 = time.perf_counter()
    eager()
    one = time.perf_counter() - t0
    compiled, model_c, _ = _step(case, True)
    t0 = time.perf_counter()
    compiled()
    compile_s = time.perf_counter() - t0 - one
    for _ in range(steps - 1):  # the twins: same seeds, steps - 1 more steps each
        compiled()
    twin, model_e, _ = _step(case, False)
    for _ in range(steps):
        twin()
    rel = max(
        float((a - b).abs().max() / b.abs().max())
        for a, b in zip(model_c.params, model_e.params, strict=True)
    )
    t = _timings({"eager": eager, "compiled": compiled}, repeats, min_seconds)
    return {
        "case": case,
        "R": model.replicas,
        "rows": int(X.shape[-2]),
        "entries": step_entries(model, X),
        "eager_ms": 1e3 * t["eager"],
        "compiled_ms": 1e3 * t["compiled"],
        "compile_s": compile_s,
        "steps": steps,
        "max_rel_diff": rel,
    }


#: ``--scan``: (case, shape) of the threshold's measurements (see ``simulate.train``).
SCAN = [
    ("mlp", dict(R=8, n=1000)),
    ("mlp", dict(R=32, n=1000)),
    ("mlp", dict(R=8, n=250)),
    ("mlp", dict(R=8, n=60)),
    ("mlp", dict(R=8, n=1000, shared=False)),
    ("mlp", dict(R=4, n=4000, d=1000, p=500)),
    ("mlp", dict(R=64, n=1000, p=0, c=10)),
    ("mlp", dict(R=24, n=400, p=0, c=2)),
    ("mlp", dict(R=10, n=36, d=2, p=150, c=3, shared=False)),
    ("transformer", dict()),
    ("transformer", dict(n=139)),
    ("transformer", dict(R=1, n=1392)),
]


def scan(repeats: int, min_seconds: float) -> list[dict]:
    from softleak.simulate.train import step_entries

    out = []
    for case, shape in SCAN:
        eager, model, X = _step(case, False, **shape)
        compiled, _, _ = _step(case, True, **shape)
        eager(), compiled()  # warm-up and (re)compile
        t = _timings({"eager": eager, "compiled": compiled}, repeats, min_seconds)
        entries = step_entries(model, X) or 0
        saved = t["eager"] - t["compiled"]
        out.append(
            {
                "case": case,
                **shape,
                "entries": entries,
                "eager_ms": 1e3 * t["eager"],
                "compiled_ms": 1e3 * t["compiled"],
                "saved_ns_per_entry": 1e9 * saved / entries,
            }
        )
        print(_scan_line(out[-1]), flush=True)
    return out


def _scan_line(r: dict) -> str:
    shape = ", ".join(
        f"{k}={v}"
        for k, v in r.items()
        if k not in ("case", "entries") and not k.endswith(("ms", "entry"))
    )
    return (
        f"  {r['case']:<11} {shape or 'quick':<34} entries {r['entries']:>9.3g}  eager "
        f"{r['eager_ms']:8.3f} ms  compiled {r['compiled_ms']:8.3f} ms  saved "
        f"{r['saved_ns_per_entry']:6.2f} ns/entry"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--repeats", type=int, default=5, help="timings per step function")
    ap.add_argument("--min-seconds", type=float, default=0.5, help="length of one timing")
    ap.add_argument("--steps", type=int, default=20, help="steps of the compiled/eager twins")
    ap.add_argument("--scan", action="store_true", help="also the threshold's sizes")
    ap.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # one case, in this process
    args = ap.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.case:
        print(json.dumps(measure(args.case, args.repeats, args.min_seconds, args.steps)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32 CPU")
    for case in CASES:
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
            cmd = [sys.executable, "-m", "benchmarks.bench_compile", "--case", case]
            cmd += ["--repeats", str(args.repeats), "--min-seconds", str(args.min_seconds)]
            cmd += ["--steps", str(args.steps)] + (
                ["--threads", str(args.threads)] if args.threads else []
            )
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        saved = (r["eager_ms"] - r["compiled_ms"]) / 1e3
        pays = f"pays after {r['compile_s'] / saved:,.0f} steps" if saved > 0 else "never pays"
        print(
            f"{case:<11} R = {r['R']}, {r['rows']} rows, {r['entries']:.3g} activation entries: "
            f"eager {r['eager_ms']:.3f} ms/step, compiled {r['compiled_ms']:.3f} ms/step "
            f"({r['eager_ms'] / r['compiled_ms']:.2f}x); first compile {r['compile_s']:.1f} s "
            f"({pays}); max relative parameter difference after {r['steps']} steps "
            f"{r['max_rel_diff']:.2e}"
        )
    if args.scan:
        print("threshold scan (one process, compile times left out):")
        scan(max(3, args.repeats - 2), args.min_seconds)


if __name__ == "__main__":
    main()
