"""The GPU check: one command that, on one CUDA GPU, checks the engine against the CPU and measures
the rates the cost model needs, in at most ~5 minutes.

Usage (from a plain checkout, nothing installed)::

    PYTHONPATH=$PWD python -m benchmarks.gpu_check --out gpu_check.json [--dry-run] [--only PREFIX]

It writes ``{device, torch, dry_run, checks: [{name, passed, detail}], rates, projections}``:

- ``agree-float64/<experiment>``: a small batched run of every experiment of every registered
  family (``simulate.families``: ``Family.check_spec``; logistic-pinv, multinomial, mlp, toy2d,
  modadd, canaries) in float64 on the device equals the same run on the CPU to ``FLOAT64_RTOL``
  (every metric of the results table; identities exactly); a family that declares no float64
  run (gpt2: float32 only) is a skipped check;
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
import contextlib
import dataclasses
import importlib
import json
import math
import platform
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

RUN_NEEDS = ("pandas", "pyarrow")  # what every run directory needs
FLOAT64_RTOL = 1e-6  # float64 device vs CPU: every metric, relative ...
FLOAT64_ATOL = 1e-9  # ... plus this absolute slack (metrics near 0)
SEED_SPREAD_K = 2.0  # float32 by outcome: mean difference within K x the std over seeds ...
ACC_FLOOR = 0.05  # ... plus this floor (few seeds, small test sets)
MEMORIZED = 0.99  # a teacher memorizes its set when its train accuracy reaches this


@dataclass(frozen=True)
class Profile:
    """Sizes of one check run: ``GPU`` on a CUDA device, ``DRY`` on the CPU."""

    name: str
    scale: float  # epochs multiplier of the agreement runs
    seeds: int  # seeds of the float32 outcome runs
    min_s: float  # shortest trusted timing (s)
    timings: int
    gemm_size: int
    paper: tuple  # (d, p, c, n, rho, R) of the MLP paper slice
    quick: tuple  # (d, p, c, n, rho, R) of the MLP quick scale
    multi: tuple  # (d, c, n, taus) of the multinomial-tau slice
    logistic: tuple  # (d, n, seeds) of the logistic teachers
    mlp_teachers: tuple  # (d, p, c, n, teachers)
    modadd: dict  # ModAddSpec overrides of the transformer slice
    modadd_students: int
    max_replicas: int  # memory check: most students asked for


GPU = Profile(
    "gpu",
    1.0,
    4,
    0.5,
    3,
    8192,
    (1000, 500, 100, 17000, 0.95, 16),
    (100, 50, 100, 1600, 0.65, 32),
    (1000, 2, 2500, 40),
    (1600, 2400, 5),
    (1000, 500, 100, 2500, 5),
    {},
    8,
    512,
)
DRY = Profile(
    "dry-run",
    0.2,
    3,
    0.05,
    3,
    256,
    (40, 32, 10, 400, 0.9, 2),
    (20, 16, 10, 200, 0.65, 4),
    (40, 2, 200, 8),
    (40, 100, 3),
    (40, 32, 10, 200, 2),
    dict(p=13, train_frac=0.5, d_model=16, n_heads=2, d_head=8, d_mlp=32),
    2,
    16,
)


# ---------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------
@dataclass
class Report:
    only: tuple[str, ...] = ()
    checks: list[dict] = field(default_factory=list)
    log: bool = True
    start: float = field(default_factory=time.perf_counter)
    budget_s: float | None = None  # checks not started by then are skipped (the 5-minute cap)

    def over_budget(self) -> bool:
        return self.budget_s is not None and time.perf_counter() - self.start > self.budget_s

    @contextlib.contextmanager
    def guard(self, name: str):
        """Run a block as check ``name``'s work: an exception fails that check only."""
        try:
            yield
        except Exception as err:
            self.add(name, False, f"raised {_last_line(err)}")

    def wanted(self, name: str) -> bool:
        return not self.only or any(name.startswith(p) for p in self.only)

    def touches(self, prefix: str) -> bool:
        """Whether any wanted check's name starts with ``prefix``."""
        return not self.only or any(p.startswith(prefix) or prefix.startswith(p) for p in self.only)

    def add(self, name: str, passed: bool | None, detail: str) -> None:
        self.checks.append({"name": name, "passed": passed, "detail": detail})
        if self.log:
            mark = {True: "pass", False: "FAIL", None: "skip"}[passed]
            elapsed = time.perf_counter() - self.start
            print(f"[{elapsed:5.1f} s] {mark}  {name}: {detail}", flush=True)

    def run(self, name: str, fn, *, needs: tuple[str, ...] = (), force: bool = False) -> object:
        """Run ``fn() -> (passed, detail[, value])`` as check ``name`` (if wanted, or ``force``);
        a missing module in ``needs`` skips it, an exception fails it (with its last line)."""
        if not (force or self.wanted(name)):
            return None
        if self.over_budget():
            self.add(name, None, f"skipped: past the {self.budget_s:g} s budget")
            return None
        missing = _missing(needs)
        if missing:
            self.add(name, None, f"skipped: {missing}")
            return None
        try:
            out = fn()
        except Exception as err:  # a failed check, not a crash of the whole run
            self.add(name, False, f"raised {_last_line(err)}")
            return None
        passed, detail, *value = out
        self.add(name, passed, detail)
        return value[0] if value else None


def _last_line(err: BaseException) -> str:
    return traceback.format_exception_only(type(err), err)[-1].strip()


def _missing(modules: tuple[str, ...]) -> str | None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as err:  # ImportError, or a broken install
            return f"{name} does not import here ({type(err).__name__}: {err})"
    return None


# ---------------------------------------------------------------------------------------------
# the families' runs
# ---------------------------------------------------------------------------------------------
def family_spec(command: str, kind: str, prof: Profile):
    """The spec of an experiment's agreement run (its family's ``check_spec``): ``kind``
    "float64" (short) or "float32" (longer, several seeds, settings clearly inside their
    phases); None where the family declares none."""
    from softleak.simulate.families import for_command

    return for_command(command).check_spec(command, kind, scale=prof.scale, seeds=prof.seeds)


def family_needs(command: str) -> tuple[str, ...]:
    from softleak.simulate.families import for_command

    return (*RUN_NEEDS, *for_command(command).needs)


def run_table(spec, device: str, root: Path, tag: str):
    """The results table of ``spec`` run on ``device`` into a fresh folder under ``root``."""
    from softleak import simulate

    spec = dataclasses.replace(spec, device=device)
    out = root / f"{tag}-{device.replace(':', '')}"
    return simulate.run(spec, out=out, progress=False, restart=True)


METRIC_WORDS = ("acc", "_ce", "mse", "loss", "entropy")
SEED_COLUMNS = ("seed", "student_seed", "data_seed", "teacher_seed", "model_seed", "split_seed")


def _columns(table) -> tuple[list[str], list[str]]:
    """(key columns, metric columns) of a results table; wall times are neither."""
    keys, metrics = [], []
    for col in table.columns:
        if "wall" in col or col in ("run_id",):
            continue
        numeric = table[col].dtype.kind in "fc"
        if numeric and any(w in col for w in METRIC_WORDS):
            metrics.append(col)
        elif table[col].map(lambda v: isinstance(v, str | int | float | bool)).all():
            keys.append(col)
    return keys, metrics


def _aligned(a, b):
    keys, metrics = _columns(a)
    a = a.sort_values(keys, kind="stable").reset_index(drop=True)
    b = b.sort_values(keys, kind="stable").reset_index(drop=True)
    return a, b, keys, metrics


def compare_float64(a, b) -> tuple[bool, str]:
    """Every metric of table ``b`` (device) within ``FLOAT64_RTOL`` of table ``a`` (CPU)."""
    import numpy as np

    if len(a) != len(b):
        return False, f"{len(a)} CPU rows vs {len(b)} device rows"
    a, b, keys, metrics = _aligned(a, b)
    for k in keys:
        if not a[k].equals(b[k]):
            return False, f"column {k} differs between the CPU and the device"
    worst, where = 0.0, ""
    for m in metrics:
        x, y = a[m].to_numpy(float), b[m].to_numpy(float)
        both_nan = np.isnan(x) & np.isnan(y)
        err = np.where(both_nan, 0.0, np.abs(x - y) / (FLOAT64_ATOL + FLOAT64_RTOL * np.abs(x)))
        if np.isnan(err).any():
            return False, f"{m}: NaN on one side only"
        if err.max() > worst:
            worst, where = float(err.max()), m
    detail = (
        f"{len(a)} rows x {len(metrics)} metrics; worst {where or '-'} at "
        f"{worst:.2g} x the tolerance (rtol {FLOAT64_RTOL:g}, atol {FLOAT64_ATOL:g})"
    )
    return worst <= 1.0, detail


def compare_outcomes(a, b, ignore: tuple[str, ...] = ()) -> tuple[bool, str]:
    """By outcome: per setting (every key but the seeds and ``ignore``), the same phase
    (teachers memorize or not) and every accuracy's mean over seeds within the seed spread."""
    a, b, keys, metrics = _aligned(a, b)
    setting = [
        k for k in keys if k not in SEED_COLUMNS and not k.endswith("_seed") and k not in ignore
    ]
    accs = [m for m in metrics if "acc" in m]
    label_a, label_b = _labels(a, setting), _labels(b, setting)
    if set(label_a) != set(label_b):
        return False, "the CPU and the device ran different settings"
    problems, worst, memorized = [], 0.0, []
    for key in sorted(set(label_a)):
        rows_a, rows_b = a[label_a == key], b[label_b == key]
        if "teacher_train_acc" in accs:
            pa = rows_a["teacher_train_acc"].mean() >= MEMORIZED
            pb = rows_b["teacher_train_acc"].mean() >= MEMORIZED
            memorized.append(pa)
            if pa != pb:
                problems.append(f"phase differs at {key}")
        for m in accs:
            xa, xb = rows_a[m].dropna(), rows_b[m].dropna()
            if xa.empty and xb.empty:
                continue
            if xa.empty or xb.empty:
                problems.append(f"{m} missing on one side at {key}")
                continue
            spread = max(_std(xa), _std(xb))
            gap = abs(float(xa.mean()) - float(xb.mean()))
            tol = SEED_SPREAD_K * spread + ACC_FLOOR
            worst = max(worst, gap / tol)
            if gap > tol:
                problems.append(f"{m} {gap:.3f} apart (> {tol:.3f}) at {key}")
    detail = (
        f"{len(set(label_a))} settings, {len(accs)} accuracies; teachers memorized in "
        f"{sum(memorized)} of {len(memorized)} settings; worst gap {worst:.2f} x its tolerance "
        f"({SEED_SPREAD_K:g} std over seeds + {ACC_FLOOR:g})"
    )
    if problems:
        return False, detail + "; " + "; ".join(problems[:3])
    return True, detail


def _labels(table, columns):
    """One text label per row naming its setting (NaN-safe, unlike a groupby on float keys)."""
    if not columns:
        return table.index.map(lambda _: "all")
    parts = [table[c].map(lambda v, c=c: f"{c}={v}") for c in columns if c not in ("experiment",)]
    label = parts[0]
    for part in parts[1:]:
        label = label + "," + part
    return label


def _std(x) -> float:
    return float(x.std(ddof=1)) if len(x) > 1 else 0.0


def check_families(report: Report, prof: Profile, device: str, root: Path) -> None:
    """Every experiment of every registered family (``simulate.families``)."""
    from softleak.simulate.families import FAMILIES, family

    for name in FAMILIES:
        try:
            commands = family(name).commands()
        except Exception as err:  # a family whose modules do not import here
            report.add(f"agree/{name}", None, f"skipped: {_last_line(err)}")
            continue
        for command in commands:
            for kind in ("float64", "float32"):
                _check_agreement(report, prof, device, root, command, kind)


def _check_agreement(report, prof, device, root, command: str, kind: str) -> None:
    name = f"agree-{kind}/{command}"
    if report.wanted(name) and family_spec(command, kind, prof) is None:
        report.add(name, None, f"skipped: its family declares no {kind} run")
        return

    def check():
        spec = family_spec(command, kind, prof)
        t0 = time.perf_counter()
        cpu = run_table(spec, "cpu", root, f"{command}-{kind}-ref")
        t1 = time.perf_counter()
        dev = run_table(spec, device, root, f"{command}-{kind}")
        t2 = time.perf_counter()
        ok, detail = (compare_float64 if kind == "float64" else compare_outcomes)(cpu, dev)
        return ok, f"{detail} (CPU {t1 - t0:.1f} s, {device} {t2 - t1:.1f} s)"

    report.run(name, check, needs=family_needs(command))


# ---------------------------------------------------------------------------------------------
# memory
# ---------------------------------------------------------------------------------------------
def check_memory(report: Report, prof: Profile, device: str) -> None:
    def check():
        import torch

        from benchmarks import bench_mlp
        from benchmarks.slice_specs import eager
        from softleak.simulate import protocol
        from softleak.simulate.memory import (
            BUDGET_FRACTION,
            free_bytes,
            replica_batch,
            shared_bytes,
            student_bytes,
        )

        d, p, c, n, rho, _ = prof.paper
        cfg = dataclasses.replace(bench_mlp.PAPER_SLICE, d=d, p=p, c=c, n=n, rho=rho)
        spec = bench_mlp.student_spec(cfg, prof.max_replicas, 1)
        spec = eager(dataclasses.replace(spec, device=device, max_replicas=prof.max_replicas))
        cuda = device.startswith("cuda")
        teacher = protocol.train_teachers(spec, [(d, c, n, 0)])[0]
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
        free = free_bytes(device)
        R = replica_batch(spec, d, c, n)
        runs = protocol.student_runs(spec, teacher.key)[:R]
        budget = BUDGET_FRACTION["cuda" if cuda else "cpu"] * free
        model_bytes = shared_bytes(spec, d, c, n) + R * student_bytes(spec, d, c, n)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        try:
            protocol.gradient_students(spec, teacher, runs)
        except torch.cuda.OutOfMemoryError as err:  # the sizing is wrong
            torch.cuda.empty_cache()
            return False, f"replica_batch picked {R} students and the device ran out: {err}"
        detail = (
            f"replica_batch picked {R} students (d={d} p={p} c={c} n={n}); modelled "
            f"{model_bytes / 1e9:.3g} GB of a {budget / 1e9:.3g} GB budget"
        )
        if not cuda:
            return True, detail + "; trained (peak memory is measured on CUDA only)"
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        torch.cuda.empty_cache()  # the rates below start from an empty cache
        per = (peak - shared_bytes(spec, d, c, n)) / R
        detail += (
            f"; measured peak {peak / 1e9:.3g} GB ({per / 1e6:.0f} MB per student vs "
            f"{student_bytes(spec, d, c, n) / 1e6:.0f} MB modelled)"
        )
        return peak <= budget, detail

    report.run("memory/replica_batch", check)


# ---------------------------------------------------------------------------------------------
# rates
# ---------------------------------------------------------------------------------------------
def _allowed(precision: str, device: str) -> str | None:
    """None when the precision policy runs ``precision`` natively on ``device``, else its
    reason."""
    from softleak.simulate.precision import require_precision

    try:
        mechanism = require_precision(precision, device)
    except ValueError as err:
        return str(err)
    return None if mechanism.native else f"{precision} is not native here ({mechanism.probe})"


def measure_rates(report: Report, prof: Profile, device: str) -> dict | None:
    """Task A's rates document for ``device`` (GEMM peaks and the workload rows)."""
    import torch

    from benchmarks.common import MEASUREMENT_ERROR, OK, gemm_timing, per_epoch
    from benchmarks.rates_doc import rates_document
    from benchmarks.timed_run import Bench

    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    b = Bench(min_s=prof.min_s, timings=prof.timings)
    usable = []
    for p in ("fp32", "tf32", "bf16", "bf16r"):
        why = _allowed(p, device)
        if why is None:
            usable.append(p)
        elif report.wanted(f"rates/{p}"):
            report.add(
                f"rates/{p}", None, f"skipped on {device}: simulate.precision refuses it: {why}"
            )

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
        _rate_rows(report, b, prof, device, usable, epoch, None if cuda else 1)
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
    return doc


def _rate_rows(
    report: Report, b, prof: Profile, device: str, precisions, epoch, th: int | None
) -> None:
    """The workload rows (``benchmarks.rates_doc.Row``) of the paper slices on ``device``, the
    engine on ``th`` threads (None: its own choice). A slice that raises fails its own check."""
    import torch

    from benchmarks import bench_mlp
    from benchmarks.rates_doc import Row
    from benchmarks.slice_specs import TAUS_5A, eager, linear_slice, modadd_bench_spec
    from softleak.simulate import protocol
    from softleak.simulate.chunks import train_students
    from softleak.simulate.data import student_split
    from softleak.simulate.estimate import rows_of
    from softleak.simulate.spec import SweepSpec

    def measure(workload, part, models, geo, run, span):
        for p in precisions:
            name = f"rates/{workload}/{part}/{p}"
            if not report.wanted(name):
                continue
            if report.over_budget():
                report.add(name, None, f"skipped: past the {report.budget_s:g} s budget")
                continue
            with report.guard(name):
                t = epoch(lambda e, p=p: run(e, p), span)
                b.rows.append(Row(workload, part, p, models, geo["flops"], t, geo))

    def teachers(workload, spec, keys, geo, span):
        def run(e, p):
            protocol.train_teachers(_e(spec, teacher=e, precision=p), keys, th)

        measure(workload, "teachers", len(keys), geo, run, span)

    # logistic-pinv teachers (own inputs, bmm) and the MLP teachers
    with report.guard("rates/logistic-pinv/teachers"):
        d, n, seeds = prof.logistic
        spec = eager(SweepSpec("logistic-pinv", d=(d,), n=(n,), rho=(0.5,), seeds=seeds))
        spec = dataclasses.replace(spec, device=device)
        keys = [(d, 2, n, r) for r in range(seeds)]
        teachers("logistic-pinv", spec, keys, linear_slice(seeds, d, 1, n, shared=False), 40)
    with report.guard("rates/mlp-paper-slice/teachers"):
        d, hp, c, n, k = prof.mlp_teachers
        spec = SweepSpec("mlp", d=(d,), c=(c,), n=(n,), rho=(0.5,), seeds=k, p_teacher=(hp,))
        spec = dataclasses.replace(eager(spec), p_student=(hp,), device=device)
        keys = [(d, c, n, r) for r in range(k)]
        geo = linear_slice(k, d, c, n, shared=False, hidden=(hp,))
        teachers("mlp-paper-slice", spec, keys, geo, 10)
    # multinomial-tau students (the Fig. 5A slice)
    with report.guard("rates/multinomial-tau/students"):
        d, c, n, taus = prof.multi
        spec = SweepSpec(
            "multinomial",
            d=(d,),
            c=(c,),
            n=(n,),
            rho=(0.8,),
            tau=TAUS_5A[:: max(1, len(TAUS_5A) // taus)][:taus],
            shuffle="both",
        )
        spec = dataclasses.replace(eager(spec), device=device)
        teacher = protocol.train_teachers(_e(spec, teacher=1), [(d, c, n, 0)])[0]
        runs = protocol.student_runs(spec, teacher.key)
        geo = linear_slice(len(runs), d, c, rows_of(n, c, 0.8), shared=True)

        def run_multi(e, p, spec=spec, teacher=teacher):
            train_students(_e(spec, student=e, precision=p), teacher, th)

        measure("multinomial-tau", "students", len(runs), geo, run_multi, 100)
    # MLP students: the paper slice and the quick scale
    for workload, (d, hp, c, n, rho, R), span in (
        ("mlp-paper-slice", prof.paper, 2),
        ("mlp-quick-scale", prof.quick, 50),
    ):
        with report.guard(f"rates/{workload}/students"):
            cfg = dataclasses.replace(bench_mlp.PAPER_SLICE, d=d, p=hp, c=c, n=n, rho=rho)
            spec = dataclasses.replace(eager(bench_mlp.student_spec(cfg, R, 1)), device=device)
            teacher = protocol.train_teachers(spec, [(d, c, n, 0)])[0]
            runs = protocol.student_runs(spec, teacher.key)
            rows = len(student_split(teacher.data.y, rho, c)[0])
            geo = linear_slice(R, d, c, rows, shared=True, hidden=(hp,))

            def run_mlp(e, p, spec=spec, teacher=teacher, runs=runs):
                protocol.gradient_students(_e(spec, student=e, precision=p), teacher, runs, th)

            measure(workload, "students", R, geo, run_mlp, span)
    # the modadd transformer's students
    with report.guard("rates/modadd-transformer/students"):
        from softleak.simulate.modadd.data import make_data
        from softleak.simulate.modadd.spec import student_runs
        from softleak.simulate.modadd.students import train_students as modadd_students

        spec = modadd_bench_spec(prof.modadd_students, **prof.modadd, device=device)
        data = make_data(spec)
        runs = student_runs(spec)
        gen = torch.Generator().manual_seed(0)
        z = (3 * torch.randn(spec.p**2, spec.p, dtype=torch.float64, generator=gen)).to(device)
        R, m = len(runs), spec.n_train(0.5)
        geo = {
            "family": "transformer",
            "flops": 3.0 * spec.flops_per_sample() * m * R,
            "steps": 1,
            "shared": True,
        }

        def run_modadd(e, p, spec=spec):
            modadd_students(_e(spec, student=e, precision=p), data, z, runs, th)

        measure("modadd-transformer", "students", R, geo, run_modadd, 5)


def _e(spec, teacher: int | None = None, student: int | None = None, precision: str | None = None):
    """``spec`` with other epochs and precision."""
    changes: dict = {}
    if teacher is not None:
        changes["teacher_epochs"] = teacher
    if student is not None:
        changes["student_epochs"] = student
    if precision is not None:
        changes["precision"] = precision
    return dataclasses.replace(spec, **changes)


def projections(rates_doc: dict) -> dict:
    """Paper grids and every recipe's paper preset at the measured rates (and the assumed)."""
    from benchmarks.workloads import paper_grids
    from softleak.simulate.estimate import estimate, rates_from_dict

    rates = rates_from_dict(rates_doc, "gpu_check")
    key = "h200_s" if rates.device != "cpu" else "cpu_s"
    grids = []
    for name, (spec, ref_cost) in paper_grids().items():
        measured, assumed = estimate(spec, rates=rates), estimate(spec)
        grids.append(
            {"grid": name, "seconds": measured[key], "assumed_seconds": assumed[key],
             "reference": ref_cost}
        )  # fmt: skip
    out = {
        "column": key,
        "calibration": rates.summary(),
        "not_used": list(rates.rejected),
        "grids": grids,
        "paper_presets": None,
        "paper_presets_total_s": None,
    }
    try:
        from softleak.paper_figs.registry import load_recipes

        recipes = load_recipes()
    except Exception as err:  # the recipes' plotting stack may be missing on a bare machine
        out["paper_presets_error"] = f"{type(err).__name__}: {err}"
        return out
    presets = []
    for name, recipe in recipes.items():
        sweeps = recipe.presets["paper"].sweeps.values()
        measured = sum(estimate(s, rates=rates)[key] for s in sweeps)
        assumed = sum(estimate(s)[key] for s in sweeps)
        presets.append({"figure": name, "seconds": measured, "assumed_seconds": assumed})
    out["paper_presets"] = presets
    out["paper_presets_total_s"] = sum(r["seconds"] for r in presets)
    return out


# ---------------------------------------------------------------------------------------------
# the bf16 probe
# ---------------------------------------------------------------------------------------------
def check_bf16(report: Report, prof: Profile, device: str, root: Path) -> None:
    from softleak.simulate.precision import CONTRACTS, resolve
    from softleak.simulate.precision_probe import probe

    def gemm_probe():
        import torch

        found = probe(device)
        gen = torch.Generator().manual_seed(0)
        A = torch.randn(512, 512, generator=gen).to(device)
        B = torch.randn(512, 512, generator=gen).to(device)
        oracle = A.bfloat16().double() @ B.bfloat16().double()
        scale = float((A @ B).double().sub(oracle).norm())
        bits, missing, failed = [], [], []
        for precision in ("bf16", "bf16r"):
            mechanism = resolve(precision, device)
            if mechanism is None or not mechanism.native:
                missing.append(precision)
                continue
            with mechanism.context(device):
                out = A @ B
            want = oracle.float().bfloat16().double() if precision == "bf16r" else oracle
            share = float(out.double().sub(want).norm()) / scale
            ok = share < (0.05 if precision == "bf16" else 0.6) and out.dtype == torch.float32
            bits.append(f"{precision} by {mechanism.name}: {share:.2g} of the rounding off")
            if not ok:
                failed.append(precision)
        detail = f"{'; '.join(bits) or 'no bf16 contract runs natively'} [{found.line()}]"
        if failed:
            return False, f"{', '.join(failed)} off its contract: {detail}"
        if missing:
            where = "GPU" if device.startswith("cuda") else "CPU"
            names = ", ".join(f"{p} ({CONTRACTS[p]})" for p in missing)
            return None, f"finding: {where} has no fast mechanism for {names}; {detail}"
        return True, detail

    report.run("bf16-probe/gemm", gemm_probe)

    # A short training run at the first reduced precision that runs natively, against fp32.
    family = "multinomial"  # the smallest replica-engine family with a precision column

    def train_probe():
        native = [p for p in ("bf16", "bf16r") if (m := resolve(p, device)) and m.native]
        if not native:
            return None, f"finding: no bf16 contract runs natively on {device}"
        spec = family_spec(family, "float32", prof)
        fp32 = run_table(spec, device, root, f"probe-{family}-fp32")
        low = run_table(dataclasses.replace(spec, precision=native[0]), device, root, "probe-low")
        ok, detail = compare_outcomes(fp32, low, ignore=("precision",))
        how = resolve(native[0], device).name
        return ok, f"{family}, {native[0]} ({how}) vs fp32 on {device}: {detail}"

    report.run("bf16-probe/train", train_probe, needs=family_needs(family))


# ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
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
    args = ap.parse_args(argv)
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
                        "projections", lambda: _projection_check(rates), force=True
                    )
            check_bf16(report, prof, device, root)
    out["wall_s"] = time.perf_counter() - start
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1, default=_json_default))
    failed = [c["name"] for c in report.checks if c["passed"] is False]
    skipped = [c["name"] for c in report.checks if c["passed"] is None]
    print(
        f"{len(report.checks) - len(failed) - len(skipped)} passed, {len(failed)} failed, "
        f"{len(skipped)} skipped in {out['wall_s']:.0f} s; report in {args.out}"
    )
    return 1 if failed else 0


def _projection_check(rates: dict):
    proj = projections(rates)
    finite = all(math.isfinite(g["seconds"]) and g["seconds"] > 0 for g in proj["grids"])
    text = "; ".join(
        f"{g['grid'].split(' (')[0]} {g['seconds'] / 3600:.3g} h" for g in proj["grids"]
    )
    return finite, f"{proj['column']} at the measured rates ({proj['calibration']}): {text}", proj


def _json_default(value):
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
