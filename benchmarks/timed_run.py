"""How a suite run times: the slice sizes (``Sizes``: ``QUICK``, ``FULL``), the run's threads and
timing rules with the rows it collects (``Bench``), and a timing's one-line text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks.common import MIN_TIMING_S, TIMINGS, Timing, per_epoch, time_call
from benchmarks.rates_doc import Row


@dataclass(frozen=True)
class Sizes:
    """Slice sizes and initial epoch spans (per_epoch grows a span that is too short)."""

    logistic_rho: int  # rho values of the pinv slice (the paper: 50)
    logistic_span: int  # teacher epochs between the short and the long run
    pinv_ref_rho: tuple[float, ...]  # rho of the one-at-a-time pinv students (x 2 shuffles)
    multi_teacher_span: int
    multi_student_span: int
    multi_ref_students: int
    mlp_teachers: int
    mlp_teacher_span: int
    paper_students: int  # R of the paper slice
    quick_students: int  # R of the quick-scale slice
    quick_span: int
    modadd_students: int
    gemm_size: int = 2048


QUICK = Sizes(6, 120, (0.35, 0.65), 160, 120, 2, 2, 4, 2, 8, 60, 4)
FULL = Sizes(50, 120, (0.15, 0.35, 0.65, 0.85), 160, 120, 4, 5, 4, 4, 32, 120, 8)


@dataclass
class Bench:
    """How this run times: threads, the minimum timing and the number of timings."""

    threads: int = 1
    min_s: float = MIN_TIMING_S
    timings: int = TIMINGS
    log: Callable[[str], None] = print
    rows: list[Row] = field(default_factory=list)

    def epoch(self, run, span: int, short: int = 1) -> Timing:
        """Seconds per epoch of ``run(epochs)``: the difference of a run ``span`` epochs longer
        and a ``short`` one (``benchmarks.common.per_epoch``)."""
        return per_epoch(run, short, short + span, min_s=self.min_s, timings=self.timings)

    def call(self, fn, warm_up: bool = True) -> Timing:
        """Seconds per call of ``fn`` (``benchmarks.common.time_call``)."""
        return time_call(fn, min_s=self.min_s, timings=self.timings, warm_up=warm_up)


def timing_text(t: Timing) -> str:
    """A timing as printed in the suite's log: milliseconds per unit, or why it is unmeasurable."""
    return f"{t.seconds * 1e3:.4g} ms per unit ({t.note})" if t.ok else f"unmeasurable: {t.note}"
