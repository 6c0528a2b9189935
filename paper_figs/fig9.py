"""Fig. 9 (appendix B): GPT-2 classifier students on random sequences memorized by a GPT-2 teacher.

The teacher (``GPT2ForSequenceClassification``) memorizes n sequences "a_b_c" (three integers
uniform in 1..V) with random classes out of c; students of the same architecture learn its soft
labels (tau = 20) on a rho share of them. Drawn: student train and held-out (D_test^S) accuracy
against rho, the teacher's train accuracy, chance 1/c and the students' accuracy on fresh random
sequences (D_val: chance measured).

Presets (``simulate.gpt2.GPT2Spec``):
- ``paper``: n = 6,000, V = c = 1,000, GPT-2 small, teacher 100 epochs (batch 64), students 200
  epochs (batch 32), AdamW lr 5e-4, rho 0.2 / 0.5 / 0.8 -- a GPU job. The paper fine-tuned the
  pretrained GPT-2 124M; a preset cannot know where its weights lie, so it loads them from the
  folder in the environment variable ``SOFTLEAK_GPT2_DIR`` (a local Hugging Face folder with the
  model and its tokenizer) when that is set, and otherwise builds GPT-2 small from its config
  (random init, the project's word-level tokenizer; the body shared by teacher and students like
  pretrained weights would be). Nothing is downloaded.
- ``quick``: a random-init 2-layer width-128 GPT-2 on 1,000 sequences over the paper's 1,000
  classes (numbers up to 100), which the teacher memorizes fully; a few minutes on the 2-core
  development CPU. The number of classes matters: each soft label carries c - 1 numbers, and at
  rho = 0.8 (one seed, 60 teacher / 100 student epochs) the held-out accuracy was 0.095 with
  c = 50 (chance 0.02), 0.115 with c = 500 (0.002) and 0.25 with c = 1,000 (0.001); tau = 5
  instead of 20 gave 0.11 at c = 500, independent (unshared) inits less than shared ones.
"""

from __future__ import annotations

import os
from pathlib import Path

from softleak.paper_figs.common import clean, save, write_data
from softleak.paper_figs.registry import Preset, Recipe
from softleak.simulate.gpt2 import GPT2Spec

NAME = "gpt2"  # the sweep's name (OUT/data/gpt2)
PRETRAINED_ENV = "SOFTLEAK_GPT2_DIR"  # a local folder with pretrained GPT-2 weights + tokenizer

#: The paper's setting (REFERENCE.md, appendix B); ``pretrained`` from the environment.
PAPER = GPT2Spec(
    n=6_000,
    vocab=1_000,
    c=1_000,
    config="small",
    pretrained=os.environ.get(PRETRAINED_ENV) or None,
    teacher_epochs=100,
    student_epochs=200,
)

#: CPU scale: a tiny random-init GPT-2, 1,000 sequences, the paper's 1,000 classes, numbers up to
#: 100, no dropout (the teacher memorizes its set within 60 epochs at the paper's lr).
QUICK = GPT2Spec(
    n=1_000,
    vocab=20,  # numbers up to 20 (8,000 possible sequences): the best of the variants tried (below)
    c=1_000,
    n_val=500,
    config="tiny",
    dropout=0.0,
    teacher_epochs=60,
    student_epochs=100,
    student_seeds=3,  # the fewest a difference between rho is judged on
    precision="bf16",  # passed the validation gate (6 cells within tolerance); teacher 1.4x faster
)

COLUMNS = (
    "rho",
    "tau",
    "student_seed",
    "student_train_acc",
    "student_test_acc",
    "student_val_acc",
    "match_teacher_test_acc",
    "teacher_train_acc",
    "teacher_val_acc",
    "train_ce",
    "test_ce",
    "wall_s",
)


def make(tables: dict, out: Path, preset: str) -> dict:
    """Accuracies against rho (mean over student seeds and taus), chance 1/c; fig9.png/pdf and
    fig9_runs.csv."""
    from softleak.compare.style import METRIC_COLORS, METRIC_LABELS, new_figure

    table = tables[NAME]
    c = int(table["c"].iloc[0])
    means = table.groupby("rho", sort=True)[
        ["student_train_acc", "student_test_acc", "student_val_acc"]
    ].mean()
    rho = [float(r) for r in means.index]
    teacher = float(table["teacher_train_acc"].iloc[0])
    chance = 1.0 / c

    fig, (ax,) = new_figure()
    for metric in ("student_train_acc", "student_test_acc"):
        ax.plot(
            rho,
            means[metric],
            "o-",
            color=METRIC_COLORS[metric],
            label=METRIC_LABELS[metric],
        )
    ax.plot(rho, means["student_val_acc"], "s:", color="grey", label="student on fresh sequences")
    ax.axhline(
        teacher,
        color=METRIC_COLORS["teacher_train_acc"],
        ls="--",
        lw=1,
        label=METRIC_LABELS["teacher_train_acc"],
    )
    ax.axhline(chance, color="black", ls=":", lw=1, label=f"chance 1/c = {chance:.3g}")
    paper = RECIPE.paper if preset == "paper" else {}
    if paper:
        ax.plot(
            paper["rho"], paper["student_test_acc"], "x", color="black", label="paper, held-out"
        )
    ax.set_xlabel(r"student's share of the teacher's data $\rho$")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlim(0, 1)
    ax.set_title(f"GPT-2 students, n = {int(table['n'].iloc[0]):,}, c = {c:,}", fontsize=10)
    ax.legend(fontsize=7, loc="center right")
    save(fig, out, "fig9")
    write_data(table[[k for k in COLUMNS if k in table]], out, "fig9_runs")

    lines = [f"{'rho':>5s} {'train acc':>10s} {'held-out acc':>13s} {'fresh (val)':>12s}"]
    for r, row in means.iterrows():
        lines.append(
            f"{r:5.2f} {row.student_train_acc:10.3f} {row.student_test_acc:13.3f} "
            f"{row.student_val_acc:12.3f}"
        )
    lines.append(f"teacher train acc {teacher:.3f}; chance 1/c = {chance:.4f}")
    return {
        "rho": rho,
        "student_train_acc": [clean(v) for v in means["student_train_acc"]],
        "student_test_acc": [clean(v) for v in means["student_test_acc"]],
        "student_val_acc": [clean(v) for v in means["student_val_acc"]],
        "teacher_train_acc": clean(teacher),
        "chance": clean(chance),
        "text": "\n".join(lines),
    }


RECIPE = Recipe(
    "fig9",
    "GPT-2 classifiers on random sequences: student train and held-out accuracy vs rho",
    presets={
        "quick": Preset(
            {NAME: QUICK},
            "random-init GPT-2 (2 layers, width 128, no dropout), n = 1,000 sequences of numbers "
            "up to 100, c = 50, teacher 60 / students 100 epochs; CPU, ~2.5 minutes",
        ),
        "paper": Preset(
            {NAME: PAPER},
            "n = 6,000, V = c = 1,000, GPT-2 small, 100 / 200 epochs: a GPU job. Pretrained "
            f"weights from the local folder in ${PRETRAINED_ENV} when set (the paper's setting), "
            "else GPT-2 small built from its config",
        ),
    },
    make=make,
    paper={
        "rho": [0.2, 0.5, 0.8],
        "student_test_acc": [0.213, 0.524, 0.652],
        "student_test_acc_notebook": [0.24, 0.59, 0.73],
        "student_train_acc": 0.995,
        "student_val_acc": 0.001,
    },
)
