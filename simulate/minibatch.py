"""Minibatch training for single ``torch.nn.Module`` models (the Hugging Face GPT-2 classifiers).

Why not ``simulate.train.fit``: ``fit`` trains R replicas as one batched tensor program, full batch,
with the engine's own Adam over a list of stacked parameter tensors (closed-form or autograd
gradients). A Hugging Face model is one ``nn.Module`` (no replica axis), its reference recipe is
minibatch AdamW with a shuffled batch order per epoch and gradient-norm clipping, and its forward
takes token ids and an attention mask. Folding that into ``fit`` would give it two optimisers, two
batching modes and a module calling convention; a small separate loop is clearer.

Losses are cross-entropy in float32 against integer labels (n,) or probability targets (n, c);
a reduced precision covers the matrix products of the forward and backward
(``simulate.precision``: attention included, the logits float32), so soft targets and losses never
round to 8 bits of mantissa.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from softleak.simulate.precision import precision_scope

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MinibatchConfig:
    """AdamW on minibatches (torch.optim.AdamW)."""

    epochs: int  # passes over the data
    batch_size: int  # examples per step (the last batch of an epoch may be smaller)
    lr: float  # learning rate (constant)
    weight_decay: float = 0.01  # decoupled weight decay (torch.optim.AdamW's default)
    betas: tuple[float, float] = (0.9, 0.999)  # torch.optim.AdamW's default
    clip: float | None = 1.0  # max global gradient norm (None: no clipping)

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1:
            raise ValueError("epochs must be >= 0 and batch_size >= 1")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ValueError("lr must be > 0 and weight_decay >= 0")
        if self.clip is not None and not self.clip > 0:
            raise ValueError("clip must be > 0 (or None)")


@dataclass
class MinibatchResult:
    epochs_run: int
    steps: int
    epoch_loss: list[float] = field(default_factory=list)  # mean training loss of each epoch


def _logits(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    out = model(**batch)
    return getattr(out, "logits", out)


def fit_minibatch(
    model: torch.nn.Module,
    inputs: dict[str, torch.Tensor],
    targets: torch.Tensor,
    config: MinibatchConfig,
    *,
    seed: int,
    on_epoch: Callable[[int, float], None] | None = None,
    precision: str = "fp32",
) -> MinibatchResult:
    """Train ``model`` in place with minibatch AdamW; returns the per-epoch mean losses.

    inputs: the model's keyword inputs, each (n, ...) on the model's device (e.g. ``input_ids``
        and ``attention_mask``, (n, L)); a batch is their rows ``idx``.
    targets: (n,) class indices or (n, c) probabilities (soft labels), any float dtype; the loss
        is ``F.cross_entropy(logits.float(), targets)`` (mean over the batch).
    seed: seeds the batch order (a ``torch.Generator``) and, through a forked global RNG, dropout;
        the caller's global RNG state is left untouched.
    on_epoch: ``on_epoch(epoch, mean_loss)`` after every epoch (progress, logging).
    precision: the matrix products of each step's forward and backward
        (``simulate.precision.precision_scope``; the same mechanisms on every device).
    """
    n = targets.shape[0]
    device = targets.device
    if targets.is_floating_point():
        targets = targets.float()
    order_gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=config.lr,
        betas=config.betas,
        weight_decay=config.weight_decay,
    )
    result = MinibatchResult(epochs_run=0, steps=0)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        model.train()
        for epoch in range(1, config.epochs + 1):
            order = torch.randperm(n, generator=order_gen).to(device)
            total = torch.zeros((), device=device)
            for start in range(0, n, config.batch_size):
                idx = order[start : start + config.batch_size]
                with precision_scope(precision, str(device)):
                    logits = _logits(model, {k: v[idx] for k, v in inputs.items()})
                    loss = F.cross_entropy(logits.float(), targets[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if config.clip is not None:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
                    opt.step()
                total += loss.detach() * len(idx)
                result.steps += 1
            mean = float(total) / n
            result.epoch_loss.append(mean)
            result.epochs_run = epoch
            if on_epoch is not None:
                on_epoch(epoch, mean)
    model.eval()
    return result


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module, inputs: dict[str, torch.Tensor], batch_size: int = 512
) -> torch.Tensor:
    """(n, c) float32 logits of ``model`` in eval mode (no dropout, no autocast)."""
    model.eval()
    n = next(iter(inputs.values())).shape[0]
    parts = [
        _logits(model, {k: v[i : i + batch_size] for k, v in inputs.items()}).float()
        for i in range(0, n, batch_size)
    ]
    return torch.cat(parts)
