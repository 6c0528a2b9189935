"""The benchmark suite: throughput of the engine's workloads, against a one-model-at-a-time loop that
follows the reference's protocol, and projected times of the paper's grids.

Usage: ``python -m benchmarks.run_all [--quick] [--threads N] [--json FILE] [--only WORKLOAD]``

Workload slices (their ids are those of the rates file below):

- ``logistic-pinv``: 5 binary teachers (d = 1600, n = 2400, per-replica inputs through ``bmm``) and
  the pseudo-inverse students of one teacher (float64, every rho x 2 shuffles);
- ``multinomial-tau``: 5 teachers (d = 1000, c = 2, n = 2500) and the 80 students of one teacher
  (40 tau x 2 shuffles, rho 0.8) -- the Fig. 5A workload;
- ``mlp-paper-slice``: MLP teachers (d = 1000, p = 500, c = 100, n = 2500) and students of one
  teacher on 16,100 rows (n = 17,000, rho 0.95), fp32 and the reduced precisions that run here;
- ``mlp-quick-scale``: R MLP students (d = 100, p = 50, c = 100, 1,000 rows) on one input matrix;
- ``modadd-transformer``: the modular-addition transformer (p = 113), its teacher and 4 students.

For each it prints the work per step in FLOPs (matrix multiplies, counted as in
``simulate.estimate``), the FLOP/s achieved, that rate as a fraction of the same-precision GEMM
peak (2048^3, the operands the engine uses: float64, float32, and float32 under
``precision_scope`` at each reduced precision this machine computes natively: ``bf16`` where
oneDNN's flag meets its contract, ``bf16r`` where bf16 products pay; bf16 tensors for reference) measured in the same run on the same
threads, and the speed-up against the float32 ``benchmarks.common.reference_loop``
(nn.Linear / nn.Sequential + torch.optim.Adam + F.cross_entropy, one model at a time;
``np.linalg.pinv`` per student for the pinv students).

Timing (``benchmarks.common``): every timing lasts >= 0.5 s (a call is repeated until it does), rates
are medians of 3 timings, and a per-epoch time is the difference of a long and a short run (set-up
cancels) only when that difference itself lasts >= 0.5 s -- else it is reported as unmeasurable. A
rate above its precision's GEMM peak is a measurement error: printed so, and used nowhere.

The rates go to a JSON file (``--json FILE``, and always ``simulate.estimate.default_rates_path()``,
which ``softleak figs list`` reads): ``{"gemm": {...}, "workloads": [...]}``. From them the paper
grids are projected on this CPU with ``simulate.estimate`` (its model scaled to the measured
rates, as ``softleak figs list``) and on an H200 (ASSUMED rates, no GPU here; ``python -m
benchmarks.gpu_check`` measures them on one).
"""

import argparse
import datetime
import os
import platform
import time
from pathlib import Path

import torch

from benchmarks.common import reference_loop
from benchmarks.peaks import best_peaks, measure_peaks, peak_precisions
from benchmarks.rates_doc import rates_document, write_rates
from benchmarks.slices import WORKLOADS
from benchmarks.suite_report import print_legend, print_peaks, print_rows, report_projections
from benchmarks.timed_run import FULL, QUICK, Bench, Sizes
from softleak.simulate import estimate, protocol
from softleak.simulate.chunks import train_students
from softleak.simulate.device import cpu_name, thread_count
from softleak.simulate.spec import SweepSpec


def _parser() -> argparse.ArgumentParser:
    """The command line (``--help`` shows the first line of the module's docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small slices (a few minutes)")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch/BLAS threads for the engine, the reference loop and the GEMM (default 1)",
    )
    ap.add_argument(
        "--json",
        metavar="FILE",
        help="also write the measured rates here (always written to "
        f"{estimate.default_rates_path()})",
    )
    ap.add_argument(
        "--only",
        metavar="WORKLOAD",
        action="append",
        choices=list(WORKLOADS),
        help="time only these workloads (repeatable; default all); such a partial run writes "
        "--json only, not the cache figs list reads",
    )
    return ap


def _warm_up() -> None:
    """The first autograd/optimizer step of a process costs ~2 s of lazy initialisation: pay it
    before any timing (both the engine and the loop)."""
    X = torch.randn(64, 16)
    reference_loop([X, X, X], [torch.rand(64), torch.randint(0, 3, (64,)), torch.rand(64, 3)], 2)
    reference_loop([X], [torch.randint(0, 3, (64,))], 2, hidden=8)
    spec = SweepSpec("multinomial", d=(16,), c=(2,), n=(32,), teacher_epochs=2, student_epochs=2)
    teacher = protocol.train_teachers(spec, [(16, 2, 32, 0)], threads=1)[0]
    train_students(spec, teacher, 1)


def _print_header(args: argparse.Namespace, b: Bench, load0: float) -> None:
    """The run's machine, threads and timing rules."""
    print(
        f"softleak benchmark suite ({'quick' if args.quick else 'full'}): torch "
        f"{torch.__version__}, {platform.machine()}, {os.cpu_count()} cores, "
        f"load average {load0:.1f} at start"
    )
    print(
        f"threads: {b.threads} torch/BLAS thread(s) for the engine, the one-at-a-time loop and the "
        "GEMM" + (" (default; --threads N to change)" if args.threads is None else "")
    )
    print(f"timings: medians of {b.timings} timings of >= {b.min_s:g} s each")


def _time_workloads(args: argparse.Namespace, sz: Sizes, b: Bench) -> tuple[dict, dict]:
    """Warm up, then the GEMM peaks, the workloads (``--only``) and the peaks again."""
    with thread_count(b.threads):
        _warm_up()
        peaks0 = measure_peaks(sz.gemm_size, b)
        b.log(" GEMM peaks measured")
        for name, bench in WORKLOADS.items():
            if args.only and name not in args.only:
                continue
            bench(sz, b)
        peaks1 = measure_peaks(sz.gemm_size, b)
    return peaks0, peaks1


def _meta(args: argparse.Namespace, sz: Sizes, b: Bench, loads: list[float]) -> dict:
    """The run facts at the head of the rates file (the load averages seen included)."""
    return {
        "device": "cpu",
        "device_name": cpu_name(),
        "torch": torch.__version__,
        "threads": b.threads,
        "quick": args.quick,
        "written": datetime.datetime.now().isoformat(timespec="seconds"),
        "load_average": [round(x, 2) for x in (*loads, os.getloadavg()[0])],
        "cores": os.cpu_count(),
        "min_timing_s": b.min_s,
        "timings": b.timings,
        "gemm_size": sz.gemm_size,
    }


def _write(doc: dict, args: argparse.Namespace, busy: str | None) -> None:
    """The rates to ``--json`` and (a complete run) to the cache ``softleak figs list`` reads."""
    # A run of some workloads only (--only) leaves the last complete run's cache alone.
    paths = [] if args.only else [estimate.default_rates_path()]
    if args.json:
        paths.insert(0, Path(args.json))
    write_rates(doc, paths)
    if paths:
        print(f"\nrates written to {', '.join(map(str, paths))}")
    if busy:
        print(
            f"these rates were {busy}: the file is marked busy and softleak figs list will not "
            "read it by default; rerun on an idle machine"
        )


def main(argv: list[str] | None = None) -> int:
    """Time the workloads, print and write their rates, and print the projected paper grids."""
    args = _parser().parse_args(argv)
    threads = args.threads or 1
    sz = QUICK if args.quick else FULL
    start = time.perf_counter()
    loads = [os.getloadavg()[0]]  # sampled at every log line: a busy machine sets the rates

    def log(text: str) -> None:
        loads.append(os.getloadavg()[0])
        print(f"[{time.perf_counter() - start:4.0f} s]{text}", flush=True)

    b = Bench(threads=threads, log=log)
    _print_header(args, b, loads[0])
    peaks0, peaks1 = _time_workloads(args, sz, b)
    peaks = best_peaks(peaks0, peaks1)
    print_peaks(sz.gemm_size, peaks0, peaks1, peaks)
    gemm = {k: peaks[k] for k in peak_precisions()}
    reference = {"bf16-tensors": peaks["bf16-tensors"]}
    meta = _meta(args, sz, b, loads)
    busy = estimate.busy_reason(meta)
    meta["busy"] = busy is not None
    doc = rates_document(b.rows, gemm, reference, meta=meta)
    print()
    print_rows(doc["workloads"])
    print_legend(b.min_s, b.timings)
    _write(doc, args, busy)
    report_projections(doc, threads)
    print(
        f"\nLoad average {os.getloadavg()[0]:.1f} at the end; {time.perf_counter() - start:.0f} s."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
