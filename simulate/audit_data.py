"""A user's teacher outputs for the leakage audit: reading files safely and checking shapes.

Files are read without executing anything: NumPy ``.npy``/``.npz`` with ``allow_pickle=False``,
Parquet through pandas/pyarrow, and PyTorch ``.pt``/``.pth`` tensors with ``weights_only=True``. A
file holding several arrays (``.npz``, a Parquet table, a dict of tensors) is read as ``FILE:KEY``
(an array name or a column); without ``:KEY`` the array named after its role (``logits``,
``labels``, ``inputs``) is taken, or the only array there is. For Parquet, a matrix is either all
numeric columns (``FILE``) or one column of equal-length lists (``FILE:COLUMN``).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["AuditData", "load_array", "outputs_of_model"]

SUFFIXES = (".npy", ".npz", ".parquet", ".pq", ".pt", ".pth")


@dataclass(frozen=True)
class AuditData:
    """The teacher's outputs on its training set (the *members*) and, optionally, on data it never
    saw (the *non-members*).

    logits: (n, c) the teacher's logits on its training points (any monotone scale: soft labels are
        softmax(logits / tau); pass log-probabilities when only probabilities are at hand).
    labels: (n,) int, the training labels, in 0..c-1.
    inputs: (n, d) float, what a student sees (higher-rank inputs are flattened, their shape kept
        in ``input_shape``).
    holdout_*: the same for non-members (t rows), all three or none.
    input_shape: the shape of one input, e.g. (C, H, W) for images, for students built from a
        module factory (prod = d); None: (d,), or the shape of inputs given with higher rank.
        Not part of the data's fingerprint (an audit's identity records it with a factory
        student's parameter shapes).
    """

    logits: np.ndarray
    labels: np.ndarray
    inputs: np.ndarray
    holdout_logits: np.ndarray | None = None
    holdout_labels: np.ndarray | None = None
    holdout_inputs: np.ndarray | None = None
    input_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        z = _matrix(self.logits, "logits")
        shape = tuple(int(v) for v in np.shape(self.inputs)[1:])
        n, c = z.shape
        if c < 2:
            raise ValueError(f"logits need c >= 2 columns (one per class), got shape {z.shape}")
        X = _matrix(self.inputs, "inputs", flatten=True)
        if X.shape[0] != n:
            raise ValueError(f"inputs have {X.shape[0]} rows but logits have {n}")
        y = _labels(self.labels, n, c, "labels")
        held = (self.holdout_logits, self.holdout_labels, self.holdout_inputs)
        if any(h is not None for h in held) and not all(h is not None for h in held):
            raise ValueError(
                "holdout logits, labels and inputs go together: give all three or none"
            )
        hz = hy = hX = None
        if self.holdout_logits is not None:
            hz = _matrix(self.holdout_logits, "holdout logits")
            t = hz.shape[0]
            if hz.shape[1] != c:
                raise ValueError(f"holdout logits have {hz.shape[1]} classes, logits have {c}")
            hX = _matrix(self.holdout_inputs, "holdout inputs", flatten=True)
            if hX.shape != (t, X.shape[1]):
                raise ValueError(
                    f"holdout inputs must have shape ({t}, {X.shape[1]}), got {hX.shape}"
                )
            hy = _labels(self.holdout_labels, t, c, "holdout labels")
        for name, value in (
            ("logits", z),
            ("labels", y),
            ("inputs", X),
            ("holdout_logits", hz),
            ("holdout_labels", hy),
            ("holdout_inputs", hX),
        ):
            object.__setattr__(self, name, value)
        shape = tuple(int(v) for v in self.input_shape) if self.input_shape else shape
        if int(np.prod(shape)) != X.shape[1]:
            raise ValueError(
                f"input shape {shape} holds {int(np.prod(shape))} values but the inputs have "
                f"{X.shape[1]} columns"
            )
        object.__setattr__(self, "input_shape", shape)

    @property
    def n(self) -> int:
        return int(self.logits.shape[0])

    @property
    def c(self) -> int:
        return int(self.logits.shape[1])

    @property
    def d(self) -> int:
        return int(self.inputs.shape[1])

    @property
    def has_holdout(self) -> bool:
        return self.holdout_logits is not None

    def describe(self) -> dict:
        """Sizes and the teacher's accuracies, for the run record."""
        out = {
            "n_members": self.n,
            "c": self.c,
            "d": self.d,
            "teacher_member_acc": float(np.mean(self.logits.argmax(1) == self.labels)),
            "n_nonmembers": 0,
            "input_shape": list(self.input_shape),
        }
        if self.has_holdout:
            out["n_nonmembers"] = int(self.holdout_labels.shape[0])
            out["teacher_nonmember_acc"] = float(
                np.mean(self.holdout_logits.argmax(1) == self.holdout_labels)
            )
        return out

    @classmethod
    def from_files(
        cls,
        logits: str,
        labels: str,
        inputs: str,
        holdout_logits: str | None = None,
        holdout_labels: str | None = None,
        holdout_inputs: str | None = None,
        input_shape: tuple[int, ...] | None = None,
    ) -> AuditData:
        """Read every array with :func:`load_array` (the role names select ``.npz`` keys);
        ``input_shape`` as in the class (default: the inputs' own shape)."""
        read = {
            "logits": logits,
            "labels": labels,
            "inputs": inputs,
            "holdout_logits": holdout_logits,
            "holdout_labels": holdout_labels,
            "holdout_inputs": holdout_inputs,
        }
        arrays = {
            name: None if spec is None else load_array(spec, name.removeprefix("holdout_"))
            for name, spec in read.items()
        }
        return cls(**arrays, input_shape=input_shape)

    @classmethod
    def from_model(
        cls,
        model,
        inputs,
        labels,
        holdout_inputs=None,
        holdout_labels=None,
        *,
        batch_size: int = 4096,
    ) -> AuditData:
        """Outputs of a ``torch.nn.Module`` (inputs -> (batch, c) logits) on the members and,
        when given, the non-members."""
        z = outputs_of_model(model, inputs, batch_size)
        hz = None if holdout_inputs is None else outputs_of_model(model, holdout_inputs, batch_size)
        arrays = [_host(a) for a in (labels, inputs, holdout_labels, holdout_inputs)]
        return cls(z, arrays[0], arrays[1], hz, arrays[2], arrays[3])


def _host(value):
    """A tensor (any device, with or without grad) as a NumPy array; other values unchanged."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu()
        return (value.float() if str(value.dtype) == "torch.bfloat16" else value).numpy()
    return value


def outputs_of_model(model, inputs, batch_size: int = 4096) -> np.ndarray:
    """(n, c) float64 logits of ``model`` on ``inputs`` (array or tensor), in eval mode, no grad."""
    import torch

    X = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, torch.Tensor) else inputs)
    param = next(iter(model.parameters()), None)
    if param is not None:
        X = X.to(device=param.device, dtype=param.dtype if X.is_floating_point() else X.dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            parts = [model(X[i : i + batch_size]) for i in range(0, X.shape[0], batch_size)]
    finally:
        model.train(was_training)
    parts = [p.logits if hasattr(p, "logits") else p for p in parts]  # Hugging Face style outputs
    out = torch.cat(parts) if parts else torch.empty(0, 0)
    return out.detach().double().cpu().numpy()


def _matrix(value, name: str, flatten: bool = False) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
    if np.iscomplexobj(a):
        raise ValueError(f"{name} must be real numbers, got complex dtype {a.dtype}")
    if a.size == 0:
        raise ValueError(f"{name} is empty (shape {a.shape}): give at least one row")
    if flatten and a.ndim > 2:
        a = a.reshape(a.shape[0], -1)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"{name} must be a 2-D array (rows, columns), got shape {a.shape}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contain NaN or inf")
    return a


def _labels(value, n: int, c: int, name: str) -> np.ndarray:
    y = np.asarray(value)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.number) or np.iscomplexobj(y):
        raise ValueError(f"{name} must be integers 0..{c - 1}, got dtype {y.dtype}")
    if not np.all(np.isfinite(y)) or not np.all(np.equal(np.mod(y, 1), 0)):
        raise ValueError(f"{name} must be integers 0..{c - 1}")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= c:
        raise ValueError(f"{name} must lie in 0..{c - 1} (c = {c} logit columns)")
    return y


def _split_key(spec: str) -> tuple[Path, str | None]:
    """``FILE`` or ``FILE:KEY`` (the key after the last colon that follows a known suffix)."""
    text = str(spec)
    lower = text.lower()
    for suffix in SUFFIXES:
        at = lower.rfind(suffix + ":")
        if at >= 0:
            end = at + len(suffix)
            return Path(text[:end]), text[end + 1 :]
    return Path(text), None


def input_path(spec: str) -> Path:
    """The file ``FILE`` or ``FILE:KEY`` names."""
    return _split_key(spec)[0]


def load_array(spec: str, role: str | None = None) -> np.ndarray:
    """Read one array from ``FILE`` or ``FILE:KEY`` without executing code.

    role: the default key (``logits``, ``labels``, ``inputs``) when a file holds several arrays.
    Raises ValueError with one line saying what is wrong (missing file, unknown type, bad key).
    """
    path, key = _split_key(spec)
    if not path.is_file():
        raise ValueError(
            f"{path} is a folder, not a file" if path.is_dir() else f"no such file: {path}"
        )
    suffix = path.suffix.lower()
    _check_magic(path, suffix)
    try:
        if suffix == ".npy":
            if key is not None:
                raise ValueError(f"{path}: a .npy file holds one array; drop ':{key}'")
            return np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                return archive[_pick(path, list(archive.files), key, role)]
        if suffix in (".parquet", ".pq"):
            return _from_parquet(path, key, role)
        if suffix in (".pt", ".pth"):
            return _from_torch(path, key, role)
    except ValueError as err:
        if str(path) in str(err):
            raise
        raise ValueError(f"{path}: {err}") from None
    except (OSError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: cannot read ({type(err).__name__}: {err})") from None
    raise ValueError(f"{path}: unsupported file type {suffix!r}; use {', '.join(SUFFIXES)}")


#: The first bytes of each array format (a file that lacks them is not that format: NumPy
#: would otherwise try to unpickle it and complain about pickles).
MAGIC = {".npy": b"\x93NUMPY", ".npz": b"PK", ".parquet": b"PAR1", ".pq": b"PAR1"}


def _check_magic(path: Path, suffix: str) -> None:
    magic = MAGIC.get(suffix)
    if magic is None:
        return
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(magic))
    except OSError as err:
        raise ValueError(f"{path}: cannot read ({err.strerror or err})") from None
    if head != magic:
        what = "empty" if not head else f"not a {suffix} file (it lacks the format's header)"
        raise ValueError(f"{path} is {what}")


def _pick(path: Path, names: list[str], key: str | None, role: str | None) -> str:
    if key is not None:
        if key not in names:
            raise ValueError(f"{path} has no array {key!r}; it has {', '.join(names) or 'none'}")
        return key
    if role is not None and role in names:
        return role
    if len(names) == 1:
        return names[0]
    raise ValueError(f"{path} holds {', '.join(names) or 'no arrays'}; name one as {path}:NAME")


def _from_parquet(path: Path, key: str | None, role: str | None) -> np.ndarray:
    import pandas as pd

    frame = pd.read_parquet(path)
    cols = [str(c) for c in frame.columns]
    frame.columns = cols
    if key is None and role is not None and role in cols:
        key = role
    if key is None and len(cols) > 1:
        numeric = frame.select_dtypes("number")
        if numeric.shape[1] != frame.shape[1]:
            raise ValueError(f"non-numeric columns; name one as {path}:COLUMN")
        return numeric.to_numpy()
    column = frame[_pick(path, cols, key, None) if key is not None else cols[0]]
    first = column.iloc[0] if len(column) else None
    if isinstance(first, (list, tuple, np.ndarray)):
        if any(v is None for v in column):
            raise ValueError(f"column {column.name!r} has missing (null) rows")
        lengths = {len(v) for v in column}
        if len(lengths) != 1:
            raise ValueError(f"column {column.name!r} holds lists of different lengths")
        return np.stack([np.asarray(v) for v in column])
    return column.to_numpy()


def _from_torch(path: Path, key: str | None, role: str | None) -> np.ndarray:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError and others for unsafe content
        # torch's own message runs 6-8 lines and advises weights_only=False: keep one line of ours
        kind = type(err).__name__
        raise ValueError(
            f"not a plain tensor file: it loads only by executing code or is damaged ({kind}); "
            "save plain tensors (torch.save(tensor)) or .npy/.npz arrays"
        ) from None
    if isinstance(obj, dict):
        obj = {str(k): v for k, v in obj.items()}  # keys may be ints
        names = list(obj)
        obj = obj[_pick(path, names, key, role)]
    elif key is not None:
        raise ValueError(f"holds one tensor; drop ':{key}'")
    if not isinstance(obj, torch.Tensor):
        raise ValueError(f"expected a tensor, found {type(obj).__name__}")
    if obj.dtype == torch.bfloat16:  # NumPy has no bfloat16
        obj = obj.float()
    return obj.detach().cpu().numpy()
