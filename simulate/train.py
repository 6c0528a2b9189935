"""The one full-batch training loop for every model family.

``fit`` runs full-batch Adam/AdamW on R replicas at once. Families with an analytic backward
(``forward_backward``) use it; others (e.g. the transformer) go through autograd. Learning curves are
recorded every ``curve_every`` epochs by a caller-supplied ``evaluate`` function.

Compiled steps (``compile``; ``--compile/--no-compile``, not part of a run's identity):
``torch.compile`` fuses the elementwise work of a step's gradient -- the ReLU masks, the softmax and
the objective's closed-form gradient around ``forward_backward``'s matrix multiplies, or on the
autograd path the loss's forward and (through AOTAutograd) its backward -- into few kernels. Only
the gradient is compiled; the optimizer stays eager: its step counter and learning rate are Python
numbers a graph would bake in (one recompile per step), and compiled as one update on 0-dim tensors
it was slower (quick MLP scale: 0.11 ms eager, 0.29 ms compiled: the call's guards cost more than
fusing its few passes saves). Shapes: the row axis is marked dynamic (``maybe_mark_dynamic``), so
one graph serves every row count (rho, alpha, padding); everything else is static (``dynamic=False``)
-- a symbolic replica axis made the transformer's compiled step slower than eager (modadd quick
scale: 38.5 ms against 23.3 ms; symbolic rows: 18.4 ms) -- so each replica count, width and model
structure is one graph, and so is each thread count (dynamo guards on it; the C++ kernels are
built for it); dynamo keeps 8 graphs per function, then runs further shapes eagerly. A fresh
wrapper per ``fit`` reuses the graphs: dynamo caches them on the function's code. ``compile=None``
compiles where the threshold below says it pays; a machine where torch.compile fails (no C++
compiler, an unsupported Python) trains eagerly, with one log line. Compiled and eager steps agree
to float32 round-off (reductions reordered), not bitwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from softleak.simulate.losses import Objective
from softleak.simulate.optim import Adam, AdamConfig
from softleak.simulate.precision import precision_scope, uses_function_mode

log = logging.getLogger(__name__)

# When compiling pays (``compile=None``). Measured with ``benchmarks/bench_compile.py`` on this
# 2-core CPU (torch 2.13, float32, 2 threads unless said; medians of >= 0.5 s timings, eager and
# compiled alternating; the machine is shared, so single numbers vary by ~+-30%):
#: Seconds a process's first compiled graph costs (cold inductor cache: its start-up and C++
#: builds): ReplicaMLP step 10.0-10.7 s, transformer step 14.9-19.6 s. Later graphs of the same
#: process (another replica count or width) take 2-7 s, so for a sweep worker this overstates.
COMPILE_SECONDS = 15.0
#: Seconds a compiled step saves per activation entry (``step_entries``: replicas x rows x
#: ``activations_per_sample``) on steps of >= COMPILE_MIN_STEP_ENTRIES, the low end of what was
#: measured there: MLP students on shared inputs 2.1-4.5 ns (quick scale, R = 8, 1,000 rows:
#: 5.4-6.4 -> 2.6-2.9 ms per step; 1 thread 8.2 -> 5.2 ms), on per-replica inputs 0.54-0.85 ns,
#: the modadd quick transformer students 0.55-0.79 ns (R = 3, 696 rows: 21.4-24.4 -> 18.7-21.1
#: ms; 1 thread 39.6 -> 31.3 ms), its teacher (R = 1, 1,392 rows) 0.43-0.55 ns.
SAVED_SECONDS_PER_ENTRY = 0.4e-9
#: Steps with fewer activation entries never compile: there the saving is a race of fixed costs
#: (the compiled call's guards against eager's kernel launches, ~0.1 ms) -- measured -0.6 to
#: +1.1 ns per entry (e.g. 24 linear c = 2 students on 400 rows, 1.9e4 entries: 0.22 ms eager,
#: 0.21-0.24 ms compiled) -- and under ~0.5 ms a step, >= 30,000 steps to repay COMPILE_SECONDS.
COMPILE_MIN_STEP_ENTRIES = 1_000_000
#: A run compiles when entries per step x epochs reach this (3.75e10): then the time saved at
#: SAVED_SECONDS_PER_ENTRY repays COMPILE_SECONDS. The quick transformer student (4.7e6 entries a
#: step; measured break-even 1,900-6,400 steps) compiles from ~7,900 epochs (its 600 stay eager),
#: the quick MLP student (1.2e6; break-even 2,200-5,200) from ~31,000 (its 3,000 stay eager): the
#: rule is conservative, most on shared inputs.
COMPILE_MIN_ENTRY_STEPS = COMPILE_SECONDS / SAVED_SECONDS_PER_ENTRY

_compile_failure: str | None = None  # why torch.compile failed in this process (then: eager)


@dataclass
class FitResult:
    epochs_run: int
    final_loss: torch.Tensor  # (R,) loss per replica at the last step
    curves: list[dict] = field(default_factory=list)  # one dict of (R,) tensors per recorded epoch
    stopped_at: torch.Tensor | None = None  # (R,) epoch each replica stopped (per-replica stop)


def step_entries(model, X: torch.Tensor) -> int | None:
    """Activation entries of one training step (replicas x rows x ``activations_per_sample``);
    None for a family that does not count them."""
    per_sample = getattr(model, "activations_per_sample", None)
    if per_sample is None:
        return None
    return int(model.replicas) * int(X.shape[-2]) * int(per_sample())


def compile_pays(model, X: torch.Tensor, epochs: int) -> bool:
    """The threshold of ``compile=None``: a step large enough and a run long enough that compiling
    repays its cost (``COMPILE_MIN_STEP_ENTRIES``, ``COMPILE_MIN_ENTRY_STEPS``)."""
    entries = step_entries(model, X)
    if entries is None or entries < COMPILE_MIN_STEP_ENTRIES:
        return False
    return entries * epochs >= COMPILE_MIN_ENTRY_STEPS


def compile_available() -> bool:
    """Whether torch.compile can run here: dynamo supports this Python and platform, and no
    compile has failed in this process (the first "no" is logged, once)."""
    if _compile_failure is None:
        try:
            import torch._dynamo

            if not (hasattr(torch, "compile") and torch._dynamo.is_dynamo_supported()):
                _give_up("torch.compile does not support this Python or platform")
        except Exception as exc:  # e.g. an import error: a build without dynamo
            _give_up(exc)
    return _compile_failure is None


def _give_up(why: BaseException | str) -> None:
    """torch.compile cannot run or failed: every later step of this process runs eagerly (one log
    line, here)."""
    global _compile_failure
    if isinstance(why, BaseException):
        first = str(why).strip().splitlines()
        why = type(why).__name__ + (f": {first[0]}" if first else "")
    _compile_failure = why
    log.warning("torch.compile unavailable or failed here, training eagerly (%s)", why)


def _analytic_grads(model, X: torch.Tensor, objective) -> list[torch.Tensor]:
    """Gradients of one step through the family's analytic backward (call under no_grad)."""
    return list(model.forward_backward(X, objective.grad)[1])


def _loss(model, X: torch.Tensor, objective) -> torch.Tensor:
    return objective.value(model.forward(X)).sum()


def _autograd_grads(loss_fn: Callable, model, X: torch.Tensor, objective) -> list[torch.Tensor]:
    """Gradients of one step through autograd (``loss_fn`` eager or compiled)."""
    for p in model.params:
        p.requires_grad_(True)
    try:
        loss = loss_fn(model, X, objective)
        return list(torch.autograd.grad(loss, model.params))
    finally:
        for p in model.params:
            p.requires_grad_(False)


class _Aligned:
    """``Objective.grad`` (the same code) with the targets and weights laid out like the logits
    once, before compiling: the objective's layout cache compares shapes, which in a graph would
    specialise it to one replica and row count."""

    def __init__(self, objective: Objective, logits: torch.Tensor):
        self.kind = objective.kind
        self.aligned = objective._aligned(logits)

    def _aligned(self, logits: torch.Tensor) -> tuple:
        return self.aligned

    def grad(self, logits: torch.Tensor) -> torch.Tensor:
        return Objective.grad(self, logits)  # type: ignore[arg-type]


def _rows_dynamic(rows: int, *tensors) -> None:
    """Mark the row axis of a step's inputs dynamic (every axis of that length: a hint, which torch
    drops where a graph needs the size fixed), so one graph serves every row count."""
    for t in tensors:
        if isinstance(t, torch.Tensor):
            for axis, size in enumerate(t.shape):
                if size == rows:
                    torch._dynamo.maybe_mark_dynamic(t, axis)


class StepGradients:
    """One step's parameter gradients (a list, one per parameter), compiled or eager; a compiled
    step that fails falls back to the eager one (the gradient is a pure function of the
    parameters, so the step is simply recomputed)."""

    def __init__(self, model, X: torch.Tensor, objective, autograd: bool, compiled: bool):
        self.model, self.X, self.objective, self.autograd = model, X, objective, autograd
        self.compiled: Callable | None = None
        if compiled:
            try:
                self.compiled = self._compile()
            except Exception as exc:
                _give_up(exc)

    def _compile(self) -> Callable[[], list[torch.Tensor]]:
        model, X, objective = self.model, self.X, self.objective
        rows = int(X.shape[-2])
        if self.autograd:
            loss = torch.compile(_loss, dynamic=False)
            targets = (
                (objective.targets, objective.weights) if isinstance(objective, Objective) else ()
            )
            _rows_dynamic(rows, X, *targets)
            return lambda: _autograd_grads(loss, model, X, objective)
        grads = torch.compile(_analytic_grads, dynamic=False)
        if isinstance(objective, Objective):
            with torch.no_grad():
                objective = _Aligned(objective, model.forward(X))
            _rows_dynamic(rows, X, *objective.aligned)
        else:
            _rows_dynamic(rows, X)

        def step() -> list[torch.Tensor]:
            with torch.no_grad():
                return grads(model, X, objective)

        return step

    def eager(self) -> list[torch.Tensor]:
        if self.autograd:
            return _autograd_grads(_loss, self.model, self.X, self.objective)
        with torch.no_grad():
            return _analytic_grads(self.model, self.X, self.objective)

    def __call__(self) -> list[torch.Tensor]:
        if self.compiled is not None:
            try:
                return self.compiled()
            except Exception as exc:
                _give_up(exc)
                self.compiled = None
        return self.eager()


def _step_gradients(
    model,
    X: torch.Tensor,
    objective: Objective,
    epochs: int,
    autograd: bool | None,
    precision: str,
    compile: bool | None,
) -> StepGradients:
    """The step gradients of :func:`fit`: through autograd unless the family has an analytic
    backward (``autograd=None``), compiled where asked (``compile=None``: where ``compile_pays``),
    never under a precision that may run a function mode, and only where torch.compile runs."""
    if autograd is None:
        autograd = not hasattr(model, "forward_backward")
    if compile is None:
        compile = compile_pays(model, X, epochs)
    if compile and uses_function_mode(precision):
        log.info("precision %s may run by explicit casts (a function mode): eager", precision)
        compile = False
    return StepGradients(model, X, objective, autograd, bool(compile) and compile_available())


def fit(
    model,
    X: torch.Tensor,
    objective: Objective,
    *,
    epochs: int,
    optim: AdamConfig,
    curve_every: int = 0,
    evaluate: Callable[[object, int], dict] | None = None,
    stop: Callable[[object, int], bool] | None = None,
    stop_every: int = 100,
    autograd: bool | None = None,
    precision: str = "fp32",
    compile: bool | None = None,
) -> FitResult:
    """Train ``model`` (R replicas) for ``epochs`` full-batch steps on inputs X.

    objective: ``objective.grad(logits) -> dL/dlogits`` (closed form) and ``objective.value(logits)
    -> (R,)``, the differentiable loss (used when autograd is chosen, and once at the end).
    evaluate: ``evaluate(model, epoch) -> {metric: (R,) tensor}``, called at epoch 0 and every
    ``curve_every`` epochs when ``curve_every > 0``.
    stop: ``stop(model, epoch)``, checked every ``stop_every`` epochs (and at epoch 0). A bool True
        ends the run. A (R,) bool tensor stops replicas one by one: a replica is frozen (parameters
        and optimiser state) from the first check where it is True, so each replica ends exactly
        as it would alone; the run ends when all are frozen (``FitResult.stopped_at``).
    precision: the matrix multiplies of the optimizer steps (``simulate.precision``); evaluations,
        stop checks and the final loss run in float32.
    compile: the step's gradient through ``torch.compile`` (see the module docstring): True,
        False, or None for where ``compile_pays`` (eager wherever torch.compile is unavailable).
        Evaluations, stop checks, the optimizer and the final loss stay eager.
    """
    gradients = _step_gradients(model, X, objective, epochs, autograd, precision, compile)
    opt = Adam(model.params, optim)
    curves: list[dict] = []

    def record(epoch: int) -> None:
        if evaluate is not None and curve_every:
            with torch.no_grad():
                row = evaluate(model, epoch)
            curves.append({"epoch": epoch, **row})

    record(0)
    frozen: torch.Tensor | None = None
    stopped_at: torch.Tensor | None = None

    def check(epoch: int) -> bool:
        """Apply the stop criterion; True when the whole run is over."""
        nonlocal frozen, stopped_at
        with torch.no_grad():
            done = stop(model, epoch)
        if not isinstance(done, torch.Tensor):
            return bool(done)
        done = done.to(torch.bool).reshape(-1)
        if frozen is None:
            frozen = torch.zeros_like(done)
            stopped_at = torch.full(done.shape, epochs, dtype=torch.long, device=done.device)
        newly = done & ~frozen
        stopped_at[newly] = epoch
        frozen |= done
        return bool(frozen.all())

    epoch = 0
    if stop is not None and check(0):
        epochs = 0
    device = X.device.type
    for epoch in range(1, epochs + 1):
        with precision_scope(precision, device):
            opt.step(gradients(), frozen)
        if curve_every and epoch % curve_every == 0:
            record(epoch)
        if stop is not None and epoch % stop_every == 0 and check(epoch):
            log.info("stopping criterion met at epoch %d", epoch)
            break
    with torch.no_grad():
        loss = objective.value(model.forward(X))
    return FitResult(epochs_run=epoch, final_loss=loss, curves=curves, stopped_at=stopped_at)
