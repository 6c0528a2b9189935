"""Per-replica losses, differentiable (``value``) and with closed-form gradients (``grad``).

Each replica's loss is a weighted mean over samples; the weights (R, n) are masks normalised to sum to
one per replica, so replicas can train on different subsets (different rho, a dropped class) of ONE
shared input matrix. Summing the replicas' losses keeps their gradients independent.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from softleak.simulate.models import softmax_classes


def normalized_weights(mask: torch.Tensor) -> torch.Tensor:
    """(R, n) 0/1 mask -> weights summing to one per replica."""
    mask = mask.to(torch.get_default_dtype() if not mask.is_floating_point() else mask.dtype)
    return mask.div_(mask.sum(-1, keepdim=True).clamp_min(1)) if mask.is_floating_point() else mask


def like_layout(src: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``src`` broadcast to ``ref``'s shape, copied into ``ref``'s memory order (axis ordering).

    Elementwise ops between tensors of one memory order vectorize; mixed orders (a (R, n) mask
    against (R, n) logits stored as (n, R)) ran ~10x slower in the training loop.
    """
    order = sorted(range(ref.dim()), key=lambda i: (-ref.stride(i), i))  # outermost axis first
    out = torch.empty([ref.shape[i] for i in order], dtype=src.dtype, device=ref.device)
    out = out.permute([order.index(i) for i in range(ref.dim())])
    return out.copy_(src.expand(ref.shape))


@dataclass
class Objective:
    """A loss over logits (R, n, k).

    kind: ``"bce"`` (k = 1, targets (n,) or (R, n) in {0, 1}), ``"ce"`` (hard labels, targets (n,) or
    (R, n) long), ``"soft"`` (soft labels, targets (n, k) or (R, n, k); the student's own logits are
    NOT divided by tau, as in the reference).
    weights: (R, n) or (n,) per-sample weights summing to one, or None for the plain mean.
    """

    kind: str
    targets: torch.Tensor
    weights: torch.Tensor | None = None

    def _w(self, logits: torch.Tensor) -> torch.Tensor:
        if self.weights is None:
            n = logits.shape[1]
            return torch.full(logits.shape[:2], 1.0 / n, dtype=logits.dtype, device=logits.device)
        return self.weights.to(logits.dtype).expand(logits.shape[:2])

    def per_sample(self, logits: torch.Tensor) -> torch.Tensor:
        """Differentiable per-sample loss (R, n)."""
        if self.kind == "bce":
            t = self.targets.to(logits.dtype).expand(logits.shape[:2])
            return F.binary_cross_entropy_with_logits(logits[..., 0], t, reduction="none")
        logp = softmax_classes(logits, log=True)
        if self.kind == "ce":
            t = self.targets.expand(logits.shape[:2])
            return -logp.gather(-1, t.unsqueeze(-1)).squeeze(-1)
        return -(self.targets.to(logits.dtype) * logp).sum(-1)

    def value(self, logits: torch.Tensor) -> torch.Tensor:
        """Loss per replica (R,), differentiable (the autograd path)."""
        return (self.per_sample(logits) * self._w(logits)).sum(-1)

    def _aligned(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Weights (R, n) and targets in the logits' memory order (computed once, then cached)."""
        key = (tuple(logits.shape), logits.stride(), logits.dtype)
        if getattr(self, "_cache_key", None) != key:
            per_sample = logits[..., 0]
            w = like_layout(self._w(logits), per_sample)
            if self.kind == "soft":
                t = like_layout(self.targets.to(logits.dtype), logits)
                t_sum = like_layout(t.sum(-1), per_sample)
            else:
                dtype = logits.dtype if self.kind == "bce" else self.targets.dtype
                t, t_sum = like_layout(self.targets.to(dtype), per_sample), None
            self._cache, self._cache_key = (w, t, t_sum), key
        return self._cache

    def grad(self, logits: torch.Tensor) -> torch.Tensor:
        """dL/dlogits (R, n, k) of the per-replica losses, in closed form (no loss evaluated)."""
        w, t, t_sum = self._aligned(logits)
        if self.kind == "bce":
            return ((torch.sigmoid(logits[..., 0]) - t) * w).unsqueeze(-1)
        if self.kind == "ce":
            grad = softmax_classes(logits).clone()
            grad.scatter_add_(-1, t.unsqueeze(-1), -torch.ones_like(grad[..., :1]))
            return grad * w.unsqueeze(-1)
        # -sum_k T_k log softmax_k; T need not sum to one (ablations zero entries).
        return (softmax_classes(logits) * t_sum.unsqueeze(-1) - t) * w.unsqueeze(-1)
