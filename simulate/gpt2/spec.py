"""The gpt2 experiment's spec (``GPT2Spec``): data, model and training settings, the run's
identity, its seeds, size and counted work; the student grid and names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from softleak.simulate.params import param
from softleak.simulate.precision import check_precision
from softleak.simulate.run_spec import RunSpec
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
class GPT2Spec(RunSpec):
    family: ClassVar[str] = "gpt2"

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
    # filled in from ``config`` when not given (``validate``)
    n_layer: int = param(None, help="override: layers", kind="count", group="model")
    n_embd: int = param(None, help="override: width", kind="count", group="model")
    n_head: int = param(None, help="override: heads", kind="count", group="model")
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
    eval_batch: int = param(
        512, help="examples per evaluation forward", kind="count", group="execution"
    )

    def validate(self) -> None:
        """Normalisation, filled-in shapes, own bounds and across fields (the declared kinds are
        checked already)."""
        put = self.put
        put("rho", tuple(float(v) for v in self.rho))
        put("tau", tuple(float(v) for v in self.tau))
        check_precision(self.precision, self.device)
        if self.pretrained is not None:
            put("pretrained", str(self.pretrained))
        if self.experiment != "gpt2":
            raise ValueError("GPT2Spec is the gpt2 experiment")
        if self.c < 2:
            raise ValueError("c must be >= 2")
        if self.n < 2:
            raise ValueError("n must be >= 2")
        if self.n + self.n_val > self.vocab**3 // 2:
            raise ValueError(
                f"n + n_val = {self.n + self.n_val} distinct sequences need vocab^3 >= "
                f"2 (n + n_val); vocab = {self.vocab} gives {self.vocab**3}"
            )
        for name in ("n_layer", "n_embd", "n_head"):
            if getattr(self, name) is None:
                put(name, CONFIGS[self.config][name])
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd = {self.n_embd} must be a multiple of n_head = {self.n_head}")
        if self.dropout is not None and not self.dropout < 1:
            raise ValueError("dropout must lie in [0, 1)")
        for rho in self.rho:
            if not 1 <= round(rho * self.n) < self.n:
                raise ValueError(f"rho = {rho:g} leaves an empty student train or test set")
        from softleak.simulate.realized import check_fractions  # no two rho on one split

        check_fractions(
            self.rho, self.n, lambda r: round(r * self.n), what=f"n = {self.n}", rule="round(rho n)"
        )
        if self.max_length < 5:
            raise ValueError("max_length must be >= 5 (a_b_c is 5 tokens here)")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}")

    # derived --------------------------------------------------------------------------------
    def n_train(self, rho: float) -> int:
        """|D_train^S| = round(rho n)."""
        return round(rho * self.n)

    def run_id(self) -> str:
        """What determines the numbers (device, evaluation batch and extras excluded)."""
        from softleak.simulate.rundir import digest

        return digest(self._settings())

    def _settings(self) -> dict:
        skip = ["device", "extra", "eval_batch"]
        if self.pretrained is not None:  # the folder's model decides the shape
            skip += ["config", "n_layer", "n_embd", "n_head", "shared_init"]
        return self.settled_fields(skip)

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
