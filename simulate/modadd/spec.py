"""``ModAddSpec``: the settings of one modular-addition run, its identity, seeds and counted
work, and the student grid it defines (``StudentRun``, ``student_runs``, ``student_batches``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from softleak.simulate.modadd.rules import StopRule, parse_rule
from softleak.simulate.optim import AdamConfig
from softleak.simulate.params import compile_field, param
from softleak.simulate.precision import check_precision
from softleak.simulate.run_spec import RunSpec
from softleak.simulate.seeds import derive_seed
from softleak.simulate.transformer import flops_per_sample as transformer_flops

MODELS = ("transformer", "mlp")
BATCH_BY = ("rho", "checkpoint")

#: The paper's teacher checkpoints (docs/reference.md): epochs of teachers 1, 2, 3 per model.
PAPER_CHECKPOINTS = {"transformer": (2_500, 5_000, 10_000), "mlp": (5_000, 10_000, 20_000)}


@dataclass(frozen=True)
class ModAddSpec(RunSpec):
    family: ClassVar[str] = "modadd"

    experiment: str = "modadd"  # fixed
    model: str = param(
        "transformer",
        help="the 1-layer transformer (Fig. 3) or the [200, 200] ReLU MLP (Fig. 11)",
        kind="choice",
        choices=MODELS,
        group="task and models",
    )
    p: int = param(
        113, help="modulus: tokens 0..p-1 and '=', p classes", kind="count", group="task and models"
    )
    train_frac: float = param(
        0.3,
        help="teacher's share of the p^2 pairs; the rest is validation (paper: 30%%, n = 3,830)",
        kind="fraction",
        group="task and models",
    )
    # filled in (``validate``): the last checkpoint when not given
    teacher_epochs: int = param(
        None,
        help="most teacher epochs (default: the last checkpoint); it stops earlier once every "
        "checkpoint is taken",
        kind="count",
        group="teacher",
    )
    # epochs at which the teacher is saved, filled in when not given (``validate``): the paper's
    # for the model (PAPER_CHECKPOINTS), or none when stop_rules are given; named "e<epoch>"
    checkpoints: tuple[int, ...] = param(
        None,
        help="epochs at which the teacher is saved (default: the paper's, 2500,5000,10000 for the "
        "transformer, 5000,10000,20000 for the MLP; none when --stop-rule is given)",
        kind="int_grid",
        group="teacher",
    )
    stop_rules: tuple[str, ...] = param(
        (),
        help="also save the teacher at the first evaluated epoch where RULE holds: memorized "
        "(train acc 1, val acc < 0.05), grokked (val acc > 0.99) or NAME:COND&COND with "
        "conditions on epoch, train_acc, val_acc, train_loss, val_loss (e.g. half:val_acc>=0.5); "
        "repeatable",
        kind="texts",
        flag="--stop-rule",
        metavar="RULE",
        group="teacher",
    )
    rho: tuple[float, ...] = param(
        (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9),
        help="student training fractions of the teacher's data (the paper's grid)",
        kind="fraction_grid",
        group="students",
    )
    tau: tuple[float, ...] = param(
        (0.1, 1.0, 10.0), help="soft-label temperatures", kind="positive_grid", group="students"
    )
    student_epochs: int = param(
        40_000, help="full-batch steps per student (paper: 40,000)", kind="count", group="students"
    )
    student_seeds: int = param(
        3,
        help="repetitions, each with its own data split and initialisation (paper: 3)",
        kind="count",
        group="students",
    )
    teacher_lr: float = param(
        1e-3, help="teacher AdamW lr (paper, Nanda et al.)", kind="positive", group="teacher"
    )
    student_lr: float = param(1e-3, help="student AdamW lr", kind="positive", group="students")
    teacher_weight_decay: float = param(
        1.0, help="teacher weight decay", kind="nonnegative", flag="--weight-decay", group="teacher"
    )
    student_weight_decay: float = param(
        1.0, help="student weight decay", kind="nonnegative", group="students"
    )
    betas: tuple[float, float] = (0.9, 0.98)  # Nanda et al.
    warmup: int = param(
        10, help="linear warm-up steps (Nanda et al.)", kind="count0", group="execution"
    )
    d_model: int = param(
        128, help="transformer width (Nanda et al.)", kind="count", group="task and models"
    )
    n_heads: int = param(4, help="attention heads", kind="count", group="task and models")
    d_head: int = param(32, help="width per head", kind="count", group="task and models")
    d_mlp: int = param(
        512, help="transformer MLP width (4 d_model)", kind="count", group="task and models"
    )
    hidden: tuple[int, ...] = param(
        (200, 200), help="MLP hidden widths (Fig. 11)", kind="widths", group="task and models"
    )
    teacher_curve_every: int = param(
        10,
        help="record the teacher's train/val loss and accuracy (and check stop rules) every K "
        "epochs",
        kind="count",
        group="teacher",
    )
    curve_every: int = param(
        100,
        help="record student learning curves every K epochs into curves.parquet (0: none)",
        kind="count0",
        group="students",
    )
    dtype: str = param(
        "float32",
        help="arithmetic (soft labels and metrics use float64)",
        kind="choice",
        choices=("float32", "float64"),
        group="execution",
    )
    batch_by: str = param(
        "rho",
        help="replica batches: one per rho (no padded rows; least work) or all students of a "
        "checkpoint at once (rows padded to the largest rho; fewer, larger steps for a GPU)",
        kind="choice",
        choices=BATCH_BY,
        group="students",
    )
    max_replicas: int = param(
        512, help="most students in one replica batch", kind="count", group="students"
    )
    compile: bool | None = compile_field()

    def validate(self) -> None:
        """Normalisation, filled-in defaults, own bounds and across fields (the declared kinds
        are checked already)."""
        put = self.put
        # Normalise sequences (lists from a command line or JSON) to tuples of the right type.
        put("rho", tuple(float(v) for v in self.rho))
        put("tau", tuple(float(v) for v in self.tau))
        put("hidden", tuple(int(v) for v in self.hidden))
        put("betas", tuple(float(v) for v in self.betas))
        put("stop_rules", tuple(str(r).strip() for r in self.stop_rules))
        if self.experiment != "modadd":
            raise ValueError("ModAddSpec is the modadd experiment")
        if self.p < 2:
            raise ValueError("p must be >= 2")
        n = self.n
        if not 2 <= n < self.p**2:
            raise ValueError(
                f"train_frac = {self.train_frac} gives n = {n} of {self.p**2} pairs: need a "
                "teacher set of >= 2 and a non-empty validation set"
            )
        rules = [parse_rule(r) for r in self.stop_rules]
        if self.checkpoints is None:
            put("checkpoints", () if rules else PAPER_CHECKPOINTS[self.model])
        put("checkpoints", tuple(int(v) for v in self.checkpoints))
        if not self.checkpoints and not rules:
            raise ValueError("give at least one checkpoint epoch or stop rule")
        names = [f"e{e}" for e in self.checkpoints] + [r.name for r in rules]
        if len(set(names)) != len(names):
            raise ValueError(f"checkpoint names must be distinct, got {names}")
        if self.teacher_epochs is None:
            if not self.checkpoints:
                raise ValueError("teacher_epochs is needed when only stop rules choose checkpoints")
            put("teacher_epochs", max(self.checkpoints))
        put("teacher_epochs", int(self.teacher_epochs))
        if self.checkpoints and max(self.checkpoints) > self.teacher_epochs:
            raise ValueError(
                f"checkpoint epoch {max(self.checkpoints)} > teacher_epochs {self.teacher_epochs}"
            )
        for rho in self.rho:
            if not 1 <= round(rho * n) < n:
                raise ValueError(f"rho = {rho:g} leaves an empty student train or test set")
        from softleak.simulate.realized import check_fractions  # no two rho on one split

        check_fractions(self.rho, n, lambda r: round(r * n), what=f"n = {n}", rule="round(rho n)")
        if not self.hidden:
            raise ValueError("hidden widths must be >= 1 (at least one hidden layer)")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError("betas must be two numbers in [0, 1)")
        check_precision(self.precision, self.device, self.dtype)

    # derived --------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """|D_*^T| = floor(train_frac p^2) (Nanda et al.'s ``int(frac * len(pairs))``)."""
        return int(self.train_frac * self.p**2 + 1e-9)

    def n_train(self, rho: float) -> int:
        """|D_train^S| = round(rho n)."""
        return round(rho * self.n)

    def rules(self) -> tuple[StopRule, ...]:
        return tuple(parse_rule(r) for r in self.stop_rules)

    def checkpoint_names(self) -> list[str]:
        """Fixed-epoch checkpoints ("e<epoch>", by epoch), then the rules in their order."""
        return [f"e{e}" for e in sorted(self.checkpoints)] + [r.name for r in self.rules()]

    def identity(self) -> dict:
        """What determines the numbers (device, batching, compiling and extras excluded: they change
        results by round-off only): the run directory's identity."""
        return self.settled_fields(("device", "extra", "batch_by", "max_replicas", "compile"))

    def run_id(self) -> str:
        from softleak.simulate.rundir import digest

        return digest(self.identity())

    def peak_bytes(self) -> int:
        """Rough peak memory of the smallest unit (the teacher, or one student, training on its
        rows, with the token table and the evaluation chunks): parameters with gradients and
        AdamW state, and ~4 activations of every layer per training row."""
        from softleak.simulate.memory import DTYPE_BYTES

        b = DTYPE_BYTES[self.dtype]
        if self.model == "transformer":
            params = (self.p + 1 + 3) * self.d_model + self.p * self.d_model
            params += 4 * self.n_heads * self.d_head * self.d_model + 2 * self.d_model * self.d_mlp
            per_row = 3 * (6 * self.d_model + 2 * self.d_mlp + 3 * self.n_heads) + 3 * self.p
        else:
            sizes = [2 * self.p, *self.hidden, self.p]
            params = sum(a * o for a, o in zip(sizes[:-1], sizes[1:], strict=True))
            per_row = sum(sizes)
        rows = self.p**2
        return int(1.25 * (5 * params * b + 4 * rows * per_row * b + rows * 3 * 8))

    def teacher_optim(self) -> AdamConfig:
        return AdamConfig(
            lr=self.teacher_lr,
            betas=self.betas,
            weight_decay=self.teacher_weight_decay,
            warmup=self.warmup,
        )

    def student_optim(self) -> AdamConfig:
        return AdamConfig(
            lr=self.student_lr,
            betas=self.betas,
            weight_decay=self.student_weight_decay,
            warmup=self.warmup,
        )

    def flops_per_sample(self) -> int:
        """Forward multiply-adds x 2 per example of one model."""
        if self.model == "transformer":
            return transformer_flops(self.p, self.d_model, self.n_heads, self.d_head, self.d_mlp)
        sizes = [2 * self.p, *self.hidden, self.p]
        return 2 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))

    def work(self) -> dict:
        """Counted work: teachers, students and FLOPs (training steps x 3 forward FLOPs, padded
        rows included, plus the evaluations on all p^2 pairs). The teacher counts to
        ``teacher_epochs`` (an upper bound when stop rules end it early)."""
        fps, P = self.flops_per_sample(), self.p**2
        flops = 3.0 * fps * self.n * self.teacher_epochs
        flops += fps * P * (self.teacher_epochs // self.teacher_curve_every + 1)
        runs = student_runs(self)
        per_checkpoint = 0.0
        for batch in student_batches(self, runs):
            m = max(self.n_train(r.rho) for r in batch)
            per_checkpoint += 3.0 * fps * m * len(batch) * self.student_epochs
            evals = (self.student_epochs // self.curve_every + 1) if self.curve_every else 1
            per_checkpoint += fps * P * len(batch) * evals
        n_ckpt = len(self.checkpoints) + len(self.stop_rules)
        return {
            "teachers": 1,
            "students": n_ckpt * len(runs),
            "flops": flops + n_ckpt * per_checkpoint,
        }

    # seeds ----------------------------------------------------------------------------------
    def data_seed(self) -> int:
        """The teacher/validation split."""
        return derive_seed(self.seed, "modadd-data", self.p, self.train_frac)

    def teacher_seed(self) -> int:
        return derive_seed(self.seed, "modadd-teacher", self.model, self.p, self.train_frac)

    def split_seed(self, rep: int) -> int:
        """Repetition ``rep``'s permutation of D_*^T (shared by every rho, tau and checkpoint)."""
        return derive_seed(self.seed, "modadd-split", self.p, self.train_frac, rep)

    def student_seed(self, rho: float, tau: float, rep: int) -> int:
        """A student's initialisation (the same for every checkpoint: common random numbers)."""
        return derive_seed(
            self.seed, "modadd-student", self.model, self.p, self.train_frac, rho, tau, rep
        )


# ---------------------------------------------------------------------------------------------
# the student grid
# ---------------------------------------------------------------------------------------------
# (here, not in ``students``: ``ModAddSpec.work`` counts the grid, and ``students`` imports this)
@dataclass(frozen=True)
class StudentRun:
    rho: float
    tau: float
    rep: int  # repetition index (``student_seed`` in the table)
    model_seed: int  # initialisation
    split_seed: int  # the repetition's D_train^S / D_test^S permutation


def student_runs(spec: ModAddSpec) -> list[StudentRun]:
    """Every student of one checkpoint, rho-major (rho, tau, repetition)."""
    return [
        StudentRun(rho, tau, s, spec.student_seed(rho, tau, s), spec.split_seed(s))
        for rho in spec.rho
        for tau in spec.tau
        for s in range(spec.student_seeds)
    ]


def student_batches(spec: ModAddSpec, runs: list[StudentRun]) -> list[list[StudentRun]]:
    """The replica batches: per rho or all together (``batch_by``), cut at ``max_replicas``."""
    if spec.batch_by == "rho":
        groups: dict[float, list] = {}
        for run in runs:
            groups.setdefault(run.rho, []).append(run)
        parts = list(groups.values())
    else:
        parts = [runs]
    size = spec.max_replicas
    return [g[i : i + size] for g in parts for i in range(0, len(g), size)]
