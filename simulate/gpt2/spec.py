"""GPT-2 classifiers on random sequences (paper appendix B, Fig. 9).

Data: ``n`` distinct sequences "a_b_c" of three integers uniform in 1..V (``vocab``), each with a
class uniform over ``c`` (i.i.d., not balanced) -- the teacher's set D_*^T -- and ``n_val`` fresh
distinct sequences (none in D_*^T) with random classes, D_val (chance level). Seeded; the data are
saved with the run (``data.parquet``) and checked on every resume.

Model: Hugging Face ``GPT2ForSequenceClassification`` (the logits at the last non-pad token). With
``pretrained=DIR`` the weights and the tokenizer come from a local folder in the usual Hugging Face
layout (``save_pretrained``: config.json, model.safetensors / pytorch_model.bin, tokenizer files);
a language-model checkpoint gets a fresh classification head. Without it the model is built from a
config (``config="small"``: GPT-2 124M's shape; ``"tiny"``: 2 layers, width 128; ``n_layer``,
``n_embd``, ``n_head`` override either) with ``sequence_tokenizer``: a word-level tokenizer over
"0".."V", "_" and "<|endoftext|>" (pad = eos, left padding), in which token id k is the number k.
Nothing is ever downloaded (``HF_HUB_OFFLINE=1``, ``local_files_only=True``).

Protocol: the teacher trains on D_*^T with minibatch AdamW (``simulate.minibatch``; lr 5e-4, batch
64, grad-norm clip 1.0, as the reference). Its logits on D_*^T, computed once in eval mode in
float32, give the soft labels softmax(z_T / tau). Student repetition s draws one permutation of
D_*^T; its first round(rho n) elements are D_train^S and the rest D_test^S (nested across rho). Each
student (rho x tau x repetition) is a fresh model -- the pretrained weights with a new head; from a
config, by default (``shared_init``) the same random body as the teacher's initial one with a new
head, the analogue of shared pretrained weights, else a new random init -- trained with cross-entropy against the soft labels (its own logits are not
divided by tau; lr 5e-4, batch 32), one after another. Mixed precision (bfloat16 autocast) is used
on CUDA for the training forward only; soft targets, losses and evaluations are float32.

Outputs in the run directory:
- ``config.json``: the spec, its ``run_id``, versions, the resolved model config and its size;
- ``data.parquet``: ``set`` (teacher | val), ``text``, ``x0, x1, x2``, ``y``;
- ``teacher.pt`` (the teacher's state_dict, ``torch.save``; loaded with ``weights_only=True``) and
  ``teacher.json`` (its metrics and per-epoch loss, written last: the teacher is done);
- ``parts/<student>.parquet`` (one row per student, written when it finishes) and
  ``results.parquet`` (their concatenation; the results-table columns of DESIGN.md).
The directory follows ``simulate.rundir``'s contract: a rerun of the same spec reuses the saved
teacher and skips finished students (more rho, tau or repetitions add students); a spec of other
settings is refused (``IdentityMismatch``) unless ``restart=True``; damaged records are set aside and
recomputed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from softleak.simulate.data import permutation_split
from softleak.simulate.device import thread_count, threads_for
from softleak.simulate.minibatch import MinibatchConfig, fit_minibatch, predict_logits
from softleak.simulate.progress import student_bar
from softleak.simulate.seeds import derive_seed
from softleak.simulate.softlabels import soft_targets
from softleak.simulate.store import load_state, save_state

log = logging.getLogger(__name__)

#: Model shapes built from a config (``config=``): GPT-2 124M and a CPU-sized one.
CONFIGS = {
    "small": {"n_layer": 12, "n_embd": 768, "n_head": 12},  # GPT-2 124M (Radford et al., 2019)
    "tiny": {"n_layer": 2, "n_embd": 128, "n_head": 4},  # ~0.4M weights + embeddings: CPU
}
EOS = "<|endoftext|>"  # pad = eos, as GPT-2's
SPLITS = ("random",)
OUTPUTS = ("config.json", "data.parquet", "teacher.pt", "teacher.json", "parts", "results.parquet")


class GPT2Error(ValueError):
    """Bad input: a missing or incomplete pretrained folder, transformers not installed."""


GRID = ("rho", "tau", "student_seeds")  # the student grid: may grow or shrink in one directory


def _transformers():
    """Import transformers with the hub switched off (nothing is ever downloaded)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import transformers
    except ImportError:
        raise GPT2Error(
            "the gpt2 experiment needs transformers: pip install 'softleak[gpt2]'"
        ) from None
    transformers.logging.set_verbosity_error()
    return transformers


# ---------------------------------------------------------------------------------------------
# the spec
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GPT2Spec:
    experiment: str = "gpt2"  # fixed
    n: int = 6_000  # teacher sequences |D_*^T| (paper: 6,000)
    vocab: int = 1_000  # V: the numbers are uniform in 1..V (paper: 1,000)
    c: int = 1_000  # classes (paper: 1,000)
    n_val: int = 1_000  # fresh random sequences with random classes (chance level)
    rho: tuple[float, ...] = (0.2, 0.5, 0.8)  # student training fractions (paper)
    tau: tuple[float, ...] = (20.0,)  # soft-label temperatures (paper: 20)
    student_seeds: int = 1  # repetitions: own D_train^S split and initialisation
    pretrained: str | None = None  # local Hugging Face folder (weights + tokenizer); None: config
    config: str = "small"  # model shape without ``pretrained``: small (GPT-2 124M) | tiny
    n_layer: int | None = None  # overrides the config's layers (None: the config's)
    n_embd: int | None = None  # overrides its width
    n_head: int | None = None  # overrides its heads
    dropout: float | None = None  # resid/embd/attn dropout (None: the model's, GPT-2: 0.1)
    # without ``pretrained``: draw the transformer body of teacher and students from one seed (as
    # pretrained weights are shared) and only the head from each model's seed; False: every model
    # its own full random init
    shared_init: bool = True
    max_length: int = 10  # tokens per sequence, longer ones truncated (reference: 10)
    teacher_epochs: int = 100  # (paper: 100)
    student_epochs: int = 200  # (paper: 200)
    teacher_lr: float = 5e-4  # AdamW (paper)
    student_lr: float = 5e-4  # AdamW (paper)
    teacher_batch: int = 64  # (reference)
    student_batch: int = 32  # (reference)
    weight_decay: float = 0.01  # AdamW's default (the reference does not set it)
    clip: float = 1.0  # gradient-norm clip of teacher and students (reference)
    split: str = "random"  # D_train^S: a seeded random rho share of D_*^T (nested across rho)
    seed: int = 0  # base seed every draw derives from
    amp: bool = True  # bfloat16 autocast for the training forward on CUDA (never on CPU)
    eval_batch: int = 512  # examples per evaluation forward
    device: str = "cpu"  # resolved device (cpu, cuda)
    extra: dict = field(default_factory=dict)  # recorded, not part of the identity

    def __post_init__(self) -> None:
        def put(name, value):
            object.__setattr__(self, name, value)

        put("rho", tuple(float(v) for v in self.rho))
        put("tau", tuple(float(v) for v in self.tau))
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
        settings = {k: v for k, v in self.to_dict().items() if k not in skip}
        if self.pretrained is not None:  # the folder's model decides the shape
            for name in ("config", "n_layer", "n_embd", "n_head", "shared_init"):
                settings.pop(name)
        return settings

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


# ---------------------------------------------------------------------------------------------
# data and tokenizer
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SequenceData:
    numbers: np.ndarray  # (n, 3) integers in 1..V: D_*^T
    y: np.ndarray  # (n,) classes
    val_numbers: np.ndarray  # (n_val, 3): D_val, disjoint from D_*^T
    y_val: np.ndarray  # (n_val,)

    @property
    def texts(self) -> list[str]:
        return to_texts(self.numbers)

    @property
    def val_texts(self) -> list[str]:
        return to_texts(self.val_numbers)

    def frame(self) -> pd.DataFrame:
        """The data as saved in ``data.parquet``."""
        frames = []
        for name, nums, y in (
            ("teacher", self.numbers, self.y),
            ("val", self.val_numbers, self.y_val),
        ):
            frames.append(
                pd.DataFrame(
                    {
                        "set": name,
                        "text": to_texts(nums),
                        "x0": nums[:, 0],
                        "x1": nums[:, 1],
                        "x2": nums[:, 2],
                        "y": y,
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)


def to_texts(numbers: np.ndarray) -> list[str]:
    """(n, 3) integers -> ["a_b_c", ...]."""
    return ["_".join(str(int(v)) for v in row) for row in numbers]


def make_sequences(n: int, n_val: int, vocab: int, c: int, seed: int) -> SequenceData:
    """``n + n_val`` distinct triples uniform in 1..vocab (duplicates redrawn) with i.i.d. uniform
    classes in 0..c-1; the first ``n`` are D_*^T, the rest D_val."""
    rng = np.random.default_rng(seed)
    total = n + n_val
    keys: dict[int, None] = {}
    while len(keys) < total:
        draw = rng.integers(1, vocab + 1, size=(total - len(keys), 3))
        for a, b, d in draw:
            keys.setdefault((int(a) * (vocab + 1) + int(b)) * (vocab + 1) + int(d), None)
    code = np.fromiter(keys, dtype=np.int64, count=total)
    base = vocab + 1
    numbers = np.stack([code // base**2, (code // base) % base, code % base], axis=1)
    y = rng.integers(0, c, total)
    return SequenceData(numbers[:n], y[:n], numbers[n:], y[n:])


def make_data(spec: GPT2Spec) -> SequenceData:
    return make_sequences(spec.n, spec.n_val, spec.vocab, spec.c, spec.data_seed())


def sequence_tokenizer(vocab: int, max_length: int = 10):
    """A ``PreTrainedTokenizerFast`` over the sequence alphabet: "0".."V" (token id k is the number
    k), "_" (id V + 1) and "<|endoftext|>" (id V + 2: eos = bos = pad = unk); left padding.
    "a_b_c" is 5 tokens; ``decode`` gives the text back."""
    _transformers()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = {str(i): i for i in range(vocab + 1)}
    words["_"] = vocab + 1
    words[EOS] = vocab + 2
    backend = Tokenizer(models.WordLevel(words, unk_token=EOS))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split("_", behavior="isolated")]
    )
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=EOS,
        bos_token=EOS,
        pad_token=EOS,
        unk_token=EOS,
        padding_side="left",
        model_max_length=max_length,
    )


def encode(tokenizer, texts: list[str], max_length: int, device: str) -> dict[str, torch.Tensor]:
    """Token ids and attention masks (n, L), left-padded to the longest, truncated at
    ``max_length``."""
    enc = tokenizer(
        texts, padding="longest", truncation=True, max_length=max_length, return_tensors="pt"
    )
    return {
        "input_ids": enc["input_ids"].to(device),
        "attention_mask": enc["attention_mask"].to(device),
    }


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")


def check_pretrained(path: str | Path) -> Path:
    """The folder if it holds a Hugging Face model (config.json and weights) and a tokenizer;
    else ``GPT2Error`` naming what is missing."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise GPT2Error(f"--pretrained {path}: no such folder (nothing is downloaded)")
    missing = []
    if not (folder / "config.json").is_file():
        missing.append("config.json")
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        missing.append("weights (" + " or ".join(WEIGHT_FILES[:2]) + ")")
    tokenizer_files = ("tokenizer.json", "vocab.json", "tokenizer_config.json")
    if not any((folder / f).is_file() for f in tokenizer_files):
        missing.append("a tokenizer (tokenizer.json or vocab.json + merges.txt)")
    if missing:
        raise GPT2Error(
            f"--pretrained {path} is not a Hugging Face model folder: missing {', '.join(missing)}"
        )
    return folder


def load_tokenizer(spec: GPT2Spec):
    """The pretrained folder's tokenizer (left padding, pad = eos when it has no pad token) or
    ``sequence_tokenizer``."""
    if spec.pretrained is None:
        return sequence_tokenizer(spec.vocab, spec.max_length)
    transformers = _transformers()
    folder = check_pretrained(spec.pretrained)
    try:
        tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as err:
        raise GPT2Error(
            f"--pretrained {spec.pretrained}: cannot load its tokenizer: {err}"
        ) from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def make_model(spec: GPT2Spec, tokenizer, seed: int):
    """A GPT-2 classifier with ``c`` outputs on ``spec.device``; its random weights (the whole
    model, or only the head of a pretrained one or with ``shared_init``) drawn from ``seed``
    (global RNG forked)."""
    transformers = _transformers()
    overrides = {}
    if spec.dropout is not None:
        overrides = {k: spec.dropout for k in ("resid_pdrop", "embd_pdrop", "attn_pdrop")}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if spec.pretrained is not None:
            folder = check_pretrained(spec.pretrained)
            try:
                model = transformers.GPT2ForSequenceClassification.from_pretrained(
                    folder,
                    num_labels=spec.c,
                    local_files_only=True,
                    ignore_mismatched_sizes=True,
                    **overrides,
                )
            except (OSError, ValueError) as err:
                raise GPT2Error(
                    f"--pretrained {spec.pretrained}: cannot load a GPT-2 model: {err}"
                ) from None
        else:
            config = transformers.GPT2Config(
                vocab_size=len(tokenizer),
                n_positions=max(spec.max_length, 16),
                n_layer=spec.n_layer,
                n_embd=spec.n_embd,
                n_head=spec.n_head,
                num_labels=spec.c,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                **overrides,
            )
            if spec.shared_init:
                torch.manual_seed(spec.body_seed())
            model = transformers.GPT2ForSequenceClassification(config)
            if spec.shared_init:  # the head from this model's seed, as GPT-2's init draws it
                gen = torch.Generator().manual_seed(seed)
                with torch.no_grad():
                    w = torch.randn(model.score.weight.shape, generator=gen)
                    model.score.weight.copy_(w * config.initializer_range)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(spec.device)


def model_summary(model) -> dict:
    """The resolved model config (recorded in config.json) and its parameter count."""
    keys = ("vocab_size", "n_positions", "n_layer", "n_embd", "n_head", "num_labels")
    keys += ("resid_pdrop", "embd_pdrop", "attn_pdrop", "pad_token_id")
    cfg = model.config.to_dict()
    return {k: cfg.get(k) for k in keys} | {
        "parameters": sum(p.numel() for p in model.parameters())
    }


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------
def _autocast_dtype(spec: GPT2Spec) -> torch.dtype | None:
    return torch.bfloat16 if spec.amp and str(spec.device).startswith("cuda") else None


def _threads(spec: GPT2Spec, threads: int | None) -> int:
    return threads_for(3 * spec.flops_per_sequence() * spec.teacher_batch, threads)


def _accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    return float((pred == y).double().mean()) if len(y) else float("nan")


def train_teacher(spec: GPT2Spec, data: SequenceData, tokenizer, threads: int | None = None):
    """Train the teacher; returns (model, metrics dict)."""
    t0 = time.perf_counter()
    with thread_count(_threads(spec, threads)):
        X = encode(tokenizer, data.texts, spec.max_length, spec.device)
        y = torch.as_tensor(data.y, device=spec.device)
        model = make_model(spec, tokenizer, spec.teacher_seed())
        config = MinibatchConfig(
            spec.teacher_epochs,
            spec.teacher_batch,
            spec.teacher_lr,
            spec.weight_decay,
            clip=spec.clip,
        )

        def report(epoch, loss):
            log.info("teacher epoch %d: loss %.4f", epoch, loss)

        result = fit_minibatch(
            model,
            X,
            y,
            config,
            seed=spec.teacher_seed(),
            autocast_dtype=_autocast_dtype(spec),
            on_epoch=report,
        )
        wall = time.perf_counter() - t0
        X_val = encode(tokenizer, data.val_texts, spec.max_length, spec.device)
        y_val = torch.as_tensor(data.y_val, device=spec.device)
        train_acc = _accuracy(predict_logits(model, X, spec.eval_batch).argmax(-1), y)
        val_acc = _accuracy(predict_logits(model, X_val, spec.eval_batch).argmax(-1), y_val)
    metrics = {
        "teacher_train_acc": train_acc,
        "teacher_val_acc": val_acc,
        "teacher_epochs": result.epochs_run,
        "teacher_steps": result.steps,
        "teacher_wall_s": wall,
        "epoch_loss": result.epoch_loss,
    }
    return model, metrics


def train_student(
    spec: GPT2Spec,
    data: SequenceData,
    tokenizer,
    z_teacher: torch.Tensor,
    teacher_meta: dict,
    rho: float,
    tau: float,
    rep: int,
    threads: int | None = None,
) -> dict:
    """Train one student on the soft labels of D_train^S; returns its results row."""
    t0 = time.perf_counter()
    seed = spec.student_seed(rho, tau, rep)
    train, test = permutation_split(spec.n, rho, spec.split_seed(rep))
    with thread_count(_threads(spec, threads)):
        X = encode(tokenizer, data.texts, spec.max_length, spec.device)
        X_val = encode(tokenizer, data.val_texts, spec.max_length, spec.device)
        y = torch.as_tensor(data.y, device=spec.device)
        y_val = torch.as_tensor(data.y_val, device=spec.device)
        soft = soft_targets(z_teacher.to(spec.device), tau)  # (n, c) float32
        tr = torch.as_tensor(train, device=spec.device)
        te = torch.as_tensor(test, device=spec.device)
        model = make_model(spec, tokenizer, seed)
        config = MinibatchConfig(
            spec.student_epochs,
            spec.student_batch,
            spec.student_lr,
            spec.weight_decay,
            clip=spec.clip,
        )
        result = fit_minibatch(
            model,
            {k: v[tr] for k, v in X.items()},
            soft[tr],
            config,
            seed=seed,
            autocast_dtype=_autocast_dtype(spec),
        )
        z = predict_logits(model, X, spec.eval_batch)  # (n, c)
        zv = predict_logits(model, X_val, spec.eval_batch)
    pred, t_pred = z.argmax(-1), z_teacher.to(spec.device).argmax(-1)
    ce = -(soft * torch.log_softmax(z, -1)).sum(-1)  # (n,) CE against the tau soft labels
    return {
        "experiment": "gpt2",
        "d": spec.n_embd,
        "c": spec.c,
        "n": spec.n,
        "vocab": spec.vocab,
        "rho": rho,
        "tau": tau,
        "model": "pretrained" if spec.pretrained else spec.config,
        "pretrained": spec.pretrained or "",
        "p_teacher": f"{spec.n_layer}x{spec.n_embd}",
        "p_student": f"{spec.n_layer}x{spec.n_embd}",
        "teacher_epochs": teacher_meta["teacher_epochs"],
        "student_epochs": result.epochs_run,
        "teacher_lr": spec.teacher_lr,
        "student_lr": spec.student_lr,
        "teacher_batch": spec.teacher_batch,
        "student_batch": spec.student_batch,
        "shuffle": False,
        "ablation": "none",
        "solver": "adamw",
        "seed": spec.seed,
        "student_seed": rep,
        "data_seed": spec.data_seed(),
        "teacher_seed": spec.teacher_seed(),
        "model_seed": seed,
        "split_seed": spec.split_seed(rep),
        "teacher_train_acc": teacher_meta["teacher_train_acc"],
        "teacher_val_acc": teacher_meta["teacher_val_acc"],
        "student_train_acc": _accuracy(pred[tr], y[tr]),
        "student_test_acc": _accuracy(pred[te], y[te]),
        "student_val_acc": _accuracy(zv.argmax(-1), y_val),
        "match_teacher_train_acc": _accuracy(pred[tr], t_pred[tr]),
        "match_teacher_test_acc": _accuracy(pred[te], t_pred[te]),
        "train_ce": float(ce[tr].mean()),
        "test_ce": float(ce[te].mean()) if len(te) else float("nan"),
        "final_loss": result.epoch_loss[-1] if result.epoch_loss else float("nan"),
        "teacher_wall_s": teacher_meta["teacher_wall_s"],
        "wall_s": time.perf_counter() - t0,
    }


# ---------------------------------------------------------------------------------------------
# the run directory
# ---------------------------------------------------------------------------------------------
def run_gpt2(
    spec: GPT2Spec,
    out: str | Path,
    *,
    threads: int | None = None,
    progress: bool | None = None,
    restart: bool = False,
) -> pd.DataFrame:
    """Run (or resume) ``spec`` into the directory ``out``; returns the results table.

    Checks (before writing anything) that transformers imports and that a ``pretrained`` folder
    holds a model and a tokenizer (``GPT2Error``), that the run fits in memory, and that ``out``
    holds no run of other settings (``simulate.rundir.IdentityMismatch``, unless ``restart``,
    which clears its records).
    """
    from softleak.simulate.rundir import check_fits, claim, resolve_out, run_config, spec_from_dict
    from softleak.simulate.store import atomic_write_bytes, atomic_write_parquet, set_aside

    _transformers()
    if spec.pretrained is not None:
        check_pretrained(spec.pretrained)
    out = resolve_out(out)
    check_fits(spec.peak_bytes(), spec.device, f"a GPT-2 of {spec.weights():,} weights")
    with claim(
        out,
        experiment="gpt2",
        identity=spec.identity(),
        restart=restart,
        legacy=lambda old: spec_from_dict(GPT2Spec, old["spec"]).identity(),
        outputs=OUTPUTS,
    ) as store:
        tokenizer = load_tokenizer(spec)
        data = make_data(spec)
        data_path = out / "data.parquet"
        saved = store.read_table(data_path)
        if saved is not None:
            try:
                pd.testing.assert_frame_equal(saved, data.frame(), check_dtype=False)
            except AssertionError:
                set_aside(out, data_path, "not the data this spec draws")
        teacher_json, teacher_pt = out / "teacher.json", out / "teacher.pt"
        model = None
        meta = store.read_json(teacher_json)
        state = store.load_state(teacher_pt) if meta is not None else None
        if state is not None:
            model = make_model(spec, tokenizer, spec.teacher_seed())
            try:
                model.load_state_dict(state)
                log.info("reusing the saved teacher (train acc %.3f)", meta["teacher_train_acc"])
            except (RuntimeError, KeyError, TypeError):
                set_aside(out, teacher_pt, "not this model's weights")
                model = None
        runs = spec.students()
        names = [student_id(*r) for r in runs]
        config = run_config(spec, threads)
        config["run_id"] = spec.run_id()
        config["work"] = spec.work()
        config["units"] = names
        config["tokenizer"] = {"class": type(tokenizer).__name__, "size": len(tokenizer)}
        if model is not None:
            config["model_config"] = model_summary(model)
        store.write_config(config)
        atomic_write_parquet(data_path, data.frame())
        if model is None:
            model, meta = train_teacher(spec, data, tokenizer, threads)
            save_state(teacher_pt, model.state_dict())
            meta = meta | {"model_config": model_summary(model)}
            atomic_write_bytes(teacher_json, json.dumps(meta, indent=2).encode())
            config["model_config"] = meta["model_config"]
            store.write_config(config)
            model.load_state_dict(load_state(teacher_pt))  # as a resume would
        with thread_count(_threads(spec, threads)):
            X = encode(tokenizer, data.texts, spec.max_length, spec.device)
            z_teacher = predict_logits(model, X, spec.eval_batch)  # (n, c) float32, eval mode
        del model
        done = store.finished(names, 1)
        pending = [r for r, name in zip(runs, names, strict=True) if name not in done]
        bar = student_bar(len(runs), len(runs) - len(pending), "gpt2", progress)
        try:
            for rho, tau, rep in pending:
                row = train_student(spec, data, tokenizer, z_teacher, meta, rho, tau, rep, threads)
                store.write_unit(student_id(rho, tau, rep), pd.DataFrame([row]))
                bar.update()
        finally:
            bar.close()
        return store.consolidate(names)
