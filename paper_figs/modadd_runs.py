"""The modular-addition sweeps (paper sec. 4 and appendix C; Figs. 3, 10 and 11): presets, reading
a finished run and the numbers its figures and claims share.

One ``ModAddSpec`` per architecture: sweep ``modadd-transformer`` (shared by Figs. 3 and 10: with
one data folder it runs once) and ``modadd-mlp``. A teacher trains once and is saved at three
checkpoints -- 1 memorizing, 2 partly generalizing, 3 grokked -- and students of the same
architecture learn its soft labels at every rho x tau.

- ``paper``: the paper's settings (``ModAddSpec`` defaults: p = 113, 30% teacher data, AdamW
  lr 1e-3, weight decay 1, teachers at 2,500 / 5,000 / 10,000 epochs (MLP 5,000 / 10,000 /
  20,000), students 40,000 epochs, rho 0.05...0.9, tau 0.1 / 1 / 10, 3 repetitions) -- a GPU job.
- ``quick``: a 2-core CPU version that keeps the memorize-then-grok sequence within minutes: a
  smaller modulus (p = 59), 40% teacher data and a 3x learning rate (teacher and students;
  measured: train acc 1 by epoch 100 with val acc 0.16 (transformer) / 0.00 (MLP); val acc 0.5 at
  epoch 1,270 / 2,730 and > 0.99 at 1,760 / 4,440), teacher 1 at a fixed early epoch and
  teachers 2 and 3 at the first epoch where the validation accuracy reaches 0.5 / 0.99 (stop
  rules), a coarser rho grid, one repetition and far fewer student epochs (all students of one rho
  train as one replica batch).

Drawings: ``paper_figs.modadd_figs``; claims: ``paper_figs.modadd_claims``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from softleak.paper_figs.common import data_dir
from softleak.paper_figs.registry import Preset
from softleak.simulate.modadd import ModAddSpec

TRANSFORMER_SWEEP = "modadd-transformer"


MLP_SWEEP = "modadd-mlp"


#: The paper's number: for tau -> 0 the student (which then learns hard labels) starts to
#: generalize at rho ~ 0.75 (sec. 4).
PAPER_NUMBERS = {"rho_transition_tau_to_0": 0.75, "p": 113, "train_frac": 0.3}


#: Student validation accuracy that marks "generalizes" when locating the tau -> 0 transition.
TRANSITION_LEVEL = 0.5


# --- presets ----------------------------------------------------------------------------------
#: Quick settings shared by both architectures (the teacher and students 3x the paper's lr).
QUICK_COMMON: dict[str, Any] = dict(
    train_frac=0.4,
    teacher_lr=3e-3,
    student_lr=3e-3,
    stop_rules=("half:val_acc>=0.5", "grokked"),
    rho=(0.1, 0.3, 0.5, 0.7, 0.9),
    tau=(0.1, 1.0, 10.0),
    student_seeds=1,
    # fp32: a preset names one arithmetic on every CPU. bf16 passed the validation gate on an AMX
    # Xeon (benchmarks/records/precision_check.json: 20 cells each, no threshold moved, 1.3-1.5x
    # faster there), but only AMX computes that contract at speed and a CPU without bf16 units
    # runs bf16 products 30-300x slower than float32 (simulate.precision)
)


QUICK_TRANSFORMER = ModAddSpec(
    model="transformer",
    p=59,
    checkpoints=(100,),  # memorized: train acc 1, val acc 0.16 (half: 1,270, grokked: 1,760)
    teacher_epochs=3_000,
    student_epochs=600,
    curve_every=20,
    **QUICK_COMMON,
)


PAPER_TRANSFORMER = ModAddSpec(model="transformer")


QUICK_MLP = ModAddSpec(
    model="mlp",
    p=59,
    checkpoints=(100,),  # memorized: train acc 1, val acc 0.00 (half: 2,730, grokked: 4,440)
    teacher_epochs=8_000,
    student_epochs=1_800,  # teacher 1 students (tau 10) plateau by ~1,000; teacher 3 ones rise longer
    curve_every=50,
    **QUICK_COMMON,
)


PAPER_MLP = ModAddSpec(model="mlp")


def _settings(spec: ModAddSpec) -> str:
    ckpts = ", ".join([f"epoch {e}" for e in spec.checkpoints or ()] + list(spec.stop_rules))
    return (
        f"{spec.model}, p = {spec.p}, {spec.train_frac:.0%} teacher data (n = {spec.n:,}), "
        f"teacher lr {spec.teacher_lr:g} (checkpoints {ckpts}), students {spec.student_epochs:,} "
        f"epochs lr {spec.student_lr:g}, rho {','.join(f'{r:g}' for r in spec.rho)}, tau "
        f"{','.join(f'{t:g}' for t in spec.tau)}, {spec.student_seeds} repetition(s)"
        + (f", {spec.precision} products" if spec.precision != "fp32" else "")
    )


def presets(sweep: str, quick: ModAddSpec, paper: ModAddSpec, minutes: str) -> dict:
    return {
        "quick": Preset({sweep: quick}, f"2-core CPU, {minutes}: {_settings(quick)}"),
        "paper": Preset({sweep: paper}, f"the paper's settings (a GPU job): {_settings(paper)}"),
    }


# --- reading a run ----------------------------------------------------------------------------
def read_run(tables: dict, sweep: str, out: Path) -> tuple[pd.DataFrame, pd.DataFrame, list]:
    """(results, teacher curves, checkpoints ordered by epoch: dicts with name, epoch, rule,
    train/val acc and loss; checkpoints never reached are left out)."""
    folder = data_dir(tables, sweep, out)
    teacher = pd.read_parquet(folder / "teacher_curves.parquet")
    meta = json.loads((folder / "checkpoints.json").read_text())
    ckpts = sorted((c for c in meta if c.get("epoch") is not None), key=lambda c: c["epoch"])
    return tables[sweep], teacher, ckpts


def rho_curves(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and SEM over repetitions per checkpoint, tau and rho of the student accuracies."""
    from softleak.compare.table import seed_means, seed_stats

    metrics = ["student_train_acc", "student_test_acc", "student_val_acc", "teacher_val_acc"]
    keys = ["checkpoint", "teacher_epoch", "tau", "rho"]
    stats = seed_stats(seed_means(results, keys, metrics, seed="student_seed"), keys)
    frame = stats.rename(columns={"n_seeds": "n_runs"}).reset_index()
    return frame.sort_values(["teacher_epoch", "tau", "rho"]).reset_index(drop=True)


def transition_rho(rho: np.ndarray, acc: np.ndarray, level: float = TRANSITION_LEVEL) -> float:
    """The first rho where the (piecewise linear) accuracy curve reaches ``level`` (NaN: never)."""
    from softleak.compare.curves import first_crossing

    return first_crossing(np.asarray(rho, float), np.asarray(acc, float), level)
