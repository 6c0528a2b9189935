"""The one full-batch training loop for every model family.

``fit`` runs full-batch Adam/AdamW on R replicas at once. Families with an analytic backward
(``forward_backward``) use it; others (e.g. the transformer) go through autograd. Learning curves are
recorded every ``curve_every`` epochs by a caller-supplied ``evaluate`` function.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from softleak.simulate.optim import Adam, AdamConfig
from softleak.simulate.precision import precision_scope

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    epochs_run: int
    final_loss: torch.Tensor  # (R,) loss per replica at the last step
    curves: list[dict] = field(default_factory=list)  # one dict of (R,) tensors per recorded epoch
    stopped_at: torch.Tensor | None = None  # (R,) epoch each replica stopped (per-replica stop)


def fit(
    model,
    X: torch.Tensor,
    objective: Callable,
    *,
    epochs: int,
    optim: AdamConfig,
    curve_every: int = 0,
    evaluate: Callable[[object, int], dict] | None = None,
    stop: Callable[[object, int], bool] | None = None,
    stop_every: int = 100,
    autograd: bool | None = None,
    precision: str = "fp32",
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
    """
    if autograd is None:
        autograd = not hasattr(model, "forward_backward")
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
            if autograd:
                for p in model.params:
                    p.requires_grad_(True)
                loss = objective.value(model.forward(X))
                grads = torch.autograd.grad(loss.sum(), model.params)
                for p in model.params:
                    p.requires_grad_(False)
            else:
                with torch.no_grad():
                    _, grads = model.forward_backward(X, objective.grad)
            opt.step(list(grads), frozen)
        if curve_every and epoch % curve_every == 0:
            record(epoch)
        if stop is not None and epoch % stop_every == 0 and check(epoch):
            log.info("stopping criterion met at epoch %d", epoch)
            break
    with torch.no_grad():
        loss = objective.value(model.forward(X))
    return FitResult(epochs_run=epoch, final_loss=loss, curves=curves, stopped_at=stopped_at)
