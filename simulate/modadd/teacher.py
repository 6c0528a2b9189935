"""The teacher: trained once, saved at its checkpoints (fixed epochs and stop rules), and its
logits on every pair."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

import pandas as pd
import torch

from softleak.simulate.device import thread_count, threads_for
from softleak.simulate.losses import Objective
from softleak.simulate.modadd.data import ModAddData
from softleak.simulate.modadd.models import (
    forward_chunked,
    make_model,
    model_from_state,
    model_inputs,
)
from softleak.simulate.modadd.rules import StopRule
from softleak.simulate.modadd.spec import ModAddSpec
from softleak.simulate.train import fit

log = logging.getLogger(__name__)


@dataclass
class Checkpoint:
    """One saved teacher: its name, the epoch it was taken (None: never reached) and metrics."""

    name: str
    epoch: int | None
    rule: str | None  # the rule's conditions, or None for a fixed epoch
    train_acc: float = float("nan")
    val_acc: float = float("nan")
    train_loss: float = float("nan")
    val_loss: float = float("nan")
    state: dict | None = None  # weights (CPU tensors); not serialised to JSON

    def meta(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "state"}


class _TeacherMonitor:
    """``evaluate`` and ``stop`` callbacks for ``fit``: records the teacher's metrics, takes the
    checkpoints (fixed epochs, and rules at evaluated epochs) and ends the run when all are taken."""

    def __init__(self, spec: ModAddSpec, data: ModAddData):
        device = spec.device
        self.spec = spec
        self.X = model_inputs(spec, torch.as_tensor(data.tokens, device=device))
        self.y = torch.as_tensor(data.labels, device=device)
        self.is_train = torch.zeros(spec.p**2, dtype=torch.bool, device=device)
        self.is_train[torch.as_tensor(data.teacher, device=device)] = True
        self.fixed = {e: f"e{e}" for e in spec.checkpoints}
        self.rules = list(spec.rules())
        self.taken: dict[str, Checkpoint] = {}
        self.last: tuple[int, dict] | None = None

    def metrics(self, model) -> dict[str, float]:
        z = forward_chunked(self.spec, model, self.X)[0]  # (P, p) float64
        loss = torch.nn.functional.cross_entropy(z, self.y, reduction="none")
        correct = (z.argmax(-1) == self.y).double()
        tr, va = self.is_train, ~self.is_train
        return {
            "train_loss": float(loss[tr].mean()),
            "train_acc": float(correct[tr].mean()),
            "val_loss": float(loss[va].mean()),
            "val_acc": float(correct[va].mean()),
        }

    def evaluate(self, model, epoch: int) -> dict:
        values = self.metrics(model)
        self.last = (epoch, values)
        return {k: torch.tensor([v], dtype=torch.float64) for k, v in values.items()}

    def _take(self, name: str, rule: str | None, model, epoch: int, values: dict) -> None:
        state = {k: v.clone() for k, v in model.state().items()}  # params change in place later
        self.taken[name] = Checkpoint(name, epoch, rule, state=state, **values)
        log.info("teacher checkpoint %s at epoch %d: %s", name, epoch, values)

    def stop(self, model, epoch: int) -> bool:
        evaluated = self.last is not None and self.last[0] == epoch
        name = self.fixed.get(epoch)
        if name is not None and name not in self.taken:
            values = self.last[1] if evaluated else self.metrics(model)
            self._take(name, None, model, epoch, values)
        if evaluated:
            for rule in self.rules:
                if rule.name not in self.taken and rule.holds({"epoch": epoch, **self.last[1]}):
                    self._take(rule.name, _rule_text(rule), model, epoch, self.last[1])
        return len(self.taken) == len(self.fixed) + len(self.rules)


def _rule_text(rule: StopRule) -> str:
    return "&".join(f"{m}{op}{v:g}" for m, op, v in rule.conditions)


def train_teacher(
    spec: ModAddSpec, data: ModAddData, threads: int | None = None
) -> tuple[list[Checkpoint], pd.DataFrame, float]:
    """Train the teacher once; returns its checkpoints (in ``spec.checkpoint_names()`` order,
    ``epoch=None`` for rules never met), its curve (wide: epoch, train/val loss and acc) and the
    wall time."""
    t0 = time.perf_counter()
    device = spec.device
    model = make_model(spec, [spec.teacher_seed()])
    rows = torch.as_tensor(data.teacher, device=device)
    X = model_inputs(spec, torch.as_tensor(data.tokens, device=device)[rows])
    y = torch.as_tensor(data.labels, device=device)[rows]
    monitor = _TeacherMonitor(spec, data)
    step_flops = 3 * spec.flops_per_sample() * spec.n
    with thread_count(threads_for(step_flops, threads)):
        result = fit(
            model,
            X,
            Objective("ce", y),
            epochs=spec.teacher_epochs,
            optim=spec.teacher_optim(),
            precision=spec.precision,
            compile=spec.compile,
            curve_every=spec.teacher_curve_every,
            evaluate=monitor.evaluate,
            stop=monitor.stop,
            stop_every=1,
        )
    wall = time.perf_counter() - t0
    log.info("teacher: %d epochs in %.1f s", result.epochs_run, wall)
    curves = pd.DataFrame(
        [
            {"epoch": rec["epoch"], **{k: float(v[0]) for k, v in rec.items() if k != "epoch"}}
            for rec in result.curves
        ]
    )
    rules = {r.name: _rule_text(r) for r in spec.rules()}
    checkpoints = [
        monitor.taken.get(name) or Checkpoint(name, None, rules.get(name))
        for name in spec.checkpoint_names()
    ]
    for c in checkpoints:
        if c.epoch is None:
            log.warning(
                "stop rule %s (%s) never held within %d epochs", c.name, c.rule, spec.teacher_epochs
            )
    return checkpoints, curves, wall


@torch.no_grad()
def teacher_logits(spec: ModAddSpec, state: dict, data: ModAddData) -> torch.Tensor:
    """A saved teacher's logits (p^2, p) in float64 on every pair."""
    model = model_from_state(spec, state)
    X = model_inputs(spec, torch.as_tensor(data.tokens, device=spec.device))
    return forward_chunked(spec, model, X)[0]
