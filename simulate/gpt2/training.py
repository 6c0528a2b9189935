"""The gpt2 experiment's training: the teacher on D_*^T and one student on the soft labels of
its D_train^S (minibatch AdamW; products at the spec's precision), each returning its metrics."""

from __future__ import annotations

import logging
import time

import torch

from softleak.simulate.data import permutation_split
from softleak.simulate.device import thread_count, threads_for
from softleak.simulate.gpt2.data import SequenceData
from softleak.simulate.gpt2.models import encode, make_model
from softleak.simulate.gpt2.spec import GPT2Spec
from softleak.simulate.minibatch import MinibatchConfig, fit_minibatch, predict_logits
from softleak.simulate.softlabels import soft_targets

log = logging.getLogger(__name__)


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
            precision=spec.precision,
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
            precision=spec.precision,
        )
        z = predict_logits(model, X, spec.eval_batch)  # (n, c)
        zv = predict_logits(model, X_val, spec.eval_batch)
    row = _student_row(spec, teacher_meta, rho, tau, rep, seed, result.epochs_run)
    pred, t_pred = z.argmax(-1), z_teacher.to(spec.device).argmax(-1)
    ce = -(soft * torch.log_softmax(z, -1)).sum(-1)  # (n,) CE against the tau soft labels
    return row | {
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


def _student_row(
    spec: GPT2Spec,
    teacher_meta: dict,
    rho: float,
    tau: float,
    rep: int,
    seed: int,
    student_epochs: int,
) -> dict:
    """A student's results columns that describe its setting, seeds and teacher."""
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
        "student_epochs": student_epochs,
        "teacher_lr": spec.teacher_lr,
        "student_lr": spec.student_lr,
        "teacher_batch": spec.teacher_batch,
        "student_batch": spec.student_batch,
        "shuffle": False,
        "ablation": "none",
        "solver": "adamw",
        "precision": spec.precision,
        "seed": spec.seed,
        "student_seed": rep,
        "data_seed": spec.data_seed(),
        "teacher_seed": spec.teacher_seed(),
        "model_seed": seed,
        "split_seed": spec.split_seed(rep),
        "teacher_train_acc": teacher_meta["teacher_train_acc"],
        "teacher_val_acc": teacher_meta["teacher_val_acc"],
    }
