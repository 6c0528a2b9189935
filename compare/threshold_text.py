"""Thresholds as text for the command line (``softleak compare thresholds``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from softleak.compare.threshold_types import ThresholdTable


def format_table(table: ThresholdTable) -> str:
    """A human-readable table of thresholds (for the command line)."""
    if not table.rows:
        return "no thresholds measurable in this table"
    lines = [
        f"{'threshold':<22} {'d':>5} {'c':>4} {'rho':>6} {'tau':>8} {'value':>8} "
        f"{'95% CI':>19} {'ref.rule':>8} {'seeds':>5}  note"
    ]

    def num(v: float, width: int) -> str:
        return f"{v:>{width}.4g}" if math.isfinite(v) else f"{'-':>{width}}"

    for r in table.rows:
        ci = f"[{r.ci_low:.4g}, {r.ci_high:.4g}]" if not math.isnan(r.ci_low) else "-"
        lines.append(
            f"{r.name:<22} {r.d if r.d is not None else '-':>5} "
            f"{r.c if r.c is not None else '-':>4} {num(r.rho, 6)} {num(r.tau, 8)} "
            f"{num(r.value, 8)} {ci:>19} {num(r.midpoint, 8)} {r.n_seeds:>5}  {r.note}"
        )
    gaps = table.gaps()
    if not gaps.empty:
        lines.append("")
        lines.append(f"{'theory':<22} {'d':>5} {'c':>4} {'rho':>6} {'predicted':>9} {'gap':>8}")
        for rec in gaps.itertuples(index=False):
            lines.append(
                f"{rec.name:<22} {rec.d if rec.d is not None else '-':>5} {rec.c:>4} "
                f"{num(rec.rho, 6)} {num(rec.predicted, 9)} {num(rec.gap, 8)}"
            )
    return "\n".join(lines)
