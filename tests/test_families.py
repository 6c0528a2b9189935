"""One registry for model families (``simulate.families``), the shared spec base
(``simulate.run_spec``), the declared constraints checked for Python callers
(``simulate.params.check_declared``) and the sweep engine's replica-model protocol.

The registry's promise is measured here: ``echo``, a family defined in this module and added with
one registry line, reaches every reader -- the command line, ``simulate.run``, the cost model,
the tiny presets, the GPU check and ``simulate``'s names -- with no other file touched."""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from softleak import args as A
from softleak.simulate import families as F
from softleak.simulate.params import check_declared, param
from softleak.simulate.run_spec import RunSpec


# --- a family in one module ------------------------------------------------------------------
@dataclass(frozen=True)
class EchoSpec(RunSpec):
    family: ClassVar[str] = "echo"

    experiment: str = "echo"
    rho: tuple[float, ...] = param((0.5,), help="fractions", kind="fraction_grid", group="grid")
    seeds: int = param(2, help="repetitions", kind="count", group="grid")
    epochs: int = param(10, help="steps of the echo", kind="count", group="training")

    def validate(self) -> None:
        if self.experiment != "echo":
            raise ValueError("EchoSpec is the echo experiment")

    def identity(self) -> dict:
        return self.settled_fields(("device", "extra", "rho", "seeds"))

    def work(self) -> dict:
        students = self.seeds * len(self.rho)
        return {"teachers": self.seeds, "students": students, "flops": 6.0 * students * self.epochs}


class EchoFamily(F.Family):
    name = "echo"
    spec_type = EchoSpec
    help = "a family of this test"
    description = "rows that echo their rho"
    device = "cpu"

    def run(self, spec, out, *, threads=None, progress=None, restart=False, **kwargs):
        from softleak.simulate.rundir import claim, run_config

        with claim(out, experiment="echo", identity=self.identity(spec), restart=restart) as store:
            store.write_config(run_config(spec, threads))
            rows = [
                {"rho": r, "seed": s, "student_test_acc": r * spec.epochs / (spec.epochs + s)}
                for s in range(spec.seeds)
                for r in spec.rho
            ]
            table = pd.DataFrame(rows)
            table.to_parquet(store.root / "results.parquet")
        return table

    def parts(self, spec, *, free_bytes, device):
        from softleak.simulate.estimate import Part

        return [Part("students", "mlp", spec.work()["flops"], steps=spec.epochs, models=1)]

    def tiny(self, spec):
        return dataclasses.replace(spec, seeds=1, epochs=2)

    def check_spec(self, command, kind, *, scale, seeds):
        return EchoSpec(seeds=2 if kind == "float64" else seeds, epochs=max(1, int(10 * scale)))

    def summary(self, spec, table):
        return [f"echo of {len(table)} rows"]


FAMILY = EchoFamily()


@pytest.fixture
def echo(monkeypatch):
    """``echo`` registered with one line (this module's ``FAMILY``)."""
    monkeypatch.setitem(F.FAMILIES, "echo", __name__)
    F.family.cache_clear()
    yield FAMILY
    F.family.cache_clear()


def test_a_family_is_one_module_and_one_registry_line(echo, tmp_path, capsys):
    from softleak import simulate
    from softleak.cli import main
    from softleak.paper_figs.tiny import shrink
    from softleak.simulate.estimate import cpu_part_seconds, estimate, work_of
    from softleak.simulate.rundir import IdentityMismatch

    # the command line: its options from the declared fields, its summary, exit 2 on bad input
    out = tmp_path / "cli"
    assert main(["simulate", "echo", "--rho", "0.25,0.5", "--epochs", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "echo of 4 rows" and printed[1].startswith("4 student runs in")
    with pytest.raises(SystemExit):
        main(["simulate", "echo", "--help"])
    assert "--epochs" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        main(["simulate", "echo", "--seeds", "0", "--out", str(tmp_path / "bad")])
    assert stop.value.code == 2 and not (tmp_path / "bad").exists()
    # simulate.run, the run directory's identity, simulate's names
    spec = EchoSpec(epochs=3, rho=(0.25, 0.5))
    assert simulate.EchoSpec is EchoSpec
    table = simulate.run(spec, out)  # the same identity: resumed
    assert len(table) == 4
    config = json.loads((out / "config.json").read_text())
    assert config["fingerprint"] == F.fingerprint(spec)
    with pytest.raises(IdentityMismatch):
        simulate.run(dataclasses.replace(spec, epochs=4), out)
    # the cost model and the tiny presets
    assert work_of(spec) == spec.work()
    part = echo.parts(spec, free_bytes=0, device="cpu")[0]
    assert estimate(spec)["cpu_s"] == pytest.approx(cpu_part_seconds(part))
    assert shrink(spec) == dataclasses.replace(spec, seeds=1, epochs=2)


def test_the_gpu_check_runs_a_registered_family(echo, tmp_path):
    from benchmarks.check_profiles import DRY
    from benchmarks.check_report import Report
    from benchmarks.family_checks import check_families

    report = Report(only=("agree-float64/echo", "agree-float32/echo"), log=False)
    check_families(report, DRY, "cpu", tmp_path)
    checks = {c["name"]: c for c in report.checks}
    assert checks["agree-float64/echo"]["passed"] is True
    assert checks["agree-float32/echo"]["passed"] is True


def test_every_registered_family_keeps_the_protocol():
    """Each family's spec names it, its commands are its own, and its defaults go through the
    registry's readers (identity, work, parts, tiny) without touching a run."""
    from softleak.simulate.estimate import parts_of, work_of
    from softleak.simulate.spec import SweepSpec

    pytest.importorskip("sklearn")  # the canaries' default data set
    seen = set()
    for family in F.families():
        assert family.spec_type.family == family.name
        assert isinstance(family.help, str) and family.device in ("auto", "cpu")
        for command in family.commands():
            assert command not in seen and F.for_command(command) is family
            seen.add(command)
            assert family.help_of(command) and family.description_of(command)
        if family.name == "sweep":
            spec = SweepSpec("mlp", d=(20,), n=(40, 80), p_teacher=(8,), p_student=(8,))
        else:
            spec = family.spec_type()
        assert F.family_of(spec) is family
        tiny = family.tiny(spec)
        assert F.family_of(tiny) is family and work_of(tiny)["flops"] <= work_of(spec)["flops"]
        assert sum(p.flops for p in parts_of(tiny)) > 0
    with pytest.raises(TypeError, match="registered family"):
        F.family_of(object())


# --- declared constraints, for Python callers --------------------------------------------------
KINDS = {  # kind -> the command line's type, values to try
    "count": (A.positive_int, [1, 3, 0, -1, 2.5, 2.0]),
    "count0": (A.nonnegative_int, [0, 4, -1, 1.5]),
    "seed": (A.nonnegative_int, [0, 7, -2, 0.5]),
    "positive": (A.positive_float, [0.1, 3.0, 0.0, -1.0, float("inf"), float("nan")]),
    "nonnegative": (A.nonnegative_float, [0.0, 2.0, -0.1, float("inf")]),
    "fraction": (A.fraction, [0.5, 0.0, 1.0, 0.999, -0.2]),
    "positive_grid": (A.positive_grid, [(1.0, 2.0), (0.0,), (1.0, -1.0), (float("inf"),)]),
    "fraction_grid": (A.fraction_grid, [(0.2, 0.5), (1.0,), (0.0, 0.5)]),
    "fraction0_grid": (A.fraction0_grid, [(0.0, 0.5), (1.0,), (-0.1,)]),
    "int_grid": (A.int_grid, [(1, 5), (0,), (2.5,), (3.0,)]),
    "widths": (A.widths, [(500, 200), (0,), (3, -1)]),
}


def _spec_with(kind: str, default):
    """A spec with one declared field ``x`` of ``kind``."""
    fields = [("x", object, param(default, help="x", kind=kind))]
    return dataclasses.make_dataclass("One", fields, bases=(RunSpec,), frozen=True)


def _cli_text(value) -> str:
    if isinstance(value, tuple):
        return ",".join(repr(v) for v in value)
    return repr(value)


def test_every_kind_has_a_check():
    from softleak.simulate.params import CHECKS
    from softleak.simulate.params import KINDS as ALL

    assert set(CHECKS) == set(ALL) and set(KINDS) <= set(ALL)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_declared_kind_admits_what_the_command_line_admits(kind):
    """Two independent rules: the command line's argparse type on the value's text, and
    ``check_declared`` on the value from Python. They accept the same values."""
    cli_type, values = KINDS[kind]
    cls = _spec_with(kind, values[0])
    for value in values:
        try:
            cli_type(_cli_text(value))
            cli = True
        except argparse.ArgumentTypeError:
            cli = False
        try:
            cls(experiment="one", x=value)
            python = True
        except ValueError as err:
            assert str(err).startswith("x "), err  # one line naming the field
            python = False
        assert python == cli, (kind, value)


def test_grids_and_choices_and_switches():
    grid = _spec_with("positive_grid", (1.0,))
    with pytest.raises(ValueError, match="x repeats 2.0"):
        grid(experiment="g", x=(2.0, 1.0, 2.0))
    with pytest.raises(ValueError, match="x needs at least one value"):
        grid(experiment="g", x=())
    assert grid(experiment="g", x=[np.float64(0.5)]).x == [0.5]  # numpy numbers are numbers
    maybe = _spec_with("int_grid", None)  # a grid whose default is None may be None or empty
    assert maybe(experiment="m").x is None and maybe(experiment="m", x=()).x == ()
    choice = dataclasses.make_dataclass(
        "C", [("x", str, param("a", help="x", kind="choice", choices=("a", "b")))],
        bases=(RunSpec,), frozen=True,
    )  # fmt: skip
    with pytest.raises(ValueError, match="x must be one of a, b, got 'c'"):
        choice(experiment="c", x="c")
    for kind, bad in (("flag", "yes"), ("tristate", "yes"), ("texts", ("a", 1)), ("csv", "a,b")):
        with pytest.raises(ValueError, match="x must be"):
            _spec_with(kind, None if kind == "tristate" else ())(experiment="k", x=bad)
    assert _spec_with("text", "a")(experiment="t", x=print).x is print  # text: the spec's own


def test_every_spec_checks_its_declared_fields_from_python():
    """A value the command line cannot form is refused from Python too, naming the field."""
    from softleak.simulate.params import declared

    for family in F.families():
        cls = family.spec_type
        base = {"experiment": "mlp", "n": (40,)} if family.name == "sweep" else {}
        for f, p in declared(cls):
            bad = {"count": 0, "seed": -1, "positive": -1.0, "fraction": 1.5,
                   "choice": "nonsense", "fraction_grid": (2.0,)}.get(p.kind)  # fmt: skip
            if bad is None:
                continue
            with pytest.raises(ValueError, match=f"^{f.name} "):
                cls(**base, **{f.name: bad})
        check_declared(cls(**base))  # the defaults pass


# --- the replica-model protocol ----------------------------------------------------------------
class Wrapped:
    """A ``ReplicaModel`` that is not a ``ReplicaMLP``: only the protocol's members (no analytic
    backward, so ``fit`` trains it through autograd)."""

    def __init__(self, inner):
        self.inner = inner
        self.params = inner.params

    @property
    def replicas(self) -> int:
        return self.inner.replicas

    def forward(self, X):
        return self.inner.forward(X)

    def select(self, index):
        return Wrapped(self.inner.select(index))

    def empty_like_logits(self, n, k, shared=True, **kw):
        return self.inner.empty_like_logits(n, k, shared, **kw)

    def n_params(self) -> int:
        return self.inner.n_params()

    def flops_per_sample(self) -> int:
        return self.inner.flops_per_sample()

    def state(self):
        return self.inner.state()


@pytest.mark.parametrize("hidden", [(), (6,)])
def test_the_sweep_engine_trains_any_replica_model(hidden, monkeypatch, tmp_path, global_seed):
    """A sweep whose models are another ``ReplicaModel`` (autograd, not the analytic backward)
    gives the same table as with ``ReplicaMLP``, to float64 round-off."""
    from softleak.simulate import protocol
    from softleak.simulate.spec import SweepSpec
    from softleak.simulate.sweep import run_sweep

    spec = SweepSpec(
        "mlp" if hidden else "multinomial",
        d=(6,), c=(3,), n=(30,), rho=(0.5,), tau=(1.0, 4.0), seeds=2, seed=global_seed,
        p_teacher=hidden, p_student=hidden, teacher_epochs=40, student_epochs=30,
        teacher_lr=0.05, student_lr=0.05, dtype="float64",
    )  # fmt: skip
    mlp = run_sweep(spec, tmp_path / "mlp", progress=False)
    build = protocol.replica_models
    monkeypatch.setattr(protocol, "replica_models", lambda *a, **k: Wrapped(build(*a, **k)))
    other = run_sweep(spec, tmp_path / "other", progress=False)
    metrics = [c for c in mlp.columns if c.endswith("_acc") or c.endswith("_ce")]
    assert len(other) == len(mlp) == 2 * 2
    for c in metrics:
        np.testing.assert_allclose(other[c], mlp[c], rtol=1e-9, atol=1e-12, err_msg=c)
