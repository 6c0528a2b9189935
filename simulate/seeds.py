"""Deterministic seeds derived from a base seed and a run's configuration.

Every random draw in a sweep (data, initialisation, shuffle permutations) takes its seed from
``derive_seed(base, role, *config)``. The same command therefore gives the same table, and a run's seeds
do not depend on which other runs share its sweep or its replica batch.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _canonical(value: object) -> str:
    if isinstance(value, float):
        return repr(float(f"{value:.12g}"))
    if isinstance(value, (np.floating, np.integer)):
        return _canonical(value.item())
    return repr(value)


def derive_seed(base: int, role: str, *config: object) -> int:
    """A 31-bit seed from ``base``, a ``role`` name (``"data"``, ``"teacher"`` ...) and config values.

    Floats are rounded to 12 significant digits first, so ``0.1`` from a list and ``0.1`` from a
    linspace give the same seed.
    """
    text = "|".join([str(int(base)), role, *(_canonical(v) for v in config)])
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
