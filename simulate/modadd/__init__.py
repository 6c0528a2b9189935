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

Modules: ``rules`` (the stop-rule language), ``spec`` (``ModAddSpec`` and the student grid it
defines), ``data`` (the examples and the teacher/validation split), ``models`` (the model families
and their chunked forward), ``teacher`` (training and checkpoints), ``students`` (training and
evaluating the students of a checkpoint, their rows), ``run`` (the run directory).
"""

from __future__ import annotations

from softleak.simulate.modadd.data import ModAddData, all_pairs, make_data
from softleak.simulate.modadd.models import (
    EVAL_ENTRIES,
    forward_chunked,
    make_model,
    model_from_state,
    model_inputs,
)
from softleak.simulate.modadd.rules import RULE_METRICS, RULE_PRESETS, StopRule, parse_rule
from softleak.simulate.modadd.run import OUTPUTS, load_checkpoints, run_modadd
from softleak.simulate.modadd.spec import (
    BATCH_BY,
    MODELS,
    PAPER_CHECKPOINTS,
    ModAddSpec,
    StudentRun,
    student_batches,
    student_runs,
)
from softleak.simulate.modadd.students import (
    CURVE_METRICS,
    run_id_of,
    students_of_checkpoint,
    train_students,
)
from softleak.simulate.modadd.teacher import Checkpoint, teacher_logits, train_teacher

# The weights' save/load, imported from here by older code and tests.
from softleak.simulate.store import load_state, save_state

__all__ = [
    "BATCH_BY",
    "CURVE_METRICS",
    "EVAL_ENTRIES",
    "MODELS",
    "OUTPUTS",
    "PAPER_CHECKPOINTS",
    "RULE_METRICS",
    "RULE_PRESETS",
    "Checkpoint",
    "ModAddData",
    "ModAddSpec",
    "StopRule",
    "StudentRun",
    "all_pairs",
    "forward_chunked",
    "load_checkpoints",
    "load_state",
    "make_data",
    "make_model",
    "model_from_state",
    "model_inputs",
    "parse_rule",
    "run_id_of",
    "run_modadd",
    "save_state",
    "student_batches",
    "student_runs",
    "students_of_checkpoint",
    "teacher_logits",
    "train_students",
    "train_teacher",
]
