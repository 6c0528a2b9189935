"""The rates file: what ``benchmarks.run_all --json`` writes (and ``benchmarks.gpu_check`` keeps
under ``rates``), ``{"format", <run facts>, "gemm": {...}, "gemm_unmeasurable", "gemm_reference",
"workloads": [...]}``, read by ``simulate.estimate.rates_from_dict``.

One ``Row`` per timed slice; ``workload_rows`` applies the honesty rules to them (a rate above
its precision's GEMM peak is a measurement error, used nowhere); ``rates_document`` assembles the
file and ``write_rates`` writes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import OK, Timing, judge

RATES_FORMAT = 1


@dataclass
class Row:
    """One timed slice: the engine on ``unit_flops`` of work per ``engine`` second, and the fp32
    one-at-a-time loop (where timed) on ``loop_flops`` per ``loop`` second."""

    workload: str
    part: str
    precision: str
    models: int
    unit_flops: float  # FLOPs of one timed unit (an epoch of the batch, or one call)
    engine: Timing  # seconds per unit
    slice: dict  # the unit's geometry for simulate.estimate (family, flops, entries, ...)
    loop: Timing | None = None
    loop_flops: float = 0.0
    loop_kind: str = ""
    loop_precision: str = "fp32"
    note: str = ""
    fused: bool = False

    @property
    def rate(self) -> float | None:
        """The engine's FLOP/s (None where its timing is unmeasurable)."""
        return self.unit_flops / self.engine.seconds if self.engine.ok else None

    @property
    def loop_rate(self) -> float | None:
        """The one-at-a-time loop's FLOP/s (None where it was not timed or is unmeasurable)."""
        if self.loop is None or not self.loop.ok:
            return None
        return self.loop_flops / self.loop.seconds


def workload_rows(rows: list[Row], gemm: dict) -> list[dict]:
    """The rates file's rows, with the honesty rules applied: a rate above its precision's GEMM
    peak is a measurement error (``gflop_per_s`` null, the raw value kept as
    ``measured_gflop_per_s``), one without a peak to check against is ``unverified``; speed-ups
    are against the fp32 loop of the same slice (null where none was timed or it was measured
    wrong)."""
    loops = {}
    for r in rows:
        if r.loop is not None and not r.fused:
            status = judge(r.loop_rate, gemm.get(r.loop_precision))
            loops[(r.workload, r.part)] = (r.loop_rate if status == OK else None, r, status)
    out = []
    for r in rows:
        peak = gemm.get(r.precision)
        status = judge(r.rate, peak)
        if status == OK and peak is None:
            status = f"unverified: no {r.precision} GEMM peak"
        good = status == OK
        loop_rate, loop_row, loop_status = loops.get((r.workload, r.part), (None, None, None))
        out.append(
            {
                "workload": r.workload,
                "part": r.part,
                "precision": r.precision,
                "fused": r.fused,
                "gflop_per_s": r.rate / 1e9 if good else None,
                "fraction_of_gemm": r.rate / peak if good else None,
                "speedup_vs_loop": r.rate / loop_rate if good and loop_rate else None,
                "status": status,
                "measured_gflop_per_s": r.rate / 1e9 if r.rate else None,
                "models": r.models,
                "gflop_per_unit": r.unit_flops / 1e9,
                "unit_s": r.engine.seconds,
                "timing": r.engine.note,
                "loop": loop_row.loop_kind if loop_row else None,
                "loop_gflop_per_s": loop_rate / 1e9 if loop_rate else None,
                "loop_status": loop_status,
                "note": r.note,
                "slice": r.slice,
            }
        )
    return out


def rates_document(
    rows: list[Row], gemm: dict, reference: dict, *, meta: dict | None = None
) -> dict:
    """The rates file: run facts, the "gemm" peaks (GFLOP/s), the reference peaks, the rows."""
    gemm_g = {k: (v / 1e9 if v else None) for k, v in gemm.items()}
    table = workload_rows(rows, gemm)
    return {
        "format": RATES_FORMAT,
        **(meta or {}),
        "gemm": {k: v for k, v in gemm_g.items() if v is not None},
        "gemm_unmeasurable": sorted(k for k, v in gemm_g.items() if v is None),
        "gemm_reference": {k: (v / 1e9 if v else None) for k, v in reference.items()},
        "workloads": table,
    }


def write_rates(doc: dict, paths: list[Path]) -> None:
    """Write ``doc`` to each of ``paths`` (through a temporary file that replaces it whole)."""
    text = json.dumps(doc, indent=1)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
