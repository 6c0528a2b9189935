"""Random teacher sets, the stratified student split, and validation sets (paper sec. 3, 5).

All draws use NumPy generators in float64 and are cast afterwards, so the same seed gives the same
data on every device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TeacherSet:
    """A teacher's training set D_*^T.

    X: (n, d) float inputs; y: (n,) int labels in 0..c-1, exactly n/c of each class.
    """

    X: np.ndarray
    y: np.ndarray
    c: int

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        return int(self.X.shape[1])


def balanced_labels(n: int, c: int, rng: np.random.Generator, nested: bool = False) -> np.ndarray:
    """(n,) labels with exactly n/c of each class, in random order.

    ``nested=True`` permutes within consecutive blocks of c, so that every prefix whose length is a
    multiple of c is itself balanced (one data set per seed then serves every smaller n).
    """
    if n % c:
        raise ValueError(f"n = {n} must be a multiple of c = {c}")
    if nested:
        blocks = np.tile(np.arange(c), (n // c, 1))  # (n/c, c)
        return rng.permuted(blocks, axis=1).reshape(-1)
    return rng.permutation(np.repeat(np.arange(c), n // c))


def make_teacher_set(
    n: int,
    d: int,
    c: int,
    seed: int,
    *,
    standardize: bool = False,
    nested: bool = False,
) -> TeacherSet:
    """Gaussian inputs x ~ N(0, I_d) with balanced random labels, independent of the inputs.

    ``standardize`` reproduces the reference's logistic-regression data (randn / sqrt(d), then
    per-feature standardisation over the n samples: unit-variance, zero-mean features).
    ``nested`` makes the first n' rows of ``make_teacher_set(n_max, ...)`` a valid balanced set for
    every n' that is a multiple of c (common random numbers across alpha).
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = balanced_labels(n, c, rng, nested=nested)
    if standardize:
        X = X / np.sqrt(d)
        X = (X - X.mean(0)) / X.std(0)
    return TeacherSet(X=X, y=y, c=c)


#: Float slack of ``train_per_class``'s floor: 0.29 x 100 is 28.999999999999996 in binary
#: floating point, and 29 rows is what rho = 0.29 of 100 means.
FLOOR_SLACK = 1e-9


def train_per_class(per_class: int, rho: float) -> int:
    """Samples per class a rho student trains on: ``floor(rho * n/c)`` (the reference's
    ``int(rho * n/c)``, without its float truncation: 0.29 of 100 is 29, not 28; no preset's
    grid meets such a value); the rest of the class is its D_test^S."""
    return int(rho * per_class + FLOOR_SLACK)


def student_split(y: np.ndarray, rho: float, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of D_*^T into (train, test) index arrays.

    In each class the first ``int(rho * n/c)`` samples in data order form D_train^S, the rest D_test^S
    (the reference's rule). Because the rule takes prefixes, the train sets of increasing rho are
    nested. Returns sorted index arrays.
    """
    if not 0 < rho < 1:
        raise ValueError(f"rho must lie in (0, 1), got {rho}")
    n_per_class = len(y) // c
    k = train_per_class(n_per_class, rho)
    train = np.zeros(len(y), dtype=bool)
    for cls in range(c):
        idx = np.flatnonzero(y == cls)
        train[idx[:k]] = True
    return np.flatnonzero(train), np.flatnonzero(~train)


def make_validation(
    n: int, d: int, c: int, seed: int, kind: str = "gaussian"
) -> tuple[np.ndarray, np.ndarray]:
    """D_val: fresh inputs with random labels (chance accuracy 1/c for any model).

    ``kind="uniform"`` reproduces the reference's uniform [0, 1) inputs.
    """
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        X = rng.standard_normal((n, d))
    elif kind == "uniform":
        X = rng.random((n, d))
    else:
        raise ValueError(f"unknown validation kind {kind!r}")
    return X, rng.integers(0, c, n)


def permutation_split(n: int, rho: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) positions of range(n): the first round(rho n) of one seeded permutation and
    the rest, each sorted. One seed's training sets are nested across rho (modular addition and
    GPT-2 students; the random-data sweeps use the class-stratified ``student_split``)."""
    order = np.random.default_rng(seed).permutation(n)
    m = round(rho * n)
    return np.sort(order[:m]), np.sort(order[m:])
