"""The sweep specification: a frozen, validated description of a grid of teacher/student runs.

A spec expands into *teachers* (one per (d, c, n, seed)) and, per teacher, *students* (one per
(rho, tau, shuffle, ablation, student seed)). Each teacher and its students form one unit of work,
recorded atomically by the store.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from typing import Any

from softleak.simulate.rundir import digest as _digest
from softleak.simulate.rundir import refuse_repeats
from softleak.simulate.seeds import derive_seed

EXPERIMENTS = ("logistic-pinv", "multinomial", "mlp")


@dataclass(frozen=True)
class SweepSpec:
    experiment: str  # logistic-pinv (single logit, pinv student), multinomial, mlp
    d: tuple[int, ...] = (200,)  # input dimensions
    c: tuple[int, ...] = (2,)  # numbers of classes
    alpha: tuple[float, ...] | None = None  # sample complexities (n/d single logit, n/(d c) else)
    n: tuple[int, ...] | None = None  # or explicit teacher set sizes (multiples of c)
    rho: tuple[float, ...] = (0.8,)  # student training fractions
    tau: tuple[float, ...] = (1.0,)  # soft-label temperatures (ignored by logistic-pinv)
    seeds: int = 1  # teacher replicates (independent data and init per replicate)
    student_seeds: int = 1  # student initialisations per (teacher, rho, tau, shuffle, ablation)
    seed: int = 0  # base seed every run's seeds derive from
    shuffle: str = "no"  # no | yes | both: within-class shuffle control
    ablation: tuple[str, ...] = ("none",)  # soft-label ablations, see simulate.softlabels
    teacher_epochs: int = 10_000  # full-batch Adam steps (reference: 10,000)
    student_epochs: int = 10_000  # full-batch steps or L-BFGS iterations
    teacher_lr: float = 1e-3  # reference teacher lr
    student_lr: float = 1e-4  # reference student lr
    solver: str = "adam"  # student solver: adam | lbfgs (linear) ; logistic-pinv always pinv
    student_init: str = "default"  # default (PyTorch nn.Linear init) | zero
    p_teacher: tuple[int, ...] = ()  # hidden widths of the teacher MLP ( () = linear )
    p_student: tuple[int, ...] = ()  # hidden widths of the student MLP
    bias: bool | None = None  # None: no bias for linear models (reference), biases for MLPs
    dtype: str = "float32"  # float32 | float64
    device: str = "cpu"  # resolved device (cpu, cuda)
    nested_data: bool = False  # one data set per seed whose balanced prefixes serve every n
    standardize: bool | None = None  # None: True for logistic-pinv (reference), else False
    val_kind: str = "gaussian"  # gaussian | uniform (the reference's quirk)
    n_val: int = 1000  # validation set size
    curve_every: int = 0  # record learning curves every k epochs (0: none)
    max_replicas: int = 512  # students trained in one batch at most
    extra: dict = field(default_factory=dict)  # family-specific settings (recorded, not hashed)

    # ---------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        if self.experiment not in EXPERIMENTS:
            raise ValueError(f"unknown experiment {self.experiment!r}; choose from {EXPERIMENTS}")
        if (self.alpha is None) == (self.n is None):
            raise ValueError("give exactly one of alpha and n")
        for name in ("d", "c", "rho", "tau"):
            if not getattr(self, name):
                raise ValueError(f"empty grid for {name}")
        refuse_repeats(
            d=self.d,
            c=self.c,
            alpha=self.alpha,
            n=self.n,
            rho=self.rho,
            tau=self.tau,
            ablation=self.ablation,
        )
        if any(d < 1 for d in self.d):
            raise ValueError("d must be >= 1")
        if any(c < 2 for c in self.c):
            raise ValueError("c must be >= 2")
        if self.single_logit and self.c != (2,):
            raise ValueError("logistic-pinv is the binary single-logit model: c must be 2")
        if any(not 0 < r < 1 for r in self.rho):
            raise ValueError("rho must lie strictly between 0 and 1")
        if any(not (t > 0 and math.isfinite(t)) for t in self.tau):
            raise ValueError("tau must be > 0")
        if self.alpha is not None and any(a <= 0 for a in self.alpha):
            raise ValueError("alpha must be > 0")
        if self.n is not None:
            for n in self.n:
                if any(n % c for c in self.c):
                    raise ValueError(f"n = {n} is not a multiple of c = {self.c}")
        if self.shuffle not in ("no", "yes", "both"):
            raise ValueError("shuffle must be no, yes or both")
        if self.solver not in ("adam", "lbfgs"):
            raise ValueError("solver must be adam or lbfgs")
        if self.solver == "lbfgs" and self.p_student:
            raise ValueError("--solver lbfgs is for linear students (the convex problem)")
        if self.student_init not in ("default", "zero"):
            raise ValueError("student_init must be default or zero")
        if self.dtype not in ("float32", "float64"):
            raise ValueError("dtype must be float32 or float64")
        for name in ("seeds", "student_seeds", "teacher_epochs", "student_epochs", "n_val"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.teacher_lr <= 0 or self.student_lr <= 0:
            raise ValueError("learning rates must be > 0")
        from softleak.simulate.softlabels import parse_ablation

        for a in self.ablation:
            name, arg = parse_ablation(a)
            if name in ("zero_class", "drop_class") and any(arg >= c for c in self.c):
                raise ValueError(f"ablation {a}: class {arg} does not exist for c = {min(self.c)}")
            if name in ("zero_smallest", "top_k") and any(arg >= c for c in self.c):
                raise ValueError(f"ablation {a}: k must be below c = {min(self.c)}")
        for _, c_, n_ in self.teacher_sizes():
            if n_ < c_:
                raise ValueError(f"alpha too small: n = {n_} < c = {c_}")

    # ---------------------------------------------------------------------------------------
    @property
    def single_logit(self) -> bool:
        return self.experiment == "logistic-pinv"

    @property
    def has_bias(self) -> bool:
        return bool(self.p_teacher or self.p_student) if self.bias is None else self.bias

    @property
    def do_standardize(self) -> bool:
        return self.single_logit if self.standardize is None else self.standardize

    def alpha_of(self, n: int, d: int, c: int) -> float:
        """The experiment's alpha: n/d for the single logit, n/(d c) otherwise."""
        return n / d if self.single_logit else n / (d * c)

    def n_of(self, alpha: float, d: int, c: int) -> int:
        """alpha -> n, rounded to the nearest positive multiple of c."""
        raw = alpha * d if self.single_logit else alpha * d * c
        return max(c, int(round(raw / c)) * c)

    def teacher_sizes(self) -> list[tuple[int, int, int]]:
        """Distinct (d, c, n) in grid order."""
        out: list[tuple[int, int, int]] = []
        for d in self.d:
            for c in self.c:
                ns = (
                    self.n if self.n is not None else [self.n_of(a, d, c) for a in self.alpha or ()]
                )
                for n in ns:
                    if (d, c, n) not in out:
                        out.append((d, c, n))
        return out

    def shuffles(self) -> list[bool]:
        return {"no": [False], "yes": [True], "both": [False, True]}[self.shuffle]

    def taus(self) -> tuple[float, ...]:
        return (float("nan"),) if self.single_logit else self.tau

    # identity -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SweepSpec:
        """The spec ``to_dict`` described, e.g. read back from a sweep's ``config.json`` (JSON
        turns tuples into lists; they become tuples again). Validated as any spec; keys that are
        not fields (a config written by another version) raise ValueError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"not SweepSpec fields: {', '.join(unknown)}")
        if "experiment" not in data:
            raise ValueError("a SweepSpec needs an experiment")
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
        }
        return cls(**values)

    def run_settings(self) -> dict:
        """What determines a run's numbers (grids excluded): part of every unit id."""
        skip = {
            "d",
            "c",
            "alpha",
            "n",
            "rho",
            "tau",
            "seeds",
            "student_seeds",
            "shuffle",
            "ablation",
            "curve_every",
            "max_replicas",
            "extra",
            "device",
        }
        return {k: v for k, v in self.to_dict().items() if k not in skip}

    @functools.cached_property
    def _id_parts(self) -> tuple[dict, dict]:
        """The teacher settings and the unit settings every id hashes (computed once: a grid of
        10^4 teachers asks for them 10^4 times)."""
        as_dict = self.to_dict()
        keys = [
            "teacher_epochs",
            "teacher_lr",
            "p_teacher",
            "bias",
            "dtype",
            "nested_data",
            "standardize",
            "experiment",
            "seed",
        ]
        teacher = {k: as_dict[k] for k in keys}
        students = {
            "rho": self.rho,
            "tau": self.taus(),
            "shuffle": self.shuffle,
            "ablation": self.ablation,
            "student_seeds": self.student_seeds,
            "curve_every": self.curve_every,
        }
        unit = {**self.run_settings(), **students, "val": (self.val_kind, self.n_val)}
        return teacher, unit

    def teacher_id(self, d: int, c: int, n: int, seed: int) -> str:
        return _digest({"d": d, "c": c, "n": n, "rep": seed, **self._id_parts[0]})

    def unit_id(self, d: int, c: int, n: int, seed: int) -> str:
        return _digest({"teacher": self.teacher_id(d, c, n, seed), **self._id_parts[1]})

    # seeds ----------------------------------------------------------------------------------
    def data_seed(self, d: int, c: int, n: int, rep: int) -> int:
        if self.nested_data:
            return derive_seed(self.seed, "data-nested", d, c, rep)
        return derive_seed(self.seed, "data", d, c, n, rep)

    def teacher_seed(self, d: int, c: int, n: int, rep: int) -> int:
        return derive_seed(self.seed, "teacher", d, c, n, rep)

    def student_seed(self, d, c, n, rep, rho, tau, ablation, s) -> int:
        return derive_seed(self.seed, "student", d, c, n, rep, rho, tau, ablation, s)

    def shuffle_seed(self, d, c, n, rep, rho, s) -> int:
        return derive_seed(self.seed, "shuffle", d, c, n, rep, rho, s)

    def val_seed(self, d: int, c: int, n: int, rep: int) -> int:
        return derive_seed(self.seed, "val", d, c, n, rep)
