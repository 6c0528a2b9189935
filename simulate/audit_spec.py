"""The leakage audit's specification (``simulate.leakage_audit`` runs it): the validated
``AuditSpec``, the release settings it parses for the data's classes, and its units of work --
the seeded, class-stratified splits of the members per (seed, rho)."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field

import numpy as np

from softleak.simulate.audit_data import AuditData
from softleak.simulate.precision import DTYPES
from softleak.simulate.release import Release, default_settings, parse_release
from softleak.simulate.run_spec import filled
from softleak.simulate.seeds import derive_seed

__all__ = ["AuditSpec", "fingerprint", "releases_for", "split_members", "units_of"]

STUDENTS = ("linear", "mlp")
SOLVERS = ("adam", "lbfgs")
GRID = ("rho", "seeds")  # may grow or shrink in one directory: each (seed, rho) is a unit


#: Bytes per row of the per-example table in memory (8-byte numbers, a 1-byte group code and
#: flag, a pointer to the shared setting name; measured 63 with pandas 3).
EXAMPLE_ROW_BYTES = 64


@dataclass(frozen=True)
class AuditSpec:
    """What to audit and how the students train. Validated on construction."""

    rho: tuple[float, ...] = (0.25, 0.5, 0.75)  # fractions of the members a student trains on
    seeds: int = 5  # repetitions: each redraws the split, the student init and the release noise
    # "linear", "mlp", or a module factory: "cnn", "FILE.py:NAME", a callable (in_shape, c) ->
    # torch.nn.Module or a ``simulate.factories.Factory`` (trained by simulate.module_engine)
    student: str = "linear"
    width: tuple[int, ...] = (256,)  # hidden widths of an MLP student (ignored when linear)
    bias: bool | None = None  # None: the paper's students (linear without, MLP with biases)
    tau: float = 1.0  # the temperature the soft labels are released at ("soft")
    # release settings, filled in when not given: default_settings(tau)
    settings: tuple[str, ...] = filled()
    solver: str = "auto"  # "adam" | "lbfgs" | "auto" (L-BFGS for linear students, else Adam)
    # Adam steps or L-BFGS iterations, filled in when not given: 2,000 Adam, 500 L-BFGS
    epochs: int = filled()
    lr: float = 1e-2  # Adam learning rate
    warm_start: bool = True  # linear students start at the log-ratio least-squares fit
    certify: bool = True  # certified fractions for linear students (theory.certified)
    seed: int = 0  # base seed of every draw
    dtype: str = "float32"  # student arithmetic: float32 | float64
    device: str = "cpu"  # torch device of the students
    precision: str = "fp32"  # the students' training GEMMs (simulate.precision): fp32 | tf32 | bf16
    engine: str = "auto"  # module students: vmap | loop | auto (round-off only, not identity)

    def __post_init__(self) -> None:
        from softleak.simulate.precision import check_precision

        check_precision(self.precision, self.device, self.dtype)
        if self.student not in STUDENTS:
            from softleak.simulate.factories import Factory

            object.__setattr__(self, "student", Factory.of(self.student))
            if self.precision != "fp32":
                raise ValueError(
                    f"precision {self.precision} is not available for module (factory) students "
                    "in this release: use fp32"
                )
            if self.solver == "lbfgs":
                raise ValueError("L-BFGS is for linear students; module students train by Adam")
        if self.engine not in ("auto", "vmap", "loop"):
            raise ValueError(f"engine must be auto, vmap or loop, got {self.engine!r}")
        rho = tuple(float(r) for r in np.atleast_1d(self.rho))
        if not rho or any(not 0 < r < 1 for r in rho):
            raise ValueError(f"rho must lie in (0, 1), got {self.rho}")
        object.__setattr__(self, "rho", tuple(sorted(set(rho))))
        if int(self.seeds) < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}")
        width = tuple(int(w) for w in np.atleast_1d(self.width))
        if self.student == "mlp" and (not width or min(width) < 1):
            raise ValueError(f"an MLP student needs hidden widths >= 1, got {self.width}")
        object.__setattr__(self, "width", width if self.student == "mlp" else ())
        if not (np.isfinite(self.tau) and self.tau > 0):
            raise ValueError(f"tau must be finite and > 0, got {self.tau}")
        if self.solver == "auto":
            object.__setattr__(self, "solver", "lbfgs" if self.student == "linear" else "adam")
        if self.solver not in SOLVERS:
            raise ValueError(
                f"solver must be one of auto, {', '.join(SOLVERS)}, got {self.solver!r}"
            )
        if self.epochs is None:
            object.__setattr__(self, "epochs", 500 if self.solver == "lbfgs" else 2_000)
        if int(self.epochs) < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be finite and > 0, got {self.lr}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.settings is None:
            object.__setattr__(self, "settings", default_settings(self.tau))
        names = [parse_release(s).name for s in self.settings]
        if not names:
            raise ValueError("give at least one release setting")
        if len(set(names)) != len(names):
            raise ValueError(f"release settings repeat: {', '.join(self.settings)}")
        object.__setattr__(self, "settings", tuple(names))

    @property
    def has_bias(self) -> bool:
        return self.student == "mlp" if self.bias is None else bool(self.bias)

    @property
    def is_module(self) -> bool:
        """True for a module (factory) student."""
        return self.student not in STUDENTS

    @property
    def student_name(self) -> str:
        if self.is_module:
            return self.student.name
        return "linear" if self.student == "linear" else "mlp:" + ",".join(map(str, self.width))

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        if self.is_module:
            out["student"] = self.student.describe()
        return out

    def _settings(self, skip: tuple[str, ...], data: AuditData | None) -> dict:
        """The fields but ``skip`` (and ``engine``: round-off only); a module student as its
        factory identity (name, SHA-256, parameter shapes for ``data``'s inputs and classes) and
        the input shape it reads."""
        from softleak.simulate.rundir import settled

        out = {k: v for k, v in self.to_dict().items() if k not in (*skip, "engine")}
        if self.is_module:
            if data is None:
                raise ValueError("a module student's identity needs the audited data's shapes")
            from softleak.simulate.factories import factory_identity

            out["student"] = factory_identity(self.student, data.input_shape, data.c)
            out["input_shape"] = list(data.input_shape)  # (a convolution's shapes may not show it)
        return settled(out)

    def run_id(self, fingerprint: str, data: AuditData | None = None) -> str:
        """What determines the numbers: every field but the device, plus the input data."""
        from softleak.simulate.rundir import digest

        return digest({"spec": self._settings(("device",), data), "data": fingerprint})

    def identity(self, fingerprint: str, data: AuditData | None = None) -> dict:
        """The run directory's identity: the settings but the device and the grid (rho, seeds),
        and the audited data's fingerprint (``data``: needed for a module student)."""
        return {**self._settings(("device", *GRID), data), "data": fingerprint}

    def peak_bytes(self, n: int, d: int, c: int, n_holdout: int, n_params: int = 0) -> int:
        """Rough peak memory of one (seed, rho) unit with one setting: the members' and
        non-members' arrays on the device, and a student's parameters, Adam state and
        activations on the members' rows (``n_params``: a module student's parameters; its
        activations are not counted)."""
        b = 8 if self.dtype == "float64" else 4
        widths = [d, *self.width, c]
        params = sum(a * o for a, o in zip(widths[:-1], widths[1:], strict=True)) + n_params
        acts = (n + n_holdout) * (sum(self.width) * 3 + c * 6)
        return int(1.25 * ((n + n_holdout) * (d + c) * (8 + b) + b * (5 * params + acts)))

    def examples_bytes(self, n: int, n_holdout: int, settings: int) -> int:
        """Rough size in memory of the whole audit's per-example table (``AuditResult.examples``,
        at most every member held out, every non-member, per setting, seed and rho), twice over
        for the copy of the concatenation that builds it."""
        rows = settings * self.seeds * len(self.rho) * (n + n_holdout)
        return 2 * EXAMPLE_ROW_BYTES * rows


@dataclass(frozen=True)
class _Unit:
    """One replica batch: all settings' students of one seed and one rho."""

    seed: int
    rho: float
    train: np.ndarray = field(repr=False)  # member indices the students train on
    test: np.ndarray = field(repr=False)  # held-out member indices

    @property
    def name(self) -> str:
        return f"seed{self.seed}-rho{self.rho:g}"


def releases_for(spec: AuditSpec, c: int) -> list[Release]:
    """The spec's settings parsed for c classes; ``top_k:K`` with K >= c (= ``soft``) is dropped
    from the defaults and rejected when given explicitly."""
    out = []
    for name in spec.settings:
        kind, _, arg = name.partition(":")
        if kind == "top_k" and int(arg) >= c:
            if spec.settings == default_settings(spec.tau):
                continue
            raise ValueError(f"release setting {name}: K must be below c = {c} (K >= c is 'soft')")
        out.append(parse_release(name, c))
    return out


def split_members(labels: np.ndarray, rho: tuple[float, ...], seed: int) -> dict[float, tuple]:
    """Stratified random splits of the members, nested in rho: in each class a seeded permutation,
    of which the first ``floor(rho * count)`` train the student. Returns {rho: (train, test)} of
    sorted index arrays."""
    rng = np.random.default_rng(seed)
    orders = {cls: rng.permutation(np.flatnonzero(labels == cls)) for cls in np.unique(labels)}
    out = {}
    for r in rho:
        train = np.concatenate([idx[: int(r * len(idx))] for idx in orders.values()])
        mask = np.zeros(len(labels), dtype=bool)
        mask[train] = True
        out[r] = (np.flatnonzero(mask), np.flatnonzero(~mask))
    return out


def fingerprint(data: AuditData) -> str:
    """A hash of the audited arrays (float64 / int64 bytes), recorded with the run."""
    h = hashlib.sha256()
    for name in (
        "logits",
        "labels",
        "inputs",
        "holdout_logits",
        "holdout_labels",
        "holdout_inputs",
    ):
        value = getattr(data, name)
        h.update(name.encode())
        if value is not None:
            h.update(str(value.shape).encode())
            h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()[:16]


def units_of(spec: AuditSpec, data: AuditData) -> list[_Unit]:
    units = []
    for s in range(spec.seeds):
        splits = split_members(data.labels, spec.rho, derive_seed(spec.seed, "audit-split", s))
        sizes: dict[int, float] = {}  # nested splits: one size is one training set
        for r in spec.rho:
            train, test = splits[r]
            if len(train) == 0 or len(test) == 0:
                raise ValueError(
                    f"rho = {r:g} leaves {len(train)} training and {len(test)} held-out members "
                    f"of {data.n}; choose rho so both are non-empty"
                )
            if len(train) in sizes:
                raise ValueError(
                    f"rho = {sizes[len(train)]:g} and {r:g} both train on the same {len(train)} "
                    f"of {data.n} members (floor(rho x class size) per class); give rhos further "
                    "apart"
                )
            sizes[len(train)] = r
            units.append(_Unit(s, r, train, test))
    return units
