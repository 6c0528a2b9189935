"""Release settings: what a teacher's owner might publish instead of its full soft labels.

A setting turns the teacher's logits z (n, c) into the soft labels a student trains on. Each is
written as ``NAME`` or ``NAME:VALUE`` and applied on top of the base temperature tau:

- ``soft``: softmax(z / tau), the unmodified soft labels.
- ``tau:T``: softmax(z / T), another temperature.
- ``top_k:K``: the K largest entries of softmax(z / tau), renormalised (the rest zero).
- ``round:D``: softmax(z / tau) rounded to D decimals, renormalised (a row that rounds to all zeros
  falls back to the one-hot argmax).
- ``noise:S``: softmax(z / tau + S * eps), eps ~ N(0, 1) i.i.d. per entry: Gaussian noise of std S
  on the tempered logits (std S * tau on the raw logits), so S means the same whatever tau is.
- ``hard``: one-hot of the teacher's argmax (hard labels only).
- ``shuffle``: a *control*, not a release: the soft labels permuted within each class among the
  student's training samples (paper Fig. 16), with no sample keeping its own (a derangement). Each
  input gets the soft label of another input of its class, which keeps the class but breaks the link between an input and its "dark knowledge";
  a student of these labels should leak nothing, so its measured leakage checks the audit itself.

All arithmetic is float64 numpy; the randomness (noise, shuffles) is passed in as a generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from softleak.simulate.softlabels import within_class_derangement

__all__ = [
    "DEFAULT_SETTINGS",
    "Release",
    "default_settings",
    "parse_release",
    "release_soft_labels",
    "softmax",
]

KINDS = ("soft", "tau", "top_k", "round", "noise", "hard", "shuffle")
NEEDS_VALUE = {"tau": float, "top_k": int, "round": int, "noise": float}


def default_settings(tau: float = 1.0) -> tuple[str, ...]:
    """The settings audited when none are given: the soft labels, temperatures 4x below and above
    ``tau``, truncation to 2 and 5 classes, rounding to 1 and 2 decimals, noise of std 1 and 3 on
    the tempered logits, hard labels, and the shuffle control. ``top_k:K`` with K >= c is dropped
    by the audit (it equals ``soft``)."""
    return (
        "soft",
        f"tau:{tau / 4:.6g}",
        f"tau:{tau * 4:.6g}",
        "top_k:2",
        "top_k:5",
        "round:1",
        "round:2",
        "noise:1",
        "noise:3",
        "hard",
        "shuffle",
    )


DEFAULT_SETTINGS: tuple[str, ...] = default_settings(1.0)
"""The defaults at tau = 1."""

MAX_DECIMALS = 12  # float64 probabilities carry ~16 digits; more decimals change nothing


@dataclass(frozen=True)
class Release:
    """One parsed setting. ``name`` is its canonical text (``tau:5``, not ``tau:5.0``)."""

    name: str
    kind: str
    value: float | int | None = None

    @property
    def control(self) -> bool:
        """True for a null check (the shuffle control), never a setting to recommend."""
        return self.kind == "shuffle"


def parse_release(text: str, c: int | None = None) -> Release:
    """Parse ``NAME`` or ``NAME:VALUE``; ``c`` (classes) bounds ``top_k``. Raises ValueError."""
    name, sep, arg = str(text).strip().partition(":")
    if name not in KINDS:
        raise ValueError(f"unknown release setting {text!r}; choose from {', '.join(KINDS)}")
    if name not in NEEDS_VALUE:
        if sep:
            raise ValueError(f"release setting {name!r} takes no value, got {text!r}")
        return Release(name, name)
    kind = NEEDS_VALUE[name]
    try:
        value = float(arg)
    except ValueError:
        raise ValueError(
            f"release setting {name} needs a number, e.g. {name}:2; got {text!r}"
        ) from None
    if not math.isfinite(value):
        raise ValueError(f"release setting {text!r}: the value must be finite")
    if kind is int:
        if not value.is_integer():
            raise ValueError(f"release setting {text!r}: the value must be an integer")
        value = int(value)
    if name == "tau" and value <= 0:
        raise ValueError(f"release setting {text!r}: the temperature must be > 0")
    if name == "top_k" and (value < 1 or (c is not None and value > c)):
        bound = (
            "K must be >= 1 (top_k:0 keeps no class)" if c is None else f"K must lie in 1..c = {c}"
        )
        raise ValueError(f"release setting {text!r}: {bound}")
    if name == "round" and not 0 <= value <= MAX_DECIMALS:
        raise ValueError(f"release setting {text!r}: decimals must lie in 0..{MAX_DECIMALS}")
    if name == "noise" and value < 0:
        raise ValueError(f"release setting {text!r}: the noise std must be >= 0")
    text = f"{value:g}" if float(f"{value:g}") == value else repr(value)  # short but lossless
    return Release(f"{name}:{text}", name, value)


def softmax(z: np.ndarray) -> np.ndarray:
    """Row softmax of z (n, c) in float64, stable for any logit scale."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _one_hot(index: np.ndarray, c: int) -> np.ndarray:
    out = np.zeros((len(index), c))
    out[np.arange(len(index)), index] = 1.0
    return out


def release_soft_labels(
    logits: np.ndarray,
    release: Release,
    tau: float,
    rng: np.random.Generator | None = None,
    *,
    labels: np.ndarray | None = None,
    train: np.ndarray | None = None,
) -> np.ndarray:
    """The soft labels (n, c) float64 released under ``release`` for teacher logits (n, c).

    rng: draws the noise (``noise``) and the permutation (``shuffle``).
    labels, train: the true labels (n,) and the student's training indices, for ``shuffle`` (which
    permutes rows of ``train`` within each class and leaves the others in place).
    """
    z = np.asarray(logits, dtype=np.float64)
    n, c = z.shape
    kind, value = release.kind, release.value
    if kind in ("noise", "shuffle") and rng is None:
        raise ValueError(f"release {release.name} needs a random generator")
    if kind == "tau":
        return softmax(z / float(value))
    if kind == "hard":
        return _one_hot(z.argmax(-1), c)
    if kind == "noise":
        return softmax(z / tau + float(value) * rng.standard_normal((n, c)))
    soft = softmax(z / tau)
    if kind == "soft":
        return soft
    if kind == "top_k":
        k = int(value)
        if not 1 <= k <= c:
            raise ValueError(f"release setting {release.name}: K must lie in 1..c = {c}")
        drop = np.argpartition(soft, c - k, axis=-1)[:, : c - k]  # the c - k smallest per row
        out = soft.copy()
        np.put_along_axis(out, drop, 0.0, axis=-1)
        return out / out.sum(-1, keepdims=True)
    if kind == "round":
        out = np.round(soft, int(value))
        total = out.sum(-1, keepdims=True)
        empty = total[:, 0] <= 0
        out[empty] = _one_hot(soft[empty].argmax(-1), c)
        total[empty] = 1.0
        return out / total
    if kind == "shuffle":
        if labels is None or train is None:
            raise ValueError("the shuffle control needs the labels and the training indices")
        return soft[within_class_derangement(np.asarray(labels), np.asarray(train), rng)]
    raise ValueError(f"unknown release kind {kind!r}")
