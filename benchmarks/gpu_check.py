"""The GPU check: one command that, on one CUDA GPU, checks the engine against the CPU and measures
the rates the cost model needs, in at most ~5 minutes.

Usage (from a plain checkout, nothing installed)::

    PYTHONPATH=$PWD python -m benchmarks.gpu_check --out gpu_check.json [--dry-run] [--only PREFIX]

It writes ``{device, torch, dry_run, checks: [{name, passed, detail}], rates, projections}``:

- ``agree-float64/<experiment>``: a small batched run of every experiment of every registered
  family (``simulate.families``: ``Family.check_spec``; logistic-pinv, multinomial, mlp, toy2d,
  modadd, canaries) in float64 on the device equals the same run on the CPU to ``FLOAT64_RTOL``
  (every metric of the results table; identities exactly); a family that declares no float64
  run (gpt2: float32 only) is a skipped check (the tolerances live in
  ``benchmarks.table_agreement``);
- ``agree-float32/<experiment>`` (gpt2 too): a longer float32 run agrees by outcome -- the same
  phase (teachers that memorize their set, ``MEMORIZED``) and accuracies within the seed spread
  (``|mean_device - mean_cpu| <= SEED_SPREAD_K * std over seeds + ACC_FLOOR``);
- ``memory/replica_batch``: the batch ``simulate.memory.replica_batch`` picks at the MLP paper
  slice trains without running out of memory, its peak (CUDA) within the budgeted fraction;
- ``rates/...``: fp32 / tf32 / bf16 / bf16r step rates of the paper slices (``benchmarks.run_all``'s
  workload ids and rates format, ``rates`` in the output, readable by ``softleak figs list
  --rates``), each against its precision's GEMM peak; a precision the policy refuses on this
  device (tf32 on a CPU; a bf16 contract with no fast mechanism here, ``simulate.precision``) is a
  skipped check with the reason;
- ``projections``: the paper grids (``benchmarks.workloads.paper_grids``) and every recipe's
  paper preset from those rates (``simulate.estimate.estimate(spec, rates=...)``);
- ``bf16-probe/...``: what ``simulate.precision_probe`` finds on the device, each bf16 contract
  that runs natively checked against its oracle (bf16 operands; bf16r also a rounded result), and
  a short reduced-vs-fp32 training run by outcome. A contract with no fast mechanism on the device
  (oneDNN's flag not engaged on a CPU without AMX, no bf16 units) is a finding, not a failure:
  ``passed: null``, the detail starting ``finding:``.

A check needing a module that does not import (a family's ``needs``: transformers for gpt2,
scikit-learn for the canaries' data set; pandas/pyarrow for the run directories) is skipped: ``passed: null`` with the reason. ``--dry-run`` runs the same code on the
CPU at tiny sizes ("cpu" on both sides), in well under a minute. Exit status: 0 when every check
that ran passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bf16_checks import check_bf16
from benchmarks.check_profiles import DRY, GPU, Profile
from benchmarks.check_report import Report
from benchmarks.family_checks import check_families
from benchmarks.memory_check import check_memory
from benchmarks.projections import projection_check
from benchmarks.rate_checks import measure_rates


def _parser() -> argparse.ArgumentParser:
    """The command line (``--help`` shows the first line of the module's docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="the JSON report to write")
    ap.add_argument(
        "--dry-run", action="store_true", help="the same code on the CPU at tiny sizes (< 1 min)"
    )
    ap.add_argument(
        "--only",
        metavar="PREFIX",
        action="append",
        default=[],
        help="run only the checks whose names start so (repeatable; e.g. agree-float64/, rates/)",
    )
    ap.add_argument("--quiet", action="store_true", help="no line per check")
    ap.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="skip the checks not started after this many seconds (default: 270 on a GPU, so "
        "that the whole run stays within 5 minutes; none for --dry-run)",
    )
    return ap


def _run_checks(report: Report, prof: Profile, device: str, out: dict) -> None:
    """Every check on ``device``, in order; the rates and projections go into ``out``."""
    with tempfile.TemporaryDirectory(prefix="softleak-gpu-check-") as tmp:
        root = Path(tmp)
        check_families(report, prof, device, root)
        check_memory(report, prof, device)
        if report.touches("rates") or report.touches("projections"):
            rates = report.run(
                "rates/measured",
                lambda: (True, "rates of every slice", measure_rates(report, prof, device)),
                force=True,
            )
            out["rates"] = rates
            if rates is not None:
                out["projections"] = report.run(
                    "projections", lambda: projection_check(rates), force=True
                )
        check_bf16(report, prof, device, root)


def _write(out: dict, path: str) -> None:
    """The JSON report (Paths as text, NumPy scalars as numbers)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(out, indent=1, default=_json_default))


def main(argv: list[str] | None = None) -> int:
    """Run the checks, write the report to ``--out``; 0 when every check that ran passed."""
    args = _parser().parse_args(argv)
    import torch

    import softleak

    start = time.perf_counter()
    prof = DRY if args.dry_run else GPU
    budget = args.budget_s if args.budget_s is not None else (None if args.dry_run else 270.0)
    report = Report(only=tuple(args.only), log=not args.quiet, budget_s=budget)
    cuda = torch.cuda.is_available()
    device = "cpu" if args.dry_run else "cuda"
    out = {
        "device": device,
        "device_name": torch.cuda.get_device_name(0) if cuda and not args.dry_run else "cpu",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "softleak": softleak.__version__,
        "dry_run": args.dry_run,
        "profile": dataclasses.asdict(prof),
        "checks": report.checks,
        "rates": None,
        "projections": None,
    }
    if not args.dry_run and not cuda:
        report.add("device/cuda", False, "no CUDA device (torch.cuda.is_available() is False)")
    else:
        report.add("device/" + device, True, f"{out['device_name']}, torch {torch.__version__}")
        _run_checks(report, prof, device, out)
    out["wall_s"] = time.perf_counter() - start
    _write(out, args.out)
    failed = [c["name"] for c in report.checks if c["passed"] is False]
    skipped = [c["name"] for c in report.checks if c["passed"] is None]
    print(
        f"{len(report.checks) - len(failed) - len(skipped)} passed, {len(failed)} failed, "
        f"{len(skipped)} skipped in {out['wall_s']:.0f} s; report in {args.out}"
    )
    return 1 if failed else 0


def _json_default(value):
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
