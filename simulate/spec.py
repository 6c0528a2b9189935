"""The sweep specification: a frozen, validated description of a grid of teacher/student runs.

A spec expands into *teachers* (one per (d, c, n, seed)) and, per teacher, *students* (one per
(rho, tau, shuffle, ablation, student seed)). Each teacher and its students form one unit of work,
recorded atomically by the store.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, ClassVar

from softleak.simulate.params import compile_field, param
from softleak.simulate.precision import check_precision
from softleak.simulate.run_spec import RunSpec
from softleak.simulate.rundir import digest as _digest
from softleak.simulate.rundir import refuse_repeats, settled
from softleak.simulate.seeds import derive_seed

EXPERIMENTS = ("logistic-pinv", "multinomial", "mlp")
#: logistic-pinv's teachers: Adam on the logistic loss (the paper's), and two whose implicit bias is
#: known, computed exactly (``simulate.exact_teachers``, ``theory.maxmargin``).
TEACHERS = ("logistic", "svm", "minnorm")

#: Per sweep experiment: its one-line description, the fields it leaves off the command line
#: (with the values it runs them at, when those are not the spec's defaults) and the defaults it
#: changes -- the one place these live (the command line reads them; see ``for_experiment``).
EXPERIMENT_OPTIONS: dict[str, dict] = {
    "logistic-pinv": {
        "help": "binary logistic teacher (single logit, no bias, standardised features) and "
        "pseudo-inverse students from its raw logits (paper Fig. 4); alpha = n/d",
        "hidden": {
            "c": (2,),
            "tau": (1.0,),
            "ablation": ("none",),
            "student_seeds": 1,
            "student_epochs": 1,
            "student_lr": 1e-4,
            "solver": "adam",
            "student_init": "default",
            "curve_every": 0,
            "p_teacher": (),
            "p_student": (),
        },
        "defaults": {"alpha": (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5)},
    },
    "multinomial": {
        "help": "multinomial logistic teacher and students (c logits, no bias) trained on soft "
        "labels at temperature tau (paper Fig. 5, 13-15); alpha = n/(d c)",
        "hidden": {"p_teacher": (), "p_student": (), "teacher_kind": "logistic"},
        "defaults": {"alpha": (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5)},
    },
    "mlp": {
        "help": "ReLU MLP teacher and students with biases (widths --p-teacher, --p-student) "
        "trained on soft labels at temperature tau (paper sec. 5.2, Figs. 6, 7, 16-22); "
        "alpha = n/(d c)",
        "hidden": {"teacher_kind": "logistic"},
        # The reference's MLP settings (docs/reference.md): teacher 2,000 epochs, tau = 20, p = 500;
        # the students' widths default to the teacher's (p_student None here).
        "defaults": {
            "alpha": (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5),
            "teacher_epochs": 2_000,
            "tau": (20.0,),
            "p_teacher": (500,),
            "p_student": None,
        },
    },
}


GRID = "a list 'a,b', a range 'start:stop:num' (inclusive) or 'log:start:stop:num'"


@dataclass(frozen=True)
class SweepSpec(RunSpec):
    """A grid of teachers and their soft-label students (logistic-pinv, multinomial, mlp). Every
    field but ``experiment``, ``device`` and ``extra`` is a command-line option of
    ``softleak simulate EXPERIMENT`` (``simulate.params``); ``EXPERIMENT_OPTIONS`` says which each
    experiment shows and the defaults it changes. ``experiment`` (the first field, positional):
    logistic-pinv (single logit, pinv student), multinomial or mlp."""

    family: ClassVar[str] = "sweep"

    d: tuple[int, ...] = param(
        (200,), help=f"input dimensions ({GRID})", kind="int_grid", group="grid"
    )
    c: tuple[int, ...] = param((2,), help="numbers of classes", kind="int_grid", group="grid")
    alpha: tuple[float, ...] | None = param(
        None,
        help="sample complexities, n/d (logistic-pinv) or n/(d c); n is rounded to a multiple of c",
        kind="positive_grid",
        group="grid",
        exclusive="size",
    )
    n: tuple[int, ...] | None = param(
        None,
        help="teacher set sizes instead of --alpha",
        kind="int_grid",
        group="grid",
        exclusive="size",
    )
    rho: tuple[float, ...] = param(
        (0.8,), help="student training fractions in (0, 1)", kind="fraction_grid", group="grid"
    )
    tau: tuple[float, ...] = param(
        (1.0,), help="soft-label temperatures > 0", kind="positive_grid", group="grid"
    )
    seeds: int = param(
        1,
        help="teacher replicates (independent data and initialisation)",
        kind="count",
        group="grid",
    )
    student_seeds: int = param(
        1, help="student initialisations per setting", kind="count", group="training"
    )
    shuffle: str = param(
        "no",
        help="within-class shuffle control of the soft labels",
        kind="choice",
        choices=("no", "yes", "both"),
        group="grid",
    )
    ablation: tuple[str, ...] = param(
        ("none",),
        help="comma-separated soft-label ablations: none, zero_smallest:K, top_k:K, zero_class:J, "
        "drop_class:J",
        kind="csv",
        group="grid",
    )
    teacher_epochs: int = param(
        10_000,
        help="full-batch Adam steps of the teacher",
        kind="count",
        group="training",
    )
    student_epochs: int = param(
        10_000,
        help="student full-batch Adam steps or L-BFGS iterations",
        kind="count",
        group="training",
    )
    teacher_lr: float = param(1e-3, help="teacher Adam lr", kind="positive", group="training")
    student_lr: float = param(
        1e-4, help="student Adam lr (reference: 1e-4)", kind="positive", group="training"
    )
    solver: str = param(
        "adam",
        help="adam: the paper's finite-time protocol; lbfgs: solve the convex student problem to "
        "convergence (linear students)",
        kind="choice",
        choices=("adam", "lbfgs"),
        group="training",
    )
    student_init: str = param(
        "default",
        help="student initialisation (zero: gradient methods converge to the projection of the "
        "teacher)",
        kind="choice",
        choices=("default", "zero"),
        group="training",
    )
    p_teacher: tuple[int, ...] = param(
        (),
        help="hidden widths of the teacher, e.g. 500 or 500,200 (() = linear)",
        kind="widths",
        group="models",
    )
    p_student: tuple[int, ...] = param(
        (), help="hidden widths of the students", kind="widths", group="models"
    )
    teacher_kind: str = param(
        "logistic",
        help="logistic-pinv's teacher: logistic (full-batch Adam on the logistic loss, the "
        "paper's), svm (the exact hard-margin l2 max-margin separator, KKT-checked; w = 0 where "
        "the labels are not separable) or minnorm (the square-loss minimum-norm fit X^+ y, which "
        "interpolates for alpha < 1); svm and minnorm ignore the teacher's epochs and lr",
        kind="choice",
        choices=TEACHERS,
        group="models",
        flag="--teacher",
    )
    bias: bool | None = None  # None: no bias for linear models (reference), biases for MLPs
    dtype: str = param(
        "float32",
        help="arithmetic",
        kind="choice",
        choices=("float32", "float64"),
        group="training",
    )
    nested_data: bool = param(
        False,
        help="one data set per seed whose balanced prefixes serve every n (common random numbers: "
        "teachers across alpha share one input matrix)",
        kind="flag",
        group="grid",
    )
    standardize: bool | None = param(
        None,
        help="per-feature standardisation of the inputs (default: on for logistic-pinv's logistic "
        "teacher as in the reference, off otherwise: the svm and minnorm theory assumes raw "
        "Gaussian inputs)",
        kind="tristate",
        group="training",
    )
    val_kind: str = param(
        "gaussian",
        help="validation inputs (uniform [0,1) reproduces the reference's quirk)",
        kind="choice",
        choices=("gaussian", "uniform"),
        group="training",
    )
    n_val: int = param(1000, help="validation set size", kind="count", group="training")
    curve_every: int = param(
        0,
        help="record student learning curves every K epochs into curves.parquet (0: none)",
        kind="count0",
        group="training",
    )
    max_replicas: int = param(
        512,
        help="most students trained in one batch (also capped by the device's free memory)",
        kind="count",
        group="execution",
    )
    compile: bool | None = compile_field()

    # ---------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Across fields (the declared kinds -- grids, counts, choices -- are checked already)."""
        if self.experiment not in EXPERIMENTS:
            raise ValueError(f"unknown experiment {self.experiment!r}; choose from {EXPERIMENTS}")
        if (self.alpha is None) == (self.n is None):
            raise ValueError("give exactly one of alpha and n")
        refuse_repeats(ablation=self.ablation)
        if any(c < 2 for c in self.c):
            raise ValueError("c must be >= 2")
        if self.single_logit and self.c != (2,):
            raise ValueError("logistic-pinv is the binary single-logit model: c must be 2")
        if self.exact_teacher and not self.single_logit:
            raise ValueError(f"--teacher {self.teacher_kind} is for logistic-pinv (one logit)")
        if self.n is not None:
            for n in self.n:
                if any(n % c for c in self.c):
                    raise ValueError(f"n = {n} is not a multiple of c = {self.c}")
        if self.solver == "lbfgs" and self.p_student:
            raise ValueError("--solver lbfgs is for linear students (the convex problem)")
        check_precision(self.precision, self.device, self.dtype)
        from softleak.simulate.softlabels import parse_ablation

        for a in self.ablation:
            name, arg = parse_ablation(a)
            if name in ("zero_class", "drop_class") and any(arg >= c for c in self.c):
                raise ValueError(f"ablation {a}: class {arg} does not exist for c = {min(self.c)}")
            if name in ("zero_smallest", "top_k") and any(arg >= c for c in self.c):
                raise ValueError(f"ablation {a}: k must be below c = {min(self.c)}")
        self._check_realized()

    def _check_realized(self) -> None:
        """Every alpha realizes its own n and every rho its own training rows, none empty
        (``simulate.realized``: refused in one line, never relabelled)."""
        from softleak.simulate.data import train_per_class
        from softleak.simulate.realized import check_fractions, check_sizes

        for d in self.d:
            for c in self.c:
                if self.alpha is not None:
                    sizes = list(check_sizes(self.alpha, d, c, self.single_logit))
                else:
                    sizes = list(self.n or ())
                for n in sizes:
                    check_fractions(
                        self.rho,
                        n // c,
                        functools.partial(train_per_class, n // c),
                        what=f"n = {n}, c = {c} ({n // c} per class)",
                        rule="int(rho n/c) per class",
                    )

    # ---------------------------------------------------------------------------------------
    @property
    def single_logit(self) -> bool:
        return self.experiment == "logistic-pinv"

    @property
    def exact_teacher(self) -> bool:
        """A teacher computed exactly (svm, minnorm) rather than trained."""
        return self.teacher_kind != "logistic"

    @property
    def has_bias(self) -> bool:
        return bool(self.p_teacher or self.p_student) if self.bias is None else self.bias

    @property
    def do_standardize(self) -> bool:
        if self.standardize is None:
            return self.single_logit and not self.exact_teacher
        return self.standardize

    def alpha_of(self, n: int, d: int, c: int) -> float:
        """The experiment's alpha: n/d for the single logit, n/(d c) otherwise."""
        return n / d if self.single_logit else n / (d * c)

    def n_of(self, alpha: float, d: int, c: int) -> int:
        """alpha -> n, rounded to the nearest positive multiple of c."""
        from softleak.simulate.realized import realized_n

        return max(c, realized_n(alpha, d, c, self.single_logit))

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
            "compile",  # how the steps run (fused or not), not what they compute
        }
        return settled({k: v for k, v in self.to_dict().items() if k not in skip})

    @functools.cached_property
    def _id_parts(self) -> tuple[dict, dict]:
        """The teacher settings and the unit settings every id hashes (computed once: a grid of
        10^4 teachers asks for them 10^4 times)."""
        as_dict = self.to_dict()
        keys = [
            "teacher_epochs",
            "teacher_lr",
            "p_teacher",
            "teacher_kind",
            "bias",
            "dtype",
            "nested_data",
            "standardize",
            "experiment",
            "seed",
        ]
        teacher = settled({k: as_dict[k] for k in [*keys, "precision"]})
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
