"""Adam and AdamW over replica-stacked parameters.

Adam acts elementwise, so one optimiser over tensors with a replica axis is exactly R independent
optimisers. The update follows ``torch.optim.Adam``/``AdamW`` with their defaults (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AdamConfig:
    lr: float = 1e-3  # learning rate (the reference: teacher 1e-3, student 1e-4)
    betas: tuple[float, float] = (0.9, 0.999)  # PyTorch defaults
    eps: float = 1e-8  # PyTorch default
    weight_decay: float = 0.0  # decoupled (AdamW) when > 0
    warmup: int = 0  # linear warm-up steps: lr * min(1, step / warmup)


class Adam:
    def __init__(self, params: list[torch.Tensor], config: AdamConfig):
        self.params = params
        self.config = config
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    def lr_at(self, step: int) -> float:
        c = self.config
        return c.lr * min(1.0, step / c.warmup) if c.warmup else c.lr

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor], frozen: torch.Tensor | None = None) -> None:
        """One update. ``frozen`` (R,) bool: replicas left exactly as they are (parameters and
        moments), e.g. those that met a stopping criterion."""
        if frozen is not None and bool(frozen.any()):
            keep = [
                (p.clone(), m.clone(), v.clone())
                for p, m, v in zip(self.params, self.m, self.v, strict=True)
            ]
            self.step(grads)
            for (p0, m0, v0), p, m, v in zip(keep, self.params, self.m, self.v, strict=True):
                mask = frozen.view(-1, *([1] * (p.dim() - 1)))
                p.copy_(torch.where(mask, p0, p))
                m.copy_(torch.where(mask, m0, m))
                v.copy_(torch.where(mask, v0, v))
            return
        self.t += 1
        c = self.config
        b1, b2 = c.betas
        lr = self.lr_at(self.t)
        bc1 = 1 - b1**self.t
        bc2_sqrt = (1 - b2**self.t) ** 0.5
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            if c.weight_decay:
                p.mul_(1 - lr * c.weight_decay)
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / bc2_sqrt).add_(c.eps)
            p.addcdiv_(m, denom, value=-lr / bc1)
