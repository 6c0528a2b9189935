"""The paper slices timed on the device for ``benchmarks.gpu_check``'s ``rates/...`` checks
(``benchmarks.run_all``'s workload ids, the sizes of the check's profile): the logistic-pinv and
MLP teachers, and the multinomial-tau (Fig. 5A), MLP (paper slice, quick scale) and
modadd-transformer students, each at every usable precision. A slice that raises fails its own
check."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch

from benchmarks import bench_mlp
from benchmarks.check_profiles import Profile
from benchmarks.check_report import Report
from benchmarks.rates_doc import Row
from benchmarks.slice_specs import TAUS_5A, eager, linear_slice, modadd_bench_spec
from benchmarks.timed_run import Bench
from softleak.simulate import protocol
from softleak.simulate.chunks import train_students
from softleak.simulate.data import student_split
from softleak.simulate.estimate import rows_of
from softleak.simulate.spec import SweepSpec


@dataclass
class _Timer:
    """Times a slice's rows into ``b.rows``, one ``rates/<workload>/<part>/<precision>`` check
    per precision, the engine on ``th`` threads (None: its own choice)."""

    report: Report
    b: Bench
    device: str
    precisions: list[str]
    epoch: Callable
    th: int | None

    def measure(self, workload: str, part: str, models: int, geo: dict, run, span: int) -> None:
        """Time ``run(epochs, precision)`` per epoch at each wanted precision into a row."""
        report = self.report
        for p in self.precisions:
            name = f"rates/{workload}/{part}/{p}"
            if not report.wanted(name):
                continue
            if report.over_budget():
                report.add(name, None, f"skipped: past the {report.budget_s:g} s budget")
                continue
            with report.guard(name):
                t = self.epoch(lambda e, p=p: run(e, p), span)
                self.b.rows.append(Row(workload, part, p, models, geo["flops"], t, geo))

    def teachers(self, workload: str, spec, keys: list, geo: dict, span: int) -> None:
        """Time the teachers ``keys`` of ``spec``."""

        def run(e, p):
            protocol.train_teachers(_e(spec, teacher=e, precision=p), keys, self.th)

        self.measure(workload, "teachers", len(keys), geo, run, span)


def rate_rows(
    report: Report, b: Bench, prof: Profile, device: str, precisions, epoch, th: int | None
) -> None:
    """The workload rows (``benchmarks.rates_doc.Row``) of the paper slices on ``device``, the
    engine on ``th`` threads (None: its own choice). A slice that raises fails its own check."""
    timer = _Timer(report, b, device, list(precisions), epoch, th)
    # logistic-pinv teachers (own inputs, bmm) and the MLP teachers
    with report.guard("rates/logistic-pinv/teachers"):
        _logistic_teachers(timer, prof)
    with report.guard("rates/mlp-paper-slice/teachers"):
        _mlp_teachers(timer, prof)
    # multinomial-tau students (the Fig. 5A slice)
    with report.guard("rates/multinomial-tau/students"):
        _multinomial_students(timer, prof)
    # MLP students: the paper slice and the quick scale
    for workload, sizes, span in (
        ("mlp-paper-slice", prof.paper, 2),
        ("mlp-quick-scale", prof.quick, 50),
    ):
        with report.guard(f"rates/{workload}/students"):
            _mlp_students(timer, workload, sizes, span)
    # the modadd transformer's students
    with report.guard("rates/modadd-transformer/students"):
        _modadd_students(timer, prof)


def _logistic_teachers(timer: _Timer, prof: Profile) -> None:
    d, n, seeds = prof.logistic
    spec = eager(SweepSpec("logistic-pinv", d=(d,), n=(n,), rho=(0.5,), seeds=seeds))
    spec = dataclasses.replace(spec, device=timer.device)
    keys = [(d, 2, n, r) for r in range(seeds)]
    timer.teachers("logistic-pinv", spec, keys, linear_slice(seeds, d, 1, n, shared=False), 40)


def _mlp_teachers(timer: _Timer, prof: Profile) -> None:
    d, hp, c, n, k = prof.mlp_teachers
    spec = SweepSpec("mlp", d=(d,), c=(c,), n=(n,), rho=(0.5,), seeds=k, p_teacher=(hp,))
    spec = dataclasses.replace(eager(spec), p_student=(hp,), device=timer.device)
    keys = [(d, c, n, r) for r in range(k)]
    geo = linear_slice(k, d, c, n, shared=False, hidden=(hp,))
    timer.teachers("mlp-paper-slice", spec, keys, geo, 10)


def _multinomial_students(timer: _Timer, prof: Profile) -> None:
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
    spec = dataclasses.replace(eager(spec), device=timer.device)
    teacher = protocol.train_teachers(_e(spec, teacher=1), [(d, c, n, 0)])[0]
    runs = protocol.student_runs(spec, teacher.key)
    geo = linear_slice(len(runs), d, c, rows_of(n, c, 0.8), shared=True)

    def run_multi(e, p):
        train_students(_e(spec, student=e, precision=p), teacher, timer.th)

    timer.measure("multinomial-tau", "students", len(runs), geo, run_multi, 100)


def _mlp_students(timer: _Timer, workload: str, sizes: tuple, span: int) -> None:
    d, hp, c, n, rho, R = sizes
    cfg = dataclasses.replace(bench_mlp.PAPER_SLICE, d=d, p=hp, c=c, n=n, rho=rho)
    spec = dataclasses.replace(eager(bench_mlp.student_spec(cfg, R, 1)), device=timer.device)
    teacher = protocol.train_teachers(spec, [(d, c, n, 0)])[0]
    runs = protocol.student_runs(spec, teacher.key)
    rows = len(student_split(teacher.data.y, rho, c)[0])
    geo = linear_slice(R, d, c, rows, shared=True, hidden=(hp,))

    def run_mlp(e, p):
        protocol.gradient_students(_e(spec, student=e, precision=p), teacher, runs, timer.th)

    timer.measure(workload, "students", R, geo, run_mlp, span)


def _modadd_students(timer: _Timer, prof: Profile) -> None:
    from softleak.simulate.modadd.data import make_data
    from softleak.simulate.modadd.spec import student_runs
    from softleak.simulate.modadd.students import train_students as modadd_students

    device = timer.device
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

    def run_modadd(e, p):
        modadd_students(_e(spec, student=e, precision=p), data, z, runs, timer.th)

    timer.measure("modadd-transformer", "students", R, geo, run_modadd, 5)


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
