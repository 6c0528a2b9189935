"""The gpt2 experiment's spec (``GPT2Spec``): data, model and training settings, the run's
identity, its seeds, size and counted work; the student grid and names."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from softleak.simulate.params import param
from softleak.simulate.precision import check_precision, precision_field
from softleak.simulate.seeds import derive_seed

#: Model shapes built from a config (``config=``): GPT-2 124M and a CPU-sized one.
CONFIGS = {
    "small": {"n_layer": 12, "n_embd": 768, "n_head": 12},  # GPT-2 124M (Radford et al., 2019)
    "tiny": {"n_layer": 2, "n_embd": 128, "n_head": 4},  # ~0.4M weights + embeddings: CPU
}
EOS = "<|endoftext|>"  # pad = eos, as GPT-2's
SPLITS = ("random",)

GRID = ("rho", "tau", "student_seeds")  # the student grid: may grow or shrink in one directory


@dataclass(frozen=True)
class GPT2Spec:
    experiment: str = "gpt2"  # fixed
    n: int = param(6_000, help="teacher sequences (paper: 6,000)", kind="count", group="data")
    vocab: int = param(
        1_000, help="the numbers are uniform in 1..V (paper: 1,000)", kind="count", group="data"
    )
    c: int = param(1_000, help="classes (paper: 1,000)", kind="count", group="data")
    n_val: int = param(
        1_000,
        help="fresh random sequences with random classes (chance)",
        kind="count",
        group="data",
    )
    rho: tuple[float, ...] = param(
        (0.2, 0.5, 0.8),
        help="student training fractions (paper)",
        kind="fraction_grid",
        group="students",
    )
    tau: tuple[float, ...] = param(
        (20.0,), help="soft-label temperatures (paper: 20)", kind="positive_grid", group="students"
    )
    student_seeds: int = param(
        1,
        help="repetitions, each with its own split and initialisation",
        kind="count",
        group="students",
    )
    pretrained: str | None = param(
        None,
        help="local Hugging Face folder with a GPT-2 model and its tokenizer (save_pretrained "
        "layout); default: a model built from --config",
        kind="text",
        metavar="DIR",
        group="model",
    )
    config: str = param(
        "small",
        help="shape without --pretrained: small = GPT-2 124M (12 x 768, 12 heads), tiny = 2 x 128, "
        "4 heads",
        kind="choice",
        choices=("small", "tiny"),
        group="model",
    )
    n_layer: int | None = param(None, help="override: layers", kind="count", group="model")
    n_embd: int | None = param(None, help="override: width", kind="count", group="model")
    n_head: int | None = param(None, help="override: heads", kind="count", group="model")
    dropout: float | None = param(
        None,
        help="dropout of every layer (default: the model's, 0.1 for GPT-2)",
        kind="nonnegative",
        group="model",
    )
    # without ``pretrained``: draw the transformer body of teacher and students from one seed (as
    # pretrained weights are shared) and only the head from each model's seed; False: every model
    # its own full random init
    shared_init: bool = param(
        True,
        help="without --pretrained: every model gets its own random init (default: teacher and "
        "students share one random body, as pretrained weights would, and differ in the head)",
        kind="flag",
        flag="--independent-init",
        group="model",
    )
    max_length: int = param(
        10,
        help="tokens per sequence, longer ones truncated (reference: 10)",
        kind="count",
        group="model",
    )
    teacher_epochs: int = param(
        100, help="teacher epochs (paper: 100)", kind="count", group="training"
    )
    student_epochs: int = param(
        200, help="student epochs (paper: 200)", kind="count", group="training"
    )
    teacher_lr: float = param(
        5e-4, help="teacher AdamW lr (paper)", kind="positive", group="training"
    )
    student_lr: float = param(
        5e-4, help="student AdamW lr (paper)", kind="positive", group="training"
    )
    teacher_batch: int = param(
        64, help="teacher batch size (reference)", kind="count", group="training"
    )
    student_batch: int = param(
        32, help="student batch size (reference)", kind="count", group="training"
    )
    weight_decay: float = param(
        0.01,
        help="AdamW weight decay (AdamW's default; the reference does not set it)",
        kind="nonnegative",
        group="training",
    )
    clip: float = param(
        1.0,
        help="grad-norm clip of teacher and students (reference)",
        kind="positive",
        group="training",
    )
    split: str = "random"  # D_train^S: a seeded random rho share of D_*^T (nested across rho)
    seed: int = param(0, help="base seed every draw derives from", kind="seed", group="execution")
    # the matrix products of training steps, attention included, on every device by the policy of
    # simulate.precision (before precisions: ``amp``, bf16 autocast on CUDA, another arithmetic)
    precision: str = precision_field()
    eval_batch: int = param(
        512, help="examples per evaluation forward", kind="count", group="execution"
    )
    device: str = "cpu"  # resolved device (cpu, cuda)
    extra: dict = field(default_factory=dict)  # recorded, not part of the identity

    def __post_init__(self) -> None:
        def put(name, value):
            object.__setattr__(self, name, value)

        put("rho", tuple(float(v) for v in self.rho))
        put("tau", tuple(float(v) for v in self.tau))
        check_precision(self.precision, self.device)
        if self.pretrained is not None:
            put("pretrained", str(self.pretrained))
        if self.experiment != "gpt2":
            raise ValueError("GPT2Spec is the gpt2 experiment")
        if self.vocab < 1 or self.c < 2:
            raise ValueError("vocab must be >= 1 and c >= 2")
        if self.n < 2 or self.n_val < 1:
            raise ValueError("n must be >= 2 and n_val >= 1")
        if self.n + self.n_val > self.vocab**3 // 2:
            raise ValueError(
                f"n + n_val = {self.n + self.n_val} distinct sequences need vocab^3 >= "
                f"2 (n + n_val); vocab = {self.vocab} gives {self.vocab**3}"
            )
        if self.config not in CONFIGS:
            raise ValueError(f"unknown config {self.config!r}; choose from {', '.join(CONFIGS)}")
        for name in ("n_layer", "n_embd", "n_head"):
            value = getattr(self, name)
            if value is None:
                put(name, CONFIGS[self.config][name])
            elif value < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd = {self.n_embd} must be a multiple of n_head = {self.n_head}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ValueError("dropout must lie in [0, 1)")
        if not self.rho or not self.tau:
            raise ValueError("rho and tau need at least one value each")
        if len(set(self.rho)) != len(self.rho) or len(set(self.tau)) != len(self.tau):
            raise ValueError("rho and tau values must be distinct")
        for rho in self.rho:
            if not 0 < rho < 1:
                raise ValueError(f"rho must lie strictly between 0 and 1, got {rho:g}")
            if not 1 <= round(rho * self.n) < self.n:
                raise ValueError(f"rho = {rho:g} leaves an empty student train or test set")
        from softleak.simulate.realized import check_fractions  # no two rho on one split

        check_fractions(
            self.rho, self.n, lambda r: round(r * self.n), what=f"n = {self.n}", rule="round(rho n)"
        )
        for tau in self.tau:
            if not (tau > 0 and math.isfinite(tau)):
                raise ValueError(f"tau must be a finite number > 0, got {tau:g}")
        for name in (
            "student_seeds",
            "teacher_epochs",
            "student_epochs",
            "teacher_batch",
            "student_batch",
            "eval_batch",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.max_length < 5:
            raise ValueError("max_length must be >= 5 (a_b_c is 5 tokens here)")
        if not (self.teacher_lr > 0 and self.student_lr > 0):
            raise ValueError("learning rates must be > 0")
        if self.weight_decay < 0 or not self.clip > 0:
            raise ValueError("weight_decay must be >= 0 and clip > 0")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}")
        if self.seed < 0:
            raise ValueError("seed must be >= 0")

    # derived --------------------------------------------------------------------------------
    def n_train(self, rho: float) -> int:
        """|D_train^S| = round(rho n)."""
        return round(rho * self.n)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def run_id(self) -> str:
        """What determines the numbers (device, evaluation batch and extras excluded)."""
        from softleak.simulate.rundir import digest

        return digest(self._settings())

    def _settings(self) -> dict:
        skip = ("device", "extra", "eval_batch")
        from softleak.simulate.rundir import settled

        settings = {k: v for k, v in self.to_dict().items() if k not in skip}
        if self.pretrained is not None:  # the folder's model decides the shape
            for name in ("config", "n_layer", "n_embd", "n_head", "shared_init"):
                settings.pop(name)
        return settled(settings)

    def identity(self) -> dict:
        """The run directory's identity: the settings of ``run_id`` but the student grid (rho,
        tau, repetitions), whose students are units of their own."""
        return {k: v for k, v in self._settings().items() if k not in GRID}

    def peak_bytes(self) -> int:
        """Rough peak memory of the smallest unit (one model training): weights with gradients
        and AdamW state, embeddings, and ~16 activations per layer and token of a batch."""
        embed = (self.vocab + 3 + self.max_length) * self.n_embd
        params = self.weights() + embed
        batch = max(self.teacher_batch, self.student_batch, self.eval_batch)
        acts = 16 * self.n_layer * batch * self.max_length * self.n_embd + batch * self.c * 4
        data = (self.n + self.n_val) * (self.max_length * 16 + self.c * 8)
        return int(1.25 * (4 * (5 * params + acts) + data))

    def students(self) -> list[tuple[float, float, int]]:
        """Every student as (rho, tau, repetition), in training order."""
        return [(r, t, s) for s in range(self.student_seeds) for r in self.rho for t in self.tau]

    def seq_tokens(self) -> int:
        """Tokens per sequence: 5 with ``sequence_tokenizer``; GPT-2's BPE may need up to
        ``max_length``."""
        return 5 if self.pretrained is None else self.max_length

    def weights(self) -> int:
        """Weights of the transformer blocks and the head (embeddings excluded: a lookup costs
        no FLOPs); a pretrained folder is counted as the config's shape."""
        return 12 * self.n_layer * self.n_embd**2 + self.n_embd * self.c

    def flops_per_sequence(self) -> float:
        """Forward FLOPs for one sequence: 2 x (block weights x tokens + head) + attention."""
        t, d = self.seq_tokens(), self.n_embd
        blocks = 2 * 12 * self.n_layer * d * d * t
        attention = 2 * 2 * self.n_layer * t * t * d
        return float(blocks + attention + 2 * d * self.c)

    def work(self) -> dict:
        """Counted work: teachers, students, training FLOPs (3 x forward per example and epoch)
        plus the evaluations (forward passes on D_*^T and D_val)."""
        f = self.flops_per_sequence()
        students = self.students()
        flops = 3 * f * self.n * self.teacher_epochs + f * (self.n + self.n_val)
        for rho, _, _ in students:
            flops += 3 * f * self.n_train(rho) * self.student_epochs + f * (self.n + self.n_val)
        return {"teachers": 1, "students": len(students), "flops": float(flops)}

    # seeds ----------------------------------------------------------------------------------
    def data_seed(self) -> int:
        return derive_seed(self.seed, "gpt2-data", self.n, self.vocab, self.c, self.n_val)

    def teacher_seed(self) -> int:
        return derive_seed(self.seed, "gpt2-teacher", self.n, self.vocab, self.c)

    def split_seed(self, rep: int) -> int:
        """Repetition ``rep``'s permutation of D_*^T (shared by every rho and tau)."""
        return derive_seed(self.seed, "gpt2-split", self.n, rep)

    def student_seed(self, rho: float, tau: float, rep: int) -> int:
        return derive_seed(self.seed, "gpt2-student", self.n, rho, tau, rep)

    def body_seed(self) -> int:
        """The shared initial body of every model (``shared_init``; from-config models)."""
        return derive_seed(self.seed, "gpt2-body", self.n_layer, self.n_embd, self.n_head)


def student_id(rho: float, tau: float, rep: int) -> str:
    return f"rho{rho:g}-tau{tau:g}-ss{rep}"
