"""The students of one checkpoint: trained on the teacher's soft labels in replica batches,
evaluated on all pairs, and their result rows."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from softleak.simulate.data import permutation_split
from softleak.simulate.device import thread_count, threads_for
from softleak.simulate.losses import Objective, normalized_weights
from softleak.simulate.metrics import masked_mean
from softleak.simulate.modadd.data import ModAddData
from softleak.simulate.modadd.models import (
    EVAL_ENTRIES,
    _activation_width,
    make_model,
    model_inputs,
)
from softleak.simulate.modadd.spec import ModAddSpec, StudentRun, student_batches, student_runs
from softleak.simulate.modadd.teacher import Checkpoint, teacher_logits
from softleak.simulate.precision import DTYPES
from softleak.simulate.softlabels import soft_targets
from softleak.simulate.train import fit

# curves recorded for every student (final rows carry these and the teacher-match accuracies)
CURVE_METRICS = ("student_train_acc", "student_test_acc", "student_val_acc", "train_ce", "test_ce")


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
            precision=spec.precision,
            compile=spec.compile,
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
        "precision": spec.precision,
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
