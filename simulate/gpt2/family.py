"""The gpt2 family (GPT-2 classifiers, ``simulate.gpt2``) as the registry
(``simulate.families``) reads it: its runner, parts and time model, tiny preset, GPU-check runs
and command line.

Time model (its own: Hugging Face models train one at a time in minibatches, so the replica
engine's rates do not apply). MEASURED on the 2-core development CPU (1 thread, load ~2): the
tiny config (2 layers, width 128, 5 tokens per sequence, c = 50) took 0.45-0.9 s per teacher epoch
on 1,000 sequences (batch 64) and ~0.55 ms per sample-epoch for students (batch 32, 800 rows):
steps are dominated by per-layer Python and autograd overhead, ~15 ms per step of 2 layers, and
the model below reproduces that. The H200 column is ASSUMED (no GPU measured).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from softleak.simulate.families import Family
from softleak.simulate.gpt2.spec import GPT2Spec

CPU_GPT2_RATE = 50e9  # FLOP/s of the GEMMs (as the modadd transformer's; ASSUMED for GPT-2 small)
CPU_GPT2_STEP_S = 3e-3  # s per optimizer step: AdamW, clipping, the head, Python
CPU_GPT2_LAYER_STEP_S = 6e-3  # s per step and transformer block (forward + backward ops)
# H200 (ASSUMED): eager torch ops per step, ~250 per block (forward, backward, AdamW foreach)
GPT2_OPS_BASE, GPT2_OPS_PER_LAYER = 150, 250

DESCRIPTION = (
    "GPT-2 classifiers on random sequences (paper appendix B, Fig. 9): n distinct sequences "
    "'a_b_c' of three integers uniform in 1..V, each with a class uniform over c; a GPT-2 "
    "sequence-classification teacher memorizes them, and students of the same architecture learn "
    "its soft labels at temperature tau on a rho share of them; they are tested on the rest "
    "(held-out memorized sequences) and on fresh random sequences (chance). Defaults are the "
    "paper's: n = 6,000, V = c = 1,000, AdamW lr 5e-4, grad-norm clip 1, teacher batch 64 for "
    "100 epochs, students batch 32 for 200 epochs, tau 20, rho 0.2,0.5,0.8. --pretrained DIR loads "
    "weights and tokenizer from a local Hugging Face folder (the paper: GPT-2 124M); without it "
    "the model is built from --config (small: GPT-2 124M's shape; tiny: 2 layers of width 128) "
    "with a word-level tokenizer over '0'..'V' and '_'. Nothing is downloaded. A GPU job at the "
    "paper's size; on a CPU e.g. --config tiny --n 1000 --c 50 --vocab 100 --dropout 0. Needs "
    "transformers (pip install 'softleak[gpt2]'). Re-running the same command resumes (saved "
    "teacher reused, finished students skipped); a directory holding other settings is refused "
    "unless --restart."
)

#: The tiny preset: 60 sequences, 4 classes, a 1-layer width-16 GPT-2 (the teacher memorizes in
#: 40 epochs).
TINY: dict[str, Any] = dict(
    n=60,
    vocab=20,
    c=4,
    n_val=20,
    pretrained=None,
    config="tiny",
    n_layer=1,
    n_embd=16,
    n_head=2,
    dropout=0.0,
    teacher_epochs=40,
    teacher_lr=1e-2,
    teacher_batch=16,
    student_epochs=10,
    student_lr=1e-2,
    student_batch=16,
)


class GPT2Family(Family):
    name = "gpt2"
    spec_type = GPT2Spec
    help = "GPT-2 classifiers on random sequences (Fig. 9)"
    description = DESCRIPTION
    needs = ("transformers",)

    def run(self, spec, out, *, threads=None, progress=None, restart=False, **kwargs):
        from softleak.simulate.gpt2.run import run_gpt2

        return run_gpt2(spec, out, threads=threads, progress=progress, restart=restart, **kwargs)

    def parts(self, spec: GPT2Spec, *, free_bytes: float, device: str) -> list:
        """The teacher, then every student one after another; minibatch steps
        (ceil(rows / batch) per epoch), FLOPs as ``GPT2Spec.work`` (3 x forward per row and
        epoch, plus one evaluation of D_*^T and D_val per model)."""
        from softleak.simulate.estimate import Part

        f = spec.flops_per_sequence()
        evals = f * (spec.n + spec.n_val)

        def part(role, rows, batch, epochs):
            steps = epochs * math.ceil(rows / batch)
            return Part(role, "gpt2", 3.0 * f * rows * epochs + evals, steps=steps, models=1)

        parts = [part("teachers", spec.n, spec.teacher_batch, spec.teacher_epochs)]
        for rho, _, _ in spec.students():
            parts.append(
                part("students", spec.n_train(rho), spec.student_batch, spec.student_epochs)
            )
        return parts

    def seconds(self, spec: GPT2Spec, rates) -> dict:
        """Seconds on the development CPU (measured overheads) and on one H200 (assumed); measured
        rates files do not calibrate it."""
        from softleak.simulate.estimate import CPU_TIME_SCALE, H200_EFFICIENCY, H200_GEMM, H200_OP_S

        cpu = gpu = 0.0
        for p in self.parts(spec, free_bytes=0.0, device="cpu"):
            fitted = p.flops / CPU_GPT2_RATE
            fitted += p.steps * (CPU_GPT2_STEP_S + spec.n_layer * CPU_GPT2_LAYER_STEP_S)
            cpu += CPU_TIME_SCALE["gpt2"] * fitted
            ops = GPT2_OPS_BASE + GPT2_OPS_PER_LAYER * spec.n_layer
            gpu += p.flops / (H200_GEMM * H200_EFFICIENCY) + p.steps * ops * H200_OP_S
        return {"cpu_s": cpu, "h200_s": gpu}

    def tiny(self, spec: GPT2Spec) -> GPT2Spec:
        return dataclasses.replace(spec, **TINY)

    def check_spec(self, command: str, kind: str, *, scale: float, seeds: int) -> GPT2Spec | None:
        if kind == "float64":
            return None  # the family trains in float32 only
        return GPT2Spec(
            **{
                **TINY,
                "teacher_epochs": max(10, int(60 * scale)),
                "student_epochs": max(5, int(20 * scale)),
            },
            rho=(0.5,),
            tau=(1.0, 10.0),
            student_seeds=seeds,
        )

    def summary(self, spec: GPT2Spec, table) -> list[str]:
        row = table.iloc[0]
        lines = [
            f"teacher train acc {row.teacher_train_acc:.3f}, val acc {row.teacher_val_acc:.3f} "
            f"(chance {1 / spec.c:.4f})"
        ]
        means = table.groupby(["rho", "tau"])[["student_train_acc", "student_test_acc"]].mean()
        for (rho, tau), m in means.iterrows():
            lines.append(
                f"rho {rho:g}, tau {tau:g}: student train acc {m.student_train_acc:.3f}, held-out "
                f"acc {m.student_test_acc:.3f}"
            )
        return lines


FAMILY = GPT2Family()
