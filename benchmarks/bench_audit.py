"""The leakage audit's students: all release settings of one (seed, rho) as one replica batch on one
shared input matrix, against the same students one setting at a time.

Times ``simulate.leakage_audit.students_of_unit`` (training, evaluation and, for linear students,
the warm start; no certificates) on synthetic teacher outputs: the batch of R settings, and R calls
with one setting each (the same students: a student's seed does not depend on its batch). Median
of 3 runs, the two orders alternating so that load from other processes hits both alike.

Configurations: MLP students at the quick MLP scale (d = 100, c = 100, width 50, 650 training rows,
as in the README's audit example) and linear students (d = 100, c = 10), with Adam and with
L-BFGS (joint line search over the batch).

Usage: ``python -m benchmarks.bench_audit [--epochs E] [--threads N]`` (~1-2 min).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from softleak.simulate.audit_data import AuditData
from softleak.simulate.leakage_audit import AuditSpec, releases_for, students_of_unit, units_of

SETTINGS = ("soft", "tau:5", "tau:80", "top_k:2", "top_k:5", "round:1", "round:2", "noise:1")


def _data(d: int, c: int, n: int, seed: int = 0) -> AuditData:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.repeat(np.arange(c), n // c)
    z = 20.0 * rng.standard_normal((n, c))
    z[np.arange(n), y] += 60.0  # a teacher that memorized its labels
    Xh = rng.standard_normal((n // 2, d))
    return AuditData(z, y, X, 20.0 * rng.standard_normal((n // 2, c)), y[: n // 2], Xh)


def _time(spec: AuditSpec, data: AuditData, threads: int, batched: bool) -> float:
    releases = releases_for(spec, data.c)
    unit = units_of(spec, data)[0]
    t0 = time.perf_counter()
    if batched:
        students_of_unit(spec, data, releases, unit, threads)
    else:
        for release in releases:
            students_of_unit(spec, data, [release], unit, threads)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=300, help="Adam steps (L-BFGS: a third)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    cases = [
        ("mlp d=100 c=100 w=50", _data(100, 100, 1000), dict(student="mlp", width=(50,))),
        ("linear d=100 c=10, Adam", _data(100, 10, 1000), dict(solver="adam")),
        ("linear d=100 c=10, L-BFGS", _data(100, 10, 1000), dict(solver="lbfgs")),
    ]
    print(f"{len(SETTINGS)} settings, rho 0.65, {args.threads} thread(s)")
    print(f"{'students':28s} {'batched s':>10s} {'one at a time s':>16s} {'speed-up':>9s}")
    for name, data, extra in cases:
        epochs = args.epochs // 3 if extra.get("solver") == "lbfgs" else args.epochs
        spec = AuditSpec(
            rho=(0.65,), seeds=1, settings=SETTINGS, epochs=epochs, certify=False, **extra
        )
        together, alone = [], []
        for rep in range(3):
            order = (True, False) if rep % 2 == 0 else (False, True)
            for batched in order:
                (together if batched else alone).append(_time(spec, data, args.threads, batched))
        t, a = statistics.median(together), statistics.median(alone)
        print(f"{name:28s} {t:10.2f} {a:16.2f} {a / t:8.1f}x")


if __name__ == "__main__":
    main()
