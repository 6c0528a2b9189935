"""Modular addition (paper sec. 4, Fig. 3; appendix C, Figs. 10 and 11).

Data: every pair (a, b) with a, b in [0, p) as the tokens (a, b, "="), "=" being token p, labelled
(a + b) mod p. A seeded ``train_frac`` share of the p^2 pairs (n = floor(train_frac p^2), Nanda et
al.'s ``int(frac * len(pairs))``: 3,830 at p = 113) is the teacher's set D_*^T; the rest is D_val.
A student repetition s draws one permutation of D_*^T; its first round(rho n) elements are its
D_train^S and the rest D_test^S, so the training sets of one repetition are nested across rho.

Models: the 1-layer transformer of Nanda et al. (``simulate.transformer``) or the MLP of Fig. 11
(one-hot (a, b) of size 2p, hidden [200, 200] ReLU with biases, p outputs; ``ReplicaMLP``). Teacher
and students train full batch with AdamW (lr 1e-3, weight decay 1, betas (0.9, 0.98), 10-step linear
warm-up) in the engine's one trainer (``simulate.train.fit``). The warm-up factor of step t (from 1)
is min(1, t / 10); Nanda's ``LambdaLR(min(step / 10, 1))`` gives the first step lr 0 and reaches the
full rate one step later -- a one-step shift.

The teacher trains once and is saved at its checkpoints: fixed epochs (``checkpoints``) and/or the
first evaluated epoch where a named criterion holds (``stop_rules``, checked every
``teacher_curve_every`` epochs), e.g. ``memorized`` (train acc 1, val acc < 0.05) or ``grokked``
(val acc > 0.99). It stops at ``teacher_epochs`` or once every checkpoint is taken. Per checkpoint,
every student (rho x tau x repetition) learns the teacher's soft labels softmax(z_T / tau) on its
D_train^S (its own logits are not divided by tau, as in the reference), in replica batches
(``batch_by``): each replica reads its own rows of the token table (per-replica tokens cost the
transformer nothing extra: its embedding is a gather either way), rows padded to the batch's largest
training set carry weight 0 in the loss (``Objective`` weights (R, m)).

Outputs in the run directory:
- ``config.json``: the spec, its ``run_id`` (a hash of what determines the numbers) and versions;
- ``teacher_curves.parquet``: the teacher's ``epoch, train_loss, train_acc, val_loss, val_acc``;
- ``checkpoints/<name>.pt``: the teacher's weights (``torch.save`` of a dict of tensors; load with
  ``torch.load(..., weights_only=True)``), ``checkpoints.json``: per checkpoint its name, epoch, the
  rule that chose it, train/val accuracy and loss (written last: the teacher is done);
- ``parts/<name>.parquet`` and ``curve_parts/<name>.parquet``: the students of one checkpoint,
  written atomically when they finish; ``results.parquet`` and ``curves.parquet`` consolidate them
  (curves in long form ``run_id, epoch, metric, value``).
The directory follows ``simulate.rundir``'s contract (one identity, one writer, records checked when
read). A rerun of the same spec skips finished checkpoints and never retrains a saved teacher; a
changed spec is refused (``IdentityMismatch``) unless ``restart=True``, which clears the
directory's records first. The student grid is part of the identity here: a unit is all students of
one checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import operator
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from softleak.simulate.data import permutation_split
from softleak.simulate.device import thread_count, threads_for
from softleak.simulate.losses import Objective, normalized_weights
from softleak.simulate.metrics import masked_mean
from softleak.simulate.models import ReplicaMLP
from softleak.simulate.optim import AdamConfig
from softleak.simulate.precision import DTYPES
from softleak.simulate.progress import student_bar
from softleak.simulate.seeds import derive_seed
from softleak.simulate.softlabels import soft_targets
from softleak.simulate.store import load_state, save_state
from softleak.simulate.train import fit
from softleak.simulate.transformer import ReplicaTransformer
from softleak.simulate.transformer import flops_per_sample as transformer_flops

log = logging.getLogger(__name__)

MODELS = ("transformer", "mlp")
BATCH_BY = ("rho", "checkpoint")

#: The paper's teacher checkpoints (REFERENCE.md): epochs of teachers 1, 2, 3 per model.
PAPER_CHECKPOINTS = {"transformer": (2_500, 5_000, 10_000), "mlp": (5_000, 10_000, 20_000)}

#: Named stop rules (``stop_rules`` also takes ``"name:cond&cond"`` with conditions on ``epoch``,
#: ``train_acc``, ``val_acc``, ``train_loss``, ``val_loss`` and operators ``>=, <=, >, <``).
RULE_PRESETS = {
    "memorized": "train_acc>=1&val_acc<0.05",  # fits D_*^T, has not generalized
    "grokked": "val_acc>0.99",  # generalizes
}
RULE_METRICS = ("epoch", "train_acc", "val_acc", "train_loss", "val_loss")
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_CONDITION = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")

#: Activation entries per example and replica kept at once by the chunked evaluation: about
#: ``EVAL_ENTRIES`` floats (256 MB in float32) per chunk whatever the number of replicas.
EVAL_ENTRIES = 2**26

# curves recorded for every student (final rows carry these and the teacher-match accuracies)
CURVE_METRICS = ("student_train_acc", "student_test_acc", "student_val_acc", "train_ce", "test_ce")


# ---------------------------------------------------------------------------------------------
# stop rules
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StopRule:
    """A named criterion on the teacher's evaluated metrics; all conditions must hold."""

    name: str
    conditions: tuple[tuple[str, str, float], ...]  # (metric, operator, value)

    def holds(self, metrics: dict[str, float]) -> bool:
        return all(_OPS[op](metrics[m], v) for m, op, v in self.conditions)


def parse_rule(text: str) -> StopRule:
    """``"memorized"``, ``"grokked"`` (presets) or ``"name:metric op value&..."``."""
    text = text.strip()
    if text in RULE_PRESETS:
        name, body = text, RULE_PRESETS[text]
    else:
        name, sep, body = text.partition(":")
        if not sep:
            raise ValueError(
                f"unknown stop rule {text!r}: use {', '.join(RULE_PRESETS)} or "
                "'name:metric>=value&...'"
            )
    name = name.strip()
    if not _NAME.match(name):
        raise ValueError(f"stop rule name {name!r} must be a letter then letters, digits, _ or -")
    conditions = []
    for part in body.split("&"):
        match = _CONDITION.match(part)
        if match is None:
            raise ValueError(f"bad condition {part!r} in stop rule {text!r}: use e.g. val_acc>0.99")
        metric, op, value = match.groups()
        if metric not in RULE_METRICS:
            raise ValueError(f"unknown metric {metric!r} in stop rule {text!r}: {RULE_METRICS}")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"bad number {value!r} in stop rule {text!r}") from None
        conditions.append((metric, op, number))
    return StopRule(name, tuple(conditions))


# ---------------------------------------------------------------------------------------------
# the spec
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModAddSpec:
    experiment: str = "modadd"  # fixed
    model: str = "transformer"  # transformer (Fig. 3) | mlp (Fig. 11)
    p: int = 113  # modulus: tokens 0..p-1, "=" = p, p classes (the paper: 113)
    train_frac: float = 0.3  # teacher's share of the p^2 pairs (paper: 30%, n = 3,830)
    teacher_epochs: int | None = None  # most teacher epochs (None: the last fixed checkpoint)
    # epochs at which the teacher is saved (None: the paper's for the model, see PAPER_CHECKPOINTS,
    # or none when stop_rules are given); named "e<epoch>"
    checkpoints: tuple[int, ...] | None = None
    stop_rules: tuple[str, ...] = ()  # rules saved at the first epoch they hold (RULE_PRESETS)
    rho: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9)  # paper's grid
    tau: tuple[float, ...] = (0.1, 1.0, 10.0)  # soft-label temperatures (paper's grid)
    student_epochs: int = 40_000  # full-batch steps per student (paper: 40,000)
    student_seeds: int = 3  # repetitions: own D_train^S split and initialisation (paper: 3)
    teacher_lr: float = 1e-3  # AdamW lr (paper, Nanda et al.)
    student_lr: float = 1e-3  # AdamW lr of the students (paper)
    teacher_weight_decay: float = 1.0  # decoupled weight decay (paper, Nanda et al.)
    student_weight_decay: float = 1.0  # (paper)
    betas: tuple[float, float] = (0.9, 0.98)  # Nanda et al.
    warmup: int = 10  # linear warm-up steps (Nanda et al.)
    d_model: int = 128  # transformer width (Nanda et al.)
    n_heads: int = 4  # attention heads
    d_head: int = 32  # width per head
    d_mlp: int = 512  # transformer MLP width (4 d_model)
    hidden: tuple[int, ...] = (200, 200)  # MLP variant's hidden widths (Fig. 11)
    teacher_curve_every: int = 10  # teacher metrics (and stop-rule checks) every K epochs
    curve_every: int = 100  # student learning curves every K epochs (0: none)
    seed: int = 0  # base seed every draw derives from
    dtype: str = "float32"  # float32 | float64 (soft labels and metrics use float64)
    device: str = "cpu"  # resolved device (cpu, cuda)
    batch_by: str = "rho"  # students per replica batch: "rho" (one batch per rho: no padded
    #   rows, least work) or "checkpoint" (all of a checkpoint's students at once: rows padded to
    #   the largest rho; fewer, larger steps for a GPU)
    max_replicas: int = 512  # most students in one replica batch
    extra: dict = field(default_factory=dict)  # recorded, not part of the identity

    def __post_init__(self) -> None:
        def put(name, value):
            object.__setattr__(self, name, value)

        # Normalise sequences (lists from a command line or JSON) to tuples of the right type.
        put("rho", tuple(float(v) for v in self.rho))
        put("tau", tuple(float(v) for v in self.tau))
        put("hidden", tuple(int(v) for v in self.hidden))
        put("betas", tuple(float(v) for v in self.betas))
        put("stop_rules", tuple(str(r).strip() for r in self.stop_rules))
        if self.experiment != "modadd":
            raise ValueError("ModAddSpec is the modadd experiment")
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose from {', '.join(MODELS)}")
        if self.p < 2:
            raise ValueError("p must be >= 2")
        if not 0 < self.train_frac < 1:
            raise ValueError("train_frac must lie strictly between 0 and 1")
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
        if any(e < 1 for e in self.checkpoints):
            raise ValueError("checkpoint epochs must be >= 1")
        if len(set(self.checkpoints)) != len(self.checkpoints):
            raise ValueError("checkpoint epochs must be distinct")
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
        if self.teacher_epochs < 1:
            raise ValueError("teacher_epochs must be >= 1")
        if self.checkpoints and max(self.checkpoints) > self.teacher_epochs:
            raise ValueError(
                f"checkpoint epoch {max(self.checkpoints)} > teacher_epochs {self.teacher_epochs}"
            )
        if not self.rho or not self.tau:
            raise ValueError("rho and tau need at least one value each")
        if len(set(self.rho)) != len(self.rho) or len(set(self.tau)) != len(self.tau):
            raise ValueError("rho and tau values must be distinct")
        for rho in self.rho:
            if not 0 < rho < 1:
                raise ValueError(f"rho must lie strictly between 0 and 1, got {rho:g}")
            if not 1 <= round(rho * n) < n:
                raise ValueError(f"rho = {rho:g} leaves an empty student train or test set")
        for tau in self.tau:
            if not (tau > 0 and math.isfinite(tau)):
                raise ValueError(f"tau must be a finite number > 0, got {tau:g}")
        for name in ("student_epochs", "student_seeds", "teacher_curve_every", "max_replicas"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        for name in ("d_model", "n_heads", "d_head", "d_mlp"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError("hidden widths must be >= 1 (at least one hidden layer)")
        if self.curve_every < 0 or self.warmup < 0 or self.seed < 0:
            raise ValueError("curve_every, warmup and seed must be >= 0")
        if not (self.teacher_lr > 0 and self.student_lr > 0):
            raise ValueError("learning rates must be > 0")
        if self.teacher_weight_decay < 0 or self.student_weight_decay < 0:
            raise ValueError("weight decay must be >= 0")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError("betas must be two numbers in [0, 1)")
        if self.dtype not in DTYPES:
            raise ValueError("dtype must be float32 or float64")
        if self.batch_by not in BATCH_BY:
            raise ValueError(f"batch_by must be one of {', '.join(BATCH_BY)}")

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

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def identity(self) -> dict:
        """What determines the numbers (device, batching and extras excluded: they change results
        by round-off only): the run directory's identity."""
        skip = ("device", "extra", "batch_by", "max_replicas")
        return {k: v for k, v in self.to_dict().items() if k not in skip}

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
# data
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------
def make_model(spec: ModAddSpec, seeds: Sequence[int]):
    """R fresh models of the spec's family, one per seed."""
    dtype = DTYPES[spec.dtype]
    if spec.model == "transformer":
        return ReplicaTransformer.init(
            seeds, spec.p, spec.d_model, spec.n_heads, spec.d_head, spec.d_mlp, dtype, spec.device
        )
    return ReplicaMLP.init(seeds, 2 * spec.p, spec.p, spec.hidden, True, dtype, spec.device)


def model_from_state(spec: ModAddSpec, state: dict):
    dtype = DTYPES[spec.dtype]
    if spec.model == "transformer":
        return ReplicaTransformer.from_state(state, spec.device, dtype)
    params = [state[f"p{i}"].to(device=spec.device, dtype=dtype) for i in range(len(state))]
    return ReplicaMLP(params, bias=True)


def model_inputs(spec: ModAddSpec, tokens: torch.Tensor) -> torch.Tensor:
    """What the model reads for tokens (..., 3): the tokens themselves (transformer) or the
    one-hot (a, b) vector of size 2p (MLP)."""
    if spec.model == "transformer":
        return tokens
    p = spec.p
    onehot = torch.nn.functional.one_hot(tokens[..., :2], p)  # (..., 2, p)
    return onehot.flatten(-2).to(DTYPES[spec.dtype])


def _activation_width(spec: ModAddSpec) -> int:
    """Floats per example and replica the forward holds at its peak (for eval chunking)."""
    if spec.model == "transformer":
        return 3 * (3 * spec.d_model) + spec.d_model + spec.d_mlp + 2 * spec.p
    return 2 * spec.p + sum(spec.hidden) + 2 * spec.p


@torch.no_grad()
def forward_chunked(spec: ModAddSpec, model, X: torch.Tensor) -> torch.Tensor:
    """Logits (R, N, p) in float64 of shared inputs X (N, ...), a bounded number of rows at a time."""
    R, N = len(model.params[0]), X.shape[0]
    chunk = max(64, EVAL_ENTRIES // (R * _activation_width(spec)))
    return torch.cat([model.forward(X[s : s + chunk]).double() for s in range(0, N, chunk)], 1)


# ---------------------------------------------------------------------------------------------
# teacher
# ---------------------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    """One saved teacher: its name, the epoch it was taken (None: never reached) and metrics."""

    name: str
    epoch: int | None
    rule: str | None  # the rule's conditions, or None for a fixed epoch
    train_acc: float = float("nan")
    val_acc: float = float("nan")
    train_loss: float = float("nan")
    val_loss: float = float("nan")
    state: dict | None = None  # weights (CPU tensors); not serialised to JSON

    def meta(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "state"}


class _TeacherMonitor:
    """``evaluate`` and ``stop`` callbacks for ``fit``: records the teacher's metrics, takes the
    checkpoints (fixed epochs, and rules at evaluated epochs) and ends the run when all are taken."""

    def __init__(self, spec: ModAddSpec, data: ModAddData):
        device = spec.device
        self.spec = spec
        self.X = model_inputs(spec, torch.as_tensor(data.tokens, device=device))
        self.y = torch.as_tensor(data.labels, device=device)
        self.is_train = torch.zeros(spec.p**2, dtype=torch.bool, device=device)
        self.is_train[torch.as_tensor(data.teacher, device=device)] = True
        self.fixed = {e: f"e{e}" for e in spec.checkpoints}
        self.rules = list(spec.rules())
        self.taken: dict[str, Checkpoint] = {}
        self.last: tuple[int, dict] | None = None

    def metrics(self, model) -> dict[str, float]:
        z = forward_chunked(self.spec, model, self.X)[0]  # (P, p) float64
        loss = torch.nn.functional.cross_entropy(z, self.y, reduction="none")
        correct = (z.argmax(-1) == self.y).double()
        tr, va = self.is_train, ~self.is_train
        return {
            "train_loss": float(loss[tr].mean()),
            "train_acc": float(correct[tr].mean()),
            "val_loss": float(loss[va].mean()),
            "val_acc": float(correct[va].mean()),
        }

    def evaluate(self, model, epoch: int) -> dict:
        values = self.metrics(model)
        self.last = (epoch, values)
        return {k: torch.tensor([v], dtype=torch.float64) for k, v in values.items()}

    def _take(self, name: str, rule: str | None, model, epoch: int, values: dict) -> None:
        state = {k: v.clone() for k, v in model.state().items()}  # params change in place later
        self.taken[name] = Checkpoint(name, epoch, rule, state=state, **values)
        log.info("teacher checkpoint %s at epoch %d: %s", name, epoch, values)

    def stop(self, model, epoch: int) -> bool:
        evaluated = self.last is not None and self.last[0] == epoch
        name = self.fixed.get(epoch)
        if name is not None and name not in self.taken:
            values = self.last[1] if evaluated else self.metrics(model)
            self._take(name, None, model, epoch, values)
        if evaluated:
            for rule in self.rules:
                if rule.name not in self.taken and rule.holds({"epoch": epoch, **self.last[1]}):
                    self._take(rule.name, _rule_text(rule), model, epoch, self.last[1])
        return len(self.taken) == len(self.fixed) + len(self.rules)


def _rule_text(rule: StopRule) -> str:
    return "&".join(f"{m}{op}{v:g}" for m, op, v in rule.conditions)


def train_teacher(
    spec: ModAddSpec, data: ModAddData, threads: int | None = None
) -> tuple[list[Checkpoint], pd.DataFrame, float]:
    """Train the teacher once; returns its checkpoints (in ``spec.checkpoint_names()`` order,
    ``epoch=None`` for rules never met), its curve (wide: epoch, train/val loss and acc) and the
    wall time."""
    t0 = time.perf_counter()
    device = spec.device
    model = make_model(spec, [spec.teacher_seed()])
    rows = torch.as_tensor(data.teacher, device=device)
    X = model_inputs(spec, torch.as_tensor(data.tokens, device=device)[rows])
    y = torch.as_tensor(data.labels, device=device)[rows]
    monitor = _TeacherMonitor(spec, data)
    step_flops = 3 * spec.flops_per_sample() * spec.n
    with thread_count(threads_for(step_flops, threads)):
        result = fit(
            model,
            X,
            Objective("ce", y),
            epochs=spec.teacher_epochs,
            optim=spec.teacher_optim(),
            curve_every=spec.teacher_curve_every,
            evaluate=monitor.evaluate,
            stop=monitor.stop,
            stop_every=1,
        )
    wall = time.perf_counter() - t0
    log.info("teacher: %d epochs in %.1f s", result.epochs_run, wall)
    curves = pd.DataFrame(
        [
            {"epoch": rec["epoch"], **{k: float(v[0]) for k, v in rec.items() if k != "epoch"}}
            for rec in result.curves
        ]
    )
    rules = {r.name: _rule_text(r) for r in spec.rules()}
    checkpoints = [
        monitor.taken.get(name) or Checkpoint(name, None, rules.get(name))
        for name in spec.checkpoint_names()
    ]
    for c in checkpoints:
        if c.epoch is None:
            log.warning(
                "stop rule %s (%s) never held within %d epochs", c.name, c.rule, spec.teacher_epochs
            )
    return checkpoints, curves, wall


@torch.no_grad()
def teacher_logits(spec: ModAddSpec, state: dict, data: ModAddData) -> torch.Tensor:
    """A saved teacher's logits (p^2, p) in float64 on every pair."""
    model = model_from_state(spec, state)
    X = model_inputs(spec, torch.as_tensor(data.tokens, device=spec.device))
    return forward_chunked(spec, model, X)[0]


# ---------------------------------------------------------------------------------------------
# students
# ---------------------------------------------------------------------------------------------
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


class _StudentEval:
    """Student metrics on all p^2 pairs: accuracy against the true labels on D_train^S, D_test^S
    and D_val, agreement with the teacher's predictions, and the cross-entropy against the tau
    soft labels on D_train^S and D_test^S."""

    def __init__(self, spec, X_all, y, z_teacher, taus, train_mask, test_mask, val_mask):
        self.spec, self.X, self.y = spec, X_all, y
        self.z_teacher, self.taus = z_teacher, taus  # (P, p) float64, (R,)
        self.t_pred = z_teacher.argmax(-1)
        self.train, self.test, self.val = train_mask, test_mask, val_mask  # (R,P), (R,P), (P,)

    @torch.no_grad()
    def __call__(self, model, epoch: int = -1, full: bool = False) -> dict:
        R, P = self.train.shape
        chunk = max(64, EVAL_ENTRIES // (R * _activation_width(self.spec)))
        correct = torch.empty(R, P, dtype=torch.bool, device=self.y.device)
        match = torch.empty_like(correct)
        ce = torch.empty(R, P, dtype=torch.float64, device=self.y.device)
        for s in range(0, P, chunk):
            e = min(P, s + chunk)
            z = model.forward(self.X[s:e]).double()  # (R, c, p)
            pred = z.argmax(-1)
            correct[:, s:e] = pred == self.y[s:e]
            match[:, s:e] = pred == self.t_pred[s:e]
            soft = soft_targets(self.z_teacher[s:e].unsqueeze(0), self.taus.view(R, 1, 1))
            ce[:, s:e] = -(soft * torch.log_softmax(z, -1)).sum(-1)
        acc = correct.double()
        out = {
            "student_train_acc": masked_mean(acc, self.train),
            "student_test_acc": masked_mean(acc, self.test),
            "student_val_acc": masked_mean(acc, self.val),
            "train_ce": masked_mean(ce, self.train),
            "test_ce": masked_mean(ce, self.test),
        }
        if full:
            agree = match.double()
            out["match_teacher_train_acc"] = masked_mean(agree, self.train)
            out["match_teacher_test_acc"] = masked_mean(agree, self.test)
            out["match_teacher_val_acc"] = masked_mean(agree, self.val)
        return out


def train_students(
    spec: ModAddSpec,
    data: ModAddData,
    z_teacher: torch.Tensor,
    runs: list[StudentRun],
    threads: int | None = None,
) -> tuple[list[dict], list[dict], object]:
    """Train ``runs`` (students of one teacher) as one replica batch.

    z_teacher: the teacher's logits (p^2, p) float64 on every pair. Each replica reads its own
    training rows (R, m, 3), padded to the batch's largest set with weight-0 rows.
    Returns (metrics per run, curve records in long form keyed by position, the trained model).
    """
    device, dtype = spec.device, DTYPES[spec.dtype]
    t0 = time.perf_counter()
    R, n, P = len(runs), spec.n, spec.p**2
    train_rows = []
    for run in runs:
        train_pos, _ = permutation_split(n, run.rho, run.split_seed)
        train_rows.append(data.teacher[train_pos])
    m = max(len(r) for r in train_rows)
    idx = np.zeros((R, m), dtype=np.int64)
    mask = torch.zeros(R, m, dtype=dtype, device=device)
    for r, rows in enumerate(train_rows):
        idx[r, : len(rows)] = rows
        idx[r, len(rows) :] = rows[0]  # padding: a real row with weight 0
        mask[r, : len(rows)] = 1
    idx_t = torch.as_tensor(idx, device=device)
    tokens = torch.as_tensor(data.tokens, device=device)
    taus = torch.tensor([run.tau for run in runs], dtype=torch.float64, device=device)
    targets = soft_targets(z_teacher[idx_t], taus.view(R, 1, 1)).to(dtype)  # (R, m, p)
    objective = Objective("soft", targets, normalized_weights(mask))
    X = model_inputs(spec, tokens[idx_t])  # (R, m, 3) or (R, m, 2p)

    train_mask = torch.zeros(R, P, dtype=torch.bool, device=device)
    for r, rows in enumerate(train_rows):
        train_mask[r, torch.as_tensor(rows, device=device)] = True
    is_teacher = torch.zeros(P, dtype=torch.bool, device=device)
    is_teacher[torch.as_tensor(data.teacher, device=device)] = True
    evaluate = _StudentEval(
        spec,
        model_inputs(spec, tokens),
        torch.as_tensor(data.labels, device=device),
        z_teacher,
        taus,
        train_mask,
        is_teacher & ~train_mask,
        ~is_teacher,
    )
    model = make_model(spec, [run.model_seed for run in runs])
    step_flops = 3 * spec.flops_per_sample() * m * R
    with thread_count(threads_for(step_flops, threads)):
        result = fit(
            model,
            X,
            objective,
            epochs=spec.student_epochs,
            optim=spec.student_optim(),
            curve_every=spec.curve_every,
            evaluate=evaluate,
        )
        final = evaluate(model, full=True)
    wall = (time.perf_counter() - t0) / R
    metrics = [{k: float(v[r]) for k, v in final.items()} | {"wall_s": wall} for r in range(R)]
    curves = [
        {"replica": r, "epoch": rec["epoch"], "metric": k, "value": float(rec[k][r])}
        for rec in result.curves
        for k in CURVE_METRICS
        for r in range(R)
    ]
    return metrics, curves, model


def run_id_of(spec: ModAddSpec, checkpoint: str, run: StudentRun) -> str:
    """The key of a student's row and learning curves."""
    return f"{spec.model}-p{spec.p}-{checkpoint}-rho{run.rho:g}-tau{run.tau:g}-ss{run.rep}"


def _row(spec: ModAddSpec, ckpt: Checkpoint, run: StudentRun, metrics: dict) -> dict:
    return {
        "experiment": "modadd",
        "model": spec.model,
        "p": spec.p,
        "c": spec.p,
        "train_frac": spec.train_frac,
        "n": spec.n,
        "rho": run.rho,
        "tau": run.tau,
        "checkpoint": ckpt.name,
        "teacher_epoch": ckpt.epoch,
        "teacher_epochs": ckpt.epoch,  # the results-table name for the same number
        "teacher_train_acc": ckpt.train_acc,
        "teacher_val_acc": ckpt.val_acc,
        **{k: v for k, v in metrics.items() if k != "wall_s"},
        "student_epochs": spec.student_epochs,
        "teacher_lr": spec.teacher_lr,
        "student_lr": spec.student_lr,
        "student_weight_decay": spec.student_weight_decay,
        "seed": spec.seed,
        "student_seed": run.rep,
        "model_seed": run.model_seed,
        "split_seed": run.split_seed,
        "data_seed": spec.data_seed(),
        "teacher_seed": spec.teacher_seed(),
        "wall_s": metrics["wall_s"],
        "run_id": run_id_of(spec, ckpt.name, run),
    }


def students_of_checkpoint(
    spec: ModAddSpec,
    data: ModAddData,
    ckpt: Checkpoint,
    threads: int | None = None,
    on_batch=None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All students of one saved teacher: (rows in grid order, curves in long form)."""
    z_teacher = teacher_logits(spec, ckpt.state, data)
    rows, curves = [], []
    for batch in student_batches(spec, student_runs(spec)):
        metrics, long, _ = train_students(spec, data, z_teacher, batch, threads)
        rows += [_row(spec, ckpt, run, m) for run, m in zip(batch, metrics, strict=True)]
        ids = [run_id_of(spec, ckpt.name, run) for run in batch]
        curves += [
            {"run_id": ids[rec["replica"]], **{k: rec[k] for k in ("epoch", "metric", "value")}}
            for rec in long
        ]
        if on_batch is not None:
            on_batch(len(batch))
    return pd.DataFrame(rows), pd.DataFrame(curves, columns=["run_id", "epoch", "metric", "value"])


# ---------------------------------------------------------------------------------------------
# the run directory
# ---------------------------------------------------------------------------------------------
OUTPUTS = (
    "results.parquet",
    "curves.parquet",
    "teacher_curves.parquet",
    "checkpoints.json",
    "checkpoints",
    "parts",
    "curve_parts",
)


def load_checkpoints(out: str | Path, with_states: bool = True, store=None):
    """The teacher checkpoints of a run directory (None when its teacher is not finished).

    store: the claimed ``Store`` of ``out`` when the caller writes there: records that fail their
    check (a checkpoint list that does not parse, weights that do not load) are then moved aside
    and None is returned, so the teacher is retrained (same seed: the same checkpoints)."""
    out = Path(out)
    meta = out / "checkpoints.json"
    if store is None:
        if not meta.exists():
            return None
        records = json.loads(meta.read_text())
    else:
        records = store.read_json(meta)
        if records is None:
            return None
    fields = {f.name for f in dataclasses.fields(Checkpoint)}
    try:
        checkpoints = [Checkpoint(**{k: v for k, v in m.items() if k in fields}) for m in records]
    except (TypeError, AttributeError):
        if store is None:
            raise
        from softleak.simulate.store import set_aside

        set_aside(store.root, meta, "not a list of checkpoints")
        return None
    if with_states:
        for c in checkpoints:
            if c.epoch is not None:
                path = out / "checkpoints" / f"{c.name}.pt"
                c.state = load_state(path) if store is None else store.load_state(path)
                if c.state is None:
                    return None
    return checkpoints


def run_modadd(
    spec: ModAddSpec,
    out: str | Path,
    *,
    threads: int | None = None,
    progress: bool | None = None,
    restart: bool = False,
) -> pd.DataFrame:
    """Run (or resume) ``spec`` into the directory ``out``; returns the results table.

    threads: torch/BLAS threads (None: ``simulate.device.threads_for`` decides).
    progress: a tqdm bar over students (None: only when stderr is a terminal).
    restart: start over, clearing the directory's records (a directory holding a run of other
        settings is refused without it: ``simulate.rundir.IdentityMismatch``).
    """
    from softleak.simulate.rundir import check_fits, claim, resolve_out, run_config, spec_from_dict
    from softleak.simulate.store import atomic_write_bytes, atomic_write_parquet

    out = resolve_out(out)
    check_fits(spec.peak_bytes(), spec.device, f"a modadd {spec.model} at p = {spec.p}")
    with claim(
        out,
        experiment="modadd",
        identity=spec.identity(),
        restart=restart,
        legacy=lambda old: spec_from_dict(ModAddSpec, old["spec"]).identity(),
        outputs=OUTPUTS,
    ) as store:
        config = run_config(spec, threads)
        config["run_id"] = spec.run_id()
        config["work"] = spec.work()
        store.write_config(config)
        for tmp in (out / "checkpoints").glob(".*.tmp"):
            tmp.unlink(missing_ok=True)

        data = make_data(spec)
        checkpoints = load_checkpoints(out, store=store)
        if checkpoints is None:
            checkpoints, curves, wall = train_teacher(spec, data, threads)
            for c in checkpoints:
                if c.state is not None:
                    save_state(out / "checkpoints" / f"{c.name}.pt", c.state)
            atomic_write_parquet(out / "teacher_curves.parquet", curves)
            meta = [c.meta() | {"wall_s": wall} for c in checkpoints]
            atomic_write_bytes(out / "checkpoints.json", json.dumps(meta, indent=2).encode())
            for c in checkpoints:  # the student stage reads the saved weights, as a resume would
                if c.state is not None:
                    c.state = load_state(out / "checkpoints" / f"{c.name}.pt")
        names = [c.name for c in checkpoints if c.epoch is not None]
        config["units"] = names  # checkpoints whose rule never held have no students
        store.write_config(config)
        runs = student_runs(spec)
        done = store.finished(names, len(runs), lambda c: [run_id_of(spec, c, r) for r in runs])
        pending = [c for c in checkpoints if c.epoch is not None and c.name not in done]
        bar = student_bar(
            len(names) * len(runs), (len(names) - len(pending)) * len(runs), "modadd", progress
        )
        try:
            for c in pending:
                rows, curves = students_of_checkpoint(spec, data, c, threads, on_batch=bar.update)
                store.write_unit(c.name, rows, curves if len(curves) else None)
        finally:
            bar.close()
        return store.consolidate(names)
