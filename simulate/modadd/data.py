"""The examples: all p^2 pairs (a, b, "=") with labels (a + b) mod p, and the seeded
teacher/validation split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from softleak.simulate.modadd.spec import ModAddSpec


@dataclass(frozen=True)
class ModAddData:
    """All p^2 examples and the teacher/validation split (numpy; row a p + b is the pair (a, b))."""

    p: int
    tokens: np.ndarray  # (p^2, 3) int64: a, b, "=" (= p)
    labels: np.ndarray  # (p^2,) int64: (a + b) mod p
    teacher: np.ndarray  # (n,) sorted rows of D_*^T
    val: np.ndarray  # (p^2 - n,) sorted rows of D_val


def all_pairs(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Tokens (p^2, 3) = (a, b, p) in row a p + b, and labels (a + b) mod p."""
    a, b = np.divmod(np.arange(p * p, dtype=np.int64), p)
    tokens = np.stack([a, b, np.full_like(a, p)], 1)
    return tokens, (a + b) % p


def make_data(spec: ModAddSpec) -> ModAddData:
    """The spec's examples with a seeded teacher/validation split of n / p^2 - n rows."""
    tokens, labels = all_pairs(spec.p)
    order = np.random.default_rng(spec.data_seed()).permutation(spec.p**2)
    return ModAddData(spec.p, tokens, labels, np.sort(order[: spec.n]), np.sort(order[spec.n :]))
