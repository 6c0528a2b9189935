"""Checks of the two steps of the weak-phase derivation (docs/theory.md), on exact teachers.

Usage::

    python -m benchmarks.leakage_cavity_checks [--d 200,400] [--seeds 30] [--loo-seeds 10]
        [--json FILE]

1. **Free subspaces.** For a held-out support vector, the student sees the fraction
   g = tr(P_S Q_A) / tr(Q_A) of its push (S: the student's inputs, A: the teacher's support
   vectors). The theory evaluates tr(P_S Q_A) as for independent uniformly random subspaces met
   beyond their shared span(S and A): s (1 - q / D) with s = |S \\ A|, q = |A \\ S|, D = d - |S and
   A|. Printed: delta = s (1 - q / D) - tr(P_S Q_A) per (d, alpha, rho), in dimensions (0 when the
   step is exact at finite d).
2. **Cavity.** For held-out members j, the teacher retrained without j (``w_j``) gives the cavity
   field t = y x_j.w_j sqrt(d) / ||w_j||; the theory says the student's field is r t + sqrt(r (1 -
   r)) z + g (kappa - t)_+ with z ~ N(0, 1) independent of t. Printed: the push over (kappa - t)
   on support vectors against g, its zero on the others, and the mean / sd of z.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def instance(d: int, alpha: float, rho: float, seed: int):
    """x ~ N(0, I/d), balanced labels, the per-class prefix split (the sweeps' protocol)."""
    rng = np.random.default_rng(seed)
    n = 2 * int(round(alpha * d / 2))
    X = rng.standard_normal((n, d)) / np.sqrt(d)
    y = rng.permutation(np.repeat([-1.0, 1.0], n // 2))
    train = np.zeros(n, bool)
    for c in (-1.0, 1.0):
        idx = np.flatnonzero(y == c)
        train[idx[: int(rho * n / 2)]] = True
    return X, y, train


def free_subspace_delta(d: int, alpha: float, rho: float, seeds: int) -> dict:
    from softleak.theory.maxmargin import max_margin

    deltas = []
    for s in range(seeds):
        X, y, train = instance(d, alpha, rho, 1000 + s)
        fit = max_margin(X, y)
        if fit.status != "ok":
            continue
        sv = fit.dual > 0
        qs, _ = np.linalg.qr(X[train].T)
        qa, _ = np.linalg.qr(X[sv].T)
        trace = qs.shape[1] - np.sum((qs.T @ qa) ** 2)  # tr(P_S Q_A)
        s_, q = int((train & ~sv).sum()), int((~train & sv).sum())
        deltas.append(s_ * (1 - q / (d - int((train & sv).sum()))) - trace)
    x = np.asarray(deltas)
    return {"d": d, "alpha": alpha, "rho": rho, "seeds": x.size, "delta": float(x.mean()),
            "delta_se": float(x.std(ddof=1) / np.sqrt(x.size))}  # fmt: skip


def cavity(d: int, alpha: float, rho: float, seeds: int) -> dict:
    from softleak.theory.leakage import leakage_prediction
    from softleak.theory.maxmargin import max_margin
    from softleak.theory.pinv import factorize

    push_ratio, push_other, z, ts = [], [], [], []
    for s in range(seeds):
        X, y, train = instance(d, alpha, rho, 5000 + s)
        fit = max_margin(X, y)
        if fit.status != "ok":
            continue
        fac = factorize(X[train])
        w_s = fac.project(fit.w)
        kappa = np.sqrt(d) / np.linalg.norm(fit.w)
        for j in np.flatnonzero(~train):
            keep = np.ones(len(y), bool)
            keep[j] = False
            w_j = max_margin(X[keep], y[keep]).w
            norm_j = np.linalg.norm(w_j)
            t = y[j] * X[j] @ w_j * np.sqrt(d) / norm_j
            p_j = fac.project(w_j)
            r_j = p_j @ p_j / norm_j**2
            s1 = y[j] * X[j] @ p_j * np.sqrt(d) / norm_j
            field = y[j] * X[j] @ w_s * np.sqrt(d) / np.linalg.norm(fit.w)
            z.append((s1 - r_j * t) / np.sqrt(r_j * (1 - r_j)))
            ts.append(t)
            if fit.dual[j] > 0:
                push_ratio.append((field - s1) / (kappa - t))
            else:
                push_other.append(field - s1)
    p = leakage_prediction(alpha, rho)
    pr, po, zz = (np.asarray(v) for v in (push_ratio, push_other, z))
    return {
        "d": d,
        "alpha": alpha,
        "rho": rho,
        "held_out": int(zz.size),
        "support_vectors": int(pr.size),
        "push_over_kappa_minus_t": float(pr.mean()),
        "push_se": float(pr.std(ddof=1) / np.sqrt(pr.size)),
        "g_theory": float(p.g),
        "max_push_not_support": float(np.abs(po).max()) if po.size else 0.0,
        "z_mean": float(zz.mean()),
        "z_sd": float(zz.std(ddof=1)),
        "corr_z_t": float(np.corrcoef(zz, ts)[0, 1]),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--d", type=lambda t: [int(v) for v in t.split(",")], default=[200, 400])
    p.add_argument("--seeds", type=int, default=30)
    p.add_argument("--loo-seeds", type=int, default=10)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    cells = [(a, r) for a in (0.25, 0.5, 1.0, 1.5) for r in (0.3, 0.8) if a * r < 1]
    record: dict = {"free_subspace": [], "cavity": []}
    print("free-subspace step: delta = s (1 - q/D) - tr(P_S Q_A), in dimensions")
    for d in args.d:
        for alpha, rho in cells:
            row = free_subspace_delta(d, alpha, rho, args.seeds)
            record["free_subspace"].append(row)
            print(f"  d={d} alpha={alpha} rho={rho}: {row['delta']:+.3f} +- {row['delta_se']:.3f}",
                  flush=True)  # fmt: skip
    print("cavity step (leave-one-out teachers, d = 200):")
    for alpha, rho in ((0.5, 0.5), (1.0, 0.3), (1.5, 0.5)):
        row = cavity(200, alpha, rho, args.loo_seeds)
        record["cavity"].append(row)
        print(f"  alpha={alpha} rho={rho}: push/(kappa-t) {row['push_over_kappa_minus_t']:.4f} +- "
              f"{row['push_se']:.4f} (g = {row['g_theory']:.4f}); non-SV push <= "
              f"{row['max_push_not_support']:.1e}; z mean {row['z_mean']:+.3f} sd {row['z_sd']:.3f} "
              f"({row['held_out']} held-out members)", flush=True)  # fmt: skip
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
