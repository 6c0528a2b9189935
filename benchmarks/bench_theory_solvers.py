"""Time the exact theory checks: separability LP, certified leakage (closed form and SOCP).

Usage: python benchmarks/bench_theory_solvers.py [--lp-timeout 120] [--skip-large-lp]

One instance each (timings, not statistics). The d = 1000 separability LP (n = 2000) can take
minutes with an exact solver (measured on the 2-core development CPU: 138-325 s at d = 1600,
n = 3000); it runs in a child process that is stopped after --lp-timeout seconds.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import numpy as np

from softleak.theory.certified import certified_leakage
from softleak.theory.feasibility import linearly_separable, random_instance
from softleak.theory.pinv import pinv_student


def _lp_child(n: int, d: int, seed: int, queue: mp.Queue) -> None:
    X, y = random_instance(n, d, seed=seed)
    res = linearly_separable(X, y, solver="HIGHS")
    queue.put((res.feasible, res.solver, res.status, res.solve_s))


def time_lp(d: int, timeout: float, seed: int = 0) -> str:
    queue: mp.Queue = mp.Queue()
    proc = mp.Process(target=_lp_child, args=(2 * d, d, seed, queue))
    start = time.perf_counter()
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.terminate()
        proc.join()
        return f"separability LP d={d} n={2 * d}: stopped after {timeout:.0f} s (no answer)"
    wall = time.perf_counter() - start
    feasible, solver, status, solve_s = queue.get()
    return (
        f"separability LP d={d} n={2 * d}: feasible={feasible} by {solver} ({status}), "
        f"solve {solve_s:.2f} s, wall incl. process start {wall:.2f} s"
    )


def _split(n: int, d: int, rho: float, seed: int):
    """Paper protocol: balanced labels, per-class prefix split; linear teacher = X^+ (+-1)."""
    X, y = random_instance(n, d, seed=seed)
    s = np.where(y == 1, 1.0, -1.0)
    w_t = pinv_student(X, s)  # least-squares teacher on all n points
    train = np.zeros(n, dtype=bool)
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        train[idx[: int(rho * len(idx))]] = True
    return X[train], X[train] @ w_t, X[~train], y[~train], w_t


def time_certified(d: int, n: int, rho: float, seed: int = 0) -> str:
    X_s, z, X_t, y_t, w_t = _split(n, d, rho, seed)
    start = time.perf_counter()
    res = certified_leakage(X_s, z, X_t, y_t, np.linalg.norm(w_t))
    wall = time.perf_counter() - start
    return (
        f"certified closed form d={d} n={n} rho={rho} (m={len(z)}, t={len(y_t)}): {wall:.3f} s, "
        f"leaked {res.leaked_fraction:.3f}, hidden {res.hidden_fraction:.3f}"
    )


def time_certified_socp(d: int, n: int, rho: float, points: int, tol: float, seed: int = 0) -> str:
    X_s, z, X_t, y_t, w_t = _split(n, d, rho, seed)
    bound = np.linalg.norm(w_t)
    start = time.perf_counter()
    res = certified_leakage(X_s, z, X_t[:points], y_t[:points], bound, tol=tol)
    wall = time.perf_counter() - start
    exact = certified_leakage(X_s, z, X_t[:points], y_t[:points], bound)
    gap = float(np.max(np.abs(res.margin_min - exact.margin_min)))
    return (
        f"certified SOCP ({res.method}) d={d} n={n} rho={rho} tol={tol:g}, {points} points "
        f"({2 * points} SOCPs): {wall:.2f} s; max |margin_min - closed form| {gap:.2e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lp-timeout", type=float, default=120.0, help="seconds per LP (default 120)"
    )
    parser.add_argument("--skip-large-lp", action="store_true", help="skip the d = 1000 LP")
    args = parser.parse_args()
    print(time_lp(200, args.lp_timeout), flush=True)
    if not args.skip_large_lp:
        print("d = 1000 separability LP: this may take a while ...", flush=True)
        print(time_lp(1000, args.lp_timeout), flush=True)
    for d in (200, 1000):
        for n in (2 * d, d):
            print(time_certified(d, n, 0.8), flush=True)
    for n in (400, 200):
        print(time_certified_socp(200, n, 0.8, points=20, tol=1e-6), flush=True)


if __name__ == "__main__":
    main()
