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
  classes (numbers up to 20), which the teacher memorizes fully; 3 repetitions, bf16 products;
  about 6 minutes on one core of the development CPU. The number of classes matters: each soft
  label carries c - 1 numbers, and at rho = 0.8 (one seed, 60 teacher / 100 student epochs, numbers
  up to 100) the held-out accuracy was 0.095 with c = 50 (chance 0.02), 0.115 with c = 500 (0.002)
  and 0.25 with c = 1,000 (0.001); tau = 5 instead of 20 gave 0.11 at c = 500, independent
  (unshared) inits less than shared ones. Variants of the c = 1,000 preset tried (issue 17, bf16,
  one seed; held-out accuracy at rho 0.2 / 0.5 / 0.8): numbers up to 100 (3 seeds) 0.026 / 0.161 /
  0.273; students 200 epochs 0.021 / 0.142 / 0.265; student lr 1e-3 0.019 / 0.126 / 0.230; width
  256 0.013 / 0.102 / 0.145; teacher 120 epochs 0.014 / 0.122 / 0.195; tau 5 0.020 / 0.150 / 0.290;
  tau 100 0.007 / 0.010 / 0.080; n = 500 0.005 / 0.056 / 0.260; numbers up to 20 0.048 / 0.208 /
  0.260 (3 seeds: 0.048 / 0.176 / 0.285), with 200 student epochs 0.044 / 0.178 / 0.310. Numbers
  up to 20 is kept; no variant comes near the paper's pretrained 0.21 / 0.52 / 0.65.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from softleak.compare.claims import Claim, summary_line
from softleak.paper_figs.common import clean, save, write_data
from softleak.paper_figs.registry import Preset, Recipe
from softleak.simulate.gpt2 import GPT2Spec

NAME = "gpt2"  # the sweep's name (OUT/data/gpt2)
PRETRAINED_ENV = "SOFTLEAK_GPT2_DIR"  # a local folder with pretrained GPT-2 weights + tokenizer

#: The paper's setting (docs/reference.md, appendix B); ``pretrained`` from the environment.
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
    # fp32: a preset names one arithmetic on every CPU (simulate.precision). bf16 on the AMX Xeon
    # passed the validation gate (6 cells) but ran its attention in float32 (SDPA escaped the casts)
)

#: The paper's held-out accuracies at rho 0.2 / 0.5 / 0.8 (app. B) and its notebook's.
PAPER_RHO = (0.2, 0.5, 0.8)
PAPER_TEST = (0.213, 0.524, 0.652)
NOTEBOOK_TEST = (0.2385, 0.5863, 0.7283)

CLAIMS = (
    Claim(
        "fig9.students_fit_train",
        "After convergence all students reach acc_train^S ~ 99.5% on their share of the "
        "teacher's sequences (app. B, Fig. 9).",
        paper=0.995,
    ),
    Claim(
        "fig9.held_out_above_fresh",
        "The students' accuracy on held-out memorized sequences D_test^S is far above random "
        "guessing, their accuracy on fresh sequences (acc_val^S ~ 0.1%): the soft labels leak "
        "the memorized classes (app. B).",
        paper={"student_val_acc": 0.001},
    ),
    Claim(
        "fig9.held_out_rises_with_rho",
        "The held-out accuracy grows with the student's share rho of the teacher's data "
        "(app. B, Fig. 9: 0.213 / 0.524 / 0.652 at rho 0.2 / 0.5 / 0.8).",
        paper=dict(zip([f"{r:g}" for r in PAPER_RHO], PAPER_TEST, strict=True)),
        machine_sensitive="3 student seeds put the smallest step's t interval near 0: it held on "
        "an AMX Xeon (bf16 products), failed on an AMD EPYC (bf16 products, 0.075 [-0.011, "
        "0.161]) and holds there in fp32 (0.086 [0.021, 0.151])",
    ),
    Claim(
        "fig9.paper_values",
        "Students of pretrained GPT-2 reach acc_test^S = 0.213 / 0.524 / 0.652 at rho = 0.2 / "
        "0.5 / 0.8, over 60% from 80% of the teacher's data (app. B; its notebook: 0.2385 / "
        "0.5863 / 0.7283).",
        paper=dict(zip([f"{r:g}" for r in PAPER_RHO], PAPER_TEST, strict=True)),
    ),
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
    claims = judge(table)
    lines.append(summary_line(claims))
    return {
        "claims": claims,
        "rho": rho,
        "student_train_acc": [clean(v) for v in means["student_train_acc"]],
        "student_test_acc": [clean(v) for v in means["student_test_acc"]],
        "student_val_acc": [clean(v) for v in means["student_val_acc"]],
        "teacher_train_acc": clean(teacher),
        "chance": clean(chance),
        "text": "\n".join(lines),
    }


def judge(table: pd.DataFrame) -> list[dict]:
    """The claims of ``CLAIMS`` from the students' rows (one per rho x tau x student seed).

    The rho ordering is judged over student seeds (each seed has its own nested splits and
    initialisations, so its accuracies along rho are one replicate); held-out vs fresh accuracy
    across the students, paired (two accuracies of one student)."""
    from softleak.compare.claims import judge_bound, judge_paired, judge_sign
    from softleak.compare.table import seed_means

    c_fit, c_leak, c_rho, c_paper = CLAIMS
    first = table.iloc[0]
    pretrained = first.get("pretrained")
    pretrained = pretrained if isinstance(pretrained, str) else ""
    model = "pretrained GPT-2" if pretrained else f"random-init GPT-2 ({first.get('model', '?')})"
    setting = (
        f"{model}, n = {int(first['n']):,}, c = {int(first['c']):,}, numbers up to "
        f"{int(first['vocab']):,}, teacher {int(first['teacher_epochs'])} / students "
        f"{int(first['student_epochs'])} epochs at this preset"
    )
    paper_preset = (
        f"the paper preset with ${PRETRAINED_ENV} (a local pretrained GPT-2 124M; the paper's "
        "setting) tests it"
    )
    means = table.groupby("rho", sort=True)[["student_train_acc", "student_test_acc"]].mean()
    out = [
        judge_bound(
            c_fit,
            means["student_train_acc"].min(),
            at_least=0.99,  # a choice: half a point below the paper's 99.5%
            what="min over rho of the mean acc_train^S (bound: 0.99, half a point below the "
            "paper's 99.5%)",
            why_not=f"finite training ({setting}); {paper_preset}",
        ),
        judge_paired(
            c_leak,
            (table["student_test_acc"] - table["student_val_acc"]).to_numpy(float),
            sign=1,
            what="acc_test^S - acc_val^S of each student (cells: rho x tau x student seeds)",
            note=f"mean acc_val^S {table['student_val_acc'].mean():.4f}, chance "
            f"{1 / int(first['c']):.4f}",
            why_not=f"{setting}: too few cells or too little leakage at this scale; {paper_preset}",
        ),
    ]
    # per student seed: the smallest step of its held-out accuracy (mean over tau) along rho
    per_seed = seed_means(table, ["rho"], "student_test_acc", seed="student_seed")
    per_seed = per_seed["student_test_acc"].unstack("rho")
    steps = per_seed.sort_index(axis=1).diff(axis=1).iloc[:, 1:]
    smallest = steps.min(axis=1) if steps.shape[1] else pd.Series(dtype=float)
    out.append(
        judge_sign(
            c_rho,
            smallest.to_numpy(float),
            sign=1,
            what="per student seed, smallest step of acc_test^S between neighbouring rho",
            note="mean acc_test^S per rho: "
            + ", ".join(f"{r:g}: {v:.3f}" for r, v in means["student_test_acc"].items()),
            why_not=f"{setting}; {paper_preset}",
        )
    )
    out.append(_paper_numbers(c_paper, table, means, setting, paper_preset))
    return out


def _paper_numbers(
    claim, table: pd.DataFrame, means: pd.DataFrame, setting: str, paper_preset: str
) -> dict:
    """The held-out accuracies at rho 0.2 / 0.5 / 0.8 against the paper's (only in the paper's
    setting: pretrained GPT-2 124M, n = 6,000, V = c = 1,000)."""
    from softleak.compare.claims import judge_bound, untested

    first = table.iloc[0]
    pretrained = first.get("pretrained")
    pretrained = pretrained if isinstance(pretrained, str) else ""
    seeds = int(table["student_seed"].nunique())
    # Tolerance: the paper's own spread, the largest gap between its text and its notebook.
    tol = max(abs(a - b) for a, b in zip(PAPER_TEST, NOTEBOOK_TEST, strict=True))
    measured = {f"{r:g}": clean(v) for r, v in means["student_test_acc"].items()}
    crit = (
        f"max over rho 0.2 / 0.5 / 0.8 of |acc_test^S - the paper's| (tolerance {tol:.3f}: the "
        "largest gap between the paper's text and its notebook)"
    )
    have = [r for r in PAPER_RHO if any(math.isclose(r, float(x)) for x in means.index)]
    paper_setting = (
        pretrained
        and int(first["n"]) == PAPER.n
        and int(first["c"]) == PAPER.c
        and int(first["vocab"]) == PAPER.vocab
        and len(have) == len(PAPER_RHO)
    )
    shown = " / ".join(f"{v:.3f}" for v in means["student_test_acc"])
    if not paper_setting:
        return untested(
            claim,
            f"{setting}, not the paper's pretrained GPT-2 124M on n = 6,000 sequences with V "
            f"= c = 1,000 (measured {shown} at rho {' / '.join(measured)}); {paper_preset}",
            measured=measured,
            criterion=f"{crit} <= {tol:.3f}",
        )
    else:
        acc = {float(r): float(v) for r, v in means["student_test_acc"].items()}
        gaps = [
            abs(next(v for r2, v in acc.items() if math.isclose(r2, r)) - target)
            for r, target in zip(PAPER_RHO, PAPER_TEST, strict=True)
        ]
        return judge_bound(
            claim,
            float(np.max(gaps)),
            at_most=tol,
            what=crit,
            note=f"acc_test^S {shown} at rho {' / '.join(measured)}",
            why_not=f"{setting} ({seeds} student seed(s)); the paper reports one run",
        )


RECIPE = Recipe(
    "fig9",
    "GPT-2 classifiers on random sequences: student train and held-out accuracy vs rho",
    presets={
        "quick": Preset(
            {NAME: QUICK},
            "random-init GPT-2 (2 layers, width 128, no dropout), n = 1,000 sequences of numbers "
            "up to 20, c = 1,000, teacher 60 / students 100 epochs, 3 repetitions, bf16 products "
            "(validated); CPU, ~6 minutes",
        ),
        "paper": Preset(
            {NAME: PAPER},
            "n = 6,000, V = c = 1,000, GPT-2 small, 100 / 200 epochs: a GPU job. Pretrained "
            f"weights from the local folder in ${PRETRAINED_ENV} when set (the paper's setting), "
            "else GPT-2 small built from its config",
        ),
    },
    make=make,
    claims=CLAIMS,
    paper={
        "rho": [0.2, 0.5, 0.8],
        "student_test_acc": list(PAPER_TEST),
        "student_test_acc_notebook": list(NOTEBOOK_TEST),
        "student_train_acc": 0.995,
        "student_val_acc": 0.001,
    },
)
