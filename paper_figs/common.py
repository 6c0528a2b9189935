"""Small pieces every recipe uses: saving figures, and threshold summaries for summary.json."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd


def linear_grid(lo: float, hi: float, num: int) -> tuple[float, ...]:
    """``num`` values from lo to hi inclusive, rounded to 6 significant digits (stable seeds/ids)."""
    return tuple(float(f"{v:.6g}") for v in np.linspace(lo, hi, num))


def log_grid(lo: float, hi: float, num: int) -> tuple[float, ...]:
    """``num`` values from 10**lo to 10**hi, rounded to 6 significant digits."""
    return tuple(float(f"{v:.6g}") for v in np.logspace(lo, hi, num))


def save(fig, out: Path, name: str) -> list[str]:
    """Write ``fig`` as OUT/NAME.png and OUT/NAME.pdf (atomically); returns the paths."""
    from softleak.compare.style import save_figure

    return [str(save_figure(fig, Path(out) / f"{name}.{ext}")) for ext in ("png", "pdf")]


def write_data(frame: pd.DataFrame, out: Path, name: str) -> str:
    """The data behind a figure, as CSV next to it."""
    from softleak.compare.style import write_text_atomic

    return str(write_text_atomic(Path(out) / f"{name}.csv", frame.to_csv(index=False)))


def clean(value):
    """JSON-friendly number: nan/inf -> None."""
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return value
    return None if not math.isfinite(f) else round(f, 6)


def threshold_entry(row) -> dict:
    return {
        "value": clean(row.value),
        "ci_low": clean(row.ci_low),
        "ci_high": clean(row.ci_high),
        "midpoint_rule": clean(row.midpoint),
        "rho": clean(row.rho),
        "tau": clean(row.tau),
        "d": int(row.d) if row.d is not None else None,
        "n_seeds": int(row.n_seeds),
        "censored": row.censored,
        "bound": clean(row.bound),
        "note": row.note,
    }


def nearest(values, target: float) -> float:
    values = np.asarray(sorted(set(values)), dtype=float)
    return float(values[np.argmin(np.abs(values - target))])


def format_rows(rows: Sequence[tuple[str, object, object]]) -> str:
    """A three-column text table: name, measured, theory/paper."""
    lines = [f"{'threshold':28s} {'measured':>28s} {'theory / paper':>22s}"]
    for name, measured, ref in rows:
        lines.append(f"{name:28s} {str(measured):>28s} {str(ref):>22s}")
    return "\n".join(lines)


def fmt_ci(entry: dict | None) -> str:
    if not entry or entry.get("value") is None:
        return "not reached"
    lo, hi = entry.get("ci_low"), entry.get("ci_high")
    ci = f" [{_f(lo)}, {_f(hi)}]" if lo is not None or hi is not None else ""
    return f"{entry['value']:.3f}{ci}"


def _f(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def data_dir(tables: dict, name: str, out: Path) -> Path:
    """The folder of sweep ``name`` (curves, grids, ...): ``run_recipe`` records it on the table;
    OUT/data/NAME otherwise."""
    path = tables[name].attrs.get("path")
    return Path(path) if path else Path(out) / "data" / name
