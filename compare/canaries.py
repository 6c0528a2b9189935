"""The memorized-canary experiment's summary: held-out canary recovery per setting against the
null of unplanted points, with intervals over seeds and the label-DP epsilon lower bound.

Input: the table ``simulate.run(CanarySpec(...))`` returns (one row per student). A *setting* is
(k, rho, rho_c, kind, tau); per setting, over the seeds (each its own split, canaries, teacher
and student):

- ``recovery``: the mean share of held-out canaries predicted with their planted label, with a
  two-sided t interval over seeds (``compare.claims.t_interval``, at ``confidence``);
- ``null``: the same for held-out clean points and their phantom labels (expectation 1/c for a
  student that does not leak: the phantom label is independent of everything it sees) and
  ``excess`` = recovery - null per seed, with its interval;
- ``epsilon_lb``: ``compare.privacy.epsilon_lower_bound`` on the held-out canaries of all seeds
  pooled (each seed's count is dominated by a binomial at p_eps under eps-label-DP and the seeds
  are independent, so the pooled count is too), Bonferroni-corrected over the settings of the
  table, so that even the largest bound of the table holds at ``confidence``. Valid without the
  real-label caveat the audit carries: a planted label is uniform over all c classes and
  independent of its input. ``epsilon_lb_null`` is the same bound on the null points (it should
  be 0: a check of the bound);
- the students' clean test accuracy and agreement with the teacher, and the teachers' canary and
  test accuracy.

Imports numpy, pandas, scipy and matplotlib only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from softleak.compare.claims import CONFIDENCE, t_interval
from softleak.compare.privacy import epsilon_lower_bound

__all__ = ["CanaryRecovery", "canary_recovery"]

SETTING = ["k", "rho", "rho_c", "kind", "tau"]
KIND_ORDER = {"soft": 0, "shuffle": 1, "hard": 2}
COLUMNS = (
    "k, rho, rho_c, kind, tau, seeds, recovery, recovery_low, recovery_high, null, excess, "
    "excess_low, excess_high, canaries, epsilon_lb, epsilon_lb_null, student_test_acc, "
    "match_teacher_test_acc, teacher_canary_acc, teacher_test_acc"
).split(", ")


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    return t_interval(values, confidence) if values.size >= 2 else (math.nan, math.nan)


@dataclass(frozen=True)
class CanaryRecovery:
    """The summary (:data:`COLUMNS`, one row per setting) and the classes it was measured on."""

    table: pd.DataFrame
    c: int
    confidence: float

    def markdown(self) -> str:
        """The recovery table as Markdown (percentages; intervals in brackets)."""
        head = (
            "| k | rho | rho_c | labels | tau | seeds | held-out canaries recovered | null "
            "(unplanted) | excess | epsilon_lb | clean test acc | agreement |"
        )
        lines = [head, "|" + "---|" * 12]
        for r in self.table.itertuples(index=False):
            tau = "-" if math.isnan(r.tau) else f"{r.tau:g}"
            lines.append(
                f"| {r.k} | {r.rho:g} | {r.rho_c:g} | {r.kind} | {tau} | {r.seeds} | "
                f"{_pct(r.recovery)} [{_pct(r.recovery_low)}, {_pct(r.recovery_high)}] | "
                f"{_pct(r.null)} | {_pct(r.excess)} [{_pct(r.excess_low)}, "
                f"{_pct(r.excess_high)}] | {r.epsilon_lb:.2f} | {_pct(r.student_test_acc)} | "
                f"{_pct(r.match_teacher_test_acc)} |"
            )
        level = f"{100 * self.confidence:g}%"
        lines.append(
            f"\nIntervals: {level} t intervals over seeds. Null: held-out clean points with "
            f"phantom labels drawn like the canaries' (chance 1/c = {_pct(1 / self.c)}). "
            f"epsilon_lb: label-DP lower bound at {level}, seeds pooled, Bonferroni over the "
            f"{len(self.table)} settings."
        )
        return "\n".join(lines)

    def plot(self, ax=None, *, k: int | None = None, rho: float | None = None):
        """Held-out canary recovery against tau per kind and rho_c (error bars: the intervals),
        the null as a dashed line; one (k, rho) (default: the first). Returns the axes."""
        from softleak.compare.style import axes_or_new

        ax = axes_or_new(ax, (5.5, 3.6))
        t = self.table
        k = int(t["k"].iloc[0]) if k is None else k
        rho = float(t["rho"].iloc[0]) if rho is None else rho
        t = t[(t["k"] == k) & np.isclose(t["rho"], rho)]
        taus = sorted(t["tau"].dropna().unique())
        markers = {"soft": "o", "shuffle": "s"}
        for i, (rho_c, part) in enumerate(t.groupby("rho_c")):
            color = f"C{i}"
            for kind in ("soft", "shuffle"):
                rows = part[part["kind"] == kind].sort_values("tau")
                err = [
                    rows["recovery"] - rows["recovery_low"],
                    rows["recovery_high"] - rows["recovery"],
                ]
                ax.errorbar(
                    rows["tau"],
                    rows["recovery"],
                    yerr=np.nan_to_num(np.asarray(err, dtype=float)),
                    marker=markers[kind],
                    ls="-" if kind == "soft" else ":",
                    color=color,
                    capsize=2,
                    label=f"{kind}, rho_c = {rho_c:g}",
                )
            hard = part[part["kind"] == "hard"]
            if len(hard):
                ax.axhline(
                    hard["recovery"].mean(),
                    color=color,
                    ls="-.",
                    lw=1,
                    label=f"hard, rho_c = {rho_c:g}",
                )
        null = t["null"].mean()
        ax.axhline(null, color="k", ls="--", lw=1, label=f"null (unplanted) {null:.3f}")
        ax.set_xscale("log")
        if taus:
            ax.set_xticks(taus, [f"{v:g}" for v in taus])
        ax.set_xlabel("temperature tau")
        ax.set_ylabel("held-out canaries recovered")
        ax.set_title(f"k = {k} canaries, rho = {rho:g}")
        ax.legend(fontsize=7)
        return ax


def _pct(v: float) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{100 * v:.1f}%"


def canary_recovery(table: pd.DataFrame, confidence: float = CONFIDENCE) -> CanaryRecovery:
    """Summarise a canary table per setting (see the module docstring)."""
    if table.empty:
        raise ValueError("the canary table is empty")
    c = int(table["c"].iloc[0])
    key = table[SETTING].copy()
    key["tau"] = key["tau"].fillna(-1.0)  # hard labels: one group
    groups = table.assign(_tau=key["tau"]).groupby(["k", "rho", "rho_c", "kind", "_tau"])
    tests = groups.ngroups
    rows = []
    for (k, rho, rho_c, kind, tau), g in groups:
        rec = g["canary_recovery"].to_numpy(float)
        exc = rec - g["null_recovery"].to_numpy(float)
        lo, hi = _interval(rec, confidence)
        elo, ehi = _interval(exc, confidence)
        hits, trials = int(g["canary_hits"].sum()), int(g["n_canary_test"].sum())
        null_hits, null_trials = int(g["null_hits"].sum()), int(g["n_null"].sum())
        rows.append(
            {
                "k": int(k),
                "rho": float(rho),
                "rho_c": float(rho_c),
                "kind": kind,
                "tau": math.nan if tau < 0 else float(tau),
                "seeds": int(g["seed"].nunique()),
                "recovery": float(np.nanmean(rec)),
                "recovery_low": lo,
                "recovery_high": hi,
                "null": float(g["null_recovery"].mean()),
                "excess": float(np.nanmean(exc)),
                "excess_low": elo,
                "excess_high": ehi,
                "canaries": trials,
                "epsilon_lb": _eps(hits, trials, c, confidence, tests),
                "epsilon_lb_null": _eps(null_hits, null_trials, c, confidence, tests),
                "student_test_acc": float(g["student_test_acc"].mean()),
                "match_teacher_test_acc": float(g["match_teacher_test_acc"].mean()),
                "teacher_canary_acc": float(g["teacher_canary_acc"].mean()),
                "teacher_test_acc": float(g["teacher_test_acc"].mean()),
            }
        )
    out = pd.DataFrame(rows, columns=COLUMNS)
    out["_order"] = out["kind"].map(KIND_ORDER)
    out = out.sort_values(["k", "rho", "rho_c", "_order", "tau"]).drop(columns="_order")
    return CanaryRecovery(out.reset_index(drop=True), c, confidence)


def _eps(hits: int, trials: int, c: int, confidence: float, tests: int) -> float:
    return epsilon_lower_bound(hits, trials, c, confidence, tests) if trials else math.nan
