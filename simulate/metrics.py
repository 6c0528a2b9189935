"""Per-replica metrics over masks of rows (torch): what every family's evaluation averages."""

from __future__ import annotations

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` (R, n) over ``mask`` (R, n) or (n,) per replica; NaN where a replica's
    mask is empty (the mean of nothing is undefined: a 0 would read as an accuracy)."""
    mask = mask.expand_as(values).to(values.dtype)
    count = mask.sum(-1)
    return torch.where(
        count > 0,
        (values * mask).sum(-1) / count.clamp_min(1),
        torch.full_like(count, float("nan")),
    )
