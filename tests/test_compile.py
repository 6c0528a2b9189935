"""Compiled training steps (``simulate.train``'s ``compile``, ``--compile/--no-compile``).

Oracles: compiled and eager steps give the same parameters to float32 round-off (``COMPILED_RTOL``)
for the analytic ReplicaMLP step and the transformer's autograd step, and a second fit on other
rows reuses the graph (no recompile); the size threshold leaves small and short runs eager without
ever calling torch.compile; a torch.compile that fails (at wrapping or at the first call) falls back
to the eager step with one log line; the setting is not part of any identity (unit ids, run ids) and
reaches every ``fit`` of the toy2d, sweep and modadd runs; the command line parses it. The two
compiled cases cost one compile each: the file takes ~35 s on a 2-core CPU with a cold inductor
cache, ~15 s with a warm one.
"""

from __future__ import annotations

import logging

import pytest
import torch

import softleak.simulate.modadd.students as modadd_students
import softleak.simulate.modadd.teacher as modadd_teacher
import softleak.simulate.protocol as protocol
import softleak.simulate.toy2d as toy2d
from softleak.cli import build_parser
from softleak.commands_simulate import family_spec_from_args, spec_from_args
from softleak.simulate import train
from softleak.simulate.losses import Objective, normalized_weights
from softleak.simulate.modadd import (
    ModAddSpec,
    make_data,
    make_model,
    student_runs,
    teacher_logits,
    train_students,
    train_teacher,
)
from softleak.simulate.models import ReplicaMLP
from softleak.simulate.optim import AdamConfig
from softleak.simulate.spec import SweepSpec
from softleak.simulate.toy2d import Toy2DSpec
from softleak.simulate.train import compile_pays, fit
from softleak.simulate.transformer import ReplicaTransformer

#: Compiled vs eager parameters after STEPS Adam steps, relative to each tensor's largest entry
#: (``atol = COMPILED_RTOL * max|theta|``, plus ``rtol = COMPILED_RTOL`` elementwise). The compiled
#: step computes the same float32 operations with reductions reordered and fused: a sum of K terms
#: then differs by at most ~K u sum|terms| (u = 2^-24 = 6e-8; K <= 64 here: rows, hidden units,
#: classes), so a gradient entry by <= ~4e-6 relative (typically sqrt(K) u ~ 5e-7). Adam divides
#: by sqrt(v), so an update's relative change is its gradient's, and an update moves a parameter by
#: at most ~lr: after STEPS steps |delta theta| <= STEPS * lr * 4e-6 (4e-7 at 10 steps of lr 1e-2),
#: plus one rounding of theta per step in each run (STEPS * u * |theta| = 6e-7 |theta|). Against
#: max|theta| ~ 0.4 (nn.Linear's init at fan-in 6; Nanda's 1/sqrt(16) for the transformer) that is
#: <= ~2e-6; 1e-5 leaves a 5x margin. Measured: 2e-7 (MLP), 2e-6 (transformer, 30 steps at lr 1e-2).
COMPILED_RTOL = 1e-5
STEPS = 10
CHOICES = (None, True, False)  # the values of a spec's compile


def assert_same_params(compiled: list[torch.Tensor], eager: list[torch.Tensor]) -> None:
    for c, e in zip(compiled, eager, strict=True):
        scale = float(e.abs().max())
        torch.testing.assert_close(c, e, rtol=COMPILED_RTOL, atol=COMPILED_RTOL * scale)


def tiny_mlp(R: int = 3, n: int = 40, seed: int = 0):
    """R students (6 -> 7 -> 5, biases) on n shared rows with soft targets."""
    model = ReplicaMLP.init(range(R), 6, 5, (7,), True)
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 6, generator=g)
    targets = model.empty_like_logits(n, 5)
    targets.copy_(torch.softmax(2 * torch.randn(R, n, 5, generator=g), -1))
    return model, X, Objective("soft", targets)


def tiny_transformer(R: int = 2, n: int = 20, seed: int = 0):
    """R 16-wide transformers (p = 7) on n per-replica rows, weighted soft targets."""
    p = 7
    model = ReplicaTransformer.init(range(R), p, d_model=16, n_heads=2, d_head=8, d_mlp=32)
    g = torch.Generator().manual_seed(seed)
    a, b = (torch.randint(0, p, (R, n), generator=g) for _ in range(2))
    X = torch.stack([a, b, torch.full_like(a, p)], -1)
    targets = torch.softmax(torch.randn(R, n, p, generator=g), -1)
    return model, X, Objective("soft", targets, normalized_weights(torch.ones(R, n)))


@pytest.fixture
def compile_calls(monkeypatch):
    """torch.compile, recorded (and a fresh "has not failed" state for this test)."""
    calls = []
    real = torch.compile

    def spy(fn, *args, **kwargs):
        calls.append(fn.__name__)
        return real(fn, *args, **kwargs)

    monkeypatch.setattr(torch, "compile", spy)
    monkeypatch.setattr(train, "_compile_failure", None)
    return calls


def test_compiled_mlp_steps_equal_eager_and_other_rows_reuse_the_graph(compile_calls, monkeypatch):
    optim = AdamConfig(lr=1e-2)
    for n in (40, 29):  # the second fit: other rows, the graph of the first (no recompile)
        if n == 29:
            monkeypatch.setattr(torch._dynamo.config, "error_on_recompile", True)
        eager, X, objective = tiny_mlp(n=n)
        fit(eager, X, objective, epochs=STEPS, optim=optim, compile=False)
        compiled, X, objective = tiny_mlp(n=n)
        fit(compiled, X, objective, epochs=STEPS, optim=optim, compile=True)
        assert train._compile_failure is None  # a recompile would have failed and fallen back
        assert_same_params(compiled.params, eager.params)
    assert compile_calls == ["_analytic_grads", "_analytic_grads"]


def test_compiled_transformer_steps_equal_eager(compile_calls):
    optim = AdamConfig(lr=1e-2, betas=(0.9, 0.98), weight_decay=1.0, warmup=3)
    eager, X, objective = tiny_transformer()
    fit(eager, X, objective, epochs=STEPS, optim=optim, compile=False)
    compiled, X, objective = tiny_transformer()
    fit(compiled, X, objective, epochs=STEPS, optim=optim, compile=True)
    assert compile_calls == ["_loss"] and train._compile_failure is None
    assert_same_params(compiled.params, eager.params)


def test_the_threshold_leaves_small_and_short_runs_eager(monkeypatch):
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError("torch.compile called")

    monkeypatch.setattr(torch, "compile", refuse)
    model, X, objective = tiny_mlp()
    fit(model, X, objective, epochs=STEPS, optim=AdamConfig(), compile=None)
    model_t, X_t, objective_t = tiny_transformer()
    fit(model_t, X_t, objective_t, epochs=STEPS, optim=AdamConfig(), compile=None)
    assert calls == []
    # The quick MLP scale (R = 8, 1,000 shared rows, d = 100, p = 50, c = 100): 1.2e6 entries a
    # step; its 3,000 student epochs stay eager, a 40,000-epoch run compiles.
    quick = ReplicaMLP.init(range(8), 100, 100, (50,), True)
    rows = torch.empty(1_000, 100)
    assert not compile_pays(quick, rows, 3_000) and compile_pays(quick, rows, 40_000)
    # A step below COMPILE_MIN_STEP_ENTRIES never compiles, however long the run.
    assert not compile_pays(model, X, 10**9)
    # The modadd quick transformer students (p = 59, R = 3, 696 rows): 600 epochs stay eager.
    students = ReplicaTransformer.init(range(3), 59)
    assert not compile_pays(students, torch.empty(3, 696, 3), 600)
    assert compile_pays(students, torch.empty(3, 696, 3), 10_000)


@pytest.mark.parametrize("where", ["wrapping", "first call"])
def test_a_failing_torch_compile_falls_back_eagerly_with_one_log_line(where, monkeypatch, caplog):
    def broken(fn, *args, **kwargs):
        if where == "wrapping":
            raise RuntimeError("no C++ compiler\nmore detail")

        def fails(*a, **k):
            raise RuntimeError("InvalidCxxCompiler")

        return fails

    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(train, "_compile_failure", None)
    eager, X, objective = tiny_mlp()
    fit(eager, X, objective, epochs=STEPS, optim=AdamConfig(lr=1e-2), compile=False)
    with caplog.at_level(logging.WARNING, logger="softleak.simulate.train"):
        for _ in range(2):  # the second fit does not try (or log) again
            model, X, objective = tiny_mlp()
            fit(model, X, objective, epochs=STEPS, optim=AdamConfig(lr=1e-2), compile=True)
            for a, b in zip(model.params, eager.params, strict=True):
                assert torch.equal(a, b)  # the eager step, bit for bit
    lines = [r.getMessage() for r in caplog.records if r.name == "softleak.simulate.train"]
    assert len(lines) == 1 and "training eagerly" in lines[0], lines
    assert "RuntimeError" in lines[0] and "\n" not in lines[0]


def test_compile_is_not_part_of_any_identity():
    sweeps = [SweepSpec("multinomial", d=(10,), c=(2,), n=(20,), compile=v) for v in CHOICES]
    assert len({s.unit_id(10, 2, 20, 0) for s in sweeps}) == 1
    assert len({s.teacher_id(10, 2, 20, 0) for s in sweeps}) == 1
    assert "compile" not in sweeps[0].run_settings()
    assert len({ModAddSpec(compile=v).run_id() for v in CHOICES}) == 1
    assert "compile" not in ModAddSpec(compile=True).identity()
    assert len({Toy2DSpec(compile=v).run_id() for v in CHOICES}) == 1
    assert "compile" not in Toy2DSpec(compile=True).identity()
    with pytest.raises(ValueError, match="compile"):
        Toy2DSpec(compile="yes")  # type: ignore[arg-type]


def parse(argv: list[str]):
    return build_parser().parse_args(["simulate", *argv, "--out", "x", "--device", "cpu"])


@pytest.mark.parametrize(
    ("flag", "value"), [([], None), (["--compile"], True), (["--no-compile"], False)]
)
def test_compile_and_no_compile_parse(flag, value):
    from softleak.spec_args import spec_values

    assert spec_from_args(parse(["mlp", *flag])).compile is value
    assert spec_from_args(parse(["multinomial", *flag])).compile is value
    assert family_spec_from_args(parse(["modadd", *flag])).compile is value
    assert Toy2DSpec(**spec_values(parse(["toy2d", *flag]), Toy2DSpec)).compile is value


def test_every_fit_gets_the_specs_compile(monkeypatch):
    """The spec's value reaches each fit call (the spy trains eagerly: no compile here)."""
    seen: dict[str, list] = {}
    for module in (toy2d, protocol, modadd_teacher, modadd_students):
        real = module.fit

        def spy(*args, _real=real, _name=module.__name__, **kwargs):
            seen.setdefault(_name.rsplit(".", 1)[-1], []).append(kwargs["compile"])
            return _real(*args, **{**kwargs, "compile": False})

        monkeypatch.setattr(module, "fit", spy)
    toy2d.train_toy2d(
        Toy2DSpec(seeds=1, teacher_epochs=2, student_epochs=2, n_val=10, grid=2, compile=True)
    )
    spec = SweepSpec("mlp", d=(4,), c=(2,), n=(8,), p_teacher=(3,), p_student=(3,),
                     teacher_epochs=2, student_epochs=2, n_val=10, compile=True)  # fmt: skip
    key = (4, 2, 8, 0)
    (teacher,) = protocol.train_teachers(spec, [key])
    protocol.gradient_students(spec, teacher, protocol.student_runs(spec, key))
    m = ModAddSpec(p=7, train_frac=0.6, teacher_epochs=2, checkpoints=(2,), rho=(0.5,),
                   tau=(1.0,), student_epochs=2, student_seeds=1, d_model=8, n_heads=2,
                   d_head=4, d_mlp=8, compile=False)  # fmt: skip
    data = make_data(m)
    train_teacher(m, data)
    z = teacher_logits(m, make_model(m, [m.teacher_seed()]).state(), data)
    train_students(m, data, z, student_runs(m))
    assert seen == {
        "toy2d": [True, True],
        "protocol": [True, True],
        "teacher": [False],
        "students": [False],
    }
