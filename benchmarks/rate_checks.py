"""The ``rates/...`` checks: the GEMM peaks and the paper slices' step rates on the device at every
precision the policy runs natively there (a refused one is a skipped check with its reason), as a
rates document (``benchmarks.rates_doc``) whose every row is checked against its precision's GEMM
peak."""

from __future__ import annotations

import time

from benchmarks.check_profiles import Profile
from benchmarks.check_report import Report


def _allowed(precision: str, device: str) -> str | None:
    """None when the precision policy runs ``precision`` natively on ``device``, else its
    reason."""
    from softleak.simulate.precision import require_precision

    try:
        mechanism = require_precision(precision, device)
    except ValueError as err:
        return str(err)
    return None if mechanism.native else f"{precision} is not native here ({mechanism.probe})"


def _usable(report: Report, device: str) -> list[str]:
    """The precisions timed on ``device``; each refused one is a skipped check with its reason."""
    usable = []
    for p in ("fp32", "tf32", "bf16", "bf16r"):
        why = _allowed(p, device)
        if why is None:
            usable.append(p)
        elif report.wanted(f"rates/{p}"):
            report.add(
                f"rates/{p}", None, f"skipped on {device}: simulate.precision refuses it: {why}"
            )
    return usable


def measure_rates(report: Report, prof: Profile, device: str) -> dict | None:
    """Task A's rates document for ``device`` (GEMM peaks and the workload rows)."""
    import torch

    from benchmarks.common import gemm_timing, per_epoch
    from benchmarks.rate_slices import rate_rows
    from benchmarks.rates_doc import rates_document
    from benchmarks.timed_run import Bench

    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    b = Bench(min_s=prof.min_s, timings=prof.timings)
    usable = _usable(report, device)

    def epoch(run, span):
        return per_epoch(run, 1, 1 + span, min_s=b.min_s, timings=b.timings, sync=sync)

    # GEMM peaks with the engine's operands at every precision it runs here, and bf16 tensors
    # (what bf16 autocast and the casts multiply) for reference. On a CPU everything runs on
    # one thread (as benchmarks.run_all: a shared machine's second core is not ours).
    from softleak.simulate.device import device_name, thread_count

    with thread_count(int(torch.get_num_threads()) if cuda else 1):
        peaks, reference = {}, {}
        for p in ("fp64", *usable, "bf16-tensors"):
            with report.guard(f"rates/gemm/{p}"):
                rate, _ = gemm_timing(p, prof.gemm_size, device, min_s=b.min_s, timings=b.timings)
                (reference if p == "bf16-tensors" else peaks)[p] = rate
        rate_rows(report, b, prof, device, usable, epoch, None if cuda else 1)
    gemm = {k: v for k, v in peaks.items() if v}
    meta = {
        "device": "cuda" if cuda else "cpu",
        "device_name": device_name(device),
        "torch": torch.__version__,
        "min_timing_s": b.min_s,
        "timings": b.timings,
        "gemm_size": prof.gemm_size,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    doc = rates_document(b.rows, gemm, reference, meta=meta)
    _check_rows(report, doc)
    return doc


def _check_rows(report: Report, doc: dict) -> None:
    """A ``rates/<workload>/<part>/<precision>`` check per row of the rates document."""
    from benchmarks.common import MEASUREMENT_ERROR, OK

    for row in doc["workloads"]:
        name = f"rates/{row['workload']}/{row['part']}/{row['precision']}"
        if not report.wanted(name):
            continue
        if row["status"] == OK:
            report.add(
                name,
                True,
                f"{row['gflop_per_s']:.4g} GFLOP/s, {row['fraction_of_gemm']:.0%} of the "
                f"{row['precision']} GEMM ({row['timing']})",
            )
        elif row["status"] == MEASUREMENT_ERROR:
            report.add(
                name,
                False,
                f"measurement error: {row['measured_gflop_per_s']:.4g} GFLOP/s is above the "
                f"{row['precision']} GEMM peak",
            )
        else:
            report.add(name, False, f"{row['status']}: {row['timing']}")
