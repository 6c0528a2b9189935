"""Real data sets, nothing downloaded: scikit-learn's bundled ones and a user's own arrays.

``load_real(source)`` returns a :class:`RealData`: flat float64 inputs ``(n, d)`` with their
``in_shape`` (images stay ``(C, H, W)`` for a module that wants them), int64 labels in
``0..c-1`` and a fingerprint of the arrays. Sources:

- ``digits`` (the default of the canary experiment): 1,797 8x8 grey images of handwritten digits,
  10 classes, pixels 0..16 scaled to [0, 1], ``in_shape`` (1, 8, 8);
- ``breast_cancer`` (569 x 30 features, 2 classes) and ``wine`` (178 x 13, 3 classes), each feature
  standardised over the data set (mean 0, std 1: an unsupervised, label-free transform);
- a file ``FILE.npz`` (arrays ``inputs`` (n, ...) and ``labels`` (n,); inputs of rank > 2 keep
  their shape as ``in_shape``) or ``FILE.parquet`` (a ``labels`` column and either an ``inputs``
  column of equal-length lists or numeric feature columns), read without executing anything
  (``simulate.audit_data.load_array``: ``allow_pickle=False``). Labels (numbers or text) are
  mapped to 0..c-1 in sorted order of their values.

The bundled sets need scikit-learn (``pip install 'softleak[real]'``), imported only when one is
loaded; :data:`BUNDLED` holds their sizes so that work can be counted without it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["BUNDLED", "RealData", "describe_source", "load_real", "stratified_split"]


@dataclass(frozen=True)
class Bundled:
    loader: str  # the sklearn.datasets function
    n: int
    in_shape: tuple[int, ...]
    c: int
    scale: str  # "pixels16" (divide by 16) or "standardize"


#: scikit-learn's bundled data sets by name (sizes as they ship).
BUNDLED = {
    "digits": Bundled("load_digits", 1797, (1, 8, 8), 10, "pixels16"),
    "breast_cancer": Bundled("load_breast_cancer", 569, (30,), 2, "standardize"),
    "wine": Bundled("load_wine", 178, (13,), 3, "standardize"),
}


@dataclass(frozen=True)
class RealData:
    """A labelled data set: ``inputs`` (n, d) float64 (flat rows), ``labels`` (n,) int64 in
    0..c-1, ``in_shape`` (the shape of one input, prod = d)."""

    name: str
    inputs: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    in_shape: tuple[int, ...]
    c: int

    @property
    def n(self) -> int:
        return int(self.labels.shape[0])

    @property
    def d(self) -> int:
        return int(self.inputs.shape[1])

    def fingerprint(self) -> str:
        """A hash of the arrays (and the input shape) as the run uses them."""
        h = hashlib.sha256()
        for a in (self.inputs, self.labels):
            h.update(str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(str(self.in_shape).encode())
        return h.hexdigest()[:16]


def _sklearn(name: str):
    try:
        from sklearn import datasets
    except ImportError:
        raise ValueError(
            f"the bundled data set {name!r} needs scikit-learn: pip install 'softleak[real]' "
            "(or give your own arrays as FILE.npz / FILE.parquet)"
        ) from None
    return getattr(datasets, BUNDLED[name].loader)()


def load_real(source: str, input_shape: tuple[int, ...] = ()) -> RealData:
    """The data set ``source`` (a bundled name or a file; see the module docstring).
    ``input_shape``: the shape of one input, for a file whose inputs are stored flat (its product
    must be the number of features). ValueError (one line) for anything unusable."""
    source = str(source)
    if source in BUNDLED:
        info = BUNDLED[source]
        bunch = _sklearn(source)
        X = np.asarray(bunch.data, dtype=np.float64)
        if info.scale == "pixels16":
            X = X / 16.0
        else:
            std = X.std(0)
            X = (X - X.mean(0)) / np.where(std > 0, std, 1.0)
        y = np.asarray(bunch.target, dtype=np.int64)
        shape = info.in_shape
    else:
        X, y = _read_file(source)
        shape = tuple(X.shape[1:])
        X = X.reshape(X.shape[0], -1)
        _, y = np.unique(y, return_inverse=True)
    if input_shape:
        input_shape = tuple(int(v) for v in input_shape)
        if int(np.prod(input_shape)) != X.shape[1]:
            raise ValueError(
                f"input shape {input_shape} holds {int(np.prod(input_shape))} values but the "
                f"inputs have {X.shape[1]} features"
            )
        shape = input_shape
    c = int(y.max()) + 1
    if c < 2:
        raise ValueError(f"{source}: the labels hold one class; need at least 2")
    return RealData(source, X, y.astype(np.int64), tuple(shape), c)


def _read_file(source: str) -> tuple[np.ndarray, np.ndarray]:
    from softleak.simulate.audit_data import load_array

    path = Path(source)
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".parquet", ".pq"):
        known = ", ".join(BUNDLED)
        raise ValueError(f"unknown data {source!r}: use {known}, FILE.npz or FILE.parquet")
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    y = np.asarray(load_array(f"{source}:labels"))
    if suffix == ".npz":
        X = np.asarray(load_array(f"{source}:inputs"))
    else:
        X = _parquet_inputs(path)
    if X.dtype == object or not np.issubdtype(X.dtype, np.number):
        raise ValueError(f"{path}: inputs must be numeric, got dtype {X.dtype}")
    if X.ndim < 2 or X.shape[0] != len(y) or X.shape[0] < 2:
        raise ValueError(f"{path}: inputs {X.shape} and labels {y.shape} must share their rows")
    X = X.astype(np.float64)
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{path}: inputs contain NaN or inf")
    if y.ndim != 1 or (y.dtype.kind == "f" and not np.all(np.isfinite(y))):
        raise ValueError(f"{path}: labels must be one value per row, without NaN")
    return X, y


def _parquet_inputs(path: Path) -> np.ndarray:
    import pandas as pd

    from softleak.simulate.audit_data import load_array

    columns = [str(c) for c in pd.read_parquet(path).columns]
    if "inputs" in columns:
        return np.asarray(load_array(f"{path}:inputs"))
    frame = pd.read_parquet(path, columns=[c for c in columns if c != "labels"])
    numeric = frame.select_dtypes("number")
    if numeric.shape[1] != frame.shape[1] or numeric.shape[1] == 0:
        raise ValueError(
            f"{path}: give an 'inputs' column of lists, or numeric feature columns besides 'labels'"
        )
    return numeric.to_numpy()


def describe_source(source: str, input_shape: tuple[int, ...] = ()) -> tuple[int, tuple, int]:
    """(n, in_shape, c) of ``source`` without scikit-learn for the bundled sets (files are read)."""
    if str(source) in BUNDLED:
        info = BUNDLED[str(source)]
        return info.n, tuple(input_shape) or info.in_shape, info.c
    data = load_real(source, input_shape)
    return data.n, data.in_shape, data.c


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) sorted index arrays: in each class a seeded permutation of which the last
    ``round(test_fraction * count)`` rows are the test split."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        t = int(round(test_fraction * len(idx)))
        train.append(idx[: len(idx) - t])
        test.append(idx[len(idx) - t :])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
